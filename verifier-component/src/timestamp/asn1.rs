//! Small DER readers for the parts of a timestamp token that are read leniently, as Go's
//! `encoding/asn1` reads them (trailing fields ignored, fractional `genTime`, UTCTime
//! accepted): `TSTInfo`, `SigningCertificateV2`, and attribute times.

use const_oid::ObjectIdentifier;
use der::Decode;

use super::TstInfo;
use crate::time::Instant;

/// One DER element.
#[derive(Clone, Copy, Debug)]
pub struct Element<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Identifier, length and content.
    pub full: &'a [u8],
}

impl<'a> Element<'a> {
    /// Read the element at the start of `data`; returns it and the bytes after it.
    pub fn parse(data: &'a [u8]) -> Result<(Self, &'a [u8]), String> {
        let (&tag, rest) = data
            .split_first()
            .ok_or_else(|| "asn1: syntax error: sequence truncated".to_owned())?;
        if tag & 0x1f == 0x1f {
            return Err("asn1: structure error: high-tag-number form not supported".to_owned());
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| "asn1: syntax error: truncated tag or length".to_owned())?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("asn1: structure error: length too large or indefinite".to_owned());
            }
            let mut length = 0usize;
            for &b in &rest[..n] {
                length = (length << 8) | usize::from(b);
            }
            rest = &rest[n..];
            length
        };
        if rest.len() < length {
            return Err("asn1: syntax error: data truncated".to_owned());
        }
        let header = data.len() - rest.len();
        Ok((
            Self {
                tag,
                content: &rest[..length],
                full: &data[..header + length],
            },
            &rest[length..],
        ))
    }

    /// Read exactly one element.
    pub fn parse_one(data: &'a [u8]) -> Result<Self, String> {
        Ok(Self::parse(data)?.0)
    }
}

/// The elements of a constructed value's content.
pub fn elements(mut content: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (element, rest) = Element::parse(content)?;
        out.push(element);
        content = rest;
    }
    Ok(out)
}

fn expect<'a>(
    items: &[Element<'a>],
    index: usize,
    tag: u8,
    what: &str,
) -> Result<Element<'a>, String> {
    match items.get(index) {
        Some(e) if e.tag == tag => Ok(*e),
        Some(e) => Err(format!(
            "asn1: structure error: tags don't match ({} vs {}) {what}",
            tag & 0x1f,
            e.tag & 0x1f
        )),
        None => Err("asn1: syntax error: sequence truncated".to_owned()),
    }
}

fn integer(content: &[u8]) -> Result<i64, String> {
    if content.is_empty() || content.len() > 8 {
        return Err("asn1: structure error: integer too large".to_owned());
    }
    let mut value: i64 = if content[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in content {
        value = (value << 8) | i64::from(b);
    }
    Ok(value)
}

/// `millis` / `micros` of an `Accuracy`: INTEGER (1..999) (RFC 3161).
fn accuracy_part(content: &[u8], name: &str) -> Result<i64, String> {
    let value = integer(content)?;
    if !(1..=999).contains(&value) {
        return Err(format!(
            "tsp: invalid accuracy: {name} {value} out of range 1..999"
        ));
    }
    Ok(value)
}

fn oid(element: &Element<'_>) -> Result<ObjectIdentifier, String> {
    ObjectIdentifier::from_der(element.full).map_err(|e| format!("asn1: structure error: {e}"))
}

/// Decode a `TSTInfo`.
pub fn tst_info(der: &[u8]) -> Result<TstInfo, String> {
    let outer = Element::parse_one(der)?;
    if outer.tag != 0x30 {
        return Err("asn1: structure error: tags don't match (16 vs TSTInfo)".to_owned());
    }
    let items = elements(outer.content)?;
    let version = integer(expect(&items, 0, 0x02, "version")?.content)?;
    let policy = oid(&expect(&items, 1, 0x06, "policy")?)?;
    let imprint = elements(expect(&items, 2, 0x30, "messageImprint")?.content)?;
    let algorithm = elements(expect(&imprint, 0, 0x30, "hashAlgorithm")?.content)?;
    let hash_algorithm = oid(&expect(&algorithm, 0, 0x06, "hashAlgorithm")?)?;
    let hashed_message = expect(&imprint, 1, 0x04, "hashedMessage")?.content.to_vec();
    expect(&items, 3, 0x02, "serialNumber")?;
    let gen_time = items
        .get(4)
        .ok_or_else(|| "asn1: syntax error: sequence truncated".to_owned())
        .and_then(time_element)?;
    let mut accuracy = (0, 0, 0);
    if let Some(acc) = items.get(5).filter(|e| e.tag == 0x30) {
        for field in elements(acc.content)? {
            match field.tag {
                0x02 => accuracy.0 = integer(field.content)?,
                0x80 => accuracy.1 = accuracy_part(field.content, "millis")?,
                0x81 => accuracy.2 = accuracy_part(field.content, "micros")?,
                _ => {}
            }
        }
        // A negative accuracy would turn the window [genTime - a, genTime + a] inside out.
        if !(0..=i64::from(i32::MAX)).contains(&accuracy.0) {
            return Err(format!(
                "tsp: invalid accuracy: seconds {} out of range",
                accuracy.0
            ));
        }
    }
    // After genTime and the optional accuracy and ordering, the only INTEGER is the nonce.
    let nonce = items
        .iter()
        .skip(5)
        .find(|e| e.tag == 0x02)
        .map(|e| e.content.to_vec());
    Ok(TstInfo {
        version,
        policy,
        hash_algorithm,
        hashed_message,
        gen_time,
        accuracy,
        nonce,
    })
}

/// One `ESSCertIDv2`.
#[derive(Clone, Debug)]
pub struct EssCertId {
    /// `hashAlgorithm` (absent = SHA-256).
    pub hash_algorithm: Option<ObjectIdentifier>,
    /// `certHash`.
    pub cert_hash: Vec<u8>,
    /// `issuerSerial`: the issuer directory name DER (if the first name is one) and the
    /// serial number content.
    pub issuer_serial: Option<(Option<Vec<u8>>, Vec<u8>)>,
}

/// Decode a `SigningCertificateV2` attribute value.
pub fn signing_certificate_v2(der: &[u8]) -> Result<Vec<EssCertId>, String> {
    let outer = Element::parse_one(der)?;
    let fields = elements(outer.content)?;
    let certs = expect(&fields, 0, 0x30, "certs")?;
    let mut out = Vec::new();
    for cert in elements(certs.content)? {
        let parts = elements(cert.content)?;
        let mut index = 0;
        let mut hash_algorithm = None;
        if parts.first().is_some_and(|p| p.tag == 0x30) {
            let algorithm = elements(parts[0].content)?;
            hash_algorithm = Some(oid(&expect(&algorithm, 0, 0x06, "hashAlgorithm")?)?);
            index = 1;
        }
        let cert_hash = expect(&parts, index, 0x04, "certHash")?.content.to_vec();
        let mut issuer_serial = None;
        if let Some(serial) = parts.get(index + 1).filter(|p| p.tag == 0x30) {
            let serial_parts = elements(serial.content)?;
            let names = expect(&serial_parts, 0, 0x30, "issuer")?;
            let first_name = elements(names.content)?.into_iter().next();
            let issuer = match first_name {
                Some(name) if name.tag == 0xa4 => {
                    Some(Element::parse_one(name.content)?.full.to_vec())
                }
                _ => None,
            };
            let number = expect(&serial_parts, 1, 0x02, "serialNumber")?
                .content
                .to_vec();
            issuer_serial = Some((issuer, number));
        }
        out.push(EssCertId {
            hash_algorithm,
            cert_hash,
            issuer_serial,
        });
    }
    Ok(out)
}

/// Decode a UTCTime or GeneralizedTime element.
pub fn time(der: &[u8]) -> Result<Instant, String> {
    time_element(&Element::parse_one(der)?)
}

fn time_element(element: &Element<'_>) -> Result<Instant, String> {
    let text = core::str::from_utf8(element.content)
        .map_err(|_| "asn1: syntax error: invalid time".to_owned())?;
    match element.tag {
        0x18 => generalized_time(text),
        0x17 => utc_time(text),
        other => Err(format!(
            "asn1: structure error: tags don't match (24 vs {}) Time",
            other & 0x1f
        )),
    }
}

fn digits(text: &str, range: core::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYYMMDDHHMMSS[.fraction](Z|±hhmm)`, which must re-encode to itself (no trailing
/// zeros in the fraction, no `+0000`), as Go requires.
fn generalized_time(text: &str) -> Result<Instant, String> {
    let bad = || {
        format!(
            "asn1: time did not serialize back to the original value and may be invalid: given {text:?}"
        )
    };
    let y = digits(text, 0..4).ok_or_else(bad)?;
    let mo = digits(text, 4..6).ok_or_else(bad)?;
    let d = digits(text, 6..8).ok_or_else(bad)?;
    let h = digits(text, 8..10).ok_or_else(bad)?;
    let mi = digits(text, 10..12).ok_or_else(bad)?;
    let s = digits(text, 12..14).ok_or_else(bad)?;
    let mut rest = &text[14.min(text.len())..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let digits_text = &fraction[..len];
        if len == 0 || len > 9 || digits_text.ends_with('0') {
            return Err(bad());
        }
        nanos = format!("{digits_text:0<9}").parse().map_err(|_| bad())?;
        rest = &fraction[len..];
    }
    let offset = match rest {
        "Z" => 0,
        zone if zone.len() == 5 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let hh = digits(zone, 1..3).ok_or_else(bad)?;
            let mm = digits(zone, 3..5).ok_or_else(bad)?;
            let total = hh * 3600 + mm * 60;
            if total == 0 {
                return Err(bad());
            }
            if zone.starts_with('-') { -total } else { total }
        }
        _ => return Err(bad()),
    };
    let seconds = civil(y, mo, d, h, mi, s).ok_or_else(bad)? - offset;
    Ok(Instant {
        seconds,
        nanos,
        offset_seconds: i32::try_from(offset).unwrap_or(0),
    })
}

/// `YYMMDDHHMM[SS](Z|±hhmm)`, years before 50 in the 2000s.
fn utc_time(text: &str) -> Result<Instant, String> {
    let bad = || format!("asn1: syntax error: invalid UTCTime {text:?}");
    let yy = digits(text, 0..2).ok_or_else(bad)?;
    let y = if yy < 50 { 2000 + yy } else { 1900 + yy };
    let mo = digits(text, 2..4).ok_or_else(bad)?;
    let d = digits(text, 4..6).ok_or_else(bad)?;
    let h = digits(text, 6..8).ok_or_else(bad)?;
    let mi = digits(text, 8..10).ok_or_else(bad)?;
    let (s, rest) = match digits(text, 10..12) {
        Some(s) => (s, &text[12..]),
        None => (0, text.get(10..).unwrap_or("")),
    };
    let offset = match rest {
        "Z" => 0,
        zone if zone.len() == 5 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let total = digits(zone, 1..3).ok_or_else(bad)? * 3600
                + digits(zone, 3..5).ok_or_else(bad)? * 60;
            if zone.starts_with('-') { -total } else { total }
        }
        _ => return Err(bad()),
    };
    Ok(Instant::from_unix(
        civil(y, mo, d, h, mi, s).ok_or_else(bad)? - offset,
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_round_trips_like_go() {
        let t = generalized_time("20250121091746.141Z").expect("fraction");
        assert_eq!(t.rfc3339_nano(), "2025-01-21T09:17:46.141Z");
        assert!(generalized_time("20250121091746.140Z").is_err());
        assert!(generalized_time("20250121091746+0000").is_err());
        assert!(generalized_time("20250121091746").is_err());
        let t = generalized_time("20250121101746+0100").expect("offset");
        assert_eq!(t.utc().rfc3339(), "2025-01-21T09:17:46Z");
        assert_eq!(
            utc_time("250121091746Z").expect("utc").rfc3339(),
            "2025-01-21T09:17:46Z"
        );
    }

    /// A minimal TSTInfo: version, policy 1.2.3, SHA-256 imprint, serial 7, genTime, then `tail`.
    fn tst_info_with(tail: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, 0x01, 0x01, 0x06, 0x02, 0x2a, 0x03];
        body.extend_from_slice(&[0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09]);
        body.extend_from_slice(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
        body.extend_from_slice(&[0x04, 0x20]);
        body.extend_from_slice(&[0xab; 32]);
        body.extend_from_slice(&[0x02, 0x01, 0x07]);
        body.extend_from_slice(&[0x18, 0x0f]);
        body.extend_from_slice(b"20261124120000Z");
        body.extend_from_slice(tail);
        let mut der = vec![0x30, u8::try_from(body.len()).expect("short")];
        der.extend_from_slice(&body);
        der
    }

    #[test]
    fn negative_or_out_of_range_accuracy_is_refused() {
        for accuracy in [
            vec![0x30, 0x03, 0x02, 0x01, 0xff],       // seconds -1
            vec![0x30, 0x03, 0x80, 0x01, 0x00],       // millis 0
            vec![0x30, 0x04, 0x81, 0x02, 0x03, 0xe8], // micros 1000
        ] {
            let der = tst_info_with(&accuracy);
            let e = tst_info(&der).expect_err("accuracy out of range");
            assert!(e.contains("invalid accuracy"), "{e}");
        }
    }

    #[test]
    fn nonce_is_the_integer_after_accuracy_and_ordering() {
        let accuracy = [0x30, 0x03, 0x02, 0x01, 0x01];
        let ordering = [0x01, 0x01, 0xff];
        let nonce = [0x02, 0x03, 0x00, 0x9a, 0x42];
        let tsa = [0xa0, 0x02, 0x30, 0x00];

        let mut tail = accuracy.to_vec();
        tail.extend_from_slice(&ordering);
        tail.extend_from_slice(&nonce);
        tail.extend_from_slice(&tsa);
        let info = tst_info(&tst_info_with(&tail)).expect("parses");
        assert_eq!(info.nonce.as_deref(), Some(&[0x00, 0x9a, 0x42][..]));
        assert_eq!(info.accuracy, (1, 0, 0));

        let mut tail = nonce.to_vec();
        tail.extend_from_slice(&tsa);
        let info = tst_info(&tst_info_with(&tail)).expect("parses");
        assert_eq!(info.nonce.as_deref(), Some(&[0x00, 0x9a, 0x42][..]));

        // The serial number is an INTEGER too, but never the nonce.
        let info = tst_info(&tst_info_with(&[])).expect("parses");
        assert_eq!(info.nonce, None);
        let mut tail = accuracy.to_vec();
        tail.extend_from_slice(&tsa);
        assert_eq!(tst_info(&tst_info_with(&tail)).expect("parses").nonce, None);
    }
}

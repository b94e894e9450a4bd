//! Distinguished names as notation shows them.
//!
//! notation prints and matches certificate subjects through Go's `pkix.Name.String()`,
//! which regroups the attributes it knows (C, ST, L, STREET, POSTALCODE, O, OU, CN,
//! SERIALNUMBER) into a fixed order and prints the sequence reversed:
//! `CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US`. Messages, `inspect` output and trusted
//! identity matching all use that string, so it is reproduced here exactly.

use const_oid::ObjectIdentifier;
use der::{Encode, Tag};
use x509_cert::name::Name;

/// One attribute of a DN as Go keeps it: its OID and, when the value is a string type,
/// the decoded text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type.
    pub oid: ObjectIdentifier,
    /// The decoded string value, or `None` for non-string values.
    pub text: Option<String>,
    /// The DER of the value as it appeared.
    pub raw_value_der: Vec<u8>,
}

const ARC: [u32; 3] = [2, 5, 4];

fn short_name(oid: &ObjectIdentifier) -> Option<(&'static str, u32)> {
    let arcs: Vec<u32> = oid.arcs().collect();
    if arcs.len() != 4 || arcs[..3] != ARC {
        return None;
    }
    let name = match arcs[3] {
        3 => "CN",
        5 => "SERIALNUMBER",
        6 => "C",
        7 => "L",
        8 => "ST",
        9 => "STREET",
        10 => "O",
        11 => "OU",
        17 => "POSTALCODE",
        _ => return None,
    };
    Some((name, arcs[3]))
}

/// Decode a DirectoryString-like value the way Go's `asn1.Unmarshal` into `interface{}`
/// yields a Go string.
fn decode_text(tag: Tag, value: &[u8]) -> Option<String> {
    match tag {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::NumericString => {
            String::from_utf8(value.to_vec()).ok()
        }
        // Go reads T61String bytes as ISO-8859-1.
        Tag::TeletexString => Some(value.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !value.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The attributes of `name`, RDN by RDN, in certificate order.
pub fn attributes(name: &Name) -> Vec<Attribute> {
    name.iter()
        .map(|atv| {
            let text = decode_text(der::Tagged::tag(&atv.value), atv.value.value());
            Attribute {
                oid: atv.oid,
                text,
                raw_value_der: atv.value.to_der().unwrap_or_default(),
            }
        })
        .collect()
}

/// Go's `pkix.Name` after `FillFromRDNSequence`: the known attributes grouped by type.
#[derive(Default)]
struct GoName {
    country: Vec<String>,
    province: Vec<String>,
    locality: Vec<String>,
    street: Vec<String>,
    postal_code: Vec<String>,
    organization: Vec<String>,
    organizational_unit: Vec<String>,
    common_name: String,
    serial_number: String,
    /// Attributes Go keeps only in `Names`, rendered first (so they print last).
    others: Vec<Attribute>,
}

/// Render `name` exactly as Go's `pkix.Name.String()` does.
pub fn go_string(name: &Name) -> String {
    let mut go = GoName::default();
    for attribute in attributes(name) {
        let known = short_name(&attribute.oid);
        match (known, &attribute.text) {
            (Some((_, arc)), Some(text)) => match arc {
                3 => go.common_name = text.clone(),
                5 => go.serial_number = text.clone(),
                6 => go.country.push(text.clone()),
                7 => go.locality.push(text.clone()),
                8 => go.province.push(text.clone()),
                9 => go.street.push(text.clone()),
                10 => go.organization.push(text.clone()),
                11 => go.organizational_unit.push(text.clone()),
                17 => go.postal_code.push(text.clone()),
                _ => go.others.push(attribute),
            },
            // A known type with a non-string value is dropped by Go's Name parsing.
            (Some(_), None) => {}
            (None, _) => go.others.push(attribute),
        }
    }

    // RDNs in Go's order; `String()` prints them reversed.
    let mut rdns: Vec<Vec<String>> = Vec::new();
    for attribute in &go.others {
        rdns.push(vec![render_other(attribute)]);
    }
    let groups: [(&str, &Vec<String>); 7] = [
        ("C", &go.country),
        ("ST", &go.province),
        ("L", &go.locality),
        ("STREET", &go.street),
        ("POSTALCODE", &go.postal_code),
        ("O", &go.organization),
        ("OU", &go.organizational_unit),
    ];
    for (key, values) in groups {
        if !values.is_empty() {
            rdns.push(
                values
                    .iter()
                    .map(|v| format!("{key}={}", escape_value(v)))
                    .collect(),
            );
        }
    }
    if !go.common_name.is_empty() {
        rdns.push(vec![format!("CN={}", escape_value(&go.common_name))]);
    }
    if !go.serial_number.is_empty() {
        rdns.push(vec![format!(
            "SERIALNUMBER={}",
            escape_value(&go.serial_number)
        )]);
    }
    rdns.iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An attribute Go has no short name for: `1.2.3=#<hex of the DER Go re-encodes>`.
fn render_other(attribute: &Attribute) -> String {
    let der = match &attribute.text {
        // Go re-marshals a string as PrintableString when it can, else UTF8String.
        Some(text) => {
            let tag: u8 = if text.bytes().all(is_printable) {
                0x13
            } else {
                0x0c
            };
            let mut out = vec![tag];
            push_length(&mut out, text.len());
            out.extend_from_slice(text.as_bytes());
            out
        }
        None => attribute.raw_value_der.clone(),
    };
    format!("{}=#{}", attribute.oid, hex(&der))
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
        )
}

/// Go's escaping in `RDNSequence.String()`.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    #[test]
    fn go_order_and_escaping() {
        // RFC 4514 strings list the last RDN first.
        let name = Name::from_str("CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US").expect("dn");
        assert_eq!(go_string(&name), "CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US");
        let name = Name::from_str("C=AU,ST=Some-State,O=Internet Widgits Pty Ltd").expect("dn");
        assert_eq!(
            go_string(&name),
            "O=Internet Widgits Pty Ltd,ST=Some-State,C=AU"
        );
        let name = Name::from_str("CN=a\\, b,OU=y,OU=x,O=o").expect("dn");
        assert_eq!(go_string(&name), "CN=a\\, b,OU=x+OU=y,O=o");
    }
}

//! BER → DER length normalisation for timestamp tokens.
//!
//! Some TSAs emit CMS with non-minimal (but definite) lengths. notation normalises the
//! lengths before parsing and rejects indefinite lengths; so does this pass, with the same
//! messages (`asn1: syntax error: decoding BER length octets: ...`).

/// Deepest nesting accepted (real tokens nest about ten levels).
const MAX_DEPTH: usize = 64;

fn syntax(msg: impl core::fmt::Display) -> String {
    format!("asn1: syntax error: {msg}")
}

fn structure(msg: impl core::fmt::Display) -> String {
    format!("asn1: structure error: {msg}")
}

/// One decoded TLV header: identifier bytes, content start, content length.
struct Tlv<'a> {
    identifier: &'a [u8],
    content: &'a [u8],
    /// Total bytes consumed (header + content).
    consumed: usize,
}

fn read_tlv(data: &[u8]) -> Result<Tlv<'_>, String> {
    if data.is_empty() {
        return Err(syntax(
            "decoding BER identifier octets: identifier octets is empty",
        ));
    }
    let mut offset = 1;
    if data[0] & 0x1f == 0x1f {
        loop {
            let Some(&b) = data.get(offset) else {
                return Err(syntax(
                    "decoding BER identifier octets: high-tag-number form with early EOF",
                ));
            };
            offset += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    if offset >= data.len() {
        return Err(syntax(
            "decoding BER identifier octets: early EOF due to missing length and content octets",
        ));
    }
    let identifier = &data[..offset];
    let first = data[offset];
    offset += 1;
    let remaining = |offset: usize| data.len().saturating_sub(offset);
    let length = if first < 0x80 {
        let length = usize::from(first);
        if length > remaining(offset) {
            return Err(syntax(
                "decoding BER length octets: short form length octets value should be less or equal to the subsequent octets length",
            ));
        }
        length
    } else if first == 0x80 {
        return Err(structure(
            "decoding BER length octets: indefinite length not supported",
        ));
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return Err(structure(format!(
                "decoding BER length octets: length of encoded data ({n} bytes) cannot exceed 4 bytes"
            )));
        }
        if offset + n >= data.len() {
            return Err(syntax(
                "decoding BER length octets: long form length octets with early EOF",
            ));
        }
        let mut length: u64 = 0;
        for &b in &data[offset..offset + n] {
            length = (length << 8) | u64::from(b);
        }
        offset += n;
        if length >= 1 << 31 {
            return Err(structure(format!(
                "decoding BER length octets: length {length} does not fit the memory space of int32"
            )));
        }
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > remaining(offset) {
            return Err(syntax(
                "decoding BER length octets: long form length octets value should be less or equal to the subsequent octets length",
            ));
        }
        length
    };
    Ok(Tlv {
        identifier,
        content: &data[offset..offset + length],
        consumed: offset + length,
    })
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

fn convert(tlv: &Tlv<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(syntax("decoding BER: nesting too deep"));
    }
    out.extend_from_slice(tlv.identifier);
    if tlv.identifier[0] & 0x20 == 0 {
        push_length(out, tlv.content.len());
        out.extend_from_slice(tlv.content);
        return Ok(());
    }
    let mut inner = Vec::with_capacity(tlv.content.len());
    let mut rest = tlv.content;
    while !rest.is_empty() {
        let child = read_tlv(rest)?;
        convert(&child, depth + 1, &mut inner)?;
        rest = &rest[child.consumed..];
    }
    push_length(out, inner.len());
    out.extend_from_slice(&inner);
    Ok(())
}

/// Re-encode `ber` with minimal definite lengths; the input must be exactly one value.
pub fn to_der(ber: &[u8]) -> Result<Vec<u8>, String> {
    if ber.is_empty() {
        return Err(syntax("BER-encoded ASN.1 data structures is empty"));
    }
    let top = read_tlv(ber)?;
    if top.consumed != ber.len() {
        return Err(syntax(format!(
            "decoding BER: length octets value {} does not match with content length {}",
            top.content.len(),
            ber.len() - (top.consumed - top.content.len())
        )));
    }
    let mut out = Vec::with_capacity(ber.len());
    convert(&top, 0, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::to_der;

    #[test]
    fn normalises_lengths() {
        // SEQUENCE with a long-form length of 3 around an INTEGER 5.
        assert_eq!(
            to_der(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x05]).expect("ber"),
            vec![0x30, 0x03, 0x02, 0x01, 0x05]
        );
    }

    #[test]
    fn rejects_like_notation() {
        let e = to_der(&[0x30, 0x80, 0x00, 0x00]).expect_err("indefinite");
        assert!(e.contains("indefinite length not supported"));
        let e = to_der(&[0x30, 0x05, 0x02]).expect_err("short");
        assert!(e.ends_with(
            "short form length octets value should be less or equal to the subsequent octets length"
        ));
        assert!(to_der(&[]).is_err());
        let deep = vec![0x30; 200];
        assert!(to_der(&deep).is_err());
    }
}

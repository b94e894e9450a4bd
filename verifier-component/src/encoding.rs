//! Base64 and JSON decoding that behave like the Go standard library notation uses.
//!
//! Envelopes are untrusted input, and notation's messages point at the exact byte that
//! is wrong (`illegal base64 data at input byte 242`); these decoders report the same
//! offsets and accept the same inputs (`\r` and `\n` skipped, non-zero trailing bits
//! accepted), so that a signature accepted or rejected by notation is treated alike here.

use serde_json::{Map, Value};

/// Which alphabet and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64 {
    /// `base64.StdEncoding`: `+/`, `=` padding required.
    Std,
    /// `base64.RawURLEncoding`: `-_`, no padding.
    RawUrl,
}

/// Go's `CorruptInputError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal base64 data at input byte {0}")]
pub struct CorruptInput(pub usize);

const fn decode_char(kind: Base64, c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' if matches!(kind, Base64::Std) => Some(62),
        b'/' if matches!(kind, Base64::Std) => Some(63),
        b'-' if matches!(kind, Base64::RawUrl) => Some(62),
        b'_' if matches!(kind, Base64::RawUrl) => Some(63),
        _ => None,
    }
}

/// `decode_char` as a table, `INVALID` where it says `None`.
const fn decode_table(kind: Base64) -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = decode_char(kind, c as u8) {
            table[c] = v;
        }
        c += 1;
    }
    table
}

const INVALID: u8 = 0xff;
static STD_TABLE: [u8; 256] = decode_table(Base64::Std);
static RAW_URL_TABLE: [u8; 256] = decode_table(Base64::RawUrl);

/// Decode like Go's `Encoding.DecodeString`.
///
/// Whole quanta of four alphabet characters are decoded by table, which is what nearly
/// all of an envelope is; the last quantum, and everything from the first line break,
/// padding or bad character on, goes through Go's quantum-by-quantum loop, which gives
/// the same result for those quanta (`tests::table_path_decides_as_go_loop`).
pub fn decode_base64(kind: Base64, src: &[u8]) -> Result<Vec<u8>, CorruptInput> {
    let table = match kind {
        Base64::Std => &STD_TABLE,
        Base64::RawUrl => &RAW_URL_TABLE,
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3 + 3);
    let mut si = 0usize;
    // Stop while more than one quantum is left, so the final one takes Go's path.
    for quantum in src[..src.len().saturating_sub(1)].chunks_exact(4) {
        let [a, b, c, d] =
            [quantum[0], quantum[1], quantum[2], quantum[3]].map(|x| table[usize::from(x)]);
        // Values are below 64; `INVALID` has the top bits set.
        if (a | b | c | d) & 0xc0 != 0 {
            break;
        }
        let val = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out.extend_from_slice(&val.to_be_bytes()[1..]);
        si += 4;
    }
    decode_base64_go(kind, src, si, out)
}

/// Go's decoding loop, from quantum boundary `si` of `src`, appending to `out`.
fn decode_base64_go(
    kind: Base64,
    src: &[u8],
    mut si: usize,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, CorruptInput> {
    let padded = kind == Base64::Std;
    loop {
        let mut buf = [0u8; 4];
        let mut dlen = 4usize;
        let mut j = 0usize;
        let mut end = false;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                if j == 1 || padded {
                    return Err(CorruptInput(si - j));
                }
                dlen = j;
                end = true;
                break;
            }
            let c = src[si];
            si += 1;
            if let Some(v) = decode_char(kind, c) {
                buf[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if !(padded && c == b'=') {
                return Err(CorruptInput(si - 1));
            }
            match j {
                0 | 1 => return Err(CorruptInput(si - 1)),
                2 => {
                    while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(CorruptInput(src.len()));
                    }
                    if src[si] != b'=' {
                        return Err(CorruptInput(si - 1));
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                si += 1;
            }
            if si < src.len() {
                return Err(CorruptInput(si));
            }
            dlen = j;
            end = true;
            break;
        }
        let val = (u32::from(buf[0]) << 18)
            | (u32::from(buf[1]) << 12)
            | (u32::from(buf[2]) << 6)
            | u32::from(buf[3]);
        let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
        out.extend_from_slice(&bytes[..dlen.saturating_sub(1)]);
        if end {
            return Ok(out);
        }
    }
}

/// Encode without padding, URL alphabet (JWS).
pub fn encode_base64url(data: &[u8]) -> String {
    <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(data)
}

/// Encode with padding, standard alphabet (JSON `[]byte`, `x5c`).
pub fn encode_base64(data: &[u8]) -> String {
    <base64ct::Base64 as base64ct::Encoding>::encode_string(data)
}

/// The value Go's `encoding/json` assigns to struct field `name`: keys match ignoring
/// case, and the last matching key wins.
pub fn go_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let lower = name.to_lowercase();
    let mut found = None;
    for (key, value) in object {
        if key == name || key.to_lowercase() == lower {
            found = Some(value);
        }
    }
    found
}

/// The name Go gives a JSON value's type in `UnmarshalTypeError`.
pub fn go_json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parse the first JSON value of `bytes`, requiring nothing after it but whitespace
/// (`json.Unmarshal`). The error text follows Go's where it matters to users.
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Value>(bytes).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_owned()
        } else {
            format!("invalid JSON: {e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs from an alphabet of every kind of character the loop treats apart, of
    /// every length to 23, decide alike on the table path and on Go's loop alone.
    #[test]
    fn table_path_decides_as_go_loop() {
        let alphabet = b"AZaz09+/-_=\n\r.";
        let mut checked = 0;
        for kind in [Base64::Std, Base64::RawUrl] {
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for len in 0..24 {
                for round in 0..400 {
                    let input: Vec<u8> = (0..len)
                        .map(|i| {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            // Mostly valid characters, so that long valid runs occur.
                            let pick = if round % 2 == 0 && i % 7 != 3 {
                                8
                            } else {
                                alphabet.len()
                            };
                            alphabet[(state % pick as u64) as usize]
                        })
                        .collect();
                    assert_eq!(
                        decode_base64(kind, &input),
                        decode_base64_go(kind, &input, 0, Vec::new()),
                        "{kind:?} {:?}",
                        String::from_utf8_lossy(&input)
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2 * 24 * 400);
    }

    #[test]
    fn reports_go_offsets() {
        assert_eq!(decode_base64(Base64::RawUrl, b"aGk").expect("ok"), b"hi");
        assert_eq!(
            decode_base64(Base64::RawUrl, b"aGk=").expect_err("pad"),
            CorruptInput(3)
        );
        assert_eq!(decode_base64(Base64::Std, b"aGk=").expect("ok"), b"hi");
        assert_eq!(
            decode_base64(Base64::Std, b"aGk").expect_err("short"),
            CorruptInput(0)
        );
        assert_eq!(
            decode_base64(Base64::Std, b"a").expect_err("short"),
            CorruptInput(0)
        );
        assert_eq!(
            decode_base64(Base64::RawUrl, b"a").expect_err("short"),
            CorruptInput(0)
        );
        assert_eq!(
            decode_base64(Base64::Std, b"aG\nk=").expect("newline"),
            b"hi"
        );
        assert_eq!(
            decode_base64(Base64::Std, b"aGk=x").expect_err("trail"),
            CorruptInput(4)
        );
        assert_eq!(
            decode_base64(Base64::RawUrl, b"a+b").expect_err("alphabet"),
            CorruptInput(1)
        );
    }
}

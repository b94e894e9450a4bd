//! Trusted identities (`trust-store-trust-policy.md` §Trusted Identities Constraints):
//! `x509.subject:` distinguished names, RFC 4514 parsing with escapes, the mandatory
//! C / ST (or S) / O attributes, and the subset match against the signing certificate.

use std::collections::BTreeMap;

use crate::x509::Cert;

/// A parsed `x509.subject` DN: attribute type → value (`S` is recorded as `ST`).
pub type DistinguishedName = BTreeMap<String, String>;

/// Why a DN is not acceptable as a trusted identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// `=#` hex values are not supported.
    #[error(
        "unsupported distinguished name (DN) {0:?}: notation does not support x509.subject identities containing \"=#\""
    )]
    HexValue(String),
    /// RFC 4514 syntax error.
    #[error(
        "parsing distinguished name (DN) {dn:?} failed with err: {reason}. A valid DN must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514 standard"
    )]
    Syntax {
        /// The DN as written.
        dn: String,
        /// What is wrong.
        reason: String,
    },
    /// An RDN with several attributes (`OU=a+CN=b`).
    #[error(
        "distinguished name (DN) {0:?} has multi-valued RDN attributes, remove multi-valued RDN attributes as they are not supported"
    )]
    MultiValued(String),
    /// The same attribute twice.
    #[error(
        "distinguished name (DN) {dn:?} has duplicate RDN attribute for {attribute:?}, DN can only have unique RDN attributes"
    )]
    Duplicate {
        /// The DN as written.
        dn: String,
        /// The repeated attribute type.
        attribute: String,
    },
    /// C, ST/S or O is missing.
    #[error(
        "distinguished name (DN) {dn:?} has no mandatory RDN attribute for {attribute:?}, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
    )]
    Mandatory {
        /// The DN as written.
        dn: String,
        /// The missing attribute type.
        attribute: &'static str,
    },
}

/// One `type=value` pair of an RDN.
type Pair = (String, String);

/// Split an RFC 4514 string into RDNs of pairs, decoding escapes and trimming unescaped
/// spaces around types and values.
fn parse_rdns(dn: &str) -> Result<Vec<Vec<Pair>>, String> {
    let mut rdns: Vec<Vec<Pair>> = Vec::new();
    let mut current: Vec<Pair> = Vec::new();
    let mut attr_type = String::new();
    let mut value: Vec<u8> = Vec::new();
    // Length of `value` up to its last escaped byte: escaped trailing spaces are kept.
    let mut value_keep = 0usize;
    let mut in_value = false;
    let bytes = dn.as_bytes();
    let mut i = 0;
    let finish_pair = |attr_type: &mut String,
                       value: &mut Vec<u8>,
                       value_keep: &mut usize,
                       current: &mut Vec<Pair>|
     -> Result<(), String> {
        let name = attr_type.trim().to_owned();
        if name.is_empty() {
            return Err("incomplete type, value pair".to_owned());
        }
        let mut end = value.len();
        while end > *value_keep && value[end - 1] == b' ' {
            end -= 1;
        }
        let text = String::from_utf8(value[..end].to_vec())
            .map_err(|_| "failed to decode escaped character: invalid UTF-8".to_owned())?;
        current.push((name, text));
        attr_type.clear();
        value.clear();
        *value_keep = 0;
        Ok(())
    };
    while i < bytes.len() {
        let c = bytes[i];
        if !in_value {
            match c {
                b'=' => {
                    in_value = true;
                    // Leading unescaped spaces of the value are dropped.
                    while i + 1 < bytes.len() && bytes[i + 1] == b' ' {
                        i += 1;
                    }
                }
                b',' | b';' | b'+' => return Err("incomplete type, value pair".to_owned()),
                _ => attr_type.push(char::from(c)),
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                let next = *bytes
                    .get(i + 1)
                    .ok_or_else(|| "got corrupted escaped character".to_owned())?;
                if b" \"#+,;<=>\\".contains(&next) {
                    value.push(next);
                    i += 2;
                } else {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| core::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            "failed to decode escaped character: encoding/hex: invalid byte"
                                .to_owned()
                        })?;
                    value.push(hex);
                    i += 3;
                }
                value_keep = value.len();
            }
            b',' | b';' | b'+' => {
                finish_pair(&mut attr_type, &mut value, &mut value_keep, &mut current)?;
                in_value = false;
                if c != b'+' {
                    rdns.push(core::mem::take(&mut current));
                }
                i += 1;
            }
            _ => {
                value.push(c);
                i += 1;
            }
        }
    }
    if in_value {
        finish_pair(&mut attr_type, &mut value, &mut value_keep, &mut current)?;
        rdns.push(current);
    } else if !attr_type.trim().is_empty() || !rdns.is_empty() || !current.is_empty() {
        return Err("DN ended with incomplete type, value pair".to_owned());
    }
    Ok(rdns)
}

/// Parse a trusted identity's DN (the text after `x509.subject:`), as notation does.
pub fn parse_distinguished_name(dn: &str) -> Result<DistinguishedName, DnError> {
    if dn.contains("=#") {
        return Err(DnError::HexValue(dn.to_owned()));
    }
    let rdns = parse_rdns(dn).map_err(|reason| DnError::Syntax {
        dn: dn.to_owned(),
        reason,
    })?;
    let mut map = DistinguishedName::new();
    for rdn in rdns {
        if rdn.len() > 1 {
            return Err(DnError::MultiValued(dn.to_owned()));
        }
        for (attr_type, value) in rdn {
            let attr_type = if attr_type == "S" {
                "ST".to_owned()
            } else {
                attr_type
            };
            if map.get(&attr_type).is_some_and(|v| !v.is_empty()) {
                return Err(DnError::Duplicate {
                    dn: dn.to_owned(),
                    attribute: attr_type,
                });
            }
            map.insert(attr_type, value);
        }
    }
    for attribute in ["C", "ST", "O"] {
        if map.get(attribute).is_none_or(|v| v.is_empty()) {
            return Err(DnError::Mandatory {
                dn: dn.to_owned(),
                attribute,
            });
        }
    }
    Ok(map)
}

/// Whether every attribute of `subset` has the same value in `superset`.
pub fn is_subset(subset: &DistinguishedName, superset: &DistinguishedName) -> bool {
    subset
        .iter()
        .all(|(k, v)| superset.get(k).map(String::as_str).unwrap_or("") == v)
}

/// The leaf certificate's subject as a DN for matching.
///
/// notation parses Go's `pkix.Name.String()` of the subject with the same DN parser. That
/// string renders attributes Go has no short name for as `1.2.3=#hex`, which the parser
/// rejects, so notation can never match a certificate whose subject carries, say, an
/// e-mail address. We follow the specification instead ("match with the value of
/// corresponding attributes"): such attributes are left out before parsing, since no
/// trusted identity can name them anyway. See README §Deviations.
pub fn certificate_subject(cert: &Cert) -> Result<DistinguishedName, DnError> {
    let filtered = strip_unnamed_attributes(&cert.subject);
    parse_distinguished_name(&filtered)
}

/// Remove `oid=#hex` RDNs from a Go-rendered DN. Such RDNs never contain an escaped or
/// unescaped comma (hex has none), so splitting on unescaped commas is exact.
fn strip_unnamed_attributes(dn: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                current.push(c);
                escaped = true;
            }
            ',' => parts.push(core::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .filter(|p| !p.contains("=#"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(pairs: &[(&str, &str)]) -> DistinguishedName {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_rfc4514_with_escapes() {
        let parsed =
            parse_distinguished_name("C=US,ST=WA,O=My \"special\" Org \\, \\; \\\\ others")
                .expect("valid");
        assert_eq!(parsed["O"], "My \"special\" Org , ; \\ others");
        let parsed = parse_distinguished_name("C=US,ST=WA,O=  My.  Org").expect("valid");
        assert_eq!(parsed["O"], "My.  Org");
        let parsed = parse_distinguished_name("C=US, S=WA, O=x\\20").expect("valid");
        assert_eq!(parsed, dn(&[("C", "US"), ("ST", "WA"), ("O", "x ")]));
    }

    #[test]
    fn rejects_what_notation_rejects() {
        let err = |s: &str| parse_distinguished_name(s).expect_err(s).to_string();
        assert!(err(",,,").contains("failed with err: incomplete type, value pair"));
        assert!(err("C=US,C=IN").contains("has duplicate RDN attribute for \"C\""));
        assert!(err(" CN=e2e,O=Notary,L=Seattle,ST=WA").contains(
            "distinguished name (DN) \" CN=e2e,O=Notary,L=Seattle,ST=WA\" has no mandatory RDN attribute for \"C\""
        ));
        assert!(err("C=US,ST=WA,O=a+OU=b").contains("multi-valued"));
        assert!(err("C=US,ST=WA,O=#04").contains("=#"));
        assert!(err("C=US,ST=WA,O=x,").contains("DN ended with incomplete type, value pair"));
    }

    #[test]
    fn subset_is_exact_per_attribute() {
        let small = dn(&[("C", "US"), ("ST", "WA"), ("O", "MyOrg")]);
        let big = dn(&[("C", "US"), ("ST", "WA"), ("O", "MyOrg"), ("X", "Y")]);
        assert!(is_subset(&small, &big));
        assert!(!is_subset(&big, &small));
        assert!(!is_subset(&dn(&[("O", "myorg")]), &big));
    }

    #[test]
    fn unnamed_attributes_are_ignored_for_matching() {
        assert_eq!(
            strip_unnamed_attributes("CN=a\\,b,O=x,ST=y,C=z,1.2.840.113549.1.9.1=#0c0161"),
            "CN=a\\,b,O=x,ST=y,C=z"
        );
    }
}

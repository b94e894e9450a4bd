//! Certificate requirements (`signature-specification.md` §Certificate Requirements) for
//! code-signing chains (the envelope's `x5c` / `x5chain`) and timestamping chains (the
//! RFC 3161 token's), as ordered chains leaf → root.
//!
//! The checks and their order follow notation (`ValidateCodeSigningCertChain`,
//! `ValidateTimestampingCertChain`) so that messages match. One deliberate difference:
//! the specification forbids `anyExtendedKeyUsage` on a code-signing leaf, which notation
//! no longer checks; we do (README §Deviations).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE, ID_KP_CLIENT_AUTH, ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING,
    ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use x509_cert::ext::pkix::KeyUsages;

use crate::quote::Q;
use crate::signature::{Curve, KeySpec, PublicKey};
use crate::time::Instant;
use crate::x509::Cert;

/// Longest certificate chain accepted in an envelope or timestamp token.
pub const MAX_CHAIN_LENGTH: usize = 16;

/// Which kind of chain is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The signing chain of an envelope.
    CodeSigning,
    /// The chain of a timestamp countersignature.
    Timestamping,
}

/// A certificate requirement a chain breaks; the text is notation's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequirementError(pub String);

fn err(text: String) -> RequirementError {
    RequirementError(text)
}

/// Validate an ordered chain (leaf first). With `signing_time`, every certificate must
/// be valid at that time (used when signing).
pub fn validate_chain(
    chain: &[Cert],
    purpose: Purpose,
    signing_time: Option<Instant>,
) -> Result<(), RequirementError> {
    if chain.is_empty() {
        return Err(err(
            "certificate chain must contain at least one certificate".to_owned(),
        ));
    }
    if chain.len() > MAX_CHAIN_LENGTH {
        return Err(err(format!(
            "certificate chain has {} certificates, more than the limit of {MAX_CHAIN_LENGTH}",
            chain.len()
        )));
    }
    if chain.len() == 1 {
        let cert = &chain[0];
        extensions_handled(cert)?;
        if let Err(e) = cert.verifies_with_own_key() {
            return Err(err(format!(
                "invalid self-signed certificate. subject: {}. Error: {e}",
                Q(&cert.subject)
            )));
        }
        if !cert.is_self_issued() {
            return Err(err(format!(
                "invalid self-signed certificate. subject: {}. Error: issuer({}) and subject({}) are not the same",
                Q(&cert.subject),
                cert.issuer,
                cert.subject
            )));
        }
        signing_time_check(cert, signing_time)?;
        return leaf(cert, purpose)
            .map_err(|e| err(format!("invalid self-signed certificate. Error: {e}")));
    }
    for cert in chain {
        extensions_handled(cert)?;
    }
    let last = chain.len() - 1;
    for (i, cert) in chain.iter().enumerate() {
        signing_time_check(cert, signing_time)?;
        if i == last {
            match cert.is_self_signed() {
                Err(e) => {
                    return Err(err(format!(
                        "root certificate with subject {} is invalid or not self-signed. Certificate chain must end with a valid self-signed root certificate. Error: {e}",
                        Q(&cert.subject)
                    )));
                }
                Ok(false) => {
                    return Err(err(format!(
                        "root certificate with subject {} is not self-signed. Certificate chain must end with a valid self-signed root certificate",
                        Q(&cert.subject)
                    )));
                }
                Ok(true) => {}
            }
        } else {
            if cert.is_self_signed() == Ok(true) {
                let role = if i == 0 { "leaf" } else { "intermediate" };
                return Err(err(format!(
                    "{role} certificate with subject {} is self-signed. Certificate chain must not contain self-signed {role} certificate",
                    Q(&cert.subject)
                )));
            }
            let parent = &chain[i + 1];
            if let Err(e) = cert.check_signature_from(parent) {
                return Err(err(format!(
                    "invalid certificates or certificate with subject {} is not issued by {}. Error: {e}",
                    Q(&cert.subject),
                    Q(&parent.subject)
                )));
            }
            if parent.subject_der() != cert.issuer_der() {
                return Err(err(format!(
                    "certificate with subject {} is not issued by {}",
                    Q(&cert.subject),
                    Q(&parent.subject)
                )));
            }
        }
        if i == 0 {
            leaf(cert, purpose)?;
        } else {
            ca(cert, purpose, i - 1)?;
        }
    }
    Ok(())
}

/// A critical extension nothing here understands, or name constraints (not honoured
/// here), make the certificate unusable rather than silently ignored.
fn extensions_handled(cert: &Cert) -> Result<(), RequirementError> {
    if let Some(id) = cert.unhandled_critical.first() {
        return Err(err(format!(
            "certificate with subject {} has an unhandled critical extension {id}",
            Q(&cert.subject)
        )));
    }
    if cert.name_constraints {
        return Err(err(format!(
            "certificate with subject {} has name constraints, which are not supported",
            Q(&cert.subject)
        )));
    }
    Ok(())
}

fn signing_time_check(cert: &Cert, signing_time: Option<Instant>) -> Result<(), RequirementError> {
    let Some(time) = signing_time else {
        return Ok(());
    };
    if time < cert.not_before || time > cert.not_after {
        return Err(err(format!(
            "certificate with subject {} was invalid at signing time of {}. Certificate is valid from [{}] to [{}]",
            Q(&cert.subject),
            go_time_string(time.utc()),
            go_time_string(cert.not_before),
            go_time_string(cert.not_after)
        )));
    }
    Ok(())
}

/// Go's `time.Time.String()` for a UTC time: `2000-09-17 14:09:10 +0000 UTC`.
fn go_time_string(t: Instant) -> String {
    let rfc = t.utc().rfc3339();
    format!("{} {} +0000 UTC", &rfc[..10], &rfc[11..19])
}

fn key_usage_present(cert: &Cert, purpose: Purpose) -> Result<(), RequirementError> {
    match cert.key_usage {
        None => Err(err(format!(
            "certificate with subject {}: key usage extension must be present",
            Q(&cert.subject)
        ))),
        Some(ku) if purpose == Purpose::CodeSigning && !ku.critical => Err(err(format!(
            "certificate with subject {}: key usage extension must be marked critical",
            Q(&cert.subject)
        ))),
        Some(_) => Ok(()),
    }
}

fn ca(cert: &Cert, purpose: Purpose, expected_path_len: usize) -> Result<(), RequirementError> {
    let Some(bc) = cert.basic_constraints.filter(|bc| bc.ca) else {
        return Err(err(format!(
            "certificate with subject {}: ca field in basic constraints must be present, critical, and set to true",
            Q(&cert.subject)
        )));
    };
    if let Some(path_len) = bc.path_len
        && usize::from(path_len) < expected_path_len
    {
        return Err(err(format!(
            "certificate with subject {}: expected path length of {expected_path_len} but certificate has path length {path_len} instead",
            Q(&cert.subject)
        )));
    }
    key_usage_present(cert, purpose)?;
    if !cert
        .key_usage
        .is_some_and(|ku| ku.has(KeyUsages::KeyCertSign))
    {
        return Err(err(format!(
            "certificate with subject {}: key usage must have the bit positions for key cert sign set",
            Q(&cert.subject)
        )));
    }
    Ok(())
}

fn leaf(cert: &Cert, purpose: Purpose) -> Result<(), RequirementError> {
    if cert.basic_constraints.is_some_and(|bc| bc.ca) {
        return Err(err(format!(
            "certificate with subject {}: if the basic constraints extension is present, the ca field must be set to false",
            Q(&cert.subject)
        )));
    }
    key_usage_present(cert, purpose)?;
    leaf_key_usage(cert)?;
    match purpose {
        Purpose::CodeSigning => code_signing_eku(cert)?,
        Purpose::Timestamping => timestamping_eku(cert)?,
    }
    leaf_key(cert)
}

fn leaf_key_usage(cert: &Cert) -> Result<(), RequirementError> {
    let Some(ku) = cert.key_usage else {
        return Ok(());
    };
    if !ku.has(KeyUsages::DigitalSignature) {
        return Err(err(format!(
            "the certificate with subject {} is invalid. The key usage must have the bit positions for \"Digital Signature\" set",
            Q(&cert.subject)
        )));
    }
    let forbidden = [
        (KeyUsages::KeyEncipherment, "KeyEncipherment"),
        (KeyUsages::DataEncipherment, "DataEncipherment"),
        (KeyUsages::KeyAgreement, "KeyAgreement"),
        (KeyUsages::KeyCertSign, "CertSign"),
        (KeyUsages::CRLSign, "CRLSign"),
        (KeyUsages::EncipherOnly, "EncipherOnly"),
        (KeyUsages::DecipherOnly, "DecipherOnly"),
    ];
    let found: Vec<String> = forbidden
        .iter()
        .filter(|(bit, _)| ku.has(*bit))
        .map(|(_, name)| format!("{name:?}"))
        .collect();
    if !found.is_empty() {
        return Err(err(format!(
            "the certificate with subject {} is invalid. The key usage must be \"Digital Signature\" only, but found {}",
            Q(&cert.subject),
            found.join(", ")
        )));
    }
    Ok(())
}

fn code_signing_eku(cert: &Cert) -> Result<(), RequirementError> {
    let Some(eku) = &cert.ext_key_usage else {
        return Ok(());
    };
    let names: [(ObjectIdentifier, &str); 6] = [
        (ID_KP_SERVER_AUTH, "ServerAuth"),
        (ID_KP_CLIENT_AUTH, "ClientAuth"),
        (ID_KP_EMAIL_PROTECTION, "EmailProtection"),
        (ID_KP_TIME_STAMPING, "Timestamping"),
        (ID_KP_OCSP_SIGNING, "OCSPSigning"),
        (ANY_EXTENDED_KEY_USAGE, "Any"),
    ];
    for purpose in &eku.purposes {
        if let Some((_, name)) = names.iter().find(|(oid, _)| oid == purpose) {
            return Err(err(format!(
                "certificate with subject {}: extended key usage must not contain {name} eku",
                Q(&cert.subject)
            )));
        }
    }
    Ok(())
}

fn timestamping_eku(cert: &Cert) -> Result<(), RequirementError> {
    let only_timestamping = cert
        .ext_key_usage
        .as_ref()
        .is_some_and(|eku| eku.purposes.as_slice() == [ID_KP_TIME_STAMPING]);
    if !only_timestamping {
        return Err(err(format!(
            "timestamp signing certificate with subject {} must have and only have Timestamping as extended key usage",
            Q(&cert.subject)
        )));
    }
    if !cert.ext_key_usage.as_ref().is_some_and(|eku| eku.critical) {
        return Err(err(format!(
            "timestamp signing certificate with subject {} must have extended key usage extension marked as critical",
            Q(&cert.subject)
        )));
    }
    Ok(())
}

fn leaf_key(cert: &Cert) -> Result<(), RequirementError> {
    key_spec(cert).map(|_| ()).map_err(|e| {
        err(format!(
            "certificate with subject {}: {e}",
            Q(&cert.subject)
        ))
    })
}

/// The signing key's type and size, if the specification allows it (notation's
/// `ExtractKeySpec`). RSA sizes are the modulus length in whole bytes × 8.
pub fn key_spec(cert: &Cert) -> Result<KeySpec, String> {
    match &cert.public_key {
        Ok(key) => {
            let spec = key.spec();
            match (key, spec) {
                (PublicKey::Rsa(_), KeySpec::Rsa(bits)) => {
                    let bits = bits.div_ceil(8) * 8;
                    if matches!(bits, 2048 | 3072 | 4096) {
                        Ok(KeySpec::Rsa(bits))
                    } else {
                        Err(format!("rsa key size {bits} bits is not supported"))
                    }
                }
                (_, KeySpec::Ec(curve)) => Ok(KeySpec::Ec(curve)),
                _ => Err("unsupported public key type".to_owned()),
            }
        }
        Err(e) if e.starts_with("unsupported elliptic curve") => {
            Err(format!("ecdsa key size is not supported ({e})"))
        }
        Err(_) => Err("unsupported public key type".to_owned()),
    }
}

/// Whether every certificate is valid at `time`.
pub fn chain_valid_at(chain: &[Cert], time: Instant) -> bool {
    chain.iter().all(|c| c.is_valid_at(time))
}

/// The curve for a key spec, if EC.
pub fn curve(spec: KeySpec) -> Option<Curve> {
    match spec {
        KeySpec::Ec(c) => Some(c),
        KeySpec::Rsa(_) => None,
    }
}

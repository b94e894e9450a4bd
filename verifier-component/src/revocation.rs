//! Revocation (`trust-store-trust-policy.md` §Certificate Revocation Evaluation), as a
//! seam: evidence comes from the host, the verifier never fetches.
//!
//! A certificate without OCSP or CRL locations is "non-revokable" and passes, as the
//! specification says. OCSP responses and CRLs are accepted as input but not interpreted
//! yet, so a certificate that names such locations gets the explicit result "not
//! checked", reported as revocation status unknown — a failure wherever revocation is
//! enforced, a logged warning where it is logged, never a silent pass. A host that
//! established a certificate's status itself can assert it ([`Evidence::Asserted`]); the
//! result then names the host's stated source.

use serde::{Deserialize, Serialize};

use crate::quote::Q;
use crate::x509::Cert;

/// Revocation status of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked,
    /// Could not be determined.
    Unknown,
}

/// Evidence the host hands in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// A DER OCSP response (not interpreted yet).
    OcspResponse(Vec<u8>),
    /// A DER CRL (not interpreted yet).
    Crl(Vec<u8>),
    /// A status the host vouches for, by certificate SHA-256.
    Asserted {
        /// Lower-case hex SHA-256 of the certificate DER.
        certificate_sha256: String,
        /// The status.
        status: Status,
        /// How the host established it.
        source: String,
    },
}

/// Whose chain is checked: the wording of notation's messages differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainPurpose {
    /// The signing chain.
    CodeSigning,
    /// A timestamp token's chain.
    Timestamping,
}

impl ChainPurpose {
    fn noun(self) -> &'static str {
        match self {
            Self::CodeSigning => "signing",
            Self::Timestamping => "timestamping",
        }
    }
}

/// Per-certificate result.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CertResult {
    /// No OCSP/CRL location, or the root.
    NonRevokable,
    /// Established by the host.
    Asserted(Status, String),
    /// Has locations, but no usable evidence.
    NotChecked,
}

/// Evaluate `chain` (leaf first). `Ok` carries a note on how it passed.
pub fn check_chain(
    chain: &[Cert],
    evidence: &[Evidence],
    purpose: ChainPurpose,
) -> Result<String, String> {
    let results: Vec<CertResult> = chain
        .iter()
        .enumerate()
        .map(|(i, cert)| {
            if i + 1 == chain.len() || (cert.ocsp_urls.is_empty() && cert.crl_urls.is_empty()) {
                return CertResult::NonRevokable;
            }
            evidence
                .iter()
                .find_map(|e| match e {
                    Evidence::Asserted {
                        certificate_sha256,
                        status,
                        source,
                    } if certificate_sha256.eq_ignore_ascii_case(&cert.sha256) => {
                        Some(CertResult::Asserted(*status, source.clone()))
                    }
                    _ => None,
                })
                .unwrap_or(CertResult::NotChecked)
        })
        .collect();
    // notation reports the leaf-most problem, and a revocation before an unknown.
    let revoked = results
        .iter()
        .position(|r| matches!(r, CertResult::Asserted(Status::Revoked, _)));
    if let Some(i) = revoked {
        return Err(format!(
            "{} certificate with subject {} is revoked",
            purpose.noun(),
            Q(&chain[i].subject)
        ));
    }
    if let Some(i) = results.iter().position(|r| {
        matches!(
            r,
            CertResult::NotChecked | CertResult::Asserted(Status::Unknown, _)
        )
    }) {
        let cert = &chain[i];
        let reason = match &results[i] {
            CertResult::Asserted(_, source) => format!("the host reported unknown ({source})"),
            _ => {
                let mut places = Vec::new();
                if !cert.ocsp_urls.is_empty() {
                    places.push(format!("OCSP {}", cert.ocsp_urls.join(", ")));
                }
                if !cert.crl_urls.is_empty() {
                    places.push(format!("CRL {}", cert.crl_urls.join(", ")));
                }
                format!(
                    "not checked: this verifier does not evaluate OCSP responses or CRLs yet ({})",
                    places.join("; ")
                )
            }
        };
        return Err(format!(
            "{} certificate with subject {} revocation status is unknown: {reason}",
            purpose.noun(),
            Q(&cert.subject)
        ));
    }
    let asserted: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            CertResult::Asserted(Status::Good, source) => Some(source.clone()),
            _ => None,
        })
        .collect();
    if asserted.is_empty() {
        Ok("no certificate names OCSP or CRL locations (non-revokable)".to_owned())
    } else {
        Ok(format!(
            "not revoked, as asserted by the host ({})",
            asserted.join("; ")
        ))
    }
}

/// The OCSP and CRL locations of a chain, for a host that fetches evidence.
pub fn endpoints(chain: &[Cert]) -> Vec<(String, Vec<String>, Vec<String>)> {
    chain
        .iter()
        .filter(|c| !c.ocsp_urls.is_empty() || !c.crl_urls.is_empty())
        .map(|c| (c.sha256.clone(), c.ocsp_urls.clone(), c.crl_urls.clone()))
        .collect()
}

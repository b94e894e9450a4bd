//! Certificate revocation evaluation (`trust-store-trust-policy.md` §Certificate
//! Revocation Evaluation): OCSP first, CRLs when OCSP gives no answer, for every
//! certificate of a chain but its root.
//!
//! The verifier never fetches. A host asks which evidence a verification would read
//! ([`crate::verify::revocation_needs`]: OCSP requests and CRL locations, only for chains
//! that already passed integrity and authenticity), fetches exactly that, and hands the
//! answers back as [`Evidence`] — responses, CRLs, and what failed (so a message can name
//! what was tried). A certificate that names locations but has no usable evidence is
//! `unknown`: a failure where revocation is enforced, a warning where it is logged, never
//! a pass.

pub mod crl;
pub mod ocsp;

use std::cell::RefCell;

use const_oid::ObjectIdentifier;
use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::CrlReason;

use crate::outcome::Passed;
use crate::quote::Q;
use crate::time::Instant;
use crate::x509::Cert;

/// `invalidityDate` (RFC 5280 §5.3.2), a CRL entry and OCSP single extension.
pub(crate) const INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");

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
    /// A DER OCSP response, as the responder at `url` returned it.
    Ocsp {
        /// The responder URL it came from.
        url: String,
        /// DER `OCSPResponse`.
        response: Vec<u8>,
    },
    /// A DER CRL fetched from (or cached for) `url`.
    Crl {
        /// The distribution point (or `freshestCRL`) URL.
        url: String,
        /// DER `CertificateList`.
        crl: Vec<u8>,
    },
    /// A location the host tried without getting an answer.
    Unavailable {
        /// The URL.
        url: String,
        /// What happened (HTTP status, timeout, size limit…).
        reason: String,
    },
    /// A status the host vouches for, by certificate SHA-256. Only for callers that
    /// established a status some other way (the conformance harness, whose reference
    /// checked online); the outcome names the source.
    Asserted {
        /// Lower-case hex SHA-256 of the certificate DER.
        certificate_sha256: String,
        /// The status.
        status: Status,
        /// How the host established it.
        source: String,
    },
}

impl Evidence {
    fn url(&self) -> Option<&str> {
        match self {
            Self::Ocsp { url, .. } | Self::Crl { url, .. } | Self::Unavailable { url, .. } => {
                Some(url)
            }
            Self::Asserted { .. } => None,
        }
    }
}

/// How evidence is fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// POST (or GET, RFC 6960 appendix A) `ocsp_request` to each URL in order until one
    /// answers 200.
    Ocsp,
    /// GET every URL (each distribution point may hold a part of the CRL).
    Crl,
    /// GET a delta CRL: the URLs name one delta, the first that answers 200 serves.
    DeltaCrl,
}

/// Evidence a verification would read and the host has not handed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    /// The certificate it is for (lower-case hex SHA-256).
    pub certificate_sha256: String,
    /// Its subject, for messages.
    pub subject: String,
    /// What to fetch.
    pub method: Method,
    /// Where.
    pub urls: Vec<String>,
    /// The DER `OCSPRequest` to send ([`Method::Ocsp`]); empty otherwise.
    pub ocsp_request: Vec<u8>,
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

/// A chain's revocation check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// A certificate is revoked.
    #[error("{} certificate with subject {} is revoked: {detail}", purpose.noun(), Q(subject))]
    Revoked {
        /// Which chain.
        purpose: ChainPurpose,
        /// The certificate's subject.
        subject: String,
        /// Which source said so.
        detail: String,
    },
    /// A certificate's status could not be determined.
    #[error("{} certificate with subject {} revocation status is unknown: {detail}", purpose.noun(), Q(subject))]
    Unknown {
        /// Which chain.
        purpose: ChainPurpose,
        /// The certificate's subject.
        subject: String,
        /// What was tried.
        detail: String,
    },
}

/// What a chain is checked with.
pub struct Inputs<'a> {
    /// The host's evidence.
    pub evidence: &'a [Evidence],
    /// The verification time.
    pub time: Instant,
    /// When the signature was made, as far as an authentic source says (a verified
    /// timestamp's upper limit, or the authentic signing time): a revocation whose
    /// `invalidityDate` is later does not count against it.
    pub signing_time: Option<Instant>,
    /// Set when the caller only asks what evidence is missing.
    pub needs: Option<&'a RefCell<Vec<Need>>>,
}

/// Per-certificate result.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CertResult {
    /// No OCSP/CRL location, or the root.
    NonRevokable,
    /// Not revoked; how that was established.
    Good(String),
    /// Revoked; by which source.
    Revoked(String),
    /// Undetermined; what was tried.
    Unknown(String),
    /// Missing evidence was asked for (only when collecting needs).
    Pending,
}

pub(crate) fn reason_name(reason: CrlReason) -> &'static str {
    match reason {
        CrlReason::Unspecified => "unspecified",
        CrlReason::KeyCompromise => "keyCompromise",
        CrlReason::CaCompromise => "cACompromise",
        CrlReason::AffiliationChanged => "affiliationChanged",
        CrlReason::Superseded => "superseded",
        CrlReason::CessationOfOperation => "cessationOfOperation",
        CrlReason::CertificateHold => "certificateHold",
        CrlReason::RemoveFromCRL => "removeFromCRL",
        CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        CrlReason::AaCompromise => "aACompromise",
    }
}

/// Whether a revocation counts against a signature made at `signing_time`: not when
/// the key became invalid only after it (§Revocation Checking with OCSP/CRL).
fn revoked_before(signing_time: Option<Instant>, invalidity: Option<Instant>) -> bool {
    !matches!((signing_time, invalidity), (Some(s), Some(i)) if s < i)
}

fn describe(at: Instant, reason: Option<CrlReason>, invalidity: Option<Instant>) -> String {
    let mut text = ocsp::describe_revoked(at, reason);
    if let Some(i) = invalidity {
        text.push_str(&format!(", invalid since {}", i.rfc3339()));
    }
    text
}

impl Inputs<'_> {
    fn at<'e>(&'e self, url: &'e str) -> impl Iterator<Item = &'e Evidence> + 'e {
        self.evidence.iter().filter(move |e| e.url() == Some(url))
    }

    /// Record a need; `true` when the caller collects them.
    fn ask(&self, cert: &Cert, method: Method, urls: Vec<String>, ocsp_request: Vec<u8>) -> bool {
        let Some(needs) = self.needs else {
            return false;
        };
        let need = Need {
            certificate_sha256: cert.sha256.clone(),
            subject: cert.subject.clone(),
            method,
            urls,
            ocsp_request,
        };
        let mut needs = needs.borrow_mut();
        if !needs.contains(&need) {
            needs.push(need);
        }
        true
    }

    fn evaluate(&self, cert: &Cert, issuer: &Cert) -> CertResult {
        if cert.ocsp_urls.is_empty() && cert.crl_urls.is_empty() {
            return CertResult::NonRevokable;
        }
        if let Some(asserted) = self.evidence.iter().find_map(|e| match e {
            Evidence::Asserted {
                certificate_sha256,
                status,
                source,
            } if certificate_sha256.eq_ignore_ascii_case(&cert.sha256) => Some((*status, source)),
            _ => None,
        }) {
            return match asserted {
                (Status::Good, source) => {
                    CertResult::Good(format!("asserted by the host ({source})"))
                }
                (Status::Revoked, source) => {
                    CertResult::Revoked(format!("asserted by the host ({source})"))
                }
                (Status::Unknown, source) => {
                    CertResult::Unknown(format!("the host reported unknown ({source})"))
                }
            };
        }
        let mut tried = Vec::new();
        let has_crl_evidence = cert.crl_urls.iter().any(|u| self.at(u).next().is_some());
        if !cert.ocsp_urls.is_empty()
            && let Some(result) = self.by_ocsp(cert, issuer, &mut tried, has_crl_evidence)
        {
            return result;
        }
        if cert.crl_urls.is_empty() {
            return CertResult::Unknown(tried.join("; "));
        }
        self.by_crl(cert, issuer, tried)
    }

    /// `Some` when OCSP decides (or must be fetched first); `None` to fall back to CRLs.
    fn by_ocsp(
        &self,
        cert: &Cert,
        issuer: &Cert,
        tried: &mut Vec<String>,
        has_crl_evidence: bool,
    ) -> Option<CertResult> {
        let mut fetched = false;
        for url in &cert.ocsp_urls {
            for evidence in self.at(url) {
                fetched = true;
                match evidence {
                    Evidence::Ocsp { response, .. } => {
                        match ocsp::evaluate(response, cert, issuer, self.time) {
                            Ok(ocsp::Answer::Good) => {
                                return Some(CertResult::Good(format!("OCSP {url}: good")));
                            }
                            Ok(ocsp::Answer::Revoked {
                                at,
                                reason,
                                invalidity,
                            }) => {
                                let text = describe(at, reason, invalidity);
                                if revoked_before(self.signing_time, invalidity) {
                                    return Some(CertResult::Revoked(format!(
                                        "OCSP {url}: {text}"
                                    )));
                                }
                                return Some(CertResult::Good(format!(
                                    "OCSP {url}: {text}, after the signature was made"
                                )));
                            }
                            Ok(ocsp::Answer::Unknown) => tried.push(format!(
                                "OCSP {url}: the responder does not know the certificate"
                            )),
                            Err(e) => tried.push(format!("OCSP {url}: {e}")),
                        }
                    }
                    Evidence::Unavailable { reason, .. } => {
                        tried.push(format!("OCSP {url}: {reason}"));
                    }
                    Evidence::Crl { .. } => tried.push(format!("OCSP {url}: a CRL was given")),
                    Evidence::Asserted { .. } => {}
                }
            }
        }
        if fetched || has_crl_evidence {
            return None;
        }
        let request = issuer_request(cert, issuer);
        if self.ask(cert, Method::Ocsp, cert.ocsp_urls.clone(), request) {
            return Some(CertResult::Pending);
        }
        tried.push(format!(
            "no OCSP response was handed in for {}",
            cert.ocsp_urls.join(", ")
        ));
        None
    }

    fn by_crl(&self, cert: &Cert, issuer: &Cert, tried: Vec<String>) -> CertResult {
        let unknown = |mut tried: Vec<String>, why: String| {
            tried.push(why);
            CertResult::Unknown(tried.join("; "))
        };
        let missing: Vec<String> = cert
            .crl_urls
            .iter()
            .filter(|u| self.at(u).next().is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            if self.ask(cert, Method::Crl, missing.clone(), Vec::new()) {
                return CertResult::Pending;
            }
            return unknown(
                tried,
                format!("no CRL was handed in for {}", missing.join(", ")),
            );
        }
        for url in &cert.crl_urls {
            let (base, time_ok) = match self.base_crl(url, cert, issuer) {
                Ok(found) => found,
                Err(why) => return unknown(tried, format!("CRL {url}: {why}")),
            };
            let delta = if time_ok.is_ok() && !base.freshest_urls.is_empty() {
                match self.delta_crl(&base, cert, issuer) {
                    Ok(Some(delta)) => Some(delta),
                    Ok(None) => return CertResult::Pending,
                    Err(why) => return unknown(tried, format!("CRL {url}: {why}")),
                }
            } else {
                None
            };
            let listed = match base.status(cert, delta.as_ref(), self.signing_time) {
                Ok(listed) => listed,
                Err(e) => return unknown(tried, format!("CRL {url}: {e}")),
            };
            match (listed, time_ok) {
                // An expired CRL still proves a permanent revocation; a hold may since
                // have been lifted.
                (
                    crl::Listed::Revoked {
                        at,
                        reason,
                        invalidity,
                    },
                    time_ok,
                ) if time_ok.is_ok() || reason != Some(CrlReason::CertificateHold) => {
                    return CertResult::Revoked(format!(
                        "CRL {url}: {}",
                        describe(at, reason, invalidity)
                    ));
                }
                (_, Err(e)) => return unknown(tried, format!("CRL {url}: {e}")),
                (_, Ok(())) => {}
            }
        }
        CertResult::Good(format!("CRL {}: not listed", cert.crl_urls.join(", ")))
    }

    /// The base CRL at `url`, checked against `issuer`, and whether it is current.
    fn base_crl(
        &self,
        url: &str,
        cert: &Cert,
        issuer: &Cert,
    ) -> Result<(crl::Crl, Result<(), crl::CrlError>), String> {
        let mut errors = Vec::new();
        let mut stale = None;
        for evidence in self.at(url) {
            let der = match evidence {
                Evidence::Crl { crl, .. } => crl,
                Evidence::Unavailable { reason, .. } => {
                    errors.push(reason.clone());
                    continue;
                }
                _ => continue,
            };
            let checked = crl::Crl::parse(der).and_then(|base| {
                base.check_issuer(issuer)?;
                if base.is_delta() {
                    return Err(crl::CrlError::Kind(
                        "a delta CRL was found at a base CRL distribution point",
                    ));
                }
                base.check_scope(cert)?;
                Ok(base)
            });
            match checked {
                Ok(base) => match base.check_time(self.time) {
                    Ok(()) => return Ok((base, Ok(()))),
                    Err(e) => {
                        stale.get_or_insert((base, e));
                    }
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some((base, e)) = stale {
            return Ok((base, Err(e)));
        }
        Err(errors.join("; "))
    }

    /// The delta CRL of `base`: `Ok(None)` when it was asked for.
    fn delta_crl(
        &self,
        base: &crl::Crl,
        cert: &Cert,
        issuer: &Cert,
    ) -> Result<Option<crl::Crl>, String> {
        let fetched = base
            .freshest_urls
            .iter()
            .any(|u| self.at(u).next().is_some());
        if !fetched {
            if self.ask(
                cert,
                Method::DeltaCrl,
                base.freshest_urls.clone(),
                Vec::new(),
            ) {
                return Ok(None);
            }
            return Err(format!(
                "the delta CRL ({}) was not handed in",
                base.freshest_urls.join(", ")
            ));
        }
        let mut errors = Vec::new();
        for url in &base.freshest_urls {
            for evidence in self.at(url) {
                match evidence {
                    Evidence::Crl { crl, .. } => {
                        let checked = crl::Crl::parse(crl).and_then(|delta| {
                            delta.check_issuer(issuer)?;
                            delta.check_time(self.time)?;
                            base.check_delta(&delta)?;
                            Ok(delta)
                        });
                        match checked {
                            Ok(delta) => return Ok(Some(delta)),
                            Err(e) => errors.push(format!("delta CRL {url}: {e}")),
                        }
                    }
                    Evidence::Unavailable { reason, .. } => {
                        errors.push(format!("delta CRL {url}: {reason}"));
                    }
                    _ => {}
                }
            }
        }
        Err(errors.join("; "))
    }
}

fn issuer_request(cert: &Cert, issuer: &Cert) -> Vec<u8> {
    ocsp::request(cert, issuer).unwrap_or_default()
}

/// Evaluate `chain` (leaf first, each certificate issued by the next). `Ok` carries a
/// note on how it passed and, as notation-go#479 added for Quarkslab INFO-9, a warning
/// for each certificate below the root that names neither an OCSP nor a CRL location:
/// such a chain passes even `strict`, which the user should not learn only by reading
/// the certificates.
pub fn check_chain(
    chain: &[Cert],
    purpose: ChainPurpose,
    inputs: &Inputs<'_>,
) -> Result<Passed, RevocationError> {
    let results: Vec<CertResult> = chain
        .iter()
        .enumerate()
        .map(|(i, cert)| match chain.get(i + 1) {
            // The root is never revocation-checked.
            None => CertResult::NonRevokable,
            Some(issuer) => inputs.evaluate(cert, issuer),
        })
        .collect();
    if results.contains(&CertResult::Pending) {
        return Ok("evidence requested".to_owned().into());
    }
    // notation reports the leaf-most problem, and a revocation before an unknown.
    if let Some((i, detail)) = results.iter().enumerate().find_map(|(i, r)| match r {
        CertResult::Revoked(d) => Some((i, d)),
        _ => None,
    }) {
        return Err(RevocationError::Revoked {
            purpose,
            subject: chain[i].subject.clone(),
            detail: detail.clone(),
        });
    }
    if let Some((i, detail)) = results.iter().enumerate().find_map(|(i, r)| match r {
        CertResult::Unknown(d) => Some((i, d)),
        _ => None,
    }) {
        return Err(RevocationError::Unknown {
            purpose,
            subject: chain[i].subject.clone(),
            detail: detail.clone(),
        });
    }
    let good: Vec<String> = results
        .iter()
        .zip(chain)
        .filter_map(|(r, cert)| match r {
            CertResult::Good(how) => Some(format!("{}: {how}", Q(&cert.subject))),
            _ => None,
        })
        .collect();
    let note = if good.is_empty() {
        "no certificate names OCSP or CRL locations (non-revokable)".to_owned()
    } else {
        format!("not revoked ({})", good.join("; "))
    };
    // notation's words for the signing chain; the TSA's is named as such.
    let which = match purpose {
        ChainPurpose::CodeSigning => "chain",
        ChainPurpose::Timestamping => "timestamping chain",
    };
    let below_root = chain.len().saturating_sub(1);
    let warnings = results
        .iter()
        .zip(chain)
        .take(below_root)
        .enumerate()
        .filter(|(_, (r, _))| **r == CertResult::NonRevokable)
        .map(|(i, (_, cert))| {
            format!(
                "Certificate #{} in the {which} with subject {} neither has an OCSP nor a CRL revocation method.",
                i + 1,
                Q(&cert.subject)
            )
        })
        .collect();
    Ok(Passed { note, warnings })
}

/// The OCSP and CRL locations of a chain, for display.
pub fn endpoints(chain: &[Cert]) -> Vec<(String, Vec<String>, Vec<String>)> {
    chain
        .iter()
        .filter(|c| !c.ocsp_urls.is_empty() || !c.crl_urls.is_empty())
        .map(|c| (c.sha256.clone(), c.ocsp_urls.clone(), c.crl_urls.clone()))
        .collect()
}

//! CRLs (RFC 5280 §5), base and delta (`trust-store-trust-policy.md` §CRLs, §Revocation
//! Checking with CRL, §Revocation Checking with Delta CRLs), with x509-cert's types.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL,
};
use der::asn1::GeneralizedTime;
use der::{Decode, Encode};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl, KeyUsages};

use super::INVALIDITY_DATE;
use crate::signature::X509SignatureAlgorithm;
use crate::time::Instant;
use crate::x509::{Cert, tbs_range};

/// Largest CRL read (notation's limit).
pub const MAX_CRL_SIZE: usize = 32 * 1024 * 1024;

/// `issuingDistributionPoint` (RFC 5280 §5.2.5). x509-cert's `AssociatedOid` for it names
/// another OID, so the OID is spelled here.
const ISSUING_DISTRIBUTION_POINT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");
/// `certificateIssuer` (RFC 5280 §5.3.3): only in indirect CRLs.
const CERTIFICATE_ISSUER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.29");

/// How far an issuer's clock may run ahead of the verification time.
const CLOCK_SKEW_SECONDS: i128 = 5 * 60;

/// Why a CRL cannot decide a certificate's status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// Over [`MAX_CRL_SIZE`].
    #[error("CRL of {0} bytes exceeds the limit of {MAX_CRL_SIZE} bytes")]
    TooLarge(usize),
    /// Not a DER `CertificateList`.
    #[error("malformed CRL: {0}")]
    Malformed(String),
    /// Issued under another name than the certificate's issuer.
    #[error("CRL is issued by {crl:?}, not by the certificate's issuer {issuer:?}")]
    WrongIssuer {
        /// The CRL's issuer.
        crl: String,
        /// The certificate's issuer.
        issuer: String,
    },
    /// The issuer's key usage does not allow `cRLSign`.
    #[error("CRL issuer {0:?} is not allowed to sign CRLs (keyUsage without cRLSign)")]
    NoCrlSign(String),
    /// The signature does not verify with the issuer's key.
    #[error("CRL is not signed by CA {issuer:?}: {reason}")]
    Signature {
        /// The issuer's subject.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// No `nextUpdate`.
    #[error("CRL has no nextUpdate")]
    NoNextUpdate,
    /// `nextUpdate` has passed.
    #[error("expired CRL: nextUpdate {0} is before the verification time")]
    Expired(String),
    /// `thisUpdate` is in the future.
    #[error("CRL is not valid yet: thisUpdate {0} is after the verification time")]
    NotYetValid(String),
    /// A critical extension this verifier does not implement (RFC 5280 §5.2).
    #[error("unsupported critical extension found in CRL: {0}")]
    UnsupportedCritical(ObjectIdentifier),
    /// Scope this verifier does not evaluate.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The CRL does not cover this certificate.
    #[error("CRL does not cover this certificate: {0}")]
    OutOfScope(&'static str),
    /// A base CRL where a delta was expected, or the reverse.
    #[error("{0}")]
    Kind(&'static str),
    /// The delta CRL does not apply to the base CRL.
    #[error(
        "delta CRL number {delta} with base CRL number {delta_base} does not apply to base CRL number {base}"
    )]
    DeltaMismatch {
        /// The delta's `cRLNumber`.
        delta: String,
        /// The delta's `deltaCRLIndicator` (the base it extends).
        delta_base: String,
        /// The base CRL's `cRLNumber`.
        base: String,
    },
    /// A revoked entry cannot be read.
    #[error("invalid CRL entry: {0}")]
    Entry(String),
}

/// A parsed CRL, with the facts the evaluation reads.
#[derive(Clone, Debug)]
pub struct Crl {
    list: CertificateList,
    tbs: Vec<u8>,
    /// `thisUpdate`.
    pub this_update: Instant,
    /// `nextUpdate`.
    pub next_update: Option<Instant>,
    /// `cRLNumber`, big-endian without leading zeros.
    pub number: Option<Vec<u8>>,
    /// `deltaCRLIndicator`: the base CRL number this delta extends; `None` for a base CRL.
    pub delta_of: Option<Vec<u8>>,
    /// `freshestCRL` URLs: where the delta CRL of this base CRL is published.
    pub freshest_urls: Vec<String>,
    idp: Option<IssuingDistributionPoint>,
    unsupported_critical: Option<ObjectIdentifier>,
}

/// The status a CRL (with its delta) gives a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// Not listed, or released from hold.
    No,
    /// Listed: revoked.
    Revoked {
        /// `revocationDate`.
        at: Instant,
        /// `reasonCode`, if given.
        reason: Option<CrlReason>,
        /// `invalidityDate`, if given.
        invalidity: Option<Instant>,
    },
}

fn uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// Compare two unsigned big-endian integers without leading zeros.
fn cmp_uint(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Decimal rendering of a CRL number, for messages.
pub fn number_string(bytes: &[u8]) -> String {
    if bytes.len() <= 16 {
        let mut v: u128 = 0;
        for b in bytes {
            v = (v << 8) | u128::from(*b);
        }
        v.to_string()
    } else {
        format!("0x{}", crate::x509::name::hex(bytes))
    }
}

fn urls(points: &[x509_cert::ext::pkix::crl::dp::DistributionPoint]) -> Vec<String> {
    let mut out = Vec::new();
    for point in points {
        if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
            for name in names {
                if let GeneralName::UniformResourceIdentifier(uri) = name {
                    out.push(uri.to_string());
                }
            }
        }
    }
    out
}

impl Crl {
    /// Parse a DER CRL.
    pub fn parse(der: &[u8]) -> Result<Self, CrlError> {
        if der.len() > MAX_CRL_SIZE {
            return Err(CrlError::TooLarge(der.len()));
        }
        let list =
            CertificateList::from_der(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let (start, end) = tbs_range(der)
            .ok_or_else(|| CrlError::Malformed("cannot locate tbsCertList".into()))?;
        let tbs_list = &list.tbs_cert_list;
        let mut crl = Self {
            tbs: der[start..end].to_vec(),
            this_update: Instant::from(tbs_list.this_update.to_date_time()),
            next_update: tbs_list
                .next_update
                .map(|t| Instant::from(t.to_date_time())),
            number: None,
            delta_of: None,
            freshest_urls: Vec::new(),
            idp: None,
            unsupported_critical: None,
            list: list.clone(),
        };
        let invalid = |what: &str| CrlError::Malformed(format!("invalid {what} extension"));
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for ext in tbs_list.crl_extensions.iter().flatten() {
            if seen.contains(&ext.extn_id) {
                return Err(CrlError::Malformed("duplicate CRL extension".into()));
            }
            seen.push(ext.extn_id);
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                ID_CE_CRL_NUMBER => {
                    let n = CrlNumber::from_der(value).map_err(|_| invalid("cRLNumber"))?;
                    crl.number = Some(uint(n.0.as_bytes()));
                }
                ID_CE_DELTA_CRL_INDICATOR => {
                    let n =
                        BaseCrlNumber::from_der(value).map_err(|_| invalid("deltaCRLIndicator"))?;
                    crl.delta_of = Some(uint(n.0.as_bytes()));
                }
                ID_CE_FRESHEST_CRL => {
                    let f = FreshestCrl::from_der(value).map_err(|_| invalid("freshestCRL"))?;
                    crl.freshest_urls = urls(&f.0);
                }
                ISSUING_DISTRIBUTION_POINT => {
                    crl.idp = Some(
                        IssuingDistributionPoint::from_der(value)
                            .map_err(|_| invalid("issuingDistributionPoint"))?,
                    );
                }
                ID_CE_AUTHORITY_KEY_IDENTIFIER => {}
                other if ext.critical => {
                    crl.unsupported_critical.get_or_insert(other);
                }
                _ => {}
            }
        }
        Ok(crl)
    }

    /// Whether this is a delta CRL.
    pub fn is_delta(&self) -> bool {
        self.delta_of.is_some()
    }

    /// The issuer, in Go's `pkix.Name.String()` form.
    pub fn issuer(&self) -> String {
        crate::x509::name::go_string(&self.list.tbs_cert_list.issuer)
    }

    /// Check that `issuer` signed it with a key allowed to sign CRLs and that nothing in it
    /// is beyond this verifier. Time is checked separately ([`Self::check_time`]), since an
    /// expired CRL still proves a revocation.
    pub fn check_issuer(&self, issuer: &Cert) -> Result<(), CrlError> {
        let crl_issuer = self.list.tbs_cert_list.issuer.to_der().unwrap_or_default();
        if crl_issuer != issuer.subject_der() {
            return Err(CrlError::WrongIssuer {
                crl: self.issuer(),
                issuer: issuer.subject.clone(),
            });
        }
        if let Some(ku) = issuer.key_usage
            && !ku.has(KeyUsages::CRLSign)
        {
            return Err(CrlError::NoCrlSign(issuer.subject.clone()));
        }
        let signature = |reason: String| CrlError::Signature {
            issuer: issuer.subject.clone(),
            reason,
        };
        if self.list.signature_algorithm != self.list.tbs_cert_list.signature {
            return Err(signature(
                "the signature algorithm differs from the one in tbsCertList".into(),
            ));
        }
        let algorithm =
            X509SignatureAlgorithm::from_algorithm_identifier(&self.list.signature_algorithm, None)
                .map_err(|e| signature(e.to_string()))?;
        let key = issuer
            .public_key
            .as_ref()
            .map_err(|e| signature(e.clone()))?;
        algorithm
            .verify_remembered(
                "crl",
                issuer,
                key,
                &self.tbs,
                self.list.signature.raw_bytes(),
            )
            .map_err(|e| signature(e.to_string()))?;
        if let Some(oid) = self.unsupported_critical {
            return Err(CrlError::UnsupportedCritical(oid));
        }
        if let Some(idp) = &self.idp {
            if idp.indirect_crl {
                return Err(CrlError::Unsupported("indirect CRLs are not supported"));
            }
            if idp.only_some_reasons.is_some() {
                return Err(CrlError::Unsupported(
                    "CRLs partitioned by reason (onlySomeReasons) are not supported",
                ));
            }
        }
        Ok(())
    }

    /// `nextUpdate` present and not passed, `thisUpdate` not in the future.
    pub fn check_time(&self, time: Instant) -> Result<(), CrlError> {
        if self.this_update > time.add_nanos(CLOCK_SKEW_SECONDS * 1_000_000_000) {
            return Err(CrlError::NotYetValid(self.this_update.rfc3339()));
        }
        let next = self.next_update.ok_or(CrlError::NoNextUpdate)?;
        if time > next {
            return Err(CrlError::Expired(next.rfc3339()));
        }
        Ok(())
    }

    /// Whether the CRL's scope covers `cert` (`issuingDistributionPoint`).
    pub fn check_scope(&self, cert: &Cert) -> Result<(), CrlError> {
        if let Some(idp) = &self.idp {
            if idp.only_contains_user_certs && cert.is_ca() {
                return Err(CrlError::OutOfScope(
                    "it lists only end-entity certificates",
                ));
            }
            if idp.only_contains_ca_certs && !cert.is_ca() {
                return Err(CrlError::OutOfScope("it lists only CA certificates"));
            }
            if idp.only_contains_attribute_certs {
                return Err(CrlError::OutOfScope("it lists only attribute certificates"));
            }
        }
        Ok(())
    }

    /// Check that `delta` extends this base CRL: a delta, newer, over a base no newer
    /// than this one (RFC 5280 §5.2.4).
    pub fn check_delta(&self, delta: &Crl) -> Result<(), CrlError> {
        if self.is_delta() {
            return Err(CrlError::Kind(
                "a delta CRL was found where a base CRL was expected",
            ));
        }
        let Some(delta_base) = &delta.delta_of else {
            return Err(CrlError::Kind(
                "the CRL at the freshestCRL location is not a delta CRL",
            ));
        };
        let (Some(base_number), Some(delta_number)) = (&self.number, &delta.number) else {
            return Err(CrlError::Kind(
                "a base CRL and its delta CRL must both carry a cRLNumber",
            ));
        };
        let applies = cmp_uint(delta_number, base_number).is_gt()
            && cmp_uint(delta_base, base_number).is_le();
        if !applies {
            return Err(CrlError::DeltaMismatch {
                delta: number_string(delta_number),
                delta_base: number_string(delta_base),
                base: number_string(base_number),
            });
        }
        Ok(())
    }

    /// Whether `cert` is listed here and then in `delta`, and as what. A certificate on
    /// hold is revoked unless a later entry (`removeFromCRL`, in a delta) releases it;
    /// an entry whose `invalidityDate` is after `signing_time` is not held against a
    /// signature made before it (§Revocation Checking with CRL).
    pub fn status(
        &self,
        cert: &Cert,
        delta: Option<&Crl>,
        signing_time: Option<Instant>,
    ) -> Result<Listed, CrlError> {
        let serial = cert.parsed().tbs_certificate().serial_number();
        let mut temporary: Option<(Instant, CrlReason, Option<Instant>)> = None;
        for list in core::iter::once(self).chain(delta) {
            for entry in list
                .list
                .tbs_cert_list
                .revoked_certificates
                .iter()
                .flatten()
            {
                if entry.serial_number != *serial {
                    continue;
                }
                let at = Instant::from(entry.revocation_date.to_date_time());
                let (reason, invalidity) = entry_extensions(entry)?;
                if let (Some(signed), Some(invalid)) = (signing_time, invalidity)
                    && signed < invalid
                {
                    continue;
                }
                match reason {
                    Some(r @ (CrlReason::CertificateHold | CrlReason::RemoveFromCRL)) => {
                        if temporary.is_none_or(|(t, _, _)| t <= at) {
                            temporary = Some((at, r, invalidity));
                        }
                    }
                    _ => {
                        return Ok(Listed::Revoked {
                            at,
                            reason,
                            invalidity,
                        });
                    }
                }
            }
        }
        Ok(match temporary {
            Some((at, CrlReason::CertificateHold, invalidity)) => Listed::Revoked {
                at,
                reason: Some(CrlReason::CertificateHold),
                invalidity,
            },
            _ => Listed::No,
        })
    }
}

fn entry_extensions(
    entry: &x509_cert::crl::RevokedCert,
) -> Result<(Option<CrlReason>, Option<Instant>), CrlError> {
    let mut reason = None;
    let mut invalidity = None;
    for ext in entry.crl_entry_extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            ID_CE_CRL_REASONS => {
                reason = Some(
                    CrlReason::from_der(value)
                        .map_err(|e| CrlError::Entry(format!("reasonCode: {e}")))?,
                );
            }
            INVALIDITY_DATE => {
                let t = GeneralizedTime::from_der(value)
                    .map_err(|e| CrlError::Entry(format!("invalidityDate: {e}")))?;
                invalidity = Some(Instant::from(t.to_date_time()));
            }
            CERTIFICATE_ISSUER if ext.critical => {
                return Err(CrlError::Unsupported(
                    "indirect CRL entries (certificateIssuer) are not supported",
                ));
            }
            other if ext.critical => return Err(CrlError::UnsupportedCritical(other)),
            _ => {}
        }
    }
    Ok((reason, invalidity))
}

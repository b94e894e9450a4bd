//! A parsed X.509 certificate with the facts the Notary Project rules look at.
//!
//! Parsing is done once (`x509-cert`); the requirement checks in [`crate::certificate`]
//! and the chain rules in [`crate::chain`] then read plain fields. The raw
//! `tbsCertificate` bytes are kept as they were received, so signature checks never
//! depend on a re-encoding.

pub(crate) mod memo;
pub mod name;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_AD_OCSP, ID_CE_BASIC_CONSTRAINTS, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE,
    ID_CE_KEY_USAGE, ID_PE_AUTHORITY_INFO_ACCESS,
};
use der::asn1::AnyRef;
use der::{Decode, Encode, Reader, SliceReader};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage,
    KeyUsages,
};

use crate::signature::PublicKey;
use crate::time::Instant;

/// Largest certificate accepted (DER bytes). Real code-signing certificates are a few KiB.
pub const MAX_CERTIFICATE_SIZE: usize = 64 * 1024;

/// Why bytes are not a usable certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateParseError {
    /// The DER does not decode as an X.509 certificate.
    #[error("x509: malformed certificate: {0}")]
    Malformed(String),
    /// The certificate is larger than [`MAX_CERTIFICATE_SIZE`].
    #[error("x509: certificate of {0} bytes exceeds the limit of {MAX_CERTIFICATE_SIZE} bytes")]
    TooLarge(usize),
    /// An extension appears twice.
    #[error("x509: certificate contains duplicate extensions")]
    DuplicateExtension,
    /// A known extension does not decode.
    #[error("x509: invalid {0} extension")]
    InvalidExtension(&'static str),
    /// `signatureAlgorithm` differs from `tbsCertificate.signature` (as Go refuses).
    #[error("x509: inner and outer signature algorithm identifiers don't match")]
    SignatureAlgorithmMismatch,
}

/// `nameConstraints` (RFC 5280 4.2.1.10).
const ID_CE_NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");

/// Extensions whose meaning the rules here take into account, or that constrain nothing
/// they check (names are not matched against a host, policies are not required), so a
/// critical one is not refused: basic constraints, key usage, extended key usage,
/// authority information access, CRL distribution points, subject and authority key
/// identifiers, subject alternative name and certificate policies.
const HANDLED_EXTENSIONS: &[&str] = &[
    "2.5.29.19",
    "2.5.29.15",
    "2.5.29.37",
    "1.3.6.1.5.5.7.1.1",
    "2.5.29.31",
    "2.5.29.14",
    "2.5.29.35",
    "2.5.29.17",
    "2.5.29.32",
];

/// `basicConstraints` as found in a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Constraints {
    /// Marked critical.
    pub critical: bool,
    /// `cA`.
    pub ca: bool,
    /// `pathLenConstraint`, if present.
    pub path_len: Option<u8>,
}

/// `keyUsage` as found in a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Marked critical.
    pub critical: bool,
    /// The usage bits.
    pub bits: KeyUsage,
}

impl Usage {
    /// Whether `bit` is set.
    pub fn has(&self, bit: KeyUsages) -> bool {
        self.bits.0.contains(bit)
    }
}

/// `extendedKeyUsage` as found in a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtUsage {
    /// Marked critical.
    pub critical: bool,
    /// The key purposes.
    pub purposes: Vec<ObjectIdentifier>,
}

/// A certificate from an envelope, a timestamp token or a trust store. Clones share one
/// parse ([`CertData`], read through `Deref`): a trust store or a chain handed out by the
/// parse memo costs a reference count, not a copy of every field.
#[derive(Clone)]
pub struct Cert(std::sync::Arc<CertData>);

impl std::ops::Deref for Cert {
    type Target = CertData;

    fn deref(&self) -> &CertData {
        &self.0
    }
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a [`Cert`] holds.
#[derive(Debug)]
pub struct CertData {
    der: Vec<u8>,
    tbs_range: (usize, usize),
    parsed: Certificate,
    /// Subject in Go's `pkix.Name.String()` form.
    pub subject: String,
    /// Issuer in Go's `pkix.Name.String()` form.
    pub issuer: String,
    /// `notBefore`.
    pub not_before: Instant,
    /// `notAfter`.
    pub not_after: Instant,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// The subject public key.
    pub public_key: Result<PublicKey, String>,
    /// `basicConstraints`.
    pub basic_constraints: Option<Constraints>,
    /// `keyUsage`.
    pub key_usage: Option<Usage>,
    /// `extendedKeyUsage`.
    pub ext_key_usage: Option<ExtUsage>,
    /// OCSP responder URLs from `authorityInfoAccess`.
    pub ocsp_urls: Vec<String>,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// Critical extensions the rules here do not handle (a chain holding one is refused,
    /// as RFC 5280 and Go require).
    pub unhandled_critical: Vec<String>,
    /// Whether it carries `nameConstraints`: not honoured here, so refused in a chain.
    pub name_constraints: bool,
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Cert {}

impl Cert {
    /// Parse one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateParseError> {
        if der.len() > MAX_CERTIFICATE_SIZE {
            return Err(CertificateParseError::TooLarge(der.len()));
        }
        let key = memo::key(memo::Input::Der, der);
        if let Some(cert) = key.and_then(memo::get).and_then(|mut c| c.pop()) {
            return Ok(cert);
        }
        let cert = Self::from_der_uncached(der)?;
        if let Some(key) = key {
            memo::put(key, std::slice::from_ref(&cert));
        }
        Ok(cert)
    }

    fn from_der_uncached(der: &[u8]) -> Result<Self, CertificateParseError> {
        let parsed = Certificate::from_der(der)
            .map_err(|e| CertificateParseError::Malformed(e.to_string()))?;
        let tbs_range = tbs_range(der).ok_or_else(|| {
            CertificateParseError::Malformed("cannot locate tbsCertificate".to_owned())
        })?;
        let tbs = parsed.tbs_certificate();
        if parsed.signature_algorithm() != tbs.signature() {
            return Err(CertificateParseError::SignatureAlgorithmMismatch);
        }
        let mut basic_constraints = None;
        let mut unhandled_critical = Vec::new();
        let mut name_constraints = false;
        let mut key_usage = None;
        let mut ext_key_usage = None;
        let mut ocsp_urls = Vec::new();
        let mut crl_urls = Vec::new();
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or_default() {
            if seen.contains(&ext.extn_id) {
                return Err(CertificateParseError::DuplicateExtension);
            }
            seen.push(ext.extn_id);
            let id = ext.extn_id.to_string();
            if ext.extn_id == ID_CE_NAME_CONSTRAINTS {
                name_constraints = true;
            } else if ext.critical && !HANDLED_EXTENSIONS.contains(&id.as_str()) {
                unhandled_critical.push(id);
            }
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                ID_CE_BASIC_CONSTRAINTS => {
                    let bc = BasicConstraints::from_der(value).map_err(|_| {
                        CertificateParseError::InvalidExtension("basic constraints")
                    })?;
                    basic_constraints = Some(Constraints {
                        critical: ext.critical,
                        ca: bc.ca,
                        path_len: bc.path_len_constraint,
                    });
                }
                ID_CE_KEY_USAGE => {
                    let ku = KeyUsage::from_der(value)
                        .map_err(|_| CertificateParseError::InvalidExtension("key usage"))?;
                    key_usage = Some(Usage {
                        critical: ext.critical,
                        bits: ku,
                    });
                }
                ID_CE_EXT_KEY_USAGE => {
                    let eku = ExtendedKeyUsage::from_der(value).map_err(|_| {
                        CertificateParseError::InvalidExtension("extended key usage")
                    })?;
                    ext_key_usage = Some(ExtUsage {
                        critical: ext.critical,
                        purposes: eku.0,
                    });
                }
                ID_PE_AUTHORITY_INFO_ACCESS => {
                    let aia = AuthorityInfoAccessSyntax::from_der(value).map_err(|_| {
                        CertificateParseError::InvalidExtension("authority information access")
                    })?;
                    for access in aia.0 {
                        if access.access_method == ID_AD_OCSP
                            && let GeneralName::UniformResourceIdentifier(uri) =
                                access.access_location
                        {
                            ocsp_urls.push(uri.to_string());
                        }
                    }
                }
                ID_CE_CRL_DISTRIBUTION_POINTS => {
                    let cdp = CrlDistributionPoints::from_der(value).map_err(|_| {
                        CertificateParseError::InvalidExtension("CRL distribution points")
                    })?;
                    for point in cdp.0 {
                        if let Some(DistributionPointName::FullName(names)) =
                            point.distribution_point
                        {
                            for name in names {
                                if let GeneralName::UniformResourceIdentifier(uri) = name {
                                    crl_urls.push(uri.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let public_key = PublicKey::from_spki(tbs.subject_public_key_info());
        let validity = tbs.validity();
        Ok(Self(std::sync::Arc::new(CertData {
            subject: name::go_string(tbs.subject()),
            issuer: name::go_string(tbs.issuer()),
            not_before: Instant::from(validity.not_before.to_date_time()),
            not_after: Instant::from(validity.not_after.to_date_time()),
            sha256: name::hex(&Sha256::digest(der)),
            public_key,
            basic_constraints,
            key_usage,
            ext_key_usage,
            ocsp_urls,
            crl_urls,
            unhandled_critical,
            name_constraints,
            der: der.to_vec(),
            tbs_range,
            parsed,
        })))
    }

    /// The DER encoding as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The `tbsCertificate` bytes as received: what the issuer signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs_range.0..self.tbs_range.1]
    }

    /// The decoded certificate.
    pub fn parsed(&self) -> &Certificate {
        &self.parsed
    }

    /// The signature algorithm OID in the outer certificate.
    pub fn signature_algorithm(&self) -> &spki::AlgorithmIdentifierOwned {
        self.parsed.signature_algorithm()
    }

    /// The issuer's signature over [`Self::tbs_der`].
    pub fn signature_bytes(&self) -> &[u8] {
        self.parsed.signature().raw_bytes()
    }

    /// Whether issuer and subject names are byte-identical (self-issued).
    pub fn is_self_issued(&self) -> bool {
        let tbs = self.parsed.tbs_certificate();
        tbs.issuer().to_der().ok() == tbs.subject().to_der().ok()
    }

    /// Whether `cA` is set in basicConstraints.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// notation's `isSelfSigned`: `CheckSignatureFrom(self)` succeeds and subject and
    /// issuer are the same bytes.
    pub fn is_self_signed(&self) -> Result<bool, String> {
        self.check_signature_from(self)?;
        Ok(self.is_self_issued())
    }

    /// Whether `instant` falls in `[notBefore, notAfter]`.
    pub fn is_valid_at(&self, instant: Instant) -> bool {
        instant >= self.not_before && instant <= self.not_after
    }

    /// The serial number bytes (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.parsed.tbs_certificate().serial_number().as_bytes()
    }

    /// The DER of the issuer name.
    pub fn issuer_der(&self) -> Vec<u8> {
        self.parsed
            .tbs_certificate()
            .issuer()
            .to_der()
            .unwrap_or_default()
    }

    /// The DER of the subject name.
    pub fn subject_der(&self) -> Vec<u8> {
        self.parsed
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }

    /// The subject's attributes, for trusted-identity matching.
    pub fn subject_attributes(&self) -> Vec<name::Attribute> {
        name::attributes(self.parsed.tbs_certificate().subject())
    }
}

/// Byte range of the first element inside the outer SEQUENCE.
pub(crate) fn tbs_range(der: &[u8]) -> Option<(usize, usize)> {
    let outer = AnyRef::from_der(der).ok()?;
    let content = outer.value();
    let mut reader = SliceReader::new(content).ok()?;
    let tbs = reader.tlv_bytes().ok()?;
    let start = content.as_ptr() as usize - der.as_ptr() as usize;
    Some((start, start + tbs.len()))
}

/// Read certificates from a PEM or DER file as notation accepts them: PEM blocks of type
/// `CERTIFICATE`, or else a concatenation of DER certificates.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Cert>, CertificateParseError> {
    let key = memo::key(memo::Input::Certificates, bytes);
    if let Some(certs) = key.and_then(memo::get) {
        return Ok(certs);
    }
    let certs = parse_certificates_uncached(bytes)?;
    if let Some(key) = key {
        memo::put(key, &certs);
    }
    Ok(certs)
}

fn parse_certificates_uncached(bytes: &[u8]) -> Result<Vec<Cert>, CertificateParseError> {
    if let Some(blocks) = pem_blocks(bytes) {
        let mut certs = Vec::new();
        for (label, der) in blocks {
            if label != "CERTIFICATE" {
                return Err(CertificateParseError::Malformed(format!(
                    "unexpected PEM block type {label:?}"
                )));
            }
            certs.push(Cert::from_der(&der)?);
        }
        return Ok(certs);
    }
    let mut certs = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = der_element_length(rest).ok_or_else(|| {
            CertificateParseError::Malformed("truncated or malformed DER".to_owned())
        })?;
        certs.push(Cert::from_der(&rest[..len])?);
        rest = &rest[len..];
    }
    Ok(certs)
}

/// Length of the first DER TLV in `bytes`.
fn der_element_length(bytes: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(bytes).ok()?;
    reader.tlv_bytes().ok().map(<[u8]>::len)
}

/// PEM blocks in `bytes`, or `None` when the data has no PEM block at all.
pub fn pem_blocks(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let text = core::str::from_utf8(bytes).ok()?;
    if !text.contains("-----BEGIN ") {
        return None;
    }
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----")?;
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let body_start = label_end + 5;
        let end = after[body_start..].find(&end_marker)? + body_start;
        let body: String = after[body_start..end]
            .lines()
            .filter(|l| !l.contains(':'))
            .collect::<Vec<_>>()
            .join("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = <base64ct::Base64 as base64ct::Encoding>::decode_vec(&body).ok()?;
        blocks.push((label, der));
        rest = &after[end + end_marker.len()..];
    }
    Some(blocks)
}

/// Encode `der` as a PEM `CERTIFICATE` block.
pub fn to_pem(der: &[u8]) -> String {
    let b64 = <base64ct::Base64 as base64ct::Encoding>::encode_string(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Go's `ConstraintViolationError`.
pub const CONSTRAINT_VIOLATION: &str =
    "x509: invalid signature: parent certificate cannot sign this kind of certificate";

impl Cert {
    /// Go's `CheckSignatureFrom`: `parent` must be allowed to sign certificates (a v3
    /// parent needs `cA`; a parent with keyUsage needs `keyCertSign`) and its key must
    /// verify this certificate's signature. SHA-1 signatures are rejected.
    pub fn check_signature_from(&self, parent: &Cert) -> Result<(), String> {
        match parent.basic_constraints {
            None if parent.is_v3() => return Err(CONSTRAINT_VIOLATION.to_owned()),
            Some(bc) if !bc.ca => return Err(CONSTRAINT_VIOLATION.to_owned()),
            _ => {}
        }
        if let Some(ku) = parent.key_usage
            && !ku.bits.0.is_empty()
            && !ku.has(KeyUsages::KeyCertSign)
        {
            return Err(CONSTRAINT_VIOLATION.to_owned());
        }
        crate::signature::verify_certificate_signature(self, parent).map_err(|e| e.to_string())
    }

    fn is_v3(&self) -> bool {
        self.parsed.tbs_certificate().version() == x509_cert::certificate::Version::V3
    }

    /// Go's `CheckSignature` with the certificate's own key: whether the certificate is
    /// signed by its own key (no CA requirement).
    pub fn verifies_with_own_key(&self) -> Result<(), String> {
        crate::signature::verify_certificate_signature(self, self).map_err(|e| e.to_string())
    }
}

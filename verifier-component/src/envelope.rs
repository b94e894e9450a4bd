//! Signature envelopes (`signature-specification.md` §Signature Envelope): JWS JSON
//! (`application/jose+json`) and COSE_Sign1 (`application/cose`), parsed into one
//! format-independent [`SignerInfo`].
//!
//! Parse, check, verify are separate steps: [`Envelope::parse`] reads the wire form,
//! [`Envelope::content`] checks the signed attributes and certificate chain (what
//! `inspect` needs), and [`Envelope::verify`] additionally checks the signature with the
//! leaf key.

pub mod cose;
pub mod jws;

use crate::certificate::{self, Purpose};
use crate::quote::Q;
use crate::signature::SignatureAlgorithm;
use crate::time::Instant;
use crate::x509::Cert;

/// `application/jose+json`
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// `application/cose`
pub const MEDIA_TYPE_COSE: &str = "application/cose";
/// `application/vnd.cncf.notary.payload.v1+json`, the only payload content type.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// Largest envelope accepted (notation's limit for signature blobs).
pub const MAX_ENVELOPE_SIZE: usize = 32 * 1024 * 1024;

/// Signed attribute names shared by both formats.
pub mod attr {
    /// `io.cncf.notary.signingScheme`
    pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
    /// `io.cncf.notary.signingTime`
    pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
    /// `io.cncf.notary.authenticSigningTime`
    pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
    /// `io.cncf.notary.expiry`
    pub const EXPIRY: &str = "io.cncf.notary.expiry";
    /// `io.cncf.notary.timestampSignature`
    pub const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
    /// `io.cncf.notary.signingAgent`
    pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
    /// `io.cncf.notary.verificationPlugin`
    pub const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
    /// `io.cncf.notary.verificationPluginMinVersion`
    pub const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
}

/// The two signing schemes (`signing-scheme.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SigningScheme {
    /// `notary.x509`: CA trust, optional RFC 3161 timestamp.
    #[serde(rename = "notary.x509")]
    X509,
    /// `notary.x509.signingAuthority`: signing-authority trust, authentic signing time.
    #[serde(rename = "notary.x509.signingAuthority")]
    X509SigningAuthority,
}

impl SigningScheme {
    /// The attribute value.
    pub fn name(self) -> &'static str {
        match self {
            Self::X509 => "notary.x509",
            Self::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    /// From the attribute value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "notary.x509" => Some(Self::X509),
            "notary.x509.signingAuthority" => Some(Self::X509SigningAuthority),
            _ => None,
        }
    }
}

/// A signed attribute outside the specification's standard set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtendedAttribute {
    /// Header name (COSE integer labels are written in decimal).
    pub key: String,
    /// Listed in `crit`.
    pub critical: bool,
    /// The value, as text (strings as they are, other values as JSON / CBOR diagnostic).
    pub value: String,
}

/// The format-independent content of an envelope.
#[derive(Clone, Debug)]
pub struct SignerInfo {
    /// Signing scheme.
    pub signing_scheme: SigningScheme,
    /// `signingTime` (notary.x509) or `authenticSigningTime` (signingAuthority).
    pub signing_time: Instant,
    /// `expiry`, if any.
    pub expiry: Option<Instant>,
    /// Extended signed attributes.
    pub extended_attributes: Vec<ExtendedAttribute>,
    /// `signingAgent`, if any.
    pub signing_agent: Option<String>,
    /// The RFC 3161 countersignature bytes, if any.
    pub timestamp_signature: Option<Vec<u8>>,
    /// The signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// The certificate chain, leaf first.
    pub certificate_chain: Vec<Cert>,
    /// The primitive signature value.
    pub signature: Vec<u8>,
}

impl SignerInfo {
    /// The authentic signing time, which only the signingAuthority scheme has.
    pub fn authentic_signing_time(&self) -> Option<Instant> {
        (self.signing_scheme == SigningScheme::X509SigningAuthority).then_some(self.signing_time)
    }

    /// The signing certificate.
    pub fn leaf(&self) -> &Cert {
        // `validate_content` guarantees a non-empty chain before a SignerInfo escapes.
        &self.certificate_chain[0]
    }
}

/// The signed payload and its declared content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// `cty` / COSE content type.
    pub content_type: String,
    /// The payload bytes.
    pub content: Vec<u8>,
}

/// What an envelope carries once checked.
#[derive(Clone, Debug)]
pub struct EnvelopeContent {
    /// Signed and unsigned attributes, chain, signature.
    pub signer_info: SignerInfo,
    /// The payload.
    pub payload: Payload,
}

/// Why an envelope is unusable. Every variant is an integrity failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// No parser for this media type.
    #[error("signature envelope format with media type {} is not supported", Q(.0))]
    UnsupportedFormat(String),
    /// Empty envelope.
    #[error("signature envelope is not present")]
    NotPresent,
    /// Larger than [`MAX_ENVELOPE_SIZE`].
    #[error("signature envelope of {0} bytes exceeds the limit of {MAX_ENVELOPE_SIZE} bytes")]
    TooLarge(usize),
    /// The envelope or its attributes are malformed.
    #[error("{0}")]
    Invalid(String),
    /// The signature does not verify.
    #[error("signature is invalid. Error: {0}")]
    Integrity(String),
}

/// A parsed envelope.
#[derive(Clone, Debug)]
pub enum Envelope {
    /// JWS JSON serialization.
    Jws(jws::JwsEnvelope),
    /// COSE_Sign1_Tagged.
    Cose(Box<cose::CoseEnvelope>),
}

impl Envelope {
    /// Parse `bytes` as the format named by `media_type` (exact match, as notation).
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_SIZE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        match media_type {
            MEDIA_TYPE_JWS => jws::JwsEnvelope::parse(bytes).map(Self::Jws),
            MEDIA_TYPE_COSE => cose::CoseEnvelope::parse(bytes).map(|e| Self::Cose(Box::new(e))),
            other => Err(EnvelopeError::UnsupportedFormat(other.to_owned())),
        }
    }

    /// The envelope media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Self::Jws(_) => MEDIA_TYPE_JWS,
            Self::Cose(_) => MEDIA_TYPE_COSE,
        }
    }

    /// Check the signature with the leaf key, then the content.
    pub fn verify(&self) -> Result<EnvelopeContent, EnvelopeError> {
        let content = match self {
            Self::Jws(e) => e.verify()?,
            Self::Cose(e) => e.verify()?,
        };
        validate_content(&content)?;
        Ok(content)
    }

    /// The content, checked but without verifying the signature (for `inspect`).
    pub fn content(&self) -> Result<EnvelopeContent, EnvelopeError> {
        let content = match self {
            Self::Jws(e) => e.content()?,
            Self::Cose(e) => e.content()?,
        };
        validate_content(&content)?;
        Ok(content)
    }
}

fn invalid(text: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid(text.into())
}

/// The checks both formats share: payload, signature, times, chain, algorithm.
fn validate_content(content: &EnvelopeContent) -> Result<(), EnvelopeError> {
    if content.payload.content.is_empty() {
        return Err(invalid("content not present"));
    }
    let si = &content.signer_info;
    if si.signature.is_empty() {
        return Err(invalid("signature not present or is empty"));
    }
    if let Some(expiry) = si.expiry
        && expiry <= si.signing_time
    {
        return Err(invalid("expiry cannot be equal or before the signing time"));
    }
    if si.certificate_chain.is_empty() {
        return Err(invalid("certificate-chain not present or is empty"));
    }
    certificate::validate_chain(&si.certificate_chain, Purpose::CodeSigning, None)
        .map_err(|e| invalid(format!("certificate-chain is invalid, {e}")))?;
    let spec = certificate::key_spec(si.leaf()).map_err(invalid)?;
    let derived = spec
        .signature_algorithm()
        .ok_or_else(|| invalid(format!("{} keys are not supported", spec.name())))?;
    if derived != si.algorithm {
        return Err(invalid(format!(
            "mismatch between signature algorithm derived from signing certificate ({}) and signing algorithm specified ({})",
            derived.notation_name(),
            si.algorithm.notation_name()
        )));
    }
    Ok(())
}

/// A time as notation's error messages show it.
pub fn time_missing() -> EnvelopeError {
    invalid("signing-time not present")
}

//! What verification reports: the decision, the applied policy statement, one result per
//! validation with its action, and what each candidate signature said. These types mirror
//! the WIT `types` interface one to one, so native and component outcomes compare byte
//! for byte once serialized.

use serde::{Deserialize, Serialize};

use crate::payload::Descriptor;
use crate::time::Instant;
use crate::trustpolicy::{Action, Actions, Check, Level, TrustPolicy, VerifyTimestamp};
use crate::x509::Cert;

/// The overall result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// A signature verified.
    Verified,
    /// The applicable statement's level is `skip`.
    Skipped,
    /// Verification failed.
    Failed,
}

/// Why verification failed, in the specification's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The trust policy document is invalid.
    TrustPolicy,
    /// No statement applies.
    NoApplicablePolicy,
    /// A named trust store could not be loaded.
    TrustStore,
    /// No signature was found.
    SignatureRetrieval,
    /// Integrity.
    Integrity,
    /// Authenticity.
    Authenticity,
    /// Authentic timestamp.
    AuthenticTimestamp,
    /// Expiry.
    Expiry,
    /// Revocation.
    Revocation,
    /// Required user metadata is missing.
    UserMetadata,
    /// The request itself is unusable.
    InvalidInput,
}

impl From<Check> for FailureKind {
    fn from(check: Check) -> Self {
        match check {
            Check::Integrity => Self::Integrity,
            Check::Authenticity => Self::Authenticity,
            Check::AuthenticTimestamp => Self::AuthenticTimestamp,
            Check::Expiry => Self::Expiry,
            Check::Revocation => Self::Revocation,
        }
    }
}

/// A failure and notation's message for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What failed.
    pub kind: FailureKind,
    /// Why.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The state of one validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationStatus {
    /// Performed and passed.
    Passed,
    /// Performed and failed.
    Failed,
    /// Not performed (action `skip`).
    Skipped,
}

/// One validation's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationResult {
    /// Which validation.
    pub check: Check,
    /// Its action under the applied policy.
    pub action: Action,
    /// What happened.
    pub status: ValidationStatus,
    /// Why it failed, or how it passed.
    pub message: Option<String>,
    /// What the user should hear about a validation that passed: notation's warnings,
    /// e.g. a certificate that names neither an OCSP nor a CRL location (Quarkslab INFO-9).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A validation that passed: a note on how, and its warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// How it passed.
    pub note: String,
    /// What the user should hear about it.
    pub warnings: Vec<String>,
}

impl From<String> for Passed {
    fn from(note: String) -> Self {
        Self {
            note,
            warnings: Vec::new(),
        }
    }
}

impl ValidationResult {
    /// Whether the failure was only logged.
    pub fn is_logged_failure(&self) -> bool {
        self.status == ValidationStatus::Failed && self.action == Action::Log
    }
}

/// A trust policy statement as applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPolicy {
    /// Statement name.
    pub statement: String,
    /// The level named.
    pub level: Level,
    /// Actions after overrides.
    pub actions: Actions,
    /// `verifyTimestamp`.
    pub verify_timestamp: VerifyTimestamp,
    /// `trustStores`.
    pub trust_stores: Vec<String>,
    /// `trustedIdentities`.
    pub trusted_identities: Vec<String>,
    /// `registryScopes`.
    pub registry_scopes: Vec<String>,
    /// `globalPolicy`.
    pub global_policy: bool,
}

impl From<&TrustPolicy> for AppliedPolicy {
    fn from(policy: &TrustPolicy) -> Self {
        Self {
            statement: policy.statement.name.clone(),
            level: policy.level,
            actions: policy.actions,
            verify_timestamp: policy.verify_timestamp,
            trust_stores: policy.statement.trust_stores.clone(),
            trusted_identities: policy.statement.trusted_identities.clone(),
            registry_scopes: policy.statement.registry_scopes.clone(),
            global_policy: policy.statement.global_policy,
        }
    }
}

/// A certificate, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSummary {
    /// Subject (Go `pkix.Name` form).
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// `notBefore`.
    pub not_before: Instant,
    /// `notAfter`.
    pub not_after: Instant,
    /// `cA` set.
    pub is_ca: bool,
    /// Key spec (`RSA-2048`, `EC-256`) or why it is unsupported.
    pub key: String,
    /// OCSP responders.
    pub ocsp_urls: Vec<String>,
    /// CRL distribution points.
    pub crl_urls: Vec<String>,
}

impl From<&Cert> for CertificateSummary {
    fn from(cert: &Cert) -> Self {
        Self {
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            sha256: cert.sha256.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            is_ca: cert.is_ca(),
            key: match &cert.public_key {
                Ok(key) => key.spec().name(),
                Err(e) => e.clone(),
            },
            ocsp_urls: cert.ocsp_urls.clone(),
            crl_urls: cert.crl_urls.clone(),
        }
    }
}

/// A verified-format timestamp range with the token's certificates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampRange {
    /// `genTime - accuracy`.
    pub lower: Instant,
    /// `genTime + accuracy`.
    pub upper: Instant,
    /// The token's certificates, in token order.
    pub certificates: Vec<CertificateSummary>,
}

/// The countersignature, or why it cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampInfo {
    /// It parsed and covers the signature.
    Range(TimestampRange),
    /// It did not.
    Error(String),
}

/// What an envelope says (notation's `inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeInfo {
    /// Envelope media type.
    pub media_type: String,
    /// `RSASSA-PSS-SHA-256`, ...
    pub signature_algorithm: String,
    /// Payload content type.
    pub content_type: String,
    /// Signing scheme.
    pub signing_scheme: String,
    /// `signingTime` (notary.x509).
    pub signing_time: Option<Instant>,
    /// `authenticSigningTime` (signingAuthority).
    pub authentic_signing_time: Option<Instant>,
    /// `expiry`.
    pub expiry: Option<Instant>,
    /// Extended signed attributes: key, value, critical.
    pub extended_attributes: Vec<(String, String, bool)>,
    /// `signingAgent`.
    pub signing_agent: Option<String>,
    /// The timestamp countersignature, if present.
    pub timestamp: Option<TimestampInfo>,
    /// The signing chain.
    pub certificates: Vec<CertificateSummary>,
    /// The payload's `targetArtifact`.
    pub payload: Descriptor,
    /// `sha256`, `sha384` or `sha512`: what the key implies for blob digests.
    pub digest_algorithm: String,
}

/// What happened to one candidate signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureOutcome {
    /// Position among the candidates.
    pub index: u32,
    /// Envelope media type.
    pub media_type: String,
    /// Signature manifest digest, if known.
    pub manifest_digest: Option<String>,
    /// Validations in the order they ran.
    pub results: Vec<ValidationResult>,
    /// Set when this signature failed.
    pub failure: Option<Failure>,
    /// Set when the envelope could be parsed.
    pub envelope: Option<EnvelopeInfo>,
}

impl SignatureOutcome {
    /// The failures that were only logged.
    pub fn logged_failures(&self) -> impl Iterator<Item = &ValidationResult> {
        self.results.iter().filter(|r| r.is_logged_failure())
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Verified, skipped or failed.
    pub decision: Decision,
    /// The statement that applied.
    pub policy: Option<AppliedPolicy>,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// Every signature tried.
    pub signatures: Vec<SignatureOutcome>,
    /// Which signature verified.
    pub verified_index: Option<u32>,
}

impl Outcome {
    /// A failure before any signature was read.
    pub fn failed(
        kind: FailureKind,
        message: impl Into<String>,
        policy: Option<AppliedPolicy>,
    ) -> Self {
        Self {
            decision: Decision::Failed,
            policy,
            failure: Some(Failure::new(kind, message)),
            signatures: Vec::new(),
            verified_index: None,
        }
    }

    /// The signature that verified.
    pub fn verified_signature(&self) -> Option<&SignatureOutcome> {
        let index = self.verified_index?;
        self.signatures.get(usize::try_from(index).ok()?)
    }

    /// Serialize as JSON (stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

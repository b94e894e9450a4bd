#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The verifier reads no clock, file or socket: time, policy, stores, envelopes and
// revocation evidence are inputs. Module names follow the specifications' nouns.

pub mod certificate;
pub mod chain;
pub mod encoding;
pub mod envelope;
pub mod inspect;
pub mod outcome;
pub mod payload;
pub mod plugin;
pub mod quote;
pub mod revocation;
pub mod signature;
pub mod time;
pub mod timestamp;
pub mod trustpolicy;
pub mod truststore;
pub mod verify;
pub mod x509;

#[cfg(feature = "sign")]
pub mod sign;

pub use envelope::{Envelope, EnvelopeContent, EnvelopeError, SignerInfo, SigningScheme};
pub use inspect::{check_generated, inspect};
pub use outcome::{
    AppliedPolicy, CertificateSummary, Decision, EnvelopeInfo, Failure, FailureKind, Outcome,
    SignatureOutcome, TimestampInfo, ValidationResult, ValidationStatus,
};
pub use payload::Descriptor;
pub use revocation::Evidence;
pub use time::Instant;
pub use trustpolicy::scope::Selector;
pub use trustpolicy::{Action, Actions, Check, DocumentKind, Level, VerifyTimestamp};
pub use truststore::{NamedStore, StoreFile, StoreType, TrustStores};
pub use verify::{
    PolicyInput, SignatureInput, Target, VerifyRequest, authentic_timestamp, check_policy,
    plugin_needs, revocation_needs, select_policy, timestamp_token, timestamp_token_needs, verify,
    verify_or_ask,
};

/// Load one named trust store and summarise its certificates.
pub fn load_trust_store(
    stores: &TrustStores,
    store_type: StoreType,
    name: &str,
) -> Result<Vec<CertificateSummary>, Failure> {
    stores
        .load(store_type, name)
        .map(|certs| certs.iter().map(CertificateSummary::from).collect())
        .map_err(|e| Failure::new(FailureKind::TrustStore, e.to_string()))
}

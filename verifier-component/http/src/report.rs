//! The WIT `outcome` as the JSON the endpoint answers with: the verdict first, then the
//! applied policy, and per signature its validations (check, action, result), the signer's
//! certificate chain, the signed descriptor with its user metadata, and timestamps.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bindings::notary::verifier::types as wit;

pub fn decision_name(decision: wit::Decision) -> &'static str {
    match decision {
        wit::Decision::Verified => "verified",
        wit::Decision::Skipped => "skipped",
        wit::Decision::Failed => "failed",
    }
}

pub fn outcome(outcome: &wit::Outcome, request: &wit::VerifyRequest) -> Value {
    // What was verified, as the verifier received it.
    let target = match &request.target {
        wit::Target::Oci(oci) => json!({
            "reference": oci.reference,
            "digest": oci.descriptor.digest,
            "mediaType": oci.descriptor.media_type,
            "size": oci.descriptor.size,
        }),
        wit::Target::Blob(blob) => json!({
            "blob": blob.digest,
            "size": blob.size,
            "policyName": blob.policy_name,
        }),
    };
    json!({
        "decision": decision_name(outcome.decision),
        "failure": outcome.failure.as_ref().map(failure),
        "target": target,
        "verificationTime": instant(&request.verification_time),
        "policy": outcome.policy.as_ref().map(policy),
        "verifiedSignature": outcome.verified_index,
        "signatures": outcome.signatures.iter().map(signature).collect::<Vec<_>>(),
    })
}

fn failure(failure: &wit::Failure) -> Value {
    let kind = match failure.kind {
        wit::FailureKind::TrustPolicy => "trust-policy",
        wit::FailureKind::NoApplicablePolicy => "no-applicable-policy",
        wit::FailureKind::TrustStore => "trust-store",
        wit::FailureKind::SignatureRetrieval => "signature-retrieval",
        wit::FailureKind::Integrity => "integrity",
        wit::FailureKind::Authenticity => "authenticity",
        wit::FailureKind::AuthenticTimestamp => "authentic-timestamp",
        wit::FailureKind::Expiry => "expiry",
        wit::FailureKind::Revocation => "revocation",
        wit::FailureKind::UserMetadata => "user-metadata",
        wit::FailureKind::InvalidInput => "invalid-input",
    };
    json!({ "kind": kind, "message": failure.message })
}

fn policy(policy: &wit::AppliedPolicy) -> Value {
    let level = match policy.level {
        wit::Level::Strict => "strict",
        wit::Level::Permissive => "permissive",
        wit::Level::Audit => "audit",
        wit::Level::Skip => "skip",
    };
    json!({
        "statement": policy.statement,
        "level": level,
        "trustStores": policy.trust_stores,
        "trustedIdentities": policy.trusted_identities,
    })
}

fn signature(signature: &wit::SignatureOutcome) -> Value {
    json!({
        "index": signature.index,
        "mediaType": signature.media_type,
        "manifestDigest": signature.manifest_digest,
        "validations": signature.results.iter().map(validation).collect::<Vec<_>>(),
        "failure": signature.failure.as_ref().map(failure),
        "envelope": signature.envelope.as_ref().map(envelope),
    })
}

fn validation(result: &wit::ValidationResult) -> Value {
    let check = match result.check {
        wit::Check::Integrity => "integrity",
        wit::Check::Authenticity => "authenticity",
        wit::Check::AuthenticTimestamp => "authentic-timestamp",
        wit::Check::Expiry => "expiry",
        wit::Check::Revocation => "revocation",
    };
    let action = match result.action {
        wit::Action::Enforce => "enforce",
        wit::Action::Log => "log",
        wit::Action::Skip => "skip",
    };
    let status = match result.status {
        wit::ValidationStatus::Passed => "passed",
        wit::ValidationStatus::Failed => "failed",
        wit::ValidationStatus::Skipped => "skipped",
    };
    json!({ "check": check, "action": action, "result": status, "message": result.message })
}

fn envelope(info: &wit::EnvelopeInfo) -> Value {
    let timestamp = info.timestamp.as_ref().map(|timestamp| match timestamp {
        wit::TimestampInfo::Range(range) => json!({
            "lower": instant(&range.lower),
            "upper": instant(&range.upper),
            "certificates": range.certificates.iter().map(certificate).collect::<Vec<_>>(),
        }),
        wit::TimestampInfo::Error(error) => json!({ "error": error }),
    });
    json!({
        "signatureAlgorithm": info.signature_algorithm,
        "signingScheme": info.signing_scheme,
        "signingTime": info.signing_time.as_ref().map(instant),
        "authenticSigningTime": info.authentic_signing_time.as_ref().map(instant),
        "expiry": info.expiry.as_ref().map(instant),
        "signingAgent": info.signing_agent,
        "certificates": info.certificates.iter().map(certificate).collect::<Vec<_>>(),
        "signedArtifact": {
            "mediaType": info.payload.media_type,
            "digest": info.payload.digest,
            "size": info.payload.size,
        },
        "userMetadata": info
            .payload
            .annotations
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect::<serde_json::Map<_, _>>(),
        "timestamp": timestamp,
    })
}

fn certificate(certificate: &wit::CertificateSummary) -> Value {
    json!({
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "sha256": certificate.sha256,
        "notBefore": instant(&certificate.not_before),
        "notAfter": instant(&certificate.not_after),
        "key": certificate.key,
    })
}

fn instant(instant: &wit::Instant) -> Value {
    OffsetDateTime::from_unix_timestamp(instant.seconds)
        .ok()
        .and_then(|at| at.replace_nanosecond(instant.nanoseconds).ok())
        .and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

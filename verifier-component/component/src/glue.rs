//! The export glue of both component builds (`verifier-component`, and
//! `verifier-component-host-crypto` in `../component-host-crypto`, which includes this
//! file): WIT values are converted to `notary-verifier`'s own types on the way in and
//! back on the way out, so the component and the native library share every rule. Each
//! export first calls the crate's `enter` (the host-crypto build installs its imported
//! arithmetic there; the default build does nothing).

use crate::bindings::exports::notary::verifier::types as wit;
use crate::bindings::exports::notary::verifier::verifier::Guest;

use notary_verifier::outcome::{self, Decision, FailureKind, TimestampInfo, ValidationStatus};
use notary_verifier::payload::Descriptor;
use notary_verifier::revocation::{Evidence, Method, Need, Status};
use notary_verifier::time::Instant;
use notary_verifier::trustpolicy::{Action, Actions, Check, DocumentKind, Level, VerifyTimestamp};
use notary_verifier::truststore::{NamedStore, StoreFile, StoreType, TrustStores};
use notary_verifier::verify::{PolicyInput, SignatureInput, Target, VerifyRequest};

struct Component;

#[allow(unsafe_code, reason = "the export macro emits the ABI entry points")]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}

impl Guest for Component {
    fn verify(request: wit::VerifyRequest) -> wit::Outcome {
        crate::enter();
        outcome_out(notary_verifier::verify(&request_in(request)))
    }

    fn verify_or_ask(request: wit::VerifyRequest) -> (wit::Outcome, Vec<wit::RevocationNeed>) {
        crate::enter();
        let (outcome, needs) = notary_verifier::verify_or_ask(&request_in(request));
        (outcome_out(outcome), needs_out(needs))
    }

    fn revocation_needs(request: wit::VerifyRequest) -> Vec<wit::RevocationNeed> {
        crate::enter();
        needs_out(notary_verifier::revocation_needs(&request_in(request)))
    }

    fn plugin_needs(request: wit::VerifyRequest) -> Vec<wit::PluginNeed> {
        crate::enter();
        notary_verifier::plugin_needs(&request_in(request))
            .into_iter()
            .map(plugin_need_out)
            .collect()
    }

    fn timestamp_token_revocation_needs(
        request: wit::VerifyRequest,
        token: Vec<u8>,
        signature_value: Vec<u8>,
        signing_chain: Vec<Vec<u8>>,
    ) -> Vec<wit::RevocationNeed> {
        crate::enter();
        needs_out(notary_verifier::timestamp_token_needs(
            &request_in(request),
            &token,
            &signature_value,
            &signing_chain,
        ))
    }

    fn check_policy(
        document: wit::PolicyDocument,
    ) -> Result<Vec<wit::AppliedPolicy>, wit::Failure> {
        crate::enter();
        notary_verifier::check_policy(&policy_in(document))
            .map(|list| list.into_iter().map(applied_out).collect())
            .map_err(failure_out)
    }

    fn select_policy(
        document: wit::PolicyDocument,
        selector: wit::PolicySelector,
    ) -> Result<wit::AppliedPolicy, wit::Failure> {
        crate::enter();
        let selector = match selector {
            wit::PolicySelector::OciReference(r) => notary_verifier::Selector::OciReference(r),
            wit::PolicySelector::BlobPolicyName(n) => notary_verifier::Selector::BlobPolicyName(n),
        };
        notary_verifier::select_policy(&policy_in(document), &selector)
            .map(applied_out)
            .map_err(failure_out)
    }

    fn load_trust_store(
        stores: Vec<wit::TrustStore>,
        store_type: wit::TrustStoreType,
        name: String,
    ) -> Result<Vec<wit::CertificateSummary>, wit::Failure> {
        crate::enter();
        notary_verifier::load_trust_store(&stores_in(stores), store_type_in(store_type), &name)
            .map(|certs| certs.into_iter().map(certificate_out).collect())
            .map_err(failure_out)
    }

    fn inspect(signature: wit::Signature) -> Result<wit::EnvelopeInfo, wit::Failure> {
        crate::enter();
        notary_verifier::inspect(&signature_in(signature))
            .map(envelope_out)
            .map_err(failure_out)
    }

    fn check_generated_envelope(
        signature: wit::Signature,
        target: wit::Descriptor,
    ) -> Result<wit::EnvelopeInfo, wit::Failure> {
        crate::enter();
        notary_verifier::check_generated(&signature_in(signature), &descriptor_in(target))
            .map(envelope_out)
            .map_err(failure_out)
    }

    fn check_authentic_timestamp(request: wit::VerifyRequest) -> wit::ValidationResult {
        crate::enter();
        result_out(notary_verifier::authentic_timestamp(&request_in(request)))
    }

    fn check_timestamp_token(
        request: wit::VerifyRequest,
        token: Vec<u8>,
        signature_value: Vec<u8>,
        signing_chain: Vec<Vec<u8>>,
    ) -> wit::ValidationResult {
        crate::enter();
        result_out(notary_verifier::timestamp_token(
            &request_in(request),
            &token,
            &signature_value,
            &signing_chain,
        ))
    }
}

fn instant_in(i: wit::Instant) -> Instant {
    Instant {
        offset_seconds: i.utc_offset_seconds,
        ..Instant::from_unix(i.seconds, i.nanoseconds)
    }
}

fn instant_out(i: Instant) -> wit::Instant {
    wit::Instant {
        seconds: i.seconds,
        nanoseconds: i.nanos,
        utc_offset_seconds: i.offset_seconds,
    }
}

fn descriptor_in(d: wit::Descriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        artifact_type: d.artifact_type,
        annotations: d.annotations.into_iter().collect(),
    }
}

fn descriptor_out(d: Descriptor) -> wit::Descriptor {
    wit::Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        artifact_type: d.artifact_type,
        annotations: d.annotations.into_iter().collect(),
    }
}

fn store_type_in(t: wit::TrustStoreType) -> StoreType {
    match t {
        wit::TrustStoreType::Ca => StoreType::Ca,
        wit::TrustStoreType::SigningAuthority => StoreType::SigningAuthority,
        wit::TrustStoreType::Tsa => StoreType::Tsa,
    }
}

fn stores_in(stores: Vec<wit::TrustStore>) -> TrustStores {
    TrustStores {
        stores: stores
            .into_iter()
            .map(|s| NamedStore {
                store_type: store_type_in(s.store_type),
                name: s.name,
                files: s
                    .files
                    .into_iter()
                    .map(|f| StoreFile {
                        name: f.name,
                        content: f.content,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn policy_in(p: wit::PolicyDocument) -> PolicyInput {
    PolicyInput {
        kind: match p.kind {
            wit::PolicyKind::Oci => DocumentKind::Oci,
            wit::PolicyKind::Blob => DocumentKind::Blob,
        },
        content: p.content,
    }
}

fn signature_in(s: wit::Signature) -> SignatureInput {
    SignatureInput {
        media_type: s.media_type,
        envelope: s.envelope,
        manifest_digest: s.manifest_digest,
        prior_failure: s.prior_failure.map(failure_in),
    }
}

fn failure_in(f: wit::Failure) -> outcome::Failure {
    outcome::Failure {
        kind: match f.kind {
            wit::FailureKind::TrustPolicy => FailureKind::TrustPolicy,
            wit::FailureKind::NoApplicablePolicy => FailureKind::NoApplicablePolicy,
            wit::FailureKind::TrustStore => FailureKind::TrustStore,
            wit::FailureKind::SignatureRetrieval => FailureKind::SignatureRetrieval,
            wit::FailureKind::Integrity => FailureKind::Integrity,
            wit::FailureKind::Authenticity => FailureKind::Authenticity,
            wit::FailureKind::AuthenticTimestamp => FailureKind::AuthenticTimestamp,
            wit::FailureKind::Expiry => FailureKind::Expiry,
            wit::FailureKind::Revocation => FailureKind::Revocation,
            wit::FailureKind::UserMetadata => FailureKind::UserMetadata,
            wit::FailureKind::InvalidInput => FailureKind::InvalidInput,
        },
        message: f.message,
    }
}

fn needs_out(needs: Vec<Need>) -> Vec<wit::RevocationNeed> {
    needs
        .into_iter()
        .map(|n| wit::RevocationNeed {
            certificate_sha256: n.certificate_sha256,
            subject: n.subject,
            method: match n.method {
                Method::Ocsp => wit::RevocationMethod::Ocsp,
                Method::Crl => wit::RevocationMethod::Crl,
                Method::DeltaCrl => wit::RevocationMethod::DeltaCrl,
            },
            urls: n.urls,
            ocsp_request: n.ocsp_request,
        })
        .collect()
}

fn request_in(r: wit::VerifyRequest) -> VerifyRequest {
    VerifyRequest {
        policy: policy_in(r.policy),
        trust_stores: stores_in(r.trust_stores),
        target: match r.target {
            wit::Target::Oci(t) => Target::Oci {
                reference: t.reference,
                descriptor: descriptor_in(t.descriptor),
            },
            wit::Target::Blob(b) => Target::Blob {
                policy_name: b.policy_name,
                media_type: b.media_type,
                digest: b.digest,
                size: b.size,
            },
        },
        signatures: r.signatures.into_iter().map(signature_in).collect(),
        user_metadata: r.user_metadata,
        verification_time: instant_in(r.verification_time),
        revocation_evidence: r
            .revocation_evidence
            .into_iter()
            .map(|e| match e {
                wit::RevocationEvidence::OcspResponse(f) => Evidence::Ocsp {
                    url: f.url,
                    response: f.content,
                },
                wit::RevocationEvidence::Crl(f) => Evidence::Crl {
                    url: f.url,
                    crl: f.content,
                },
                wit::RevocationEvidence::Unavailable(u) => Evidence::Unavailable {
                    url: u.url,
                    reason: u.reason,
                },
                wit::RevocationEvidence::Asserted(a) => Evidence::Asserted {
                    certificate_sha256: a.certificate_sha256,
                    status: match a.status {
                        wit::RevocationStatus::Good => Status::Good,
                        wit::RevocationStatus::Revoked => Status::Revoked,
                        wit::RevocationStatus::Unknown => Status::Unknown,
                    },
                    source: a.source,
                },
            })
            .collect(),
        max_signatures: r.max_signatures,
        plugin_evidence: r
            .plugin_evidence
            .into_iter()
            .map(plugin_evidence_in)
            .collect(),
    }
}

fn plugin_evidence_in(e: wit::PluginEvidence) -> notary_verifier::plugin::PluginEvidence {
    use notary_verifier::plugin::{PluginEvidence, PluginInfo};
    match e {
        wit::PluginEvidence::Metadata(m) => PluginEvidence::Metadata(PluginInfo {
            name: m.name,
            version: m.version,
            capabilities: m.capabilities,
        }),
        wit::PluginEvidence::Missing(m) => PluginEvidence::Missing {
            name: m.name,
            reason: m.reason,
        },
        wit::PluginEvidence::Answer(a) => PluginEvidence::Answer {
            name: a.name,
            request: a.request,
            response: a.response,
        },
        wit::PluginEvidence::Failed(f) => PluginEvidence::Failed {
            name: f.name,
            request: f.request,
            reason: f.reason,
        },
    }
}

fn plugin_need_out(n: notary_verifier::plugin::PluginNeed) -> wit::PluginNeed {
    use notary_verifier::plugin::PluginNeed;
    match n {
        PluginNeed::Metadata(name) => wit::PluginNeed::Metadata(name),
        PluginNeed::VerifySignature { name, request } => {
            wit::PluginNeed::VerifySignature(wit::PluginCall { name, request })
        }
    }
}

fn level_out(l: Level) -> wit::Level {
    match l {
        Level::Strict => wit::Level::Strict,
        Level::Permissive => wit::Level::Permissive,
        Level::Audit => wit::Level::Audit,
        Level::Skip => wit::Level::Skip,
    }
}

fn action_out(a: Action) -> wit::Action {
    match a {
        Action::Enforce => wit::Action::Enforce,
        Action::Log => wit::Action::Log,
        Action::Skip => wit::Action::Skip,
    }
}

fn check_out(c: Check) -> wit::Check {
    match c {
        Check::Integrity => wit::Check::Integrity,
        Check::Authenticity => wit::Check::Authenticity,
        Check::AuthenticTimestamp => wit::Check::AuthenticTimestamp,
        Check::Expiry => wit::Check::Expiry,
        Check::Revocation => wit::Check::Revocation,
    }
}

fn actions_out(a: Actions) -> wit::Actions {
    wit::Actions {
        integrity: action_out(a.integrity),
        authenticity: action_out(a.authenticity),
        authentic_timestamp: action_out(a.authentic_timestamp),
        expiry: action_out(a.expiry),
        revocation: action_out(a.revocation),
    }
}

fn applied_out(p: outcome::AppliedPolicy) -> wit::AppliedPolicy {
    wit::AppliedPolicy {
        statement: p.statement,
        level: level_out(p.level),
        actions: actions_out(p.actions),
        verify_timestamp: match p.verify_timestamp {
            VerifyTimestamp::Always => wit::VerifyTimestamp::Always,
            VerifyTimestamp::AfterCertExpiry => wit::VerifyTimestamp::AfterCertExpiry,
        },
        trust_stores: p.trust_stores,
        trusted_identities: p.trusted_identities,
        registry_scopes: p.registry_scopes,
        global_policy: p.global_policy,
    }
}

fn failure_out(f: outcome::Failure) -> wit::Failure {
    wit::Failure {
        kind: match f.kind {
            FailureKind::TrustPolicy => wit::FailureKind::TrustPolicy,
            FailureKind::NoApplicablePolicy => wit::FailureKind::NoApplicablePolicy,
            FailureKind::TrustStore => wit::FailureKind::TrustStore,
            FailureKind::SignatureRetrieval => wit::FailureKind::SignatureRetrieval,
            FailureKind::Integrity => wit::FailureKind::Integrity,
            FailureKind::Authenticity => wit::FailureKind::Authenticity,
            FailureKind::AuthenticTimestamp => wit::FailureKind::AuthenticTimestamp,
            FailureKind::Expiry => wit::FailureKind::Expiry,
            FailureKind::Revocation => wit::FailureKind::Revocation,
            FailureKind::UserMetadata => wit::FailureKind::UserMetadata,
            FailureKind::InvalidInput => wit::FailureKind::InvalidInput,
        },
        message: f.message,
    }
}

fn result_out(r: outcome::ValidationResult) -> wit::ValidationResult {
    wit::ValidationResult {
        check: check_out(r.check),
        action: action_out(r.action),
        status: match r.status {
            ValidationStatus::Passed => wit::ValidationStatus::Passed,
            ValidationStatus::Failed => wit::ValidationStatus::Failed,
            ValidationStatus::Skipped => wit::ValidationStatus::Skipped,
        },
        message: r.message,
        warnings: r.warnings,
    }
}

fn certificate_out(c: outcome::CertificateSummary) -> wit::CertificateSummary {
    wit::CertificateSummary {
        subject: c.subject,
        issuer: c.issuer,
        sha256: c.sha256,
        not_before: instant_out(c.not_before),
        not_after: instant_out(c.not_after),
        is_ca: c.is_ca,
        key: c.key,
        ocsp_urls: c.ocsp_urls,
        crl_urls: c.crl_urls,
    }
}

fn envelope_out(e: outcome::EnvelopeInfo) -> wit::EnvelopeInfo {
    wit::EnvelopeInfo {
        media_type: e.media_type,
        signature_algorithm: e.signature_algorithm,
        content_type: e.content_type,
        signing_scheme: e.signing_scheme,
        signing_time: e.signing_time.map(instant_out),
        authentic_signing_time: e.authentic_signing_time.map(instant_out),
        expiry: e.expiry.map(instant_out),
        extended_attributes: e.extended_attributes,
        signing_agent: e.signing_agent,
        timestamp: e.timestamp.map(|t| match t {
            TimestampInfo::Range(r) => wit::TimestampInfo::Range(wit::TimestampRange {
                lower: instant_out(r.lower),
                upper: instant_out(r.upper),
                certificates: r.certificates.into_iter().map(certificate_out).collect(),
            }),
            TimestampInfo::Error(e) => wit::TimestampInfo::Error(e),
        }),
        certificates: e.certificates.into_iter().map(certificate_out).collect(),
        payload: descriptor_out(e.payload),
        digest_algorithm: e.digest_algorithm,
    }
}

fn outcome_out(o: outcome::Outcome) -> wit::Outcome {
    wit::Outcome {
        decision: match o.decision {
            Decision::Verified => wit::Decision::Verified,
            Decision::Skipped => wit::Decision::Skipped,
            Decision::Failed => wit::Decision::Failed,
        },
        policy: o.policy.map(applied_out),
        failure: o.failure.map(failure_out),
        signatures: o
            .signatures
            .into_iter()
            .map(|s| wit::SignatureOutcome {
                index: s.index,
                media_type: s.media_type,
                manifest_digest: s.manifest_digest,
                results: s.results.into_iter().map(result_out).collect(),
                failure: s.failure.map(failure_out),
                envelope: s.envelope.map(envelope_out),
            })
            .collect(),
        verified_index: o.verified_index,
    }
}

//! Multi-party approval, hsm-notary's extension on top of the Notary Project
//! specification: a **signing request** (what a signing service is asked to sign), the
//! **approvals** of it, and the **record** of those approvals that the signature carries.
//!
//! An approval is a Notary Project blob signature (JWS) over the request's bytes, media type
//! [`REQUEST_MEDIA_TYPE`], with the decision in the signed payload's annotations
//! ([`DECISION_KEY`]): any Notary signer, `notation blob sign` included, can make one, and the
//! verifier component checks it (chain, trust store, trusted identity, expiry, revocation)
//! under a strict blob policy built from the approval policy. This module only adds what the
//! Notary specification has no word for: which request an approval is for, and how many
//! distinct approvers there are.

use std::collections::BTreeMap;

use notary_verifier::{
    Decision as OutcomeDecision, DocumentKind, PolicyInput, SignatureInput, Target, TrustStores,
    VerifyRequest,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::engine::Verifier;

/// The media type of a signing request, as the blob an approval signs.
pub const REQUEST_MEDIA_TYPE: &str = "application/vnd.hsm-notary.signing-request.v1+json";
/// The payload annotation that says whether an approval approves or rejects.
pub const DECISION_KEY: &str = "io.hsm-notary.decision";
/// The non-critical signed extended attribute with the approval record.
pub const ATTRIBUTE: &str = "io.hsm-notary.approvals";
/// Requests larger than this are refused (user metadata is the only free-form part).
pub const MAX_REQUEST_SIZE: usize = 64 * 1024;

/// What went wrong with an approval, named as the check that refused it.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The approval does not verify under the approvers' trust store and identities
    /// (integrity, authenticity, trusted identity, expiry or revocation).
    #[error("the approval signature is not trusted: {0}")]
    Untrusted(String),
    /// It verifies, but is over other bytes than this request's.
    #[error("the approval is for another request: {0}")]
    OtherRequest(String),
    /// The decision annotation is missing or unknown.
    #[error("the approval has no decision: {DECISION_KEY} must be \"approve\" or \"reject\"")]
    NoDecision,
    /// The record in a signature is malformed.
    #[error("the approval record is malformed: {0}")]
    Malformed(String),
    /// The engine could not run.
    #[error("checking the approval: {0:#}")]
    Engine(anyhow::Error),
}

/// The artifact a signing request asks to sign (`targetArtifact` without annotations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size.
    pub size: u64,
}

/// A signing request as approvers see and sign it. Its bytes ([`SigningRequest::to_bytes`])
/// are fixed when the request is made; approvals are over those bytes, never over a
/// re-serialization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningRequest {
    /// Format version, `"1"`.
    pub version: String,
    /// The request id (random, hex).
    pub id: String,
    /// The signing service's key name.
    pub key: String,
    /// What is signed.
    pub subject: Subject,
    /// User metadata (the payload's annotations).
    pub metadata: BTreeMap<String, String>,
    /// `jws` or `cose`.
    pub format: String,
    /// The signature's expiry, seconds after signing (0: none).
    pub signature_expiry_seconds: u64,
    /// The requester (its TLS client certificate's subject).
    pub requester: String,
    /// When the request was made (UNIX seconds).
    pub created: i64,
    /// When it expires unless signed (UNIX seconds).
    pub expires: i64,
    /// Random, hex: two requests for the same artifact are never the same bytes.
    pub nonce: String,
}

impl SigningRequest {
    /// The request's bytes (compact JSON, fields in declaration order, metadata sorted).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse request bytes (bounded, strict: unknown fields are refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApprovalError> {
        if bytes.len() > MAX_REQUEST_SIZE {
            return Err(ApprovalError::Malformed(format!(
                "the signing request is larger than {MAX_REQUEST_SIZE} bytes"
            )));
        }
        let request: Self = serde_json::from_slice(bytes)
            .map_err(|e| ApprovalError::Malformed(format!("the signing request: {e}")))?;
        if request.version != "1" {
            return Err(ApprovalError::Malformed(format!(
                "signing request version {:?} is not supported",
                request.version
            )));
        }
        Ok(request)
    }

    /// The SHA-256 digest of [`SigningRequest::to_bytes`], `sha256:…`.
    pub fn digest(&self) -> String {
        crate::oci::sha256_digest(&self.to_bytes())
    }
}

/// Approve or reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Counts toward the quorum.
    Approve,
    /// Rejects the request.
    Reject,
}

impl Decision {
    /// `approve` / `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

/// The descriptor an approver signs: the request bytes as a blob, digested with the
/// algorithm the approver's key implies, the decision as an annotation.
pub fn approval_target(
    request_bytes: &[u8],
    decision: Decision,
    hash: &str,
) -> anyhow::Result<notary_verifier::Descriptor> {
    let mut annotations = BTreeMap::new();
    annotations.insert(DECISION_KEY.to_owned(), decision.as_str().to_owned());
    Ok(notary_verifier::Descriptor {
        media_type: REQUEST_MEDIA_TYPE.to_owned(),
        digest: digest_bytes(request_bytes, hash)?,
        size: request_bytes.len() as u64,
        artifact_type: None,
        annotations,
    })
}

/// `ALGORITHM:HEX` of `bytes`.
pub fn digest_bytes(bytes: &[u8], algorithm: &str) -> anyhow::Result<String> {
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    let hex = match algorithm {
        "sha256" => hex(&sha2::Sha256::digest(bytes)),
        "sha384" => hex(&sha2::Sha384::digest(bytes)),
        "sha512" => hex(&sha2::Sha512::digest(bytes)),
        other => anyhow::bail!("unsupported hashing algorithm: {other}"),
    };
    Ok(format!("{algorithm}:{hex}"))
}

/// Who may approve: a trust store of type `ca` and trusted identities, as a trust policy
/// statement names signers.
#[derive(Clone, Debug)]
pub struct Approvers {
    /// The `ca` trust store's name.
    pub store: String,
    /// `x509.subject: …` identities, or `*`.
    pub identities: Vec<String>,
    /// The trust stores (at least the approvers' store).
    pub stores: TrustStores,
}

impl Approvers {
    /// The approvers of `store` (a `ca` store among `all`, nothing else trusted).
    pub fn new(store: &str, identities: Vec<String>, all: &TrustStores) -> Self {
        Self {
            store: store.to_owned(),
            identities,
            stores: TrustStores {
                stores: all
                    .stores
                    .iter()
                    .filter(|s| s.name == store && s.store_type == notary_verifier::StoreType::Ca)
                    .cloned()
                    .collect(),
            },
        }
    }

    /// The strict blob trust policy an approval is verified under.
    pub fn policy(&self) -> PolicyInput {
        let document = serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "approvers",
            "signatureVerification": {"level": "strict"},
            "trustStores": [format!("ca:{}", self.store)],
            "trustedIdentities": self.identities,
            "globalPolicy": true,
        }]});
        PolicyInput {
            kind: DocumentKind::Blob,
            content: serde_json::to_vec(&document).unwrap_or_default(),
        }
    }

    /// Check the policy (identities, store name) with the engine's rules.
    pub fn validate(&self, engine: &dyn Verifier) -> anyhow::Result<()> {
        if let Err(failure) = engine.check_policy(&self.policy())? {
            anyhow::bail!("{}", failure.message);
        }
        if !self
            .stores
            .stores
            .iter()
            .any(|s| s.name == self.store && !s.files.is_empty())
        {
            anyhow::bail!(
                "the approvers trust store ca:{} is missing or empty",
                self.store
            );
        }
        Ok(())
    }
}

/// A verified approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The approver: the subject of the approval's signing certificate.
    pub approver: String,
    /// SHA-256 fingerprint of that certificate, hex.
    pub certificate: String,
    /// Approve or reject.
    pub decision: Decision,
    /// The approval's signing time (UNIX seconds).
    pub signed_at: i64,
}

/// Verify one approval envelope (JWS or COSE) over `request_bytes` at `time`: the verifier
/// component decides whether it is a trusted signature over exactly these bytes; the
/// decision is read from its verified payload.
pub fn check(
    engine: &dyn Verifier,
    revocation: &crate::revocation::Bounded,
    approvers: &Approvers,
    request_bytes: &[u8],
    media_type: &str,
    envelope: &[u8],
    time: notary_verifier::Instant,
) -> Result<Approval, ApprovalError> {
    let signature = SignatureInput {
        media_type: media_type.to_owned(),
        envelope: envelope.to_vec(),
        manifest_digest: None,
        prior_failure: None,
    };
    let info = match engine.inspect(&signature).map_err(ApprovalError::Engine)? {
        Ok(info) => info,
        Err(failure) => return Err(ApprovalError::Untrusted(failure.message)),
    };
    let digest =
        digest_bytes(request_bytes, &info.digest_algorithm).map_err(ApprovalError::Engine)?;
    // Unverified, so only ever a reason to refuse: a signature over other bytes is an
    // approval of another request (or a replay of one).
    if info.payload.digest != digest {
        return Err(ApprovalError::OtherRequest(format!(
            "it signs {}, this request is {digest}",
            info.payload.digest
        )));
    }
    let mut request = VerifyRequest {
        policy: approvers.policy(),
        trust_stores: approvers.stores.clone(),
        target: Target::Blob {
            policy_name: None,
            media_type: Some(REQUEST_MEDIA_TYPE.to_owned()),
            digest: digest.clone(),
            size: request_bytes.len() as u64,
        },
        signatures: vec![signature],
        user_metadata: Vec::new(),
        verification_time: time,
        revocation_evidence: Vec::new(),
        max_signatures: 1,
        plugin_evidence: Vec::new(),
    };
    let outcome = revocation
        .verify(engine, &mut request)
        .map_err(ApprovalError::Engine)?;
    let verified = match (&outcome.decision, outcome.verified_signature()) {
        (OutcomeDecision::Verified, Some(verified)) => verified,
        _ => {
            let why = outcome
                .failure
                .as_ref()
                .map(|f| f.message.clone())
                .unwrap_or_else(|| "it did not verify".to_owned());
            return Err(ApprovalError::Untrusted(why));
        }
    };
    let info = verified
        .envelope
        .as_ref()
        .ok_or_else(|| ApprovalError::Untrusted("the verified envelope has no content".into()))?;
    if info.payload.digest != digest {
        return Err(ApprovalError::OtherRequest(format!(
            "it signs {}, the request is {digest}",
            info.payload.digest
        )));
    }
    let decision = match info
        .payload
        .annotations
        .get(DECISION_KEY)
        .map(String::as_str)
    {
        Some("approve") => Decision::Approve,
        Some("reject") => Decision::Reject,
        _ => return Err(ApprovalError::NoDecision),
    };
    let leaf = info
        .certificates
        .first()
        .ok_or_else(|| ApprovalError::Untrusted("the approval has no certificate".into()))?;
    Ok(Approval {
        approver: leaf.subject.clone(),
        certificate: leaf.sha256.clone(),
        decision,
        signed_at: info
            .signing_time
            .or(info.authentic_signing_time)
            .map_or(time.seconds, |t| t.seconds),
    })
}

/// The approvers that count toward a quorum: each subject once, approvals only.
pub fn distinct_approvers(approvals: &[Approval]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for approval in approvals {
        if approval.decision == Decision::Approve && !seen.contains(&approval.approver) {
            seen.push(approval.approver.clone());
        }
    }
    seen
}

/// Standard base64 with padding.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

/// Decode standard base64 with padding.
pub fn from_base64(text: &str) -> Result<Vec<u8>, base64ct::Error> {
    use base64ct::Encoding;
    base64ct::Base64::decode_vec(text)
}

/// One approval in a [`Record`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedApproval {
    /// The approver's certificate subject.
    pub approver: String,
    /// SHA-256 fingerprint of its certificate, hex.
    pub certificate: String,
    /// The approval envelope's media type.
    pub media_type: String,
    /// The approval envelope, base64.
    pub envelope: String,
}

/// The value of [`ATTRIBUTE`]: the request and the approvals that made it signed, so that
/// anyone with the approvers' trust store can check them again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// Format version, `"1"`.
    pub version: String,
    /// The request bytes, base64.
    pub request: String,
    /// The approvals.
    pub approvals: Vec<RecordedApproval>,
}

impl Record {
    /// The attribute's text (compact JSON).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the attribute's text.
    pub fn parse(text: &str) -> Result<Self, ApprovalError> {
        let record: Self = serde_json::from_str(text)
            .map_err(|e| ApprovalError::Malformed(format!("{ATTRIBUTE}: {e}")))?;
        if record.version != "1" {
            return Err(ApprovalError::Malformed(format!(
                "{ATTRIBUTE} version {:?} is not supported",
                record.version
            )));
        }
        Ok(record)
    }

    /// The request bytes.
    pub fn request_bytes(&self) -> Result<Vec<u8>, ApprovalError> {
        from_base64(&self.request)
            .map_err(|e| ApprovalError::Malformed(format!("the request is not base64: {e}")))
    }
}

/// Check the approval record of a verified signature over `artifact_digest`: its request
/// is for that artifact, and at least `required` distinct trusted approvers approved it.
/// Returns the approvers counted.
pub fn check_record(
    engine: &dyn Verifier,
    revocation: &crate::revocation::Bounded,
    approvers: &Approvers,
    record_text: &str,
    artifact_digest: &str,
    required: usize,
    time: notary_verifier::Instant,
) -> Result<Vec<String>, ApprovalError> {
    let record = Record::parse(record_text)?;
    let bytes = record.request_bytes()?;
    let request = SigningRequest::from_bytes(&bytes)?;
    if request.subject.digest != artifact_digest {
        return Err(ApprovalError::OtherRequest(format!(
            "the recorded request is for {}, the signature for {artifact_digest}",
            request.subject.digest
        )));
    }
    let mut checked = Vec::new();
    for (i, recorded) in record.approvals.iter().enumerate() {
        let envelope = from_base64(&recorded.envelope)
            .map_err(|e| ApprovalError::Malformed(format!("approval #{}: {e}", i + 1)))?;
        let approval = check(
            engine,
            revocation,
            approvers,
            &bytes,
            &recorded.media_type,
            &envelope,
            time,
        )
        .map_err(|e| match e {
            ApprovalError::Engine(e) => ApprovalError::Engine(e),
            other => ApprovalError::Untrusted(format!("approval #{}: {other}", i + 1)),
        })?;
        checked.push(approval);
    }
    let counted = distinct_approvers(&checked);
    if counted.len() < required {
        return Err(ApprovalError::Untrusted(format!(
            "{} distinct trusted approver(s), {required} required",
            counted.len()
        )));
    }
    Ok(counted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn approval(approver: &str, decision: Decision) -> Approval {
        Approval {
            approver: approver.to_owned(),
            certificate: String::new(),
            decision,
            signed_at: 0,
        }
    }

    #[test]
    fn each_approver_counts_once_and_rejections_never_count() {
        let approvals = [
            approval("CN=alice", Decision::Approve),
            approval("CN=alice", Decision::Approve),
            approval("CN=bob", Decision::Reject),
            approval("CN=carol", Decision::Approve),
        ];
        assert_eq!(distinct_approvers(&approvals), ["CN=alice", "CN=carol"]);
    }

    #[test]
    fn request_bytes_round_trip_and_unknown_fields_are_refused() {
        let request = SigningRequest {
            version: "1".into(),
            id: "ab".into(),
            key: "release".into(),
            subject: Subject {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: "sha256:00".into(),
                size: 1,
            },
            metadata: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            format: "jws".into(),
            signature_expiry_seconds: 0,
            requester: "CN=ci".into(),
            created: 1,
            expires: 2,
            nonce: "ff".into(),
        };
        let bytes = request.to_bytes();
        assert_eq!(SigningRequest::from_bytes(&bytes).unwrap(), request);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""metadata":{"a":"1","b":"2"}"#), "{text}");
        let extra = text.replacen('{', r#"{"admin":true,"#, 1);
        assert!(SigningRequest::from_bytes(extra.as_bytes()).is_err());
    }
}

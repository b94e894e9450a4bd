//! The verification workflow (`trust-store-trust-policy.md` §Signature Verification,
//! `signing-and-verification-workflow.md`), and the only place that knows its order:
//!
//! 1. load and validate the trust policy; select the statement; `skip` returns here,
//!    before any signature is read;
//! 2. per candidate signature, until one verifies: integrity → authenticity (trust store,
//!    trusted identity) → expiry → authentic timestamp → revocation, each under the
//!    level's action; then the payload must describe the artifact, and carry the
//!    required user metadata.

mod authentic_timestamp;
mod authenticity;

use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, EnvelopeContent, PAYLOAD_CONTENT_TYPE, attr};
use crate::inspect;
use crate::outcome::{
    AppliedPolicy, Decision, Failure, FailureKind, Outcome, Passed, SignatureOutcome,
    ValidationResult, ValidationStatus,
};
use crate::payload::{self, Descriptor};
use crate::plugin::{self, PluginEvidence, PluginNeed};
use crate::quote::Q;
use std::cell::RefCell;

use crate::revocation::{self, ChainPurpose, Evidence, Need};
use crate::time::Instant;
use crate::trustpolicy::scope::Selector;
use crate::trustpolicy::{self, Action, Check, DocumentKind, TrustPolicy};
use crate::truststore::TrustStores;

pub use authentic_timestamp::{authentic_timestamp, timestamp_token, timestamp_token_needs};

/// Most signatures one request may carry.
pub const MAX_SIGNATURES: usize = 1024;

/// A trust policy document as bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    /// OCI or blob language.
    pub kind: DocumentKind,
    /// JSON bytes.
    pub content: Vec<u8>,
}

/// What is verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// An OCI artifact: `registry/repository@digest` and its descriptor.
    Oci {
        /// Reference used for scope selection.
        reference: String,
        /// The descriptor the payload must match.
        descriptor: Descriptor,
    },
    /// A blob with a detached signature.
    Blob {
        /// Policy name (`None` = global policy).
        policy_name: Option<String>,
        /// The blob's media type, if the user gave one.
        media_type: Option<String>,
        /// The blob's digest, computed with the algorithm the key implies.
        digest: String,
        /// The blob's size.
        size: u64,
    },
}

impl Target {
    /// How the statement is selected.
    pub fn selector(&self) -> Selector {
        match self {
            Self::Oci { reference, .. } => Selector::OciReference(reference.clone()),
            Self::Blob { policy_name, .. } => Selector::BlobPolicyName(policy_name.clone()),
        }
    }

    /// The reference or blob digest, for messages.
    pub fn display(&self) -> &str {
        match self {
            Self::Oci { reference, .. } => reference,
            Self::Blob { digest, .. } => digest,
        }
    }
}

/// A candidate signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureInput {
    /// Envelope media type.
    pub media_type: String,
    /// Envelope bytes.
    pub envelope: Vec<u8>,
    /// The signature manifest digest, if known.
    pub manifest_digest: Option<String>,
    /// Set when this signature has already failed: the host could not read it (its
    /// manifest or envelope failed to fetch, was malformed or over a limit), or it failed
    /// in an earlier request over the same artifact. It is recorded as failed with this
    /// reason, without being evaluated, and verification goes on to the next: one bad
    /// signature never hides a good one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_failure: Option<Failure>,
}

/// Everything `verify` needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    /// The trust policy document.
    pub policy: PolicyInput,
    /// The trust stores.
    pub trust_stores: TrustStores,
    /// The artifact.
    pub target: Target,
    /// Candidate signatures.
    pub signatures: Vec<SignatureInput>,
    /// Required user metadata.
    pub user_metadata: Vec<(String, String)>,
    /// The verification time.
    pub verification_time: Instant,
    /// Revocation evidence.
    pub revocation_evidence: Vec<Evidence>,
    /// Try at most this many signatures.
    pub max_signatures: u32,
    /// What the host learned from verification plugins (see [`plugin_needs`]).
    #[serde(default)]
    pub plugin_evidence: Vec<PluginEvidence>,
}

/// Verify per the trust policy.
pub fn verify(request: &VerifyRequest) -> Outcome {
    run(request, None, None)
}

/// What the verification plugins named by the signatures must be asked, that
/// `request.plugin_evidence` does not answer: a plugin's metadata first, then, for a
/// signature that passed every check the verifier makes itself, its `verify-signature`
/// request. Signatures that name no plugin are not verified here (only parsed).
pub fn plugin_needs(request: &VerifyRequest) -> Vec<PluginNeed> {
    let needs = RefCell::new(Vec::new());
    let _ = run(request, None, Some(&needs));
    needs.into_inner()
}

/// The revocation evidence `verify` would read and `request` does not carry: OCSP
/// requests and CRL locations of the chains it reaches the revocation step with (the
/// signing chain after integrity and authenticity, a TSA chain after its
/// countersignature verified), so a host fetches only for chains it trusts. A host
/// fetches them, adds the evidence and asks again (a CRL's delta, or a CRL after OCSP
/// gave no answer, is asked for in a later round) until nothing is missing.
pub fn revocation_needs(request: &VerifyRequest) -> Vec<Need> {
    verify_or_ask(request).1
}

/// [`verify`] and [`revocation_needs`] in one pass: when the needs are empty the outcome
/// is final (exactly `verify`'s); otherwise it is provisional, and the host fetches and
/// asks again. A host whose evidence is cached decides in one call.
pub fn verify_or_ask(request: &VerifyRequest) -> (Outcome, Vec<Need>) {
    let needs = RefCell::new(Vec::new());
    let outcome = run(request, Some(&needs), None);
    (outcome, needs.into_inner())
}

fn run(
    request: &VerifyRequest,
    needs: Option<&RefCell<Vec<Need>>>,
    plugin_needs: Option<&RefCell<Vec<PluginNeed>>>,
) -> Outcome {
    let document = match trustpolicy::load(request.policy.kind, &request.policy.content) {
        Ok(d) => d,
        Err(e) => return Outcome::failed(FailureKind::TrustPolicy, e.to_string(), None),
    };
    let policy = match document.select(&request.target.selector()) {
        Ok(p) => p,
        Err(e) => return Outcome::failed(FailureKind::NoApplicablePolicy, e.to_string(), None),
    };
    let applied = AppliedPolicy::from(policy);
    if policy.level == trustpolicy::Level::Skip {
        return Outcome {
            decision: Decision::Skipped,
            policy: Some(applied),
            failure: None,
            signatures: Vec::new(),
            verified_index: None,
        };
    }
    if request.signatures.is_empty() {
        return Outcome::failed(
            FailureKind::SignatureRetrieval,
            format!(
                "no signature is associated with {}, make sure the artifact was signed successfully",
                Q(request.target.display())
            ),
            Some(applied),
        );
    }
    if request.signatures.len() > MAX_SIGNATURES {
        return Outcome::failed(
            FailureKind::InvalidInput,
            format!(
                "{} signatures exceed the limit of {MAX_SIGNATURES} per request",
                request.signatures.len()
            ),
            Some(applied),
        );
    }
    let max = usize::try_from(request.max_signatures.max(1)).unwrap_or(usize::MAX);
    let context = Context {
        policy,
        stores: &request.trust_stores,
        time: request.verification_time,
        evidence: &request.revocation_evidence,
        needs,
        target: &request.target,
        user_metadata: &request.user_metadata,
        plugins: &request.plugin_evidence,
        plugin_needs,
    };
    let mut signatures = Vec::new();
    for (index, input) in request.signatures.iter().enumerate().take(max) {
        let outcome = context.verify_signature(index, input);
        let verified = outcome.failure.is_none();
        signatures.push(outcome);
        if verified {
            return Outcome {
                decision: Decision::Verified,
                policy: Some(applied),
                failure: None,
                verified_index: u32::try_from(index).ok(),
                signatures,
            };
        }
    }
    let failure = overall_failure(&signatures, request, max);
    Outcome {
        decision: Decision::Failed,
        policy: Some(applied),
        failure: Some(failure),
        signatures,
        verified_index: None,
    }
}

/// notation's final message: a trust store problem is reported as such; otherwise the
/// blob verifier reports the signature's own error, and the OCI verifier the generic
/// "failed for all the signatures" (per-signature reasons are in the outcome).
fn overall_failure(
    signatures: &[SignatureOutcome],
    request: &VerifyRequest,
    max: usize,
) -> Failure {
    let failures: Vec<&Failure> = signatures
        .iter()
        .filter_map(|s| s.failure.as_ref())
        .collect();
    if let Some(store) = failures.iter().find(|f| f.kind == FailureKind::TrustStore) {
        return (*store).clone();
    }
    let most_specific = failures
        .iter()
        .max_by_key(|f| rank(f.kind))
        .map(|f| f.kind)
        .unwrap_or(FailureKind::Integrity);
    match &request.target {
        Target::Blob { .. } => failures
            .first()
            .map(|f| (*f).clone())
            .unwrap_or_else(|| Failure::new(most_specific, "signature verification failed")),
        Target::Oci { reference, .. } => {
            let mut message = format!(
                "signature verification failed for all the signatures associated with {reference}"
            );
            if request.signatures.len() > max {
                message.push_str(&format!(
                    " (signature evaluation stopped. The configured limit of {max} signatures to verify per artifact exceeded)"
                ));
            }
            Failure::new(most_specific, message)
        }
    }
}

/// How far a signature got: later validations are more specific failures.
fn rank(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Integrity => 1,
        FailureKind::Authenticity => 2,
        FailureKind::Expiry => 3,
        FailureKind::AuthenticTimestamp => 4,
        FailureKind::Revocation => 5,
        FailureKind::UserMetadata => 6,
        _ => 0,
    }
}

/// What one signature is verified against.
pub(crate) struct Context<'a> {
    pub policy: &'a TrustPolicy,
    pub stores: &'a TrustStores,
    pub time: Instant,
    pub evidence: &'a [Evidence],
    /// Set when only the missing revocation evidence is asked for.
    pub needs: Option<&'a RefCell<Vec<Need>>>,
    pub target: &'a Target,
    pub user_metadata: &'a [(String, String)],
    /// Verification plugin answers the host gathered.
    pub plugins: &'a [PluginEvidence],
    /// Set when only what the plugins must be asked is wanted.
    pub plugin_needs: Option<&'a RefCell<Vec<PluginNeed>>>,
}

/// Results of one signature so far.
struct Progress {
    outcome: SignatureOutcome,
}

impl Progress {
    /// Record a validation; `Err` stops this signature (enforced failure).
    fn record(
        &mut self,
        check: Check,
        action: Action,
        result: Result<impl Into<Passed>, (FailureKind, String)>,
    ) -> Result<(), ()> {
        match result {
            Ok(passed) => {
                let Passed { note, warnings } = passed.into();
                self.outcome.results.push(ValidationResult {
                    check,
                    action,
                    status: ValidationStatus::Passed,
                    message: (!note.is_empty()).then_some(note),
                    warnings,
                });
                Ok(())
            }
            Err((kind, message)) => {
                self.outcome.results.push(ValidationResult {
                    check,
                    action,
                    status: ValidationStatus::Failed,
                    message: Some(message.clone()),
                    warnings: Vec::new(),
                });
                if action == Action::Enforce {
                    self.outcome.failure = Some(Failure::new(kind, message));
                    Err(())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn skipped(&mut self, check: Check) {
        self.outcome.results.push(ValidationResult {
            check,
            action: Action::Skip,
            status: ValidationStatus::Skipped,
            message: None,
            warnings: Vec::new(),
        });
    }

    fn fail(&mut self, kind: FailureKind, message: String) {
        self.outcome.failure = Some(Failure::new(kind, message));
    }
}

impl Context<'_> {
    fn action(&self, check: Check) -> Action {
        self.policy.actions.get(check)
    }

    fn verify_signature(&self, index: usize, input: &SignatureInput) -> SignatureOutcome {
        let mut progress = Progress {
            outcome: SignatureOutcome {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                media_type: input.media_type.clone(),
                manifest_digest: input.manifest_digest.clone(),
                results: Vec::new(),
                failure: None,
                envelope: None,
            },
        };
        if let Some(failure) = &input.prior_failure {
            progress.outcome.failure = Some(failure.clone());
            return progress.outcome;
        }
        // The checks stop at the first enforced failure.
        let _ = self.run(input, &mut progress);
        progress.outcome
    }

    fn ask(&self, need: PluginNeed) {
        if let Some(needs) = self.plugin_needs {
            let mut needs = needs.borrow_mut();
            if !needs.contains(&need) {
                needs.push(need);
            }
        }
    }

    fn run(&self, input: &SignatureInput, progress: &mut Progress) -> Result<(), ()> {
        // Asked only for plugin needs: a signature that names no plugin has none.
        if self.plugin_needs.is_some() {
            let names_plugin = Envelope::parse(&input.media_type, &input.envelope)
                .and_then(|e| e.content())
                .is_ok_and(|c| plugin::required(&c.signer_info).is_some());
            if !names_plugin {
                return Err(());
            }
        }
        // Integrity: always enforced.
        let action = self.action(Check::Integrity);
        let content = match integrity(input) {
            Ok(content) => {
                progress.outcome.envelope =
                    Some(inspect::envelope_info(&input.media_type, &content));
                progress.record(Check::Integrity, action, Ok(String::new()))?;
                content
            }
            Err(message) => {
                if let Ok(envelope) = Envelope::parse(&input.media_type, &input.envelope)
                    && let Ok(content) = envelope.content()
                {
                    progress.outcome.envelope =
                        Some(inspect::envelope_info(&input.media_type, &content));
                }
                progress.record(
                    Check::Integrity,
                    Action::Enforce,
                    Err::<Passed, _>((FailureKind::Integrity, message)),
                )?;
                return Err(());
            }
        };
        let si = &content.signer_info;

        // A verification plugin, when the signature names one: installed, new enough,
        // a verifier (plugin-extensibility.md §Verification workflow using plugin, 1).
        let required = plugin::required(si);
        let plugin_info = match &required {
            None => None,
            Some(required) => match plugin::resolve(required, self.plugins) {
                Ok(Some(info)) => Some(info),
                Ok(None) => {
                    self.ask(PluginNeed::Metadata(required.name.clone()));
                    progress.fail(
                        FailureKind::Integrity,
                        format!(
                            "digital signature requires verification plugin {}, which the host did not provide",
                            Q(&required.name)
                        ),
                    );
                    return Err(());
                }
                Err((kind, message)) => {
                    progress.fail(kind, message);
                    return Err(());
                }
            },
        };
        let has = |capability: &str| {
            plugin_info.is_some_and(|info| info.capabilities.iter().any(|c| c == capability))
        };

        // Authenticity: trust store, then trusted identity, as one result.
        let action = self.action(Check::Authenticity);
        if action == Action::Skip {
            progress.skipped(Check::Authenticity);
        } else {
            // A trust store that cannot be loaded fails authenticity; its kind lets the
            // overall failure report the store problem itself, as notation does.
            let result = authenticity::check(self, si, has(plugin::TRUSTED_IDENTITY));
            progress.record(Check::Authenticity, action, result)?;
        }

        // Expiry.
        let action = self.action(Check::Expiry);
        if action == Action::Skip {
            progress.skipped(Check::Expiry);
        } else {
            let result = match si.expiry {
                Some(expiry) if self.time >= expiry => Err((
                    FailureKind::Expiry,
                    format!("digital signature has expired on {}", Q(&expiry.rfc1123z())),
                )),
                Some(expiry) => Ok(format!("expires on {}", expiry.rfc1123z())),
                None => Ok(String::new()),
            };
            progress.record(Check::Expiry, action, result)?;
        }

        // Authentic timestamp; when it passes, it may say when the signature was made.
        let action = self.action(Check::AuthenticTimestamp);
        let mut signing_time = None;
        if action == Action::Skip {
            progress.skipped(Check::AuthenticTimestamp);
        } else {
            let result = match authentic_timestamp::check(self, si) {
                Ok((passed, time)) => {
                    signing_time = time;
                    Ok(passed)
                }
                Err(m) => Err((FailureKind::AuthenticTimestamp, m)),
            };
            progress.record(Check::AuthenticTimestamp, action, result)?;
        }

        // Revocation (the plugin's, when it has SIGNATURE_VERIFIER.REVOCATION_CHECK).
        let action = self.action(Check::Revocation);
        if action == Action::Skip {
            progress.skipped(Check::Revocation);
        } else if has(plugin::REVOCATION_CHECK) {
            // Below, with the plugin's answer.
        } else {
            let inputs = revocation::Inputs {
                evidence: self.evidence,
                time: self.time,
                signing_time,
                needs: self.needs,
            };
            let result =
                revocation::check_chain(&si.certificate_chain, ChainPurpose::CodeSigning, &inputs)
                    .map_err(|e| (FailureKind::Revocation, e.to_string()));
            progress.record(Check::Revocation, action, result)?;
        }

        // The plugin's verdicts, weighed under the same levels (step 5 and 6).
        if let (Some(required), Some(info)) = (&required, plugin_info) {
            self.plugin_verdicts(si, required, info, progress)?;
        }

        // The payload must describe this artifact.
        let signed = match payload::parse(&content.payload.content) {
            Ok(d) => d,
            Err(e) => {
                progress.fail(FailureKind::Integrity, e);
                return Err(());
            }
        };
        let matches = match self.target {
            Target::Oci { descriptor, .. } => signed
                .same_content(descriptor)
                .then_some(())
                .ok_or("content descriptor mismatch"),
            Target::Blob {
                media_type,
                digest,
                size,
                ..
            } => {
                let same = signed.digest == *digest
                    && signed.size == *size
                    && media_type.as_ref().is_none_or(|m| *m == signed.media_type);
                same.then_some(())
                    .ok_or("integrity check failed. signature does not match the given blob")
            }
        };
        if let Err(message) = matches {
            progress.fail(FailureKind::Integrity, message.to_owned());
            return Err(());
        }
        let missing = self
            .user_metadata
            .iter()
            .any(|(k, v)| signed.annotations.get(k) != Some(v));
        if missing {
            progress.fail(
                FailureKind::UserMetadata,
                "unable to find specified metadata in the signature".to_owned(),
            );
            return Err(());
        }
        Ok(())
    }
}

impl Context<'_> {
    /// Ask the plugin `verify-signature` (or read its answer) and record its verdicts.
    fn plugin_verdicts(
        &self,
        si: &crate::envelope::SignerInfo,
        required: &plugin::Required,
        info: &plugin::PluginInfo,
        progress: &mut Progress,
    ) -> Result<(), ()> {
        let mut capabilities: Vec<String> = info
            .capabilities
            .iter()
            .filter(|c| *c == plugin::TRUSTED_IDENTITY || *c == plugin::REVOCATION_CHECK)
            .cloned()
            .collect();
        if self.action(Check::Revocation) == Action::Skip {
            capabilities.retain(|c| c != plugin::REVOCATION_CHECK);
        }
        if self.action(Check::Authenticity) == Action::Skip {
            capabilities.retain(|c| c != plugin::TRUSTED_IDENTITY);
        }
        // Critical attributes this verifier does not know are the plugin's to process.
        let unprocessed: Vec<String> = plugin::plugin_attributes(si)
            .map(|a| a.key.clone())
            .collect();
        if capabilities.is_empty() && unprocessed.is_empty() {
            return Ok(());
        }
        let request = plugin::request(
            si,
            required,
            &unprocessed,
            &self.policy.statement.trusted_identities,
            &capabilities,
        );
        let response = match plugin::answer(&required.name, &request, self.plugins) {
            Some(Ok(response)) => response,
            Some(Err(reason)) => {
                progress.fail(
                    FailureKind::Integrity,
                    format!("verification plugin {} failed: {reason}", Q(&required.name)),
                );
                return Err(());
            }
            None => {
                self.ask(PluginNeed::VerifySignature {
                    name: required.name.clone(),
                    request,
                });
                progress.fail(
                    FailureKind::Integrity,
                    format!(
                        "verification plugin {} was not asked to verify the signature",
                        Q(&required.name)
                    ),
                );
                return Err(());
            }
        };
        let verdicts = match plugin::verdicts(&required.name, response, &capabilities, &unprocessed)
        {
            Ok(v) => v,
            Err((kind, message)) => {
                progress.fail(kind, message);
                return Err(());
            }
        };
        for verdict in verdicts {
            let check = if verdict.capability == plugin::TRUSTED_IDENTITY {
                Check::Authenticity
            } else {
                Check::Revocation
            };
            let note = format!("{} by plugin {}", verdict.capability, required.name);
            progress.record(check, self.action(check), verdict.result.map(|()| note))?;
        }
        Ok(())
    }
}

/// Integrity: parse by media type, verify the signature and chain, check the payload
/// content type, and refuse critical attributes this verifier does not implement
/// (unless a verification plugin is named: they are then the plugin's to process).
fn integrity(input: &SignatureInput) -> Result<EnvelopeContent, String> {
    let envelope = Envelope::parse(&input.media_type, &input.envelope)
        .map_err(|e| format!("unable to parse the digital signature, error : {e}"))?;
    let content = envelope.verify().map_err(|e| e.to_string())?;
    if content.payload.content_type != PAYLOAD_CONTENT_TYPE {
        return Err(format!(
            "payload content type {} not supported",
            Q(&content.payload.content_type)
        ));
    }
    if plugin::required(&content.signer_info).is_some() {
        return Ok(content);
    }
    for extended in &content.signer_info.extended_attributes {
        if extended.critical && extended.key != attr::VERIFICATION_PLUGIN_MIN_VERSION {
            return Err(format!(
                "signature envelope has critical attribute {} that this verifier does not understand",
                Q(&extended.key)
            ));
        }
    }
    Ok(content)
}

/// Validate a policy document and describe its statements.
pub fn check_policy(policy: &PolicyInput) -> Result<Vec<AppliedPolicy>, Failure> {
    let document = trustpolicy::load(policy.kind, &policy.content)
        .map_err(|e| Failure::new(FailureKind::TrustPolicy, e.to_string()))?;
    Ok(document.policies.iter().map(AppliedPolicy::from).collect())
}

/// The statement that applies to `selector`.
pub fn select_policy(policy: &PolicyInput, selector: &Selector) -> Result<AppliedPolicy, Failure> {
    let document = trustpolicy::load(policy.kind, &policy.content)
        .map_err(|e| Failure::new(FailureKind::TrustPolicy, e.to_string()))?;
    document
        .select(selector)
        .map(AppliedPolicy::from)
        .map_err(|e| Failure::new(FailureKind::NoApplicablePolicy, e.to_string()))
}

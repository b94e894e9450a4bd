//! `hsm-notary verify`: gather the policy, trust stores and signatures; the component
//! decides; print notation's wording (or the outcome as JSON).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{
    Descriptor, Level, Outcome, PolicyInput, Selector, SignatureInput, Target, TrustStores,
    VerifyRequest,
};

use super::{emit, max_signatures, parse_metadata, verification_time};
use crate::cli::{VerifyArgs, VerifyOutput};
use crate::config::{self, ConfigDir};
use crate::engine::{self, Verifier};
use crate::layout::{self, Layout, LayoutRef};
use crate::oci;
use crate::output;
use crate::registry::{ArtifactRef, Registry};

/// What the policy, stores and options say, before any artifact is touched.
pub struct Inputs {
    /// The trust policy document.
    pub policy: PolicyInput,
    /// The trust stores.
    pub stores: TrustStores,
}

/// Load the trust policy and trust stores from flags or the configuration directory.
pub fn inputs(
    config: &ConfigDir,
    trust_policy: Option<&std::path::Path>,
    trust_store: Option<&std::path::Path>,
    kind: notary_verifier::DocumentKind,
) -> Result<Inputs> {
    let policy = match trust_policy {
        Some(path) => config::read_policy(path, kind)?,
        None => match kind {
            notary_verifier::DocumentKind::Oci => config.oci_policy()?,
            notary_verifier::DocumentKind::Blob => config.blob_policy()?,
        },
    };
    let store_root = trust_store
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| config.trust_store_dir());
    let stores = config::truststore::read(&store_root)?;
    Ok(Inputs { policy, stores })
}

/// Where signatures come from: an OCI layout on disk or a registry.
pub trait SignatureSource {
    /// The signature manifests that may be signatures of `subject`, in order (at most
    /// `max`; the bool says more exist). Cheap: no envelope is read.
    fn candidates(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<oci::Descriptor>, bool)>;

    /// The envelope of `candidate`: `Ok(None)` when it turns out not to be a Notary
    /// Project signature of `subject` (it is not counted), an error when it cannot be
    /// read (it is counted, and reported as skipped).
    fn read(
        &self,
        candidate: &oci::Descriptor,
        subject: &oci::Descriptor,
    ) -> Result<Option<SignatureInput>>;

    /// Every readable signature of `subject` (at most `max` candidates; the bool says
    /// more exist) and how many could not be read (each named in a warning).
    fn signatures(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<SignatureInput>, bool, usize)> {
        let (candidates, more) = self.candidates(subject, max)?;
        let mut out = Vec::new();
        let mut unreadable = 0;
        for candidate in &candidates {
            match self.read(candidate, subject) {
                Ok(found) => out.extend(found),
                Err(e) => {
                    eprintln!(
                        "Warning: Skipping signature {} because of error: {e:#}",
                        candidate.digest
                    );
                    unreadable += 1;
                }
            }
        }
        Ok((out, more, unreadable))
    }
}

impl SignatureSource for Layout {
    fn candidates(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<oci::Descriptor>, bool)> {
        Layout::signature_manifests(self, &subject.digest, max)
    }

    fn read(
        &self,
        candidate: &oci::Descriptor,
        subject: &oci::Descriptor,
    ) -> Result<Option<SignatureInput>> {
        let Some(signature) = self.signature(candidate, &subject.digest)? else {
            return Ok(None);
        };
        let envelope = self.read_blob(
            &signature.envelope,
            oci::MAX_ENVELOPE_SIZE,
            "signature envelope",
        )?;
        Ok(Some(SignatureInput {
            media_type: signature.media_type,
            envelope,
            manifest_digest: Some(signature.manifest.digest),
            prior_failure: None,
        }))
    }
}

impl SignatureSource for Registry {
    fn candidates(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<oci::Descriptor>, bool)> {
        let mut referrers = self.referrers(&subject.digest)?;
        let more = referrers.len() > max;
        referrers.truncate(max);
        Ok((referrers, more))
    }

    fn read(
        &self,
        candidate: &oci::Descriptor,
        subject: &oci::Descriptor,
    ) -> Result<Option<SignatureInput>> {
        self.signature(candidate, subject)
    }
}

impl Registry {
    /// The envelope of signature manifest `descriptor`, if it is a Notary Project
    /// signature of `subject` (digest and size checked on every fetch).
    pub fn signature(
        &self,
        descriptor: &oci::Descriptor,
        subject: &oci::Descriptor,
    ) -> Result<Option<SignatureInput>> {
        let (bytes, _) = self.manifest(&descriptor.digest, Some(descriptor))?;
        let Ok(manifest) = serde_json::from_slice::<oci::Manifest>(&bytes) else {
            return Ok(None);
        };
        let Some(layer) = manifest.signature_envelope(&subject.digest, &descriptor.digest)? else {
            return Ok(None);
        };
        let envelope = self.blob(layer, oci::MAX_ENVELOPE_SIZE, "signature envelope")?;
        Ok(Some(SignatureInput {
            media_type: layer.media_type.clone(),
            envelope,
            manifest_digest: Some(descriptor.digest.clone()),
            prior_failure: None,
        }))
    }
}

/// Resolve a registry reference to its manifest descriptor (warning on tags).
pub fn resolve_remote(
    registry: &Registry,
    artifact: &ArtifactRef,
    verb: &str,
) -> Result<oci::Descriptor> {
    let wanted = artifact
        .digest
        .clone()
        .or_else(|| artifact.tag.clone())
        .unwrap_or_default();
    let (_, descriptor) = registry.manifest(&wanted, None)?;
    if let Some(tag) = &artifact.tag {
        eprintln!(
            "Warning: Always {verb} the artifact using digest(@sha256:...) rather than a tag(:{tag}) because resolved digest may not point to the same signed artifact, as tags are mutable."
        );
    }
    Ok(descriptor)
}

/// Run `verify`.
pub fn run(args: &VerifyArgs, config: &ConfigDir) -> Result<ExitCode> {
    let max = max_signatures(args.max_signatures)?;
    let scope = match (&args.scope, args.oci_layout) {
        (Some(scope), true) => Some(scope),
        (None, true) => bail!(
            "if any flags in the group [oci-layout scope] are set they must all be set; missing [scope]"
        ),
        (_, false) => None,
    };
    let metadata = parse_metadata(&args.user_metadata, "user-metadata")?;
    let time = verification_time(args.verify_at.as_deref())?;
    let engine = engine::engine(args.engine.engine)?;
    let fetcher = crate::revocation::Fetcher::new(args.revocation.options()?);
    let revocation = fetcher
        .unbounded()
        .with_plugins(args.plugins.plugins(config)?);
    let inputs = inputs(
        config,
        args.trust_policy.as_deref(),
        args.trust_store.as_deref(),
        notary_verifier::DocumentKind::Oci,
    )?;
    let Some(scope) = scope else {
        let artifact = ArtifactRef::parse(&args.reference)?;
        let registry = Registry::connect(&artifact, &args.registry.options_in(config)?)?;
        let target = resolve_remote(&registry, &artifact, "verify")?;
        let name = artifact.name();
        return verify_with_platform(
            args,
            &target,
            &name,
            |index| registry.index_manifests(index),
            |descriptor| {
                let reference = format!("{name}@{}", descriptor.digest);
                let outcome = verify_artifact(
                    engine.as_ref(),
                    &registry,
                    &inputs,
                    descriptor,
                    &reference,
                    metadata.clone(),
                    time,
                    max,
                    &revocation,
                )?;
                Ok((outcome, reference))
            },
            |outcome| approvals(args, engine.as_ref(), &revocation, &inputs, outcome, time),
        );
    };

    let (path, reference) = layout::parse_reference(&args.reference)?;
    let layout = Layout::open(&path)?;
    let target = layout.resolve(&reference)?;
    if let LayoutRef::Tag(tag) = &reference {
        eprintln!(
            "Warning: Always verify the artifact using digest(@sha256:...) rather than a tag(:{tag}) because resolved digest may not point to the same signed artifact, as tags are mutable."
        );
    }
    let name = path.display().to_string();
    verify_with_platform(
        args,
        &target,
        &name,
        |index| layout.index_manifests(index),
        |descriptor| {
            let outcome = verify_artifact(
                engine.as_ref(),
                &layout,
                &inputs,
                descriptor,
                &format!("{scope}@{}", descriptor.digest),
                metadata.clone(),
                time,
                max,
                &revocation,
            )?;
            Ok((outcome, format!("{name}@{}", descriptor.digest)))
        },
        |outcome| approvals(args, engine.as_ref(), &revocation, &inputs, outcome, time),
    )
}

/// Verify `target`; with `--platform`, `target` must be an image index and that platform's
/// manifest must verify too (both are reported; the first failure decides the exit code).
fn verify_with_platform(
    args: &VerifyArgs,
    target: &oci::Descriptor,
    name: &str,
    children: impl Fn(&oci::Descriptor) -> Result<Vec<oci::Descriptor>>,
    verify_one: impl Fn(&oci::Descriptor) -> Result<(Outcome, String)>,
    approvals: impl Fn(&Outcome) -> Result<Option<String>>,
) -> Result<ExitCode> {
    let Some(platform) = &args.platform else {
        let (outcome, reference) = verify_one(target)?;
        let approved = approvals(&outcome)?;
        let code = report(&outcome, &reference, args.output);
        if let Some(line) = approved {
            eprintln!("{line}");
        }
        return Ok(code);
    };
    if args.require_approvals.is_some() {
        bail!("--require-approvals is not supported with --platform yet");
    }
    let reference = format!("{name}@{}", target.digest);
    if target.media_type != oci::MEDIA_TYPE_IMAGE_INDEX {
        bail!("--platform {platform}: {reference} is not an image index");
    }
    let child = oci::platform_manifest(children(target)?, platform)
        .ok_or_else(|| anyhow::anyhow!("{reference} has no manifest for platform {platform}"))?;
    let (outcome, reference) = verify_one(target)?;
    let (child_outcome, child_reference) = verify_one(&child)?;
    let index_code = report(&outcome, &reference, args.output);
    let child_code = report(&child_outcome, &child_reference, args.output);
    let failed = |o: &Outcome| o.decision == notary_verifier::Decision::Failed;
    Ok(if failed(&outcome) {
        index_code
    } else if failed(&child_outcome) {
        child_code
    } else {
        ExitCode::SUCCESS
    })
}

/// `--require-approvals M --approvers-store NAME`, checked on a verified outcome: the
/// line to print after the report, or the error that fails the verification.
fn approvals(
    args: &VerifyArgs,
    engine: &dyn Verifier,
    revocation: &crate::revocation::Bounded,
    inputs: &Inputs,
    outcome: &Outcome,
    time: notary_verifier::Instant,
) -> Result<Option<String>> {
    let (Some(required), Some(store)) = (args.require_approvals, &args.approvers_store) else {
        return Ok(None);
    };
    if outcome.decision != notary_verifier::Decision::Verified {
        return Ok(None);
    }
    let approvers = super::approval::require_approvals(
        engine,
        revocation,
        &inputs.stores,
        outcome,
        required,
        store,
        time,
    )
    .context("signature verification failed: the approval check (--require-approvals)")?;
    Ok(Some(format!(
        "Approvals verified: {} distinct approvers from ca:{store} ({}), {required} required",
        approvers.len(),
        approvers.join("; ")
    )))
}

/// The debug log of a verification, step by step in notation's words (`-d`): the
/// level checked, each signature against the artifact, then each validation.
fn log_steps(outcome: &Outcome) {
    use notary_verifier::{Check, ValidationStatus};
    if let Some(policy) = &outcome.policy {
        tracing::debug!(
            "Check verification level: trust policy statement {:?}, level {:?}",
            policy.statement,
            policy.level
        );
    }
    for signature in &outcome.signatures {
        let digest = signature
            .envelope
            .as_ref()
            .map(|e| e.payload.digest.clone())
            .unwrap_or_default();
        tracing::debug!(
            "Verify signature {} against artifact {digest}",
            signature.manifest_digest.as_deref().unwrap_or("(file)")
        );
        for result in &signature.results {
            let steps: &[&str] = match result.check {
                Check::Integrity => &["Validating integrity"],
                Check::Authenticity => &["Validating cert chain", "Validating trust identity"],
                Check::Expiry => &["Validating expiry"],
                Check::AuthenticTimestamp => &["Validating authentic timestamp"],
                Check::Revocation => &["Validating revocation"],
            };
            let message = result.message.as_deref().unwrap_or_default();
            let state = match result.status {
                ValidationStatus::Passed => format!("passed {message}"),
                ValidationStatus::Skipped => "skipped".to_owned(),
                ValidationStatus::Failed => format!(
                    "{} validation failed{}. Failure reason: {message}",
                    result.check.spec_name(),
                    if result.action == notary_verifier::Action::Log {
                        " with validation action set to \"logged\""
                    } else {
                        ""
                    }
                ),
            };
            for step in steps {
                tracing::debug!("{step}: {}", state.trim_end());
            }
        }
        if let Some(failure) = &signature.failure {
            tracing::debug!("Signature failed: {}", failure.message);
        }
    }
    if let Some(index) = outcome.verified_index {
        tracing::info!("Signature {index} verified");
    }
}

/// Print an outcome as text or JSON.
pub fn report(outcome: &Outcome, display: &str, format: VerifyOutput) -> ExitCode {
    log_steps(outcome);
    match format {
        VerifyOutput::Text => emit(&output::verify(outcome, display)),
        VerifyOutput::Json => {
            println!("{}", outcome.to_json());
            if outcome.decision == notary_verifier::Decision::Failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// Verify an artifact: select the statement first (so `skip` reads no signature), then
/// read the candidate signatures and let the engine decide.
#[allow(clippy::too_many_arguments)]
pub fn verify_artifact(
    engine: &dyn Verifier,
    source: &dyn SignatureSource,
    inputs: &Inputs,
    target: &oci::Descriptor,
    policy_reference: &str,
    user_metadata: Vec<(String, String)>,
    time: notary_verifier::Instant,
    max: usize,
    revocation: &crate::revocation::Bounded,
) -> Result<Outcome> {
    let selected = engine.select_policy(
        &inputs.policy,
        &Selector::OciReference(policy_reference.to_owned()),
    )?;
    let request = VerifyRequest {
        policy: inputs.policy.clone(),
        trust_stores: inputs.stores.clone(),
        target: Target::Oci {
            reference: policy_reference.to_owned(),
            descriptor: Descriptor {
                media_type: target.media_type.clone(),
                digest: target.digest.clone(),
                size: target.size,
                artifact_type: None,
                annotations: Default::default(),
            },
        },
        signatures: Vec::new(),
        user_metadata,
        verification_time: time,
        revocation_evidence: Vec::new(),
        max_signatures: u32::try_from(max).unwrap_or(u32::MAX),
        plugin_evidence: Vec::new(),
    };
    let skip = matches!(&selected, Ok(p) if p.level == Level::Skip);
    if selected.is_ok() && !skip {
        let (candidates, more) = source.candidates(target, max)?;
        if more {
            eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
        }
        return verify_in_windows(engine, source, target, &candidates, request, revocation);
    }
    engine.verify(&request)
}

/// Envelope bytes held at once: signatures are read and decided in windows of about this
/// much (the component gets each window with the failures of the earlier ones), so 1024
/// signatures of 32 MiB are never all in memory.
pub const WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// Read the candidates in order and let the engine decide, window by window, stopping at
/// the first window with a verified signature. A candidate that cannot be read is passed
/// on as failed with its reason (never aborting the rest); an earlier window's failures are
/// passed on the same way, so the engine's last answer covers every signature, and their
/// detailed outcomes are put back in its place.
pub fn verify_in_windows(
    engine: &dyn Verifier,
    source: &dyn SignatureSource,
    target: &oci::Descriptor,
    candidates: &[oci::Descriptor],
    mut request: VerifyRequest,
    revocation: &crate::revocation::Bounded,
) -> Result<Outcome> {
    use notary_verifier::outcome::{Failure, FailureKind, SignatureOutcome};
    let mut decided: Vec<SignatureOutcome> = Vec::new();
    let mut window: Vec<SignatureInput> = Vec::new();
    let mut held = 0usize;
    let mut pending = candidates.iter().peekable();
    loop {
        if let Some(candidate) = pending.next() {
            match source.read(candidate, target) {
                Ok(Some(signature)) => {
                    held += signature.envelope.len();
                    window.push(signature);
                }
                Ok(None) => {}
                Err(e) => {
                    let reason = format!("skipped signature manifest {}: {e:#}", candidate.digest);
                    eprintln!("Warning: {reason}");
                    window.push(SignatureInput {
                        media_type: candidate
                            .artifact_type
                            .clone()
                            .unwrap_or_else(|| candidate.media_type.clone()),
                        envelope: Vec::new(),
                        manifest_digest: Some(candidate.digest.clone()),
                        prior_failure: Some(Failure::new(FailureKind::SignatureRetrieval, reason)),
                    });
                }
            }
            if held < WINDOW_BYTES && pending.peek().is_some() {
                continue;
            }
        }
        let last = pending.peek().is_none();
        request.signatures = decided
            .iter()
            .map(|o| SignatureInput {
                media_type: o.media_type.clone(),
                envelope: Vec::new(),
                manifest_digest: o.manifest_digest.clone(),
                prior_failure: o.failure.clone(),
            })
            .chain(window.drain(..))
            .collect();
        held = 0;
        // The component names the OCSP/CRL evidence it needs; only that is fetched.
        let mut outcome = revocation.verify(engine, &mut request)?;
        for (slot, earlier) in outcome.signatures.iter_mut().zip(decided.drain(..)) {
            *slot = earlier;
        }
        if last
            || outcome.decision != notary_verifier::Decision::Failed
            || outcome.signatures.is_empty()
        {
            return Ok(outcome);
        }
        decided = outcome.signatures;
    }
}

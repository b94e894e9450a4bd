//! `hsm-notary verify`: gather the policy, trust stores and signatures; the component
//! decides; print notation's wording (or the outcome as JSON).

use std::process::ExitCode;

use anyhow::{Result, bail};
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
    /// The signatures of `subject` (at most `max`; the bool says more exist).
    fn signatures(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<SignatureInput>, bool)>;
}

impl SignatureSource for Layout {
    fn signatures(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<SignatureInput>, bool)> {
        let (found, more) = Layout::signatures(self, &subject.digest, max)?;
        let mut out = Vec::new();
        for signature in found {
            let envelope = self.read_blob(
                &signature.envelope,
                oci::MAX_ENVELOPE_SIZE,
                "signature envelope",
            )?;
            out.push(SignatureInput {
                media_type: signature.media_type,
                envelope,
                manifest_digest: Some(signature.manifest.digest),
            });
        }
        Ok((out, more))
    }
}

impl SignatureSource for Registry {
    fn signatures(
        &self,
        subject: &oci::Descriptor,
        max: usize,
    ) -> Result<(Vec<SignatureInput>, bool)> {
        let referrers = self.referrers(&subject.digest)?;
        let more = referrers.len() > max;
        let mut out = Vec::new();
        for descriptor in referrers.into_iter().take(max) {
            out.extend(self.signature(&descriptor, subject)?);
        }
        Ok((out, more))
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
        if !manifest.is_notary_signature()
            || manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.digest.as_str())
        {
            return Ok(None);
        }
        let [layer] = manifest.layers.as_slice() else {
            bail!(
                "signature manifest {} must have exactly one layer, found {}",
                descriptor.digest,
                manifest.layers.len()
            );
        };
        let envelope = self.blob(layer, oci::MAX_ENVELOPE_SIZE, "signature envelope")?;
        Ok(Some(SignatureInput {
            media_type: layer.media_type.clone(),
            envelope,
            manifest_digest: Some(descriptor.digest.clone()),
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
        let reference = format!("{}@{}", artifact.name(), target.digest);
        let outcome = verify_artifact(
            engine.as_ref(),
            &registry,
            &inputs,
            &target,
            &reference,
            metadata.clone(),
            time,
            max,
            &revocation,
        )?;
        let Some(platform) = &args.platform else {
            return Ok(report(&outcome, &reference, args.output));
        };
        // The index's signature and the platform manifest's: both must verify.
        if target.media_type != oci::MEDIA_TYPE_IMAGE_INDEX {
            bail!("--platform {platform}: {reference} is not an image index");
        }
        let child = registry
            .index_manifests(&target)?
            .into_iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(platform)))
            .ok_or_else(|| {
                anyhow::anyhow!("{reference} has no manifest for platform {platform}")
            })?;
        let child_reference = format!("{}@{}", artifact.name(), child.digest);
        let child_outcome = verify_artifact(
            engine.as_ref(),
            &registry,
            &inputs,
            &child,
            &child_reference,
            metadata,
            time,
            max,
            &revocation,
        )?;
        let index_code = report(&outcome, &reference, args.output);
        let child_code = report(&child_outcome, &child_reference, args.output);
        let failed = |o: &Outcome| o.decision == notary_verifier::Decision::Failed;
        return Ok(if failed(&outcome) {
            index_code
        } else if failed(&child_outcome) {
            child_code
        } else {
            ExitCode::SUCCESS
        });
    };

    if args.platform.is_some() {
        bail!(
            "--platform verifies image indexes in registries; it is not supported with --oci-layout yet"
        );
    }
    let (path, reference) = layout::parse_reference(&args.reference)?;
    let layout = Layout::open(&path)?;
    let target = layout.resolve(&reference)?;
    if let LayoutRef::Tag(tag) = &reference {
        eprintln!(
            "Warning: Always verify the artifact using digest(@sha256:...) rather than a tag(:{tag}) because resolved digest may not point to the same signed artifact, as tags are mutable."
        );
    }
    let display = format!("{}@{}", path.display(), target.digest);
    let policy_reference = format!("{scope}@{}", target.digest);
    let outcome = verify_artifact(
        engine.as_ref(),
        &layout,
        &inputs,
        &target,
        &policy_reference,
        metadata,
        time,
        max,
        &revocation,
    )?;
    Ok(report(&outcome, &display, args.output))
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
/// read every candidate signature and let the engine decide.
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
    let mut request = VerifyRequest {
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
        let (found, more) = source.signatures(target, max)?;
        request.signatures = found;
        if more {
            eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
        }
        // The component names the OCSP/CRL evidence it needs; only that is fetched.
        return revocation.verify(engine, &mut request);
    }
    engine.verify(&request)
}

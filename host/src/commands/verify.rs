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

/// Run `verify`.
pub fn run(args: &VerifyArgs, config: &ConfigDir) -> Result<ExitCode> {
    if !args.oci_layout {
        bail!(
            "{}: verifying artifacts in a registry is not available in this build; use --oci-layout with a layout on disk",
            args.reference
        );
    }
    let Some(scope) = &args.scope else {
        bail!(
            "if any flags in the group [oci-layout scope] are set they must all be set; missing [scope]"
        );
    };
    let max = max_signatures(args.max_signatures)?;
    let metadata = parse_metadata(&args.user_metadata, "user-metadata")?;
    let time = verification_time(args.verify_at.as_deref())?;
    let engine = engine::engine(args.engine.engine)?;
    let inputs = inputs(
        config,
        args.trust_policy.as_deref(),
        args.trust_store.as_deref(),
        notary_verifier::DocumentKind::Oci,
    )?;

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
    let outcome = verify_layout(
        engine.as_ref(),
        &layout,
        &inputs,
        &target,
        &policy_reference,
        metadata,
        time,
        max,
    )?;
    Ok(report(&outcome, &display, args.output))
}

/// Print an outcome as text or JSON.
pub fn report(outcome: &Outcome, display: &str, format: VerifyOutput) -> ExitCode {
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

/// Verify an artifact of a layout: select the statement first (so `skip` reads no
/// signature), then read every candidate signature and let the engine decide.
#[allow(clippy::too_many_arguments)]
pub fn verify_layout(
    engine: &dyn Verifier,
    layout: &Layout,
    inputs: &Inputs,
    target: &oci::Descriptor,
    policy_reference: &str,
    user_metadata: Vec<(String, String)>,
    time: notary_verifier::Instant,
    max: usize,
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
    };
    let skip = matches!(&selected, Ok(p) if p.level == Level::Skip);
    if selected.is_ok() && !skip {
        let (found, more) = layout.signatures(&target.digest, max)?;
        for signature in found {
            let envelope = layout.read_blob(
                &signature.envelope,
                oci::MAX_ENVELOPE_SIZE,
                "signature envelope",
            )?;
            request.signatures.push(SignatureInput {
                media_type: signature.media_type,
                envelope,
                manifest_digest: Some(signature.manifest.digest),
            });
        }
        if more {
            eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
        }
    }
    engine.verify(&request)
}

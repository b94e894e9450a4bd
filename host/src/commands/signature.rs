//! `hsm-notary signature delete` (notation#894: asked for, not in notation): remove a
//! signature manifest, keeping the referrers tag index in step, and say exactly what was
//! done when a step fails.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};

use crate::cli::SignatureDeleteArgs;
use crate::config::ConfigDir;
use crate::oci;
use crate::registry::{ArtifactRef, Registry};

/// Run `signature delete`.
pub fn delete(args: &SignatureDeleteArgs, config: &ConfigDir) -> Result<ExitCode> {
    let artifact = ArtifactRef::parse(&args.reference)?;
    let Some(digest) = artifact.digest.clone() else {
        bail!(
            "{}: signature delete needs a digest (REGISTRY/REPOSITORY@sha256:…): a tag can point elsewhere by the time it is read",
            args.reference
        );
    };
    let registry = Registry::connect(&artifact, &args.registry.options_in(config)?)?;
    let name = artifact.name();
    // (signature manifest digest, subject digest), each checked to be a Notary Project
    // signature before anything is deleted.
    let targets: Vec<(String, String)> = if args.all {
        let subject = super::verify::resolve_remote(&registry, &artifact, "delete signatures of")?;
        let mut found = Vec::new();
        for referrer in registry.referrers(&subject.digest)? {
            if let Some(subject_digest) = signature_subject(&registry, &referrer)?
                && subject_digest == subject.digest
            {
                found.push((referrer.digest.clone(), subject_digest));
            }
        }
        if found.is_empty() {
            println!("{name}@{digest} has no associated signatures");
            return Ok(ExitCode::SUCCESS);
        }
        found
    } else {
        let descriptor = oci::Descriptor {
            digest: digest.clone(),
            ..oci::Descriptor::default()
        };
        let subject = signature_subject(&registry, &descriptor)?.ok_or_else(|| {
            anyhow!(
                "{name}@{digest} is not a Notary Project signature manifest: nothing was deleted"
            )
        })?;
        vec![(digest.clone(), subject)]
    };
    if !args.yes {
        let question = match targets.as_slice() {
            [(signature, subject)] => format!(
                "Are you sure you want to delete signature {signature} of {name}@{subject}?"
            ),
            many => format!(
                "Are you sure you want to delete all {} signatures of {name}@{digest}?",
                many.len()
            ),
        };
        if !super::confirm(&question) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut done_all = Vec::new();
    for (signature, subject) in &targets {
        let (result, done) = registry.delete_signature(signature, subject);
        done_all.extend(done);
        if let Err(e) = result {
            let what = if done_all.is_empty() {
                "nothing was deleted".to_owned()
            } else {
                format!("done before the failure: {}", done_all.join("; "))
            };
            return Err(e.context(format!("failed to delete signature {signature} ({what})")));
        }
        println!("Successfully deleted signature {signature} of {name}@{subject}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The subject digest of signature manifest `descriptor`, or `None` when it is not a
/// Notary Project signature manifest with a subject.
fn signature_subject(registry: &Registry, descriptor: &oci::Descriptor) -> Result<Option<String>> {
    let expected = (descriptor.size > 0).then_some(descriptor);
    let (bytes, _) = registry.manifest(&descriptor.digest, expected)?;
    let Ok(manifest) = serde_json::from_slice::<oci::Manifest>(&bytes) else {
        return Ok(None);
    };
    if !manifest.is_notary_signature() {
        return Ok(None);
    }
    Ok(manifest.subject.map(|s| s.digest))
}

//! `hsm-notary signature delete` (notation#894: asked for, not in notation): remove a
//! signature manifest, keeping the referrers tag index in step, and say exactly what was
//! done when a step fails.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};

use crate::cli::SignatureDeleteArgs;
use crate::config::ConfigDir;
use crate::layout::{self, Layout};
use crate::oci;
use crate::registry::{ArtifactRef, Registry};

/// The most signatures `--all` deletes from a layout at once.
const MAX_LAYOUT_SIGNATURES: usize = 1024;

/// Run `signature delete`.
pub fn delete(args: &SignatureDeleteArgs, config: &ConfigDir) -> Result<ExitCode> {
    if args.oci_layout {
        return delete_from_layout(args);
    }
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
    if !args.yes && !super::confirm(&question(&name, &targets)) {
        return Ok(ExitCode::SUCCESS);
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

/// `signature delete --oci-layout`: the same choices and questions, on a layout directory;
/// `index.json` is replaced once, so a failure before that leaves the layout as it was.
fn delete_from_layout(args: &SignatureDeleteArgs) -> Result<ExitCode> {
    let (root, reference) = layout::parse_reference(&args.reference)?;
    let layout = Layout::open(&root)?;
    if layout.is_unpacked() {
        bail!(
            "{}: signatures can be deleted from an OCI layout directory, not from an archive",
            root.display()
        );
    }
    let name = root.display().to_string();
    let targets: Vec<(String, String)> = if args.all {
        let subject = layout.resolve(&reference)?;
        let (found, _) = layout.signature_manifests(&subject.digest, MAX_LAYOUT_SIGNATURES)?;
        if found.is_empty() {
            println!("{name}@{} has no associated signatures", subject.digest);
            return Ok(ExitCode::SUCCESS);
        }
        found
            .into_iter()
            .map(|d| (d.digest, subject.digest.clone()))
            .collect()
    } else {
        let layout::LayoutRef::Digest(digest) = &reference else {
            bail!(
                "{}: signature delete needs a digest (PATH@sha256:…): a tag can point elsewhere by the time it is read",
                args.reference
            );
        };
        let descriptor = layout.resolve(&reference)?;
        let subject = layout.signature_subject(&descriptor)?.ok_or_else(|| {
            anyhow!(
                "{name}@{digest} is not a Notary Project signature manifest: nothing was deleted"
            )
        })?;
        vec![(digest.clone(), subject)]
    };
    if !args.yes && !super::confirm(&question(&name, &targets)) {
        return Ok(ExitCode::SUCCESS);
    }
    let digests: Vec<String> = targets.iter().map(|(s, _)| s.clone()).collect();
    let (_, failed) = layout.remove_signatures(&digests)?;
    for (signature, subject) in &targets {
        println!("Successfully deleted signature {signature} of {name}@{subject}");
    }
    for why in failed {
        eprintln!("Warning: the signature is no longer listed, but a blob was left: {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The question asked before deleting `targets` (signature, subject) of `name`.
fn question(name: &str, targets: &[(String, String)]) -> String {
    match targets {
        [(signature, subject)] => {
            format!("Are you sure you want to delete signature {signature} of {name}@{subject}?")
        }
        many => format!(
            "Are you sure you want to delete all {} signatures of {name}@{}?",
            many.len(),
            many.first().map(|(_, s)| s.as_str()).unwrap_or_default()
        ),
    }
}

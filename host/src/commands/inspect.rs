//! `hsm-notary inspect` and `list`, for registries and OCI layouts.

use std::process::ExitCode;

use anyhow::{Result, bail};
use notary_verifier::SignatureInput;
use serde_json::{Value, json};

use super::max_signatures;
use super::verify::{SignatureSource, resolve_remote};
use crate::cli::InspectOutput;
use crate::engine::Verifier;
use crate::layout::{self, Layout, LayoutRef};
use crate::oci;
use crate::output::{self, Tree};
use crate::registry::{ArtifactRef, Registry};

type Opened = (Box<dyn SignatureSource>, oci::Descriptor, String);

fn open(
    reference: &str,
    oci_layout: bool,
    verb: &str,
    registry: &crate::registry::Options,
) -> Result<Opened> {
    if !oci_layout {
        let artifact = ArtifactRef::parse(reference)?;
        let remote = Registry::connect(&artifact, registry)?;
        let target = resolve_remote(&remote, &artifact, verb)?;
        let display = format!("{}@{}", artifact.name(), target.digest);
        return Ok((Box::new(remote), target, display));
    }
    let (path, reference) = layout::parse_reference(reference)?;
    let layout = Layout::open(&path)?;
    let target = layout.resolve(&reference)?;
    if let LayoutRef::Tag(tag) = &reference {
        eprintln!(
            "Warning: Always {verb} the artifact using digest(@sha256:...) rather than a tag(:{tag}) because resolved digest may not point to the same signed artifact, as tags are mutable."
        );
    }
    let display = format!("{}@{}", path.display(), target.digest);
    Ok((Box::new(layout), target, display))
}

/// `inspect REF` (registry, or `--oci-layout`).
pub fn inspect(
    engine: &dyn Verifier,
    reference: &str,
    oci_layout: bool,
    format: InspectOutput,
    max: i64,
    registry: &crate::registry::Options,
) -> Result<ExitCode> {
    let max = max_signatures(max)?;
    let (source, target, display) = open(reference, oci_layout, "inspect", registry)?;
    // One envelope held at a time: each is read, inspected and dropped (1024 signatures of
    // 32 MiB are never all in memory); one that cannot be read is skipped with its reason.
    let (candidates, more) = source.candidates(&target, max)?;
    let mut skipped = false;
    let mut entries = Vec::new();
    for candidate in &candidates {
        let input: SignatureInput = match source.read(candidate, &target) {
            Ok(Some(input)) => input,
            Ok(None) => continue,
            Err(e) => {
                eprintln!(
                    "Warning: Skipping signature {} because of error: {e:#}",
                    candidate.digest
                );
                skipped = true;
                continue;
            }
        };
        let digest = input.manifest_digest.clone().unwrap_or_default();
        match engine.inspect(&input)? {
            Ok(info) => entries.push((digest, info)),
            Err(f) => {
                eprintln!(
                    "Warning: Skipping signature {digest} because of error: {}",
                    f.message
                );
                skipped = true;
            }
        }
    }
    match format {
        InspectOutput::Tree => {
            if entries.is_empty() && !skipped {
                println!("{display} has no associated signature");
            } else {
                println!("Inspecting all signatures for signed artifact");
                let mut root = Tree::new(&display);
                let node = root.child(Tree::new(oci::ARTIFACT_TYPE_NOTARY));
                for (digest, info) in &entries {
                    node.child(output::inspect_tree(digest, info));
                }
                print!("{}", root.render());
            }
        }
        InspectOutput::Json => {
            let signatures: Vec<Value> = entries
                .iter()
                .map(|(digest, info)| output::inspect_json(info, Some(digest)))
                .collect();
            print!(
                "{}",
                output::json_text(
                    &json!({ "mediaType": target.media_type, "signatures": signatures })
                )
            );
        }
    }
    if more {
        // On stderr: stdout may be JSON.
        eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
    }
    if skipped {
        bail!("at least one signature was skipped and not displayed");
    }
    Ok(ExitCode::SUCCESS)
}

/// `list REF` (registry, or `--oci-layout`).
pub fn list(
    reference: &str,
    oci_layout: bool,
    max: i64,
    format: crate::cli::ListOutput,
    registry: &crate::registry::Options,
) -> Result<ExitCode> {
    let max = max_signatures(max)?;
    let (source, target, display) = open(reference, oci_layout, "list", registry)?;
    let (found, more, _unreadable) = source.signatures(&target, max)?;
    if format == crate::cli::ListOutput::Json {
        let signatures: Vec<serde_json::Value> = found
            .iter()
            .map(|s| {
                serde_json::json!({
                    "digest": s.manifest_digest,
                    "artifactType": oci::ARTIFACT_TYPE_NOTARY,
                    "mediaType": s.media_type,
                })
            })
            .collect();
        print!(
            "{}",
            output::json_text(&serde_json::json!({
                "reference": display,
                "signatures": signatures,
                "truncated": more,
            }))
        );
    } else if found.is_empty() {
        println!("{display} has no associated signatures");
    } else {
        let mut root = Tree::new(&display);
        let node = root.child(Tree::new(oci::ARTIFACT_TYPE_NOTARY));
        for signature in found {
            node.child(Tree::new(signature.manifest_digest.unwrap_or_default()));
        }
        print!("{}", root.render());
    }
    if more {
        eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
    }
    Ok(ExitCode::SUCCESS)
}

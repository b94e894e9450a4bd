//! `hsm-notary inspect` and `list` for OCI layouts.

use std::process::ExitCode;

use anyhow::{Result, bail};
use notary_verifier::SignatureInput;
use serde_json::{Value, json};

use super::max_signatures;
use crate::cli::InspectOutput;
use crate::engine::Verifier;
use crate::layout::{self, Layout, LayoutRef};
use crate::oci;
use crate::output::{self, Tree};

fn open(
    reference: &str,
    oci_layout: bool,
    verb: &str,
) -> Result<(Layout, oci::Descriptor, String)> {
    if !oci_layout {
        bail!(
            "{reference}: inspecting artifacts in a registry is not available in this build; use --oci-layout with a layout on disk"
        );
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
    Ok((layout, target, display))
}

/// `inspect --oci-layout REF`.
pub fn inspect(
    engine: &dyn Verifier,
    reference: &str,
    oci_layout: bool,
    format: InspectOutput,
    max: i64,
) -> Result<ExitCode> {
    let max = max_signatures(max)?;
    let (layout, target, display) = open(reference, oci_layout, "inspect")?;
    let (found, more) = layout.signatures(&target.digest, max)?;
    let mut skipped = false;
    let mut entries = Vec::new();
    for signature in found {
        let envelope = match layout.read_blob(
            &signature.envelope,
            oci::MAX_ENVELOPE_SIZE,
            "signature envelope",
        ) {
            Ok(e) => e,
            Err(e) => {
                eprintln!(
                    "Warning: unable to fetch signature {} due to error: {e:#}",
                    signature.manifest.digest
                );
                skipped = true;
                continue;
            }
        };
        let input = SignatureInput {
            media_type: signature.media_type.clone(),
            envelope,
            manifest_digest: Some(signature.manifest.digest.clone()),
        };
        match engine.inspect(&input)? {
            Ok(info) => entries.push((signature.manifest.digest, info)),
            Err(f) => {
                eprintln!(
                    "Warning: Skipping signature {} because of error: {}",
                    signature.manifest.digest, f.message
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
        println!("Warning: exceeded configured limit of max signatures {max} to examine");
    }
    if skipped {
        bail!("at least one signature was skipped and not displayed");
    }
    Ok(ExitCode::SUCCESS)
}

/// `list --oci-layout REF`.
pub fn list(reference: &str, oci_layout: bool, max: i64) -> Result<ExitCode> {
    let max = max_signatures(max)?;
    let (layout, target, display) = open(reference, oci_layout, "list")?;
    let (found, more) = layout.signatures(&target.digest, max)?;
    if found.is_empty() {
        println!("{display} has no associated signatures");
    } else {
        let mut root = Tree::new(&display);
        let node = root.child(Tree::new(oci::ARTIFACT_TYPE_NOTARY));
        for signature in found {
            node.child(Tree::new(signature.manifest.digest));
        }
        print!("{}", root.render());
    }
    if more {
        eprintln!("Warning: exceeded configured limit of max signatures {max} to examine");
    }
    Ok(ExitCode::SUCCESS)
}

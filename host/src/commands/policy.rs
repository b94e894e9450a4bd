//! `hsm-notary policy import|show`: the OCI trust policy of the configuration directory.
//! A document is validated as a whole (by the verifier) before it is written.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{DocumentKind, FailureKind, PolicyInput};

use super::{confirm, write_private};
use crate::config::{ConfigDir, LEGACY_OCI_POLICY, OCI_POLICY};
use crate::engine::Verifier;

/// `policy import FILE [--force]`.
pub fn import(
    engine: &dyn Verifier,
    config: &ConfigDir,
    file: &std::path::Path,
    force: bool,
) -> Result<ExitCode> {
    let content = std::fs::read(file).with_context(|| {
        format!(
            "failed to read OCI trust policy configuration: {}",
            file.display()
        )
    })?;
    let policy = PolicyInput {
        kind: DocumentKind::Oci,
        content,
    };
    validate_for_import(engine, &policy, "OCI")?;
    let existing = config.oci_policy().ok();
    if !may_overwrite(engine, existing.as_ref(), force, "OCI")? {
        return Ok(ExitCode::SUCCESS);
    }
    let target = config.root().join(OCI_POLICY);
    write_private(&target, &policy.content)
        .map_err(|e| anyhow::anyhow!("failed to write OCI trust policy configuration: {e}"))?;
    let absolute = std::fs::canonicalize(&target).unwrap_or(target);
    println!(
        "Successfully imported OCI trust policy configuration to {}.",
        absolute.display()
    );
    let legacy = config.root().join(LEGACY_OCI_POLICY);
    if legacy.symlink_metadata().is_ok() {
        match std::fs::remove_file(&legacy) {
            Ok(()) => println!("Deleted old trust policy configuration {LEGACY_OCI_POLICY}."),
            Err(e) => eprintln!(
                "Warning: failed to delete old trust policy configuration {LEGACY_OCI_POLICY}: {e}"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// notation's import checks of a trust policy document, worded for `label` (`OCI`,
/// `blob`): unparsable and invalid documents are told apart.
pub fn validate_for_import(engine: &dyn Verifier, policy: &PolicyInput, label: &str) -> Result<()> {
    if let Err(failure) = engine.check_policy(policy)? {
        if failure.kind == FailureKind::TrustPolicy
            && failure.message.starts_with("malformed trust policy")
        {
            bail!(
                "failed to parse {label} trust policy configuration: {}",
                failure.message
            );
        }
        bail!(
            "failed to validate {label} trust policy configuration: {}",
            failure.message
        );
    }
    Ok(())
}

/// Whether a new policy may replace `existing`: only a valid existing one is asked about
/// (`--force`: notation's warning instead of the question).
pub fn may_overwrite(
    engine: &dyn Verifier,
    existing: Option<&PolicyInput>,
    force: bool,
    label: &str,
) -> Result<bool> {
    let valid = match existing {
        Some(policy) => engine.check_policy(policy)?.is_ok(),
        None => false,
    };
    if !valid {
        return Ok(true);
    }
    if force {
        eprintln!("Warning: existing {label} trust policy configuration will be overwritten");
        return Ok(true);
    }
    Ok(confirm(&format!(
        "The {label} trust policy configuration already exists, do you want to overwrite it?"
    )))
}

/// `policy show`: the document as stored; a warning when it is invalid.
pub fn show(engine: &dyn Verifier, config: &ConfigDir) -> Result<ExitCode> {
    let policy = config.oci_policy().context("failed to show trust policy")?;
    if let Err(failure) = engine.check_policy(&policy)? {
        eprintln!(
            "Existing OCI trust policy configuration is invalid, you may update or create a new one via `hsm-notary policy import <path-to-policy.json>`. {}",
            failure.message
        );
    }
    // As stored, byte for byte (it need not end with a newline).
    super::write_stdout(&policy.content).context("writing the trust policy to stdout")?;
    Ok(ExitCode::SUCCESS)
}

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
    let content = std::fs::read(file).map_err(|e| {
        anyhow::anyhow!(
            "failed to read OCI trust policy configuration: {}",
            crate::files::go_path_error("open", file, &e)
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
    let primary = config.root().join(OCI_POLICY);
    let legacy = config.root().join(LEGACY_OCI_POLICY);
    if primary.symlink_metadata().is_err() {
        if legacy.symlink_metadata().is_err() {
            bail!(
                "failed to show OCI trust policy as it does not exist.\nYou can import one using `hsm-notary policy import <path-to-policy.json>`"
            );
        }
        eprintln!(
            "Warning: old trust policy `{LEGACY_OCI_POLICY}` is deprecated; please update the trust policy configuration via `hsm-notary policy import`."
        );
    }
    let policy = config
        .oci_policy()
        .map_err(|e| anyhow::anyhow!("failed to show OCI trust policy: {e:#}"))?;
    let invalid = engine.check_policy(&policy)?.err();
    if invalid.is_some() {
        eprintln!(
            "Existing OCI trust policy configuration is invalid, you may update or create a new one via `hsm-notary policy import <path-to-policy.json>`. See https://github.com/notaryproject/specifications/blob/8cf800c60b7315a43f0adbcae463d848a353b412/specs/trust-store-trust-policy.md#trust-policy-for-oci-artifacts for a trust policy example."
        );
    }
    // As stored, byte for byte (it need not end with a newline), even when invalid.
    super::write_stdout(&policy.content).context("writing the trust policy to stdout")?;
    match invalid {
        Some(failure) => bail!("{}", failure.message),
        None => Ok(ExitCode::SUCCESS),
    }
}

//! `hsm-notary cert add|list|show|delete`: certificates of the named trust stores
//! (`truststore/x509/{type}/{store}/`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{NamedStore, StoreFile, StoreType, TrustStores};

use super::{confirm, write_private};
use crate::config::ConfigDir;
use crate::engine::Verifier;

fn store_dir(config: &ConfigDir, store_type: StoreType, store: &str) -> std::path::PathBuf {
    config
        .trust_store_dir()
        .join("x509")
        .join(store_type.name())
        .join(store)
}

/// A certificate file name inside a store: one path component, not `.` or `..`, so
/// `cert show`/`cert delete` never reach outside the store.
fn check_file_name(file: &str) -> Result<()> {
    if file.is_empty()
        || file == "."
        || file == ".."
        || file.contains(['/', '\\'])
        || file.contains('\0')
    {
        bail!("certificate file name {file:?} must be a file name in the store, not a path");
    }
    Ok(())
}

fn check_store_name(store: &str) -> Result<()> {
    if !notary_verifier::trustpolicy::is_valid_store_name(store) {
        bail!("named store name needs to follow [a-zA-Z0-9_.-]+ format");
    }
    Ok(())
}

/// `cert add`: every file must hold certificates the verifier would admit to this store.
pub fn add(
    engine: &dyn Verifier,
    config: &ConfigDir,
    store_type: StoreType,
    store: &str,
    files: &[std::path::PathBuf],
) -> Result<ExitCode> {
    check_store_name(store)?;
    let dir = store_dir(config, store_type, store);
    let mut added = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        match add_one(engine, &dir, store_type, store, file) {
            Ok(()) => added.push(file),
            Err(e) => failed.push((file, e)),
        }
    }
    if !added.is_empty() {
        println!(
            "Successfully added following certificates to named store {store} of type {}:",
            store_type.name()
        );
        for file in &added {
            println!("{}", file.display());
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut message = format!(
        "Failed to add following certificates to named store {store} of type {}:",
        store_type.name()
    );
    for (file, e) in failed {
        message.push_str(&format!("\n{}, with error \"{e:#}\"", file.display()));
    }
    bail!(message)
}

fn add_one(
    engine: &dyn Verifier,
    dir: &Path,
    store_type: StoreType,
    store: &str,
    file: &Path,
) -> Result<()> {
    let name = file
        .file_name()
        .context("not a file path")?
        .to_string_lossy()
        .into_owned();
    let content = std::fs::read(file)?;
    let probe = TrustStores {
        stores: vec![NamedStore {
            store_type,
            name: store.to_owned(),
            files: vec![StoreFile {
                name: name.clone(),
                content: content.clone(),
            }],
        }],
    };
    if let Err(failure) = engine.load_trust_store(&probe, store_type, store)? {
        bail!(failure.message);
    }
    let target = dir.join(&name);
    if target.symlink_metadata().is_ok() {
        bail!("certificate already exists in the Trust Store");
    }
    write_private(&target, &content)
}

/// `cert list [--type] [--store]`.
pub fn list(
    config: &ConfigDir,
    store_type: Option<StoreType>,
    store: Option<&str>,
    format: crate::cli::ListOutput,
) -> Result<ExitCode> {
    let stores = crate::config::truststore::read(&config.trust_store_dir())?;
    let rows: Vec<(String, String, String)> = stores
        .stores
        .iter()
        .filter(|s| store_type.is_none_or(|t| t == s.store_type))
        .filter(|s| store.is_none_or(|n| n == s.name))
        .flat_map(|s| {
            s.files.iter().map(|f| {
                (
                    s.store_type.name().to_owned(),
                    s.name.clone(),
                    f.name.clone(),
                )
            })
        })
        .collect();
    if format == crate::cli::ListOutput::Json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(t, n, f)| serde_json::json!({"storeType": t, "storeName": n, "certificate": f}))
            .collect();
        print!(
            "{}",
            crate::output::json_text(&serde_json::Value::Array(rows))
        );
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let width = |i: usize, header: &str| {
        rows.iter()
            .map(|r| [&r.0, &r.1, &r.2][i].len())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (
        width(0, "STORE TYPE"),
        width(1, "STORE NAME"),
        width(2, "CERTIFICATE"),
    );
    println!(
        "{:<w0$}   {:<w1$}   {:<w2$}   ",
        "STORE TYPE", "STORE NAME", "CERTIFICATE"
    );
    for (t, n, f) in rows {
        println!("{t:<w0$}   {n:<w1$}   {f:<w2$}   ");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cert show`.
pub fn show(
    engine: &dyn Verifier,
    config: &ConfigDir,
    store_type: StoreType,
    store: &str,
    file: &str,
) -> Result<ExitCode> {
    check_store_name(store)?;
    check_file_name(file)?;
    let path = store_dir(config, store_type, store).join(file);
    let content = crate::files::read_regular(&path, 1 << 20)
        .with_context(|| format!("failed to show details of certificate {file}"))?;
    let probe = TrustStores {
        stores: vec![NamedStore {
            store_type,
            name: store.to_owned(),
            files: vec![StoreFile {
                name: file.to_owned(),
                content,
            }],
        }],
    };
    let certs = engine
        .load_trust_store(&probe, store_type, store)?
        .map_err(|f| {
            anyhow::anyhow!(
                "failed to show details of certificate {file}, with error: {}",
                f.message
            )
        })?;
    println!("Certificate details");
    for cert in certs {
        println!("{}", "-".repeat(80));
        println!("Issuer: {}", cert.issuer);
        println!("Subject: {}", cert.subject);
        println!("Valid from: {}", go_time(cert.not_before));
        println!("Valid to: {}", go_time(cert.not_after));
        println!("IsCA: {}", cert.is_ca);
        println!("SHA256 Thumbprint: {}", cert.sha256);
    }
    Ok(ExitCode::SUCCESS)
}

fn go_time(t: notary_verifier::Instant) -> String {
    let text = t.utc().rfc3339();
    format!("{} {} +0000 UTC", &text[..10], &text[11..19])
}

/// `cert delete`.
pub fn delete(
    config: &ConfigDir,
    store_type: StoreType,
    store: &str,
    file: Option<&str>,
    all: bool,
    yes: bool,
) -> Result<ExitCode> {
    check_store_name(store)?;
    let dir = store_dir(config, store_type, store);
    match (file, all) {
        (Some(_), true) => bail!(
            "cannot delete a single certificate file when --all flag is set. use --help flag for more details"
        ),
        (None, false) => bail!(
            "delete requires either the certificate file name that needs to be deleted or --all flag to delete all certificates in the given named trust store"
        ),
        (None, true) => {
            if !yes
                && !confirm(&format!(
                    "Are you sure you want to delete all certificates in {store:?} of type {:?}?",
                    store_type.name()
                ))
            {
                return Ok(ExitCode::SUCCESS);
            }
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("failed to delete the named trust store: {e}"))?;
            println!("Successfully deleted {}", dir.display());
        }
        (Some(file), false) => {
            check_file_name(file)?;
            // Checked before asking, as notation does.
            let path = dir.join(file);
            if let Err(e) = path.symlink_metadata() {
                bail!(
                    "failed to delete the certificate file: {}",
                    crate::files::go_path_error("stat", &path, &e)
                );
            }
            if !yes
                && !confirm(&format!(
                    "Are you sure you want to delete {file:?} in {store:?} of type {:?}?",
                    store_type.name()
                ))
            {
                return Ok(ExitCode::SUCCESS);
            }
            std::fs::remove_file(&path).map_err(|e| {
                anyhow::anyhow!(
                    "failed to delete the certificate file: {}",
                    crate::files::go_path_error("remove", &path, &e)
                )
            })?;
            println!(
                "Successfully deleted {file} from trust store {store} of type {}",
                store_type.name()
            );
            if std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
                && let Err(e) = std::fs::remove_dir(&dir)
            {
                eprintln!(
                    "Warning: failed to remove the empty trust store directory {}: {e}",
                    dir.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

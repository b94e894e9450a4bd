//! The Notary Project plugin protocol (`plugin-extensibility.md`, contract version 1.0),
//! both ways:
//!
//! - [`protocol`]: the requests and responses, exactly as notation sends and reads them;
//! - [`process`]: running a plugin executable (a timeout, 64 MiB per output channel, a
//!   clean environment, errors parsed from stderr);
//! - [`install`]: `plugin install|list|uninstall` on notation's
//!   `plugins/{name}/notation-{name}` layout;
//! - [`signer`]: plugins as key providers (`SIGNATURE_GENERATOR.RAW` and `.ENVELOPE`),
//!   every answer checked before anything is published;
//! - [`verifier`]: verification plugins (`verify-signature`), asked for the component;
//! - [`hsm`]: `notation-hsm-notary`, this project's PKCS#11 signer as a notation plugin.

pub mod hsm;
pub mod install;
pub mod process;
pub mod protocol;
pub mod signer;
pub mod verifier;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The plugin directory: `$HSM_NOTARY_LIBEXEC/plugins`, else `$NOTATION_LIBEXEC/plugins`,
/// else `{config}/plugins` (notation's rule, so a notation configuration works unchanged).
pub fn plugin_root(config: &Path) -> PathBuf {
    std::env::var_os("HSM_NOTARY_LIBEXEC")
        .or_else(|| std::env::var_os("NOTATION_LIBEXEC"))
        .map(PathBuf::from)
        .unwrap_or_else(|| config.to_path_buf())
        .join("plugins")
}

/// A plugin name as notation accepts it: it becomes a directory and a file name, so no
/// separators, no `..`, nothing empty.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control)
    {
        bail!("invalid plugin name {name:?}");
    }
    Ok(())
}

/// Where the executable of plugin `name` is: `{root}/{name}/notation-{name}`.
pub fn executable_path(root: &Path, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    Ok(root.join(name).join(format!("notation-{name}")))
}

/// The installed plugin `name`, checked as the spec's plugin candidate tests say: a
/// regular file (symlinks are not followed) that may be executed.
pub fn locate(root: &Path, name: &str) -> Result<PathBuf> {
    let path = executable_path(root, name)?;
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_file() => {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o111 == 0 {
                bail!(
                    "plugin file `notation-{name}` is not executable. Use `hsm-notary plugin install` command to install the plugin"
                );
            }
            Ok(path)
        }
        Ok(_) => bail!(
            "plugin executable file {} is not a regular file (symlinks are not supported)",
            path.display()
        ),
        Err(e) => bail!(
            "plugin executable file is either not found or inaccessible: stat {}: {}",
            path.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_owned()
            } else {
                e.kind().to_string()
            }
        ),
    }
}

//! The configuration directory, in notation's layout:
//!
//! ```text
//! {config}/trustpolicy.oci.json            OCI trust policy (legacy name: trustpolicy.json)
//! {config}/trustpolicy.blob.json           blob trust policy
//! {config}/truststore/x509/{ca,signingAuthority,tsa}/{store}/{cert files}
//! ```
//!
//! chosen by `--config-dir`, else `HSM_NOTARY_CONFIG`, else `$XDG_CONFIG_HOME/hsm-notary`
//! (`~/.config/hsm-notary`).

pub mod keys;
pub mod truststore;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use notary_verifier::{DocumentKind, PolicyInput};

const POLICY_LINK: &str = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy";

/// File name of the OCI trust policy.
pub const OCI_POLICY: &str = "trustpolicy.oci.json";
/// Legacy file name of the OCI trust policy.
pub const LEGACY_OCI_POLICY: &str = "trustpolicy.json";
/// File name of the blob trust policy.
pub const BLOB_POLICY: &str = "trustpolicy.blob.json";

/// notation's `config.json`: the settings hsm-notary reads (credential entries are read
/// from docker's configuration, as before).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Registries reached over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// The default envelope format (`jws` or `cose`).
    #[serde(default)]
    pub signature_format: Option<String>,
}

/// The user's home: `$HOME`, else the password database's entry for this user (services
/// and containers often run without `HOME`; notation#449).
pub fn home_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    let uid = rustix::process::getuid().as_raw().to_string();
    let passwd = crate::files::read_regular(Path::new("/etc/passwd"), 16 << 20).ok()?;
    String::from_utf8_lossy(&passwd).lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2] == uid && fields[5].starts_with('/'))
            .then(|| PathBuf::from(fields[5]))
    })
}

/// The cache directory (CRLs): `$HSM_NOTARY_CACHE`, else notation's `$NOTATION_CACHE` (whose
/// `crl/` then is shared with notation: same format), else `$XDG_CACHE_HOME/hsm-notary`, else
/// `~/.cache/hsm-notary`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) =
        std::env::var_os("HSM_NOTARY_CACHE").or_else(|| std::env::var_os("NOTATION_CACHE"))
    {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("hsm-notary"));
    }
    crate::config::home_dir().map(|home| home.join(".cache").join("hsm-notary"))
}

/// The configuration directory.
#[derive(Clone, Debug)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    /// Resolve the directory from an explicit path or the environment.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        if let Some(path) = explicit {
            return Ok(Self::at(path));
        }
        // hsm-notary's variable, else notation's: a notation configuration works unchanged.
        if let Some(path) =
            std::env::var_os("HSM_NOTARY_CONFIG").or_else(|| std::env::var_os("NOTATION_CONFIG"))
        {
            return Ok(Self::at(Path::new(&path)));
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match home_dir() {
                Some(home) => home.join(".config"),
                None => bail!(
                    "cannot locate a configuration directory: set HSM_NOTARY_CONFIG, XDG_CONFIG_HOME or HOME, or pass --config-dir"
                ),
            },
        };
        Ok(Self::at(&base.join("hsm-notary")))
    }

    /// `config.json` (notation's): absent is the defaults; a file that is not valid JSON
    /// of that shape is an error naming it.
    pub fn settings(&self) -> Result<Settings> {
        let path = self.root.join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a valid configuration", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The envelope format: the flag, else `signatureFormat` of `config.json`, else JWS.
    pub fn signature_format(
        &self,
        flag: Option<crate::cli::SignatureFormat>,
    ) -> Result<crate::cli::SignatureFormat> {
        use crate::cli::SignatureFormat;
        if let Some(format) = flag {
            return Ok(format);
        }
        Ok(match self.settings()?.signature_format.as_deref() {
            None => SignatureFormat::Jws,
            Some(f) if f.eq_ignore_ascii_case("jws") => SignatureFormat::Jws,
            Some(f) if f.eq_ignore_ascii_case("cose") => SignatureFormat::Cose,
            Some(other) => bail!(
                "signature format {other:?} not supported\nSupported signature envelope formats are \"jws\" and \"cose\""
            ),
        })
    }

    /// A directory at `path`.
    pub fn at(path: &Path) -> Self {
        Self {
            root: path.to_path_buf(),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The trust store root (`truststore/`).
    pub fn trust_store_dir(&self) -> PathBuf {
        self.root.join("truststore")
    }

    /// Read the OCI trust policy: `trustpolicy.oci.json`, else `trustpolicy.json`.
    pub fn oci_policy(&self) -> Result<PolicyInput> {
        let primary = self.root.join(OCI_POLICY);
        let path = if primary.symlink_metadata().is_ok() {
            primary
        } else {
            self.root.join(LEGACY_OCI_POLICY)
        };
        read_policy(&path, DocumentKind::Oci)
    }

    /// Read the blob trust policy.
    pub fn blob_policy(&self) -> Result<PolicyInput> {
        read_policy(&self.root.join(BLOB_POLICY), DocumentKind::Blob)
    }
}

/// Read a trust policy file: a regular file (not a symlink), within the size limit.
pub fn read_policy(path: &Path, kind: DocumentKind) -> Result<PolicyInput> {
    let meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("trust policy is not present. To create a trust policy, see: {POLICY_LINK}")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot access {}", path.display())),
    };
    if !meta.file_type().is_file() {
        bail!(
            "trust policy is not a regular file (symlinks are not supported). To create a trust policy, see: {POLICY_LINK}"
        );
    }
    if meta.len() > notary_verifier::trustpolicy::MAX_POLICY_SIZE as u64 {
        bail!(
            "trust policy {} is {} bytes, over the limit of {} bytes",
            path.display(),
            meta.len(),
            notary_verifier::trustpolicy::MAX_POLICY_SIZE
        );
    }
    let content = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "unable to read trust policy due to file permissions, please verify the permissions of {}",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("reading {}", path.display()))
        }
    })?;
    Ok(PolicyInput { kind, content })
}

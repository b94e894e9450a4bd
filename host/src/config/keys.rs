//! The signing key list, `signingkeys.json` in notation's format, with PKCS#11 entries:
//!
//! ```text
//! { "default": "release",
//!   "keys": [ { "name": "dev", "keyPath": "/abs/dev.key", "certPath": "/abs/dev.crt" },
//!             { "name": "release", "pkcs11Uri": "pkcs11:token=ci;object=release",
//!               "pkcs11Module": "/usr/lib/softhsm/libsofthsm2.so", "certPath": "/abs/release.crt" } ] }
//! ```
//!
//! A PKCS#11 entry stores where the key is, never the PIN. A plugin entry is notation's
//! `{ "name", "id", "pluginName", "pluginConfig" }` (`notation key add --plugin`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::pkcs11::{self, Pkcs11Uri, Token};
use crate::sign::{KeySource, SigningKey, local::LocalKey, read_chain};

/// One key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Unique name.
    pub name: String,
    /// Local PEM key file.
    #[serde(rename = "keyPath", default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// Certificate chain file (PEM, leaf first).
    #[serde(rename = "certPath", default, skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// PKCS#11 URI of the key.
    #[serde(rename = "pkcs11Uri", default, skip_serializing_if = "Option::is_none")]
    pub pkcs11_uri: Option<String>,
    /// PKCS#11 module, when the URI does not name it.
    #[serde(
        rename = "pkcs11Module",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pkcs11_module: Option<PathBuf>,
    /// The key id a plugin knows the key by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The plugin that holds the key.
    #[serde(
        rename = "pluginName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub plugin_name: Option<String>,
    /// Configuration sent with every request to the plugin.
    #[serde(
        rename = "pluginConfig",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub plugin_config: std::collections::BTreeMap<String, String>,
}

/// `signingkeys.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// Default key name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The keys.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

const FILE: &str = "signingkeys.json";

impl KeyList {
    /// Load from the configuration directory (absent = empty).
    pub fn load(config: &Path) -> Result<Self> {
        let path = config.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let list: Self =
            serde_json::from_slice(&bytes).with_context(|| format!("malformed {FILE}"))?;
        if let Some(default) = &list.default
            && !list.keys.iter().any(|k| &k.name == default)
        {
            bail!("malformed {FILE}: default key '{default}' not found");
        }
        Ok(list)
    }

    /// Save with mode 0600 (4-space indent, as notation writes it).
    pub fn save(&self, config: &Path) -> Result<()> {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        self.serialize(&mut serializer)?;
        out.push(b'\n');
        crate::commands::write_private(&config.join(FILE), &out)
    }

    /// Add a key; names are unique.
    pub fn add(&mut self, entry: KeyEntry, make_default: bool) -> Result<()> {
        if entry.name.is_empty() {
            bail!("key name cannot be empty");
        }
        if self.keys.iter().any(|k| k.name == entry.name) {
            bail!("signing key with name {:?} already exists", entry.name);
        }
        if make_default {
            self.default = Some(entry.name.clone());
        }
        self.keys.push(entry);
        Ok(())
    }

    /// The entry named `name`, or the default.
    pub fn get(&self, name: Option<&str>) -> Result<&KeyEntry> {
        let name = match name {
            Some(n) => n,
            None => self.default.as_deref().ok_or_else(|| {
                anyhow!("default signing key not set. Please set default signing key or specify a key name")
            })?,
        };
        self.keys
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| anyhow!("signing key {name} not found"))
    }
}

impl KeyEntry {
    /// Open the key (logging in to the HSM if needed) with its chain, and check that
    /// the key belongs to the chain's leaf.
    pub fn open(&self, module_flag: Option<&Path>) -> Result<SigningKey> {
        if self.plugin_name.is_some() && self.key_path.is_none() {
            bail!(
                "key {:?} is held by plugin {:?}: it is opened through the plugin",
                self.name,
                self.plugin_name.as_deref().unwrap_or_default()
            );
        }
        let cert_path = self
            .cert_path
            .as_deref()
            .ok_or_else(|| anyhow!("key {:?} has no certificate chain (certPath)", self.name))?;
        let chain = read_chain(cert_path)?;
        let (source, public_der) = if let Some(uri) = &self.pkcs11_uri {
            let uri = Pkcs11Uri::parse(uri)?;
            let module = pkcs11::module_path(&uri, module_flag.or(self.pkcs11_module.as_deref()))?;
            let token = Token::open(&uri, &module)?;
            let label = uri
                .object
                .clone()
                .ok_or_else(|| anyhow!("the PKCS#11 URI of key {:?} names no object", self.name))?;
            let key = token.key(&label)?;
            let public = der::Encode::to_der(&key.spki)?;
            (KeySource::Pkcs11(Arc::new(key)), public)
        } else if let Some(path) = &self.key_path {
            let key = LocalKey::read(path)?;
            let public = key.public_key_der()?;
            (KeySource::Local(Box::new(key)), public)
        } else {
            bail!("key {:?} has neither keyPath nor pkcs11Uri", self.name);
        };
        let leaf = notary_verifier::x509::Cert::from_der(&chain[0]).map_err(|e| anyhow!("{e}"))?;
        let leaf_public =
            der::Encode::to_der(leaf.parsed().tbs_certificate().subject_public_key_info())?;
        if leaf_public != public_der {
            bail!(
                "key {:?} does not match the leaf certificate of {}",
                self.name,
                cert_path.display()
            );
        }
        Ok(SigningKey { source, chain })
    }
}

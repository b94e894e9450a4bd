//! The signing service's configuration file (JSON): where it listens, its TLS files, its
//! database, and one approval policy per key. Checked as a whole at start, every error
//! naming the key and field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConfig {
    /// `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// TLS files.
    pub tls: TlsFiles,
    /// The SQLite database (created if missing).
    pub database: PathBuf,
    /// Approval policies by the key name requesters use.
    pub keys: BTreeMap<String, KeyPolicy>,
}

/// The service's TLS identity and the CA its clients' certificates must chain to.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub certificate: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA certificates for client certificates (PEM); required.
    pub client_ca: PathBuf,
}

/// One key's approval policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPolicy {
    /// The key in the service's `signingkeys.json` (default: the policy's name).
    #[serde(default)]
    pub signing_key: Option<String>,
    /// Approvals needed (M).
    pub required: usize,
    /// The `ca` trust store (in the service's trust store directory) approvers chain to.
    pub approvers_store: String,
    /// `x509.subject: …` identities that may approve (N), or `*`.
    pub trusted_identities: Vec<String>,
    /// How long a request waits for approvals (Go duration, default `24h`).
    #[serde(default = "default_lifetime")]
    pub request_lifetime: String,
    /// Whether the requester may approve its own request (default false): compared by
    /// subject, the requester's TLS certificate with the approval's signing certificate.
    #[serde(default)]
    pub requester_may_approve: bool,
}

fn default_lifetime() -> String {
    "24h".to_owned()
}

impl KeyPolicy {
    /// The signing key's name.
    pub fn signing_key<'a>(&'a self, name: &'a str) -> &'a str {
        self.signing_key.as_deref().unwrap_or(name)
    }

    /// The request lifetime.
    pub fn lifetime(&self) -> Result<Duration> {
        crate::sign::parse_go_duration(&self.request_lifetime)
    }
}

impl ServiceConfig {
    /// Read and check `path`; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::files::read_regular(path, 1 << 20)
            .with_context(|| format!("reading the signer configuration {}", path.display()))?;
        let mut config: Self = serde_json::from_slice(&bytes)
            .with_context(|| format!("the signer configuration {} is invalid", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for file in [
            &mut config.tls.certificate,
            &mut config.tls.key,
            &mut config.tls.client_ca,
            &mut config.database,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        config.check()?;
        Ok(config)
    }

    /// The rules a policy must meet (the trust-policy rules of the identities are the
    /// verifier's, checked when the service starts).
    pub fn check(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && self.listen.ip().is_unspecified() {
            // Binding everywhere is allowed, but never by accident: say so.
            eprintln!(
                "Warning: the signer listens on every interface ({})",
                self.listen
            );
        }
        if self.keys.is_empty() {
            bail!("the signer configuration names no keys");
        }
        for (name, policy) in &self.keys {
            let at = |field: &str| format!("keys.{name}.{field}");
            if policy.required == 0 {
                bail!("{}: must be at least 1", at("required"));
            }
            if policy.trusted_identities.is_empty() {
                bail!("{}: names no approver", at("trustedIdentities"));
            }
            let wildcard = policy.trusted_identities.iter().any(|i| i == "*");
            if !wildcard && policy.required > policy.trusted_identities.len() {
                bail!(
                    "{}: {} approvals required but only {} trusted identities listed",
                    at("required"),
                    policy.required,
                    policy.trusted_identities.len()
                );
            }
            if policy.approvers_store.is_empty() {
                bail!("{}: is empty", at("approversStore"));
            }
            let lifetime = policy
                .lifetime()
                .with_context(|| format!("{}: not a duration", at("requestLifetime")))?;
            if lifetime.is_zero() {
                bail!("{}: must be positive", at("requestLifetime"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn config(keys: &str) -> Result<ServiceConfig> {
        let text = format!(
            r#"{{"listen":"127.0.0.1:0","tls":{{"certificate":"s.pem","key":"s.key","clientCa":"ca.pem"}},"database":"s.db","keys":{keys}}}"#
        );
        let config: ServiceConfig = serde_json::from_str(&text)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn policies_are_checked_with_the_key_and_field_named() {
        let ok = r#"{"release":{"required":2,"approversStore":"approvers","trustedIdentities":["x509.subject: CN=a","x509.subject: CN=b"]}}"#;
        assert_eq!(
            config(ok).unwrap().keys["release"]
                .lifetime()
                .unwrap()
                .as_secs(),
            86_400
        );
        for (keys, needle) in [
            (r#"{}"#, "names no keys"),
            (
                r#"{"r":{"required":0,"approversStore":"a","trustedIdentities":["*"]}}"#,
                "keys.r.required: must be at least 1",
            ),
            (
                r#"{"r":{"required":3,"approversStore":"a","trustedIdentities":["x509.subject: CN=a","x509.subject: CN=b"]}}"#,
                "3 approvals required but only 2",
            ),
            (
                r#"{"r":{"required":1,"approversStore":"a","trustedIdentities":["*"],"requestLifetime":"soon"}}"#,
                "keys.r.requestLifetime",
            ),
            (
                r#"{"r":{"required":1,"approversStore":"a","trustedIdentities":["*"],"quorum":1}}"#,
                "unknown field",
            ),
        ] {
            let error = format!("{:#}", config(keys).unwrap_err());
            assert!(error.contains(needle), "{keys}: {error}");
        }
    }
}

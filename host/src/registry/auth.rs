//! Registry credentials: `--username` with `--password-stdin`, `HSM_NOTARY_USERNAME` /
//! `HSM_NOTARY_PASSWORD` (else notation's `NOTATION_USERNAME` / `NOTATION_PASSWORD`),
//! then the docker `config.json` (`credHelpers`, `auths`, `credsStore`). Passwords are
//! `SecretString`s and never printed.
//!
//! Explicit credentials (flags and variables) are bound to one registry ([`Binding`]): the
//! reference's for a one-shot command, `--registry-host` when given, and none in `serve`,
//! Ratify and containerd modes, where a pod spec names the host — there only the docker
//! config's per-host entries apply, so `evil.example/x@sha256:…` gets nothing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use secrecy::SecretString;

use super::client::Credentials;
use super::{Binding, Options};

/// Credentials for `host`, or `None` for anonymous access.
pub fn credentials(host: &str, options: &Options) -> Result<Option<Credentials>> {
    let bound_here = match &options.binding {
        Binding::Reference => true,
        Binding::Host(bound) => bound.eq_ignore_ascii_case(host),
        Binding::Nowhere => false,
    };
    if bound_here && let Some(explicit) = explicit(options) {
        return Ok(Some(explicit));
    }
    docker_config(host)
}

/// Whether flags or variables hold credentials (for the modes that refuse them).
pub fn has_explicit(options: &Options) -> bool {
    explicit(options).is_some()
}

fn explicit(options: &Options) -> Option<Credentials> {
    if options.username.is_some() || options.password.is_some() {
        return Some(Credentials {
            username: options.username.clone().unwrap_or_default(),
            password: options
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        });
    }
    // hsm-notary's variables, else notation's (a pair is taken together).
    for (user, password) in [
        ("HSM_NOTARY_USERNAME", "HSM_NOTARY_PASSWORD"),
        ("NOTATION_USERNAME", "NOTATION_PASSWORD"),
    ] {
        if let Ok(user) = std::env::var(user) {
            let password = std::env::var(password).unwrap_or_default();
            return Some(Credentials {
                username: user,
                password: SecretString::from(password),
            });
        }
    }
    None
}

fn docker_config(host: &str) -> Result<Option<Credentials>> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => match crate::config::home_dir() {
            Some(home) => home.join(".docker"),
            None => return Ok(None),
        },
    };
    let path = dir.join("config.json");
    // Bounded: a config.json is a few KiB.
    let Ok(bytes) = crate::files::read_regular(&path, 1 << 20) else {
        return Ok(None);
    };
    let config: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if let Some(helper) = config["credHelpers"][host].as_str() {
        return helper_get(helper, host);
    }
    if let Some(auth) = config["auths"][host]["auth"].as_str() {
        let decoded = notary_verifier::encoding::decode_base64(
            notary_verifier::encoding::Base64::Std,
            auth.as_bytes(),
        )
        .map_err(|e| anyhow!("{}: auths[{host:?}].auth: {e}", path.display()))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| anyhow!("{}: auths[{host:?}].auth is not UTF-8", path.display()))?;
        let (user, password) = text.split_once(':').ok_or_else(|| {
            anyhow!(
                "{}: auths[{host:?}].auth is not user:password",
                path.display()
            )
        })?;
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: SecretString::from(password.to_owned()),
        }));
    }
    if let Some(store) = config["credsStore"].as_str() {
        return helper_get(store, host);
    }
    Ok(None)
}

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a helper may print.
const MAX_HELPER_OUTPUT: u64 = 1 << 16;

/// `docker-credential-<helper> get` with the host on stdin.
fn helper_get(helper: &str, host: &str) -> Result<Option<Credentials>> {
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("invalid credential helper name {helper:?}");
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        // The PIN and registry passwords are not passed on to a helper.
        .env_remove("HSM_NOTARY_PASSWORD")
        .env_remove("NOTATION_PASSWORD")
        .env_remove("HSM_NOTARY_PKCS11_PIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running credential helper {program}"))?;
    if let Some(mut stdin) = child.stdin.take()
        && let Err(e) = stdin.write_all(host.as_bytes())
    {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e).with_context(|| format!("writing to credential helper {program}"));
    }
    // Read in a thread and wait with a deadline: a helper that never answers (a locked
    // keychain waiting for a prompt) must not hang signing or verification.
    let mut stdout = child
        .stdout
        .take()
        .with_context(|| format!("{program}: no stdout"))?;
    let (sender, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut stdout, MAX_HELPER_OUTPUT),
            &mut bytes,
        );
        let _ = sender.send(bytes);
    });
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "credential helper {program} did not answer for {host} within {} s",
                HELPER_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A helper that exits but leaves a child holding its stdout open is given up on too.
    let stdout = output
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .map_err(|_| {
            anyhow!(
                "credential helper {program} did not finish its answer for {host} within {} s",
                HELPER_TIMEOUT.as_secs()
            )
        })?;
    if !status.success() {
        // No credentials stored for this host: go anonymous.
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(&stdout)
        .with_context(|| format!("{program} printed something other than JSON"))?;
    let (Some(user), Some(secret)) = (value["Username"].as_str(), value["Secret"].as_str()) else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        username: user.to_owned(),
        password: SecretString::from(secret.to_owned()),
    }))
}

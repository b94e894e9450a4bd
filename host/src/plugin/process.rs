//! Running a plugin executable as the contract says: the command as the only argument,
//! the request on stdin, the response on stdout (exit 0) or a JSON error on stderr.
//!
//! A plugin is someone else's code. It runs in its own process group with a timeout
//! that covers reading its output (a child it leaves holding the pipes open cannot hang
//! us), each output channel is capped while it is read, and its environment is cleared
//! but for a short list: registry credentials never reach it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::ErrorResponse;

/// The cap on each output channel (notation's: less than 64 MiB).
pub const MAX_OUTPUT: usize = 64 << 20;

/// The default time a plugin command may take, reading its output included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables a plugin gets from this process's environment, when set.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
];

/// Variables never passed, even when `HSM_NOTARY_PLUGIN_ENV` names them: registry
/// credentials belong to the registry (notation unsets its own before running plugins).
const NEVER_PASSED: &[&str] = &[
    "HSM_NOTARY_USERNAME",
    "HSM_NOTARY_PASSWORD",
    "NOTATION_USERNAME",
    "NOTATION_PASSWORD",
];

/// What went wrong running a plugin command. Every variant names the plugin and command.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The executable could not be started.
    #[error("failed to run plugin {plugin} {command}: {source}")]
    Spawn {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The command did not finish in time; its process group was killed.
    #[error("plugin {plugin} {command} timed out after {after:?} and was stopped")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// The limit.
        after: Duration,
    },
    /// An output channel passed the cap.
    #[error("plugin {plugin} {command} wrote more than {limit} bytes on {channel} and was stopped")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// `stdout` or `stderr`.
        channel: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The plugin answered with an error response.
    #[error("{message}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// The spec's error code, as sent.
        code: String,
        /// `errorMessage`, or a summary when there is none.
        message: String,
    },
    /// A non-zero exit with nothing on stderr.
    #[error("plugin {plugin} {command} failed: {status}")]
    Exit {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// The exit status.
        status: std::process::ExitStatus,
    },
    /// stderr (on failure) or stdout (on success) is not the JSON the contract defines.
    #[error("plugin {plugin} {command} returned a malformed {what}: {detail}")]
    Malformed {
        /// Plugin name.
        plugin: String,
        /// Command.
        command: String,
        /// `response` or `error response`.
        what: &'static str,
        /// Parser message, with a bounded, escaped excerpt of what was sent.
        detail: String,
    },
}

impl PluginError {
    /// The error code a plugin sent, if it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Failed { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One plugin executable and how to run it.
#[derive(Clone, Debug)]
pub struct Plugin {
    /// Its name (the install directory).
    pub name: String,
    /// Its executable.
    pub path: PathBuf,
    /// Time allowed per command.
    pub timeout: Duration,
}

impl Plugin {
    /// `path`, named `name`, with the default timeout.
    pub fn new(name: &str, path: &Path) -> Self {
        Self {
            name: name.to_owned(),
            path: path.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Run `command` with `request`, and parse the response.
    pub fn call<Q: Serialize, R: DeserializeOwned>(
        &self,
        command: &str,
        request: &Q,
    ) -> Result<R, PluginError> {
        let input =
            serde_json::to_vec(request).map_err(|e| self.malformed(command, "request", e))?;
        tracing::debug!("Plugin {command} request: {}", excerpt(&input, 64 * 1024));
        let stdout = self.run(command, &input)?;
        tracing::debug!("Plugin {command} response: {}", excerpt(&stdout, 64 * 1024));
        serde_json::from_slice(&stdout).map_err(|e| PluginError::Malformed {
            plugin: self.name.clone(),
            command: command.to_owned(),
            what: "response",
            detail: format!("{e} in {}", excerpt(&stdout, 200)),
        })
    }

    fn malformed(&self, command: &str, what: &'static str, e: serde_json::Error) -> PluginError {
        PluginError::Malformed {
            plugin: self.name.clone(),
            command: command.to_owned(),
            what,
            detail: e.to_string(),
        }
    }

    /// Run `command` with `input` on stdin; stdout on success.
    pub fn run(&self, command: &str, input: &[u8]) -> Result<Vec<u8>, PluginError> {
        let deadline = Instant::now() + self.timeout;
        let mut child = self.spawn(command)?;
        let (tx, rx) = mpsc::channel::<Channel>();
        let mut stdin = child.stdin.take();
        let input = input.to_vec();
        // A plugin that never reads stdin must not block us writing it.
        std::thread::spawn(move || {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(&input);
            }
        });
        for (name, pipe) in [
            (
                "stdout",
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                "stderr",
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let result = pipe.map_or(Ok(Vec::new()), |p| read_capped(p, MAX_OUTPUT));
                let _ = tx.send(Channel { name, result });
            });
        }
        drop(tx);
        let mut stdout = None;
        let mut stderr = None;
        while stdout.is_none() || stderr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Channel { name, result }) => match result {
                    Ok(bytes) if name == "stdout" => stdout = Some(bytes),
                    Ok(bytes) => stderr = Some(bytes),
                    Err(()) => {
                        stop(&mut child);
                        return Err(PluginError::OutputTooLarge {
                            plugin: self.name.clone(),
                            command: command.to_owned(),
                            channel: name,
                            limit: MAX_OUTPUT,
                        });
                    }
                },
                Err(_) => {
                    stop(&mut child);
                    return Err(self.timeout_error(command));
                }
            }
        }
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => {
                    stop(&mut child);
                    return Err(self.timeout_error(command));
                }
                Err(source) => {
                    stop(&mut child);
                    return Err(PluginError::Spawn {
                        plugin: self.name.clone(),
                        command: command.to_owned(),
                        source,
                    });
                }
            }
        };
        let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
        if status.success() {
            return Ok(stdout);
        }
        // notation parses stderr for any non-zero exit, not only 1; so does this.
        if stderr.iter().all(u8::is_ascii_whitespace) {
            return Err(PluginError::Exit {
                plugin: self.name.clone(),
                command: command.to_owned(),
                status,
            });
        }
        match serde_json::from_slice::<ErrorResponse>(&stderr) {
            Ok(error) if !error.error_code.is_empty() || !error.error_message.is_empty() => {
                let message = if error.error_message.is_empty() {
                    format!(
                        "plugin {} {command} failed with {}",
                        self.name, error.error_code
                    )
                } else {
                    error.error_message
                };
                Err(PluginError::Failed {
                    plugin: self.name.clone(),
                    command: command.to_owned(),
                    code: error.error_code,
                    message,
                })
            }
            Ok(_) => Err(PluginError::Malformed {
                plugin: self.name.clone(),
                command: command.to_owned(),
                what: "error response",
                detail: "neither errorCode nor errorMessage".to_owned(),
            }),
            Err(e) => Err(PluginError::Malformed {
                plugin: self.name.clone(),
                command: command.to_owned(),
                what: "error response",
                detail: format!("{e} in {}", excerpt(&stderr, 200)),
            }),
        }
    }

    fn timeout_error(&self, command: &str) -> PluginError {
        PluginError::Timeout {
            plugin: self.name.clone(),
            command: command.to_owned(),
            after: self.timeout,
        }
    }

    fn spawn(&self, command: &str) -> Result<Child, PluginError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.path);
        cmd.arg(command)
            .env_clear()
            .envs(passed_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout stops what it started too.
            .process_group(0);
        cmd.spawn().map_err(|source| PluginError::Spawn {
            plugin: self.name.clone(),
            command: command.to_owned(),
            source,
        })
    }
}

struct Channel {
    name: &'static str,
    result: Result<Vec<u8>, ()>,
}

/// Read all of `pipe`, failing as soon as more than `cap` bytes arrive.
fn read_capped(pipe: impl Read, cap: usize) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let read = pipe
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| ())?;
    if read > cap { Err(()) } else { Ok(out) }
}

/// Kill the plugin's process group and reap it.
fn stop(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// The environment a plugin gets: [`PASSED_ENV`] and the names listed in
/// `HSM_NOTARY_PLUGIN_ENV` (comma-separated; for modules configured by environment, such
/// as `SOFTHSM2_CONF` or a cloud SDK's region), never [`NEVER_PASSED`].
pub fn passed_env() -> Vec<(String, std::ffi::OsString)> {
    let extra = std::env::var("HSM_NOTARY_PLUGIN_ENV").unwrap_or_default();
    PASSED_ENV
        .iter()
        .copied()
        .chain(extra.split(',').map(str::trim).filter(|n| !n.is_empty()))
        .filter(|name| !NEVER_PASSED.contains(name))
        .filter_map(|name| std::env::var_os(name).map(|value| (name.to_owned(), value)))
        .collect()
}

/// Up to `max` bytes of `bytes` as text, control characters escaped.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if bytes.len() > max {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

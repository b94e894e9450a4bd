//! One thin module per command: gather inputs, ask the engine, render.

pub mod approval;
pub mod blob;
pub mod cache;
pub mod cert;
pub mod containerd;
pub mod inspect;
pub mod key;
pub mod plugin;
pub mod policy;
pub mod ratify;
pub mod sign;
pub mod signature;
pub mod verify;

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use notary_verifier::Instant;

use crate::output::Rendered;

/// Print a rendering and turn it into an exit code.
pub fn emit(rendered: &Rendered) -> ExitCode {
    // Warnings first, as notation prints them before the result.
    eprint!("{}", crate::output::escape_controls(&rendered.stderr, true));
    let stdout = crate::output::escape_controls(&rendered.stdout, true);
    if let Err(e) = write_stdout(stdout.as_bytes()) {
        eprintln!("Error: writing the result to stdout: {e}");
        return ExitCode::FAILURE;
    }
    if rendered.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Write `bytes` to stdout and flush. A reader that has gone away (`… | head -1`) ends the
/// process quietly with status 141, as the panic hook in `main` does for `print!`; other
/// failures are the caller's to report.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        done => done,
    }
}

/// `key=value` pairs, split at the first `=`; empty keys or values are refused.
pub fn parse_metadata(pairs: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("could not parse flag {flag}: key-value pair requires \"=\" as separator"),
        })
        .collect()
}

/// The verification time: `--verify-at`, else now.
pub fn verification_time(verify_at: Option<&str>) -> Result<Instant> {
    match verify_at {
        Some(text) => match Instant::parse_rfc3339(text) {
            Some(t) => Ok(t.utc()),
            None => {
                bail!("--verify-at {text:?} is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)")
            }
        },
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| anyhow::anyhow!("the system clock is before 1970"))?;
            Ok(Instant::from_unix(
                i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
                now.subsec_nanos(),
            ))
        }
    }
}

/// `--max-signatures` must be positive.
pub fn max_signatures(value: i64) -> Result<usize> {
    if value <= 0 {
        bail!("max-signatures value {value} must be a positive number");
    }
    // The component takes at most this many per request; notation has no cap, but a
    // registry listing a million referrers must not make one verification read them all.
    let cap = notary_verifier::verify::MAX_SIGNATURES;
    let wanted = usize::try_from(value).unwrap_or(usize::MAX);
    if wanted > cap {
        eprintln!(
            "Warning: max-signatures {value} is over the cap of {cap}; at most {cap} signatures are examined"
        );
        return Ok(cap);
    }
    Ok(wanted)
}

/// Ask `question [y/N]` on stdout; only `y`/`yes` confirm. EOF declines.
pub fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    let answer = line.trim().to_lowercase();
    answer == "y" || answer == "yes"
}

/// Write a file with mode 0600 (directories 0700), replacing it atomically.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, bytes, 0o600, 0o700)
}

/// Write a file with `mode` (new directories `dir_mode`) through a temporary file and a
/// rename, so that a failure never leaves a partial file at `path`.
pub fn write_atomically(
    path: &std::path::Path,
    bytes: &[u8],
    mode: u32,
    dir_mode: u32,
) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

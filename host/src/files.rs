//! Reading files an attacker may have placed (an OCI layout, a cache, a config): regular
//! files only (a symlink to `/dev/zero` or a FIFO is refused, not read forever), and never
//! more than a limit, counted while reading so a file that grows is cut off too.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// `path`, if it is a regular file (no symlink followed) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("cannot access {}", path.display()))?;
    if !meta.file_type().is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.len() > limit {
        bail!(
            "{} is {} bytes, over the limit of {limit} bytes",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{} is over the limit of {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// An I/O error as Go words a `*PathError` (`open /x: no such file or directory`), which
/// is how notation's messages show them.
pub fn go_path_error(op: &str, path: &Path, e: &std::io::Error) -> String {
    let text = e.to_string();
    // Rust appends " (os error N)" to strerror's text; Go prints strerror in lower case.
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    let lowered: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{op} {}: {lowered}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_go_path_errors() {
        let path = Path::new("/nonexistent/hsm-notary");
        let e = std::fs::read(path).expect_err("no such file");
        assert_eq!(
            go_path_error("open", path, &e),
            "open /nonexistent/hsm-notary: no such file or directory"
        );
    }
}

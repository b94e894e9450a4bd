//! OCI image layouts packed as a `.tar` or `.tar.gz` (`docker save`, `skopeo copy …
//! oci-archive:`, `oras cp --to-oci-layout` then tar), or on standard input (`-`), for
//! `verify|ls|inspect --oci-layout` (notation#1347). The archive is unpacked into a private
//! temporary directory and then read as any layout, digests checked.
//!
//! An archive is untrusted: only regular files and directories are unpacked (links are
//! skipped: a layout has none that matter, and a link could point anywhere), every path
//! must stay inside (no absolute path, no `..`), and the entry count and the total size
//! are bounded while reading.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Largest unpacked layout.
const MAX_TOTAL: u64 = 4 * 1024 * 1024 * 1024;
/// Most entries.
const MAX_ENTRIES: usize = 100_000;

/// Unpack the archive `reader` (tar, or gzip-compressed tar) from `source` (for messages).
pub fn unpack(reader: impl Read, source: &str) -> Result<tempfile::TempDir> {
    let mut reader = BufReader::new(reader);
    let gzip = reader.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b]))?;
    let dir = tempfile::Builder::new()
        .prefix("hsm-notary-layout-")
        .tempdir()
        .context("creating a directory to unpack the layout into")?;
    if gzip {
        extract(flate2::read::GzDecoder::new(reader), dir.path(), source)?;
    } else {
        extract(reader, dir.path(), source)?;
    }
    Ok(dir)
}

fn extract(reader: impl Read, into: &Path, source: &str) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut total = 0u64;
    let entries = archive
        .entries()
        .with_context(|| format!("{source} is not a tar archive"))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            bail!("{source}: more than {MAX_ENTRIES} entries");
        }
        let mut entry = entry.with_context(|| format!("{source}: a broken tar entry"))?;
        let path = entry
            .path()
            .with_context(|| format!("{source}: an entry with an unreadable name"))?
            .into_owned();
        let Some(relative) = contained(&path) else {
            bail!(
                "{source}: entry {} would be written outside the layout",
                path.display()
            );
        };
        let kind = entry.header().entry_type();
        if relative.as_os_str().is_empty() {
            // `./` itself.
            continue;
        }
        let target = into.join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if !kind.is_file() {
            // Symbolic and hard links, devices, FIFOs: not part of what is read.
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        total = total.saturating_add(size);
        if total > MAX_TOTAL {
            bail!("{source}: the layout unpacks to more than {MAX_TOTAL} bytes");
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .with_context(|| format!("{source}: entry {} is given twice", path.display()))?;
        // `take` bounds the copy even when the header lies about the size.
        let copied = std::io::copy(&mut (&mut entry).take(size), &mut file)
            .with_context(|| format!("{source}: reading entry {}", path.display()))?;
        if copied != size {
            bail!("{source}: entry {} is truncated", path.display());
        }
    }
    Ok(())
}

/// `path` as a relative path inside the archive root (empty for the root itself), or
/// `None` if it leaves it.
fn contained(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

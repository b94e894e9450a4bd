//! Reading trust store directories (`truststore/x509/{type}/{store}/`) into bytes for the
//! verifier. File-system rules live here: store directories and certificate files must
//! not be symlinks, and a named store holds regular files only.

use std::path::Path;

use anyhow::{Context, Result, bail};
use notary_verifier::{NamedStore, StoreFile, StoreType, TrustStores};

/// Total bytes read from a trust store root, all stores together.
const MAX_TOTAL_SIZE: u64 = 256 * 1024 * 1024;

/// Read every named store under `root` (the directory that contains `x509/`). A missing
/// root or type directory simply yields no stores: the verifier reports a store the
/// policy names but that does not exist.
pub fn read(root: &Path) -> Result<TrustStores> {
    let mut stores = Vec::new();
    let mut total = 0u64;
    for store_type in StoreType::ALL {
        let type_dir = root.join("x509").join(store_type.name());
        let entries = match std::fs::read_dir(&type_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", type_dir.display())),
        };
        let mut names: Vec<_> = entries
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("reading {}", type_dir.display()))?;
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.path().symlink_metadata()?;
            if meta.file_type().is_symlink() {
                bail!(
                    "the trust store {name} of type {} with path {} is not a regular directory (symlinks are not supported)",
                    store_type.name(),
                    entry.path().display()
                );
            }
            if !meta.is_dir() {
                continue;
            }
            stores.push(read_store(&entry.path(), store_type, &name, &mut total)?);
        }
    }
    Ok(TrustStores { stores })
}

fn read_store(
    dir: &Path,
    store_type: StoreType,
    name: &str,
    total: &mut u64,
) -> Result<NamedStore> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "failed to access the trust store {name:?} of type {:?}",
                store_type.name()
            )
        })?
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.path().symlink_metadata()?;
        // The specification says sub-directories of a named store are ignored (notation
        // rejects them; see README §Deviations). Symlinks are never followed.
        if meta.is_dir() {
            continue;
        }
        if !meta.file_type().is_file() {
            bail!(
                "trusted certificate {file} in trust store {name} of type {} is not a regular file (symlinks are not supported)",
                store_type.name()
            );
        }
        *total += meta.len();
        if *total > MAX_TOTAL_SIZE {
            bail!("trust stores exceed {MAX_TOTAL_SIZE} bytes in total");
        }
        let content = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        files.push(StoreFile {
            name: file,
            content,
        });
    }
    Ok(NamedStore {
        store_type,
        name: name.to_owned(),
        files,
    })
}

//! `cache crl list|purge|import`: the on-disk CRL cache that `verify`, `blob verify` and
//! the Ratify and containerd modes read before fetching. `import` pre-seeds it for sites
//! that cannot reach a distribution point (notation has no such command).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::revocation::crl::{Crl, MAX_CRL_SIZE, number_string};

use crate::revocation::CrlCache;

/// `cache crl list`.
pub fn list() -> Result<ExitCode> {
    let dir = CrlCache::default_dir()?;
    let entries = CrlCache::new(&dir).list()?;
    if entries.is_empty() {
        println!("No CRL is cached in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    for entry in entries {
        let url = entry.url.as_deref().unwrap_or("(URL not recorded)");
        match entry.crl {
            Ok(crl) => println!(
                "{url}\n  issuer: {}\n  number: {}\n  this update: {}\n  next update: {}{}\n  file: {}",
                crl.issuer(),
                crl.number
                    .as_deref()
                    .map(number_string)
                    .unwrap_or_else(|| "-".into()),
                crl.this_update.rfc3339(),
                crl.next_update
                    .map(|t| t.rfc3339())
                    .unwrap_or_else(|| "-".into()),
                if crl.is_delta() { "\n  delta CRL" } else { "" },
                entry.path.display()
            ),
            Err(e) => println!("{url}\n  unreadable: {e}\n  file: {}", entry.path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cache crl purge`.
pub fn purge() -> Result<ExitCode> {
    let dir = CrlCache::default_dir()?;
    let removed = CrlCache::new(&dir).purge()?;
    println!("Removed {removed} cached CRL(s) from {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `cache crl import FILE --url URL`: the file must be a CRL (DER or PEM `X509 CRL`);
/// whether it is signed by the right CA is decided at verification, as for a fetched one.
pub fn import(file: &Path, url: &str) -> Result<ExitCode> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
    if parsed.scheme() != "http" {
        bail!("--url {url:?}: CRL distribution points are http URLs");
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if bytes.len() > 2 * MAX_CRL_SIZE {
        bail!("{} is over the CRL size limit", file.display());
    }
    let der = pem_or_der(&bytes);
    let crl = Crl::parse(&der).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let dir = CrlCache::default_dir()?;
    CrlCache::new(&dir).put(url, &der)?;
    println!(
        "Imported the CRL of {} (next update {}) for {url}",
        crl.issuer(),
        crl.next_update
            .map(|t| t.rfc3339())
            .unwrap_or_else(|| "none".into())
    );
    Ok(ExitCode::SUCCESS)
}

/// A PEM `X509 CRL` block's DER, or the bytes as they are (DER).
fn pem_or_der(bytes: &[u8]) -> Vec<u8> {
    notary_verifier::x509::pem_blocks(bytes)
        .and_then(|blocks| blocks.into_iter().find(|(label, _)| label == "X509 CRL"))
        .map_or_else(|| bytes.to_vec(), |(_, der)| der)
}

//! `plugin install|list|uninstall` on notation's layout, `plugins/{name}/notation-{name}`.
//!
//! An install source is hostile until proven otherwise: it is unpacked into a staging
//! directory beside `plugins/` (never into it), with `..` names and links refused, only
//! top-level regular files taken, and 256 MiB counted while unpacking. The new plugin
//! must answer `get-plugin-metadata` with its own name before the old one is replaced by
//! one rename; any failure leaves `plugins/` as it was.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use sha2::Digest;

use super::process::Plugin;
use super::protocol::{GET_PLUGIN_METADATA, Metadata, MetadataRequest};

/// The size limit of a plugin file or archive, and of what an archive unpacks to.
pub const MAX_SIZE: u64 = 256 << 20;

/// Where a plugin comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A file: an executable, a `.zip` or a `.tar.gz`.
    File(PathBuf),
    /// An `https` URL.
    Url(String),
}

/// What an install did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Installed {
    /// A new plugin.
    New {
        /// Name.
        name: String,
        /// Version.
        version: String,
    },
    /// An update.
    Updated {
        /// Name.
        name: String,
        /// Previous version.
        from: String,
        /// New version.
        to: String,
    },
}

impl std::fmt::Display for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::New { name, version } => {
                write!(f, "Successfully installed plugin {name}, version {version}")
            }
            Self::Updated { name, from, to } => {
                write!(
                    f,
                    "Successfully updated plugin {name} from version {from} to {to}"
                )
            }
        }
    }
}

/// Install from `source` into `root` (`plugins/`). `sha256` is required for a URL and
/// checked for a file when given.
pub fn install(
    root: &Path,
    source: &Source,
    sha256: Option<&str>,
    force: bool,
) -> Result<Installed> {
    let parent = root
        .parent()
        .ok_or_else(|| anyhow!("plugin directory {} has no parent", root.display()))?;
    std::fs::create_dir_all(root)
        .with_context(|| format!("creating plugin directory {}", root.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".plugin-install-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    let (file, file_name) = match source {
        Source::File(path) => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("failed to read plugin file {}", path.display()))?;
            if !meta.is_file() {
                bail!(
                    "plugin installation failed: {} is not a regular file",
                    path.display()
                );
            }
            if meta.len() >= MAX_SIZE {
                bail!(
                    "plugin installation failed: {} reached the 256 MiB size limit",
                    path.display()
                );
            }
            let file = File::open(path)
                .with_context(|| format!("failed to read plugin file {}", path.display()))?;
            if let Some(expected) = sha256 {
                check_sha256(&file, expected)?;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode()
            };
            (file, (name, mode))
        }
        Source::Url(url) => {
            let expected = sha256.filter(|s| !s.is_empty()).ok_or_else(|| {
                anyhow!(
                    "installing from URL requires non-empty SHA256 checksum of the plugin source"
                )
            })?;
            let path = staging.path().join("download");
            download(url, &path)?;
            let file = File::open(&path)?;
            check_sha256(&file, expected)?;
            let name = url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_owned();
            // A downloaded single executable is made executable, as notation does.
            (file, (name, 0o755))
        }
    };
    let content = staging.path().join("content");
    std::fs::create_dir(&content)?;
    unpack(file, &file_name, &content)?;
    let executable = single_executable(&content)?;
    let name = executable
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("notation-"))
        .unwrap_or_default()
        .to_owned();
    super::check_name(&name)?;
    let metadata = metadata_of(&name, &executable)
        .map_err(|e| anyhow!("plugin installation failed: {e:#}"))?;
    if metadata.name != name {
        bail!(
            "plugin installation failed: plugin executable file name must be \"notation-{}\" instead of \"notation-{name}\"",
            metadata.name
        );
    }
    let target = root.join(&name);
    let existing = super::locate(root, &name)
        .ok()
        .and_then(|path| metadata_of(&name, &path).ok())
        .map(|m| m.version);
    if let (Some(old), false) = (&existing, force) {
        let new_version = semver(&metadata.version)?;
        let old_version = semver(old)?;
        if new_version == old_version {
            bail!(
                "plugin installation failed: plugin {name} with version {} already exists",
                metadata.version
            );
        }
        if new_version < old_version {
            bail!(
                "failed to install plugin {name}. The installing plugin version {} is lower than the existing plugin version {old}.\nIt is not recommended to install an older version. To force the installation, use the \"--force\" option",
                metadata.version
            );
        }
    }
    // Swap: the old directory goes into staging (removed with it), the new one in place.
    let old = staging.path().join("old");
    let had_old = match std::fs::symlink_metadata(&target) {
        Ok(_) => {
            std::fs::rename(&target, &old).with_context(|| {
                format!("moving the installed plugin {} aside", target.display())
            })?;
            true
        }
        Err(_) => false,
    };
    if let Err(e) = std::fs::rename(&content, &target) {
        if had_old {
            let _ = std::fs::rename(&old, &target);
        }
        return Err(e).with_context(|| format!("installing plugin into {}", target.display()));
    }
    Ok(match existing {
        Some(from) => Installed::Updated {
            name,
            from,
            to: metadata.version,
        },
        None => Installed::New {
            name,
            version: metadata.version,
        },
    })
}

/// The plugin's metadata (empty request), checked as notation checks it.
pub fn metadata_of(name: &str, path: &Path) -> Result<Metadata> {
    let metadata: Metadata =
        Plugin::new(name, path).call(GET_PLUGIN_METADATA, &MetadataRequest::default())?;
    metadata.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(metadata)
}

fn semver(text: &str) -> Result<semver::Version> {
    semver::Version::parse(text)
        .map_err(|e| anyhow!("plugin version {text:?} is not a valid semantic version: {e}"))
}

fn check_sha256(mut file: &File, expected: &str) -> Result<()> {
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    file.rewind()?;
    let actual: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if !actual.eq_ignore_ascii_case(expected.trim()) {
        bail!(
            "plugin installation failed: plugin SHA-256 checksum does not match user input. Expecting {expected}"
        );
    }
    Ok(())
}

/// Fetch `url` (https only, 10 minutes, 256 MiB counted while reading) into `path`.
fn download(url: &str, path: &Path) -> Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| anyhow!("invalid plugin URL {url}: {e}"))?;
    if parsed.scheme() != "https" {
        bail!(
            "failed to download plugin from URL: only the HTTPS scheme is supported, but got {}",
            parsed.scheme()
        );
    }
    eprintln!("Downloading plugin from {url}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result: Result<()> = runtime.block_on(async {
        crate::registry::install_crypto_provider();
        // Release pages redirect to object stores; never to plain HTTP.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().scheme() != "https" {
                attempt.error("redirect to a URL that is not https")
            } else if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .user_agent(crate::sign::SIGNING_AGENT)
            .timeout(std::time::Duration::from_secs(600))
            .build()?;
        let mut response = client.get(parsed).send().await?.error_for_status()?;
        let mut out = File::create(path)?;
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await? {
            total += chunk.len() as u64;
            if total >= MAX_SIZE {
                bail!("the download reached the 256 MiB size limit");
            }
            std::io::Write::write_all(&mut out, &chunk)?;
        }
        Ok(())
    });
    result.map_err(|e| anyhow!("failed to download plugin from URL {url} with error: {e:#}"))?;
    eprintln!("Download completed");
    Ok(())
}

/// Unpack `file` into `dir`: a zip, a gzip'd tar, or the file itself.
fn unpack(mut file: File, (name, mode): &(String, u32), dir: &Path) -> Result<()> {
    let mut head = [0u8; 4];
    let n = file.read(&mut head)?;
    file.rewind()?;
    let result = match &head[..n] {
        [b'P', b'K', 3, 4] => unzip(file, dir),
        [0x1f, 0x8b, ..] => untar_gz(file, dir),
        _ => {
            if !name.starts_with("notation-") {
                bail!(
                    "invalid plugin executable file name. Plugin file name requires format notation-{{plugin-name}}, but got {name}"
                );
            }
            if mode & 0o111 == 0 {
                bail!("input file {name} is not executable");
            }
            super::check_name(name)?;
            let mut budget = MAX_SIZE;
            write_file(&mut file, &dir.join(name), 0o755, &mut budget)
        }
    };
    result.map_err(|e| {
        if format!("{e}").starts_with("plugin installation failed") {
            e
        } else {
            anyhow!("plugin installation failed: {e:#}")
        }
    })
}

/// `name` is a top-level file name to take, `None` to skip (directories, nested files);
/// `..` anywhere is an error.
fn entry_name(name: &str, kind: &str) -> Result<Option<String>> {
    if name.split(['/', '\\']).any(|part| part == "..") || name.contains("..") {
        bail!(
            "plugin installation failed: file name in {kind} cannot contain '..', but found {name:?}"
        );
    }
    let trimmed = name.strip_prefix("./").unwrap_or(name);
    if trimmed.starts_with('/') {
        bail!(
            "plugin installation failed: file name in {kind} cannot be absolute, but found {name:?}"
        );
    }
    if trimmed.is_empty() || trimmed.contains('/') || trimmed.ends_with('/') {
        return Ok(None);
    }
    Ok(Some(trimmed.to_owned()))
}

fn unzip(file: File, dir: &Path) -> Result<()> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| anyhow!("reading the zip: {e}"))?;
    let mut budget = MAX_SIZE;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| anyhow!("reading zip entry {i}: {e}"))?;
        let raw = entry
            .name()
            .map_err(|e| anyhow!("reading zip entry {i}: {e}"))?
            .into_owned();
        let Some(name) = entry_name(&raw, "zip")? else {
            continue;
        };
        let mode = entry.unix_mode().unwrap_or(0o644);
        if mode & 0o170000 == 0o120000 {
            bail!(
                "plugin installation failed: the zip holds a symbolic link {raw:?}; links are not installed"
            );
        }
        if entry.is_dir() {
            continue;
        }
        write_file(&mut entry, &dir.join(name), mode & 0o755, &mut budget)?;
    }
    Ok(())
}

fn untar_gz(file: File, dir: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut budget = MAX_SIZE;
    for entry in archive
        .entries()
        .map_err(|e| anyhow!("reading the tar.gz: {e}"))?
    {
        let mut entry = entry.map_err(|e| anyhow!("reading the tar.gz: {e}"))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let Some(name) = entry_name(&raw, "tar.gz")? else {
            continue;
        };
        if kind.is_symlink() || kind.is_hard_link() {
            bail!(
                "plugin installation failed: the tar.gz holds a link {raw:?}; links are not installed"
            );
        }
        if !kind.is_file() {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        write_file(&mut entry, &dir.join(name), mode & 0o755, &mut budget)?;
    }
    Ok(())
}

/// Copy `from` into a new file `to` (never through an existing one), spending `budget`.
fn write_file(from: &mut impl Read, to: &Path, mode: u32, budget: &mut u64) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode | 0o600)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    let copied = std::io::copy(&mut from.take(*budget + 1), &mut out)?;
    if copied >= *budget {
        bail!("plugin installation failed: total file size reached the 256 MiB size limit");
    }
    *budget -= copied;
    Ok(())
}

/// The one `notation-*` file in `dir`, made executable (with a warning) if it is not.
fn single_executable(dir: &Path) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("notation-"))
            && entry.file_type()?.is_file()
        {
            candidates.push(entry.path());
        }
    }
    match candidates.len() {
        0 => bail!("plugin installation failed: no plugin executable file was found"),
        1 => {}
        _ => bail!("plugin installation failed: found more than one plugin executable files"),
    }
    let path = candidates.remove(0);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)?.permissions().mode();
    if mode & 0o100 == 0 {
        eprintln!(
            "Warning: plugin executable file {} is not executable; setting user execute permission",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o100))?;
    }
    Ok(path)
}

/// One row of `plugin list`.
#[derive(Clone, Debug)]
pub struct Row {
    /// The directory name.
    pub name: String,
    /// The metadata, or why there is none.
    pub metadata: Result<Metadata, String>,
}

/// Every sub-directory of `root` (symlinks and files ignored), with its metadata.
pub fn list(root: &Path) -> Result<Vec<Row>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let metadata = match super::locate(root, &name) {
                Ok(path) => metadata_of(&name, &path).map_err(|e| format!("{e:#}")),
                Err(_) if !super::executable_path(root, &name).is_ok_and(|p| p.exists()) => Err(format!(
                    "plugin executable file `notation-{name}` not found. Use `hsm-notary plugin install` command to install the plugin"
                )),
                Err(e) => Err(format!("{e:#}")),
            };
            Row { name, metadata }
        })
        .collect())
}

/// Whether plugin `name` is installed (its directory exists).
pub fn exists(root: &Path, name: &str) -> bool {
    super::check_name(name).is_ok()
        && std::fs::symlink_metadata(root.join(name)).is_ok_and(|m| m.is_dir())
}

/// Remove plugin `name` (the whole directory).
pub fn uninstall(root: &Path, name: &str) -> Result<()> {
    super::check_name(name)?;
    let dir = root.join(name);
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&dir)
            .with_context(|| format!("failed to uninstall {name}: removing {}", dir.display())),
        _ => bail!(
            "unable to find plugin {name}.\nTo view a list of installed plugins, use `hsm-notary plugin list`"
        ),
    }
}

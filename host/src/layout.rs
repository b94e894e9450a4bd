//! OCI image layouts on disk (the offline, air-gapped case): resolving a reference,
//! reading blobs with their digests and sizes checked, and discovering the signature
//! manifests whose `subject` is the target — by walking every manifest of the layout and
//! through the `sha256-<hex>` referrers tag index, in both the current and the legacy
//! signature manifest forms.

pub mod archive;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::oci::{self, Descriptor, Index, Manifest};

/// How a layout reference names its artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutRef {
    /// `PATH@DIGEST`
    Digest(String),
    /// `PATH:TAG`
    Tag(String),
}

/// Split `PATH@DIGEST` (last `@`) or `PATH:TAG` (last `:`).
pub fn parse_reference(reference: &str) -> Result<(PathBuf, LayoutRef)> {
    let expecting = "Expecting <file_path>:<tag> or <file_path>@<digest>";
    if let Some((path, digest)) = reference.rsplit_once('@') {
        if path.is_empty() {
            bail!("{reference:?}: invalid reference: missing oci-layout file path. {expecting}");
        }
        if !oci::is_digest(digest) {
            bail!("{reference:?}: invalid reference: invalid digest {digest:?}. {expecting}");
        }
        return Ok((PathBuf::from(path), LayoutRef::Digest(digest.to_owned())));
    }
    if let Some((path, tag)) = reference.rsplit_once(':') {
        if path.is_empty() {
            bail!("{reference:?}: invalid reference: missing oci-layout file path. {expecting}");
        }
        if tag.is_empty() || tag.contains('/') {
            bail!("{reference:?}: invalid reference: missing tag or digest. {expecting}");
        }
        return Ok((PathBuf::from(path), LayoutRef::Tag(tag.to_owned())));
    }
    bail!("{reference:?}: invalid reference: missing tag or digest. {expecting}")
}

/// A signature found in a layout.
#[derive(Clone, Debug)]
pub struct FoundSignature {
    /// The signature manifest's descriptor.
    pub manifest: Descriptor,
    /// The envelope media type (the layer's).
    pub media_type: String,
    /// The envelope descriptor.
    pub envelope: Descriptor,
}

/// An opened OCI image layout.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    index: Index,
    /// Where an archive (or standard input) was unpacked; removed with the last clone.
    unpacked: Option<Arc<tempfile::TempDir>>,
}

impl Layout {
    /// Open the layout at `root`: a directory with `oci-layout` and `index.json`, a `.tar`
    /// or `.tar.gz` of one, or `-` for such an archive on standard input.
    pub fn open(root: &Path) -> Result<Self> {
        let unpacked = if root.as_os_str() == "-" {
            Some(archive::unpack(std::io::stdin().lock(), "standard input")?)
        } else if root.is_file() {
            let file =
                std::fs::File::open(root).with_context(|| format!("reading {}", root.display()))?;
            Some(archive::unpack(file, &root.display().to_string())?)
        } else {
            None
        };
        let Some(dir) = unpacked else {
            return Self::open_dir(root, None);
        };
        let path = dir.path().to_path_buf();
        Self::open_dir(&path, Some(Arc::new(dir)))
    }

    fn open_dir(root: &Path, unpacked: Option<Arc<tempfile::TempDir>>) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "failed to resolve user input reference: input path {} is not a dir",
                root.display()
            );
        }
        let marker = root.join("oci-layout");
        // A regular file of a few bytes: a symlink to /dev/zero is not read forever.
        let marker_text = read_limited(&marker, 64 * 1024).with_context(|| {
            format!(
                "{} is not an OCI image layout: cannot read {}",
                root.display(),
                marker.display()
            )
        })?;
        let marker_json: serde_json::Value = serde_json::from_slice(&marker_text)
            .with_context(|| format!("{} is not valid JSON", marker.display()))?;
        if marker_json
            .get("imageLayoutVersion")
            .and_then(|v| v.as_str())
            .is_none()
        {
            bail!("{} has no imageLayoutVersion", marker.display());
        }
        let index_path = root.join("index.json");
        let index_bytes = read_limited(&index_path, oci::MAX_MANIFEST_SIZE)?;
        let index: Index = serde_json::from_slice(&index_bytes)
            .with_context(|| format!("{} is not a valid OCI image index", index_path.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            index,
            unpacked,
        })
    }

    /// The layout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `index.json`.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether this layout was unpacked from an archive or standard input, where nothing
    /// written would last.
    pub fn is_unpacked(&self) -> bool {
        self.unpacked.is_some()
    }

    /// Replace `index.json` with `index` in one rename: a reader sees the old or the new.
    pub fn replace_index(&self, index: &Index) -> Result<()> {
        let index_path = self.root.join("index.json");
        let tmp = self
            .root
            .join(format!(".index.json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(index)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        if let Err(e) = std::fs::rename(&tmp, &index_path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("replacing {}", index_path.display()));
        }
        Ok(())
    }

    /// Remove the signature manifests `digests`, each listed in `index.json`: the index is
    /// replaced once (nothing is removed when that fails), then each manifest's blob and
    /// its envelope's, unless another manifest of the layout still refers to them. Returns
    /// the blobs removed and, for a blob that could not be, why (the signature is gone
    /// from the index either way).
    pub fn remove_signatures(&self, digests: &[String]) -> Result<(Vec<PathBuf>, Vec<String>)> {
        let mut orphans = Vec::new();
        for digest in digests {
            let listed = self
                .index
                .manifests
                .iter()
                .find(|d| &d.digest == digest)
                .with_context(|| {
                    format!(
                        "{digest} is not listed in {} (a signature reachable only through another index is not deleted): nothing was deleted",
                        self.root.join("index.json").display()
                    )
                })?;
            let manifest = self.read_manifest(listed)?;
            if !manifest.is_notary_signature() {
                bail!("{digest} is not a Notary Project signature manifest: nothing was deleted");
            }
            orphans.push(digest.clone());
            orphans.extend(manifest.layers.iter().map(|l| l.digest.clone()));
        }
        let mut index = self.index.clone();
        index.manifests.retain(|d| !digests.contains(&d.digest));
        self.replace_index(&index)?;
        let after = Self {
            index,
            ..self.clone()
        };
        // What the layout still refers to: every reachable manifest, its config and layers.
        let mut kept = std::collections::HashSet::new();
        for descriptor in after.all_descriptors()? {
            if descriptor.media_type == oci::MEDIA_TYPE_IMAGE_MANIFEST
                && let Ok(manifest) = after.read_manifest(&descriptor)
            {
                kept.insert(manifest.config.digest.clone());
                kept.extend(manifest.layers.into_iter().map(|l| l.digest));
            }
            kept.insert(descriptor.digest);
        }
        let (mut removed, mut failed) = (Vec::new(), Vec::new());
        for digest in orphans.iter().filter(|d| !kept.contains(*d)) {
            let path = self.blob_path(digest)?;
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => failed.push(format!("{}: {e}", path.display())),
            }
        }
        Ok((removed, failed))
    }

    /// The descriptor of the artifact `reference` names.
    pub fn resolve(&self, reference: &LayoutRef) -> Result<Descriptor> {
        match reference {
            LayoutRef::Tag(tag) => self
                .index
                .manifests
                .iter()
                .rev()
                .find(|d| d.annotations.get(oci::ANNOTATION_REF_NAME) == Some(tag))
                .cloned()
                .with_context(|| {
                    format!("{tag}: not found in the OCI layout {}", self.root.display())
                }),
            LayoutRef::Digest(digest) => {
                if let Some(d) = self
                    .all_descriptors()?
                    .into_iter()
                    .find(|d| &d.digest == digest)
                {
                    return Ok(Descriptor {
                        annotations: Default::default(),
                        ..d
                    });
                }
                // Not listed: read it and describe it from its content.
                let path = self.blob_path(digest)?;
                let bytes = read_limited(&path, oci::MAX_MANIFEST_SIZE).with_context(|| {
                    format!(
                        "{digest}: not found in the OCI layout {}",
                        self.root.display()
                    )
                })?;
                let media_type = oci::manifest_media_type(&bytes);
                let descriptor = Descriptor {
                    media_type,
                    digest: digest.clone(),
                    size: bytes.len() as u64,
                    ..Descriptor::default()
                };
                oci::check_content(&descriptor, &bytes, "manifest")?;
                Ok(descriptor)
            }
        }
    }

    /// The manifests an image index in this layout lists (read bounded, digest checked).
    pub fn index_manifests(&self, index: &Descriptor) -> Result<Vec<Descriptor>> {
        let bytes = self.read_blob(index, oci::MAX_MANIFEST_SIZE, "image index")?;
        let parsed: Index = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an image index", index.digest))?;
        Ok(parsed.manifests)
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        if !oci::is_digest(digest) {
            bail!("invalid digest {digest:?}");
        }
        let (algorithm, hex) = digest.split_once(':').context("digest without ':'")?;
        Ok(self.root.join("blobs").join(algorithm).join(hex))
    }

    /// Read a blob, checking its size limit, size and digest.
    pub fn read_blob(&self, descriptor: &Descriptor, limit: u64, what: &str) -> Result<Vec<u8>> {
        if descriptor.size > limit {
            bail!(
                "{what} {} is {} bytes, over the limit of {limit} bytes",
                descriptor.digest,
                descriptor.size
            );
        }
        let path = self.blob_path(&descriptor.digest)?;
        let bytes = read_limited(&path, limit)
            .with_context(|| format!("reading {what} {} from the OCI layout", descriptor.digest))?;
        oci::check_content(descriptor, &bytes, what)?;
        Ok(bytes)
    }

    /// Every manifest/index descriptor reachable from `index.json`, in discovery order:
    /// breadth first, each digest once, at most [`MAX_LAYOUT_MANIFESTS`] (a hostile layout's
    /// indexes that list each other, or list one manifest a million times, end there).
    fn all_descriptors(&self) -> Result<Vec<Descriptor>> {
        let mut out: Vec<Descriptor> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut queue: std::collections::VecDeque<Descriptor> = Default::default();
        let mut enqueue = |queue: &mut std::collections::VecDeque<Descriptor>,
                           descriptor: Descriptor|
         -> Result<()> {
            if seen.insert(descriptor.digest.clone()) {
                if seen.len() > MAX_LAYOUT_MANIFESTS {
                    bail!(
                        "OCI layout {} has more than {MAX_LAYOUT_MANIFESTS} manifests",
                        self.root.display()
                    );
                }
                queue.push_back(descriptor);
            }
            Ok(())
        };
        for descriptor in self.index.manifests.iter().cloned() {
            enqueue(&mut queue, descriptor)?;
        }
        while let Some(descriptor) = queue.pop_front() {
            if descriptor.media_type == oci::MEDIA_TYPE_IMAGE_INDEX
                && let Ok(bytes) = self.read_blob(&descriptor, oci::MAX_MANIFEST_SIZE, "index")
                && let Ok(index) = serde_json::from_slice::<Index>(&bytes)
            {
                for child in index.manifests {
                    enqueue(&mut queue, child)?;
                }
            }
            out.push(descriptor);
        }
        Ok(out)
    }

    /// Descriptors of the signature manifests whose `subject` is `subject_digest`, in
    /// discovery order (at most `limit`; the bool says whether more exist). A manifest
    /// that cannot be read or parsed is passed over: it is not known to be a signature.
    pub fn signature_manifests(
        &self,
        subject_digest: &str,
        limit: usize,
    ) -> Result<(Vec<Descriptor>, bool)> {
        let mut found = Vec::new();
        for descriptor in self.all_descriptors()? {
            if descriptor.media_type != oci::MEDIA_TYPE_IMAGE_MANIFEST {
                continue;
            }
            let manifest = match self.read_manifest(&descriptor) {
                Ok(manifest) => manifest,
                Err(e) => {
                    tracing::debug!("passing over manifest {}: {e:#}", descriptor.digest);
                    continue;
                }
            };
            if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject_digest)
                || !manifest.is_notary_signature()
            {
                continue;
            }
            if found.len() == limit {
                return Ok((found, true));
            }
            found.push(descriptor);
        }
        Ok((found, false))
    }

    /// The subject digest of `descriptor`, when it is a Notary Project signature manifest.
    pub fn signature_subject(&self, descriptor: &Descriptor) -> Result<Option<String>> {
        if descriptor.media_type != oci::MEDIA_TYPE_IMAGE_MANIFEST {
            return Ok(None);
        }
        let manifest = self.read_manifest(descriptor)?;
        if !manifest.is_notary_signature() {
            return Ok(None);
        }
        Ok(manifest.subject.map(|s| s.digest))
    }

    fn read_manifest(&self, descriptor: &Descriptor) -> Result<Manifest> {
        let bytes = self.read_blob(descriptor, oci::MAX_MANIFEST_SIZE, "manifest")?;
        serde_json::from_slice::<Manifest>(&bytes).with_context(|| {
            format!(
                "manifest {} is not an OCI image manifest",
                descriptor.digest
            )
        })
    }

    /// Signature manifest `descriptor`, if it is a Notary Project signature of
    /// `subject_digest`; an error when it cannot be read or has other than one layer.
    pub fn signature(
        &self,
        descriptor: &Descriptor,
        subject_digest: &str,
    ) -> Result<Option<FoundSignature>> {
        let manifest = self.read_manifest(descriptor)?;
        let Some(layer) = manifest.signature_envelope(subject_digest, &descriptor.digest)? else {
            return Ok(None);
        };
        Ok(Some(FoundSignature {
            manifest: descriptor.clone(),
            media_type: layer.media_type.clone(),
            envelope: layer.clone(),
        }))
    }

    /// The signatures of `subject_digest` (at most `limit`; the bool says whether more
    /// exist); one that cannot be read is an error.
    pub fn signatures(
        &self,
        subject_digest: &str,
        limit: usize,
    ) -> Result<(Vec<FoundSignature>, bool)> {
        let (descriptors, more) = self.signature_manifests(subject_digest, limit)?;
        let mut found = Vec::new();
        for descriptor in &descriptors {
            found.extend(self.signature(descriptor, subject_digest)?);
        }
        Ok((found, more))
    }
}

/// The most manifests and indexes a layout walk visits.
pub const MAX_LAYOUT_MANIFESTS: usize = 10_000;

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    crate::files::read_regular(path, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let d = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        assert_eq!(
            parse_reference(&format!("dir/x@{d}")).expect("digest"),
            (PathBuf::from("dir/x"), LayoutRef::Digest(d.to_owned()))
        );
        assert_eq!(
            parse_reference("dir/x:v1").expect("tag"),
            (PathBuf::from("dir/x"), LayoutRef::Tag("v1".to_owned()))
        );
        assert!(parse_reference("dir/x").is_err());
        assert!(parse_reference("dir/x@sha256:zz").is_err());
    }
}

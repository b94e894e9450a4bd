//! OCI image manifests and indexes as far as signatures need them, and the rules that
//! say which manifests are Notary Project signatures (`signature-specification.md`
//! §OCI Signatures).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `application/vnd.oci.image.manifest.v1+json`
pub const MEDIA_TYPE_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const MEDIA_TYPE_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.cncf.notary.signature`
pub const ARTIFACT_TYPE_NOTARY: &str = "application/vnd.cncf.notary.signature";
/// `application/vnd.oci.empty.v1+json`
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty JSON object `{}`, the config of an artifact manifest.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Its digest.
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// Annotation with the signing chain's SHA-256 thumbprints.
pub const ANNOTATION_THUMBPRINTS: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// Annotation with the creation time.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation naming a tag in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest manifest read (notation's limit).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Largest signature envelope read (notation's limit).
pub const MAX_ENVELOPE_SIZE: u64 = 32 * 1024 * 1024;

/// An OCI descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// `mediaType`.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `digest`.
    pub digest: String,
    /// `size`.
    pub size: u64,
    /// `artifactType`.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `data` (base64, embedded content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `platform` (in an image index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An image index entry's `platform`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `architecture` (`amd64`, `arm64`, …).
    pub architecture: String,
    /// `os` (`linux`, …).
    pub os: String,
    /// `variant` (`v8`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Whether `wanted` (`os/arch` or `os/arch/variant`, as `--platform` takes it) names
    /// this platform.
    pub fn matches(&self, wanted: &str) -> bool {
        let mut parts = wanted.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        os == Some(self.os.as_str())
            && arch == Some(self.architecture.as_str())
            && variant.is_none_or(|v| self.variant.as_deref() == Some(v))
    }

    /// This machine's platform as an image index names it (Go's `GOOS/GOARCH`): the
    /// manifest a container runtime here would run.
    pub fn here() -> String {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        format!("{}/{arch}", std::env::consts::OS)
    }
}

/// The entry of an image index's `manifests` for `platform` (`os/arch[/variant]`).
pub fn platform_manifest(manifests: Vec<Descriptor>, platform: &str) -> Option<Descriptor> {
    manifests
        .into_iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(platform)))
}

/// An image manifest (`application/vnd.oci.image.manifest.v1+json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `schemaVersion`.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// `mediaType`.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// `artifactType`.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// `config`.
    pub config: Descriptor,
    /// `layers`.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (`application/vnd.oci.image.index.v1+json`), also `index.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// `schemaVersion`.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// `mediaType`.
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// `manifests`.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Whether this manifest is a Notary Project signature: the current form
    /// (`artifactType` + empty config) or the legacy one (config media type).
    pub fn is_notary_signature(&self) -> bool {
        match &self.artifact_type {
            Some(t) => t == ARTIFACT_TYPE_NOTARY && self.config.media_type == MEDIA_TYPE_EMPTY,
            None => self.config.media_type == ARTIFACT_TYPE_NOTARY,
        }
    }

    /// The envelope layer of this manifest (`digest`), if it is a Notary Project signature
    /// of `subject_digest`: `Ok(None)` when it is not one, an error when it is one with
    /// other than exactly one layer.
    pub fn signature_envelope(
        &self,
        subject_digest: &str,
        digest: &str,
    ) -> Result<Option<&Descriptor>> {
        if !self.is_notary_signature()
            || self.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject_digest)
        {
            return Ok(None);
        }
        match self.layers.as_slice() {
            [layer] => Ok(Some(layer)),
            layers => bail!(
                "signature manifest {digest} must have exactly one layer, found {}",
                layers.len()
            ),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Check that fetched bytes are what the descriptor promised (digest and size) — a store
/// that returns a different object is caught here (CVE-2023-33959).
pub fn check_content(descriptor: &Descriptor, bytes: &[u8], what: &str) -> Result<()> {
    if bytes.len() as u64 != descriptor.size {
        bail!(
            "{what} {} has {} bytes, but its descriptor says {}",
            descriptor.digest,
            bytes.len(),
            descriptor.size
        );
    }
    let (algorithm, _) = descriptor
        .digest
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("{what} has a malformed digest {:?}", descriptor.digest))?;
    let actual = match algorithm {
        "sha256" => sha256_digest(bytes),
        "sha512" => format!(
            "sha512:{}",
            sha2::Sha512::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        other => bail!(
            "{what} {} uses unsupported digest algorithm {other:?}",
            descriptor.digest
        ),
    };
    if actual != descriptor.digest {
        bail!(
            "{what} content does not match its digest: expected {}, got {actual}",
            descriptor.digest
        );
    }
    Ok(())
}

/// The referrers tag for `digest`: `sha256:abc` → `sha256-abc`.
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Whether `digest` is `algorithm:hex` with a known algorithm and a well-formed hex part.
pub fn is_digest(digest: &str) -> bool {
    match digest.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        Some(("sha512", hex)) => {
            hex.len() == 128
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        _ => false,
    }
}

/// A manifest's own `mediaType`, or an image manifest's when it names none.
pub fn manifest_media_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| MEDIA_TYPE_IMAGE_MANIFEST.to_owned())
}

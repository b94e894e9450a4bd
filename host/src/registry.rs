//! OCI registries through `oci-client`: resolving references, discovering signatures
//! (referrers API, falling back to the `sha256-<hex>` referrers tag schema), fetching
//! manifests and envelopes with their digests and sizes checked, and publishing signature
//! manifests (with the tag-schema index where the registry has no referrers API).

pub mod auth;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use secrecy::SecretString;

use crate::oci::{self, Descriptor, Index, Manifest};

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Plain HTTP (`--insecure-registry`).
    pub insecure: bool,
    /// `--username`.
    pub username: Option<String>,
    /// `--password-stdin` (or `HSM_NOTARY_PASSWORD`).
    pub password: Option<SecretString>,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_files: Vec<PathBuf>,
    /// `host[:port]`s reached over plain HTTP (`insecureRegistries` of notation's
    /// `config.json`), compared case-insensitively.
    pub insecure_registries: Vec<String>,
}

/// A connection to one repository. Clones share it (connections, tokens, the I/O runtime
/// and credentials are not copied), so each request can carry its own deadline
/// ([`Registry::until`]).
#[derive(Clone)]
pub struct Registry {
    connection: Arc<Connection>,
    /// Requests still running at this moment are abandoned.
    deadline: Option<Instant>,
}

struct Connection {
    client: Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
    /// The host (`registry[:port]`).
    host: String,
    /// The repository.
    repository: String,
    username: Option<String>,
    password: Option<SecretString>,
    http: bool,
    /// `--ca-file` contents, for requests made outside oci-client.
    ca_pems: Vec<Vec<u8>>,
}

/// A parsed artifact reference.
#[derive(Clone, Debug)]
pub struct ArtifactRef {
    /// `registry[:port]`.
    pub host: String,
    /// `namespace/repository`.
    pub repository: String,
    /// `@digest`, if given.
    pub digest: Option<String>,
    /// `:tag`, if given (and no digest).
    pub tag: Option<String>,
}

impl ArtifactRef {
    /// An image reference as a pod spec or containerd writes it: Docker Hub names without
    /// a registry (`nginx:1.25`, `library/nginx`) are `docker.io/library/…`, and a name
    /// without tag or digest means `:latest`, as Docker's `ParseDockerRef` has it.
    pub fn parse_image(text: &str) -> Result<Self> {
        let first = text.split('/').next().unwrap_or_default();
        let has_host = text.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let mut full = match (has_host, text.contains('/')) {
            (true, _) => text.to_owned(),
            (false, true) => format!("docker.io/{text}"),
            (false, false) => format!("docker.io/library/{text}"),
        };
        let last = full.rsplit('/').next().unwrap_or_default();
        if !full.contains('@') && !last.contains(':') {
            full.push_str(":latest");
        }
        Self::parse(&full)
    }

    /// Parse `registry/repository(:tag|@digest)`; a registry host is required.
    pub fn parse(text: &str) -> Result<Self> {
        let expecting =
            "Expecting <registry>/<repository>:<tag> or <registry>/<repository>@<digest>";
        let (name, digest) = match text.rsplit_once('@') {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (text, None),
        };
        let (host, path) = name.split_once('/').ok_or_else(|| {
            anyhow!("{text:?}: invalid reference: missing registry or repository. {expecting}")
        })?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            bail!("{text:?}: invalid reference: {host:?} is not a registry host. {expecting}");
        }
        let (repository, tag) = match (digest.is_some(), path.rsplit_once(':')) {
            (false, Some((r, t))) if !t.contains('/') => (r.to_owned(), Some(t.to_owned())),
            // `repo:tag@digest`: the digest decides, as in docker and containerd.
            (true, Some((r, t))) if !t.contains('/') => (r.to_owned(), None),
            _ => (path.to_owned(), None),
        };
        if let Some(d) = &digest
            && !oci::is_digest(d)
        {
            bail!("{text:?}: invalid reference: invalid digest {d:?}. {expecting}");
        }
        if digest.is_none() && tag.is_none() {
            bail!("{text:?}: invalid reference: no tag or digest. {expecting}");
        }
        notary_verifier::trustpolicy::scope::validate_scope_format(&format!("{host}/{repository}"))
            .map_err(|_| {
                anyhow!(
                    "{text:?}: invalid reference: invalid repository {repository:?}. {expecting}"
                )
            })?;
        Ok(Self {
            host: host.to_owned(),
            repository,
            digest,
            tag,
        })
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

/// Make ring rustls's process-wide crypto provider (once).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Registry {
    /// Connect to the repository of `artifact`.
    pub fn connect(artifact: &ArtifactRef, options: &Options) -> Result<Self> {
        install_crypto_provider();
        // notation: plain HTTP only for `localhost:<port>` or when asked.
        let localhost = artifact.host.starts_with("localhost:");
        let insecure = options.insecure
            || options
                .insecure_registries
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&artifact.host));
        let protocol = if insecure {
            ClientProtocol::Http
        } else if localhost {
            ClientProtocol::HttpsExcept(vec![artifact.host.clone()])
        } else {
            ClientProtocol::Https
        };
        let mut extra = Vec::new();
        for file in &options.ca_files {
            extra.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(file)
                    .with_context(|| format!("reading CA file {}", file.display()))?,
            });
        }
        let ca_pems = extra.iter().map(|c| c.data.clone()).collect();
        let config = ClientConfig {
            protocol,
            extra_root_certificates: extra,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("hsm-notary/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let (username, password) = auth::credentials(&artifact.host, options)?;
        let auth = match (&username, &password) {
            (Some(u), Some(p)) => {
                use secrecy::ExposeSecret;
                RegistryAuth::Basic(u.clone(), p.expose_secret().to_owned())
            }
            _ => RegistryAuth::Anonymous,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the I/O runtime")?;
        Ok(Self {
            connection: Arc::new(Connection {
                client: Client::new(config),
                auth,
                runtime,
                host: artifact.host.clone(),
                repository: artifact.repository.clone(),
                username,
                password,
                http: insecure || localhost,
                ca_pems,
            }),
            deadline: None,
        })
    }

    /// This connection with every request abandoned at `deadline` (a caller that has given
    /// up waiting must not keep a worker busy until the registry's own timeouts).
    pub fn until(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// Run one registry exchange to completion, or until the deadline.
    fn wait<T, E: Into<anyhow::Error>>(
        &self,
        exchange: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        let runtime = &self.connection.runtime;
        match self.deadline {
            None => runtime.block_on(exchange).map_err(Into::into),
            Some(deadline) => runtime
                .block_on(tokio::time::timeout_at(deadline.into(), exchange))
                .map_err(|_| anyhow!("the request's deadline passed"))?
                .map_err(Into::into),
        }
    }

    /// [`Registry::wait`] for an oci-client call that reads its credentials from the
    /// client's store (the calls without an `auth` argument): they are stored first.
    fn wait_authed<'a, T, E, F>(&'a self, exchange: impl FnOnce(&'a Client) -> F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, E>>,
        E: Into<anyhow::Error>,
    {
        let connection = &self.connection;
        self.wait(async {
            connection
                .client
                .store_auth_if_needed(&connection.host, &connection.auth)
                .await;
            exchange(&connection.client).await
        })
    }

    fn reference(&self, digest_or_tag: &str) -> Reference {
        if digest_or_tag.contains(':') {
            Reference::with_digest(
                self.connection.host.clone(),
                self.connection.repository.clone(),
                digest_or_tag.to_owned(),
            )
        } else {
            Reference::with_tag(
                self.connection.host.clone(),
                self.connection.repository.clone(),
                digest_or_tag.to_owned(),
            )
        }
    }

    /// The error with the registry, the object and the whole cause chain (a TLS failure
    /// is otherwise hidden behind "error sending request").
    fn describe(&self, what: &str, object: &str, e: impl Into<anyhow::Error>) -> anyhow::Error {
        let separator = if object.contains(':') { '@' } else { ':' };
        let e: anyhow::Error = e.into();
        anyhow!(
            "registry {}: {what} {}{separator}{object}: {e:#}",
            self.connection.host,
            self.connection.repository
        )
    }

    /// Fetch a manifest by digest or tag; returns the bytes, checked against `expected`
    /// (digest and size) when given, and its descriptor.
    pub fn manifest(
        &self,
        digest_or_tag: &str,
        expected: Option<&Descriptor>,
    ) -> Result<(Vec<u8>, Descriptor)> {
        tracing::debug!(
            "Request: GET {}/v2/{}/manifests/{digest_or_tag}",
            self.connection.host,
            self.connection.repository
        );
        let reference = self.reference(digest_or_tag);
        let accepted = [oci::MEDIA_TYPE_IMAGE_MANIFEST, oci::MEDIA_TYPE_IMAGE_INDEX];
        let (bytes, _) = self
            .wait(self.connection.client.pull_manifest_raw(
                &reference,
                &self.connection.auth,
                &accepted,
            ))
            .map_err(|e| self.describe("fetching manifest", digest_or_tag, e))?;
        if bytes.len() as u64 > oci::MAX_MANIFEST_SIZE {
            bail!(
                "registry {}: manifest {}@{digest_or_tag} is {} bytes, over the limit of {} bytes",
                self.connection.host,
                self.connection.repository,
                bytes.len(),
                oci::MAX_MANIFEST_SIZE
            );
        }
        let media_type = oci::manifest_media_type(&bytes);
        let descriptor = Descriptor {
            media_type,
            digest: oci::sha256_digest(&bytes),
            size: bytes.len() as u64,
            ..Descriptor::default()
        };
        // A registry that returns another object than the one asked for is caught here
        // (CVE-2023-33959): by digest, the bytes must hash to it.
        if digest_or_tag.contains(':') && descriptor.digest != digest_or_tag {
            let want = Descriptor {
                digest: digest_or_tag.to_owned(),
                size: bytes.len() as u64,
                ..Descriptor::default()
            };
            oci::check_content(&want, &bytes, "manifest")
                .map_err(|e| self.describe("fetching manifest", digest_or_tag, e))?;
        }
        if let Some(expected) = expected {
            oci::check_content(expected, &bytes, "manifest")
                .map_err(|e| self.describe("fetching manifest", digest_or_tag, e))?;
        }
        Ok((bytes.to_vec(), descriptor))
    }

    /// Fetch a blob, at most `limit` bytes, checked against its descriptor.
    pub fn blob(&self, descriptor: &Descriptor, limit: u64, what: &str) -> Result<Vec<u8>> {
        tracing::debug!(
            "Request: GET {}/v2/{}/blobs/{} ({what}, at most {limit} bytes)",
            self.connection.host,
            self.connection.repository,
            descriptor.digest
        );
        if descriptor.size > limit {
            bail!(
                "registry {}: {what} {}@{} is {} bytes, over the limit of {limit} bytes",
                self.connection.host,
                self.connection.repository,
                descriptor.digest,
                descriptor.size
            );
        }
        let reference = self.reference(&descriptor.digest);
        let layer = oci_client::manifest::OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size as i64,
            ..Default::default()
        };
        let mut out: Vec<u8> = Vec::new();
        self.wait_authed(|client| client.pull_blob(&reference, &layer, &mut out))
            .map_err(|e| self.describe(&format!("fetching {what}"), &descriptor.digest, e))?;
        oci::check_content(descriptor, &out, what)
            .map_err(|e| self.describe(&format!("fetching {what}"), &descriptor.digest, e))?;
        Ok(out)
    }

    /// The Notary Project signature manifests that refer to `subject`, in registry order
    /// (referrers API, else the referrers tag schema).
    pub fn referrers(&self, subject: &str) -> Result<Vec<Descriptor>> {
        tracing::debug!(
            "Request: GET {}/v2/{}/referrers/{subject}",
            self.connection.host,
            self.connection.repository
        );
        let reference = self.reference(subject);
        let index = self
            .wait_authed(|client| {
                client.pull_referrers(&reference, Some(oci::ARTIFACT_TYPE_NOTARY))
            })
            .map_err(|e| self.describe("listing signatures of", subject, e))?;
        let value = serde_json::to_value(&index)?;
        let index: Index = serde_json::from_value(value).unwrap_or_default();
        Ok(index
            .manifests
            .into_iter()
            .filter(|d| {
                d.artifact_type.as_deref() == Some(oci::ARTIFACT_TYPE_NOTARY)
                    || d.artifact_type.is_none()
            })
            .collect())
    }

    fn push_blob(&self, bytes: &[u8], what: &str) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        let reference = self.reference(&digest);
        self.wait_authed(|client| client.push_blob(&reference, bytes.to_vec(), &digest))
            .map_err(|e| self.describe(&format!("pushing {what}"), &digest, e))?;
        Ok(digest)
    }

    fn push_manifest(&self, bytes: &[u8], media_type: &str, tag: Option<&str>) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        let reference = self.reference(tag.unwrap_or(&digest));
        let content_type = reqwest::header::HeaderValue::from_str(media_type)?;
        self.wait_authed(|client| {
            client.push_manifest_raw(&reference, bytes.to_vec(), content_type)
        })
        .map_err(|e| self.describe("pushing manifest", tag.unwrap_or(&digest), e))?;
        Ok(digest)
    }

    /// Push an artifact (config blob, layer blobs, manifest); for tests and samples.
    pub fn push_image(&self, config: &[u8], layers: &[&[u8]], tag: &str) -> Result<Descriptor> {
        let config_digest = self.push_blob(config, "config")?;
        let mut manifest = Manifest {
            schema_version: 2,
            media_type: oci::MEDIA_TYPE_IMAGE_MANIFEST.to_owned(),
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".to_owned(),
                digest: config_digest,
                size: config.len() as u64,
                ..Descriptor::default()
            },
            ..Manifest::default()
        };
        for layer in layers {
            let digest = self.push_blob(layer, "layer")?;
            manifest.layers.push(Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
                digest,
                size: layer.len() as u64,
                ..Descriptor::default()
            });
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = self.push_manifest(&bytes, oci::MEDIA_TYPE_IMAGE_MANIFEST, Some(tag))?;
        Ok(Descriptor {
            media_type: oci::MEDIA_TYPE_IMAGE_MANIFEST.to_owned(),
            digest,
            size: bytes.len() as u64,
            ..Descriptor::default()
        })
    }

    /// Push an image index of `manifests` (with their platforms) tagged `tag`; for tests
    /// and samples.
    pub fn push_index(&self, manifests: Vec<Descriptor>, tag: &str) -> Result<Descriptor> {
        let index = Index {
            schema_version: 2,
            media_type: oci::MEDIA_TYPE_IMAGE_INDEX.to_owned(),
            manifests,
            ..Index::default()
        };
        let bytes = serde_json::to_vec(&index)?;
        let digest = self.push_manifest(&bytes, oci::MEDIA_TYPE_IMAGE_INDEX, Some(tag))?;
        Ok(Descriptor {
            media_type: oci::MEDIA_TYPE_IMAGE_INDEX.to_owned(),
            digest,
            size: bytes.len() as u64,
            ..Descriptor::default()
        })
    }

    /// The manifests an image index lists (the index checked against `index`'s digest
    /// and size).
    pub fn index_manifests(&self, index: &Descriptor) -> Result<Vec<Descriptor>> {
        let (bytes, _) = self.manifest(&index.digest, Some(index))?;
        let parsed: Index = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an image index", index.digest))?;
        Ok(parsed.manifests)
    }

    /// Publish a signature: envelope blob, empty config, signature manifest with
    /// `subject`, then — where the registry has no referrers API, or when forced — the
    /// referrers tag index. Returns what was pushed, step by step, even on failure.
    pub fn push_signature(
        &self,
        manifest: &Manifest,
        envelope: &[u8],
        force_tag_schema: bool,
    ) -> (Result<String>, Vec<String>) {
        tracing::debug!(
            "Request: push a signature to {}/{}",
            self.connection.host,
            self.connection.repository
        );
        let mut pushed = Vec::new();
        let result = (|| -> Result<String> {
            let envelope_digest = self.push_blob(envelope, "signature envelope")?;
            pushed.push(format!("signature envelope blob {envelope_digest}"));
            let config = self.push_blob(oci::EMPTY_JSON, "empty config")?;
            pushed.push(format!("empty config blob {config}"));
            let bytes = serde_json::to_vec(manifest)?;
            let manifest_digest =
                match self.push_manifest(&bytes, oci::MEDIA_TYPE_IMAGE_MANIFEST, None) {
                    // Concurrent signers pushing the same (empty config) blob to one
                    // repository can leave distribution briefly without it: push the
                    // blobs again and retry once.
                    Err(e) if format!("{e:#}").contains("BLOB_UNKNOWN") => {
                        self.push_blob(envelope, "signature envelope")?;
                        self.push_blob(oci::EMPTY_JSON, "empty config")?;
                        self.push_manifest(&bytes, oci::MEDIA_TYPE_IMAGE_MANIFEST, None)?
                    }
                    other => other?,
                };
            pushed.push(format!("signature manifest {manifest_digest}"));
            let subject = manifest
                .subject
                .as_ref()
                .map(|s| s.digest.clone())
                .unwrap_or_default();
            let native = !force_tag_schema
                && self
                    .referrers(&subject)
                    .map(|list| list.iter().any(|d| d.digest == manifest_digest))
                    .unwrap_or(false);
            if !native {
                self.add_to_tag_index(
                    &subject,
                    &manifest_digest,
                    bytes.len() as u64,
                    manifest,
                    &mut pushed,
                )?;
            }
            Ok(manifest_digest)
        })();
        (result, pushed)
    }

    fn add_to_tag_index(
        &self,
        subject: &str,
        manifest_digest: &str,
        size: u64,
        manifest: &Manifest,
        pushed: &mut Vec<String>,
    ) -> Result<()> {
        let tag = oci::referrers_tag(subject);
        let (mut index, previous) = match self.manifest(&tag, None) {
            Ok((bytes, descriptor)) => (
                serde_json::from_slice::<Index>(&bytes)
                    .with_context(|| format!("referrers index {tag} is not an image index"))?,
                Some(descriptor.digest),
            ),
            Err(e) if is_not_found(&e) => (
                Index {
                    schema_version: 2,
                    media_type: oci::MEDIA_TYPE_IMAGE_INDEX.to_owned(),
                    ..Index::default()
                },
                None,
            ),
            Err(e) => return Err(e),
        };
        if index.media_type.is_empty() {
            index.media_type = oci::MEDIA_TYPE_IMAGE_INDEX.to_owned();
        }
        index.manifests.push(Descriptor {
            media_type: oci::MEDIA_TYPE_IMAGE_MANIFEST.to_owned(),
            digest: manifest_digest.to_owned(),
            size,
            artifact_type: Some(oci::ARTIFACT_TYPE_NOTARY.to_owned()),
            annotations: manifest.annotations.clone(),
            ..Descriptor::default()
        });
        let bytes = serde_json::to_vec(&index)?;
        let index_digest = self.push_manifest(&bytes, oci::MEDIA_TYPE_IMAGE_INDEX, Some(&tag))?;
        pushed.push(format!("referrers index {tag} ({index_digest})"));
        if let Some(previous) = previous.filter(|p| p != &index_digest)
            && self.delete_manifest(&previous).is_err()
        {
            eprintln!(
                "Warning: Removal of outdated referrers index from remote registry failed. Garbage collection may be required."
            );
        }
        Ok(())
    }

    /// Delete signature manifest `digest` of `subject`, then take it out of the referrers
    /// tag index if that lists it (an index left empty is deleted; a rewritten one
    /// replaces the old, which is then deleted). The manifest goes first: a registry that
    /// refuses `DELETE` changes nothing. Returns what was done, step by step, even on
    /// failure. The envelope blob is left to the registry's garbage collection.
    pub fn delete_signature(&self, digest: &str, subject: &str) -> (Result<()>, Vec<String>) {
        tracing::debug!(
            "Request: DELETE {}/v2/{}/manifests/{digest}",
            self.connection.host,
            self.connection.repository
        );
        let mut done = Vec::new();
        let result = (|| -> Result<()> {
            self.delete_manifest(digest)
                .map_err(|e| self.describe("deleting signature manifest", digest, e))?;
            done.push(format!("deleted signature manifest {digest}"));
            let tag = oci::referrers_tag(subject);
            let (bytes, old) = match self.manifest(&tag, None) {
                Ok(found) => found,
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut index: Index = serde_json::from_slice(&bytes)
                .with_context(|| format!("referrers index {tag} is not an image index"))?;
            let before = index.manifests.len();
            index.manifests.retain(|d| d.digest != digest);
            if index.manifests.len() == before {
                return Ok(());
            }
            if index.manifests.is_empty() {
                self.delete_manifest(&old.digest)
                    .map_err(|e| self.describe("deleting referrers index", &tag, e))?;
                done.push(format!(
                    "deleted the referrers index {tag}, left empty ({})",
                    old.digest
                ));
            } else {
                let new = self.push_manifest(
                    &serde_json::to_vec(&index)?,
                    oci::MEDIA_TYPE_IMAGE_INDEX,
                    Some(&tag),
                )?;
                done.push(format!(
                    "rewrote the referrers index {tag} without it ({new})"
                ));
                if new != old.digest && self.delete_manifest(&old.digest).is_err() {
                    eprintln!(
                        "Warning: Removal of outdated referrers index from remote registry failed. Garbage collection may be required."
                    );
                }
            }
            Ok(())
        })();
        (result, done)
    }

    /// `DELETE /v2/<repo>/manifests/<digest>` (oci-client has no delete).
    fn delete_manifest(&self, digest: &str) -> Result<()> {
        let scheme = if self.connection.http {
            "http"
        } else {
            "https"
        };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{digest}",
            self.connection.host, self.connection.repository
        );
        // reqwest's timers need the runtime's context when the client is built.
        let _context = self.connection.runtime.enter();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60));
        for pem in &self.connection.ca_pems {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build()?;
        let mut request = client.delete(&url);
        if let (Some(user), Some(password)) = (&self.connection.username, &self.connection.password)
        {
            use secrecy::ExposeSecret;
            request = request.basic_auth(user, Some(password.expose_secret()));
        }
        let response = self.wait(request.send())?;
        if !response.status().is_success() {
            bail!("DELETE {url}: {}", response.status());
        }
        Ok(())
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_lowercase();
    text.contains("not found")
        || text.contains("manifest unknown")
        || text.contains("manifest_unknown")
        || text.contains("404")
}

#[cfg(test)]
mod tests {
    use super::ArtifactRef;

    fn parts(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ArtifactRef::parse_image(text).expect(text);
        (r.host, r.repository, r.tag, r.digest)
    }

    #[test]
    fn image_references_are_read_as_docker_and_containerd_write_them() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parts("nginx:1.25"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                Some("1.25".into()),
                None
            )
        );
        assert_eq!(
            parts("bitnami/redis"),
            (
                "docker.io".into(),
                "bitnami/redis".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            parts(&format!("localhost:5000/app:v1@{digest}")),
            (
                "localhost:5000".into(),
                "app".into(),
                None,
                Some(digest.clone())
            )
        );
        assert_eq!(
            parts("registry.example/team/app:v2"),
            (
                "registry.example".into(),
                "team/app".into(),
                Some("v2".into()),
                None
            )
        );
        assert!(ArtifactRef::parse_image("UPPER/Case:x").is_err());
    }
}

//! OCI registries: resolving references, discovering signatures (referrers API, falling
//! back to the `sha256-<hex>` referrers tag schema), fetching manifests and envelopes with
//! their digests and sizes checked, and publishing signature manifests (with the tag-schema
//! index where the registry has no referrers API). The HTTP exchanges are in [`client`]:
//! bounded while reading, with credentials bound to their registry.

pub mod auth;
pub mod client;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use secrecy::SecretString;

use crate::oci::{self, Descriptor, Index, Manifest};
use client::{Access, Client};

/// Which registry `--username`/`--password-stdin` and `HSM_NOTARY_USERNAME`/`_PASSWORD`
/// are for. Any other registry gets only its own credentials from the docker config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Binding {
    /// The registry a one-shot command connects to (the reference's).
    Reference,
    /// This `host[:port]` (`--registry-host`).
    Host(String),
    /// None (the default): `serve`, Ratify and containerd modes, whose hosts come from
    /// pod specs.
    #[default]
    Nowhere,
}

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Plain HTTP (`--insecure-registry`).
    pub insecure: bool,
    /// `--username`.
    pub username: Option<String>,
    /// `--password-stdin` (or `HSM_NOTARY_PASSWORD`).
    pub password: Option<SecretString>,
    /// Where explicit credentials may go.
    pub binding: Binding,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_files: Vec<PathBuf>,
    /// `host[:port]`s reached over plain HTTP (`insecureRegistries` of notation's
    /// `config.json`), compared case-insensitively.
    pub insecure_registries: Vec<String>,
    /// `localhost:<port>` gets HTTPS like any other host unless listed (`serve`).
    pub no_localhost_http: bool,
}

/// How long one registry exchange, body included, may take unless
/// `HSM_NOTARY_REGISTRY_TIMEOUT` (a Go duration) says otherwise.
const DEFAULT_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

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
    runtime: tokio::runtime::Runtime,
    /// The host (`registry[:port]`).
    host: String,
    /// The repository.
    repository: String,
    /// When this repository last answered the referrers API with 404 (it has none): for
    /// [`REFERRERS_API_UNSUPPORTED_FOR`] after that, signatures are listed by the tag
    /// schema without asking again, as oras-go remembers it per repository. One request
    /// fewer per image for `serve` on such a registry.
    referrers_api_missing: std::sync::Mutex<Option<Instant>>,
}

/// How long a repository's 404 to the referrers API is taken as "no referrers API". A
/// registry upgraded meanwhile is asked again after this (until then a signature pushed
/// through its API alone is not found: the image is refused, never wrongly admitted).
const REFERRERS_API_UNSUPPORTED_FOR: Duration = Duration::from_secs(300);

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
        if let Some(t) = &tag
            && !is_tag(t)
        {
            bail!("{text:?}: invalid reference: invalid tag {t:?}. {expecting}");
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

/// The OCI distribution tag grammar: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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
        let localhost = artifact.host.starts_with("localhost:") && !options.no_localhost_http;
        let insecure = options.insecure
            || options
                .insecure_registries
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&artifact.host));
        let mut ca_pems = Vec::new();
        for file in &options.ca_files {
            ca_pems.push(
                std::fs::read(file)
                    .with_context(|| format!("reading CA file {}", file.display()))?,
            );
        }
        let credentials = auth::credentials(&artifact.host, options)?;
        let timeout = match std::env::var("HSM_NOTARY_REGISTRY_TIMEOUT") {
            Ok(text) => crate::sign::parse_go_duration(&text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow!("HSM_NOTARY_REGISTRY_TIMEOUT={text:?} is not a positive duration")
                })?,
            Err(_) => DEFAULT_EXCHANGE_TIMEOUT,
        };
        let token_realms = std::env::var("HSM_NOTARY_TOKEN_REALMS")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the I/O runtime")?;
        // reqwest's timers need the runtime's context when the client is built.
        let client = {
            let _context = runtime.enter();
            Client::new(client::Settings {
                host: artifact.host.clone(),
                http: insecure || localhost,
                credentials,
                token_realms,
                ca_pems,
                timeout,
                user_agent: concat!("hsm-notary/", env!("CARGO_PKG_VERSION")).to_owned(),
            })
            .map_err(|e| anyhow!("registry {}: {e}", artifact.host))?
        };
        Ok(Self {
            connection: Arc::new(Connection {
                client,
                runtime,
                host: artifact.host.clone(),
                repository: artifact.repository.clone(),
                referrers_api_missing: std::sync::Mutex::new(None),
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
    fn wait<T>(
        &self,
        exchange: impl Future<Output = std::result::Result<T, client::Error>>,
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

    /// `/v2/<repository>/<kind>/<object>`.
    fn url(&self, kind: &str, object: &str) -> Result<reqwest::Url> {
        Ok(self
            .connection
            .client
            .url(&format!("{}/{kind}/{object}", self.connection.repository))?)
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
    /// (digest and size) when given, and its descriptor. At most 4 MiB is read.
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
        let accept = format!(
            "{}, {}",
            oci::MEDIA_TYPE_IMAGE_MANIFEST,
            oci::MEDIA_TYPE_IMAGE_INDEX
        );
        // A descriptor's size, when known, is the most that may come.
        let limit = expected
            .map(|d| d.size.min(oci::MAX_MANIFEST_SIZE))
            .unwrap_or(oci::MAX_MANIFEST_SIZE);
        let bytes = self
            .url("manifests", digest_or_tag)
            .and_then(|url| {
                self.wait(self.connection.client.get(
                    url,
                    &self.connection.repository,
                    Some(&accept),
                    limit,
                ))
            })
            .map(|(bytes, _)| bytes)
            .map_err(|e| self.describe("fetching manifest", digest_or_tag, e))?;
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
        Ok((bytes, descriptor))
    }

    /// Fetch a blob, at most `limit` bytes (and never more than its descriptor says),
    /// checked against its descriptor.
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
        let out = self
            .url("blobs", &descriptor.digest)
            .and_then(|url| {
                self.wait(self.connection.client.get(
                    url,
                    &self.connection.repository,
                    None,
                    descriptor.size,
                ))
            })
            .map(|(bytes, _)| bytes)
            .map_err(|e| self.describe(&format!("fetching {what}"), &descriptor.digest, e))?;
        oci::check_content(descriptor, &out, what)
            .map_err(|e| self.describe(&format!("fetching {what}"), &descriptor.digest, e))?;
        Ok(out)
    }

    /// The Notary Project signature manifests that refer to `subject`, in registry order
    /// (referrers API, following its pages, else the referrers tag schema). Each page is
    /// an index of at most 4 MiB.
    pub fn referrers(&self, subject: &str) -> Result<Vec<Descriptor>> {
        if self.referrers_api_known_missing() {
            return self.referrers_by_tag(subject);
        }
        tracing::debug!(
            "Request: GET {}/v2/{}/referrers/{subject}",
            self.connection.host,
            self.connection.repository
        );
        let mut url = self
            .url("referrers", subject)
            .map_err(|e| self.describe("listing signatures of", subject, e))?;
        url.query_pairs_mut()
            .append_pair("artifactType", oci::ARTIFACT_TYPE_NOTARY);
        let mut found = Vec::new();
        for page in 0.. {
            if page == client::MAX_REFERRER_PAGES {
                bail!(
                    "registry {}: the referrers of {}@{subject} run over {page} pages",
                    self.connection.host,
                    self.connection.repository
                );
            }
            let answer = self.wait(self.connection.client.get(
                url.clone(),
                &self.connection.repository,
                Some(oci::MEDIA_TYPE_IMAGE_INDEX),
                oci::MAX_MANIFEST_SIZE,
            ));
            let (bytes, headers) = match answer {
                Ok(answer) => answer,
                // No referrers API: the tag schema (only before any page was read).
                Err(e) if page == 0 && is_not_found(&e) => {
                    *self.referrers_api_missing() = Some(Instant::now());
                    return self.referrers_by_tag(subject);
                }
                Err(e) => return Err(self.describe("listing signatures of", subject, e)),
            };
            let index: Index = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "registry {}: the referrers of {}@{subject} are not an image index",
                    self.connection.host, self.connection.repository
                )
            })?;
            found.extend(index.manifests);
            match client::next_link(&headers, &url) {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(found.into_iter().filter(is_notary_referrer).collect())
    }

    fn referrers_api_missing(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.connection
            .referrers_api_missing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this repository answered the referrers API with 404 not long ago.
    fn referrers_api_known_missing(&self) -> bool {
        self.referrers_api_missing()
            .is_some_and(|since| since.elapsed() < REFERRERS_API_UNSUPPORTED_FOR)
    }

    /// The referrers tag schema: the `sha256-<hex>` index, or none.
    fn referrers_by_tag(&self, subject: &str) -> Result<Vec<Descriptor>> {
        let tag = oci::referrers_tag(subject);
        let (bytes, found) = match self.manifest(&tag, None) {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        // A registry that answers the tag with the subject (oras-go#1396) lists nothing.
        let index = match referrers_index(&bytes, &tag, &found, subject) {
            Ok(index) => index,
            Err(e) => {
                tracing::debug!("no referrers: {e:#}");
                return Ok(Vec::new());
            }
        };
        Ok(index
            .manifests
            .into_iter()
            .filter(is_notary_referrer)
            .collect())
    }

    fn push_blob(&self, bytes: &[u8], what: &str) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        self.wait(self.upload(bytes, &digest))
            .map_err(|e| self.describe(&format!("pushing {what}"), &digest, e))?;
        Ok(digest)
    }

    /// `HEAD` the blob; when absent, `POST` an upload and `PUT` it whole.
    async fn upload(&self, bytes: &[u8], digest: &str) -> std::result::Result<(), client::Error> {
        let client = &self.connection.client;
        let repository = &self.connection.repository;
        let request = |method, url, body| client::Request {
            method,
            url,
            repository,
            access: Access::Push,
            accept: None,
            body,
        };
        let blob = client.url(&format!("{repository}/blobs/{digest}"))?;
        match client.send(request(Method::HEAD, blob, None)).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let start = client.url(&format!("{repository}/blobs/uploads/"))?;
        let started = client.send(request(Method::POST, start, None)).await?;
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                client::Error::Protocol("the upload was started without a Location".to_owned())
            })?;
        let mut put = client.location(location)?;
        put.query_pairs_mut().append_pair("digest", digest);
        client
            .send(request(
                Method::PUT,
                put,
                Some((bytes.to_vec(), "application/octet-stream")),
            ))
            .await?;
        Ok(())
    }

    fn push_manifest(&self, bytes: &[u8], media_type: &str, tag: Option<&str>) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        let object = tag.unwrap_or(&digest);
        self.url("manifests", object)
            .and_then(|url| {
                self.wait(self.connection.client.send(client::Request {
                    method: Method::PUT,
                    url,
                    repository: &self.connection.repository,
                    access: Access::Push,
                    accept: None,
                    body: Some((bytes.to_vec(), media_type)),
                }))
            })
            .map_err(|e| self.describe("pushing manifest", object, e))?;
        Ok(digest)
    }

    /// Push manifest `bytes` as they are (tagged `tag`, else by digest); for tests and
    /// samples. Returns its digest.
    pub fn push_manifest_bytes(
        &self,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<String> {
        self.push_manifest(bytes, media_type, tag)
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
                referrers_index(&bytes, &tag, &descriptor, subject)?,
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
            let mut index = referrers_index(&bytes, &tag, &old, subject)?;
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

    /// `DELETE /v2/<repo>/manifests/<digest>`.
    fn delete_manifest(&self, digest: &str) -> Result<()> {
        let url = self.url("manifests", digest)?;
        self.wait(self.connection.client.send(client::Request {
            method: Method::DELETE,
            url,
            repository: &self.connection.repository,
            access: Access::Delete,
            accept: None,
            body: None,
        }))?;
        Ok(())
    }
}

/// The referrers tag's index, refusing anything else: some registries answer an unknown
/// `sha256-<hex>` tag with the subject itself (oras-go#1396), and rewriting that as an
/// index, then deleting the "old index", would delete the signed image.
fn referrers_index(bytes: &[u8], tag: &str, found: &Descriptor, subject: &str) -> Result<Index> {
    if found.digest == subject || found.media_type != oci::MEDIA_TYPE_IMAGE_INDEX {
        bail!(
            "the referrers tag {tag} names a {} ({}), not a referrers index: left as it is",
            found.media_type,
            found.digest
        );
    }
    serde_json::from_slice::<Index>(bytes)
        .with_context(|| format!("referrers index {tag} is not an image index"))
}

fn is_notary_referrer(d: &Descriptor) -> bool {
    d.artifact_type.as_deref() == Some(oci::ARTIFACT_TYPE_NOTARY) || d.artifact_type.is_none()
}

/// Whether the registry answered 404 (typed when the error came straight from the
/// client, else by the status in its text).
fn is_not_found(e: &anyhow::Error) -> bool {
    if e.chain()
        .filter_map(|c| c.downcast_ref::<client::Error>())
        .any(client::Error::is_not_found)
    {
        return true;
    }
    let text = format!("{e:#}").to_lowercase();
    text.contains("404 not found") || text.contains("manifest_unknown")
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

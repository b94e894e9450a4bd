//! `hsm-notary serve`: an HTTPS verification service for admission control.
//!
//! - `POST /gatekeeper/verify`: Gatekeeper's external data protocol
//!   (`externaldata.gatekeeper.sh/v1beta1` `ProviderRequest` with `request.keys[]` of image
//!   references → `ProviderResponse` with `items[{key, value, error}]` and `systemError`).
//! - `POST /kyverno/verify`: `{"images": [...]}` → `{"verified": bool, "results": [...]}`,
//!   for a Kyverno `apiCall.service`.
//! - `GET /healthz`; `GET /metrics` (Prometheus text format, [`crate::metrics`]).
//!
//! TLS 1.3 only, optional client certificates. The trust policy and stores are read once;
//! every image is decided by the one pre-instantiated component (a fresh `Store` per call),
//! several at a time, with verified results cached for `--cache-ttl` keyed by digest and
//! policy, and concurrent requests for one digest sharing its verification in flight.
//! Anything that keeps the component from deciding — a registry that is down, the
//! deadline — is an error for that image, which Gatekeeper and Kyverno policies deny on
//! (fail closed).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use notary_verifier::{Decision, DocumentKind};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::commands::verify::{Inputs, inputs, resolve_remote, verify_artifact};
use crate::config::ConfigDir;
use crate::engine;
use crate::metrics::METRICS;
use crate::registry::{ArtifactRef, Options, Registry};
use crate::shared_cache::{Kind, SharedCache, unix_now};

/// The largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// The most images in one request.
const MAX_KEYS: usize = 1000;
/// Signatures read per image.
const MAX_SIGNATURES: usize = 100;
/// Registry clients kept (one per repository; each holds a runtime and connections).
const MAX_REGISTRIES: usize = 64;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send its request head, and its body.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How to serve.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Listen address (loopback in tests).
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub tls_cert: PathBuf,
    /// Server private key (PEM).
    pub tls_key: PathBuf,
    /// CA (PEM) that client certificates must chain to; none: no client certificates.
    pub client_ca: Option<PathBuf>,
    /// How long a verified result is reused.
    pub cache_ttl: Duration,
    /// The cache replicas share (`--cache redis://…`), if any.
    pub shared_cache: Option<Arc<SharedCache>>,
    /// How long a resolved tag is kept in the shared cache.
    pub tag_ttl: Duration,
    /// Per-request deadline (Gatekeeper's webhook budget is 3 s by default).
    pub deadline: Duration,
    /// Images verified at once.
    pub workers: usize,
    /// Registry options.
    pub registry: Options,
    /// Revocation fetching: answers are kept in memory until their `nextUpdate`, and
    /// fetches count against each request's deadline.
    pub revocation: crate::revocation::Options,
    /// The nodes' platform (`os/arch[/variant]`): an image index must also have a
    /// verified signature on that platform's manifest, the one the node will run.
    pub platform: Option<String>,
    /// `--allow-registry`: the registries whose images may be admitted (none: any).
    pub allow_registries: Vec<String>,
    /// `--require-digest`: tag references are refused.
    pub require_digest: bool,
    /// `--host-crypto`: the component's host-crypto build decides.
    pub host_crypto: bool,
}

/// One image's answer.
#[derive(Clone, Debug)]
struct Answer {
    verified: bool,
    reference: String,
    detail: Value,
    error: Option<String>,
}

struct Service {
    engine: engine::ComponentEngine,
    inputs: Inputs,
    policy_digest: String,
    /// SHA-256 of the trust stores as read (names, types, files).
    stores_digest: String,
    /// What a decision depends on besides the image: policy, stores, `--platform`, the
    /// component. Shared-cache keys carry it, so replicas configured differently never
    /// read each other's decisions.
    context: String,
    settings: Settings,
    /// (reference@digest, policy digest) → when verified, and the answer.
    cache: Mutex<HashMap<(String, String), (Instant, Answer)>>,
    /// The verifications running now, by the same key: a request for a digest already
    /// being verified waits for that answer instead of verifying it again (a rollout
    /// asks for one image from many pods at once).
    in_flight: Mutex<HashMap<(String, String), Arc<Flight>>>,
    /// One client per `registry/repository`, shared by the workers, so that connections
    /// and tokens are reused. Credentials are read when it is made (restart to rotate).
    registries: Mutex<HashMap<String, Registry>>,
    /// Held by a verification until its thread ends, even when its request has given up
    /// waiting, so that no more than `workers` run at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// OCSP answers and CRLs, shared by every request until their `nextUpdate`.
    revocation: Arc<crate::revocation::Fetcher>,
    /// Verification plugins of the configuration directory.
    plugins: Arc<crate::plugin::verifier::Plugins>,
}

/// Pod specs name the registries here, so explicit credentials go only to the one
/// `--registry-host` names; without it, flags are refused and variables ignored (only the
/// docker config's per-host entries apply).
/// A pod spec names the registries, so `serve` is no open proxy: only listed registries
/// when `--allow-registry` is given (any otherwise, said at start-up), and plain HTTP only
/// to listed `localhost:<port>` registries, never to a host a pod spec made up.
fn restrict_registries(settings: &mut Settings) -> Result<()> {
    if settings.registry.insecure {
        anyhow::bail!(
            "serve does not take --insecure-registry: list a localhost:<port> registry with --allow-registry to reach it over plain HTTP"
        );
    }
    if settings.allow_registries.is_empty() {
        eprintln!(
            "Warning: serve admits images from any registry; list the registries it may reach with --allow-registry"
        );
    }
    let listed_localhost: Vec<String> = settings
        .allow_registries
        .iter()
        .filter(|h| h.starts_with("localhost:"))
        .cloned()
        .collect();
    settings.registry.insecure_registries = listed_localhost;
    settings.registry.no_localhost_http = true;
    Ok(())
}

fn bind_credentials(options: &mut Options) -> Result<()> {
    if options.binding == crate::registry::Binding::Reference {
        if options.username.is_some() || options.password.is_some() {
            anyhow::bail!(
                "serve takes credentials per registry: give --registry-host with --username/--password-stdin, or use the docker config"
            );
        }
        if crate::registry::auth::has_explicit(options) {
            eprintln!(
                "Warning: HSM_NOTARY_USERNAME/NOTATION_USERNAME are ignored by serve without --registry-host: credentials come from the docker config, per registry"
            );
        }
        options.binding = crate::registry::Binding::Nowhere;
    }
    Ok(())
}

/// Run the server until the process is stopped.
pub fn run(mut settings: Settings, config: &ConfigDir) -> Result<()> {
    crate::registry::install_crypto_provider();
    bind_credentials(&mut settings.registry)?;
    restrict_registries(&mut settings)?;
    let inputs = inputs(config, None, None, DocumentKind::Oci)?;
    let engine = if settings.host_crypto {
        engine::ComponentEngine::load_host_crypto()?
    } else {
        engine::ComponentEngine::load_default()?
    };
    let policy_digest = hex(&sha2::Sha256::digest(&inputs.policy.content));
    let stores_digest = hex(&sha2::Sha256::digest(serde_json::to_vec(&inputs.stores)?));
    let context = hex(&sha2::Sha256::digest(
        json!({
            "policy": policy_digest,
            "stores": stores_digest,
            "platform": settings.platform,
            "component": format!("sha256:{}", engine.component_sha256()),
        })
        .to_string(),
    ));
    let tls = tls_config(&settings)?;
    let revocation = crate::revocation::Fetcher::new(crate::revocation::Options {
        in_memory: true,
        ..settings.revocation.clone()
    });
    if let Some(shared) = &settings.shared_cache {
        revocation.share(shared.clone());
        eprintln!("hsm-notary serve: sharing its cache at {shared:?}");
    }
    let service = Arc::new(Service {
        revocation,
        plugins: crate::plugin::verifier::Plugins::installed(config),
        engine,
        inputs,
        policy_digest,
        stores_digest,
        context,
        slots: Arc::new(tokio::sync::Semaphore::new(settings.workers.max(1))),
        settings,
        cache: Mutex::new(HashMap::new()),
        in_flight: Mutex::new(HashMap::new()),
        registries: Mutex::new(HashMap::new()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(accept_loop(service, tls))
}

async fn accept_loop(service: Arc<Service>, tls: Arc<rustls::ServerConfig>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(service.settings.listen)
        .await
        .with_context(|| format!("listening on {}", service.settings.listen))?;
    eprintln!(
        "hsm-notary serve: listening on https://{} (component sha256:{})",
        listener.local_addr()?,
        service.engine.component_sha256()
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A slow or idle client holds one of a bounded number of connections, never more.
        let Ok(permit) = connections.clone().acquire_owned().await else {
            bail!("connection limit closed");
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                eprintln!("hsm-notary serve: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A failed handshake (no client certificate, TLS 1.2) only ends that connection.
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, std::convert::Infallible>(service.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                // Without a timer hyper applies no header timeout at all.
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(REQUEST_READ_TIMEOUT)
                .serve_connection(io, handler)
                .await;
        });
    }
}

fn tls_config(settings: &Settings) -> Result<Arc<rustls::ServerConfig>> {
    server_tls(
        &settings.tls_cert,
        &settings.tls_key,
        settings.client_ca.as_deref(),
    )
}

/// A TLS 1.3 server configuration (HTTP/1.1); with `client_ca`, clients must present a
/// certificate that chains to it.
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert)?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the server certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not PEM certificates", path.display()))
}

impl Service {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let route = (request.method().clone(), request.uri().path().to_owned());
        let endpoint = match route.1.as_str() {
            "/healthz" | "/metrics" | "/gatekeeper/verify" | "/gatekeeper/mutate"
            | "/kyverno/verify" => &route.1[1..],
            _ => "other",
        };
        METRICS.requests.with_label_values(&[endpoint]).inc();
        match route {
            (Method::GET, path) if path == "/healthz" => reply(StatusCode::OK, json!({"ok": true})),
            (Method::GET, path) if path == "/metrics" => {
                let mut response = Response::new(Full::new(Bytes::from(METRICS.render())));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            (Method::POST, path) if path == "/gatekeeper/verify" => {
                match read_json(request).await {
                    Ok(body) => self.gatekeeper(body).await,
                    Err(e) => reply(StatusCode::OK, gatekeeper_response(vec![], &e.to_string())),
                }
            }
            (Method::POST, path) if path == "/gatekeeper/mutate" => {
                match read_json(request).await {
                    Ok(body) => self.gatekeeper_mutate(body).await,
                    Err(e) => reply(StatusCode::OK, gatekeeper_response(vec![], &e.to_string())),
                }
            }
            (Method::POST, path) if path == "/kyverno/verify" => match read_json(request).await {
                Ok(body) => self.kyverno(body).await,
                Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            },
            (_, path) => reply(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no such endpoint: {path}")}),
            ),
        }
    }

    async fn gatekeeper(self: Arc<Self>, body: Value) -> Response<Full<Bytes>> {
        let keys = match image_list(&body, "/request/keys") {
            Ok(keys) => keys,
            Err(e) => return reply(StatusCode::OK, gatekeeper_response(vec![], &e)),
        };
        // A tag's answer holds for the digest it resolved to now, not for the tag.
        let idempotent = !keys
            .iter()
            .any(|k| ArtifactRef::parse_image(k).map_or(true, |a| a.digest.is_none()));
        let answers = self.decide_all(keys).await;
        let items = answers
            .into_iter()
            .map(|(key, answer)| {
                json!({
                    "key": key,
                    "value": answer.detail,
                    "error": answer.error.unwrap_or_default(),
                })
            })
            .collect();
        let mut response = gatekeeper_response(items, "");
        response["response"]["idempotent"] = json!(idempotent);
        reply(StatusCode::OK, response)
    }

    /// Gatekeeper's mutation provider (an `Assign` with `externalData`): each image is
    /// answered with `name@digest` — the digest its tag resolved to and whose signature
    /// verified — so the pod runs exactly what was checked; an image that does not verify
    /// is an error, and the mutation fails.
    async fn gatekeeper_mutate(self: Arc<Self>, body: Value) -> Response<Full<Bytes>> {
        let keys = match image_list(&body, "/request/keys") {
            Ok(keys) => keys,
            Err(e) => return reply(StatusCode::OK, gatekeeper_response(vec![], &e)),
        };
        let answers = self.decide_all(keys).await;
        let items = answers
            .into_iter()
            .map(|(key, answer)| match (answer.verified, answer.error) {
                (true, None) => json!({"key": key, "value": answer.reference, "error": ""}),
                (_, error) => json!({
                    "key": key,
                    "value": Value::Null,
                    "error": error.unwrap_or_else(|| "not verified".to_owned()),
                }),
            })
            .collect();
        // A tag's digest may change; the mutation is not idempotent.
        let mut response = gatekeeper_response(items, "");
        response["response"]["idempotent"] = json!(false);
        reply(StatusCode::OK, response)
    }

    async fn kyverno(self: Arc<Self>, body: Value) -> Response<Full<Bytes>> {
        let images = match image_list(&body, "/images") {
            Ok(images) => images,
            Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e})),
        };
        let answers = self.decide_all(images).await;
        // No image is not "every image verified".
        let verified = !answers.is_empty() && answers.iter().all(|(_, a)| a.verified);
        let results: Vec<Value> = answers
            .into_iter()
            .map(|(image, a)| {
                json!({
                    "image": image,
                    "verified": a.verified,
                    "reference": a.reference,
                    "detail": a.detail,
                    "error": a.error,
                })
            })
            .collect();
        reply(
            StatusCode::OK,
            json!({"verified": verified, "results": results}),
        )
    }

    /// Decide every image, several at once, within the deadline.
    async fn decide_all(self: &Arc<Self>, images: Vec<String>) -> Vec<(String, Answer)> {
        let deadline = self.settings.deadline;
        let until = tokio::time::Instant::now() + deadline;
        let tasks: Vec<_> = images
            .iter()
            .map(|image| {
                let service = self.clone();
                let image = image.clone();
                tokio::spawn(async move {
                    let Ok(slot) = service.slots.clone().acquire_owned().await else {
                        return failed(&image, "the server is shutting down".to_owned());
                    };
                    // Work whose answer nobody waits for any more is not started.
                    if tokio::time::Instant::now() >= until {
                        return failed(&image, "the deadline passed".to_owned());
                    }
                    let work = service.clone();
                    let key = image.clone();
                    let until = until.into_std();
                    let verify = move || {
                        let _slot = slot;
                        work.decide(&key, until)
                    };
                    match tokio::task::spawn_blocking(verify).await {
                        Ok(answer) => answer,
                        Err(e) => failed(&image, format!("verification task failed: {e}")),
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(images.len());
        for (image, mut task) in images.into_iter().zip(tasks) {
            let answer = match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => failed(&image, format!("verification task failed: {e}")),
                Err(_) => {
                    // Still queued: cancelled. Already verifying: its registry requests and
                    // component calls stop at the deadline, and its thread with them.
                    task.abort();
                    failed(
                        &image,
                        format!(
                            "verification of {image} did not finish within {} ms",
                            deadline.as_millis()
                        ),
                    )
                }
            };
            let decision = if answer.verified {
                "admitted"
            } else {
                "denied"
            };
            METRICS.decisions.with_label_values(&[decision]).inc();
            out.push((image, answer));
        }
        out
    }

    /// One image: resolve its digest, reuse a fresh verified result, else verify, giving up
    /// at `until`.
    fn decide(&self, image: &str, until: Instant) -> Answer {
        match self.try_decide(image, until) {
            Ok(answer) => answer,
            Err(e) => failed(image, format!("{e:#}")),
        }
    }

    fn try_decide(&self, image: &str, until: Instant) -> Result<Answer> {
        let artifact = ArtifactRef::parse_image(image)?;
        if !self.settings.allow_registries.is_empty()
            && !self
                .settings
                .allow_registries
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&artifact.host))
        {
            return Ok(failed(
                image,
                format!(
                    "registry {} is not one this server may reach (--allow-registry)",
                    artifact.host
                ),
            ));
        }
        let from_tag = artifact.digest.is_none();
        if from_tag && self.settings.require_digest {
            return Ok(failed(
                image,
                format!(
                    "{image} names a tag; only digest references are admitted (--require-digest)"
                ),
            ));
        }
        // A digest reference with a fresh verified result needs no registry at all.
        if let (Some(digest), None) = (&artifact.digest, &artifact.tag) {
            let key = (
                format!("{}@{digest}", artifact.name()),
                self.policy_digest.clone(),
            );
            if let Some(answer) = self.cached(&key) {
                METRICS.cache.with_label_values(&["hit"]).inc();
                return Ok(answer);
            }
        }
        // Registry requests and component calls for this image stop at the deadline.
        let registry = &self.registry(&artifact, until)?;
        // Tags are resolved every time (they move); the cache is keyed by digest.
        let target = if artifact.digest.is_some() && artifact.tag.is_none() {
            None
        } else {
            Some(self.resolve_tag(registry, &artifact)?)
        };
        let digest = match (&target, &artifact.digest) {
            (Some(t), _) => t.digest.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => bail!("{image} names neither a tag nor a digest"),
        };
        let reference = format!("{}@{digest}", artifact.name());
        let cache_key = (reference.clone(), self.policy_digest.clone());
        // A digest reference has been looked up in the shared cache above already.
        let mut shared_checked = target.is_none();
        let mut leader = loop {
            let hit = if shared_checked {
                self.cached_locally(&cache_key)
            } else {
                shared_checked = true;
                self.cached(&cache_key)
            };
            if let Some(answer) = hit {
                METRICS.cache.with_label_values(&["hit"]).inc();
                return Ok(answer);
            }
            match self.lead_or_join(&cache_key) {
                Role::Leader(guard) => break guard,
                Role::Follower(flight) => match flight.wait(until) {
                    Some(Some(answer)) => {
                        METRICS.cache.with_label_values(&["coalesced"]).inc();
                        return Ok(answer);
                    }
                    // The verification it joined could not decide (its own deadline, a
                    // registry error): this request tries for itself, within its own.
                    Some(None) => continue,
                    None => bail!(
                        "verification of {reference} did not finish within the deadline (waited for the same image's verification in flight)"
                    ),
                },
            }
        };
        METRICS.cache.with_label_values(&["miss"]).inc();
        METRICS.verifications.inc();
        let started = Instant::now();
        let answer = self.verify_image(
            registry, &artifact, image, target, &reference, &digest, until,
        )?;
        METRICS
            .verification_latency
            .observe(started.elapsed().as_secs_f64());
        if answer.verified {
            self.store(cache_key, answer.clone());
        }
        // After the cache holds it, so a request arriving now finds one or the other.
        leader.answer = Some(answer.clone());
        drop(leader);
        Ok(answer)
    }

    /// Verify `reference` (`image` resolved to `digest`) and, for an index with a
    /// `--platform`, its platform's manifest.
    #[allow(
        clippy::too_many_arguments,
        reason = "one caller, every argument distinct"
    )]
    fn verify_image(
        &self,
        registry: &Registry,
        artifact: &ArtifactRef,
        image: &str,
        target: Option<crate::oci::Descriptor>,
        reference: &str,
        digest: &str,
        until: Instant,
    ) -> Result<Answer> {
        let target = match target {
            Some(t) => t,
            None => resolve_remote(registry, artifact, "verify")?,
        };
        let engine = self.engine.until(until);
        let verify = |target: &crate::oci::Descriptor, reference: &str| {
            verify_artifact(
                &engine,
                registry,
                &self.inputs,
                target,
                reference,
                Vec::new(),
                crate::commands::verification_time(None)?,
                MAX_SIGNATURES,
                // A plugin, like a fetch, has what is left of the request's deadline.
                &self
                    .revocation
                    .until(until)
                    .with_plugins(Arc::new(self.plugins.until(until))),
            )
        };
        let outcome = verify(&target, reference)?;
        // An index admits a node's image only with its platform's manifest verified too.
        if let Some(platform) = &self.settings.platform
            && target.media_type == crate::oci::MEDIA_TYPE_IMAGE_INDEX
            && outcome.decision == Decision::Verified
        {
            let child = crate::oci::platform_manifest(registry.index_manifests(&target)?, platform);
            let Some(child) = child else {
                return Ok(failed(
                    image,
                    format!("{reference}: the index has no manifest for platform {platform}"),
                ));
            };
            let child_reference = format!("{}@{}", artifact.name(), child.digest);
            let child_outcome = verify(&child, &child_reference)?;
            if child_outcome.decision == Decision::Failed {
                let why = crate::output::failure_reasons(&child_outcome);
                return Ok(failed(
                    image,
                    format!("{reference}: its {platform} manifest {child_reference}: {why}"),
                ));
            }
        }
        let signer = outcome
            .verified_signature()
            .and_then(|s| s.envelope.as_ref())
            .and_then(|e| e.certificates.first())
            .map(|c| c.subject.clone());
        // Under `audit` or `permissive` a signature "verifies" with failures only logged,
        // and `skip` checks nothing: the answer says which, and what was logged.
        let logged: Vec<String> = outcome
            .verified_signature()
            .map(|s| {
                s.logged_failures()
                    .map(|r| {
                        format!(
                            "{}: {}",
                            r.check.spec_name(),
                            r.message.clone().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let answer = match outcome.decision {
            Decision::Verified | Decision::Skipped => Answer {
                verified: true,
                reference: reference.to_owned(),
                detail: json!({
                    "verified": true,
                    "reference": reference,
                    "digest": digest,
                    "decision": if outcome.decision == Decision::Verified { "verified" } else { "skipped" },
                    "level": outcome.policy.as_ref().map(|p| p.level.name()),
                    "enforced": outcome.decision == Decision::Verified && logged.is_empty(),
                    "logged_failures": logged,
                    "policy": outcome.policy.as_ref().map(|p| p.statement.clone()),
                    "signer": signer,
                }),
                error: None,
            },
            Decision::Failed => {
                let why = crate::output::failure_reasons(&outcome);
                failed(image, format!("{reference}: {why}"))
            }
        };
        Ok(answer)
    }

    /// Lead the verification of `key`, or join the one already running.
    fn lead_or_join(&self, key: &(String, String)) -> Role<'_> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flight) = in_flight.get(key) {
            return Role::Follower(flight.clone());
        }
        let flight = Arc::new(Flight::default());
        in_flight.insert(key.clone(), flight.clone());
        Role::Leader(Leading {
            service: self,
            key: key.clone(),
            flight,
            answer: None,
        })
    }

    /// The shared client of `artifact`'s repository, its requests abandoned at `until`.
    fn registry(&self, artifact: &ArtifactRef, until: Instant) -> Result<Registry> {
        let name = artifact.name();
        if let Some(found) = self
            .registries
            .lock()
            .ok()
            .and_then(|r| r.get(&name).map(|r| r.until(until)))
        {
            return Ok(found);
        }
        let registry = Registry::connect(artifact, &self.settings.registry)?;
        if let Ok(mut registries) = self.registries.lock() {
            if registries.len() >= MAX_REGISTRIES {
                registries.clear();
            }
            registries.insert(name, registry.clone());
        }
        Ok(registry.until(until))
    }

    fn cached_locally(&self, key: &(String, String)) -> Option<Answer> {
        self.cache.lock().ok().and_then(|cache| {
            cache
                .get(key)
                .filter(|(at, _)| at.elapsed() < self.settings.cache_ttl)
                .map(|(_, answer)| answer.clone())
        })
    }

    /// A fresh verified answer from this replica's cache, else from the shared one.
    fn cached(&self, key: &(String, String)) -> Option<Answer> {
        let local = self.cached_locally(key);
        if local.is_some() || self.settings.cache_ttl.is_zero() {
            return local;
        }
        let shared = self.settings.shared_cache.as_ref()?;
        let payload = shared.get(Kind::Decision, &self.shared_key(&key.0))?;
        let (answer, left) = self.shared_decision(&key.0, &payload)?;
        METRICS.cache.with_label_values(&["shared_hit"]).inc();
        // Kept here for what is left of its lifetime, not a new one.
        if let (Ok(mut cache), Some(at)) = (
            self.cache.lock(),
            Instant::now().checked_sub(self.settings.cache_ttl.saturating_sub(left)),
        ) {
            cache.insert(key.clone(), (at, answer.clone()));
        }
        Some(answer)
    }

    /// A shared entry for `reference`, checked: it must be a verified decision for this
    /// very digest, under this policy and these stores, and not expired (nor claim to
    /// live longer than this replica would keep it). Returns it and its time left.
    fn shared_decision(&self, reference: &str, payload: &[u8]) -> Option<(Answer, Duration)> {
        let entry: SharedDecision = serde_json::from_slice(payload).ok()?;
        let now = unix_now();
        let left = entry.expires.checked_sub(now).filter(|l| *l > 0)?;
        let valid = entry.digest == reference
            && entry.policy == self.policy_digest
            && entry.stores == self.stores_digest
            && entry.verified
            && u64::try_from(left).ok()? <= self.settings.cache_ttl.as_secs() + 1
            && entry.detail.get("reference").and_then(Value::as_str) == Some(reference);
        if !valid {
            tracing::warn!("shared cache entry for {reference} does not fit this replica; ignored");
            METRICS.cache.with_label_values(&["rejected"]).inc();
            return None;
        }
        let answer = Answer {
            verified: true,
            reference: reference.to_owned(),
            detail: entry.detail,
            error: None,
        };
        Some((answer, Duration::from_secs(u64::try_from(left).ok()?)))
    }

    fn shared_key(&self, reference: &str) -> String {
        format!("{}:{reference}", self.context)
    }

    fn store(&self, key: (String, String), answer: Answer) {
        if self.settings.cache_ttl.is_zero() {
            return;
        }
        if let Some(shared) = &self.settings.shared_cache {
            let entry = SharedDecision {
                digest: key.0.clone(),
                policy: self.policy_digest.clone(),
                stores: self.stores_digest.clone(),
                verified: answer.verified,
                expires: unix_now()
                    + i64::try_from(self.settings.cache_ttl.as_secs()).unwrap_or(i64::MAX / 2),
                detail: answer.detail.clone(),
            };
            if let Ok(payload) = serde_json::to_vec(&entry) {
                shared.set(
                    Kind::Decision,
                    &self.shared_key(&key.0),
                    &payload,
                    self.settings.cache_ttl,
                );
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            let ttl = self.settings.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            cache.insert(key, (Instant::now(), answer));
        }
    }

    /// Resolve a tag, through the shared cache for `--tag-ttl` when there is one (a tag
    /// resolved by one replica serves the others for that long).
    fn resolve_tag(
        &self,
        registry: &Registry,
        artifact: &ArtifactRef,
    ) -> Result<crate::oci::Descriptor> {
        let Some(shared) = self
            .settings
            .shared_cache
            .as_ref()
            .filter(|_| !self.settings.tag_ttl.is_zero())
        else {
            return resolve_remote(registry, artifact, "verify");
        };
        let key = format!(
            "{}:{}",
            artifact.name(),
            artifact.tag.as_deref().unwrap_or("latest")
        );
        if let Some(descriptor) = shared
            .get(Kind::Tag, &key)
            .and_then(|p| serde_json::from_slice::<SharedTag>(&p).ok())
            .filter(|t| t.expires > unix_now() && crate::oci::is_digest(&t.descriptor.digest))
            .map(|t| t.descriptor)
        {
            METRICS.cache.with_label_values(&["shared_tag_hit"]).inc();
            return Ok(descriptor);
        }
        let descriptor = resolve_remote(registry, artifact, "verify")?;
        let entry = SharedTag {
            descriptor: descriptor.clone(),
            expires: unix_now() + i64::try_from(self.settings.tag_ttl.as_secs()).unwrap_or(0),
        };
        if let Ok(payload) = serde_json::to_vec(&entry) {
            shared.set(Kind::Tag, &key, &payload, self.settings.tag_ttl);
        }
        Ok(descriptor)
    }
}

/// A decision as the shared cache holds it: what it is about and until when.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedDecision {
    /// `registry/repository@digest`.
    digest: String,
    /// The trust policy's SHA-256.
    policy: String,
    /// The trust stores' SHA-256.
    stores: String,
    verified: bool,
    /// Unix seconds.
    expires: i64,
    detail: Value,
}

/// A resolved tag as the shared cache holds it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedTag {
    descriptor: crate::oci::Descriptor,
    /// Unix seconds.
    expires: i64,
}

/// One verification in flight: its answer once it has one.
#[derive(Default)]
struct Flight {
    /// `None` while running; then `Some(answer)`, or `Some(None)` when it could not decide.
    answer: Mutex<Option<Option<Answer>>>,
    done: Condvar,
}

impl Flight {
    /// Wait for the answer until `until`: `None` when that passed first.
    fn wait(&self, until: Instant) -> Option<Option<Answer>> {
        let mut answer = self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(done) = answer.as_ref() {
                return Some(done.clone());
            }
            let left = until.checked_duration_since(Instant::now())?;
            answer = self
                .done
                .wait_timeout(answer, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

enum Role<'a> {
    Leader(Leading<'a>),
    Follower(Arc<Flight>),
}

/// The leader's hold on a flight: when dropped (answered, failed or panicked) the flight
/// ends, and whoever waits wakes with its answer, or without one to try again.
struct Leading<'a> {
    service: &'a Service,
    key: (String, String),
    flight: Arc<Flight>,
    answer: Option<Answer>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .service
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if in_flight
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            in_flight.remove(&self.key);
        }
        drop(in_flight);
        *self
            .flight
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self.answer.take());
        self.flight.done.notify_all();
    }
}

fn failed(image: &str, error: String) -> Answer {
    Answer {
        verified: false,
        reference: image.to_owned(),
        detail: json!({"verified": false}),
        error: Some(error),
    }
}

fn gatekeeper_response(items: Vec<Value>, system_error: &str) -> Value {
    json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderResponse",
        "response": {
            // The same images give the same answer while signatures and policy stand.
            "idempotent": true,
            "items": items,
            "systemError": system_error,
        }
    })
}

fn image_list(body: &Value, pointer: &str) -> Result<Vec<String>, String> {
    let Some(list) = body.pointer(pointer).and_then(Value::as_array) else {
        return Err(format!("the request has no {pointer} list"));
    };
    if list.len() > MAX_KEYS {
        return Err(format!(
            "{} images in one request, over the limit of {MAX_KEYS}",
            list.len()
        ));
    }
    list.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{pointer} must hold strings, found {v}"))
        })
        .collect()
}

async fn read_json(request: Request<Incoming>) -> Result<Value> {
    let collect = Limited::new(request.into_body(), MAX_BODY).collect();
    let body = tokio::time::timeout(REQUEST_READ_TIMEOUT, collect)
        .await
        .map_err(|_| anyhow!("the request body did not arrive within {REQUEST_READ_TIMEOUT:?}"))?
        .map_err(|e| anyhow!("reading the request body (limit {MAX_BODY} bytes): {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).context("the request body is not JSON")
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! The signing service: HTTPS (TLS 1.3, client certificates required) over the request
//! store, signing with the HSM once a request has its quorum.
//!
//! API (JSON):
//! - `POST /v1/requests` `{key, subject{mediaType,digest,size}, metadata, format,
//!   signatureExpirySeconds}` → the request;
//! - `GET /v1/requests[?status=S]`, `GET /v1/requests/ID`;
//! - `POST /v1/requests/ID/decisions` `{mediaType, envelope}` (an approval: a Notary blob
//!   signature over the request bytes, base64) → the request;
//! - `GET /v1/keys` (names, digest algorithms, quorums), `GET /v1/audit` (the audit log),
//!   `GET /metrics`, `GET /healthz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use notary_verifier::Instant;
use notary_verifier::envelope::ExtendedAttribute;
use notary_verifier::sign::Format;
use serde_json::{Value, json};

use super::config::{KeyPolicy, ServiceConfig};
use super::store::{Added, Row, Status, Store};
use crate::approval::{self, Approvers, Decision, Record, RecordedApproval, SigningRequest};
use crate::config::ConfigDir;
use crate::engine::Verifier;
use crate::sign::SigningKey;

/// Request bodies larger than this are refused while they are read.
const MAX_BODY: usize = 1 << 20;
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 64;

/// A key the service signs with, and who must approve.
struct ServiceKey {
    policy: KeyPolicy,
    approvers: Approvers,
    lifetime: Duration,
    signing: SigningKey,
    /// The digest algorithm the key implies (blob requests digest with it).
    hash: String,
}

/// The running service.
pub struct Service {
    store: Mutex<Store>,
    keys: BTreeMap<String, ServiceKey>,
    engine: Box<dyn Verifier + Send + Sync>,
    revocation: Arc<crate::revocation::Fetcher>,
}

/// An answer other than success: the status and what to tell the client.
#[derive(Debug)]
pub struct Refusal(StatusCode, String);

impl Refusal {
    fn bad(text: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, text.into())
    }
    fn forbidden(text: impl Into<String>) -> Self {
        Self(StatusCode::FORBIDDEN, text.into())
    }
    fn conflict(text: impl Into<String>) -> Self {
        Self(StatusCode::CONFLICT, text.into())
    }
    fn not_found(id: &str) -> Self {
        Self(StatusCode::NOT_FOUND, format!("no request {id}"))
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

fn now() -> i64 {
    clock().seconds
}

/// The current time, whole seconds.
fn clock() -> Instant {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Instant::from_unix(seconds, 0)
}

fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn log(event: &str, id: &str, detail: &str) {
    eprintln!("hsm-notary signer: request {id} {event}{detail}");
}

impl Service {
    /// Open the database, the keys (PIN login now, so a wrong PIN stops the start) and the
    /// approvers' trust stores, and check every policy.
    pub fn open(settings: &ServiceConfig, config: &ConfigDir) -> Result<Self> {
        let engine = crate::engine::engine(crate::engine::EngineKind::Wasm)?;
        let stores = crate::config::truststore::read(&config.trust_store_dir())?;
        let key_list = crate::config::keys::KeyList::load(config.root())?;
        let mut keys = BTreeMap::new();
        for (name, policy) in &settings.keys {
            let approvers = Approvers::new(
                &policy.approvers_store,
                policy.trusted_identities.clone(),
                &stores,
            );
            approvers
                .validate(&*engine)
                .with_context(|| format!("keys.{name}: the approvers"))?;
            let entry = key_list
                .get(Some(policy.signing_key(name)))
                .with_context(|| format!("keys.{name}.signingKey"))?;
            if entry.plugin_name.is_some() {
                bail!("keys.{name}: plugin keys cannot be used by the signing service");
            }
            let signing = entry
                .open(None)
                .with_context(|| format!("keys.{name}: opening the signing key"))?;
            let hash = signing
                .algorithm(clock())
                .with_context(|| format!("keys.{name}: the signing key"))?
                .hash()
                .oci_name()
                .to_owned();
            keys.insert(
                name.clone(),
                ServiceKey {
                    policy: policy.clone(),
                    approvers,
                    lifetime: policy.lifetime()?,
                    signing,
                    hash,
                },
            );
        }
        let mut store = Store::open(&settings.database)?;
        store.note(
            "started",
            &format!(
                "keys {}",
                keys.keys().cloned().collect::<Vec<_>>().join(",")
            ),
            now(),
        )?;
        let service = Self {
            store: Mutex::new(store),
            keys,
            engine,
            revocation: crate::revocation::Fetcher::new(crate::revocation::Options {
                in_memory: true,
                ..crate::revocation::Options::default()
            }),
        };
        service.resume()?;
        Ok(service)
    }

    fn store(&self) -> Result<std::sync::MutexGuard<'_, Store>> {
        self.store
            .lock()
            .map_err(|_| anyhow!("the signer state lock is poisoned"))
    }

    /// Requests approved before a restart but not signed yet are signed now (their
    /// envelope never left the process, so this is their only signature).
    fn resume(&self) -> Result<()> {
        let approved = self.store()?.list(Some(Status::Approved))?;
        for row in approved {
            if row.envelope.is_none() {
                self.sign_approved(&row)?;
            }
        }
        Ok(())
    }

    /// `POST /v1/requests`.
    pub fn create(&self, requester: &str, body: &Value) -> Result<Value, Refusal> {
        let key_name = body["key"]
            .as_str()
            .ok_or_else(|| Refusal::bad("\"key\" must name a key"))?;
        let key = self.keys.get(key_name).ok_or_else(|| {
            Refusal::bad(format!(
                "unknown key {key_name:?} (this service signs with: {})",
                self.keys.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let subject: approval::Subject = serde_json::from_value(body["subject"].clone())
            .map_err(|e| Refusal::bad(format!("\"subject\": {e}")))?;
        if !is_digest(&subject.digest) {
            return Err(Refusal::bad(format!(
                "\"subject.digest\" {:?} is not a digest",
                subject.digest
            )));
        }
        let metadata: BTreeMap<String, String> = match &body["metadata"] {
            Value::Null => BTreeMap::new(),
            other => serde_json::from_value(other.clone())
                .map_err(|e| Refusal::bad(format!("\"metadata\": {e}")))?,
        };
        if let Some(reserved) = metadata.keys().find(|k| k.starts_with("io.cncf.notary")) {
            return Err(Refusal::bad(format!(
                "metadata key {reserved} has reserved prefix io.cncf.notary"
            )));
        }
        let format = match body["format"].as_str().unwrap_or("jws") {
            f @ ("jws" | "cose") => f.to_owned(),
            other => return Err(Refusal::bad(format!("unknown format {other:?}"))),
        };
        let expiry = body["signatureExpirySeconds"].as_u64().unwrap_or(0);
        let created = now();
        let request = SigningRequest {
            version: "1".to_owned(),
            id: random_hex(16)?,
            key: key_name.to_owned(),
            subject,
            metadata,
            format,
            signature_expiry_seconds: expiry,
            requester: requester.to_owned(),
            created,
            expires: created.saturating_add(key.lifetime.as_secs() as i64),
            nonce: random_hex(32)?,
        };
        if request.to_bytes().len() > approval::MAX_REQUEST_SIZE {
            return Err(Refusal::bad(format!(
                "the request is larger than {} bytes",
                approval::MAX_REQUEST_SIZE
            )));
        }
        self.store()?.insert(&request, created)?;
        log(
            "requested",
            &request.id,
            &format!(" by {requester} for {}", request.subject.digest),
        );
        self.describe(&request.id)
    }

    /// `GET /v1/requests/ID`.
    pub fn describe(&self, id: &str) -> Result<Value, Refusal> {
        let mut store = self.store()?;
        expire_due(&mut store)?;
        let row = store.get(id)?.ok_or_else(|| Refusal::not_found(id))?;
        let approvals = store.approvals(id)?;
        drop(store);
        Ok(self.describe_row(&row, &approvals, true))
    }

    fn describe_row(
        &self,
        row: &Row,
        approvals: &[super::store::StoredApproval],
        with_envelope: bool,
    ) -> Value {
        let required = self
            .keys
            .get(&row.request.key)
            .map_or(0, |k| k.policy.required);
        let mut out = json!({
            "id": row.request.id,
            "status": row.status,
            "key": row.request.key,
            "subject": row.request.subject,
            "metadata": row.request.metadata,
            "format": row.request.format,
            "requester": row.request.requester,
            "created": row.request.created,
            "expires": row.request.expires,
            "required": required,
            "approvals": approvals.iter().map(|a| &a.approval).collect::<Vec<_>>(),
            "request": approval::to_base64(&row.bytes),
        });
        if let Some(reason) = &row.reason {
            out["reason"] = json!(reason);
        }
        if with_envelope && let Some(envelope) = &row.envelope {
            out["mediaType"] = json!(format_of(&row.request.format).media_type());
            out["envelope"] = json!(approval::to_base64(envelope));
        }
        out
    }

    /// `GET /v1/requests`.
    pub fn list(&self, status: Option<&str>) -> Result<Value, Refusal> {
        let status = match status {
            None => None,
            Some(text) => Some(
                Status::ALL
                    .into_iter()
                    .find(|s| s.as_str() == text)
                    .ok_or_else(|| Refusal::bad(format!("unknown status {text:?}")))?,
            ),
        };
        let mut store = self.store()?;
        expire_due(&mut store)?;
        let mut out = Vec::new();
        for row in store.list(status)? {
            let approvals = store.approvals(&row.request.id)?;
            out.push(self.describe_row(&row, &approvals, false));
        }
        Ok(json!({ "requests": out }))
    }

    /// `POST /v1/requests/ID/decisions`: check the approval with the verifier, record it,
    /// and sign once the quorum is reached.
    pub fn decide(&self, id: &str, actor: &str, body: &Value) -> Result<Value, Refusal> {
        let media_type = body["mediaType"]
            .as_str()
            .unwrap_or(notary_verifier::envelope::MEDIA_TYPE_JWS);
        let envelope = body["envelope"]
            .as_str()
            .ok_or_else(|| Refusal::bad("\"envelope\" must be the approval envelope, base64"))
            .and_then(|t| {
                approval::from_base64(t)
                    .map_err(|e| Refusal::bad(format!("\"envelope\" is not base64: {e}")))
            })?;
        if envelope.len() > notary_verifier::envelope::MAX_ENVELOPE_SIZE {
            return Err(Refusal::bad("the approval envelope is too large"));
        }
        let row = {
            let mut store = self.store()?;
            expire_due(&mut store)?;
            if store.seen(&envelope)? {
                // Sent again to the request it approves (a retry): nothing changes.
                if store.approvals(id)?.iter().any(|a| a.envelope == envelope) {
                    drop(store);
                    return self.describe(id);
                }
                return Err(Refusal::conflict(
                    "this approval was submitted before: an approval is accepted once",
                ));
            }
            store.get(id)?.ok_or_else(|| Refusal::not_found(id))?
        };
        if row.status != Status::Pending {
            return Err(Refusal::conflict(format!(
                "request {id} is {}, not pending",
                row.status.as_str()
            )));
        }
        let key = self.keys.get(&row.request.key).ok_or_else(|| {
            anyhow!(
                "request {id} names key {:?}, no longer configured",
                row.request.key
            )
        })?;
        // The verifier decides outside the lock: revocation checks may fetch.
        let checked = approval::check(
            &*self.engine,
            &self.revocation.unbounded(),
            &key.approvers,
            &row.bytes,
            media_type,
            &envelope,
            clock(),
        )
        .map_err(|e| {
            log("refused an approval", id, &format!(" from {actor}: {e}"));
            Refusal::forbidden(e.to_string())
        })?;
        if !key.policy.requester_may_approve && checked.approver == row.request.requester {
            return Err(Refusal::forbidden(format!(
                "{} requested this signature and may not also approve it",
                checked.approver
            )));
        }
        let mut store = self.store()?;
        let added = store
            .add_decision(id, &checked, media_type, &envelope, now())
            .map_err(|e| Refusal::conflict(format!("{e:#}")))?;
        match (added, checked.decision) {
            (Added::Duplicate, _) => log(
                "ignored a second decision",
                id,
                &format!(" by {}", checked.approver),
            ),
            (Added::New, Decision::Reject) => {
                log("rejected", id, &format!(" by {}", checked.approver));
            }
            (Added::New, Decision::Approve) => {
                log("approved", id, &format!(" by {}", checked.approver));
                let approvals = store.approvals(id)?;
                let counted: Vec<_> = approvals.iter().map(|a| a.approval.clone()).collect();
                if approval::distinct_approvers(&counted).len() >= key.policy.required
                    && store.transition(id, Status::Pending, Status::Approved, None, now())?
                {
                    log("has its quorum", id, "");
                    let row = store.get(id)?.ok_or_else(|| Refusal::not_found(id))?;
                    drop(store);
                    self.sign_approved(&row)?;
                    return self.describe(id);
                }
            }
        }
        drop(store);
        self.describe(id)
    }

    /// Sign an approved request with its key, the approvals recorded in the envelope, and
    /// store the envelope (once: a request that already has one keeps it).
    fn sign_approved(&self, row: &Row) -> Result<()> {
        let id = &row.request.id;
        let key = self.keys.get(&row.request.key).ok_or_else(|| {
            anyhow!(
                "request {id} names key {:?}, not configured",
                row.request.key
            )
        })?;
        let approvals = self.store()?.approvals(id)?;
        let mut counted = Vec::new();
        let record = Record {
            version: "1".to_owned(),
            request: approval::to_base64(&row.bytes),
            approvals: approvals
                .iter()
                .filter(|a| a.approval.decision == Decision::Approve)
                .filter(|a| {
                    let first = !counted.contains(&a.approval.approver);
                    counted.push(a.approval.approver.clone());
                    first
                })
                .map(|a| RecordedApproval {
                    approver: a.approval.approver.clone(),
                    certificate: a.approval.certificate.clone(),
                    media_type: a.media_type.clone(),
                    envelope: approval::to_base64(&a.envelope),
                })
                .collect(),
        };
        let subject = crate::oci::Descriptor {
            media_type: row.request.subject.media_type.clone(),
            digest: row.request.subject.digest.clone(),
            size: row.request.subject.size,
            ..crate::oci::Descriptor::default()
        };
        let metadata: Vec<(String, String)> = row
            .request
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let target = crate::commands::sign::target_with_metadata(&subject, &metadata)?;
        let signed = crate::sign::sign_descriptor_with(
            &key.signing,
            format_of(&row.request.format),
            &target,
            Some(Duration::from_secs(row.request.signature_expiry_seconds)),
            clock(),
            None,
            vec![ExtendedAttribute {
                key: approval::ATTRIBUTE.to_owned(),
                critical: false,
                value: record.to_text(),
            }],
        )
        .with_context(|| format!("signing request {id}"))?;
        let detail = format!(
            "envelope {} by key {}",
            crate::oci::sha256_digest(&signed.envelope),
            key.policy.signing_key(&row.request.key)
        );
        if self
            .store()?
            .store_signature(id, &signed.envelope, &detail, now())?
        {
            log("signed", id, &format!(": {detail}"));
        }
        Ok(())
    }

    /// `GET /v1/keys`: what requesters need to know about each key.
    pub fn keys(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(name, key)| {
                json!({
                    "name": name,
                    "hash": key.hash,
                    "required": key.policy.required,
                    "trustedIdentities": key.policy.trusted_identities,
                    "requestLifetimeSeconds": key.lifetime.as_secs(),
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// `GET /v1/audit`.
    pub fn audit(&self) -> Result<Value, Refusal> {
        Ok(json!({ "entries": self.store()?.audit_log()? }))
    }

    /// `GET /metrics`: requests by status, in Prometheus text format.
    pub fn metrics(&self) -> Result<String> {
        let counts = self.store()?.counts()?;
        let registry = prometheus::Registry::new();
        let gauge = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("hsm_notary_signer_requests", "Signing requests by status."),
            &["status"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        for (status, n) in counts {
            gauge.with_label_values(&[status.as_str()]).set(n);
        }
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// Expire what is due, logging each.
fn expire_due(store: &mut Store) -> Result<()> {
    for id in store.expire(now())? {
        log("expired", &id, "");
    }
    Ok(())
}

fn format_of(text: &str) -> Format {
    if text == "cose" {
        Format::Cose
    } else {
        Format::Jws
    }
}

fn is_digest(text: &str) -> bool {
    match text.split_once(':') {
        Some(("sha256", hex)) => hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        Some(("sha384", hex)) => hex.len() == 96 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        Some(("sha512", hex)) => hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => false,
    }
}

/// Run the service until the process is stopped.
pub fn run(settings: ServiceConfig, config: &ConfigDir) -> Result<()> {
    crate::registry::install_crypto_provider();
    let tls = crate::serve::server_tls(
        &settings.tls.certificate,
        &settings.tls.key,
        Some(&settings.tls.client_ca),
    )?;
    let service = Arc::new(Service::open(&settings, config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the signer runtime")?;
    runtime.block_on(accept_loop(service, tls, settings.listen))
}

async fn accept_loop(
    service: Arc<Service>,
    tls: Arc<rustls::ServerConfig>,
    listen: std::net::SocketAddr,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!(
        "hsm-notary signer: listening on https://{}",
        listener.local_addr()?
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            bail!("connection limit closed");
        };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            // The client certificate chained to the client CA (rustls checked it); its
            // subject is who is asking.
            let Some(client) = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| subject_of(c.as_ref()))
            else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                let client = client.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(service, client, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(io, handler)
                .await;
        });
    }
}

fn subject_of(der: &[u8]) -> Option<String> {
    let cert = notary_verifier::x509::Cert::from_der(der).ok()?;
    Some(notary_verifier::x509::name::go_string(
        cert.parsed().tbs_certificate().subject(),
    ))
}

async fn handle(
    service: Arc<Service>,
    client: String,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = if method == Method::POST {
        let collect = Limited::new(request.into_body(), MAX_BODY).collect();
        match tokio::time::timeout(READ_TIMEOUT, collect).await {
            Ok(Ok(body)) => match serde_json::from_slice::<Value>(&body.to_bytes()) {
                Ok(value) => value,
                Err(e) => {
                    return reply(Err(Refusal::bad(format!("the body is not JSON: {e}"))));
                }
            },
            _ => {
                return reply(Err(Refusal::bad(format!(
                    "the body did not arrive within {READ_TIMEOUT:?} or is over {MAX_BODY} bytes"
                ))));
            }
        }
    } else {
        Value::Null
    };
    if path == "/metrics" && method == Method::GET {
        let service = service.clone();
        let text = tokio::task::spawn_blocking(move || service.metrics()).await;
        return match text {
            Ok(Ok(text)) => {
                let mut response = Response::new(Full::new(Bytes::from(text)));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            _ => reply(Err(Refusal::from(anyhow!("metrics unavailable")))),
        };
    }
    // The state and the HSM are blocking: off the async threads.
    let answer = tokio::task::spawn_blocking(move || {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, ["healthz"]) => Ok(json!({"ok": true})),
            (&Method::POST, ["v1", "requests"]) => service.create(&client, &body),
            (&Method::GET, ["v1", "requests"]) => {
                let status = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("status="))
                    .map(str::to_owned);
                service.list(status.as_deref())
            }
            (&Method::GET, ["v1", "requests", id]) => service.describe(id),
            (&Method::POST, ["v1", "requests", id, "decisions"]) => {
                service.decide(id, &client, &body)
            }
            (&Method::GET, ["v1", "audit"]) => service.audit(),
            (&Method::GET, ["v1", "keys"]) => Ok(service.keys()),
            _ => Err(Refusal(
                StatusCode::NOT_FOUND,
                format!("no endpoint {method} {path}"),
            )),
        }
    })
    .await
    .unwrap_or_else(|e| Err(Refusal::from(anyhow!("the request handler failed: {e}"))));
    reply(answer)
}

fn reply(answer: Result<Value, Refusal>) -> Response<Full<Bytes>> {
    let (status, body) = match answer {
        Ok(value) => (StatusCode::OK, value),
        Err(Refusal(status, message)) => (status, json!({ "error": message })),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

//! Fetching revocation evidence (`trust-store-trust-policy.md` §OCSP Download, §CRL
//! Download) for the verifier, which never fetches: the component says what it needs
//! (`revocation-needs`), this module fetches exactly that, and the evidence goes back in
//! the one request that decides.
//!
//! - OCSP: each responder URL in order until one answers 200; GET when the base64
//!   request is under 255 bytes, POST otherwise (RFC 6960 appendix A); 2 s and 20 KiB.
//! - CRL: every distribution point; 5 s and 32 MiB; kept on disk (`crl/` in the cache
//!   directory, one file per URL, as notation's) and, in `serve`, in memory, while their
//!   `nextUpdate` is ahead.
//! - Only `http` URLs (notation's rule), only HTTP 200, no redirects, every cap enforced
//!   while reading. A location that fails becomes `unavailable` evidence naming why, so
//!   the verifier's message says what was tried; it is never a pass.
//! - A cache that cannot be read or written is a warning and a fetch, never a decision.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as Clock};

use anyhow::{Context, Result};
use base64ct::{Base64, Encoding};
use notary_verifier::revocation::{Evidence, Method, Need, crl::Crl, crl::MAX_CRL_SIZE, ocsp};
use notary_verifier::{Instant, Outcome, VerifyRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::Verifier;

/// notation's OCSP timeout.
pub const OCSP_TIMEOUT: Duration = Duration::from_secs(2);
/// notation's CRL timeout.
pub const CRL_TIMEOUT: Duration = Duration::from_secs(5);
/// Rounds of needs: OCSP, then CRLs, then delta CRLs, for the TSA and the signing chain,
/// and a signature after one that turned out revoked.
const MAX_ROUNDS: usize = 8;
/// RFC 6960 appendix A: GET for requests whose base64 form is shorter than this.
const GET_LIMIT: usize = 255;

/// How evidence is fetched and kept.
#[derive(Clone, Debug)]
pub struct Options {
    /// Per OCSP request.
    pub ocsp_timeout: Duration,
    /// Per CRL download.
    pub crl_timeout: Duration,
    /// The CRL cache directory (`{cache}/crl`), if any.
    pub cache_dir: Option<PathBuf>,
    /// Keep answers in memory until their `nextUpdate` (`serve`).
    pub in_memory: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ocsp_timeout: OCSP_TIMEOUT,
            crl_timeout: CRL_TIMEOUT,
            cache_dir: crate::config::cache_dir().map(|d| d.join("crl")),
            in_memory: false,
        }
    }
}

/// An answer kept in memory.
#[derive(Clone)]
struct Kept {
    bytes: Vec<u8>,
    until: Instant,
}

/// Fetches evidence; shared by every verification of a process.
pub struct Fetcher {
    options: Options,
    memory: Mutex<HashMap<(String, Vec<u8>), Kept>>,
    /// One lock per URL being fetched, so that concurrent verifications wait for one
    /// fetch instead of each making their own (in-memory mode).
    inflight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    warned: AtomicBool,
    /// `serve --cache`: answers shared with other replicas, until their `nextUpdate`.
    shared: std::sync::OnceLock<Arc<crate::shared_cache::SharedCache>>,
    /// The needs answered most recently (in-memory mode), newest last: the next image of
    /// the same signer has the same chain, so its evidence can go in with the first call.
    recent: Mutex<std::collections::VecDeque<Need>>,
}

/// Needs remembered for [`Fetcher::recent_evidence`].
const RECENT_NEEDS: usize = 16;

impl Fetcher {
    /// A fetcher with `options`.
    pub fn new(options: Options) -> Arc<Self> {
        Arc::new(Self {
            options,
            memory: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
            shared: std::sync::OnceLock::new(),
            recent: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// Remember that `need` was asked for (in-memory mode).
    fn note_recent(&self, need: &Need) {
        if !self.options.in_memory {
            return;
        }
        let Ok(mut recent) = self.recent.lock() else {
            return;
        };
        recent.retain(|n| n != need);
        if recent.len() >= RECENT_NEEDS {
            recent.pop_front();
        }
        recent.push_back(need.clone());
    }

    /// For each recently asked need that memory answers in full, exactly the evidence a
    /// fetch would return for it now (so handing it in before the engine asks changes no
    /// decision, and saves the engine call that would ask). Never fetches.
    fn recent_evidence(&self, now: Instant) -> Vec<Evidence> {
        let recent: Vec<Need> = match self.recent.lock() {
            Ok(recent) => recent.iter().cloned().collect(),
            Err(_) => return Vec::new(),
        };
        let not_held = || "not in memory".to_owned();
        let mut out = Vec::new();
        for need in &recent {
            let answered = evidence_for(
                need,
                |url, request| self.remembered(url, request, now).ok_or_else(not_held),
                |url| self.remembered(url, &[], now).ok_or_else(not_held),
            );
            // A location memory lacks would be fetched: leave the need to be asked.
            if !answered
                .iter()
                .any(|e| matches!(e, Evidence::Unavailable { .. }))
            {
                out.extend(answered);
            }
        }
        out
    }

    /// Share in-memory answers through `cache` (`serve --cache`). The component checks
    /// every answer's signature and freshness, so a shared one is evidence like a fetched
    /// one; the cache's own MAC keeps strangers from planting any.
    pub fn share(&self, cache: Arc<crate::shared_cache::SharedCache>) {
        let _ = self.shared.set(cache);
    }

    /// The shared-cache key of an answer: its URL and request, hashed.
    fn shared_key(url: &str, request: &[u8]) -> String {
        let mut hash = Sha256::new();
        hash.update((url.len() as u64).to_be_bytes());
        hash.update(url.as_bytes());
        hash.update(request);
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// This fetcher's caches, its requests stopping at `deadline` (a `serve` request's):
    /// what cannot finish in time is unavailable, so the verification fails closed.
    pub fn until(self: &Arc<Self>, deadline: Clock) -> Bounded {
        Bounded {
            shared: self.clone(),
            deadline: Some(deadline),
            plugins: None,
        }
    }

    /// Without a deadline.
    pub fn unbounded(self: &Arc<Self>) -> Bounded {
        Bounded {
            shared: self.clone(),
            deadline: None,
            plugins: None,
        }
    }

    fn warn_cache(&self, error: &anyhow::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!("Warning: CRL cache error discarded: {error:#}");
        }
    }

    /// The lock of `url`'s fetch (in-memory mode only).
    fn lock_of(&self, url: &str) -> Option<Arc<Mutex<()>>> {
        if !self.options.in_memory {
            return None;
        }
        let mut inflight = self.inflight.lock().ok()?;
        if inflight.len() > 4096 {
            inflight.clear();
        }
        Some(inflight.entry(url.to_owned()).or_default().clone())
    }

    fn remembered(&self, url: &str, request: &[u8], now: Instant) -> Option<Vec<u8>> {
        if !self.options.in_memory {
            return None;
        }
        let local = self.memory.lock().ok().and_then(|memory| {
            let kept = memory.get(&(url.to_owned(), request.to_vec()))?;
            (kept.until > now).then(|| kept.bytes.clone())
        });
        if local.is_some() {
            return local;
        }
        // Shared: eight bytes of `until` (Unix seconds), then the answer.
        let payload = self.shared.get()?.get(
            crate::shared_cache::Kind::Revocation,
            &Self::shared_key(url, request),
        )?;
        let (until, bytes) = payload.split_at_checked(8)?;
        let until = Instant::from_unix(i64::from_be_bytes(until.try_into().ok()?), 0);
        if until <= now {
            return None;
        }
        self.remember_locally(url, request, bytes, until);
        Some(bytes.to_vec())
    }

    fn remember(&self, url: &str, request: &[u8], bytes: &[u8], until: Option<Instant>) {
        if !self.options.in_memory {
            return;
        }
        let Some(until) = until else { return };
        if let Some(shared) = self.shared.get() {
            let left = until
                .seconds
                .saturating_sub(crate::shared_cache::unix_now());
            if left > 0 {
                let mut payload = until.seconds.to_be_bytes().to_vec();
                payload.extend_from_slice(bytes);
                shared.set(
                    crate::shared_cache::Kind::Revocation,
                    &Self::shared_key(url, request),
                    &payload,
                    Duration::from_secs(left.unsigned_abs()),
                );
            }
        }
        self.remember_locally(url, request, bytes, until);
    }

    fn remember_locally(&self, url: &str, request: &[u8], bytes: &[u8], until: Instant) {
        if let Ok(mut memory) = self.memory.lock() {
            // Bounded: a process checks a handful of CAs; a flood of distinct URLs
            // (one per hostile image) is not kept.
            if memory.len() > 4096 {
                memory.clear();
            }
            memory.insert(
                (url.to_owned(), request.to_vec()),
                Kept {
                    bytes: bytes.to_vec(),
                    until,
                },
            );
        }
    }
}

/// A [`Fetcher`] bound to one verification's deadline.
pub struct Bounded {
    shared: Arc<Fetcher>,
    deadline: Option<Clock>,
    plugins: Option<Arc<crate::plugin::verifier::Plugins>>,
}

impl Bounded {
    /// Verification plugins may be asked too (CLI, serve, Ratify and containerd modes).
    pub fn with_plugins(mut self, plugins: Arc<crate::plugin::verifier::Plugins>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// Verify `request`, fetching the revocation evidence the engine asks for (and asking
    /// the verification plugins it names) again until nothing is missing; the evidence
    /// ends up in `request`. With the evidence at hand (cached), that is one engine call.
    pub fn verify(&self, engine: &dyn Verifier, request: &mut VerifyRequest) -> Result<Outcome> {
        let now = request.verification_time;
        if request.revocation_evidence.is_empty() {
            request
                .revocation_evidence
                .extend(self.shared.recent_evidence(now));
        }
        for _ in 0..MAX_ROUNDS {
            let (outcome, needs) = engine.verify_or_ask(request)?;
            // Plugins matter only while no signature verified, and only when one of the
            // signatures tried names a verification plugin (as the component read it).
            let names_plugin = outcome.signatures.iter().any(|s| {
                s.envelope.as_ref().is_some_and(|e| {
                    e.extended_attributes.iter().any(|(key, _, _)| {
                        key == notary_verifier::envelope::attr::VERIFICATION_PLUGIN
                    })
                })
            });
            let plugin_needs = match &self.plugins {
                Some(_)
                    if outcome.decision == notary_verifier::Decision::Failed && names_plugin =>
                {
                    engine.plugin_needs(request)?
                }
                _ => Vec::new(),
            };
            if needs.is_empty() && plugin_needs.is_empty() {
                return Ok(outcome);
            }
            let wanted = unanswered(needs, &request.revocation_evidence);
            if wanted.is_empty() && plugin_needs.is_empty() {
                break;
            }
            for need in &wanted {
                let evidence = self.fetch(need, now);
                request.revocation_evidence.extend(evidence);
                self.shared.note_recent(need);
            }
            if let Some(plugins) = &self.plugins {
                for need in &plugin_needs {
                    tracing::debug!("Asking verification plugin: {need:?}");
                    request.plugin_evidence.push(plugins.answer(need));
                }
            }
        }
        // Whatever is still missing is decided as missing.
        engine.verify(request)
    }

    /// [`Self::gather`] with any question: `needs` says what `evidence` lacks.
    pub fn gather_with(
        &self,
        now: Instant,
        evidence: &mut Vec<Evidence>,
        mut needs: impl FnMut(&[Evidence]) -> Result<Vec<Need>>,
    ) -> Result<()> {
        for _ in 0..MAX_ROUNDS {
            let wanted = unanswered(needs(evidence)?, evidence);
            if wanted.is_empty() {
                return Ok(());
            }
            for need in &wanted {
                evidence.extend(self.fetch(need, now));
            }
        }
        Ok(())
    }

    /// Evidence for one need.
    pub fn fetch(&self, need: &Need, now: Instant) -> Vec<Evidence> {
        evidence_for(
            need,
            |url, request| self.ocsp(url, request, now),
            |url| self.crl(url, now),
        )
    }

    fn timeout(&self, configured: Duration) -> Result<Duration, String> {
        match self.deadline {
            None => Ok(configured),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Clock::now());
                if left.is_zero() {
                    return Err("not fetched: the request's deadline had passed".to_owned());
                }
                Ok(configured.min(left))
            }
        }
    }

    fn ocsp(&self, url: &str, request: &[u8], now: Instant) -> Result<Vec<u8>, String> {
        let lock = self.shared.lock_of(url);
        let _fetching = lock.as_ref().map(|l| l.lock());
        if let Some(bytes) = self.shared.remembered(url, request, now) {
            return Ok(bytes);
        }
        let timeout = self.timeout(self.shared.options.ocsp_timeout)?;
        let encoded = Base64::encode_string(request);
        let get = if encoded.len() < GET_LIMIT {
            let mut target = url.to_owned();
            if !target.ends_with('/') {
                target.push('/');
            }
            target.push_str(&percent_encode(&encoded));
            Some(target)
        } else {
            None
        };
        let response = http(
            match &get {
                Some(target) => Fetch::Get(target),
                None => Fetch::Post(url, request, "application/ocsp-request"),
            },
            timeout,
            ocsp::MAX_RESPONSE_SIZE,
        )?;
        if self.shared.options.in_memory {
            self.shared
                .remember(url, request, &response, ocsp::next_update(&response));
        }
        Ok(response)
    }

    fn crl(&self, url: &str, now: Instant) -> Result<Vec<u8>, String> {
        let lock = self.shared.lock_of(url);
        let _fetching = lock.as_ref().map(|l| l.lock());
        if let Some(bytes) = self.shared.remembered(url, &[], now) {
            return Ok(bytes);
        }
        let cache = self.shared.options.cache_dir.as_deref().map(CrlCache::new);
        if let Some(cache) = &cache {
            tracing::debug!(
                "Retrieving crl bundle from file cache with key {}",
                cache.path(url).display()
            );
            match cache.get(url, now) {
                Ok(Some((bytes, next_update))) => {
                    self.shared.remember(url, &[], &bytes, Some(next_update));
                    return Ok(bytes);
                }
                Ok(None) => tracing::debug!("CRL file cache miss for {url}"),
                Err(e) => self.shared.warn_cache(&e),
            }
        }
        let timeout = self.timeout(self.shared.options.crl_timeout)?;
        let bytes = http(Fetch::Get(url), timeout, MAX_CRL_SIZE)?;
        // Parsed here only to know how long memory may keep it (the component decides).
        if self.shared.options.in_memory {
            let until = Crl::parse(&bytes).ok().and_then(|c| c.next_update);
            self.shared.remember(url, &[], &bytes, until);
        }
        if let Some(cache) = &cache {
            tracing::debug!(
                "Storing crl bundle to file cache with key {}",
                cache.path(url).display()
            );
            if let Err(e) = cache.put(url, &bytes) {
                self.shared.warn_cache(&e);
            }
        }
        Ok(bytes)
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

enum Fetch<'a> {
    Get(&'a str),
    Post(&'a str, &'a [u8], &'static str),
}

/// The needs not yet answered: a URL already answered for is never fetched again.
fn unanswered(needs: Vec<Need>, evidence: &[Evidence]) -> Vec<Need> {
    needs
        .into_iter()
        .filter(|n| {
            !n.urls.iter().all(|u| {
                evidence.iter().any(|e| match e {
                    Evidence::Ocsp { url, .. }
                    | Evidence::Crl { url, .. }
                    | Evidence::Unavailable { url, .. } => url == u,
                    Evidence::Asserted { .. } => false,
                })
            })
        })
        .collect()
}

/// The evidence for `need` from answers `ocsp(url, request)` and `crl(url)`: OCSP
/// responders in order until one answers, every CRL distribution point, delta CRLs until
/// one answers; each location that fails becomes `unavailable` evidence saying why.
fn evidence_for(
    need: &Need,
    ocsp: impl Fn(&str, &[u8]) -> Result<Vec<u8>, String>,
    crl: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Vec<Evidence> {
    let mut out = Vec::new();
    for url in &need.urls {
        let answer = match need.method {
            Method::Ocsp => ocsp(url, &need.ocsp_request).map(|response| Evidence::Ocsp {
                url: url.clone(),
                response,
            }),
            Method::Crl | Method::DeltaCrl => crl(url).map(|crl| Evidence::Crl {
                url: url.clone(),
                crl,
            }),
        };
        match answer {
            Ok(evidence) => {
                out.push(evidence);
                if need.method != Method::Crl {
                    break;
                }
            }
            Err(reason) => out.push(Evidence::Unavailable {
                url: url.clone(),
                reason,
            }),
        }
    }
    out
}

/// One HTTP exchange: `http` only, 200 only, no redirects, at most `limit` bytes read.
fn http(fetch: Fetch<'_>, timeout: Duration, limit: usize) -> Result<Vec<u8>, String> {
    let url = match &fetch {
        Fetch::Get(u) | Fetch::Post(u, _, _) => *u,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "unsupported scheme {:?}: only http URLs are fetched for revocation",
            parsed.scheme()
        ));
    }
    crate::registry::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    runtime.block_on(async {
        // One deadline for the whole exchange (connect, send, read), below.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::sign::SIGNING_AGENT)
            .build()
            .map_err(|e| format!("{e}"))?;
        let exchange = async {
            let request = match fetch {
                Fetch::Get(u) => {
                    tracing::debug!("Request: \"GET\" {u:?}");
                    client.get(u)
                }
                Fetch::Post(u, body, content_type) => {
                    tracing::debug!("Request: \"POST\" {u:?} ({content_type})");
                    client
                        .post(u)
                        .header("content-type", content_type)
                        .body(body.to_vec())
                }
            };
            let mut response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            tracing::debug!(
                "Response: {status} from {url:?} (Content-Type: {:?})",
                response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
            );
            if status != reqwest::StatusCode::OK {
                return Err(format!("HTTP {status}: only 200 is accepted"));
            }
            if let Some(length) = response.content_length()
                && length > limit as u64
            {
                return Err(format!(
                    "answer of {length} bytes is over the {limit}-byte limit"
                ));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if bytes.len() + chunk.len() > limit {
                    return Err(format!("answer is over the {limit}-byte limit"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    })
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A cache file: notation's `{"baseCRL": …, "deltaCRL": …}`, with the URL it is for.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(rename = "baseCRL")]
    base_crl: String,
    #[serde(rename = "deltaCRL", default, skip_serializing_if = "Option::is_none")]
    delta_crl: Option<String>,
}

/// A cached CRL, for `cache crl list`.
pub struct CacheEntry {
    /// The file.
    pub path: PathBuf,
    /// The URL it is for, when the file records it.
    pub url: Option<String>,
    /// What the CRL says of itself, or why it cannot be read.
    pub crl: Result<Crl, String>,
}

/// The on-disk CRL cache: `{dir}/{hex(sha256(url))}`.
pub struct CrlCache {
    dir: PathBuf,
}

impl CrlCache {
    /// The cache in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The default cache directory's.
    pub fn default_dir() -> Result<PathBuf> {
        crate::config::cache_dir()
            .map(|d| d.join("crl"))
            .context("no cache directory: set HSM_NOTARY_CACHE or HOME")
    }

    /// The file of `url`.
    pub fn path(&self, url: &str) -> PathBuf {
        self.dir.join(hex(&Sha256::digest(url.as_bytes())))
    }

    /// The CRL cached for `url` and its `nextUpdate`, if it is still current at `now`.
    pub fn get(&self, url: &str, now: Instant) -> Result<Option<(Vec<u8>, Instant)>> {
        let path = self.path(url);
        let bytes = match crate::files::read_regular(&path, 2 * MAX_CRL_SIZE as u64) {
            Ok(b) => b,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: CacheFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a CRL cache file", path.display()))?;
        let der = Base64::decode_vec(&file.base_crl)
            .map_err(|e| anyhow::anyhow!("{}: baseCRL: {e}", path.display()))?;
        let crl = Crl::parse(&der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        match crl.next_update {
            Some(next) if next > now => Ok(Some((der, next))),
            // Expired: fetched again.
            _ => Ok(None),
        }
    }

    /// Keep `der` for `url`: written to a temporary file in the directory, then renamed.
    pub fn put(&self, url: &str, der: &[u8]) -> Result<()> {
        create_private_dir(&self.dir)?;
        let file = CacheFile {
            url: Some(url.to_owned()),
            base_crl: Base64::encode_string(der),
            delta_crl: None,
        };
        let path = self.path(url);
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)
            .with_context(|| format!("creating a temporary file in {}", self.dir.display()))?;
        temp.write_all(&serde_json::to_vec(&file)?)?;
        temp.as_file().sync_all()?;
        temp.persist(&path)
            .with_context(|| format!("storing {}", path.display()))?;
        Ok(())
    }

    /// Every cached CRL.
    pub fn list(&self) -> Result<Vec<CacheEntry>> {
        let mut entries = Vec::new();
        let read = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        for item in read {
            let path = item?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let parsed = crate::files::read_regular(&path, 2 * MAX_CRL_SIZE as u64)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<CacheFile>(&b).map_err(|e| e.to_string()));
            let (url, crl) = match parsed {
                Ok(file) => (
                    file.url,
                    Base64::decode_vec(&file.base_crl)
                        .map_err(|e| e.to_string())
                        .and_then(|d| Crl::parse(&d).map_err(|e| e.to_string())),
                ),
                Err(e) => (None, Err(e)),
            };
            entries.push(CacheEntry { path, url, crl });
        }
        entries.sort_by(|a, b| a.url.cmp(&b.url).then_with(|| a.path.cmp(&b.path)));
        Ok(entries)
    }

    /// Remove every cached CRL; returns how many.
    pub fn purge(&self) -> Result<usize> {
        let entries = self.list()?;
        for entry in &entries {
            std::fs::remove_file(&entry.path)
                .with_context(|| format!("removing {}", entry.path.display()))?;
        }
        Ok(entries.len())
    }
}

fn is_missing(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("failed to create crl file cache {}", dir.display()))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create crl file cache {}", dir.display()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn need(method: Method, urls: &[&str]) -> Need {
        Need {
            certificate_sha256: "ab".repeat(32),
            subject: "CN=leaf".into(),
            method,
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            ocsp_request: if method == Method::Ocsp {
                vec![1, 2, 3]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn recent_needs_are_answered_up_front_only_from_memory_and_only_in_full() {
        let fetcher = Fetcher::new(Options {
            in_memory: true,
            cache_dir: None,
            ..Options::default()
        });
        let now = Instant::from_unix(1_000, 0);
        let later = Some(Instant::from_unix(2_000, 0));
        fetcher.remember("http://ca.test/a.crl", &[], b"crl a", later);
        fetcher.remember("http://ca.test/ocsp", &[1, 2, 3], b"ocsp answer", later);
        let both = need(Method::Crl, &["http://ca.test/a.crl"]);
        let half = need(
            Method::Crl,
            &["http://ca.test/a.crl", "http://ca.test/b.crl"],
        );
        let ocsp = need(
            Method::Ocsp,
            &["http://ca.test/ocsp", "http://ca.test/other"],
        );
        // Nothing asked yet: nothing handed in.
        assert!(fetcher.recent_evidence(now).is_empty());
        for n in [&both, &half, &ocsp] {
            fetcher.note_recent(n);
        }
        // What a fetch would return from memory; a CRL need with a location memory lacks
        // is left for the engine to ask.
        assert_eq!(
            fetcher.recent_evidence(now),
            vec![
                Evidence::Crl {
                    url: "http://ca.test/a.crl".into(),
                    crl: b"crl a".to_vec()
                },
                Evidence::Ocsp {
                    url: "http://ca.test/ocsp".into(),
                    response: b"ocsp answer".to_vec()
                },
            ]
        );
        // Past nextUpdate nothing is handed in.
        assert!(
            fetcher
                .recent_evidence(Instant::from_unix(2_000, 0))
                .is_empty()
        );
        // Not in memory mode (the CLI): never.
        let cli = Fetcher::new(Options {
            in_memory: false,
            cache_dir: None,
            ..Options::default()
        });
        cli.note_recent(&both);
        assert!(cli.recent_evidence(now).is_empty());
    }
}

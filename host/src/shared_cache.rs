//! The cache `serve` replicas share (`--cache redis://HOST:PORT[/DB]`), as Ratify's HA mode
//! shares one in Redis: verified decisions, resolved tags and revocation evidence.
//!
//! Redis is not trusted to decide anything. Every entry is authenticated with HMAC-SHA256
//! under `--cache-secret-file` (write access to Redis is not the power to admit an image),
//! bound to its kind and key, and read with a size limit (`GETRANGE`, so a huge value is
//! never read whole). What an entry says is checked again by its user: a decision carries
//! the digest, the trust policy's digest, the trust stores' digest and its expiry.
//!
//! A Redis that is down or slow costs each request at most [`TIMEOUT`] once, then is left
//! alone for [`RETRY_AFTER`]: `serve` goes on with its local cache (said once per outage
//! on stderr), and never takes a missing or unreadable entry for a decision.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Per Redis connect, read and write.
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// How long an unreachable Redis is not asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The largest entry read (a decision is a few hundred bytes; a CRL can be large).
pub const MAX_ENTRY: usize = 8 << 20;
/// Key prefix, so that a Redis shared with other software is not confused.
const PREFIX: &str = "hsm-notary:v1";
const MAC_LEN: usize = 32;

/// A shared cache in Redis.
pub struct SharedCache {
    client: redis::Client,
    /// Where it is (for messages; no password).
    shown: String,
    /// HMAC-SHA256 keyed with the secret, cloned for each entry.
    keyed: Hmac<Sha256>,
    connection: Mutex<Option<redis::Connection>>,
    /// While set and in the future, Redis is not asked.
    down_until: Mutex<Option<Instant>>,
    warned: AtomicBool,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL without its password; never the secret.
        write!(f, "{}", self.shown)
    }
}

/// Entry kinds: each its own key space and MAC domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A verified decision.
    Decision,
    /// A tag resolved to a descriptor.
    Tag,
    /// An OCSP response or CRL, by URL and request.
    Revocation,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::Tag => "tag",
            Self::Revocation => "revocation",
        }
    }
}

impl SharedCache {
    /// `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`) and the secret
    /// entries are authenticated with (at least 32 bytes). Nothing is connected yet.
    pub fn new(url: &str, secret: Vec<u8>) -> Result<Self> {
        // TLS to Redis (rediss://) would pull a second TLS stack into the redis crate;
        // inside a cluster, put Redis on the pod network or behind a TLS sidecar.
        if !url.starts_with("redis://") {
            bail!("--cache {}: only redis:// URLs are supported", shown(url));
        }
        if secret.len() < 32 {
            bail!(
                "the cache secret is {} bytes: at least 32 are needed (e.g. head -c 32 /dev/urandom)",
                secret.len()
            );
        }
        let client = redis::Client::open(url).with_context(|| format!("--cache {}", shown(url)))?;
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret)
            .map_err(|e| anyhow::anyhow!("the cache secret: {e}"))?;
        Ok(Self {
            client,
            shown: shown(url),
            keyed,
            connection: Mutex::new(None),
            down_until: Mutex::new(None),
            warned: AtomicBool::new(false),
        })
    }

    /// The entry of `kind` under `key`, if Redis has one that is authentic.
    pub fn get(&self, kind: Kind, key: &str) -> Option<Vec<u8>> {
        let redis_key = self.key(kind, key);
        let value: Vec<u8> = self.run(|c| {
            redis::cmd("GETRANGE")
                .arg(&redis_key)
                .arg(0)
                .arg(MAX_ENTRY + MAC_LEN)
                .query(c)
        })?;
        if value.is_empty() {
            return None;
        }
        if value.len() > MAX_ENTRY + MAC_LEN - 1 || value.len() < MAC_LEN {
            tracing::warn!("shared cache entry {redis_key} has an impossible size; ignored");
            return None;
        }
        let (tag, payload) = value.split_at(MAC_LEN);
        if self.mac(kind, key, payload).verify_slice(tag).is_err() {
            tracing::warn!("shared cache entry {redis_key} is not authentic; ignored");
            crate::metrics::METRICS
                .cache
                .with_label_values(&["rejected"])
                .inc();
            return None;
        }
        Some(payload.to_vec())
    }

    /// Keep `payload` as `kind` under `key` for `ttl` (at least a second).
    pub fn set(&self, kind: Kind, key: &str, payload: &[u8], ttl: Duration) {
        if payload.len() > MAX_ENTRY - 1 {
            return;
        }
        let mut value = self
            .mac(kind, key, payload)
            .finalize()
            .into_bytes()
            .to_vec();
        value.extend_from_slice(payload);
        let redis_key = self.key(kind, key);
        let seconds = ttl.as_secs().max(1);
        let _: Option<()> = self.run(|c| {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(&value)
                .arg("EX")
                .arg(seconds)
                .query(c)
        });
    }

    fn key(&self, kind: Kind, key: &str) -> String {
        format!("{PREFIX}:{}:{key}", kind.name())
    }

    fn mac(&self, kind: Kind, key: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        for part in [PREFIX.as_bytes(), kind.name().as_bytes(), key.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(payload);
        mac
    }

    /// Run one command, connecting first if needed; `None` when Redis cannot answer now
    /// (then it is left alone for [`RETRY_AFTER`]).
    fn run<T>(
        &self,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        if let Ok(down) = self.down_until.lock()
            && down.is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let mut slot = self.connection.lock().ok()?;
        let result = (|| -> Result<T> {
            if slot.is_none() {
                let connection = self.client.get_connection_with_timeout(TIMEOUT)?;
                connection.set_read_timeout(Some(TIMEOUT))?;
                connection.set_write_timeout(Some(TIMEOUT))?;
                *slot = Some(connection);
            }
            let connection = slot.as_mut().context("no connection")?;
            Ok(command(connection)?)
        })();
        match result {
            Ok(value) => {
                if self.warned.swap(false, Ordering::Relaxed) {
                    eprintln!(
                        "hsm-notary serve: the shared cache at {} answers again",
                        self.shown
                    );
                }
                Some(value)
            }
            Err(e) => {
                *slot = None;
                if let Ok(mut down) = self.down_until.lock() {
                    *down = Some(Instant::now() + RETRY_AFTER);
                }
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "Warning: the shared cache at {} does not answer ({e:#}); using the local cache only",
                        self.shown
                    );
                }
                None
            }
        }
    }
}

/// Seconds since the Unix epoch, by this machine's clock (entries carry their expiry so).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
        .unwrap_or(0)
}

/// `url` without a password.
fn shown(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_and_other_schemes_are_refused_and_passwords_never_shown() {
        assert!(SharedCache::new("redis://127.0.0.1:1", vec![0; 31]).is_err());
        assert!(SharedCache::new("http://127.0.0.1:1", vec![0; 32]).is_err());
        assert_eq!(
            shown("redis://:hunter2@cache:6379/0"),
            "redis://…@cache:6379/0"
        );
    }

    #[test]
    fn the_mac_binds_kind_key_and_payload() {
        let cache = SharedCache::new("redis://127.0.0.1:1", vec![7; 32]).expect("valid");
        let tag = |kind, key: &str, payload: &[u8]| {
            cache
                .mac(kind, key, payload)
                .finalize()
                .into_bytes()
                .to_vec()
        };
        let base = tag(Kind::Decision, "a", b"x");
        assert_ne!(base, tag(Kind::Tag, "a", b"x"));
        assert_ne!(base, tag(Kind::Decision, "b", b"x"));
        assert_ne!(base, tag(Kind::Decision, "a", b"y"));
        // Length-prefixed: moving bytes between key and payload changes the tag.
        assert_ne!(
            tag(Kind::Decision, "ab", b"c"),
            tag(Kind::Decision, "a", b"bc")
        );
    }

    #[test]
    fn an_unreachable_redis_answers_nothing_and_is_left_alone() {
        // Port 1 on loopback: refused at once.
        let cache = SharedCache::new("redis://127.0.0.1:1", vec![7; 32]).expect("valid");
        assert_eq!(cache.get(Kind::Decision, "k"), None);
        assert!(
            cache
                .down_until
                .lock()
                .expect("lock")
                .is_some_and(|t| t > Instant::now())
        );
        cache.set(Kind::Decision, "k", b"v", Duration::from_secs(1));
    }
}

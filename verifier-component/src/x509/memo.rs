//! Certificates already parsed, by the SHA-256 of the bytes they were parsed from, so
//! that a trust store or a signer's chain met again is not decoded again (on the native
//! engine the whole PEM and DER decoding of a trust store was 40% of a verification).
//!
//! Parsing is a pure function of the bytes, so a remembered result is the result; only
//! successes are kept (a hostile input could otherwise fill the map with failures), the
//! map is bounded and starts over when full, and it obeys the same switch as the
//! certificate-signature memo ([`crate::signature::memo::set_enabled`]), so benches and
//! the cached-versus-uncached property test can turn every memo off at once.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::Cert;

/// Parses remembered before the map starts over (a few MiB at most).
const CAPACITY: usize = 512;

static PARSED: Mutex<BTreeMap<[u8; 32], Vec<Cert>>> = Mutex::new(BTreeMap::new());

/// What was parsed: one DER certificate, or a file of PEM or concatenated DER.
#[derive(Clone, Copy)]
pub(crate) enum Input {
    Der,
    Certificates,
}

/// The map key of `bytes` parsed as `input` (`None` when memos are off).
pub(crate) fn key(input: Input, bytes: &[u8]) -> Option<[u8; 32]> {
    if !crate::signature::memo::enabled() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(match input {
        Input::Der => b"der\0".as_slice(),
        Input::Certificates => b"certificates\0".as_slice(),
    });
    hasher.update(bytes);
    Some(hasher.finalize().into())
}

/// The certificates parsed before from the bytes of `key`.
pub(crate) fn get(key: &[u8; 32]) -> Option<Vec<Cert>> {
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Remember what the bytes of `key` parse to.
pub(crate) fn put(key: [u8; 32], certs: &[Cert]) {
    let mut map = PARSED.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, certs.to_vec());
}

/// Forget every parse.
pub(crate) fn clear() {
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

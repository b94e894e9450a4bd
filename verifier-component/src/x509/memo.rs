//! Certificates already parsed, by the SHA-256 of the bytes they were parsed from, so
//! that a trust store or a signer's chain met again is not decoded again (on the native
//! engine the whole PEM and DER decoding of a trust store was 40% of a verification).
//!
//! Parsing is a pure function of the bytes, so a remembered result is the result; only
//! successes are kept (a hostile input could otherwise fill the map with failures), the
//! map is bounded (512 parses, 4 MiB of DER) and starts over when full, and it obeys the
//! same switch as the certificate-signature memo
//! ([`crate::signature::memo::set_enabled`]), so benches and the cached-versus-uncached
//! property test can turn every memo off at once.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::Cert;

/// Parses remembered before the map starts over.
const CAPACITY: usize = 512;
/// DER bytes remembered before the map starts over: certificates may be 64 KiB each, and
/// a hostile request's should not stay in memory by the hundred.
const CAPACITY_BYTES: usize = 4 << 20;

/// Parses by key, bounded in count and in DER bytes.
struct Parses {
    map: BTreeMap<[u8; 32], Vec<Cert>>,
    held: usize,
}

impl Parses {
    const fn new() -> Self {
        Self {
            map: BTreeMap::new(),
            held: 0,
        }
    }

    fn insert(&mut self, key: [u8; 32], certs: &[Cert]) {
        let bytes: usize = certs.iter().map(|c| c.der().len()).sum();
        if bytes > CAPACITY_BYTES || self.map.contains_key(&key) {
            return;
        }
        if self.map.len() >= CAPACITY || self.held + bytes > CAPACITY_BYTES {
            self.clear();
        }
        self.map.insert(key, certs.to_vec());
        self.held += bytes;
    }

    fn clear(&mut self) {
        self.map.clear();
        self.held = 0;
    }
}

static PARSED: Mutex<Parses> = Mutex::new(Parses::new());

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
        .map
        .get(key)
        .cloned()
}

/// Remember what the bytes of `key` parse to.
pub(crate) fn put(key: [u8; 32], certs: &[Cert]) {
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, certs);
}

/// Forget every parse.
pub(crate) fn clear() {
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn key(i: usize) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(i as u64).to_be_bytes());
        key
    }

    #[test]
    fn parses_are_bounded_in_bytes_and_count_and_start_over_past_either() {
        let pem = include_bytes!(
            "../../../tests/conformance/cases/multi-sig-one-trusted/truststore/x509/ca/e2e/e2e.crt"
        );
        let cert = crate::x509::parse_certificates(pem).unwrap().remove(0);
        let size = cert.der().len();
        let one = std::slice::from_ref(&cert);
        let mut parses = Parses::new();
        let fits = (CAPACITY_BYTES / size).min(CAPACITY);
        for i in 0..fits {
            parses.insert(key(i), one);
        }
        assert_eq!((parses.map.len(), parses.held), (fits, fits * size));
        // The same key again holds no more bytes.
        parses.insert(key(0), one);
        assert_eq!(parses.held, fits * size);
        // One more starts over.
        parses.insert(key(fits), one);
        assert_eq!((parses.map.len(), parses.held), (1, size));
        // A parse bigger than the whole budget is not kept at all.
        let huge = vec![cert.clone(); CAPACITY_BYTES / size + 1];
        parses.insert(key(usize::MAX), &huge);
        assert!(!parses.map.contains_key(&key(usize::MAX)));
        assert_eq!(parses.held, size);
    }
}

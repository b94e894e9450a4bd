//! Certificates already parsed, by the bytes they were parsed from, so that a trust store
//! or a signer's chain met again is not decoded again (on the native engine the whole PEM
//! and DER decoding of a trust store was 40% of a verification).
//!
//! Parsing is a pure function of the bytes, so a remembered result is the result; only
//! successes are kept (a hostile input could otherwise fill the map with failures), the
//! map is bounded (512 parses, 4 MiB of input and DER) and starts over when full, and it
//! obeys the same switch as the certificate-signature memo
//! ([`crate::signature::memo::set_enabled`]), so benches and the cached-versus-uncached
//! property test can turn every memo off at once. The map is keyed by the input bytes
//! themselves, not a digest of them: a lookup compares bytes (tens of nanoseconds for a
//! certificate) where hashing them cost microseconds, and in the wasm component, whose
//! SHA-256 is software, several times that.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::Cert;

/// Parses remembered before the map starts over.
const CAPACITY: usize = 512;
/// Input and DER bytes remembered before the map starts over: certificates may be 64 KiB
/// each, and a hostile request's should not stay in memory by the hundred.
const CAPACITY_BYTES: usize = 4 << 20;

/// Parses by what was parsed and its bytes, bounded in count and in bytes held.
struct Parses {
    map: [BTreeMap<Vec<u8>, Vec<Cert>>; 2],
    held: usize,
}

impl Parses {
    const fn new() -> Self {
        Self {
            map: [BTreeMap::new(), BTreeMap::new()],
            held: 0,
        }
    }

    fn len(&self) -> usize {
        self.map.iter().map(BTreeMap::len).sum()
    }

    fn get(&self, key: Key<'_>) -> Option<&Vec<Cert>> {
        self.map[key.input as usize].get(key.bytes)
    }

    fn insert(&mut self, key: Key<'_>, certs: &[Cert]) {
        let bytes = key.bytes.len() + certs.iter().map(|c| c.der().len()).sum::<usize>();
        if bytes > CAPACITY_BYTES || self.get(key).is_some() {
            return;
        }
        if self.len() >= CAPACITY || self.held + bytes > CAPACITY_BYTES {
            self.clear();
        }
        self.map[key.input as usize].insert(key.bytes.to_vec(), certs.to_vec());
        self.held += bytes;
    }

    fn clear(&mut self) {
        for map in &mut self.map {
            map.clear();
        }
        self.held = 0;
    }
}

static PARSED: Mutex<Parses> = Mutex::new(Parses::new());

/// What was parsed: one DER certificate, or a file of PEM or concatenated DER.
#[derive(Clone, Copy)]
pub(crate) enum Input {
    Der = 0,
    Certificates = 1,
}

/// The bytes parsed, and as what.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    input: Input,
    bytes: &'a [u8],
}

/// The map key of `bytes` parsed as `input` (`None` when memos are off).
pub(crate) fn key(input: Input, bytes: &[u8]) -> Option<Key<'_>> {
    crate::signature::memo::enabled().then_some(Key { input, bytes })
}

/// The certificates parsed before from the bytes of `key`.
pub(crate) fn get(key: Key<'_>) -> Option<Vec<Cert>> {
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Remember what the bytes of `key` parse to.
pub(crate) fn put(key: Key<'_>, certs: &[Cert]) {
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

    #[test]
    fn parses_are_bounded_in_bytes_and_count_and_start_over_past_either() {
        let pem = include_bytes!(
            "../../../tests/conformance/cases/multi-sig-one-trusted/truststore/x509/ca/e2e/e2e.crt"
        );
        let cert = crate::x509::parse_certificates(pem).unwrap().remove(0);
        let one = std::slice::from_ref(&cert);
        // Keys of one size, each the certificate's DER with a distinct ending.
        let keys: Vec<Vec<u8>> = (0..=CAPACITY + 1)
            .map(|i| [cert.der(), &(i as u64).to_be_bytes()].concat())
            .collect();
        let key = |i: usize| Key {
            input: Input::Der,
            bytes: &keys[i],
        };
        let size = keys[0].len() + cert.der().len();
        let mut parses = Parses::new();
        let fits = (CAPACITY_BYTES / size).min(CAPACITY);
        for i in 0..fits {
            parses.insert(key(i), one);
        }
        assert_eq!((parses.len(), parses.held), (fits, fits * size));
        // The same key again holds no more bytes.
        parses.insert(key(0), one);
        assert_eq!(parses.held, fits * size);
        // The same bytes parsed as another input are another entry.
        let other = Key {
            input: Input::Certificates,
            bytes: &keys[0],
        };
        assert!(parses.get(other).is_none());
        // One more starts over.
        parses.insert(key(fits), one);
        assert_eq!((parses.len(), parses.held), (1, size));
        // A parse bigger than the whole budget is not kept at all.
        let huge = vec![cert.clone(); CAPACITY_BYTES / cert.der().len() + 1];
        parses.insert(key(CAPACITY + 1), &huge);
        assert!(parses.get(key(CAPACITY + 1)).is_none());
        assert_eq!(parses.held, size);
    }
}

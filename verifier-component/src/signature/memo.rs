//! Certificate signatures already seen to verify, so that a chain met again — the same
//! signer on many images, the same TSA on every timestamp — costs no public-key operation;
//! likewise the signatures on CRLs and OCSP responses the host hands in again.
//!
//! Only what is a pure function of bytes is remembered: "the certificate with this
//! SHA-256 carries a valid signature by the key of the certificate with that SHA-256", or
//! "this CRL's (OCSP response's) signed bytes and signature verify under that
//! certificate's key".
//! Nothing that depends on the verification time, a trust store, a trust policy or
//! revocation evidence is kept, so nothing here needs invalidating and a remembered check
//! decides exactly as a fresh one. Failures are not remembered (a hostile input could
//! otherwise fill the set with them); the set is bounded and starts over when full.
//!
//! The set lives as long as the process, or, in the wasm component, as long as its
//! instance: hsm-notary keeps an instance across calls while they succeed, so there too a
//! signer's chain is checked once, not once per image; a host that makes an instance per
//! call gets a memo for that call's signatures.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::x509::Cert;

/// Pairs remembered before the set starts over (about 300 KiB of keys).
const CAPACITY: usize = 2048;

/// (subject certificate SHA-256, issuer certificate SHA-256), lower-case hex.
type Pair = (String, String);

static VERIFIED: Mutex<BTreeSet<Pair>> = Mutex::new(BTreeSet::new());
static ENABLED: AtomicBool = AtomicBool::new(true);
static HITS: AtomicU64 = AtomicU64::new(0);

/// Whether memos are on (this one and [`crate::x509`]'s parsed certificates).
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether `issuer` is already known to have signed `subject`.
pub(crate) fn known(subject: &Cert, issuer: &Cert) -> bool {
    known_digest(&subject.sha256, issuer)
}

/// Remember that `issuer`'s key verified `subject`'s signature.
pub(crate) fn remember(subject: &Cert, issuer: &Cert) {
    remember_digest(subject.sha256.clone(), issuer);
}

/// The name under which a signature on a signed object other than a certificate (a CRL,
/// an OCSP response) is remembered: the SHA-256 of its algorithm, the bytes it signs and
/// the signature itself, under the object's kind, so it can never equal a certificate's
/// digest or another kind's.
pub(crate) fn object_digest(
    kind: &str,
    algorithm: &impl std::fmt::Debug,
    signed: &[u8],
    signature: &[u8],
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [format!("{algorithm:?}").as_bytes(), signed, signature] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

/// Whether `issuer` is known to have signed what `digest` names (a certificate's
/// SHA-256, or an [`object_digest`]).
pub(crate) fn known_digest(digest: &str, issuer: &Cert) -> bool {
    if !ENABLED.load(Ordering::Relaxed) {
        return false;
    }
    let set = VERIFIED.lock().unwrap_or_else(PoisonError::into_inner);
    let hit = set.contains(&(digest.to_owned(), issuer.sha256.clone()));
    if hit {
        HITS.fetch_add(1, Ordering::Relaxed);
    }
    hit
}

/// Remember that `issuer`'s key verified the signature on what `digest` names.
pub(crate) fn remember_digest(digest: String, issuer: &Cert) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut set = VERIFIED.lock().unwrap_or_else(PoisonError::into_inner);
    if set.len() >= CAPACITY {
        set.clear();
    }
    set.insert((digest, issuer.sha256.clone()));
}

/// Turn remembering on or off (process-wide), for certificate signatures and for parsed
/// certificates alike. Off, every check and parse is computed; benches and the
/// cached-versus-uncached property test use it to measure and compare both paths.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
    if !enabled {
        clear();
    }
}

/// Forget every remembered signature and parsed certificate.
pub fn clear() {
    VERIFIED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    crate::x509::memo::clear();
}

/// How many checks were answered from the set since the process started.
pub fn hits() -> u64 {
    HITS.load(Ordering::Relaxed)
}

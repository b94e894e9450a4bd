//! Public-key arithmetic lent by the verifier's host.
//!
//! Signature verification does two things that are pure arithmetic on public data: the
//! RSA public operation `s^e mod n`, and the ECDSA check of `(r, s)` against a prehash.
//! The optional component world `verifier-component-host-crypto` (`wit/verifier.wit`,
//! interface `crypto`) imports them from its host, where they run as native code with
//! keys kept across calls; everything around them — which key and hash, the RSA
//! encodings, every decision — stays the verifier's. The default component imports
//! nothing and never installs anything here.
//!
//! [`Native`] is what a host lends: this crate's own arithmetic
//! ([`super::rsa_vartime`], [`super::ecdsa_vartime`]), so an imported operation decides
//! exactly as the verifier would itself (`tests/component.rs` runs the conformance corpus
//! through both worlds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{Curve, MAX_RSA_BITS, ecdsa_vartime, rsa_vartime};

/// The two arithmetic operations of verification, as the `crypto` interface has them.
pub trait Arithmetic: Send + Sync {
    /// `signature^exponent mod modulus` (big-endian) as many bytes as the modulus, or
    /// `None` when the signature is not exactly that long or not below the modulus.
    fn rsa_public_operation(
        &self,
        modulus: &[u8],
        exponent: &[u8],
        signature: &[u8],
    ) -> Option<Vec<u8>>;

    /// Whether `signature` (`r || s`) is a valid ECDSA signature of `prehash` under the
    /// SEC1 point `public_key` on `curve`.
    fn ecdsa_verify_prehash(
        &self,
        curve: Curve,
        public_key: &[u8],
        prehash: &[u8],
        signature: &[u8],
    ) -> bool;
}

static INSTALLED: OnceLock<&'static dyn Arithmetic> = OnceLock::new();

/// Use `arithmetic` for every public-key operation from now on (process-wide, once:
/// `false` when one was installed already). Only the host-crypto component calls this.
pub fn install(arithmetic: &'static dyn Arithmetic) -> bool {
    INSTALLED.set(arithmetic).is_ok()
}

/// The arithmetic installed, if any.
pub(crate) fn installed() -> Option<&'static dyn Arithmetic> {
    INSTALLED.get().copied()
}

/// Keys a [`Native`] keeps, per kind, before it starts over.
const KEYS_KEPT: usize = 256;

/// An EC key parsed once and kept (split tables are built on its second use).
enum EcKey {
    P256(ecdsa_vartime::Key<p256::NistP256>),
    P384(ecdsa_vartime::Key<p384::NistP384>),
    P521(p521::ecdsa::VerifyingKey),
}

/// This crate's arithmetic, for a host to lend a component: keys are parsed once and
/// kept (at most [`KEYS_KEPT`] of each kind), so a signer's key costs its Montgomery
/// parameters or its tables once per process instead of once per component call.
#[derive(Default)]
pub struct Native {
    /// By modulus and exponent.
    rsa: Kept<(Vec<u8>, Vec<u8>), rsa_vartime::RsaPublicKey>,
    /// By curve and SEC1 point.
    ec: Kept<(Curve, Vec<u8>), EcKey>,
    calls: AtomicU64,
}

/// Parsed keys by what they were parsed from.
type Kept<K, V> = Mutex<HashMap<K, Arc<V>>>;

impl Native {
    /// Operations answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn rsa_key(&self, modulus: &[u8], exponent: &[u8]) -> Option<Arc<rsa_vartime::RsaPublicKey>> {
        let id = (modulus.to_vec(), exponent.to_vec());
        if let Some(key) = lock(&self.rsa).get(&id) {
            return Some(key.clone());
        }
        // The verifier's own admission rules for RSA keys, so a key it would refuse is
        // refused here too.
        let key = rsa_vartime::RsaPublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(modulus),
            rsa::BoxedUint::from_be_slice_vartime(exponent),
            1024..=MAX_RSA_BITS,
        )
        .ok()?;
        let key = Arc::new(key);
        keep(&self.rsa, id, key.clone());
        Some(key)
    }

    fn ec_key(&self, curve: Curve, point: &[u8]) -> Option<Arc<EcKey>> {
        let id = (curve, point.to_vec());
        if let Some(key) = lock(&self.ec).get(&id) {
            return Some(key.clone());
        }
        let key = match curve {
            Curve::P256 => EcKey::P256(ecdsa_vartime::Key::new(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?,
            )),
            Curve::P384 => EcKey::P384(ecdsa_vartime::Key::new(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?,
            )),
            Curve::P521 => EcKey::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(point).ok()?),
        };
        let key = Arc::new(key);
        keep(&self.ec, id, key.clone());
        Some(key)
    }
}

impl Arithmetic for Native {
    fn rsa_public_operation(
        &self,
        modulus: &[u8],
        exponent: &[u8],
        signature: &[u8],
    ) -> Option<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let key = self.rsa_key(modulus, exponent)?;
        rsa_vartime::public_operation_local(&key, signature)
    }

    fn ecdsa_verify_prehash(
        &self,
        curve: Curve,
        public_key: &[u8],
        prehash: &[u8],
        signature: &[u8],
    ) -> bool {
        use rsa::signature::hazmat::PrehashVerifier;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let Some(key) = self.ec_key(curve, public_key) else {
            return false;
        };
        match &*key {
            EcKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(prehash, &s)),
            EcKey::P384(key) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(prehash, &s)),
            EcKey::P521(key) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_prehash(prehash, &s).is_ok()),
        }
    }
}

/// The map behind `mutex`, also after a panic elsewhere left it poisoned (the maps hold
/// only finished keys, so no entry is ever half-made).
fn lock<K, V>(mutex: &Mutex<HashMap<K, V>>) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn keep<K: std::hash::Hash + Eq, V>(mutex: &Mutex<HashMap<K, V>>, id: K, value: V) {
    let mut map = lock(mutex);
    if map.len() >= KEYS_KEPT && !map.contains_key(&id) {
        map.clear();
    }
    map.insert(id, value);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    /// A P-256 key made from a fixed scalar, its SEC1 point and a signature of `prehash`.
    fn p256_signed(prehash: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: p256::ecdsa::Signature = secret.sign_prehash(prehash).unwrap();
        let point = secret
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec();
        (point, signature.to_bytes().to_vec())
    }

    #[test]
    fn native_ecdsa_accepts_a_good_signature_and_refuses_every_defect() {
        let native = Native::default();
        let prehash = [3u8; 32];
        let (point, signature) = p256_signed(&prehash);
        // Twice: the second use is the kept key (with its tables).
        for _ in 0..2 {
            assert!(native.ecdsa_verify_prehash(Curve::P256, &point, &prehash, &signature));
        }
        let mut flipped = signature.clone();
        flipped[5] ^= 1;
        assert!(!native.ecdsa_verify_prehash(Curve::P256, &point, &prehash, &flipped));
        assert!(!native.ecdsa_verify_prehash(Curve::P256, &point, &[4u8; 32], &signature));
        assert!(!native.ecdsa_verify_prehash(Curve::P384, &point, &prehash, &signature));
        assert!(!native.ecdsa_verify_prehash(Curve::P256, &point[1..], &prehash, &signature));
        assert!(!native.ecdsa_verify_prehash(Curve::P256, &point, &prehash, &signature[1..]));
        assert_eq!(native.calls(), 7);
    }

    #[test]
    fn native_rsa_refuses_what_the_verifier_refuses() {
        let native = Native::default();
        // An even modulus, a small one, an even exponent: no key, no result.
        let mut modulus = vec![0xc5; 256];
        *modulus.last_mut().unwrap() = 0x10;
        assert!(
            native
                .rsa_public_operation(&modulus, &[1, 0, 1], &[1; 256])
                .is_none()
        );
        assert!(
            native
                .rsa_public_operation(&[0xc5; 64], &[1, 0, 1], &[1; 64])
                .is_none()
        );
        *modulus.last_mut().unwrap() = 0x11;
        assert!(
            native
                .rsa_public_operation(&modulus, &[1, 0, 0], &[1; 256])
                .is_none()
        );
        // A signature not below the modulus, or not its length.
        assert!(
            native
                .rsa_public_operation(&modulus, &[1, 0, 1], &[0xff; 256])
                .is_none()
        );
        assert!(
            native
                .rsa_public_operation(&modulus, &[1, 0, 1], &[1; 255])
                .is_none()
        );
        // 1^e = 1.
        let mut one = vec![0; 256];
        one[255] = 1;
        assert_eq!(
            native.rsa_public_operation(&modulus, &[1, 0, 1], &one),
            Some(one.clone())
        );
    }

    #[test]
    fn kept_keys_are_bounded() {
        let native = Native::default();
        let mut one = vec![0; 256];
        one[255] = 1;
        for i in 0..(KEYS_KEPT + 10) {
            let mut modulus = vec![0xc5; 256];
            modulus[1] = i as u8;
            modulus[2] = (i >> 8) as u8;
            *modulus.last_mut().unwrap() = 0x11;
            assert!(
                native
                    .rsa_public_operation(&modulus, &[1, 0, 1], &one)
                    .is_some()
            );
            assert!(lock(&native.rsa).len() <= KEYS_KEPT);
        }
        assert_eq!(lock(&native.rsa).len(), 10);
    }
}

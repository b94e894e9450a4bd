//! The variable-time ECDSA verification (`notary_verifier::signature::ecdsa_vartime`)
//! decides exactly as the `ecdsa` crate's constant-time path: on signatures OpenSSL made
//! with P-256 and P-384 keys (with their own hash and with a longer or shorter one), on
//! every tampered variant of them, and on signatures built so that the interleaved wNAF
//! loop meets each exceptional case of the incomplete formulas (a point added to itself,
//! to its negation, the point at infinity), valid and invalid; both for the one-off loop
//! over whole scalars and for a key's split tables (64-bit chunks).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use der::Decode;
use notary_verifier::signature::{
    self, HashAlgorithm, PssSalt, PublicKey, SignatureAlgorithm, X509SignatureAlgorithm,
    ecdsa_vartime,
};

fn openssl(dir: &Path, args: &[&str]) -> String {
    hsm_notary_suite::pki::openssl(dir, args).unwrap()
}

/// Both arithmetics' decision, which must agree.
fn decide<T: PartialEq + std::fmt::Debug>(what: &str, check: impl Fn() -> T) -> T {
    hsm_notary_suite::decide_both(signature::set_variable_time_ecdsa, what, check)
}

/// The bytes and variants that must fail: a spread of single bits flipped.
fn flipped(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let len = bytes.len();
    let mut out = Vec::new();
    for i in [
        0,
        1,
        len / 4,
        len / 2 - 1,
        len / 2,
        len / 2 + 1,
        len - 2,
        len - 1,
    ] {
        for bit in [0x01u8, 0x80] {
            let mut v = bytes.to_vec();
            v[i] ^= bit;
            out.push((format!("byte {i} ^ {bit:#x}"), v));
        }
    }
    out
}

#[test]
fn variable_time_ecdsa_decides_as_the_ecdsa_crate_on_openssl_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let message = b"the payload a signature covers".as_slice();
    std::fs::write(d.join("message"), message).unwrap();
    let mut accepted = 0;
    for (curve, raw_algorithm, size) in [
        ("P-256", SignatureAlgorithm::EcdsaSha256, 32),
        ("P-384", SignatureAlgorithm::EcdsaSha384, 48),
    ] {
        for round in 0..4 {
            let key = format!("{curve}-{round}.pem");
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    &format!("ec_paramgen_curve:{curve}"),
                    "-out",
                    &key,
                ],
            );
            let spki = format!("{curve}-{round}.spki");
            openssl(
                d,
                &[
                    "pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &spki,
                ],
            );
            let spki =
                spki::SubjectPublicKeyInfoOwned::from_der(&std::fs::read(d.join(&spki)).unwrap())
                    .unwrap();
            let public = PublicKey::from_spki(&spki).unwrap();
            // Each hash with each curve: X.509 allows a P-256 key to sign with SHA-384
            // (the digest is truncated) and a P-384 key with SHA-256 (it is shorter).
            for (flag, hash) in [
                ("-sha256", HashAlgorithm::Sha256),
                ("-sha384", HashAlgorithm::Sha384),
                ("-sha512", HashAlgorithm::Sha512),
            ] {
                let sig = format!("sig-{curve}-{round}{flag}");
                openssl(d, &["dgst", flag, "-sign", &key, "-out", &sig, "message"]);
                let der_sig = std::fs::read(d.join(&sig)).unwrap();
                let algorithm = X509SignatureAlgorithm::Ecdsa(hash);
                let ok = decide(&format!("{curve} {flag} as made"), || {
                    algorithm.verify(&public, message, &der_sig).is_ok()
                });
                assert!(ok, "{curve} {flag}: OpenSSL's signature verifies");
                accepted += 1;
                for (variant, bytes) in flipped(&der_sig) {
                    let ok = decide(&format!("{curve} {flag} DER {variant}"), || {
                        algorithm.verify(&public, message, &bytes).is_ok()
                    });
                    assert!(!ok, "{curve} {flag} DER {variant} is refused");
                }
                let other = b"another payload".as_slice();
                let ok = decide(&format!("{curve} {flag} other message"), || {
                    algorithm.verify(&public, other, &der_sig).is_ok()
                });
                assert!(!ok);
                // The envelope form (raw r || s), for the curve's own hash.
                if raw_algorithm.hash() != hash {
                    continue;
                }
                let raw = raw_signature(size, &der_sig);
                let ok = decide(&format!("{curve} raw as made"), || {
                    public
                        .verify(raw_algorithm, message, &raw, PssSalt::EqualsHash)
                        .is_ok()
                });
                assert!(ok);
                for (variant, bytes) in flipped(&raw) {
                    let outcome = decide(&format!("{curve} raw {variant}"), || {
                        public.verify(raw_algorithm, message, &bytes, PssSalt::EqualsHash)
                    });
                    assert!(outcome.is_err(), "{curve} raw {variant} is refused");
                }
            }
        }
    }
    assert_eq!(accepted, 2 * 4 * 3);
}

/// `r || s` from an ECDSA-Sig-Value, each `size` bytes.
fn raw_signature(size: usize, der_sig: &[u8]) -> Vec<u8> {
    let value = der::asn1::Any::from_der(der_sig).unwrap();
    let mut reader = der::SliceReader::new(value.value()).unwrap();
    let mut out = Vec::new();
    for _ in 0..2 {
        let int: der::asn1::UintRef<'_> = der::Decode::decode(&mut reader).unwrap();
        let bytes = int.as_bytes();
        out.extend(std::iter::repeat_n(0, size - bytes.len()));
        out.extend_from_slice(bytes);
    }
    out
}

/// Signatures whose `u1 = z/s` and `u2 = r/s` are chosen (small, or the key's negation),
/// so the wNAF loop adds a point to itself, to its negation, or reaches infinity; valid
/// ones (r is x((u1 + u2·d)·G)) and the same with r, s or the digest changed. Both
/// arithmetics must decide each alike, and the valid ones must verify.
macro_rules! crafted_cases {
    ($curve:ident $curve_type:ident) => {{
        use $curve::elliptic_curve::ff::{Field, PrimeField};
        use $curve::elliptic_curve::ops::Reduce;
        use $curve::elliptic_curve::sec1::ToSec1Point;
        use $curve::{ProjectivePoint, Scalar};
        let minus_one = -Scalar::ONE;
        let keys = [
            Scalar::ONE,
            Scalar::from(2u64),
            Scalar::from(3u64),
            minus_one,
            minus_one - Scalar::ONE,
            Scalar::from(0x1234_5678_9abc_def1u64).square().square(),
        ];
        let mut valid = 0;
        let mut checked = 0;
        for d in keys {
            let q = (ProjectivePoint::GENERATOR * d).to_affine();
            let key = ecdsa::VerifyingKey::<$curve::$curve_type>::from_affine(q).unwrap();
            let split = ecdsa_vartime::Key::precomputed(key);
            let mut pairs: Vec<(Scalar, Scalar)> = Vec::new();
            for a in 0..6u64 {
                for b in 1..6u64 {
                    pairs.push((Scalar::from(a), Scalar::from(b)));
                }
            }
            // u1 = -u2·d (infinity), u1 = u2·d (the two halves equal), and large u's.
            pairs.push((-(d * Scalar::from(3u64)), Scalar::from(3u64)));
            pairs.push((d * Scalar::from(5u64), Scalar::from(5u64)));
            pairs.push((minus_one, minus_one));
            // With d = n - 1 the partial sum is P + (-P) at bit 8, with d = 1 it is P + P,
            // and the loop goes on below: u1 = 81·2^8 + 5 has wNAF-7 digits -47 at 8, 1 at
            // 15 and 5 at 0; u2 = 81·2^8 + 1 has wNAF-4 digits 1 at 8, 5 at 12, 1 at 0.
            pairs.push((Scalar::from(81 * 256 + 5u64), Scalar::from(81 * 256 + 1u64)));
            pairs.push((Scalar::from(81 * 256 + 1u64), Scalar::from(81 * 256 + 1u64)));
            for (u1, u2) in pairs {
                let point = (ProjectivePoint::GENERATOR * (u1 + u2 * d)).to_affine();
                let encoded = point.to_sec1_point(false);
                let r = match encoded.x() {
                    Some(x) => <Scalar as Reduce<_>>::reduce(x),
                    None => Scalar::ONE, // infinity: no valid r exists
                };
                if bool::from(Field::is_zero(&r)) {
                    continue;
                }
                let is_valid = encoded.x().is_some();
                let s = r * Option::<Scalar>::from(Field::invert(&u2)).unwrap();
                let z = u1 * s;
                let tweaks = [
                    ("as built", r, s, z),
                    ("r + 1", r + Scalar::ONE, s, z),
                    ("s + 1", r, s + Scalar::ONE, z),
                    ("z + 1", r, s, z + Scalar::ONE),
                ];
                for (tweak, r, s, z) in tweaks {
                    let Ok(sig) = ecdsa::Signature::<$curve::$curve_type>::from_scalars(
                        r.to_repr(),
                        s.to_repr(),
                    ) else {
                        continue;
                    };
                    let digest = z.to_repr();
                    let what = format!(
                        "{} d={:?} u1={:?} u2={:?} {tweak}",
                        stringify!($curve),
                        d,
                        u1,
                        u2
                    );
                    let crate_says = {
                        use ecdsa::signature::hazmat::PrehashVerifier;
                        key.verify_prehash(&digest, &sig).is_ok()
                    };
                    let here = ecdsa_vartime::verify_prehash(&key, &digest, &sig);
                    assert_eq!(here, crate_says, "{what}");
                    let split_says = split.verify_prehash(&digest, &sig);
                    assert_eq!(split_says, crate_says, "{what}, split tables");
                    if tweak == "as built" {
                        assert_eq!(here, is_valid, "{what}");
                        valid += usize::from(here);
                    }
                    checked += 1;
                }
            }
        }
        (valid, checked)
    }};
}

#[test]
fn crafted_signatures_reach_every_exceptional_case_and_decide_as_the_ecdsa_crate() {
    let (valid, checked) = crafted_cases!(p256 NistP256);
    assert!(
        valid > 150 && checked > 600,
        "P-256: {valid} valid of {checked}"
    );
    let (valid, checked) = crafted_cases!(p384 NistP384);
    assert!(
        valid > 150 && checked > 600,
        "P-384: {valid} valid of {checked}"
    );
}

#[test]
fn random_signatures_from_the_ecdsa_crate_verify_and_their_neighbours_do_not() {
    use ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use sha2::Digest;
    for i in 0..64u32 {
        let seed = sha2::Sha512::digest(i.to_be_bytes());
        let signer = p256::ecdsa::SigningKey::from_slice(&seed[..32]).unwrap();
        let digest = sha2::Sha256::digest(seed);
        let sig: p256::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
        let key = signer.verifying_key();
        let split = ecdsa_vartime::Key::precomputed(*key);
        assert!(ecdsa_vartime::verify_prehash(key, &digest, &sig));
        assert!(split.verify_prehash(&digest, &sig));
        let mut other = digest;
        other[i as usize % 32] ^= 1 << (i % 8);
        assert_eq!(
            ecdsa_vartime::verify_prehash(key, &other, &sig),
            key.verify_prehash(&other, &sig).is_ok()
        );
        assert!(!ecdsa_vartime::verify_prehash(key, &other, &sig));
        assert!(!split.verify_prehash(&other, &sig));

        let signer = p384::ecdsa::SigningKey::from_slice(&seed[..48]).unwrap();
        let digest = sha2::Sha384::digest(seed);
        let sig: p384::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
        let key = signer.verifying_key();
        let split = ecdsa_vartime::Key::precomputed(*key);
        assert!(ecdsa_vartime::verify_prehash(key, &digest, &sig));
        assert!(split.verify_prehash(&digest, &sig));
        let mut other = digest;
        other[i as usize % 48] ^= 1 << (i % 8);
        assert!(!ecdsa_vartime::verify_prehash(key, &other, &sig));
        assert!(!split.verify_prehash(&other, &sig));
    }
}

//! The variable-time ECDSA verification (`notary_verifier::signature::ecdsa_vartime`)
//! decides exactly as the `ecdsa` crate's constant-time path on signatures OpenSSL made
//! with P-256 and P-384 keys (with their own hash and with a longer or shorter one), and on
//! every tampered variant of them. The crafted cases (each exceptional case of the
//! incomplete formulas) and random ones are the module's unit tests, so that they also
//! run on the 32-bit field of the wasm build (`--features fiat-32`, `scripts/test.sh`).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use der::Decode;
use notary_verifier::signature::{
    self, HashAlgorithm, PssSalt, PublicKey, SignatureAlgorithm, X509SignatureAlgorithm,
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
    let middle = len / 2;
    hsm_notary_suite::bit_flips(
        bytes,
        &[
            0,
            1,
            len / 4,
            middle - 1,
            middle,
            middle + 1,
            len - 2,
            len - 1,
        ],
    )
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

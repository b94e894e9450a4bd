//! The variable-time RSA verification (`notary_verifier::signature::rsa_vartime`) decides
//! exactly as the `rsa` crate's constant-time path: on signatures OpenSSL made (PKCS#1
//! v1.5 and PSS with several salt lengths, RSA-2048, RSA-3072 and a 2 055-bit modulus whose
//! encoding is shorter than the modulus), and on every tampered, truncated, padded and
//! out-of-range variant of them.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use notary_verifier::signature::{self, PssSalt, SignatureAlgorithm};
use notary_verifier::x509::{Cert, parse_certificates};

fn openssl(dir: &Path, args: &[&str]) -> String {
    hsm_notary_suite::pki::openssl(dir, args).unwrap()
}

/// Both arithmetics' decision, which must agree.
fn decide<T: PartialEq + std::fmt::Debug>(what: &str, check: impl Fn() -> T) -> T {
    hsm_notary_suite::decide_both(signature::set_variable_time_rsa, what, check)
}

/// The signature itself and variants that must all fail: each of a spread of bytes
/// flipped, one byte short, one byte long, all zeros, all ones, and the modulus itself.
fn variants(signature: &[u8], modulus: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("as made".to_owned(), signature.to_vec())];
    let len = signature.len();
    out.extend(hsm_notary_suite::bit_flips(
        signature,
        &[
            0,
            1,
            2,
            len / 3,
            len / 2,
            len - 34,
            len - 33,
            len - 2,
            len - 1,
        ],
    ));
    out.push(("one byte short".into(), signature[1..].to_vec()));
    out.push((
        "a zero byte in front".into(),
        [&[0u8][..], signature].concat(),
    ));
    out.push(("all zeros".into(), vec![0; len]));
    out.push(("all ones".into(), vec![0xff; len]));
    out.push(("the modulus".into(), modulus.to_vec()));
    out
}

fn modulus(dir: &Path, key: &str) -> Vec<u8> {
    let text = openssl(dir, &["rsa", "-in", key, "-noout", "-modulus"]);
    let hex = text.trim().trim_start_matches("Modulus=");
    let hex = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_owned()
    };
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn variable_time_rsa_decides_as_the_rsa_crate_does() {
    notary_verifier::signature::memo::set_enabled(false);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("message"), b"the payload a signature covers").unwrap();
    let mut accepted = 0;
    for bits in ["2048", "3072", "2055"] {
        let key = format!("key{bits}.pem");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &key,
            ],
        );
        let n = modulus(d, &key);
        // Certificates: PKCS#1 v1.5 with each hash, and PSS (salt = hash length, the one
        // X.509 form accepted here).
        let mut certs: Vec<(String, Vec<&str>)> = ["-sha256", "-sha384", "-sha512"]
            .iter()
            .map(|h| (format!("pkcs1{h}"), vec![*h]))
            .collect();
        certs.push((
            "pss-sha256".into(),
            vec![
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ],
        ));
        for (name, options) in &certs {
            let file = format!("{name}-{bits}.pem");
            let mut args = vec![
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-subj",
                "/CN=RSA",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-out",
                &file,
            ];
            args.extend(options.iter());
            openssl(d, &args);
            let cert = parse_certificates(&std::fs::read(d.join(&file)).unwrap())
                .unwrap()
                .remove(0);
            let der = cert.der().to_vec();
            let sig_len = n.len();
            let tbs_end = der.len() - sig_len;
            for (variant, sig) in variants(&der[tbs_end..], &n) {
                // Splice the variant in; lengths differing from the modulus change the
                // outer DER lengths, so those are checked through the key directly below.
                if sig.len() != sig_len {
                    continue;
                }
                let forged = [&der[..tbs_end], &sig[..]].concat();
                let Ok(forged) = Cert::from_der(&forged) else {
                    continue;
                };
                let ok = decide(&format!("{file}: {variant}"), || {
                    signature::verify_certificate_signature(&forged, &cert)
                        .map_err(|e| e.to_string())
                });
                assert_eq!(
                    ok.is_ok(),
                    variant == "as made",
                    "{file}: {variant}: {ok:?}"
                );
                accepted += usize::from(ok.is_ok());
            }
        }
        // Envelope signatures: PSS with the salt as long as the hash (COSE) and other
        // lengths (JWS accepts any, as Go's PSSSaltLengthAuto).
        let public =
            parse_certificates(&std::fs::read(d.join(format!("pkcs1-sha256-{bits}.pem"))).unwrap())
                .unwrap()
                .remove(0)
                .public_key
                .clone()
                .unwrap();
        for (algorithm, hash, size) in [
            (SignatureAlgorithm::RsassaPssSha256, "-sha256", 32),
            (SignatureAlgorithm::RsassaPssSha384, "-sha384", 48),
            (SignatureAlgorithm::RsassaPssSha512, "-sha512", 64),
        ] {
            for salt in [size.to_string(), "0".into(), "20".into(), "max".into()] {
                let out = format!("sig-{bits}{hash}-{salt}");
                openssl(
                    d,
                    &[
                        "dgst",
                        hash,
                        "-sign",
                        &key,
                        "-sigopt",
                        "rsa_padding_mode:pss",
                        "-sigopt",
                        &format!("rsa_pss_saltlen:{salt}"),
                        "-sigopt",
                        &format!("rsa_mgf1_md:{}", &hash[1..]),
                        "-out",
                        &out,
                        "message",
                    ],
                );
                let made = std::fs::read(d.join(&out)).unwrap();
                let message = std::fs::read(d.join("message")).unwrap();
                for (variant, sig) in variants(&made, &n) {
                    for mode in [PssSalt::EqualsHash, PssSalt::Auto] {
                        let ok = decide(&format!("{out}: {variant} {mode:?}"), || {
                            public.verify(algorithm, &message, &sig, mode)
                        });
                        let expected = variant == "as made"
                            && (mode == PssSalt::Auto || salt == size.to_string());
                        assert_eq!(ok.is_ok(), expected, "{out}: {variant} {mode:?}: {ok:?}");
                        accepted += usize::from(ok.is_ok());
                    }
                }
            }
        }
    }
    // 4 certificates and 3 × (1 + 4) envelope decisions per key size.
    assert_eq!(accepted, 3 * (4 + 3 * 5));
    crafted_pkcs1_encodings(d);
}

/// `em` signed with the raw private-key operation (`pkeyutl -decrypt` without padding), so that everything but the one defect
/// of each encoding is right.
fn raw_sign(dir: &Path, key: &str, em: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("em"), em).unwrap();
    openssl(
        dir,
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            key,
            "-pkeyopt",
            "rsa_padding_mode:none",
            "-in",
            "em",
            "-out",
            "raw",
        ],
    );
    std::fs::read(dir.join("raw")).unwrap()
}

/// PKCS#1 v1.5 encodings one defect away from valid — the shapes of the known forgeries
/// against lax parsers (garbage after the digest, a DigestInfo without its NULL, short
/// padding) — are refused by both arithmetics; the valid one is accepted.
fn crafted_pkcs1_encodings(d: &Path) {
    use sha2::Digest;
    let file = "pkcs1-sha256-2048.pem";
    let cert = parse_certificates(&std::fs::read(d.join(file)).unwrap())
        .unwrap()
        .remove(0);
    let der = cert.der().to_vec();
    let k = 256;
    let tbs_end = der.len() - k;
    let digest = sha2::Sha256::digest(cert.tbs_der()).to_vec();
    let prefix: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let without_null: &[u8] = &[
        0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x04, 0x20,
    ];
    let encode =
        |header: &[u8], fill: u8, separator: u8, info: &[u8], hashed: &[u8], tail: &[u8]| {
            let pad = k - header.len() - 1 - info.len() - hashed.len() - tail.len();
            [
                header,
                &vec![fill; pad][..],
                &[separator],
                info,
                hashed,
                tail,
            ]
            .concat()
        };
    let mut flipped = digest.clone();
    flipped[31] ^= 1;
    let valid = encode(&[0, 1], 0xff, 0, prefix, &digest, &[]);
    let mut fe_in_padding = valid.clone();
    fe_in_padding[100] = 0xfe;
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("valid", valid, true),
        (
            "block type 2",
            encode(&[0, 2], 0xff, 0, prefix, &digest, &[]),
            false,
        ),
        ("0xfe in the padding", fe_in_padding, false),
        (
            "separator 0x01",
            encode(&[0, 1], 0xff, 1, prefix, &digest, &[]),
            false,
        ),
        (
            "DigestInfo without NULL",
            encode(&[0, 1], 0xff, 0, without_null, &digest, &[]),
            false,
        ),
        (
            "another digest",
            encode(&[0, 1], 0xff, 0, prefix, &flipped, &[]),
            false,
        ),
        (
            "garbage after the digest",
            encode(&[0, 1], 0xff, 0, prefix, &digest, &[0; 8]),
            false,
        ),
        (
            "zero padding",
            encode(&[0, 1], 0x00, 0, prefix, &digest, &[]),
            false,
        ),
    ];
    for (name, em, expected) in cases {
        let sig = raw_sign(d, "key2048.pem", &em);
        let forged = Cert::from_der(&[&der[..tbs_end], &sig[..]].concat()).unwrap();
        let ok = decide(name, || {
            signature::verify_certificate_signature(&forged, &cert).map_err(|e| e.to_string())
        });
        assert_eq!(ok.is_ok(), expected, "{name}: {ok:?}");
    }
}

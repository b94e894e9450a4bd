//! Certificates and chains, DER and PEM: `x509::parse_certificates` (PEM blocks or
//! concatenated DER, as trust store files and `--certificate` files are read),
//! `Cert::from_der`, `x509::pem_blocks`; then on what parsed: the chain rules
//! (`certificate::validate_chain` for code signing and timestamping, with and without a
//! signing time), key specs, signature checks between neighbours, self-signature,
//! subjects as trusted-identity DNs, path building to the fixture roots
//! (`chain::build_paths`), revocation endpoints, and trust store admission
//! (`TrustStores::load` of a store holding the input as one file, for every store type).
//! Property: a parsed certificate written as PEM (`x509::to_pem`) reads back the same.
#![no_main]

use const_oid::db::rfc5280::{ANY_EXTENDED_KEY_USAGE, ID_KP_CODE_SIGNING, ID_KP_TIME_STAMPING};
use libfuzzer_sys::fuzz_target;
use notary_verifier::certificate::{self, Purpose};
use notary_verifier::trustpolicy::identity::certificate_subject;
use notary_verifier::x509::{self, Cert};
use notary_verifier::{CertificateSummary, NamedStore, StoreFile, StoreType, TrustStores};

use hsm_notary_fuzz::{FIXTURE_ROOTS, verification_time};

fuzz_target!(|data: &[u8]| {
    let now = verification_time();
    let _ = x509::pem_blocks(data);
    let _ = Cert::from_der(data);
    let Ok(certs) = x509::parse_certificates(data) else {
        admission(data);
        return;
    };
    for (i, cert) in certs.iter().enumerate() {
        let _ = CertificateSummary::from(cert);
        let _ = certificate::key_spec(cert);
        let _ = cert.is_self_signed();
        let _ = cert.verifies_with_own_key();
        let _ = cert.is_valid_at(now);
        let _ = cert.subject_attributes();
        let _ = certificate_subject(cert);
        if let Some(parent) = certs.get(i + 1) {
            let _ = cert.check_signature_from(parent);
        }
        let pem = x509::to_pem(cert.der());
        match x509::parse_certificates(pem.as_bytes()) {
            Ok(again) => assert!(
                again.len() == 1 && again[0] == *cert,
                "to_pem does not read back as the same certificate"
            ),
            Err(e) => panic!("to_pem of a parsed certificate does not parse: {e}"),
        }
    }
    for purpose in [Purpose::CodeSigning, Purpose::Timestamping] {
        let _ = certificate::validate_chain(&certs, purpose, None);
        let _ = certificate::validate_chain(&certs, purpose, Some(now));
    }
    let _ = certificate::chain_valid_at(&certs, now);
    let _ = notary_verifier::revocation::endpoints(&certs);
    if let Some((leaf, rest)) = certs.split_first() {
        // Roots: every fixture store, and the input's own last certificate (so a
        // self-contained chain can complete).
        let mut roots: Vec<Cert> = FIXTURE_ROOTS.clone();
        roots.extend(rest.last().cloned());
        for usage in [
            ID_KP_CODE_SIGNING,
            ID_KP_TIME_STAMPING,
            ANY_EXTENDED_KEY_USAGE,
        ] {
            let _ = notary_verifier::chain::build_paths(leaf, rest, &roots, now, usage);
        }
    }
    admission(data);
});

/// The input as the one file of a named store of each type.
fn admission(data: &[u8]) {
    for store_type in StoreType::ALL {
        let stores = TrustStores {
            stores: vec![NamedStore {
                store_type,
                name: "fuzz".to_owned(),
                files: vec![StoreFile {
                    name: "fuzz.crt".to_owned(),
                    content: data.to_vec(),
                }],
            }],
        };
        let _ = notary_verifier::load_trust_store(&stores, store_type, "fuzz");
    }
}

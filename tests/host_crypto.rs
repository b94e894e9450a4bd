#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The optional host-crypto component (world `verifier-component-host-crypto`) imports
//! exactly the `crypto` interface — the RSA public operation and the ECDSA check — and
//! decides every case of the conformance corpus exactly as the import-free default
//! component does, with its public-key operations answered by this host.

use hsm_notary::engine::Verifier;
use hsm_notary::engine::component::{COMPONENT, ComponentEngine, HOST_CRYPTO_COMPONENT};
use hsm_notary_suite::{cases, run, signed_request};
use notary_verifier::Decision;
use notary_verifier::sign::Format;
use notary_verifier::signature::{Curve, KeySpec};

#[test]
fn the_host_crypto_component_imports_crypto_and_nothing_else() {
    let host = ComponentEngine::load_host_crypto().unwrap();
    assert_eq!(host.imports(), ["notary:verifier/crypto@0.1.0".to_owned()]);
    let default = ComponentEngine::load_default().unwrap();
    assert_eq!(host.exports(), default.exports());
    assert_ne!(HOST_CRYPTO_COMPONENT, COMPONENT);
    assert_eq!(&HOST_CRYPTO_COMPONENT[4..8], &[0x0d, 0x00, 0x01, 0x00]);
}

#[test]
fn host_crypto_decides_the_corpus_as_the_import_free_component() {
    let corpus = cases().unwrap();
    let default = ComponentEngine::load_default().unwrap();
    // A fresh instance per call, so that no memo answers for the host: every public-key
    // operation of every case goes through the import.
    let host = ComponentEngine::load_host_crypto()
        .unwrap()
        .fresh_instances();
    let mut compared = 0;
    for case in &corpus {
        let observe = |engine: &ComponentEngine| {
            run(case, engine as &dyn Verifier)
                .unwrap_or_else(|e| panic!("{}: {e:#}", case.name))
                .observation
        };
        assert_eq!(observe(&host), observe(&default), "{}", case.name);
        compared += 1;
    }
    assert!(compared > 100, "{compared}");
    // The default component never asks; the host-crypto one asked for its public-key
    // operations (more than one per case on average: signature, leaf, root).
    assert_eq!(default.host_crypto_calls(), 0);
    assert!(
        host.host_crypto_calls() > compared,
        "{} calls for {compared} cases",
        host.host_crypto_calls()
    );
}

#[test]
fn host_crypto_decides_ec_and_rsa_signatures_and_their_tampered_twins_as_the_default() {
    // The corpus is notation's RSA signatures: here every curve and RSA size, in both
    // envelope formats, good and with the last byte of a COSE signature changed.
    let default = ComponentEngine::load_default().unwrap();
    // Fresh instances, as above: every operation is the host's.
    let host = ComponentEngine::load_host_crypto()
        .unwrap()
        .fresh_instances();
    let specs = [
        KeySpec::Ec(Curve::P256),
        KeySpec::Ec(Curve::P384),
        KeySpec::Ec(Curve::P521),
        KeySpec::Rsa(2048),
        KeySpec::Rsa(3072),
    ];
    for spec in specs {
        for format in [Format::Jws, Format::Cose] {
            let request = signed_request(spec, format).unwrap();
            let good = host.verify(&request).unwrap();
            assert_eq!(good.decision, Decision::Verified, "{spec:?} {format:?}");
            assert_eq!(
                format!("{:?}", default.verify(&request).unwrap()),
                format!("{good:?}")
            );
            if format == Format::Cose {
                let mut tampered = request.clone();
                let envelope = &mut tampered.signatures[0].envelope;
                let last = envelope.len() - 1;
                envelope[last] ^= 0x01;
                let refused = host.verify(&tampered).unwrap();
                assert_ne!(refused.decision, Decision::Verified, "{spec:?}");
                assert_eq!(
                    format!("{:?}", default.verify(&tampered).unwrap()),
                    format!("{refused:?}")
                );
            }
        }
    }
    assert_eq!(default.host_crypto_calls(), 0);
    assert!(
        host.host_crypto_calls() >= 3 * 15,
        "{}",
        host.host_crypto_calls()
    );
}

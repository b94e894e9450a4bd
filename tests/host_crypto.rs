#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The optional host-crypto component (world `verifier-component-host-crypto`) imports
//! exactly the `crypto` interface — the RSA public operation and the ECDSA check — and
//! decides every case of the conformance corpus exactly as the import-free default
//! component does, with its public-key operations answered by this host.

use hsm_notary::engine::Verifier;
use hsm_notary::engine::component::{COMPONENT, ComponentEngine, HOST_CRYPTO_COMPONENT};
use hsm_notary::sign::local::LocalKey;
use hsm_notary::sign::{KeySource, SigningKey, sign_descriptor};
use hsm_notary_suite::{cases, run};
use notary_verifier::sign::Format;
use notary_verifier::signature::{Curve, KeySpec};
use notary_verifier::{
    Decision, Descriptor, DocumentKind, NamedStore, PolicyInput, SignatureInput, StoreFile,
    StoreType, Target, TrustStores, VerifyRequest,
};

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
    let host = ComponentEngine::load_host_crypto().unwrap();
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

/// A request for one envelope signed here by a fresh `spec` key under a generated root.
fn signed_request(spec: KeySpec, format: Format) -> VerifyRequest {
    let day = std::time::Duration::from_secs(86_400);
    let (root_key, root_der) = hsm_notary::certgen::root("host-crypto", day).unwrap();
    let key = LocalKey::generate(spec).unwrap();
    let leaf = hsm_notary::certgen::leaf(
        "host-crypto",
        &key.public_key_der().unwrap(),
        &root_key,
        &root_der,
        day,
    )
    .unwrap();
    let signing = SigningKey {
        source: KeySource::Local(Box::new(key)),
        chain: vec![leaf, root_der.clone()],
    };
    let target = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 1234,
        ..Descriptor::default()
    };
    let now = hsm_notary::commands::verification_time(None).unwrap();
    let signed = sign_descriptor(&signing, format, &target, None, now, None).unwrap();
    VerifyRequest {
        policy: PolicyInput {
            kind: DocumentKind::Oci,
            content: br#"{"version":"1.0","trustPolicies":[{"name":"h","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:h"],"trustedIdentities":["*"]}]}"#.to_vec(),
        },
        trust_stores: TrustStores {
            stores: vec![NamedStore {
                store_type: StoreType::Ca,
                name: "h".into(),
                files: vec![StoreFile {
                    name: "root.der".into(),
                    content: root_der,
                }],
            }],
        },
        target: Target::Oci {
            reference: format!("registry.example/app@{}", target.digest),
            descriptor: target,
        },
        signatures: vec![SignatureInput {
            media_type: signed.media_type.into(),
            envelope: signed.envelope,
            manifest_digest: None,
            prior_failure: None,
        }],
        user_metadata: Vec::new(),
        verification_time: now,
        revocation_evidence: Vec::new(),
        max_signatures: 100,
        plugin_evidence: Vec::new(),
    }
}

#[test]
fn host_crypto_decides_ec_and_rsa_signatures_and_their_tampered_twins_as_the_default() {
    // The corpus is notation's RSA signatures: here every curve and RSA size, in both
    // envelope formats, good and with the last byte of a COSE signature changed.
    let default = ComponentEngine::load_default().unwrap();
    let host = ComponentEngine::load_host_crypto().unwrap();
    let specs = [
        KeySpec::Ec(Curve::P256),
        KeySpec::Ec(Curve::P384),
        KeySpec::Ec(Curve::P521),
        KeySpec::Rsa(2048),
        KeySpec::Rsa(3072),
    ];
    for spec in specs {
        for format in [Format::Jws, Format::Cose] {
            let request = signed_request(spec, format);
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

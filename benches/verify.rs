//! Benches: verification native vs wasm (the pre-instantiated component with its
//! instances kept across calls, and with a fresh instance per call; a request to the
//! wasi:http build with a fresh instance, as `wasmtime serve` makes one), trust policy evaluation, HSM signing
//! through hsm-notary against raw `C_Sign` on the same SoftHSM2 token, and sign+push
//! latency to a local registry.
//!
//! `cargo bench --bench verify` (the HSM and registry groups need `scripts/setup.sh`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hsm_notary::engine::component::HTTP_COMPONENT;
use hsm_notary::engine::{ComponentEngine, NativeEngine, Verifier};
use hsm_notary::sign::{KeySource, SigningKey, sign_descriptor};
use hsm_notary_suite::wasi_http::{HttpComponent, bundle_of};
use hsm_notary_suite::{cases, component_engine, request_of, root, signed_request};
use notary_verifier::sign::Format;
use notary_verifier::signature::{Curve, KeySpec};
use notary_verifier::{Descriptor, DocumentKind, Instant, PolicyInput, Selector, VerifyRequest};

fn now() -> Instant {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Instant::from_unix(d.as_secs() as i64, 0)
}

/// A JWS made by the reference notation CLI.
fn jws_request() -> VerifyRequest {
    let case = cases()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "sig-x509-valid-strict")
        .unwrap();
    request_of(&case).unwrap()
}

/// A COSE signature made here with a local P-256 key under a generated test CA.
fn cose_request() -> VerifyRequest {
    signed_request(KeySpec::Ec(Curve::P256), Format::Cose).unwrap()
}

fn verify_benches(c: &mut Criterion) {
    let native = NativeEngine;
    let wasm = component_engine();
    let host_crypto = ComponentEngine::load_host_crypto().unwrap();
    // The wasi:http build, called as `wasmtime serve` would (a fresh instance per request,
    // JSON bundle in and outcome out), without the socket.
    let http = HttpComponent::new(HTTP_COMPONENT).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (name, request) in [("jws", jws_request()), ("cose", cose_request())] {
        assert_eq!(
            native.verify(&request).unwrap().decision,
            notary_verifier::Decision::Verified
        );
        let bundle = serde_json::to_vec(&bundle_of(&request)).unwrap();
        let (status, body) = runtime.block_on(http.post(bundle.clone())).unwrap();
        let outcome: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, &outcome["decision"]),
            (200, &serde_json::json!("verified"))
        );
        let mut group = c.benchmark_group(format!("verify/{name}"));
        group.sample_size(30);
        group.bench_function("native", |b| b.iter(|| native.verify(&request).unwrap()));
        // Every certificate signature computed again: a chain never seen before.
        notary_verifier::signature::memo::set_enabled(false);
        group.bench_function("native-new-chain", |b| {
            b.iter(|| native.verify(&request).unwrap())
        });
        // The same with the `rsa` crate's constant-time public operation (RSA only).
        notary_verifier::signature::set_variable_time_rsa(false);
        group.bench_function("native-new-chain-rsa-crate", |b| {
            b.iter(|| native.verify(&request).unwrap())
        });
        notary_verifier::signature::set_variable_time_rsa(true);
        // The same with the `ecdsa` crate's constant-time verification (P-256, P-384).
        notary_verifier::signature::set_variable_time_ecdsa(false);
        group.bench_function("native-new-chain-ecdsa-crate", |b| {
            b.iter(|| native.verify(&request).unwrap())
        });
        notary_verifier::signature::set_variable_time_ecdsa(true);
        notary_verifier::signature::memo::set_enabled(true);
        // Instances kept across calls with their memos: the signer's chain seen before.
        group.bench_function("wasm-warm", |b| b.iter(|| wasm.verify(&request).unwrap()));
        // A fresh instance per call: a chain never seen before.
        let fresh = wasm.fresh_instances();
        group.bench_function("wasm-new-chain", |b| {
            b.iter(|| fresh.verify(&request).unwrap())
        });
        // The optional build that imports its public-key arithmetic from this host
        // (native code, keys kept across calls); everything else as in wasm-warm.
        assert_eq!(
            host_crypto.verify(&request).unwrap().decision,
            notary_verifier::Decision::Verified
        );
        group.bench_function("wasm-host-crypto-warm", |b| {
            b.iter(|| host_crypto.verify(&request).unwrap())
        });
        let fresh_host_crypto = host_crypto.fresh_instances();
        group.bench_function("wasm-host-crypto-new-chain", |b| {
            b.iter(|| fresh_host_crypto.verify(&request).unwrap())
        });
        group.bench_function("wasi-http-request", |b| {
            b.iter(|| runtime.block_on(http.post(bundle.clone())).unwrap())
        });
        group.finish();
    }
}

fn policy_benches(c: &mut Criterion) {
    let policy = PolicyInput {
        kind: DocumentKind::Oci,
        content: std::fs::read(root().join("policies/trustpolicy.oci.json")).unwrap(),
    };
    let selector = Selector::OciReference("registry.example.com/prod/app@sha256:00".into());
    let wasm = component_engine();
    let mut group = c.benchmark_group("trust-policy");
    group.bench_function("validate+select/native", |b| {
        b.iter(|| {
            NativeEngine
                .select_policy(&policy, &selector)
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("validate+select/wasm", |b| {
        b.iter(|| wasm.select_policy(&policy, &selector).unwrap().unwrap())
    });
    group.finish();
}

/// `notation-hsm-notary` installed in a temporary plugin directory, and its configuration
/// for the bench token; `None` when the plugin binary is not built.
fn plugin_setup(
    hsm: &hsm_notary_suite::services::SoftHsm,
    chain: &[Vec<u8>],
) -> Option<(
    std::path::PathBuf,
    std::collections::BTreeMap<String, String>,
)> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("notation-hsm-notary");
    if !binary.exists() {
        eprintln!("{} not built: skipping the plugin bench", binary.display());
        return None;
    }
    let dir = std::env::temp_dir().join(format!("hsm-notary-bench-plugins-{}", std::process::id()));
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(plugins.join("hsm-notary")).ok()?;
    std::fs::copy(&binary, plugins.join("hsm-notary/notation-hsm-notary")).ok()?;
    let chain_path = dir.join("chain.pem");
    let pem: String = chain
        .iter()
        .map(|der| hsm_notary::certgen::pem("CERTIFICATE", der))
        .collect();
    std::fs::write(&chain_path, pem).ok()?;
    let config = [
        (
            "module-path",
            hsm_notary_suite::services::SOFTHSM_MODULE.to_owned(),
        ),
        (
            "pin-source",
            format!("file:{}", hsm.pin_file().ok()?.display()),
        ),
        ("certificate-chain", chain_path.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Some((plugins, config))
}

fn hsm_benches(c: &mut Criterion) {
    use hsm_notary_suite::services::{DistributionRegistry, SOFTHSM_MODULE, SoftHsm};
    if !Path::new(SOFTHSM_MODULE).exists() {
        eprintln!("SoftHSM2 not installed: skipping HSM benches (run scripts/setup.sh)");
        return;
    }
    let hsm = SoftHsm::new("bench", "bench-pin-1").unwrap();
    #[allow(unsafe_code)]
    // SAFETY: single-threaded bench setup, before the module is loaded.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", hsm.conf());
        // The plugin process gets SoftHSM's configuration through the allow-list.
        std::env::set_var("HSM_NOTARY_PLUGIN_ENV", "SOFTHSM2_CONF");
    };
    let uri = hsm_notary::pkcs11::Pkcs11Uri::parse(&format!(
        "{}?pin-source=file:{}",
        hsm.uri("k"),
        hsm.pin_file().unwrap().display()
    ))
    .unwrap();
    let token = hsm_notary::pkcs11::Token::open(&uri, Path::new(SOFTHSM_MODULE)).unwrap();
    token
        .generate(hsm_notary::pkcs11::KeyKind::EcP256, "k")
        .unwrap();
    let key = Arc::new(token.key("k").unwrap());
    let (root_key, root_der) =
        hsm_notary::certgen::root("hsm", std::time::Duration::from_secs(86_400)).unwrap();
    let leaf = hsm_notary::certgen::leaf(
        "hsm",
        &der::Encode::to_der(&key.spki).unwrap(),
        &root_key,
        &root_der,
        std::time::Duration::from_secs(86_400),
    )
    .unwrap();
    let signing = SigningKey {
        source: KeySource::Pkcs11(key.clone()),
        chain: vec![leaf, root_der],
    };
    let target = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: format!("sha256:{}", "cd".repeat(32)),
        size: 99,
        ..Descriptor::default()
    };
    let digest = [7u8; 32];
    let mut group = c.benchmark_group("hsm-sign/ec-p256");
    group.sample_size(30);
    group.bench_function("raw-C_Sign", |b| {
        b.iter(|| key.sign_digest_raw(&digest).unwrap())
    });
    group.bench_function("hsm-notary-envelope", |b| {
        b.iter(|| sign_descriptor(&signing, Format::Jws, &target, None, now(), None).unwrap())
    });
    // The same key through the plugin protocol: notation-hsm-notary as a process per
    // command (it loads the module and logs in each time), as notation runs plugins.
    if let Some((plugins, config)) = plugin_setup(&hsm, &signing.chain) {
        let open = || {
            hsm_notary::plugin::signer::PluginKey::open(
                &plugins,
                "hsm-notary",
                &hsm.uri("k"),
                config.clone(),
                std::time::Duration::from_secs(60),
                false,
            )
            .unwrap()
        };
        let through_plugin = SigningKey {
            source: KeySource::Plugin(Box::new(open())),
            chain: Vec::new(),
        };
        group.bench_function("plugin-generate-signature", |b| {
            b.iter(|| {
                sign_descriptor(&through_plugin, Format::Jws, &target, None, now(), None).unwrap()
            })
        });
        group.bench_function("plugin-metadata+describe+sign", |b| {
            b.iter(|| {
                let key = SigningKey {
                    source: KeySource::Plugin(Box::new(open())),
                    chain: Vec::new(),
                };
                sign_descriptor(&key, Format::Jws, &target, None, now(), None).unwrap()
            })
        });
    }
    group.finish();

    let Ok(registry) = DistributionRegistry::start() else {
        eprintln!("docker-registry not available: skipping sign+push bench");
        return;
    };
    let reference = format!("{}/bench:v1", registry.host());
    let artifact = hsm_notary::registry::ArtifactRef::parse(&reference).unwrap();
    let remote = hsm_notary::registry::Registry::connect(&artifact, &Default::default()).unwrap();
    let subject = remote
        .push_image(br#"{"os":"linux"}"#, &[b"bench layer"], "v1")
        .unwrap();
    let descriptor = Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest.clone(),
        size: subject.size,
        ..Descriptor::default()
    };
    let mut group = c.benchmark_group("sign+push/local-registry");
    group.sample_size(20);
    group.bench_function("hsm-jws", |b| {
        b.iter(|| {
            let signed =
                sign_descriptor(&signing, Format::Jws, &descriptor, None, now(), None).unwrap();
            let manifest = hsm_notary::commands::sign::signature_manifest(&subject, &signed);
            let (result, _) = remote.push_signature(&manifest, &signed.envelope, false);
            result.unwrap()
        })
    });
    group.finish();
}

/// What revocation costs a verification: a chain with no locations (the COSE request),
/// the same shape of chain with its two CRLs handed in (as from the cache), and with an
/// OCSP answer per certificate (fresh from `openssl ocsp`, as a responder gives it). The
/// fetch itself is I/O and is not in these figures.
fn revocation_benches(c: &mut Criterion) {
    use hsm_notary_suite::pki::{Locations, Pki, PkiOptions};
    use notary_verifier::revocation::{Evidence, Method};
    let crl_pki = Pki::build(&PkiOptions {
        leaf: Locations::crl("http://127.0.0.1:9/leaf.crl"),
        intermediate: Locations::crl("http://127.0.0.1:9/intermediate.crl"),
    })
    .unwrap();
    let mut with_crls = crl_pki.signed_request().unwrap();
    with_crls.revocation_evidence = vec![
        Evidence::Crl {
            url: "http://127.0.0.1:9/leaf.crl".into(),
            crl: crl_pki.intermediate.gencrl(24).unwrap(),
        },
        Evidence::Crl {
            url: "http://127.0.0.1:9/intermediate.crl".into(),
            crl: crl_pki.root.gencrl(24).unwrap(),
        },
    ];
    let ocsp_pki = Pki::build(&PkiOptions {
        leaf: Locations::ocsp("http://127.0.0.1:9/"),
        intermediate: Locations::ocsp("http://127.0.0.1:8/"),
    })
    .unwrap();
    let mut with_ocsp = ocsp_pki.signed_request().unwrap();
    // The OCSP requests the component asks for, answered by each issuer's responder.
    for need in NativeEngine.revocation_needs(&with_ocsp).unwrap() {
        assert_eq!(need.method, Method::Ocsp);
        let issuer = if need.subject.contains("leaf") {
            &ocsp_pki.intermediate
        } else {
            &ocsp_pki.root
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("req.der"), &need.ocsp_request).unwrap();
        let (signer, signer_key) = issuer.ocsp_signing();
        let status = std::process::Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(issuer.index())
            .arg("-CA")
            .arg(issuer.cert())
            .arg("-rsigner")
            .arg(signer)
            .arg("-rkey")
            .arg(signer_key)
            .args(["-ndays", "1", "-reqin"])
            .arg(dir.path().join("req.der"))
            .arg("-respout")
            .arg(dir.path().join("resp.der"))
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        with_ocsp.revocation_evidence.push(Evidence::Ocsp {
            url: need.urls[0].clone(),
            response: std::fs::read(dir.path().join("resp.der")).unwrap(),
        });
    }
    let none = cose_request();
    let native = NativeEngine;
    let wasm = component_engine();
    for (name, request) in [
        ("no-locations", &none),
        ("cached-crls", &with_crls),
        ("ocsp-answers", &with_ocsp),
    ] {
        let outcome = native.verify(request).unwrap();
        assert_eq!(
            outcome.decision,
            notary_verifier::Decision::Verified,
            "{name}: {outcome:?}"
        );
        assert!(
            native.revocation_needs(request).unwrap().is_empty(),
            "{name}"
        );
        let mut group = c.benchmark_group(format!("revocation/{name}"));
        group.sample_size(30);
        group.bench_function("native", |b| b.iter(|| native.verify(request).unwrap()));
        group.bench_function("wasm-warm", |b| b.iter(|| wasm.verify(request).unwrap()));
        group.finish();
    }
}

criterion_group!(
    benches,
    verify_benches,
    revocation_benches,
    policy_benches,
    hsm_benches
);
criterion_main!(benches);

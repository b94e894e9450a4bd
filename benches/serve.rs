//! `hsm-notary serve` throughput: 100 distinct images × 2 signatures (JWS and COSE) in a
//! local registry, one Gatekeeper request with all 100 keys, cold (every image verified)
//! and warm (answered from the verified-result cache), beside the component's raw cost
//! for one such image (signatures already in memory). The signer's chain names CRLs (leaf
//! and intermediate) on a loopback server: the cold request must fetch each once.
//!
//! `cargo bench --bench serve` (needs `scripts/setup.sh`: docker-registry, curl). Reports
//! to stdout and `target/serve-bench.txt`. Wall-clock figures on a shared machine: read
//! them as ratios within one run.

#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsm_notary::commands::verify::{SignatureSource, inputs, verify_artifact};
use hsm_notary::config::ConfigDir;
use hsm_notary::engine::{ComponentEngine, Verifier};
use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::pki::{Pki, RevocationServer};
use hsm_notary_suite::services::{DistributionRegistry, free_port, tls_files};
use hsm_notary_suite::{binary, component_cache};
use notary_verifier::{DocumentKind, SignatureInput};

const IMAGES: usize = 100;

struct Prefetched(Vec<SignatureInput>);

impl SignatureSource for Prefetched {
    fn candidates(
        &self,
        _: &hsm_notary::oci::Descriptor,
        _: usize,
    ) -> anyhow::Result<(Vec<hsm_notary::oci::Descriptor>, bool)> {
        let listed = (0..self.0.len())
            .map(|i| hsm_notary::oci::Descriptor {
                digest: i.to_string(),
                ..Default::default()
            })
            .collect();
        Ok((listed, false))
    }

    fn read(
        &self,
        candidate: &hsm_notary::oci::Descriptor,
        _: &hsm_notary::oci::Descriptor,
    ) -> anyhow::Result<Option<SignatureInput>> {
        let index: usize = candidate.digest.parse()?;
        Ok(self.0.get(index).cloned())
    }
}

fn cli(config: &std::path::Path, args: &[&str]) {
    let output = Command::new(binary())
        .args(args)
        .env("HSM_NOTARY_CONFIG", config)
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("DOCKER_CONFIG", config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn main() {
    let config = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(certs.path()).unwrap();
    let registry = DistributionRegistry::start().unwrap();
    let host = registry.host();
    cli(config.path(), &["cert", "generate-test", "signer"]);
    // The signer whose chain names CRL distribution points, served on loopback.
    let published = tempfile::tempdir().unwrap();
    let crls = RevocationServer::start(published.path()).unwrap();
    let pki = Pki::with_served_crls(&crls).unwrap();
    let leaf_key = pki.leaf_key().display().to_string();
    let chain = pki.chain.display().to_string();
    let pki_root = pki.root_cert().display().to_string();
    cli(
        config.path(),
        &[
            "key",
            "add",
            "crl-signer",
            "--key-file",
            &leaf_key,
            "--cert",
            &chain,
        ],
    );
    cli(
        config.path(),
        &[
            "cert", "add", "--type", "ca", "--store", "signer", &pki_root,
        ],
    );
    let policy = config.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:signer"],"trustedIdentities":["*"]}]}"#,
    )
    .unwrap();
    cli(
        config.path(),
        &["policy", "import", "--force", &policy.display().to_string()],
    );

    eprintln!("pushing and signing {IMAGES} images twice (JWS, COSE)…");
    let artifact = ArtifactRef::parse(&format!("{host}/bench:v1")).unwrap();
    let remote = Registry::connect(&artifact, &Options::default()).unwrap();
    let mut references = Vec::new();
    let mut descriptors = Vec::new();
    for i in 0..IMAGES {
        let descriptor = remote
            .push_image(
                br#"{"os":"linux"}"#,
                &[format!("layer {i}").as_bytes()],
                "v1",
            )
            .unwrap();
        references.push(format!("{host}/bench@{}", descriptor.digest));
        descriptors.push(descriptor);
    }
    std::thread::scope(|scope| {
        for chunk in references.chunks(IMAGES / 2) {
            let config = config.path();
            scope.spawn(move || {
                for reference in chunk {
                    cli(config, &["sign", "--key", "crl-signer", reference]);
                    cli(
                        config,
                        &[
                            "sign",
                            "--key",
                            "crl-signer",
                            "--signature-format",
                            "cose",
                            reference,
                        ],
                    );
                }
            });
        }
    });

    // The component's own cost for one image with both signatures in memory.
    let engine = ComponentEngine::load_default().unwrap();
    let dir = ConfigDir::resolve(Some(config.path())).unwrap();
    let loaded = inputs(&dir, None, None, DocumentKind::Oci).unwrap();
    let (signatures, _, _) = remote.signatures(&descriptors[0], 10).unwrap();
    assert_eq!(signatures.len(), 2);
    let source = Prefetched(signatures);
    let time = hsm_notary::commands::verification_time(None).unwrap();
    let rounds = 50;
    // Answers kept in memory, as serve keeps them.
    let revocation = hsm_notary::revocation::Fetcher::new(hsm_notary::revocation::Options {
        in_memory: true,
        ..Default::default()
    });
    let revocation = revocation.unbounded();
    let per_image = |engine: &dyn Verifier| {
        let started = Instant::now();
        for _ in 0..rounds {
            let outcome = verify_artifact(
                engine,
                &source,
                &loaded,
                &descriptors[0],
                &references[0],
                Vec::new(),
                time,
                100,
                &revocation,
            )
            .unwrap();
            assert_eq!(outcome.decision, notary_verifier::Decision::Verified);
        }
        started.elapsed() / rounds
    };
    let calls_before = ComponentEngine::calls();
    let raw = per_image(&engine);
    let calls = (ComponentEngine::calls() - calls_before) as f64 / f64::from(rounds);
    // The same decisions by the native library (the CLI's `--engine native`), to tell the
    // component's own overhead from the work.
    let native = per_image(&hsm_notary::engine::NativeEngine);
    // The component's host-crypto build (`serve --host-crypto`).
    let host_crypto = per_image(&ComponentEngine::load_host_crypto().unwrap());

    // The I/O floor: the same objects serve fetches for each image (its manifest, the
    // referrers, each signature manifest and envelope), with the same HTTP client shared
    // the same way (one per repository) and as many threads as serve's default
    // `--workers`, but nothing verified.
    let workers = 8;
    let floor_started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in references.chunks(IMAGES.div_ceil(workers)) {
            let remote = remote.clone();
            scope.spawn(move || {
                for reference in chunk {
                    let digest = reference.rsplit_once('@').unwrap().1;
                    let (_, descriptor) = remote.manifest(digest, None).unwrap();
                    let (signatures, _, _) = remote.signatures(&descriptor, 100).unwrap();
                    assert_eq!(signatures.len(), 2);
                }
            });
        }
    });
    let floor = floor_started.elapsed();

    let start_server = |extra: &[&str]| {
        let port = free_port().unwrap();
        let server = Command::new(binary())
            .args([
                "serve",
                "--allow-registry",
                &host,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--deadline-ms", "120000", "--cache-ttl", "10m"])
            .args(extra)
            .env("HSM_NOTARY_CONFIG", config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("DOCKER_CONFIG", config.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        }
        (server, port)
    };
    let (mut server, port) = start_server(&[]);
    let body = serde_json::json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": references},
    })
    .to_string();
    // One curl process per request: its figure includes the process and the TLS
    // handshake. curl's own timers give the part after the handshake (the request on an
    // established connection, as an admission webhook's client keeps it).
    let request = |port: u16| {
        let started = Instant::now();
        let mut curl = Command::new("curl")
            .args(["-sS", "--tlsv1.3", "--max-time", "300", "--cacert"])
            .arg(&ca)
            .args(["--data-binary", "@-"])
            .args(["--write-out", "%{stderr}%{time_appconnect} %{time_total}"])
            .arg(format!("https://127.0.0.1:{port}/gatekeeper/verify"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        curl.stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let output = curl.wait_with_output().unwrap();
        let elapsed = started.elapsed();
        let timers = String::from_utf8_lossy(&output.stderr);
        let (connected, total) = timers
            .trim()
            .rsplit_once(' ')
            .map(|(a, b)| (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()))
            .unwrap();
        let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let items = response["response"]["items"].as_array().unwrap();
        let verified = items.iter().filter(|i| i["error"] == "").count();
        assert_eq!(verified, IMAGES, "{response}");
        (
            elapsed,
            Duration::from_secs_f64((total - connected).max(0.0)),
        )
    };
    let before = (crls.fetches("leaf.crl"), crls.fetches("intermediate.crl"));
    let (cold, _) = request(port);
    let fetched = (
        crls.fetches("leaf.crl") - before.0,
        crls.fetches("intermediate.crl") - before.1,
    );
    let (warm_process, warm) = request(port);
    let _ = server.kill();
    let _ = server.wait();
    // The same cold request to a fresh `serve --host-crypto` (nothing cached, CRLs
    // fetched again).
    let (mut server, port) = start_server(&["--host-crypto"]);
    let (cold_host_crypto, _) = request(port);
    let _ = server.kill();
    let _ = server.wait();

    let per_second = |d: Duration| IMAGES as f64 / d.as_secs_f64();
    let report = format!(
        "hsm-notary serve, {IMAGES} images x 2 signatures, one Gatekeeper request, local registry\n\
         cold (registry fetches + verification): {:>8.1} ms  {:>7.1} images/s\n\
         warm (verified-result cache), on the established connection: {:>8.1} ms  {:>7.1} images/s\n\
         warm, whole curl process (start, TLS handshake, request): {:>8.1} ms\n\
         I/O floor (same fetches, same client, {workers} threads, no verification): {:>8.1} ms  (cold / floor = {:.2})\n\
         component alone, one image (2 signatures in memory, CRLs from memory as serve keeps them): {:.2} ms  ({:.1} images/s on one core, {:.1} component calls)\n\
         native library alone, the same image: {:.2} ms\n\
         serve --host-crypto, cold: {:>8.1} ms  (cold / floor = {:.2}); its component alone, one image: {:.2} ms\n\
         CRL fetches during the cold request: leaf {}, intermediate {} (each kept in memory until nextUpdate)\n",
        cold.as_secs_f64() * 1e3,
        per_second(cold),
        warm.as_secs_f64() * 1e3,
        per_second(warm),
        warm_process.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        cold.as_secs_f64() / floor.as_secs_f64(),
        raw.as_secs_f64() * 1e3,
        1.0 / raw.as_secs_f64(),
        calls,
        native.as_secs_f64() * 1e3,
        cold_host_crypto.as_secs_f64() * 1e3,
        cold_host_crypto.as_secs_f64() / floor.as_secs_f64(),
        host_crypto.as_secs_f64() * 1e3,
        fetched.0,
        fetched.1,
    );
    print!("{report}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-bench.txt"),
        report,
    );
}

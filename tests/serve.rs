#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! `hsm-notary serve` over loopback HTTPS, with the request and response shapes Gatekeeper's
//! external data protocol and a Kyverno `apiCall.service` use, against a real registry.
//! Requests are made with `curl`, as any client would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hsm_notary::oci::Descriptor;
use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::{DistributionRegistry, free_port, tls_files};
use hsm_notary_suite::{binary, component_cache};
use serde_json::{Value, json};

struct Server {
    child: Child,
    port: u16,
    ca: PathBuf,
    /// Its standard error.
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(config: &Path, tls: &(PathBuf, PathBuf, PathBuf), extra: &[&str]) -> Self {
        let port = free_port().unwrap();
        let mut args: Vec<String> = ["serve", "--listen", &format!("127.0.0.1:{port}")]
            .map(String::from)
            .to_vec();
        for (flag, file) in [("--tls-cert", &tls.1), ("--tls-key", &tls.2)] {
            args.extend([flag.to_owned(), file.display().to_string()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(config, &tls.0, port, &args)
    }

    /// `hsm-notary ARGS` (a `serve` listening on 127.0.0.1:`port`, its certificate issued
    /// by `ca`), with the tests' cache directory.
    fn spawn(config: &Path, ca: &Path, port: u16, args: &[String]) -> Self {
        Self::spawn_caching_in(config, ca, port, args, &component_cache())
    }

    /// [`Server::spawn`] with its own cache directory (CRLs on disk).
    fn spawn_caching_in(
        config: &Path,
        ca: &Path,
        port: u16,
        args: &[String],
        cache: &Path,
    ) -> Self {
        let log = config.join(format!("serve-{port}.log"));
        let mut child = Command::new(binary())
            .args(args)
            .env("HSM_NOTARY_CONFIG", config)
            .env("HSM_NOTARY_CACHE", cache)
            .env("DOCKER_CONFIG", config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "serve exited early");
            assert!(std::time::Instant::now() < deadline, "serve did not listen");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            port,
            ca: ca.to_owned(),
            log,
        }
    }

    /// What it has written to standard error so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POST `body` with curl over TLS 1.3, trusting the test CA; (exit ok, stdout).
    fn post(&self, path: &str, body: &str, curl_args: &[&str]) -> (bool, String) {
        let mut child = Command::new("curl")
            .args(["-sS", "--tlsv1.3", "--max-time", "20", "--cacert"])
            .arg(&self.ca)
            .args(curl_args)
            .args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ])
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl (scripts/setup.sh installs it)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    fn json(&self, path: &str, body: &Value) -> Value {
        let (ok, stdout) = self.post(path, &body.to_string(), &[]);
        assert!(ok, "curl failed: {stdout}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

struct World {
    config: tempfile::TempDir,
    _certs: tempfile::TempDir,
    tls: (PathBuf, PathBuf, PathBuf),
    registry: DistributionRegistry,
    remote: Registry,
}

impl World {
    fn new() -> Self {
        let config = tempfile::tempdir().unwrap();
        let certs = tempfile::tempdir().unwrap();
        let tls = tls_files(certs.path()).unwrap();
        let registry = DistributionRegistry::start().unwrap();
        let artifact = ArtifactRef::parse(&format!("{}/app:v1", registry.host())).unwrap();
        let remote = Registry::connect(&artifact, &Options::default()).unwrap();
        let world = Self {
            config,
            _certs: certs,
            tls,
            registry,
            remote,
        };
        hsm_notary_suite::signer_config(world.config.path(), "cluster").unwrap();
        world
    }

    fn cli(&self, args: &[&str]) -> String {
        hsm_notary_suite::hsm_notary(self.config.path(), args).unwrap()
    }

    fn image(&self, content: &str, signer: Option<&str>) -> (String, Descriptor) {
        let descriptor = self
            .remote
            .push_image(br#"{"os":"linux"}"#, &[content.as_bytes()], "v1")
            .unwrap();
        let reference = format!("{}/app@{}", self.registry.host(), descriptor.digest);
        if let Some(key) = signer {
            self.cli(&["sign", "--key", key, &reference]);
        }
        (reference, descriptor)
    }

    /// Flip a byte of `reference`'s (first) signature envelope in the registry's storage;
    /// returns the envelope blob's digest.
    fn break_signature(&self, reference: &str) -> String {
        let digest = reference.rsplit_once('@').unwrap().1;
        let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
        let (bytes, _) = self.remote.manifest(&tag, None).unwrap();
        let index: hsm_notary::oci::Index = serde_json::from_slice(&bytes).unwrap();
        let (bytes, _) = self
            .remote
            .manifest(&index.manifests[0].digest, None)
            .unwrap();
        let manifest: hsm_notary::oci::Manifest = serde_json::from_slice(&bytes).unwrap();
        let envelope = manifest.layers[0].digest.clone();
        let blob = self.registry.blob_path(&envelope);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&blob, &bytes).unwrap();
        envelope
    }

    /// `serve` with `extra` flags, allowed to reach this world's registry.
    fn serve(&self, extra: &[&str]) -> Server {
        let host = self.registry.host();
        let mut args = vec!["--allow-registry", host.as_str()];
        args.extend_from_slice(extra);
        Server::start(self.config.path(), &self.tls, &args)
    }
}

fn gatekeeper_request(keys: &[&str]) -> Value {
    json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    })
}

#[test]
fn gatekeeper_external_data_admits_trusted_images_and_denies_the_rest() {
    let world = World::new();
    let (signed, _) = world.image("signed", Some("signer"));
    let (untrusted, _) = world.image("untrusted", Some("other"));
    let (unsigned, _) = world.image("unsigned", None);
    let down = format!(
        "localhost:{}/app@sha256:{}",
        free_port().unwrap(),
        "a".repeat(64)
    );
    let down_host = down.split('/').next().unwrap().to_owned();
    let server = world.serve(&["--allow-registry", &down_host]);

    let response = server.json(
        "/gatekeeper/verify",
        &gatekeeper_request(&[&signed, &untrusted, &unsigned, &down]),
    );
    assert_eq!(response["apiVersion"], "externaldata.gatekeeper.sh/v1beta1");
    assert_eq!(response["kind"], "ProviderResponse");
    assert_eq!(response["response"]["systemError"], "");
    let items = response["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let item = |key: &str| items.iter().find(|i| i["key"] == key).unwrap().clone();

    let ok = item(&signed);
    assert_eq!(ok["error"], "", "{ok}");
    assert_eq!(ok["value"]["verified"], true);
    assert_eq!(ok["value"]["policy"], "cluster");
    assert!(
        ok["value"]["signer"]
            .as_str()
            .unwrap()
            .contains("CN=signer")
    );

    let bad = item(&untrusted);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("does not contain any trusted certificate"),
        "{bad}"
    );
    assert_eq!(bad["value"]["verified"], false);
    let none = item(&unsigned);
    assert!(
        none["error"]
            .as_str()
            .unwrap()
            .contains("no signature is associated"),
        "{none}"
    );
    // A registry that is down fails closed, and says which registry.
    let unreachable = item(&down);
    let registry = down.split('/').next().unwrap();
    assert!(
        unreachable["error"]
            .as_str()
            .unwrap()
            .contains(&format!("registry {registry}")),
        "{unreachable}"
    );

    // `repo:tag@digest`, as pod specs write pinned images: the digest decides.
    let pinned = signed.replacen("/app@", "/app:v1@", 1);
    let answer = server.json("/gatekeeper/verify", &gatekeeper_request(&[&pinned]));
    assert_eq!(answer["response"]["items"][0]["error"], "", "{answer}");

    // A tag is resolved to its digest (the last pushed image carries `v1`: unsigned).
    let tag = format!("{}/app:v1", world.registry.host());
    let tagged = server.json("/gatekeeper/verify", &gatekeeper_request(&[&tag]));
    assert_eq!(tagged["response"]["idempotent"], false, "{tagged}");
    assert_eq!(
        response["response"]["idempotent"], true,
        "digests only: {response}"
    );
    assert!(
        tagged["response"]["items"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no signature is associated"),
        "{tagged}"
    );

    // A malformed request is a systemError, not a crash.
    let (ok, body) = server.post("/gatekeeper/verify", "{not json", &[]);
    assert!(ok);
    let malformed: Value = serde_json::from_str(&body).unwrap();
    assert!(
        !malformed["response"]["systemError"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let wrong_shape = server.json("/gatekeeper/verify", &json!({"request": {"keys": [1]}}));
    assert!(
        wrong_shape["response"]["systemError"]
            .as_str()
            .unwrap()
            .contains("must hold strings")
    );
}

#[test]
fn serve_with_host_crypto_decides_every_image_as_the_default_component() {
    // `--host-crypto`: the component's build that imports its RSA and ECDSA arithmetic
    // from serve. Same images, same answers, word for word.
    let world = World::new();
    let (signed, _) = world.image("signed", Some("signer"));
    let (untrusted, _) = world.image("untrusted", Some("other"));
    let (unsigned, _) = world.image("unsigned", None);
    let keys = [signed.as_str(), &untrusted, &unsigned];
    let answers = |extra: &[&str]| {
        let server = world.serve(extra);
        let response = server.json("/gatekeeper/verify", &gatekeeper_request(&keys));
        let items = response["response"]["items"].as_array().unwrap().clone();
        keys.map(|key| {
            let item = items.iter().find(|i| i["key"] == key).unwrap();
            (item["value"]["verified"].clone(), item["error"].clone())
        })
    };
    let default = answers(&[]);
    let host_crypto = answers(&["--host-crypto"]);
    assert_eq!(default, host_crypto);
    assert_eq!(host_crypto[0], (json!(true), json!("")));
    assert_eq!(host_crypto[1].0, json!(false));
    assert_eq!(host_crypto[2].0, json!(false));
}

#[test]
fn kyverno_service_answers_for_all_images_and_verified_results_are_cached_by_digest() {
    let world = World::new();
    let (signed, _) = world.image("kyverno signed", Some("signer"));
    let (unsigned, _) = world.image("kyverno unsigned", None);
    let cached = world.serve(&["--cache-ttl", "5m"]);
    let uncached = world.serve(&["--cache-ttl", "0s"]);

    let all = cached.json("/kyverno/verify", &json!({"images": [&signed]}));
    assert_eq!(all["verified"], true, "{all}");
    assert_eq!(all["results"][0]["verified"], true);
    let mixed = cached.json("/kyverno/verify", &json!({"images": [&signed, &unsigned]}));
    assert_eq!(mixed["verified"], false, "{mixed}");
    assert_eq!(mixed["results"][1]["verified"], false);

    // Break the signature in the registry: the cached server still answers from its
    // verified result for that digest and policy; the uncached one re-verifies and denies.
    let envelope = world.break_signature(&signed);

    let again = cached.json("/kyverno/verify", &json!({"images": [&signed]}));
    assert_eq!(again["verified"], true, "{again}");
    let fresh = uncached.json("/kyverno/verify", &json!({"images": [&signed]}));
    assert_eq!(fresh["verified"], false, "{fresh}");
    assert!(
        fresh["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains(&envelope),
        "{fresh}"
    );

    // No image is not "all images verified".
    let none = cached.json("/kyverno/verify", &json!({"images": []}));
    assert_eq!(none["verified"], false, "{none}");

    let bad = cached.post(
        "/kyverno/verify",
        r#"{"images": "x"}"#,
        &["-w", "%{http_code}"],
    );
    assert!(bad.1.ends_with("400"), "{}", bad.1);
}

#[test]
fn an_image_not_decided_by_the_deadline_is_denied_and_the_server_stays_up() {
    let world = World::new();
    let (signed, _) = world.image("deadline signed", Some("signer"));
    let server = world.serve(&["--deadline-ms", "1"]);
    // Whether the deadline passes while queued, fetching or in the component, the image is
    // denied, never admitted unverified.
    for _ in 0..3 {
        let answer = server.json("/gatekeeper/verify", &gatekeeper_request(&[&signed]));
        let item = &answer["response"]["items"][0];
        assert_eq!(item["value"]["verified"], false, "{answer}");
        let error = item["error"].as_str().unwrap();
        assert!(
            error.contains("deadline") || error.contains("within 1 ms"),
            "{answer}"
        );
    }
    let (ok, health) = server.post("/healthz", "", &["-X", "GET"]);
    assert!(ok && health.contains(r#""ok":true"#), "{health}");
}

#[test]
fn a_registry_that_never_answers_holds_a_worker_only_until_the_deadline() {
    let world = World::new();
    let (signed, _) = world.image("slow registry", Some("signer"));
    // Accepts connections and reads nothing, answers nothing: only a deadline ends a
    // request to it (its own read timeout is a minute).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let stuck = format!("localhost:{port}/app@sha256:{}", "b".repeat(64));
    let stuck_host = format!("localhost:{port}");
    let server = world.serve(&[
        "--deadline-ms",
        "2000",
        "--workers",
        "1",
        "--allow-registry",
        &stuck_host,
    ]);

    let answer = server.json("/gatekeeper/verify", &gatekeeper_request(&[&stuck]));
    let item = &answer["response"]["items"][0];
    assert_eq!(item["value"]["verified"], false, "{answer}");
    assert!(
        item["error"].as_str().unwrap().contains("deadline")
            || item["error"].as_str().unwrap().contains("within 2000 ms"),
        "{answer}"
    );
    // The one worker was given back when that request gave up, so the next image is
    // verified, not left queued behind a fetch that would run on for a minute.
    let next = server.json("/gatekeeper/verify", &gatekeeper_request(&[&signed]));
    assert_eq!(next["response"]["items"][0]["error"], "", "{next}");
    assert_eq!(next["response"]["items"][0]["value"]["verified"], true);
}

#[test]
fn only_tls_1_3_and_only_clients_with_a_certificate_when_a_client_ca_is_set() {
    let world = World::new();
    let server = world.serve(&[]);
    let (ok, _) = server.post("/healthz", "", &["--tls-max", "1.2", "--tlsv1.2"]);
    assert!(!ok, "a TLS 1.2 connection was accepted");

    let (ok, _) = server.post("/gatekeeper/verify", "{}", &[]);
    assert!(ok, "the TLS 1.3 control request failed");

    let ca = world.tls.0.display().to_string();
    let strict = world.serve(&["--client-ca", &ca]);
    let (ok, _) = strict.post("/gatekeeper/verify", "{}", &[]);
    assert!(!ok, "a client without a certificate was served");
}

/// With signers whose chain names CRLs, `serve` fetches each CRL once for many images
/// (kept in memory until its `nextUpdate`, and shared with replicas through Redis), and
/// denies under `strict` once the CRL it fetches lists the signer.
#[test]
fn serve_fetches_each_crl_once_for_many_images_and_denies_a_revoked_signer() {
    use hsm_notary_suite::pki::RevocationServer;
    use hsm_notary_suite::pki::{Pki, Reason};
    let world = World::new();
    let published = tempfile::tempdir().unwrap();
    let crls = RevocationServer::start(published.path()).unwrap();
    let pki = Pki::with_served_crls(&crls).unwrap();
    let key = pki.leaf_key().display().to_string();
    let chain = pki.chain.display().to_string();
    world.cli(&[
        "key",
        "add",
        "crl-signer",
        "--key-file",
        &key,
        "--cert",
        &chain,
    ]);
    let root = pki.root_cert().display().to_string();
    world.cli(&["cert", "add", "--type", "ca", "--store", "signer", &root]);
    let images: Vec<String> = (0..4)
        .map(|i| world.image(&format!("crl image {i}"), Some("crl-signer")).0)
        .collect();
    let keys: Vec<&str> = images.iter().map(String::as_str).collect();

    // Replicas sharing Redis (decisions not cached, so each verifies): the second takes
    // the CRLs the first fetched from the shared cache.
    let redis = hsm_notary_suite::services::RedisServer::start().unwrap();
    let secret = world.config.path().join("cache.secret");
    std::fs::write(&secret, [5u8; 32]).unwrap();
    let (url, secret) = (redis.url(), secret.display().to_string());
    // Each its own disk cache, so that only Redis can spare the second a download.
    let replica = |cache: &Path| {
        let port = free_port().unwrap();
        let args = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &world.tls.1.display().to_string(),
            "--tls-key",
            &world.tls.2.display().to_string(),
            "--allow-registry",
            &world.registry.host(),
            "--cache-ttl",
            "0s",
            "--cache",
            &url,
            "--cache-secret-file",
            &secret,
        ]
        .map(String::from);
        Server::spawn_caching_in(world.config.path(), &world.tls.0, port, &args, cache)
    };
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for server in [replica(first.path()), replica(second.path())] {
        let answer = server.json("/gatekeeper/verify", &gatekeeper_request(&keys));
        for item in answer["response"]["items"].as_array().unwrap() {
            assert_eq!(item["value"]["verified"], true, "{answer}");
        }
        assert_eq!(crls.fetches("leaf.crl"), 1, "{:?}", crls.requests());
        assert_eq!(crls.fetches("intermediate.crl"), 1, "{:?}", crls.requests());
    }

    // A new server (nothing in memory; the disk cache is the process's default) asked
    // after the signer was revoked and the CRL republished: denied, saying why.
    pki.intermediate
        .revoke(&pki.leaf, Reason::KeyCompromise)
        .unwrap();
    crls.publish("leaf.crl", &pki.intermediate.gencrl(24).unwrap())
        .unwrap();
    let config_cache = hsm_notary_suite::component_cache().join("crl");
    let _ = std::fs::remove_dir_all(&config_cache);
    let fresh = world.serve(&["--cache-ttl", "0s"]);
    let answer = fresh.json("/gatekeeper/verify", &gatekeeper_request(&keys[..1]));
    let item = &answer["response"]["items"][0];
    assert_eq!(item["value"]["verified"], false, "{answer}");
    assert!(
        item["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is revoked"),
        "{answer}"
    );
}

fn script_plugin(config: &Path, name: &str, capabilities: &str, body: &str) {
    hsm_notary_suite::script_plugin(
        &config.join("plugins").join(name),
        name,
        "1.0.0",
        capabilities,
        body,
    )
    .unwrap();
}

#[test]
fn serve_asks_the_verification_plugin_a_signature_names() {
    use base64ct::{Base64, Encoding};
    let world = World::new();
    // The verification plugin: it verifies the identity and revocation, and processes
    // `io.example.claim` only when it is `good`.
    script_plugin(
        world.config.path(),
        "vp",
        "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\",\"SIGNATURE_VERIFIER.REVOCATION_CHECK\"",
        "verify-signature) if grep -q '\"io.example.claim\":\"good\"'; then p='[\"io.example.claim\"]'; else p='[]'; fi; printf '%s' \"{\\\"verificationResults\\\":{\\\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\\\":{\\\"success\\\":true},\\\"SIGNATURE_VERIFIER.REVOCATION_CHECK\\\":{\\\"success\\\":true}},\\\"processedAttributes\\\":$p}\";;",
    );
    let keys = world.config.path().join("localkeys");
    let mut images = Vec::new();
    for claim in ["good", "bad"] {
        let (reference, descriptor) = world.image(&format!("needs a plugin, {claim}"), None);
        let target = notary_verifier::Descriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            ..Default::default()
        };
        let envelope = hsm_notary_suite::envelope_with_attributes(
            &keys.join("signer.key"),
            &keys.join("signer.crt"),
            &target,
            &[
                ("io.cncf.notary.verificationPlugin", "vp", true),
                ("io.example.claim", claim, true),
            ],
        )
        .unwrap();
        // Published through an envelope plugin that hands back this envelope: signing
        // checks what was generated, with no trust decision (that needs `vp`, below).
        let name = format!("env-{claim}");
        script_plugin(
            world.config.path(),
            &name,
            "\"SIGNATURE_GENERATOR.ENVELOPE\"",
            &format!(
                "generate-envelope) printf '%s' '{{\"signatureEnvelope\":\"{}\",\"signatureEnvelopeType\":\"application/jose+json\"}}';;",
                Base64::encode_string(&envelope)
            ),
        );
        world.cli(&["sign", "--plugin", &name, "--id", "k", &reference]);
        images.push(reference);
    }
    let server = world.serve(&[]);
    let response = server.json(
        "/gatekeeper/verify",
        &gatekeeper_request(&[&images[0], &images[1]]),
    );
    let items = response["response"]["items"].as_array().unwrap();
    let item = |key: &str| items.iter().find(|i| i["key"] == key).unwrap().clone();
    let good = item(&images[0]);
    assert_eq!(good["value"]["verified"], true, "{good}");
    let bad = item(&images[1]);
    assert_eq!(bad["value"]["verified"], false, "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("did not process the critical attribute"),
        "{bad}"
    );
}

#[test]
fn with_a_platform_an_index_is_admitted_only_with_that_platform_s_manifest_signed() {
    use hsm_notary::oci::Platform;
    let world = World::new();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
        let image = world
            .remote
            .push_image(
                config.as_bytes(),
                &[format!("layer for {arch}").as_bytes()],
                arch,
            )
            .unwrap();
        children.push(Descriptor {
            platform: Some(Platform {
                architecture: arch.to_owned(),
                os: "linux".to_owned(),
                variant: None,
            }),
            ..image
        });
    }
    let arm64 = format!("{}/app@{}", world.registry.host(), children[1].digest);
    let index = world.remote.push_index(children, "multi").unwrap();
    let index = format!("{}/app@{}", world.registry.host(), index.digest);
    world.cli(&["sign", "--key", "signer", &index]);
    let server = world.serve(&["--platform", "linux/arm64"]);

    let denied = server.json("/gatekeeper/verify", &gatekeeper_request(&[&index]));
    let item = &denied["response"]["items"][0];
    assert_eq!(item["value"]["verified"], false, "{denied}");
    let error = item["error"].as_str().unwrap();
    assert!(
        error.contains("its linux/arm64 manifest") && error.contains(&arm64),
        "{error}"
    );
    assert!(error.contains("no signature is associated"), "{error}");

    // Signing the platform's manifest admits the index (a denial is not cached).
    world.cli(&["sign", "--key", "signer", &arm64]);
    let admitted = server.json("/gatekeeper/verify", &gatekeeper_request(&[&index]));
    assert_eq!(
        admitted["response"]["items"][0]["value"]["verified"], true,
        "{admitted}"
    );
}

#[test]
fn serve_reaches_only_listed_registries_refuses_tags_when_told_and_says_what_a_level_enforced() {
    let world = World::new();
    let (signed, descriptor) = world.image("listed", Some("signer"));
    let (untrusted, _) = world.image("audited", Some("other"));
    let elsewhere = format!(
        "localhost:{}/app@{}",
        free_port().unwrap(),
        descriptor.digest
    );
    let server = world.serve(&["--require-digest"]);
    let tag = format!("{}/app:v1", world.registry.host());
    let answer = server.json(
        "/gatekeeper/verify",
        &gatekeeper_request(&[&signed, &elsewhere, &tag]),
    );
    let items = answer["response"]["items"].as_array().unwrap();
    assert_eq!(items[0]["error"], "", "{answer}");
    assert_eq!(items[0]["value"]["enforced"], true, "{answer}");
    assert_eq!(items[0]["value"]["level"], "strict", "{answer}");
    assert_eq!(items[0]["value"]["digest"], descriptor.digest, "{answer}");
    assert!(
        items[1]["error"]
            .as_str()
            .unwrap()
            .contains("is not one this server may reach"),
        "{answer}"
    );
    assert!(
        items[2]["error"]
            .as_str()
            .unwrap()
            .contains("--require-digest"),
        "{answer}"
    );

    // Under `audit`, an untrusted signer is admitted, and the answer says so.
    let policy = world.config.path().join("audit.json");
    std::fs::write(
        &policy,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "audited",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "audit"},
            "trustStores": ["ca:signer"],
            "trustedIdentities": ["*"],
        }]})
        .to_string(),
    )
    .unwrap();
    world.cli(&["policy", "import", "--force", &policy.display().to_string()]);
    let audit = world.serve(&[]);
    let answer = audit.json("/gatekeeper/verify", &gatekeeper_request(&[&untrusted]));
    let value = &answer["response"]["items"][0]["value"];
    assert_eq!(value["verified"], true, "{answer}");
    assert_eq!(value["level"], "audit", "{answer}");
    assert_eq!(value["enforced"], false, "{answer}");
    assert!(
        value["logged_failures"][0]
            .as_str()
            .unwrap()
            .contains("authenticity"),
        "{answer}"
    );
}

#[test]
fn the_gatekeeper_mutation_provider_pins_each_verified_image_to_its_digest() {
    let world = World::new();
    let (signed, descriptor) = world.image("pinned", Some("signer"));
    let tag = format!("{}/app:v1", world.registry.host());
    let server = world.serve(&[]);
    let answer = server.json("/gatekeeper/mutate", &gatekeeper_request(&[&tag]));
    let item = &answer["response"]["items"][0];
    assert_eq!(item["error"], "", "{answer}");
    assert_eq!(
        item["value"],
        format!("{}/app@{}", world.registry.host(), descriptor.digest),
        "{answer}"
    );
    assert_eq!(signed, item["value"].as_str().unwrap());
    // An image that does not verify is an error: the mutation, and the pod, fail.
    let (unsigned, _) = world.image("not signed", None);
    let answer = server.json("/gatekeeper/mutate", &gatekeeper_request(&[&unsigned]));
    let item = &answer["response"]["items"][0];
    assert!(
        item["error"].as_str().unwrap().contains("no signature"),
        "{answer}"
    );
}

/// `GET /metrics` of `server`, as (name{labels}, value) pairs of the Prometheus text format.
fn metrics(server: &Server) -> Vec<(String, f64)> {
    metrics_with(server, &[])
}

/// `/metrics`, with more `curl_args` (a client certificate).
fn metrics_with(server: &Server, curl_args: &[&str]) -> Vec<(String, f64)> {
    let args = [&["-X", "GET"], curl_args].concat();
    let (ok, text) = server.post("/metrics", "", &args);
    assert!(ok, "curl failed: {text}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn metric(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, v)| *v)
}

/// A rollout asks for one image from many pods at once: those requests share one
/// verification (in flight, or then from the cache), and `/metrics` counts them.
#[test]
fn concurrent_requests_for_one_digest_share_one_verification_and_metrics_count_them() {
    let world = World::new();
    let (signed, _) = world.image("coalesced signed", Some("signer"));
    let (unsigned, _) = world.image("coalesced unsigned", None);
    let server = world.serve(&["--workers", "8"]);
    let keys = [signed.as_str(); 8];
    let answer = server.json("/gatekeeper/verify", &gatekeeper_request(&keys));
    let items = answer["response"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{answer}");
    for item in items {
        assert_eq!(item["value"]["verified"], true, "{answer}");
    }
    let denied = server.json("/kyverno/verify", &json!({"images": [&unsigned]}));
    assert_eq!(denied["verified"], false, "{denied}");

    let samples = metrics(&server);
    assert_eq!(
        metric(&samples, "hsm_notary_verifications_total"),
        2.0,
        "eight requests for one digest verified it once, the unsigned image once: {samples:?}"
    );
    let shared = metric(
        &samples,
        r#"hsm_notary_cache_lookups_total{result="coalesced"}"#,
    ) + metric(&samples, r#"hsm_notary_cache_lookups_total{result="hit"}"#);
    assert_eq!(shared, 7.0, "{samples:?}");
    assert_eq!(
        metric(&samples, r#"hsm_notary_cache_lookups_total{result="miss"}"#),
        2.0,
        "{samples:?}"
    );
    assert_eq!(
        metric(
            &samples,
            r#"hsm_notary_decisions_total{decision="admitted"}"#
        ),
        8.0
    );
    assert_eq!(
        metric(&samples, r#"hsm_notary_decisions_total{decision="denied"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &samples,
            r#"hsm_notary_requests_total{endpoint="gatekeeper/verify"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&samples, "hsm_notary_verification_duration_seconds_count"),
        2.0
    );
    assert!(
        metric(
            &samples,
            r#"hsm_notary_registry_request_duration_seconds_count{method="GET"}"#
        ) > 0.0,
        "registry requests were not timed: {samples:?}"
    );
}

/// Replicas share verified results, resolved tags and revocation evidence through Redis
/// (Debian's redis-server on loopback). Redis decides nothing: an entry not made under the
/// replicas' secret is ignored, an entry copied to another image's key admits nothing, and
/// a Redis that goes away leaves each replica its local cache, with a warning.
#[test]
fn replicas_share_verified_results_through_redis_and_no_planted_entry_admits_an_image() {
    let world = World::new();
    let mut redis = hsm_notary_suite::services::RedisServer::start().unwrap();
    let secret = world.config.path().join("cache.secret");
    std::fs::write(&secret, [7u8; 32]).unwrap();
    let other_secret = world.config.path().join("other.secret");
    std::fs::write(&other_secret, [8u8; 32]).unwrap();
    let url = redis.url();
    let shared = |file: &Path| -> Server {
        world.serve(&[
            "--cache",
            &url,
            "--cache-secret-file",
            &file.display().to_string(),
        ])
    };
    let (a, b, stranger) = (shared(&secret), shared(&secret), shared(&other_secret));
    let (signed, _) = world.image("shared signed", Some("signer"));
    let (unsigned, _) = world.image("shared unsigned", None);
    let verify = |server: &Server, image: &str| -> bool {
        let answer = server.json("/kyverno/verify", &json!({"images": [image]}));
        answer["verified"].as_bool().unwrap()
    };

    assert!(verify(&a, &signed));
    assert_eq!(metric(&metrics(&a), "hsm_notary_verifications_total"), 1.0);
    // Break the signature in the registry: whoever verifies now denies.
    world.break_signature(&signed);

    // B never verified it: A's result comes from Redis.
    assert!(verify(&b, &signed));
    let b_metrics = metrics(&b);
    assert_eq!(metric(&b_metrics, "hsm_notary_verifications_total"), 0.0);
    assert_eq!(
        metric(
            &b_metrics,
            r#"hsm_notary_cache_lookups_total{result="shared_hit"}"#
        ),
        1.0,
        "{b_metrics:?}"
    );
    // A replica with another secret does not take A's word: it verifies, and denies.
    assert!(!verify(&stranger, &signed));
    assert_eq!(
        metric(&metrics(&stranger), "hsm_notary_verifications_total"),
        1.0
    );

    // A's entry copied under the unsigned image's key (what someone with write access to
    // Redis, but not the secret, can do) admits nothing.
    let keys = String::from_utf8(
        redis
            .cli(&["KEYS", "hsm-notary:v1:decision:*"], None)
            .unwrap(),
    )
    .unwrap();
    let key = keys
        .lines()
        .find(|k| k.ends_with(&signed))
        .unwrap_or_else(|| panic!("{keys}"));
    let mut value = redis.cli(&["GET", key], None).unwrap();
    value.pop(); // redis-cli's newline
    let planted = key.replace(&signed, &unsigned);
    redis.cli(&["SET", &planted], Some(&value)).unwrap();
    assert!(!verify(&b, &unsigned));
    assert_eq!(
        metric(
            &metrics(&b),
            r#"hsm_notary_cache_lookups_total{result="rejected"}"#
        ),
        1.0
    );
    // …and neither does a forged value under the signed image's own key.
    redis
        .cli(&["SET", &key.replace(&signed, &unsigned)], Some(b"forged"))
        .unwrap();
    assert!(!verify(&stranger, &unsigned));

    // A tag resolved by one replica is reused by the other for --tag-ttl.
    let tagged = format!("{}/app:v1", world.registry.host());
    verify(&a, &tagged);
    verify(&b, &tagged);
    assert_eq!(
        metric(
            &metrics(&b),
            r#"hsm_notary_cache_lookups_total{result="shared_tag_hit"}"#
        ),
        1.0
    );

    // Redis goes away: each replica goes on alone, says so once, decides as before.
    redis.stop();
    assert!(verify(&a, &signed), "A still has its own cached result");
    let (fresh, _) = world.image("shared after redis", Some("signer"));
    assert!(verify(&b, &fresh));
    assert!(!verify(&b, &unsigned));
    let said = b.stderr();
    assert_eq!(
        said.matches("Warning: the shared cache at redis://127.0.0.1")
            .count(),
        1,
        "{said}"
    );
    assert!(said.contains("using the local cache only"), "{said}");
}

/// The `args` of the container named `container` in a (multi-document) Kubernetes
/// manifest.
fn container_args(manifest: &str, container: &str) -> Vec<String> {
    hsm_notary_suite::yaml_documents(manifest)
        .expect("YAML")
        .into_iter()
        .flat_map(|doc| {
            doc["spec"]["template"]["spec"]["containers"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c["name"].as_str() == Some(container))
        .unwrap_or_else(|| panic!("no container {container}"))["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

/// `policies/kubernetes/serve-replicas.yaml` runs as written: two replicas started with its
/// container arguments (mount paths mapped to files here, the listen address to loopback,
/// Redis and the registry to this test's) start, and the second admits what the first
/// verified from the shared cache.
#[test]
fn the_sample_deployment_s_arguments_run_replicas_that_share_redis() {
    let manifest = std::fs::read_to_string(
        hsm_notary_suite::root().join("policies/kubernetes/serve-replicas.yaml"),
    )
    .unwrap();
    let args = container_args(&manifest, "hsm-notary");
    assert_eq!(args[0], "serve", "{args:?}");
    assert!(manifest.contains("replicas: 3"));
    assert!(
        args.windows(2)
            .any(|w| w == ["--cache", "redis://hsm-notary-redis:6379"]),
        "{args:?}"
    );
    let world = World::new();
    let redis = hsm_notary_suite::services::RedisServer::start().unwrap();
    let secret = world.config.path().join("cache.secret");
    std::fs::write(&secret, [9u8; 32]).unwrap();
    let (image, _) = world.image("deployment", Some("signer"));
    let replica = || {
        let port = free_port().unwrap();
        let mapped: Vec<String> = args
            .iter()
            .map(|arg| match arg.as_str() {
                "0.0.0.0:6001" => format!("127.0.0.1:{port}"),
                "/etc/hsm-notary/tls/tls.crt" => world.tls.1.display().to_string(),
                "/etc/hsm-notary/tls/tls.key" => world.tls.2.display().to_string(),
                // The test CA issued curl's client certificate too.
                "/etc/hsm-notary/gatekeeper-ca/ca.crt" => world.tls.0.display().to_string(),
                "/etc/hsm-notary/cache/secret" => secret.display().to_string(),
                "redis://hsm-notary-redis:6379" => redis.url(),
                "registry.example.com" => world.registry.host(),
                other => {
                    assert!(!other.starts_with('/'), "unmapped path {other}");
                    other.to_owned()
                }
            })
            .collect();
        Server::spawn(world.config.path(), &world.tls.0, port, &mapped)
    };
    let (a, b) = (replica(), replica());
    // --client-ca: only clients with a certificate from the CA are served.
    let (cert, key) = (
        world.tls.1.display().to_string(),
        world.tls.2.display().to_string(),
    );
    let client = ["--cert", cert.as_str(), "--key", key.as_str()];
    let verify = |server: &Server| -> Value {
        let (ok, stdout) = server.post(
            "/kyverno/verify",
            &json!({"images": [&image]}).to_string(),
            &client,
        );
        assert!(ok, "{stdout}");
        serde_json::from_str(&stdout).unwrap()
    };
    assert_eq!(verify(&a)["verified"], true, "{}", a.stderr());
    assert_eq!(verify(&b)["verified"], true, "{}", b.stderr());
    let b_metrics = metrics_with(&b, &client);
    assert_eq!(metric(&b_metrics, "hsm_notary_verifications_total"), 0.0);
    assert_eq!(
        metric(
            &b_metrics,
            r#"hsm_notary_cache_lookups_total{result="shared_hit"}"#
        ),
        1.0
    );
}

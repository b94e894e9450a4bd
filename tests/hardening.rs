#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Hostile registries, as issue 13 describes them: credentials stay with the registry they
//! are for, bodies are cut off at their limits while they stream, and a bad signature
//! (unfetchable, malformed, oversized) is skipped with its reason so the good one after it
//! still verifies.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hsm_notary::oci::{self, Descriptor};
use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::{DistributionRegistry, FakeRegistry, Request, Response};
use hsm_notary_suite::{binary, component_cache, text};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// base64("user:secret").
const BASIC: &str = "dXNlcjpzZWNyZXQ=";

fn digest_a() -> String {
    format!("sha256:{}", "a".repeat(64))
}

/// `hsm-notary ARGS` on an empty configuration, `stdin` on standard input, `env` set.
fn run(config: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("HSM_NOTARY_CONFIG", config)
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("DOCKER_CONFIG", config)
        .env_remove("HSM_NOTARY_USERNAME")
        .env_remove("HSM_NOTARY_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// A registry that asks for a Bearer token from `realm(host)` (its own `/token` unless
/// told otherwise), issues one, and answers 404 to everything else.
fn bearer_registry(realm: impl Fn(&str) -> String + Send + Sync + 'static) -> FakeRegistry {
    FakeRegistry::start_with_request(move |r: &Request| {
        let host = r.header("host").unwrap_or_default().to_owned();
        if r.path.starts_with("/token") {
            return Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"token":"issued"}"#.to_vec(),
            };
        }
        if r.header("authorization") != Some("Bearer issued") {
            return Response {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(r#"Bearer realm="{}",service="fake""#, realm(&host)),
                )],
                body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}"#.to_vec(),
            };
        }
        Response {
            status: 404,
            headers: vec![],
            body: br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                .to_vec(),
        }
    })
    .unwrap()
}

fn saw_credentials(registry: &FakeRegistry) -> bool {
    registry.requests().iter().any(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Basic") || a.contains(BASIC))
    })
}

#[test]
fn explicit_credentials_go_only_to_the_registry_they_are_bound_to() {
    let config = tempfile::tempdir().unwrap();
    let other = bearer_registry(|host| format!("http://{host}/token"));
    let reference = format!("{}/app@{}", other.host(), digest_a());

    // Bound to another registry, by flag: the one named gets no password, not even at
    // its own token endpoint.
    let out = run(
        config.path(),
        &[
            "ls",
            "-u",
            "user",
            "--password-stdin",
            "--registry-host",
            "registry.example",
            &reference,
        ],
        &[],
        "secret\n",
    );
    assert!(!out.status.success());
    assert!(
        other
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/token")),
        "the token flow ran: {:?}",
        other.requests()
    );
    assert!(!saw_credentials(&other), "{:?}", other.requests());

    // The same with the variables.
    let out = run(
        config.path(),
        &["ls", "--registry-host", "registry.example", &reference],
        &[
            ("HSM_NOTARY_USERNAME", "user"),
            ("HSM_NOTARY_PASSWORD", "secret"),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(!saw_credentials(&other), "{:?}", other.requests());

    // Without --registry-host they are for the reference's registry, which gets them
    // (at its own token endpoint): the binding is what keeps them from the other one.
    let own = bearer_registry(|host| format!("http://{host}/token"));
    let reference = format!("{}/app@{}", own.host(), digest_a());
    run(
        config.path(),
        &["ls", "-u", "user", "--password-stdin", &reference],
        &[],
        "secret\n",
    );
    assert!(
        own.requests().iter().any(|r| r.path.starts_with("/token")
            && r.header("authorization") == Some(&format!("Basic {BASIC}"))),
        "{:?}",
        own.requests()
    );
}

#[test]
fn a_token_realm_on_another_host_gets_no_request_and_the_registry_no_credentials() {
    let config = tempfile::tempdir().unwrap();
    let issuer = FakeRegistry::start(|_, _| Response {
        status: 200,
        headers: vec![],
        body: br#"{"token":"issued"}"#.to_vec(),
    })
    .unwrap();
    let issuer_host = issuer.host();
    let registry = bearer_registry(move |_| format!("http://{issuer_host}/token"));
    let reference = format!("{}/app@{}", registry.host(), digest_a());
    let out = run(
        config.path(),
        &["ls", "-u", "user", "--password-stdin", &reference],
        &[],
        "secret\n",
    );
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("token realm") && message.contains("refused"),
        "{message}"
    );
    assert!(issuer.requests().is_empty(), "{:?}", issuer.requests());
    assert!(!saw_credentials(&registry), "{:?}", registry.requests());
    assert!(
        registry
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "{:?}",
        registry.requests()
    );
}

#[test]
fn serve_sends_the_variables_credentials_to_no_registry_a_pod_spec_names() {
    let config = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let tls = hsm_notary_suite::services::tls_files(certs.path()).unwrap();
    hsm_notary_suite::signer_config(config.path(), "cluster").unwrap();
    let registry = bearer_registry(|host| format!("http://{host}/token"));
    let port = hsm_notary_suite::services::free_port().unwrap();
    let mut serve = Command::new(binary())
        .args([
            "serve",
            "--allow-registry",
            &registry.host(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
        ])
        .arg(&tls.1)
        .arg("--tls-key")
        .arg(&tls.2)
        .env("HSM_NOTARY_CONFIG", config.path())
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("DOCKER_CONFIG", config.path())
        .env("HSM_NOTARY_USERNAME", "user")
        .env("HSM_NOTARY_PASSWORD", "secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(serve.try_wait().unwrap().is_none(), "serve exited early");
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let image = format!("{}/app@{}", registry.host(), digest_a());
    let body = serde_json::json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": [image]},
    });
    let out = Command::new("curl")
        .args(["-sS", "--tlsv1.3", "--max-time", "30", "--cacert"])
        .arg(&tls.0)
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("https://127.0.0.1:{port}/gatekeeper/verify"))
        .output()
        .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("error") || answer.contains("false"),
        "{answer}"
    );
    assert!(!registry.requests().is_empty(), "the registry was asked");
    assert!(!saw_credentials(&registry), "{:?}", registry.requests());
}

/// Peak resident memory (KiB) of `hsm-notary ARGS`, measured by the kernel
/// (`getrusage(RUSAGE_CHILDREN)` through Python), and its output.
fn peak_kib(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (u64, Output, Duration) {
    let script = "import resource,subprocess,sys\n\
r=subprocess.run(sys.argv[1:],capture_output=True)\n\
sys.stdout.buffer.write(r.stdout)\n\
sys.stderr.buffer.write(r.stderr)\n\
sys.stderr.write('\\npeak-kib %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
sys.exit(r.returncode)";
    let started = Instant::now();
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(binary())
        .args(args)
        .env("HSM_NOTARY_CONFIG", config)
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("DOCKER_CONFIG", config)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-kib "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stderr}"));
    (peak, out, elapsed)
}

/// The most a failed fetch may make the process hold, in KiB: well above hsm-notary's
/// own footprint, far below the 1 GiB the endless bodies below would make it hold.
const PEAK_BOUND_KIB: u64 = 384 * 1024;

#[test]
fn endless_and_oversized_bodies_are_cut_off_at_their_limits_while_streaming() {
    let config = tempfile::tempdir().unwrap();
    let subject = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let subject_digest = oci::sha256_digest(&subject);

    // A manifest without end.
    let endless = FakeRegistry::start(|_, _| Response::endless(MANIFEST)).unwrap();
    let reference = format!("{}/app@{subject_digest}", endless.host());
    let (peak, out, _) = peak_kib(config.path(), &["ls", &reference], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("over the limit of 4194304 bytes"),
        "{}",
        text(&out)
    );
    eprintln!("peak resident memory: {peak} KiB");
    assert!(peak < PEAK_BOUND_KIB, "peak {peak} KiB");

    // A manifest that says it is too big is not read at all.
    let big = FakeRegistry::start(|_, _| Response {
        status: 200,
        headers: vec![("Content-Type".into(), MANIFEST.into())],
        body: vec![b' '; 5 << 20],
    })
    .unwrap();
    let out = run(
        config.path(),
        &["ls", &format!("{}/app@{subject_digest}", big.host())],
        &[],
        "",
    );
    assert!(text(&out).contains("it declares 5242880"), "{}", text(&out));

    // An endless token response.
    let greedy = FakeRegistry::start_with_request(|r: &Request| {
        if r.path.starts_with("/token") {
            return Response::endless("application/json");
        }
        Response {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    r#"Bearer realm="http://{}/token""#,
                    r.header("host").unwrap_or_default()
                ),
            )],
            body: vec![],
        }
    })
    .unwrap();
    let (peak, out, _) = peak_kib(
        config.path(),
        &["ls", &format!("{}/app@{subject_digest}", greedy.host())],
        &[],
    );
    assert!(
        text(&out).contains("over the limit of 1048576 bytes"),
        "{}",
        text(&out)
    );
    eprintln!("peak resident memory: {peak} KiB");
    assert!(peak < PEAK_BOUND_KIB, "peak {peak} KiB");

    // An envelope blob that goes on past its descriptor's size: cut at the size.
    let signature_manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": oci::ARTIFACT_TYPE_NOTARY,
        "config": {"mediaType": oci::MEDIA_TYPE_EMPTY, "digest": oci::EMPTY_JSON_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": digest_a(), "size": 1000}],
        "subject": {"mediaType": MANIFEST, "digest": subject_digest, "size": subject.len()},
    })
    .to_string()
    .into_bytes();
    let signature_digest = oci::sha256_digest(&signature_manifest);
    let referrers = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::MEDIA_TYPE_IMAGE_INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": signature_digest, "size": signature_manifest.len(), "artifactType": oci::ARTIFACT_TYPE_NOTARY}],
    })
    .to_string()
    .into_bytes();
    let (s, m, i) = (
        subject.clone(),
        signature_manifest.clone(),
        referrers.clone(),
    );
    let sd = subject_digest.clone();
    let blob_registry = FakeRegistry::start(move |_, path| {
        let ok = |body: &Vec<u8>, media: &str| Response {
            status: 200,
            headers: vec![("Content-Type".into(), media.into())],
            body: body.clone(),
        };
        if path.contains("/referrers/") {
            ok(&i, oci::MEDIA_TYPE_IMAGE_INDEX)
        } else if path.ends_with(&sd) {
            ok(&s, MANIFEST)
        } else if path.contains("/manifests/") {
            ok(&m, MANIFEST)
        } else {
            Response::endless("application/octet-stream")
        }
    })
    .unwrap();
    let (peak, out, _) = peak_kib(
        config.path(),
        &[
            "inspect",
            &format!("{}/app@{subject_digest}", blob_registry.host()),
        ],
        &[],
    );
    let message = text(&out);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("over the limit of 1000 bytes"),
        "{message}"
    );
    assert!(
        message.contains(&signature_digest),
        "names the signature: {message}"
    );
    eprintln!("peak resident memory: {peak} KiB");
    assert!(peak < PEAK_BOUND_KIB, "peak {peak} KiB");
}

#[test]
fn a_registry_sending_one_byte_per_second_fails_at_the_exchange_deadline() {
    let config = tempfile::tempdir().unwrap();
    let slow = FakeRegistry::start(|_, _| Response::slow(MANIFEST, vec![b' '; 600])).unwrap();
    let reference = format!("{}/app@{}", slow.host(), digest_a());
    let (peak, out, elapsed) = peak_kib(
        config.path(),
        &["ls", &reference],
        &[("HSM_NOTARY_REGISTRY_TIMEOUT", "3s")],
    );
    let message = text(&out);
    assert!(!out.status.success());
    assert!(message.contains("did not answer in time"), "{message}");
    // 600 bytes at one a second would take ten minutes.
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
    eprintln!("peak resident memory: {peak} KiB");
    assert!(peak < PEAK_BOUND_KIB, "peak {peak} KiB");
}

/// A configuration trusting `signer`, a registry, and an image signed by `signer`.
struct Signed {
    config: tempfile::TempDir,
    registry: DistributionRegistry,
    remote: Registry,
    image: Descriptor,
    reference: String,
}

impl Signed {
    fn new() -> Self {
        let config = tempfile::tempdir().unwrap();
        hsm_notary_suite::signer_config(config.path(), "hostile").unwrap();
        let registry = DistributionRegistry::start().unwrap();
        let artifact = ArtifactRef::parse(&format!("{}/app:v1", registry.host())).unwrap();
        let remote = Registry::connect(&artifact, &Options::default()).unwrap();
        let image = remote
            .push_image(br#"{"os":"linux"}"#, &[b"layer"], "v1")
            .unwrap();
        let reference = format!("{}/app@{}", registry.host(), image.digest);
        Self {
            config,
            registry,
            remote,
            image,
            reference,
        }
    }

    fn sign(&self) -> String {
        let out = hsm_notary_suite::hsm_notary(
            self.config.path(),
            &["sign", "--key", "signer", &self.reference],
        )
        .unwrap();
        hsm_notary_suite::pushed_signature_digest(&out)
    }

    /// A signature manifest of the image with `layers` (whose blobs must be there: the
    /// registry checks), pushed without touching the referrers index.
    fn junk(&self, layers: Vec<Descriptor>, n: usize) -> Descriptor {
        let manifest = oci::Manifest {
            schema_version: 2,
            media_type: MANIFEST.to_owned(),
            artifact_type: Some(oci::ARTIFACT_TYPE_NOTARY.to_owned()),
            config: Descriptor {
                media_type: oci::MEDIA_TYPE_EMPTY.to_owned(),
                digest: oci::EMPTY_JSON_DIGEST.to_owned(),
                size: 2,
                ..Descriptor::default()
            },
            layers,
            subject: Some(self.image.clone()),
            annotations: [("n".to_owned(), n.to_string())].into_iter().collect(),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = self
            .remote
            .push_manifest_bytes(&bytes, MANIFEST, None)
            .unwrap();
        Descriptor {
            media_type: MANIFEST.to_owned(),
            digest,
            size: bytes.len() as u64,
            artifact_type: Some(oci::ARTIFACT_TYPE_NOTARY.to_owned()),
            ..Descriptor::default()
        }
    }

    /// A blob pushed (as the layer of an image tagged `tag`), as an envelope descriptor.
    fn blob(&self, bytes: &[u8], tag: &str) -> Descriptor {
        self.remote.push_image(b"{}", &[bytes], tag).unwrap();
        envelope_layer(oci::sha256_digest(bytes), bytes.len() as u64)
    }

    /// Take `digest`'s content out of the registry's storage behind its back: listed, but
    /// no longer fetchable.
    fn lose(&self, digest: &str) {
        std::fs::remove_file(self.registry.blob_path(digest)).unwrap();
    }

    /// Replace the referrers tag index with `manifests`, in this order.
    fn list(&self, manifests: Vec<Descriptor>) {
        self.remote
            .push_index(manifests, &oci::referrers_tag(&self.image.digest))
            .unwrap();
    }

    fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["verify", "-o", "json"];
        args.extend_from_slice(extra);
        args.push(&self.reference);
        run(self.config.path(), &args, &[], "")
    }
}

fn world_digest(outcome: &serde_json::Value, index: usize) -> String {
    outcome["signatures"][index]["manifest_digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn envelope_layer(digest: String, size: u64) -> Descriptor {
    Descriptor {
        media_type: "application/jose+json".to_owned(),
        digest,
        size,
        ..Descriptor::default()
    }
}

#[test]
fn junk_signatures_before_the_valid_one_are_skipped_with_their_reasons() {
    let world = Signed::new();
    let valid = world.sign();
    let listed = world.remote.referrers(&world.image.digest).unwrap();
    let valid = listed.into_iter().find(|d| d.digest == valid).unwrap();
    // 150 bad ones, each kind in turn: an envelope blob that is gone, two layers, an
    // envelope over 32 MiB, an envelope that is not JWS, a manifest that is gone.
    let mut manifests = Vec::new();
    world.remote.push_image(b"{}", &[], "empty").unwrap();
    let garbage = world.blob(b"not an envelope", "garbage");
    let huge = world.blob(&vec![b'x'; (32 << 20) + 1], "huge");
    let gone = world.blob(b"this one is lost", "gone");
    for n in 0..150 {
        let junk = match n % 5 {
            0 => world.junk(vec![gone.clone()], n),
            1 => world.junk(vec![garbage.clone(), garbage.clone()], n),
            2 => world.junk(vec![huge.clone()], n),
            3 => world.junk(vec![garbage.clone()], n),
            _ => world.junk(vec![garbage.clone()], n),
        };
        manifests.push(junk);
    }
    let lost: Vec<String> = manifests
        .iter()
        .skip(4)
        .step_by(5)
        .map(|d| d.digest.clone())
        .collect();
    manifests.push(valid.clone());
    world.list(manifests);
    world.lose(&gone.digest);
    for digest in &lost {
        world.lose(digest);
    }

    let out = world.verify(&["--max-signatures", "200"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", text(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["decision"], "verified", "{outcome}");
    assert_eq!(outcome["verified_index"], 150, "{outcome}");
    assert_eq!(outcome["signatures"].as_array().unwrap().len(), 151);
    // Each unreadable one is named with its reason, in the output and in the outcome.
    for reason in [
        "must have exactly one layer, found 2",
        "over the limit of 33554432 bytes",
        &format!("skipped signature manifest {}", world_digest(&outcome, 0)),
        &format!("skipped signature manifest {}", world_digest(&outcome, 4)),
    ] {
        assert!(stderr.contains(reason), "{reason}: {stderr}");
    }
    let skipped = &outcome["signatures"][1]["failure"];
    assert_eq!(skipped["kind"], "signature-retrieval", "{outcome}");
    assert!(
        skipped["message"]
            .as_str()
            .unwrap()
            .contains("skipped signature manifest")
    );
    let not_jws = &outcome["signatures"][3]["failure"];
    assert_eq!(not_jws["kind"], "integrity", "{outcome}");
}

#[test]
fn at_most_1024_signatures_are_examined_and_the_1024th_still_counts() {
    let world = Signed::new();
    let valid = world.sign();
    let valid = world
        .remote
        .referrers(&world.image.digest)
        .unwrap()
        .into_iter()
        .find(|d| d.digest == valid)
        .unwrap();
    let garbage = world.blob(b"not an envelope", "garbage");
    let junk: Vec<Descriptor> = (0..1024)
        .map(|n| world.junk(vec![garbage.clone()], n))
        .collect();
    // 1023 that fail, then the valid one: the 1024th verifies.
    let mut manifests: Vec<Descriptor> = junk[..1023].to_vec();
    manifests.push(valid.clone());
    world.list(manifests);
    let out = world.verify(&["--max-signatures", "5000"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("over the cap of 1024"),
        "the cap is said: {}",
        text(&out)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["verified_index"], 1023);

    // 1024 that fail, then the valid one: it is never examined.
    let mut manifests = junk;
    manifests.push(valid);
    world.list(manifests);
    let out = world.verify(&["--max-signatures", "5000"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("exceeded configured limit of max signatures 1024"),
        "{}",
        text(&out)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["signatures"].as_array().unwrap().len(), 1024);
    drop(world.registry);
}

/// A registry that answers the referrers tag with the subject itself, as GitLab does
/// (oras-go#1396), and records what is written and deleted.
fn gitlab_like(subject: Vec<u8>, subject_media_type: &'static str) -> FakeRegistry {
    let digest = oci::sha256_digest(&subject);
    let tag = oci::referrers_tag(&digest);
    FakeRegistry::start(move |method, path| {
        let ok = |status: u16, headers: Vec<(String, String)>, body: Vec<u8>| Response {
            status,
            headers,
            body,
        };
        match method {
            "GET" if path.contains("/referrers/") => ok(404, vec![], vec![]),
            "GET" if path.ends_with(&digest) || path.ends_with(&tag) => ok(
                200,
                vec![("Content-Type".into(), subject_media_type.into())],
                subject.clone(),
            ),
            "HEAD" => ok(404, vec![], vec![]),
            "POST" => ok(
                202,
                vec![("Location".into(), "/v2/app/blobs/uploads/one".into())],
                vec![],
            ),
            "PUT" => ok(201, vec![], vec![]),
            "DELETE" => ok(202, vec![], vec![]),
            _ => ok(404, vec![], vec![]),
        }
    })
    .unwrap()
}

/// A repository that answered the referrers API with 404 has none: its next subjects'
/// signatures are listed by the tag schema without asking again (one request fewer per
/// image), while a repository with the API is asked every time.
#[test]
fn a_repository_without_the_referrers_api_is_asked_for_it_once() {
    let subjects = [
        "sha256:".to_owned() + &"1".repeat(64),
        "sha256:".to_owned() + &"2".repeat(64),
    ];
    for has_api in [false, true] {
        let registry = FakeRegistry::start(move |method, path| {
            let index = serde_json::json!({
                "schemaVersion": 2, "mediaType": oci::MEDIA_TYPE_IMAGE_INDEX, "manifests": []
            });
            match (method, path.contains("/referrers/")) {
                ("GET", true) if has_api => Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), oci::MEDIA_TYPE_IMAGE_INDEX.into())],
                    body: index.to_string().into_bytes(),
                },
                _ => Response {
                    status: 404,
                    headers: vec![],
                    body: vec![],
                },
            }
        })
        .unwrap();
        let artifact = ArtifactRef::parse(&format!("{}/app:v1", registry.host())).unwrap();
        let remote = Registry::connect(&artifact, &Options::default()).unwrap();
        for subject in &subjects {
            assert!(remote.referrers(subject).unwrap().is_empty());
        }
        let requests = registry.requests();
        let api = requests
            .iter()
            .filter(|r| r.path.contains("/referrers/"))
            .count();
        let by_tag = requests
            .iter()
            .filter(|r| {
                subjects
                    .iter()
                    .any(|s| r.path.ends_with(&oci::referrers_tag(s)))
            })
            .count();
        if has_api {
            assert_eq!((api, by_tag), (2, 0), "{requests:?}");
        } else {
            assert_eq!((api, by_tag), (1, 2), "{requests:?}");
        }
    }
}

#[test]
fn a_referrers_tag_that_names_the_subject_is_neither_rewritten_nor_deleted() {
    let config = tempfile::tempdir().unwrap();
    hsm_notary_suite::signer_config(config.path(), "gitlab").unwrap();
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let platform = oci::sha256_digest(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::MEDIA_TYPE_IMAGE_INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": platform, "size": manifest.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    })
    .to_string()
    .into_bytes();
    for (subject, media_type) in [(manifest, MANIFEST), (index, oci::MEDIA_TYPE_IMAGE_INDEX)] {
        let digest = oci::sha256_digest(&subject);
        let registry = gitlab_like(subject, media_type);
        let reference = format!("{}/app@{digest}", registry.host());

        // Read: the subject is not taken for a list of signatures.
        let out = run(config.path(), &["ls", &reference], &[], "");
        assert!(
            text(&out).contains("has no associated signatures"),
            "{}",
            text(&out)
        );

        // Write: the signature manifest is pushed, the "index" is left alone.
        let out = run(
            config.path(),
            &["sign", "--key", "signer", &reference],
            &[],
            "",
        );
        let message = text(&out);
        assert!(!out.status.success(), "{message}");
        assert!(message.contains("not a referrers index"), "{message}");
        let requests = registry.requests();
        assert!(
            requests.iter().all(|r| r.method != "DELETE"),
            "nothing is deleted: {requests:?}"
        );
        assert!(
            !requests
                .iter()
                .any(|r| r.method == "PUT" && r.path.contains(&oci::referrers_tag(&digest))),
            "the tag is not overwritten: {requests:?}"
        );
    }
}

#[test]
fn compiled_code_in_the_cache_directory_is_never_run() {
    use std::hash::{Hash, Hasher};
    // A valid compiled component for this very engine, but of another component (empty),
    // under every name the old cache gave the verifier's compiled code.
    let engine = wasmtime::Engine::new(&{
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config
    })
    .unwrap();
    let other = engine
        .precompile_component(b"\0asm\x0d\x00\x01\x00")
        .unwrap();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let sha = oci::sha256_digest(hsm_notary::engine::component::COMPONENT);
    let key = format!(
        "verifier-{}-{:016x}.cwasm",
        &sha["sha256:".len()..][..16],
        hasher.finish()
    );
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(cache.path().join(&key), &other).unwrap();
    std::fs::write(cache.path().join("verifier.cwasm"), &other).unwrap();

    let world = Signed::new();
    world.sign();
    let out = Command::new(binary())
        .args(["verify", &world.reference])
        .env("HSM_NOTARY_CONFIG", world.config.path())
        .env("HSM_NOTARY_CACHE", cache.path())
        .env("DOCKER_CONFIG", world.config.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Successfully verified"),
        "{}",
        text(&out)
    );
}

#[test]
fn with_no_home_and_no_xdg_or_hsm_notary_variables_commands_still_work() {
    let world = Signed::new();
    world.sign();
    let policy = world.config.path().join("trustpolicy.oci.json");
    let store = world.config.path().join("truststore");
    let path = std::env::var("PATH").unwrap_or_default();
    let bare = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .env_clear()
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = bare(&["version"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bare(&[
        "verify",
        "--trust-policy",
        &policy.display().to_string(),
        "--trust-store",
        &store.display().to_string(),
        &world.reference,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

/// `leaf` (issued by `ca` with `profile`) then `ca`'s chain up to the root, parsed.
fn chain_of(
    dir: &Path,
    name: &str,
    profile: hsm_notary_suite::pki::Profile,
) -> Vec<notary_verifier::x509::Cert> {
    use hsm_notary_suite::pki::{Ca, IssueSpec, Locations};
    let root = Ca::root(dir, &format!("{name}-root"), "CN=Root,O=Hardening").unwrap();
    let (issuer, mut chain) = match profile {
        hsm_notary_suite::pki::Profile::CaWith(_) => {
            let ca = root
                .issue_ca_as(
                    &format!("{name}-ca"),
                    "CN=Constrained,O=Hardening",
                    Locations::none(),
                    profile,
                )
                .unwrap();
            let pem = std::fs::read(ca.cert()).unwrap();
            (ca, vec![pem])
        }
        _ => (root.clone(), Vec::new()),
    };
    let leaf_profile = match profile {
        hsm_notary_suite::pki::Profile::CaWith(_) => hsm_notary_suite::pki::Profile::CodeSigning,
        other => other,
    };
    let leaf = issuer
        .issue(&IssueSpec {
            name: format!("{name}-leaf"),
            subject: "CN=Leaf,O=Hardening".to_owned(),
            profile: leaf_profile,
            locations: Locations::none(),
            days: 30,
        })
        .unwrap();
    chain.insert(0, std::fs::read(leaf.cert()).unwrap());
    chain.push(std::fs::read(root.cert()).unwrap());
    chain
        .iter()
        .flat_map(|pem| notary_verifier::x509::parse_certificates(pem).unwrap())
        .collect()
}

#[test]
fn chains_with_unhandled_critical_extensions_or_name_constraints_are_refused() {
    use hsm_notary_suite::pki::Profile;
    use notary_verifier::certificate::{Purpose, validate_chain};
    let dir = tempfile::tempdir().unwrap();
    let plain = chain_of(dir.path(), "plain", Profile::CodeSigning);
    validate_chain(&plain, Purpose::CodeSigning, None).expect("the plain chain is valid");

    let unknown = chain_of(
        dir.path(),
        "unknown",
        Profile::CodeSigningWith("1.2.3.4.5 = critical,ASN1:NULL"),
    );
    let e = validate_chain(&unknown, Purpose::CodeSigning, None).expect_err("refused");
    assert!(
        e.to_string()
            .contains("unhandled critical extension 1.2.3.4.5"),
        "{e}"
    );

    // The same extension, not critical, is ignored.
    let ignorable = chain_of(
        dir.path(),
        "ignorable",
        Profile::CodeSigningWith("1.2.3.4.5 = ASN1:NULL"),
    );
    validate_chain(&ignorable, Purpose::CodeSigning, None).expect("a non-critical one is fine");

    let constrained = chain_of(
        dir.path(),
        "constrained",
        Profile::CaWith("nameConstraints = critical,permitted;DNS:example.com"),
    );
    let e = validate_chain(&constrained, Purpose::CodeSigning, None).expect_err("refused");
    assert!(e.to_string().contains("name constraints"), "{e}");
}

#[test]
fn certificates_whose_two_signature_algorithms_differ_or_whose_rsa_key_is_huge_are_refused() {
    use hsm_notary_suite::pki::Profile;
    let dir = tempfile::tempdir().unwrap();
    let chain = chain_of(dir.path(), "mismatch", Profile::CodeSigning);
    let mut der = chain[0].der().to_vec();
    // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) appears twice: in tbsCertificate and as the
    // outer signatureAlgorithm. Make the outer one ecdsa-with-SHA384.
    let oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let at = der
        .windows(oid.len())
        .rposition(|w| w == oid)
        .expect("ECDSA-SHA256 certificate");
    der[at + oid.len() - 1] = 0x03;
    let e = notary_verifier::x509::Cert::from_der(&der).expect_err("refused");
    assert!(
        e.to_string()
            .contains("signature algorithm identifiers don't match"),
        "{e}"
    );

    // An RSA modulus of 8200 bits: over Go's (and our) 8192.
    use der::Encode;
    let mut modulus = vec![0xffu8; 8200 / 8 + 1];
    modulus[0] = 0x00;
    let key = rsa_public_key_der(&modulus);
    let spki = spki::SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        },
        subject_public_key: der::asn1::BitString::from_bytes(&key).unwrap(),
    };
    let _ = spki.to_der().unwrap();
    let e = notary_verifier::signature::PublicKey::from_spki(&spki).expect_err("refused");
    assert!(e.contains("exceeds the limit of 8192 bits"), "{e}");
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (65537).
fn rsa_public_key_der(modulus: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    let mut body = tlv(0x02, modulus);
    body.extend(tlv(0x02, &[0x01, 0x00, 0x01]));
    tlv(0x30, &body)
}

#[test]
fn terminal_escapes_in_signed_metadata_are_printed_escaped() {
    let world = Signed::new();
    hsm_notary_suite::hsm_notary(
        world.config.path(),
        &[
            "sign",
            "--key",
            "signer",
            "-m",
            "note=\u{1b}[2J\u{1b}[31mtrust me\rok",
            &world.reference,
        ],
    )
    .unwrap();
    for args in [vec!["verify"], vec!["inspect"]] {
        let mut args = args.clone();
        args.push(&world.reference);
        let out = run(world.config.path(), &args, &[], "");
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        assert!(!all.contains('\u{1b}') && !all.contains('\r'), "{all:?}");
        assert!(all.contains("\\u{1b}[31mtrust me\\rok"), "{all}");
    }
}

#[test]
fn store_names_and_certificate_files_stay_inside_the_trust_store() {
    let config = tempfile::tempdir().unwrap();
    let cert = config.path().join("cert.pem");
    std::fs::write(&cert, "not used").unwrap();
    for store in [".", ".."] {
        let out = run(
            config.path(),
            &[
                "cert",
                "add",
                "--type",
                "ca",
                "--store",
                store,
                &cert.display().to_string(),
            ],
            &[],
            "",
        );
        assert!(!out.status.success());
        assert!(text(&out).contains("named store name"), "{}", text(&out));
    }
    for file in ["../../../etc/passwd", "..", "/etc/passwd"] {
        for command in ["show", "delete"] {
            let mut args = vec!["cert", command, "--type", "ca", "--store", "s"];
            if command == "delete" {
                args.push("-y");
            }
            args.push(file);
            let out = run(config.path(), &args, &[], "");
            assert!(!out.status.success(), "{command} {file}");
            assert!(
                text(&out).contains("not a path"),
                "{command} {file}: {}",
                text(&out)
            );
        }
    }
}

#[test]
fn a_hostile_layout_cannot_make_the_reader_hang_or_loop() {
    let config = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    let root = layout.path();
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    // `oci-layout` a link to /dev/zero: refused, not read forever.
    std::os::unix::fs::symlink("/dev/zero", root.join("oci-layout")).unwrap();
    std::fs::write(
        root.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let reference = format!("{}@{}", root.display(), digest_a());
    let started = Instant::now();
    let out = run(config.path(), &["ls", "--oci-layout", &reference], &[], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(60));

    // Content addressing rules out true cycles; what a hostile layout can do is list the
    // same index over and over (here 5000 times, and again from index.json): it is read
    // once, and the walk is bounded.
    let put = |bytes: &[u8]| {
        let digest = oci::sha256_digest(bytes);
        std::fs::write(
            root.join("blobs/sha256").join(&digest["sha256:".len()..]),
            bytes,
        )
        .unwrap();
        digest
    };
    let b_body = |a: &str, a_size: usize| {
        let entry = json_descriptor(a, a_size);
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            vec![entry; 5000].join(",")
        )
    };
    let a = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let a_digest = put(a);
    let b = b_body(&a_digest, a.len());
    let b_digest = put(b.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
        json_descriptor(&b_digest, b.len()),
        json_descriptor(&a_digest, a.len())
    );
    std::fs::write(root.join("index.json"), index).unwrap();
    let started = Instant::now();
    let out = run(config.path(), &["ls", "--oci-layout", &reference], &[], "");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

fn json_descriptor(digest: &str, size: usize) -> String {
    format!(
        r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{digest}","size":{size}}}"#
    )
}

#[test]
fn credential_helpers_get_no_pin_or_password_from_the_environment() {
    let config = tempfile::tempdir().unwrap();
    let bin = config.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let dump = config.path().join("helper-env.txt");
    hsm_notary_suite::write_executable(
        &bin.join("docker-credential-dump"),
        &format!(
            "#!/bin/sh\nenv > '{}'\necho '{{\"Username\":\"u\",\"Secret\":\"s\"}}'\n",
            dump.display()
        ),
    )
    .unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"credsStore":"dump"}"#,
    )
    .unwrap();
    let registry = FakeRegistry::start(|_, _| Response {
        status: 404,
        headers: vec![],
        body: vec![],
    })
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        config.path(),
        &["ls", &format!("{}/app@{}", registry.host(), digest_a())],
        &[
            ("PATH", &path),
            ("HSM_NOTARY_PKCS11_PIN", "1234"),
            ("NOTATION_PASSWORD", "hunter2"),
        ],
        "",
    );
    let env = std::fs::read_to_string(&dump).expect("the helper ran");
    assert!(!env.contains("1234") && !env.contains("hunter2"), "{env}");
}

/// Quarkslab INFO-8: a `tsa` store holds roots only; an intermediate is refused there (a
/// `ca` store may hold it), by the native library and the component alike.
#[test]
fn a_tsa_store_refuses_an_intermediate_that_a_ca_store_admits() {
    use hsm_notary::engine::{NativeEngine, Verifier};
    use hsm_notary_suite::pki::{Ca, Locations};
    use notary_verifier::{NamedStore, StoreFile, StoreType, TrustStores};
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root(dir.path(), "tsa-root", "CN=TSA Root,O=Hardening").unwrap();
    let intermediate = root
        .issue_ca(
            "tsa-intermediate",
            "CN=TSA Intermediate,O=Hardening",
            Locations::none(),
        )
        .unwrap();
    let stores = |store_type| TrustStores {
        stores: vec![NamedStore {
            store_type,
            name: "t".into(),
            files: vec![StoreFile {
                name: "intermediate.pem".into(),
                content: std::fs::read(intermediate.cert()).unwrap(),
            }],
        }],
    };
    let component = hsm_notary_suite::component_engine();
    for engine in [&NativeEngine as &dyn Verifier, &component] {
        let refused = engine
            .load_trust_store(&stores(StoreType::Tsa), StoreType::Tsa, "t")
            .unwrap()
            .expect_err("an intermediate in a tsa store");
        assert!(
            refused.message.contains("is not a root CA certificate"),
            "{}",
            refused.message
        );
        engine
            .load_trust_store(&stores(StoreType::Ca), StoreType::Ca, "t")
            .unwrap()
            .expect("a ca store may hold an intermediate");
    }
}

/// Quarkslab INFO-3: a TSA URL must be an http or https URL; nothing is pushed otherwise.
#[test]
fn a_tsa_url_that_is_not_http_or_https_stops_the_sign_before_anything_is_pushed() {
    let world = Signed::new();
    let root = tempfile::tempdir().unwrap();
    let ca =
        hsm_notary_suite::pki::Ca::root(root.path(), "tsa", "CN=TSA Root,O=Hardening").unwrap();
    let ca = ca.cert().display().to_string();
    for (url, needle) in [
        ("ftp://127.0.0.1/tsa", "must be http or https"),
        ("file:///etc/passwd", "must be http or https"),
        ("http://", "is not a URL"),
        ("not a url", "is not a URL"),
    ] {
        let out = run(
            world.config.path(),
            &[
                "sign",
                "--key",
                "signer",
                "--timestamp-url",
                url,
                "--timestamp-root-cert",
                &ca,
                &world.reference,
            ],
            &[],
            "",
        );
        assert!(!out.status.success(), "{url}");
        assert!(text(&out).contains(needle), "{url}: {}", text(&out));
    }
    assert!(
        world
            .remote
            .referrers(&world.image.digest)
            .unwrap()
            .is_empty(),
        "nothing was pushed"
    );
}

#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Signing with keys held in a real (software) HSM over PKCS#11 and storing signatures
//! in a real registry (CNCF distribution, which has no referrers API, so the referrers
//! tag schema is used), then `ls`, `inspect` and `verify` through the wasm component.

use std::path::Path;
use std::process::{Command, Output};

use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::{
    DistributionRegistry, FakeRegistry, QueryRewrite, ReferrersRegistry, Response, SOFTHSM_MODULE,
    SoftHsm, Tsa, TsaOptions, free_port, independent_verify, tls_files,
};
use hsm_notary_suite::services::{fetch_envelope, push_image};
use hsm_notary_suite::text;
use hsm_notary_suite::{binary, component_cache};

const PIN: &str = "hsm-notary-test-pin-31415";

struct Env {
    config: tempfile::TempDir,
    hsm: SoftHsm,
    transcript: std::cell::RefCell<String>,
}

impl Env {
    fn new() -> Self {
        Self {
            config: tempfile::tempdir().unwrap(),
            hsm: SoftHsm::new("ci-token", PIN).unwrap(),
            transcript: Default::default(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(binary())
            .args(args)
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("SOFTHSM2_CONF", self.hsm.conf())
            .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
            .env("HSM_NOTARY_PKCS11_PIN", PIN)
            .output()
            .unwrap();
        let text = text(&output);
        self.transcript
            .borrow_mut()
            .push_str(&format!("$ {}\n{text}", args.join(" ")));
        output
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed:\n{}",
            text(&output)
        );
        text(&output)
    }
}

fn write_policy(dir: &Path, scope: &str, level: &str, store: &str) -> String {
    let path = dir.join(format!("policy-{level}.json"));
    std::fs::write(
        &path,
        format!(
            r#"{{"version":"1.0","trustPolicies":[{{"name":"hsm","registryScopes":["{scope}"],"signatureVerification":{{"level":"{level}"}},"trustStores":["ca:{store}"],"trustedIdentities":["x509.subject: C=US, ST=WA, O=Notary"]}}]}}"#
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn hsm_keys_sign_and_registry_round_trips_verify() {
    let env = Env::new();
    let registry = DistributionRegistry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    for (name, key_type, format) in [
        ("ec256", "ec-p256", "jws"),
        ("ec384", "ec-p384", "cose"),
        ("rsa2048", "rsa-2048", "jws"),
        ("rsa3072", "rsa-3072", "cose"),
    ] {
        let uri = env.hsm.uri(name);
        env.ok(&["key", "generate", "--pkcs11", &uri, "--type", key_type]);
        env.ok(&["cert", "generate-test", name, "--pkcs11", &uri]);
        let reference = push_image(&registry, name, &format!("layer of {name}"));
        // With the debug log on: it must not carry the PIN either (checked below).
        let signed = env.ok(&[
            "-d",
            "sign",
            "--key",
            name,
            "--signature-format",
            format,
            "-m",
            "team=release",
            &reference,
        ]);
        assert!(signed.contains("Request: GET"), "{signed}");
        assert!(signed.contains("Successfully signed"), "{signed}");
        let manifest_digest = hsm_notary_suite::pushed_signature_digest(&signed);

        let listed = env.ok(&["ls", &reference]);
        assert!(listed.contains(&manifest_digest), "{listed}");
        let inspected = env.ok(&["inspect", "-o", "json", &reference]);
        let json: serde_json::Value = serde_json::from_str(inspected.trim()).unwrap();
        assert_eq!(
            json["signatures"][0]["userDefinedAttributes"]["team"],
            "release"
        );

        for level in ["strict", "permissive", "audit"] {
            let policy = write_policy(
                work.path(),
                reference.rsplit_once('@').unwrap().0,
                level,
                name,
            );
            let verified = env.ok(&[
                "verify",
                "--trust-policy",
                &policy,
                "-m",
                "team=release",
                &reference,
            ]);
            assert!(
                verified.contains("Successfully verified signature for"),
                "{verified}"
            );
        }

        // Independent implementations agree on the envelope (jwcrypto / cbor2 + cryptography).
        let digest = reference.rsplit_once('@').unwrap().1;
        let (media_type, envelope, envelope_digest) = fetch_envelope(&reference, &manifest_digest);
        let report = independent_verify(&media_type, &envelope, digest).unwrap();
        assert!(report.contains("\"verified\": true"), "{report}");

        // An artifact nobody signed does not verify.
        let unsigned = push_image(&registry, name, &format!("another layer of {name}"));
        let policy = write_policy(
            work.path(),
            reference.rsplit_once('@').unwrap().0,
            "strict",
            name,
        );
        let failed = env.run(&["verify", "--trust-policy", &policy, &unsigned]);
        assert!(!failed.status.success());
        assert!(
            text(&failed).contains("no signature is associated with"),
            "{}",
            text(&failed)
        );

        // A tampered envelope in the registry's storage is caught by its digest.
        let blob = registry.blob_path(&envelope_digest);
        let mut bytes = std::fs::read(&blob).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        std::fs::write(&blob, &bytes).unwrap();
        let tampered = env.run(&["verify", "--trust-policy", &policy, &reference]);
        assert!(!tampered.status.success());
        let out = text(&tampered);
        assert!(
            out.contains("Invalid digest") || out.contains("does not match its digest"),
            "{out}"
        );
        assert!(out.contains(&envelope_digest), "{out}");
    }
    // The PIN appears in no output.
    let transcript = env.transcript.borrow();
    assert!(!transcript.contains(PIN), "the PIN leaked into output");
    assert!(transcript.contains("Pushed the signature to"));
}

#[test]
fn a_wrong_pin_is_refused_without_echoing_it() {
    let env = Env::new();
    let uri = env.hsm.uri("k");
    env.ok(&["key", "generate", "--pkcs11", &uri, "--type", "ec-p256"]);
    let wrong = Command::new(binary())
        .args([
            "key",
            "generate",
            "--pkcs11",
            &env.hsm.uri("k2"),
            "--type",
            "ec-p256",
        ])
        .env("SOFTHSM2_CONF", env.hsm.conf())
        .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
        .env("HSM_NOTARY_PKCS11_PIN", "wrong-pin-27182")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let out = text(&wrong);
    assert!(out.contains("incorrect PIN"), "{out}");
    assert!(!out.contains("wrong-pin-27182"));
    // pin-source=file: works and is not printed either.
    let pin_file = env.hsm.pin_file().unwrap();
    let with_file = format!(
        "{}?pin-source=file:{}",
        env.hsm.uri("k3"),
        pin_file.display()
    );
    let out = Command::new(binary())
        .args([
            "key", "generate", "--pkcs11", &with_file, "--type", "ec-p256",
        ])
        .env("SOFTHSM2_CONF", env.hsm.conf())
        .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
        .env_remove("HSM_NOTARY_PKCS11_PIN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PIN));
}

#[test]
fn several_threads_sign_at_once_through_the_session_pool() {
    let hsm = SoftHsm::new("pool-token", PIN).unwrap();
    // The module reads SOFTHSM2_CONF at initialization; this test process owns it.
    // SAFETY: set before any thread starts or the module is loaded in this process.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", hsm.conf())
    };
    let uri = hsm_notary::pkcs11::Pkcs11Uri::parse(&format!(
        "{}?pin-source=file:{}",
        hsm.uri("pool"),
        hsm.pin_file().unwrap().display()
    ))
    .unwrap();
    let token = hsm_notary::pkcs11::Token::open(&uri, Path::new(SOFTHSM_MODULE)).unwrap();
    token
        .generate(hsm_notary::pkcs11::KeyKind::EcP256, "pool")
        .unwrap();
    let key = std::sync::Arc::new(token.key("pool").unwrap());
    let public = notary_verifier::signature::PublicKey::from_spki(&key.spki).unwrap();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                (0..15)
                    .map(|i| {
                        let message = format!("thread {t} message {i}");
                        (message.clone(), key.sign(message.as_bytes()).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut count = 0;
    for thread in threads {
        for (message, signature) in thread.join().unwrap() {
            public
                .verify(
                    notary_verifier::signature::SignatureAlgorithm::EcdsaSha256,
                    message.as_bytes(),
                    &signature,
                    notary_verifier::signature::PssSalt::EqualsHash,
                )
                .unwrap();
            count += 1;
        }
    }
    assert_eq!(count, 90);
}

fn registry_error(host: &str, args_extra: &[&str]) -> String {
    registry_error_for(host, &format!("sha256:{}", "a".repeat(64)), args_extra)
}

fn registry_error_for(host: &str, digest: &str, args_extra: &[&str]) -> String {
    let config = tempfile::tempdir().unwrap();
    let reference = format!("{host}/app@{digest}");
    let mut args = vec!["ls", reference.as_str()];
    args.extend_from_slice(args_extra);
    let output = Command::new(binary())
        .args(&args)
        .env("HSM_NOTARY_CONFIG", config.path())
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    text(&output)
}

#[test]
fn registry_failures_name_the_registry_and_the_object() {
    let closed = hsm_notary_suite::services::free_port().unwrap();
    let down = registry_error(&format!("localhost:{closed}"), &[]);
    assert!(
        down.contains(&format!("registry localhost:{closed}")) && down.contains("app@sha256:aaaa"),
        "{down}"
    );

    for (status, needle) in [(401u16, "401"), (404, "404"), (500, "500")] {
        let fake = FakeRegistry::start(move |_, _| Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"X","message":"scripted failure"}]}"#.to_vec(),
        })
        .unwrap();
        let out = registry_error(&fake.host(), &[]);
        assert!(
            out.contains(&format!("registry {}", fake.host())),
            "{status}: {out}"
        );
        assert!(out.contains("app@sha256:aaaa"), "{status}: {out}");
        assert!(
            out.to_lowercase().contains(needle)
                || out.contains("scripted failure")
                || out.contains("authorized"),
            "{status}: {out}"
        );
    }

    // A registry that answers with another manifest than the one asked for.
    let fake = FakeRegistry::start(|_, _| Response {
        status: 200,
        headers: vec![("Content-Type".into(), "application/vnd.oci.image.manifest.v1+json".into())],
        body: br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:00","size":0},"layers":[]}"#.to_vec(),
    })
    .unwrap();
    let out = registry_error(&fake.host(), &[]);
    assert!(
        out.contains("Invalid digest") || out.contains("does not match its digest"),
        "{out}"
    );
    assert!(out.contains(&format!("registry {}", fake.host())), "{out}");

    // An oversized manifest (whose digest is the one asked for).
    let big = vec![b' '; 5 * 1024 * 1024];
    let big_digest = hsm_notary::oci::sha256_digest(&big);
    let fake = FakeRegistry::start(move |_, _| Response {
        status: 200,
        headers: vec![(
            "Content-Type".into(),
            "application/vnd.oci.image.manifest.v1+json".into(),
        )],
        body: big.clone(),
    })
    .unwrap();
    let out = registry_error_for(&fake.host(), &big_digest, &[]);
    assert!(out.contains("over the limit of 4194304 bytes"), "{out}");
}

#[test]
fn a_failed_push_says_what_was_pushed_and_leaves_no_index() {
    let env = Env::new();
    env.ok(&["cert", "generate-test", "local", "--default"]);
    let subject = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let digest = hsm_notary::oci::sha256_digest(&subject);
    let index_pushed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = index_pushed.clone();
    let fake = FakeRegistry::start(move |method, path| match (method, path) {
        ("GET", p) if p.contains("/manifests/sha256:") => Response {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            body: subject.clone(),
        },
        ("HEAD", _) => Response {
            status: 404,
            headers: vec![],
            body: vec![],
        },
        ("POST", p) if p.contains("/blobs/uploads/") => Response {
            status: 202,
            headers: vec![("Location".into(), "/v2/app/blobs/uploads/one".into())],
            body: vec![],
        },
        ("PATCH", p) if p.contains("/blobs/uploads/") => Response {
            status: 202,
            headers: vec![
                ("Location".into(), "/v2/app/blobs/uploads/one".into()),
                ("Range".into(), "0-0".into()),
            ],
            body: vec![],
        },
        ("PUT", p) if p.contains("/blobs/uploads/") => Response {
            status: 201,
            headers: vec![("Location".into(), "/v2/app/blobs/sha256:x".into())],
            body: vec![],
        },
        ("PUT", p) if p.contains("/manifests/sha256-") => {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            Response {
                status: 201,
                headers: vec![],
                body: vec![],
            }
        }
        ("PUT", p) if p.contains("/manifests/") => Response {
            status: 500,
            headers: vec![],
            body: br#"{"errors":[{"code":"UNKNOWN","message":"disk full"}]}"#.to_vec(),
        },
        _ => Response {
            status: 404,
            headers: vec![],
            body: vec![],
        },
    })
    .unwrap();
    let reference = format!("{}/app@{digest}", fake.host());
    let out = env.run(&["sign", &reference]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("failed to push signature to registry"),
        "{message}"
    );
    assert!(
        message.contains("pushed before the failure: signature envelope blob sha256:"),
        "{message}"
    );
    assert!(!message.contains("signature manifest sha256:"), "{message}");
    assert!(
        !index_pushed.load(std::sync::atomic::Ordering::SeqCst),
        "a referrers index was pushed"
    );
}

#[test]
fn signing_into_an_oci_layout_then_verifying_offline() {
    let env = Env::new();
    env.ok(&[
        "cert",
        "generate-test",
        "offline",
        "--key-type",
        "ec-p384",
        "--default",
    ]);
    let work = tempfile::tempdir().unwrap();
    let source = hsm_notary_suite::root().join("tests/conformance/cases/no-signature/oci-layout");
    let layout = work.path().join("layout");
    copy_dir(&source, &layout);
    let reference = format!("{}:v1", layout.display());
    let signed = env.ok(&[
        "sign",
        "--oci-layout",
        "--signature-format",
        "cose",
        &reference,
    ]);
    assert!(signed.contains("Successfully signed"), "{signed}");
    let policy = write_policy(work.path(), "local/app", "strict", "offline");
    let verified = env.ok(&[
        "verify",
        "--oci-layout",
        "--scope",
        "local/app",
        "--trust-policy",
        &policy,
        &reference,
    ]);
    assert!(verified.contains("Successfully verified"), "{verified}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Run the CLI with `stdin` piped in (for `--password-stdin`) and extra environment.
fn run_with(env: &Env, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("HSM_NOTARY_CONFIG", env.config.path())
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("SOFTHSM2_CONF", env.hsm.conf())
        .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
        .env("HSM_NOTARY_PKCS11_PIN", PIN)
        .env("DOCKER_CONFIG", env.config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in vars {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_tls_registry_with_basic_auth_takes_credentials_from_stdin_env_and_docker_config() {
    const USER: &str = "notary-ci";
    const PASSWORD: &str = "s3cret-registry-pw";
    let env = Env::new();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(certs.path()).unwrap();
    let registry = DistributionRegistry::start_tls_auth(&cert, &key, USER, PASSWORD).unwrap();
    // Not `localhost:`, so HTTPS is used.
    let host = format!("127.0.0.1:{}", registry.port);
    let ca_arg = ca.display().to_string();

    let options = Options {
        username: Some(USER.to_owned()),
        password: Some(secrecy::SecretString::from(PASSWORD.to_owned())),
        binding: hsm_notary::registry::Binding::Reference,
        ca_files: vec![ca.clone()],
        ..Options::default()
    };
    let artifact = ArtifactRef::parse(&format!("{host}/secure:v1")).unwrap();
    let remote = Registry::connect(&artifact, &options).unwrap();
    let descriptor = remote
        .push_image(br#"{"os":"linux"}"#, &[b"tls layer".as_slice()], "v1")
        .unwrap();
    let reference = format!("{host}/secure@{}", descriptor.digest);

    let uri = env.hsm.uri("tls");
    env.ok(&["key", "generate", "--pkcs11", &uri, "--type", "ec-p256"]);
    env.ok(&["cert", "generate-test", "tls", "--pkcs11", &uri]);

    // --username with --password-stdin, and the registry's CA from --ca-file.
    let signed = run_with(
        &env,
        &[
            "--debug",
            "sign",
            "--key",
            "tls",
            "-u",
            USER,
            "--password-stdin",
            "--ca-file",
            &ca_arg,
            &reference,
        ],
        &format!("{PASSWORD}\n"),
        &[],
    );
    let out = text(&signed);
    assert!(signed.status.success(), "{out}");
    assert!(out.contains("Successfully signed"), "{out}");
    assert!(
        !out.contains(PASSWORD),
        "the registry password leaked: {out}"
    );
    // The debug log names each registry request, never the credentials.
    let basic = notary_verifier::encoding::encode_base64(format!("{USER}:{PASSWORD}").as_bytes());
    assert!(out.contains("Request: GET"), "{out}");
    assert!(!out.contains(&basic), "the Basic credentials leaked: {out}");
    // distribution offers HTTP/2 over TLS (ALPN), and the client takes it.
    assert!(out.contains("HTTP/2.0"), "HTTP/2 was not used: {out}");

    // HSM_NOTARY_USERNAME / HSM_NOTARY_PASSWORD.
    let work = tempfile::tempdir().unwrap();
    let scope = reference.rsplit_once('@').unwrap().0;
    let policy = write_policy(work.path(), scope, "strict", "tls");
    let verified = run_with(
        &env,
        &[
            "verify",
            "--trust-policy",
            &policy,
            "--ca-file",
            &ca_arg,
            &reference,
        ],
        "",
        &[
            ("HSM_NOTARY_USERNAME", USER),
            ("HSM_NOTARY_PASSWORD", PASSWORD),
        ],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("Successfully verified signature for"));

    // docker's config.json `auths` entry for the registry.
    let auth = notary_verifier::encoding::encode_base64(format!("{USER}:{PASSWORD}").as_bytes());
    std::fs::write(
        env.config.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let listed = run_with(&env, &["ls", "--ca-file", &ca_arg, &reference], "", &[]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("application/vnd.cncf.notary.signature"));

    // docker credential helpers, per registry (`credHelpers`) and as the default store
    // (`credsStore`): `docker-credential-<name> get` with the host on stdin.
    let helpers = tempfile::tempdir().unwrap();
    let helper = helpers.path().join("docker-credential-hsmtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\nif [ \"$host\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$host\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for config in [
        format!(r#"{{"credHelpers":{{"{host}":"hsmtest"}}}}"#),
        r#"{"credsStore":"hsmtest"}"#.to_owned(),
    ] {
        std::fs::write(env.config.path().join("config.json"), &config).unwrap();
        let listed = run_with(
            &env,
            &["ls", "--ca-file", &ca_arg, &reference],
            "",
            &[("PATH", &path)],
        );
        assert!(listed.status.success(), "{config}: {}", text(&listed));
        assert!(!text(&listed).contains(PASSWORD));
    }
    // A helper that never answers is given up on, naming it (no hang).
    let hang = helpers.path().join("docker-credential-hang");
    std::fs::write(&hang, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        env.config.path().join("config.json"),
        r#"{"credsStore":"hang"}"#,
    )
    .unwrap();
    let hung = run_with(
        &env,
        &["ls", "--ca-file", &ca_arg, &reference],
        "",
        &[("PATH", &path)],
    );
    assert!(!hung.status.success());
    assert!(
        text(&hung).contains("credential helper docker-credential-hang did not answer"),
        "{}",
        text(&hung)
    );
    std::fs::remove_file(env.config.path().join("config.json")).unwrap();

    // A wrong password is refused and the error names the registry, not the password.
    let refused = run_with(
        &env,
        &[
            "ls",
            "-u",
            USER,
            "--password-stdin",
            "--ca-file",
            &ca_arg,
            &reference,
        ],
        "wrong-password\n",
        &[],
    );
    let out = text(&refused);
    assert!(!refused.status.success());
    assert!(out.contains(&format!("registry {host}")), "{out}");
    assert!(!out.contains("wrong-password"), "{out}");

    // Without the CA, the registry's certificate is not trusted.
    let untrusted = run_with(
        &env,
        &["ls", "-u", USER, "--password-stdin", &reference],
        &format!("{PASSWORD}\n"),
        &[],
    );
    let out = text(&untrusted);
    assert!(!untrusted.status.success());
    assert!(out.contains(&format!("registry {host}")), "{out}");
    assert!(
        out.to_lowercase().contains("certificate") || out.to_lowercase().contains("tls"),
        "{out}"
    );
}

#[test]
fn a_registry_with_the_referrers_api_gets_no_tag_index_unless_forced() {
    let env = Env::new();
    let registry = ReferrersRegistry::start().unwrap();
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let artifact = ArtifactRef::parse(&format!("{host}/native:v1")).unwrap();
    let remote = Registry::connect(&artifact, &Options::default()).unwrap();
    let descriptor = remote
        .push_image(br#"{"os":"linux"}"#, &[b"native layer".as_slice()], "v1")
        .unwrap();
    let reference = format!("{host}/native@{}", descriptor.digest);
    let tag = format!("sha256-{}", descriptor.digest.trim_start_matches("sha256:"));
    let policy = write_policy(work.path(), &format!("{host}/native"), "strict", "ec");

    let mut manifests = Vec::new();
    for (name, key_type, format) in [("ec", "ec-p256", "jws"), ("rsa", "rsa-3072", "cose")] {
        let uri = env.hsm.uri(name);
        env.ok(&["key", "generate", "--pkcs11", &uri, "--type", key_type]);
        env.ok(&["cert", "generate-test", name, "--pkcs11", &uri]);
        let signed = env.ok(&[
            "sign",
            "--key",
            name,
            "--signature-format",
            format,
            &reference,
        ]);
        manifests.push(hsm_notary_suite::pushed_signature_digest(&signed));
    }
    // Found through the referrers API: no fallback tag was pushed.
    assert!(
        remote.manifest(&tag, None).is_err(),
        "the referrers tag {tag} was pushed to a registry with the referrers API"
    );
    let listed = env.ok(&["ls", &reference]);
    for digest in &manifests {
        assert!(listed.contains(digest), "{listed}");
    }
    let verified = env.ok(&["verify", "--trust-policy", &policy, &reference]);
    assert!(
        verified.contains("Successfully verified signature for"),
        "{verified}"
    );
    let inspected = env.ok(&["inspect", "-o", "json", &reference]);
    let json: serde_json::Value = serde_json::from_str(inspected.trim()).unwrap();
    assert_eq!(json["signatures"].as_array().map(Vec::len), Some(2));

    // --force-referrers-tag writes the tag schema index as well.
    let forced = env.ok(&["sign", "--key", "ec", "--force-referrers-tag", &reference]);
    let forced_digest = hsm_notary_suite::pushed_signature_digest(&forced);
    let (bytes, _) = remote.manifest(&tag, None).unwrap();
    let index: hsm_notary::oci::Index = serde_json::from_slice(&bytes).unwrap();
    assert!(
        index.manifests.iter().any(|d| d.digest == forced_digest),
        "{}",
        String::from_utf8_lossy(&bytes)
    );

    // An artifact nobody signed is refused.
    let unsigned = remote
        .push_image(br#"{"os":"linux"}"#, &[b"unsigned layer".as_slice()], "v2")
        .unwrap();
    let failed = env.run(&[
        "verify",
        "--trust-policy",
        &policy,
        &format!("{host}/native@{}", unsigned.digest),
    ]);
    assert!(!failed.status.success());
    assert!(
        text(&failed).contains("no signature is associated with"),
        "{}",
        text(&failed)
    );
}

/// The unsigned image of the `no-signature` case, copied into `dir`; its `PATH:v1`.
fn unsigned_layout(dir: &Path) -> String {
    let source = hsm_notary_suite::root().join("tests/conformance/cases/no-signature/oci-layout");
    let layout = dir.join("layout");
    copy_dir(&source, &layout);
    format!("{}:v1", layout.display())
}

/// A policy for `local/app` trusting `ca:{store}` for signatures and `tsa:tsa-root` for
/// timestamps.
fn timestamp_policy(dir: &Path, store: &str, verify_timestamp: &str) -> String {
    let path = dir.join("policy-timestamp.json");
    let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "stamped",
        "registryScopes": ["local/app"],
        "signatureVerification": {"level": "strict", "verifyTimestamp": verify_timestamp},
        "trustStores": [format!("ca:{store}"), "tsa:tsa-root"],
        "trustedIdentities": ["*"],
    }]});
    std::fs::write(&path, policy.to_string()).unwrap();
    path.display().to_string()
}

fn verify_layout_at(env: &Env, policy: &str, reference: &str, at: Option<&str>) -> Output {
    let mut args = vec![
        "verify",
        "--oci-layout",
        "--scope",
        "local/app",
        "--trust-policy",
        policy,
    ];
    if let Some(at) = at {
        args.extend(["--verify-at", at]);
    }
    args.push(reference);
    env.run(&args)
}

/// RFC 3339 for `days` from now.
fn days_from_now(days: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn a_tsa_timestamp_keeps_an_hsm_signature_valid_after_its_certificate_expires() {
    let tsa = Tsa::start().unwrap();
    let root = tsa.root.display().to_string();
    let env = Env::new();
    let uri = env.hsm.uri("stamped");
    // A one-day signing certificate for a key in the HSM.
    env.ok(&[
        "cert",
        "generate-test",
        "stamped",
        "--pkcs11",
        &uri,
        "--days",
        "1",
        "--default",
    ]);
    env.ok(&["cert", "add", "-t", "tsa", "-s", "tsa-root", &root]);
    let work = tempfile::tempdir().unwrap();
    let policy = timestamp_policy(work.path(), "stamped", "afterCertExpiry");
    let three_days_on = days_from_now(3);

    for format in ["jws", "cose"] {
        let dir = work.path().join(format);
        let reference = unsigned_layout(&dir);
        env.ok(&[
            "sign",
            "--oci-layout",
            "--signature-format",
            format,
            "--timestamp-url",
            &tsa.url,
            "--timestamp-root-cert",
            &root,
            &reference,
        ]);
        // The envelope carries the TSA's token (inspect reads it back).
        let inspected = env.ok(&["inspect", "--oci-layout", "-o", "json", &reference]);
        assert!(
            inspected.contains("\"timestampSignature\"") && inspected.contains("CN=Test TSA"),
            "{format}: {inspected}"
        );

        let now = verify_layout_at(&env, &policy, &reference, None);
        assert!(now.status.success(), "{format}: {}", text(&now));
        // After the signing certificate expired, the timestamp shows it signed in time.
        let later = verify_layout_at(&env, &policy, &reference, Some(&three_days_on));
        assert!(later.status.success(), "{format}: {}", text(&later));
    }

    // The same signature without a timestamp cannot show it was made in time, three days on.
    let dir = work.path().join("unstamped");
    let reference = unsigned_layout(&dir);
    env.ok(&["sign", "--oci-layout", &reference]);
    let now = verify_layout_at(&env, &policy, &reference, None);
    assert!(now.status.success(), "{}", text(&now));
    let later = verify_layout_at(&env, &policy, &reference, Some(&three_days_on));
    assert!(
        !later.status.success(),
        "verified without a timestamp after expiry"
    );
    assert!(
        text(&later).contains("no timestamp countersignature was found"),
        "{}",
        text(&later)
    );
}

#[test]
fn timestamping_that_cannot_be_trusted_stops_signing_before_anything_is_written() {
    let tsa = Tsa::start().unwrap();
    let env = Env::new();
    env.ok(&["cert", "generate-test", "local", "--default"]);
    let work = tempfile::tempdir().unwrap();
    let reference = unsigned_layout(work.path());
    let layout = work.path().join("layout");
    let before = tree(&layout);
    let root = tsa.root.display().to_string();
    let (url, root) = (tsa.url.as_str(), root.as_str());
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign", "--oci-layout"];
        args.extend_from_slice(extra);
        args.push(&reference);
        env.run(&args)
    };
    let refused = |extra: &[&str], expected: &str| {
        let output = sign(extra);
        assert!(!output.status.success(), "{extra:?} signed");
        assert!(
            text(&output).contains(expected),
            "{extra:?}: expected {expected:?} in:\n{}",
            text(&output)
        );
        assert!(tree(&layout) == before, "{extra:?} changed the layout");
    };

    // A root that is not the TSA's: the token does not chain to it.
    let other_root = work.path().join("other-root.pem");
    let ca_dir = env.config.path().join("truststore/x509/ca/local");
    let ca_file = std::fs::read_dir(&ca_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&ca_file, &other_root).unwrap();
    let other_root = other_root.display().to_string();
    refused(
        &["--timestamp-url", url, "--timestamp-root-cert", &other_root],
        "failed to verify the timestamp countersignature",
    );
    // notation's checks of the flags and the root file.
    refused(&["--timestamp-url", url], "missing [timestamp-root-cert]");
    refused(
        &["--timestamp-url", "", "--timestamp-root-cert", root],
        "tsa url cannot be empty",
    );
    let two = work.path().join("two.pem");
    let pem = std::fs::read_to_string(&tsa.root).unwrap();
    std::fs::write(&two, format!("{pem}{pem}")).unwrap();
    let two = two.display().to_string();
    refused(
        &["--timestamp-url", url, "--timestamp-root-cert", &two],
        "found more than one certificates",
    );
    let none = work.path().join("none.pem");
    std::fs::write(&none, "not a certificate").unwrap();
    let none = none.display().to_string();
    refused(
        &["--timestamp-url", url, "--timestamp-root-cert", &none],
        "cannot find any certificate",
    );
    // A TSA that is down, and one that fails.
    let down = format!("http://127.0.0.1:{}/", free_port().unwrap());
    refused(
        &["--timestamp-url", &down, "--timestamp-root-cert", root],
        "cannot reach",
    );
    let failing = FakeRegistry::start(|_, _| Response {
        status: 500,
        headers: Vec::new(),
        body: b"no".to_vec(),
    })
    .unwrap();
    let failing_url = format!("http://127.0.0.1:{}/", failing.port);
    refused(
        &[
            "--timestamp-url",
            &failing_url,
            "--timestamp-root-cert",
            root,
        ],
        "answered 500",
    );
    // A TSA replaying its answer to an earlier request, a refusal, or another type.
    let scripted = |reply: Vec<u8>, content_type: &'static str| {
        FakeRegistry::start(move |_, _| Response {
            status: 200,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: reply.clone(),
        })
        .unwrap()
    };
    let reply = "application/timestamp-reply";
    let replay = scripted(
        tsa.reply_for(b"another signature", "-sha256").unwrap(),
        reply,
    );
    let replay_url = format!("http://127.0.0.1:{}/", replay.port);
    refused(
        &[
            "--timestamp-url",
            &replay_url,
            "--timestamp-root-cert",
            root,
        ],
        "nonce is not the one sent",
    );
    let refusal = scripted(tsa.reply_for(b"x", "-sha1").unwrap(), reply);
    let refusal_url = format!("http://127.0.0.1:{}/", refusal.port);
    refused(
        &[
            "--timestamp-url",
            &refusal_url,
            "--timestamp-root-cert",
            root,
        ],
        "the TSA refused the request: status 2",
    );
    let html = scripted(b"<html>".to_vec(), "text/html");
    let html_url = format!("http://127.0.0.1:{}/", html.port);
    refused(
        &["--timestamp-url", &html_url, "--timestamp-root-cert", root],
        "not application/timestamp-reply",
    );
    // A TSA answering another request than the one sent: another nonce, none, or a
    // token over other bytes that carries this request's nonce.
    for (rewrite, expected) in [
        (QueryRewrite::NonceChanged, "nonce is not the one sent"),
        (QueryRewrite::NonceOmitted, "carries no nonce"),
        (QueryRewrite::ImprintChanged, "mismatched message"),
    ] {
        let other = Tsa::start_with(TsaOptions {
            rewrite,
            ..TsaOptions::default()
        })
        .unwrap();
        let other_root = other.root.display().to_string();
        refused(
            &[
                "--timestamp-url",
                &other.url,
                "--timestamp-root-cert",
                &other_root,
            ],
            expected,
        );
    }
    // And the same layout signs with the real TSA and its root.
    let output = sign(&["--timestamp-url", url, "--timestamp-root-cert", root]);
    assert!(output.status.success(), "{}", text(&output));
}

/// Every file below `dir` with its bytes, in order: to show a failed sign wrote nothing.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

/// The one JWS envelope in the layout at `dir`.
fn layout_jws(dir: &Path) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    for descriptor in index["manifests"].as_array().unwrap() {
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(descriptor["digest"].as_str().unwrap())).unwrap();
        if manifest["artifactType"] == "application/vnd.cncf.notary.signature" {
            let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
            return serde_json::from_slice(&layer).unwrap();
        }
    }
    panic!("no signature in {}", dir.display());
}

#[test]
fn a_tsa_whose_revocation_cannot_be_checked_timestamps_nothing() {
    // The TSA certificate names an OCSP responder nobody answers and no CRL: its status is
    // unknown, and a TSA's revocation is always enforced (CVE-2024-56138).
    let ocsp = format!("http://127.0.0.1:{}/ocsp", free_port().unwrap());
    let tsa = Tsa::start_with(TsaOptions {
        ocsp_url: Some(ocsp.clone()),
        ..TsaOptions::default()
    })
    .unwrap();
    let root = tsa.root.display().to_string();
    let env = Env::new();
    env.ok(&["cert", "generate-test", "local", "--default"]);
    let work = tempfile::tempdir().unwrap();
    let reference = unsigned_layout(work.path());
    let before = tree(&work.path().join("layout"));
    let output = env.run(&[
        "sign",
        "--oci-layout",
        "--ocsp-timeout",
        "500ms",
        "--timestamp-url",
        &tsa.url,
        "--timestamp-root-cert",
        &root,
        &reference,
    ]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("timestamping certificate with subject")
            && said.contains("revocation status is unknown")
            && said.contains(&ocsp),
        "{said}"
    );
    assert_eq!(
        tree(&work.path().join("layout")),
        before,
        "the layout changed"
    );
}

#[test]
fn tsas_with_accuracy_stamp_tokens_openssl_verifies() {
    use base64ct::{Base64, Base64UrlUnpadded, Encoding};
    // Accuracy ±1 s makes the range start before a same-second signing time half the time
    // or more (sign asks again).
    let tsa = Tsa::start_with(TsaOptions {
        accuracy: Some("secs:1"),
        ..TsaOptions::default()
    })
    .unwrap();
    let root = tsa.root.display().to_string();
    let env = Env::new();
    env.ok(&["cert", "generate-test", "local", "--default"]);
    let work = tempfile::tempdir().unwrap();
    let reference = unsigned_layout(work.path());
    let signed = env.ok(&[
        "sign",
        "--oci-layout",
        "--timestamp-url",
        &tsa.url,
        "--timestamp-root-cert",
        &root,
        &reference,
    ]);
    println!("{signed}");
    assert!(signed.contains("Successfully signed"), "{signed}");

    // OpenSSL, independently: the token in the unsigned header is a valid RFC 3161 token
    // over the JWS signature value, from a TSA chaining to the root.
    let jws = layout_jws(&work.path().join("layout"));
    let token = Base64::decode_vec(
        jws["header"]["io.cncf.notary.timestampSignature"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let signature = Base64UrlUnpadded::decode_vec(jws["signature"].as_str().unwrap()).unwrap();
    std::fs::write(work.path().join("token.der"), token).unwrap();
    std::fs::write(work.path().join("signature.bin"), signature).unwrap();
    let verified = Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-token_in",
            "-in",
            "token.der",
            "-data",
            "signature.bin",
        ])
        .args(["-CAfile", &root])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("Verification: OK"),
        "{}",
        text(&verified)
    );
}

#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Verification plugins (`plugin-extensibility.md` §Verification extensibility): a
//! signature whose critical `io.cncf.notary.verificationPlugin` names a plugin is verified
//! by the component with the plugin's `verify-signature` verdicts, which the host asks
//! for. The plugin here is a shell script that records the request it got; the signature
//! is made with the signing library and a `cert generate-test` key, with a critical
//! attribute only the plugin understands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hsm_notary_suite::services::path_str;
use hsm_notary_suite::{assert_fails_with, text};
use hsm_notary_suite::{binary, component_cache};
use notary_verifier::Descriptor;

struct Env {
    config: tempfile::TempDir,
    work: tempfile::TempDir,
    blob: PathBuf,
    root: PathBuf,
}

impl Env {
    fn new() -> Self {
        let config = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let blob = work.path().join("artifact.bin");
        std::fs::write(&blob, b"an artifact that needs a plugin").unwrap();
        let env = Self {
            root: config.path().join("truststore/x509/ca/vp/vp.crt"),
            config,
            work,
            blob,
        };
        let out = env.run(&["cert", "generate-test", "vp"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        env
    }

    fn run(&self, args: &[&str], extra: &[&str]) -> Output {
        Command::new(binary())
            .args(args)
            .args(extra)
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A detached JWS over the blob with `extended` signed attributes.
    fn signature(&self, name: &str, extended: &[(&str, &str, bool)]) -> PathBuf {
        let bytes = std::fs::read(&self.blob).unwrap();
        let target = Descriptor {
            media_type: "application/octet-stream".to_owned(),
            digest: hsm_notary::oci::sha256_digest(&bytes),
            size: bytes.len() as u64,
            ..Descriptor::default()
        };
        let envelope = hsm_notary_suite::envelope_with_attributes(
            &self.config.path().join("localkeys/vp.key"),
            &self.config.path().join("localkeys/vp.crt"),
            &target,
            extended,
        )
        .unwrap();
        let path = self.work.path().join(format!("{name}.jws.sig"));
        std::fs::write(&path, envelope).unwrap();
        path
    }

    /// Install the script plugin `vp` at `version` with `capabilities`, whose
    /// `verify-signature` records its request and then runs `answer` (shell).
    fn plugin(&self, version: &str, capabilities: &str, answer: &str) {
        let body = format!(
            "verify-signature) cat > {}; {answer};;",
            path_str(&self.request_path())
        );
        let dir = self.config.path().join("plugins/vp");
        hsm_notary_suite::script_plugin(&dir, "vp", version, capabilities, &body).unwrap();
    }

    fn request_path(&self) -> PathBuf {
        self.work.path().join("request.json")
    }

    fn verify(&self, signature: &Path, engine: &str, extra: &[&str]) -> Output {
        let (blob, signature, root) = (
            path_str(&self.blob),
            path_str(signature),
            path_str(&self.root),
        );
        self.run(
            &[
                "blob",
                "verify",
                "--engine",
                engine,
                "--signature",
                &signature,
                "--certificate",
                &root,
                "--trusted-identity",
                "*",
                &blob,
            ],
            extra,
        )
    }
}

const BOTH: &str =
    "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\",\"SIGNATURE_VERIFIER.REVOCATION_CHECK\"";

fn answer(results: &str, processed: &str) -> String {
    format!(
        "printf '%s' '{{\"verificationResults\":{{{results}}},\"processedAttributes\":{processed}}}'"
    )
}

const PLUGIN_ATTRIBUTES: [(&str, &str, bool); 3] = [
    ("io.cncf.notary.verificationPlugin", "vp", true),
    ("io.cncf.notary.verificationPluginMinVersion", "1.0.0", true),
    ("io.example.claim", "build-42", true),
];

#[test]
fn a_signature_naming_a_plugin_verifies_with_the_plugin_s_verdicts() {
    let env = Env::new();
    let signature = env.signature("plugin", &PLUGIN_ATTRIBUTES);
    env.plugin(
        "1.2.0",
        BOTH,
        &answer(
            r#""SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":true},"SIGNATURE_VERIFIER.REVOCATION_CHECK":{"success":true}"#,
            r#"["io.example.claim"]"#,
        ),
    );
    for engine in ["wasm", "native"] {
        let out = env.verify(&signature, engine, &["--plugin-config", "region=eu"]);
        assert!(out.status.success(), "{engine}: {}", text(&out));
        assert!(
            text(&out).contains("Successfully verified"),
            "{}",
            text(&out)
        );
    }
    // The request the component wrote, as the spec's verify-signature request.
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.request_path()).unwrap()).unwrap();
    assert_eq!(request["contractVersion"], "1.0");
    let critical = &request["signature"]["criticalAttributes"];
    assert_eq!(critical["verificationPlugin"], "vp");
    assert_eq!(critical["verificationPluginMinVersion"], "1.0.0");
    assert_eq!(critical["signingScheme"], "notary.x509");
    assert_eq!(critical["expiry"], "0001-01-01T00:00:00Z");
    assert_eq!(
        critical["extendedAttributes"],
        serde_json::json!({"io.example.claim": "build-42"})
    );
    assert_eq!(
        request["signature"]["unprocessedAttributes"],
        serde_json::json!(["io.example.claim"])
    );
    assert_eq!(
        request["signature"]["certificateChain"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        request["trustPolicy"]["trustedIdentities"],
        serde_json::json!(["*"])
    );
    assert_eq!(
        request["trustPolicy"]["signatureVerification"],
        serde_json::json!([
            "SIGNATURE_VERIFIER.TRUSTED_IDENTITY",
            "SIGNATURE_VERIFIER.REVOCATION_CHECK"
        ])
    );
    assert_eq!(request["pluginConfig"], serde_json::json!({"region": "eu"}));
}

#[test]
fn plugin_verdicts_failures_and_misbehaviour_fail_the_signature_clearly() {
    let env = Env::new();
    let signature = env.signature("plugin", &PLUGIN_ATTRIBUTES);
    let ok_revocation = r#""SIGNATURE_VERIFIER.REVOCATION_CHECK":{"success":true}"#;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "identity refused",
            BOTH,
            answer(
                &format!(r#""SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{{"success":false,"reason":"not this signer"}},{ok_revocation}"#),
                r#"["io.example.claim"]"#,
            ),
            r#"trusted identify verification by plugin "vp" failed with reason "not this signer""#,
        ),
        (
            "revoked",
            BOTH,
            answer(
                r#""SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":true},"SIGNATURE_VERIFIER.REVOCATION_CHECK":{"success":false,"reason":"key disabled"}"#,
                r#"["io.example.claim"]"#,
            ),
            r#"revocation check by verification plugin "vp" failed with reason "key disabled""#,
        ),
        (
            "result missing",
            BOTH,
            answer(ok_revocation, r#"["io.example.claim"]"#),
            r#"verification plugin "vp" failed to verify "SIGNATURE_VERIFIER.TRUSTED_IDENTITY""#,
        ),
        (
            "attribute not processed",
            BOTH,
            answer(
                r#""SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":true},"SIGNATURE_VERIFIER.REVOCATION_CHECK":{"success":true}"#,
                "[]",
            ),
            r#"did not process the critical attribute "io.example.claim""#,
        ),
        ("too old", "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\"", "exit 1".to_owned(), "found plugin vp with version 0.9.0 but signature verification needs plugin version greater than or equal to 1.0.0"),
        ("no verifier", "\"SIGNATURE_GENERATOR.RAW\"", "exit 1".to_owned(), "with signature verification capabilities"),
        ("hangs", BOTH, "sleep 30".to_owned(), "timed out after 1s"),
        ("garbage", BOTH, "printf 'not json'".to_owned(), "malformed response"),
        ("100 MiB", BOTH, "head -c 104857600 /dev/zero".to_owned(), "wrote more than 67108864 bytes on stdout"),
        (
            "error response",
            BOTH,
            "printf '%s' '{\"errorCode\":\"ACCESS_DENIED\",\"errorMessage\":\"no access to the key service\"}' >&2; exit 1".to_owned(),
            "no access to the key service",
        ),
    ];
    for (name, capabilities, answer, message) in cases {
        let version = if name == "too old" { "0.9.0" } else { "1.2.0" };
        env.plugin(version, capabilities, &answer);
        let started = std::time::Instant::now();
        let out = env.verify(&signature, "wasm", &["--plugin-timeout", "1s"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(text(&out).contains(message), "{name}: {}", text(&out));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name}: {:?}",
            started.elapsed()
        );
    }
    // Not installed.
    std::fs::remove_dir_all(env.config.path().join("plugins/vp")).unwrap();
    let out = env.verify(&signature, "native", &[]);
    assert_fails_with(&out, r#"error while locating the verification plugin "vp""#);
}

#[test]
fn critical_attributes_nobody_processes_still_fail_integrity() {
    let env = Env::new();
    let signature = env.signature("unknown", &[("io.example.claim", "build-42", true)]);
    let out = env.verify(&signature, "wasm", &[]);
    assert_fails_with(
        &out,
        r#"critical attribute "io.example.claim" that this verifier does not understand"#,
    );
    // A non-critical one is ignored, as the spec says.
    let signature = env.signature("optional", &[("io.example.claim", "build-42", false)]);
    let out = env.verify(&signature, "wasm", &[]);
    assert!(out.status.success(), "{}", text(&out));
}

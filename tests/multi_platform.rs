#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Multi-platform images (notation#1229, ratify#2157): `sign --recursive` signs an image
//! index and each platform manifest it lists; `verify --platform` verifies the index's
//! signature and that platform's manifest's. Against CNCF distribution.

use std::process::{Command, Output, Stdio};

use hsm_notary::oci::{Descriptor, Platform};
use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::DistributionRegistry;
use hsm_notary_suite::{assert_fails_with, text};
use hsm_notary_suite::{binary, component_cache, hsm_notary};

struct Env {
    config: tempfile::TempDir,
    registry: DistributionRegistry,
}

impl Env {
    fn new() -> Self {
        let env = Self {
            config: tempfile::tempdir().unwrap(),
            registry: DistributionRegistry::start().unwrap(),
        };
        hsm_notary_suite::signer_config(env.config.path(), "all").unwrap();
        env
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(binary())
            .args(args)
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        hsm_notary(self.config.path(), args).unwrap()
    }

    /// An index of an amd64 and an arm64/v8 image in `repository`; `(index, children)`.
    fn index(&self, repository: &str) -> (String, Vec<String>) {
        let reference = format!("{}/{repository}:v1", self.registry.host());
        let remote = Registry::connect(
            &ArtifactRef::parse(&reference).unwrap(),
            &Options::default(),
        )
        .unwrap();
        let mut children = Vec::new();
        let mut refs = Vec::new();
        for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
            let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
            let image = remote
                .push_image(
                    config.as_bytes(),
                    &[format!("{repository} layer for {arch}").as_bytes()],
                    arch,
                )
                .unwrap();
            refs.push(format!(
                "{}/{repository}@{}",
                self.registry.host(),
                image.digest
            ));
            children.push(Descriptor {
                platform: Some(Platform {
                    architecture: arch.to_owned(),
                    os: "linux".to_owned(),
                    variant: variant.map(str::to_owned),
                }),
                ..image
            });
        }
        let index = remote.push_index(children, "v1").unwrap();
        (
            format!("{}/{repository}@{}", self.registry.host(), index.digest),
            refs,
        )
    }

    /// The index descriptor and the registry client of `reference`'s repository.
    fn descriptor(&self, reference: &str) -> (Descriptor, Registry) {
        let artifact = ArtifactRef::parse(reference).unwrap();
        let remote = Registry::connect(&artifact, &Options::default()).unwrap();
        let digest = reference.rsplit_once('@').unwrap().1;
        let (_, descriptor) = remote.manifest(digest, None).unwrap();
        (descriptor, remote)
    }

    /// Run the binary with `env` set and `stdin` piped in, as containerd and Ratify do.
    fn run_as(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
        use std::io::Write as _;
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .env_remove("HSM_NOTARY_PLATFORM")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// containerd's bindir verifier call for the image `reference` (a digest reference).
    fn containerd(&self, reference: &str, env: &[(&str, &str)]) -> Output {
        let (descriptor, _) = self.descriptor(reference);
        let name = reference.rsplit_once('@').unwrap().0;
        self.run_as(
            &[
                "-name",
                name,
                "-digest",
                &descriptor.digest,
                "-stdin-media-type",
                "application/vnd.oci.descriptor.v1+json",
            ],
            env,
            &serde_json::to_string(&descriptor).unwrap(),
        )
    }

    /// Ratify's verifier call for the one signature of `reference`, with `config.platform`.
    fn ratify(&self, reference: &str, platform: Option<&str>) -> serde_json::Value {
        let (descriptor, remote) = self.descriptor(reference);
        let signatures = remote.referrers(&descriptor.digest).unwrap();
        assert_eq!(signatures.len(), 1, "{signatures:?}");
        let mut config = serde_json::json!({
            "name": "hsm-notary",
            "type": "hsm-notary",
            "configDir": self.config.path(),
        });
        if let Some(platform) = platform {
            config["platform"] = platform.into();
        }
        let input = serde_json::json!({
            "config": config,
            "storeConfig": {"version": "1.0.0", "store": {"name": "oras", "useHttp": true}},
            "referenceDesc": signatures[0],
        });
        let out = self.run_as(
            &[],
            &[
                ("RATIFY_VERIFIER_COMMAND", "VERIFY"),
                ("RATIFY_VERIFIER_SUBJECT", reference),
                ("RATIFY_VERIFIER_VERSION", "1.0.0"),
            ],
            &input.to_string(),
        );
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[test]
fn sign_recursive_signs_the_index_and_every_platform_and_verify_platform_checks_both() {
    let env = Env::new();
    let (index, children) = env.index("multi");
    let signed = env.ok(&["sign", "--recursive", "--key", "signer", &index]);
    assert_eq!(signed.matches("Successfully signed").count(), 3, "{signed}");
    for child in &children {
        assert!(env.ok(&["verify", child]).contains("Successfully verified"));
    }
    let verified = env.ok(&["verify", "--platform", "linux/arm64", &index]);
    assert_eq!(
        verified.matches("Successfully verified").count(),
        2,
        "{verified}"
    );
    assert!(verified.contains(&children[1]), "{verified}");
    assert!(
        env.ok(&["verify", "--platform", "linux/arm64/v8", &index])
            .contains(&children[1])
    );
    let missing = env.run(&["verify", "--platform", "linux/s390x", &index]);
    assert_fails_with(&missing, "has no manifest for platform linux/s390x");
    let not_index = env.run(&["verify", "--platform", "linux/amd64", &children[0]]);
    assert_fails_with(&not_index, "is not an image index");
}

#[test]
fn an_index_signed_alone_does_not_vouch_for_its_platforms() {
    let env = Env::new();
    let (index, children) = env.index("alone");
    env.ok(&["sign", "--key", "signer", &index]);
    assert!(
        env.ok(&["verify", &index])
            .contains("Successfully verified")
    );
    let out = env.run(&["verify", "--platform", "linux/amd64", &index]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&children[0]), "{}", text(&out));
    assert!(
        text(&out).contains("no signature is associated"),
        "{}",
        text(&out)
    );
    // --recursive on an image that is not an index signs just it, and says so.
    let single = env.run(&["sign", "--recursive", "--key", "signer", &children[1]]);
    assert!(single.status.success(), "{}", text(&single));
    assert!(text(&single).contains("is not an image index; only it is signed"));
}

#[test]
fn an_oci_layout_index_is_signed_recursively_and_verified_per_platform() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let children = hsm_notary_suite::layout_with_index(dir.path());
    let path = dir.path().display().to_string();
    let tagged = format!("{path}:v1");
    let signed = env.ok(&[
        "sign",
        "--oci-layout",
        "--recursive",
        "--key",
        "signer",
        &tagged,
    ]);
    assert_eq!(signed.matches("Successfully signed").count(), 3, "{signed}");
    // All three signatures went into index.json in one replacement.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
    let verify = |extra: &[&str], reference: &str| {
        let mut args = vec!["verify", "--oci-layout", "--scope", "local/multi"];
        args.extend_from_slice(extra);
        args.push(reference);
        env.run(&args)
    };
    for child in &children {
        let out = verify(&[], &format!("{path}@{child}"));
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = verify(&["--platform", "linux/arm64"], &tagged);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("Successfully verified").count(),
        2,
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(&children[1]), "{}", text(&out));
    let missing = verify(&["--platform", "linux/s390x"], &tagged);
    assert_fails_with(&missing, "has no manifest for platform linux/s390x");
}

#[test]
fn containerd_allows_an_index_only_when_the_nodes_platform_manifest_verifies() {
    let env = Env::new();
    let (index, children) = env.index("node");
    env.ok(&["sign", "--key", "signer", &index]);
    // The index is signed, the manifest this node would run is not: denied.
    let amd64 = [("HSM_NOTARY_PLATFORM", "linux/amd64")];
    let out = env.containerd(&index, &amd64);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("its linux/amd64 manifest"), "{said}");
    assert!(said.contains(&children[0]), "{said}");
    let out = env.containerd(&index, &[("HSM_NOTARY_PLATFORM", "linux/s390x")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no manifest for platform linux/s390x"),
        "{}",
        text(&out)
    );
    // Each platform signed: allowed, naming the platform manifest it checked.
    env.ok(&["sign", "--recursive", "--key", "signer", &index]);
    let out = env.containerd(&index, &amd64);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&children[0]),
        "{}",
        text(&out)
    );
    // Without HSM_NOTARY_PLATFORM the node's own platform is the one checked.
    let out = env.containerd(&index, &[]);
    if hsm_notary::oci::Platform::here() == "linux/amd64" {
        assert!(out.status.success(), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&children[0]));
    }
    // A platform manifest named directly is verified as any image is.
    assert!(env.containerd(&children[1], &amd64).status.success());
}

#[test]
fn ratify_with_a_platform_passes_an_index_signature_only_with_that_platform_verified() {
    let env = Env::new();
    let (index, children) = env.index("ratify");
    env.ok(&["sign", "--key", "signer", &index]);
    // Without config.platform, Ratify's one signature of the index is what is judged.
    let alone = env.ratify(&index, None);
    assert_eq!(alone["isSuccess"], true, "{alone}");
    assert!(alone["extensions"].get("platform").is_none(), "{alone}");
    let arm = env.ratify(&index, Some("linux/arm64"));
    assert_eq!(arm["isSuccess"], false, "{arm}");
    let message = arm["message"].as_str().unwrap();
    assert!(message.contains("its linux/arm64 manifest"), "{message}");
    assert!(message.contains(&children[1]), "{message}");
    assert_eq!(arm["extensions"]["platform"]["verified"], false, "{arm}");
    // Signing the arm64 manifest (and not amd64) is what makes linux/arm64 pass.
    env.ok(&["sign", "--key", "signer", &children[1]]);
    let arm = env.ratify(&index, Some("linux/arm64"));
    assert_eq!(arm["isSuccess"], true, "{arm}");
    assert_eq!(
        arm["extensions"]["platform"]["reference"],
        children[1].as_str(),
        "{arm}"
    );
    let amd = env.ratify(&index, Some("linux/amd64"));
    assert_eq!(amd["isSuccess"], false, "{amd}");
    let none = env.ratify(&index, Some("linux/s390x"));
    assert_eq!(none["isSuccess"], false, "{none}");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("no manifest for platform linux/s390x"),
        "{none}"
    );
}

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

/// An OCI layout holding an index of an amd64 and an arm64/v8 image, tagged `v1`; the
/// children's digests.
fn layout_with_index(root: &std::path::Path) -> Vec<String> {
    use sha2::Digest;
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut children = Vec::new();
    let mut entries = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let (config, config_size) =
            put(format!(r#"{{"architecture":"{arch}","os":"linux"}}"#).as_bytes());
        let (layer, layer_size) = put(format!("layer for {arch}").as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        });
        let (digest, size) = put(manifest.to_string().as_bytes());
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size, "platform": platform,
        }));
        children.push(digest);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let (digest, size) = put(index.to_string().as_bytes());
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        root.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }]})
        .to_string(),
    )
    .unwrap();
    children
}

#[test]
fn an_oci_layout_index_is_signed_recursively_and_verified_per_platform() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let children = layout_with_index(dir.path());
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

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

#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! `signature delete` against real registries: CNCF distribution (no referrers API, so
//! the referrers tag index is kept in step), distribution with deletes disabled (nothing
//! changes, and the error says so), and ferro-oci-server (the referrers API).

use std::process::{Command, Output, Stdio};

use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::{DistributionRegistry, ReferrersRegistry, push_image};
use hsm_notary_suite::{assert_fails_with, text};
use hsm_notary_suite::{binary, component_cache, hsm_notary, pushed_signature_digest};

struct Env {
    config: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Self {
            config: tempfile::tempdir().unwrap(),
        };
        hsm_notary_suite::signer_config(env.config.path(), "all").unwrap();
        env
    }

    fn ok(&self, args: &[&str]) -> String {
        hsm_notary(self.config.path(), args).unwrap()
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

    /// Sign with user metadata `n={n}` (deterministic ECDSA in one second would otherwise
    /// make the same signature twice).
    fn sign(&self, reference: &str, n: u32) -> String {
        let metadata = format!("n={n}");
        pushed_signature_digest(&self.ok(&["sign", "--key", "signer", "-m", &metadata, reference]))
    }
}

/// The digests the referrers tag index of `reference` lists; `None` when there is none.
fn tag_index(reference: &str) -> Option<Vec<String>> {
    let artifact = ArtifactRef::parse(reference).unwrap();
    let remote = Registry::connect(&artifact, &Options::default()).unwrap();
    let digest = reference.rsplit_once('@').unwrap().1;
    let (bytes, _) = remote
        .manifest(&hsm_notary::oci::referrers_tag(digest), None)
        .ok()?;
    let index: hsm_notary::oci::Index = serde_json::from_slice(&bytes).unwrap();
    Some(index.manifests.into_iter().map(|d| d.digest).collect())
}

fn repository(reference: &str) -> &str {
    reference.rsplit_once('@').unwrap().0
}

#[test]
fn deleting_signatures_keeps_the_referrers_tag_index_in_step() {
    let env = Env::new();
    let registry = DistributionRegistry::start().unwrap();
    let image = push_image(&registry, "app", "an image signed twice");
    let first = env.sign(&image, 1);
    let second = env.sign(&image, 2);
    assert_eq!(tag_index(&image).unwrap(), [first.clone(), second.clone()]);

    // Not a signature, a tag, a declined prompt: nothing is deleted.
    let not_signature = env.run(&["signature", "delete", "-y", &image]);
    assert_eq!(not_signature.status.code(), Some(1));
    assert!(
        text(&not_signature)
            .contains("is not a Notary Project signature manifest: nothing was deleted"),
        "{}",
        text(&not_signature)
    );
    let tagged = env.run(&[
        "signature",
        "delete",
        "-y",
        &format!("{}:v1", repository(&image)),
    ]);
    assert_fails_with(&tagged, "needs a digest");
    let first_ref = format!("{}@{first}", repository(&image));
    let declined = env.run(&["signature", "delete", &first_ref]);
    assert!(declined.status.success(), "{}", text(&declined));
    assert!(text(&declined).contains("Are you sure you want to delete signature"));
    assert_eq!(tag_index(&image).unwrap().len(), 2);

    let deleted = env.ok(&["signature", "delete", "-y", &first_ref]);
    assert!(
        deleted.contains(&format!(
            "Successfully deleted signature {first} of {image}"
        )),
        "{deleted}"
    );
    assert_eq!(tag_index(&image).unwrap(), std::slice::from_ref(&second));
    let listed = env.ok(&["ls", &image]);
    assert!(
        listed.contains(&second) && !listed.contains(&first),
        "{listed}"
    );
    // The other signature still verifies.
    assert!(
        env.ok(&["verify", &image])
            .contains("Successfully verified")
    );

    // --all: the rest, and the index, which would be left empty, goes too.
    let all = env.ok(&["signature", "delete", "--all", "-y", &image]);
    assert!(
        all.contains(&format!("Successfully deleted signature {second}")),
        "{all}"
    );
    assert_eq!(tag_index(&image), None);
    let none = env.ok(&["signature", "delete", "--all", "-y", &image]);
    assert!(none.contains("has no associated signatures"), "{none}");
    let verify = env.run(&["verify", &image]);
    assert_fails_with(&verify, "no signature is associated");
}

#[test]
fn a_registry_that_refuses_delete_changes_nothing_and_says_so() {
    let env = Env::new();
    let registry = DistributionRegistry::start_without_delete().unwrap();
    let image = push_image(&registry, "app", "an image on a registry without deletes");
    let signature = env.sign(&image, 1);
    let before = tag_index(&image).unwrap();
    let out = env.run(&[
        "signature",
        "delete",
        "-y",
        &format!("{}@{signature}", repository(&image)),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing was deleted"), "{}", text(&out));
    assert!(text(&out).contains("405"), "{}", text(&out));
    assert_eq!(tag_index(&image).unwrap(), before);
    assert!(
        env.ok(&["verify", &image])
            .contains("Successfully verified")
    );
}

#[test]
fn with_the_referrers_api_the_manifest_alone_is_deleted() {
    let env = Env::new();
    let registry = ReferrersRegistry::start().unwrap();
    let reference = format!("{}/app:v1", registry.host());
    let artifact = ArtifactRef::parse(&reference).unwrap();
    let remote = Registry::connect(&artifact, &Options::default()).unwrap();
    let descriptor = remote
        .push_image(br#"{"os":"linux"}"#, &[b"referrers layer".as_slice()], "v1")
        .unwrap();
    let image = format!("{}/app@{}", registry.host(), descriptor.digest);
    let signature = env.sign(&image, 1);
    assert_eq!(
        tag_index(&image),
        None,
        "no tag index with the referrers API"
    );
    let deleted = env.ok(&[
        "signature",
        "delete",
        "-y",
        &format!("{}@{signature}", repository(&image)),
    ]);
    assert!(
        deleted.contains("Successfully deleted signature"),
        "{deleted}"
    );
    let listed = env.ok(&["ls", &image]);
    assert!(!listed.contains(&signature), "{listed}");
}

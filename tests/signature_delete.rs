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

#[test]
fn signatures_are_deleted_from_an_oci_layout_with_index_json_replaced_once() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let children = hsm_notary_suite::layout_with_index(dir.path());
    let path = dir.path().display().to_string();
    let tagged = format!("{path}:v1");
    env.ok(&[
        "sign",
        "--oci-layout",
        "--recursive",
        "--key",
        "signer",
        &tagged,
    ]);
    let amd64 = format!("{path}@{}", children[0]);
    env.ok(&[
        "sign",
        "--oci-layout",
        "--key",
        "signer",
        "-m",
        "n=2",
        &amd64,
    ]);
    let index = || -> Vec<String> {
        let index: hsm_notary::oci::Index =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        index.manifests.into_iter().map(|d| d.digest).collect()
    };
    let listed = index();
    assert_eq!(listed.len(), 5, "{listed:?}");
    let blob = |digest: &str| {
        dir.path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let signatures_of = |reference: &str| -> Vec<String> {
        let listed = env.ok(&["ls", "--oci-layout", reference]);
        listed
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter(|w| w.starts_with("sha256:"))
            .map(str::to_owned)
            .collect()
    };
    let amd64_signatures = signatures_of(&amd64);
    assert_eq!(amd64_signatures.len(), 2, "{amd64_signatures:?}");

    // An artifact that is not a signature, and a tag, are refused; nothing changes.
    let not_signature = env.run(&["signature", "delete", "--oci-layout", "-y", &amd64]);
    assert_fails_with(&not_signature, "is not a Notary Project signature manifest");
    let by_tag = env.run(&["signature", "delete", "--oci-layout", "-y", &tagged]);
    assert_fails_with(&by_tag, "needs a digest");
    assert_eq!(index(), listed);

    // One signature: its entry and its blobs go, the other signature still verifies.
    let gone = &amd64_signatures[0];
    let manifest: hsm_notary::oci::Manifest =
        serde_json::from_slice(&std::fs::read(blob(gone)).unwrap()).unwrap();
    let envelope = manifest.layers[0].digest.clone();
    let config = manifest.config.digest.clone();
    let deleted = env.ok(&[
        "signature",
        "delete",
        "--oci-layout",
        "-y",
        &format!("{path}@{gone}"),
    ]);
    assert!(
        deleted.contains(&format!("Successfully deleted signature {gone} of {amd64}")),
        "{deleted}"
    );
    assert!(!index().contains(gone));
    assert_eq!(index().len(), 4);
    assert!(!blob(gone).exists() && !blob(&envelope).exists());
    assert!(blob(&config).exists(), "the shared empty config stays");
    assert_eq!(signatures_of(&amd64), [amd64_signatures[1].clone()]);
    let verify = |reference: &str| {
        env.run(&[
            "verify",
            "--oci-layout",
            "--scope",
            "local/multi",
            reference,
        ])
    };
    assert!(verify(&amd64).status.success());

    // --all removes every signature of the artifact, and only those.
    let all = env.ok(&["signature", "delete", "--oci-layout", "--all", "-y", &amd64]);
    assert!(all.contains("Successfully deleted signature"), "{all}");
    assert!(signatures_of(&amd64).is_empty());
    assert_fails_with(&verify(&amd64), "no signature is associated");
    assert!(verify(&format!("{path}@{}", children[1])).status.success());
    assert!(verify(&tagged).status.success());
    let none = env.ok(&["signature", "delete", "--oci-layout", "--all", "-y", &amd64]);
    assert!(none.contains("has no associated signatures"), "{none}");

    // An archive of a layout is read-only here.
    let tar = dir.path().with_extension("tar");
    let status = Command::new("tar")
        .args(["-cf", &tar.display().to_string(), "-C", &path, "."])
        .status()
        .unwrap();
    assert!(status.success());
    let archive = format!("{}@{}", tar.display(), children[1]);
    let refused = env.run(&[
        "signature",
        "delete",
        "--oci-layout",
        "--all",
        "-y",
        &archive,
    ]);
    assert_fails_with(&refused, "not from an archive");
    std::fs::remove_file(&tar).unwrap();
}

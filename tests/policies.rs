//! Every trust policy shipped in `policies/` is valid, and selects as documented.

use hsm_notary::engine::Verifier;
use hsm_notary_suite::{component_engine, root};
use notary_verifier::{DocumentKind, Level, PolicyInput, Selector};

fn policy(name: &str, kind: DocumentKind) -> PolicyInput {
    PolicyInput {
        kind,
        content: std::fs::read(root().join("policies").join(name)).expect("policy file"),
    }
}

#[test]
fn shipped_oci_policy_is_valid_and_selects_by_scope() {
    let engine = component_engine();
    let oci = policy("trustpolicy.oci.json", DocumentKind::Oci);
    let statements = engine.check_policy(&oci).expect("no trap").expect("valid");
    assert_eq!(statements.len(), 4);
    let select = |reference: &str| {
        engine
            .select_policy(&oci, &Selector::OciReference(reference.to_owned()))
            .expect("no trap")
            .expect("selected")
    };
    let prod = select("registry.example.com/prod/app@sha256:0f");
    assert_eq!(
        (prod.statement.as_str(), prod.level),
        ("production-images", Level::Strict)
    );
    let skip = select("registry.example.com/base/scratch@sha256:0f");
    assert_eq!(skip.level, Level::Skip);
    let other = select("docker.io/library/alpine@sha256:0f");
    assert_eq!(
        (other.statement.as_str(), other.level),
        ("everything-else", Level::Audit)
    );
}

#[test]
fn shipped_blob_policy_is_valid_and_global() {
    let engine = component_engine();
    let blob = policy("trustpolicy.blob.json", DocumentKind::Blob);
    assert!(engine.check_policy(&blob).expect("no trap").is_ok());
    let global = engine
        .select_policy(&blob, &Selector::BlobPolicyName(None))
        .expect("no trap")
        .expect("global");
    assert_eq!(global.statement, "release-artifacts");
}

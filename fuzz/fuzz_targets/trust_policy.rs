//! Trust policy documents, as both languages: `trustpolicy::Document::parse` and
//! `Document::validate` (also through `trustpolicy::load`, `check_policy`,
//! `select_policy`), statement selection (`ValidatedDocument::select`) with selectors
//! built from the document's own scopes and names, `Statement::stores_of_type`, and scope
//! validation of every scope written (`trustpolicy::scope::validate_scope_format`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::trustpolicy::scope::{select_index, validate_scope_format};
use notary_verifier::trustpolicy::{Document, DocumentKind};
use notary_verifier::{PolicyInput, Selector, StoreType, check_policy, select_policy};

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fuzz_target!(|data: &[u8]| {
    for kind in [DocumentKind::Oci, DocumentKind::Blob] {
        let Ok(document) = Document::parse(kind, data) else {
            continue;
        };
        // Selectors the document itself suggests, and a few fixed ones.
        let mut selectors = vec![
            Selector::OciReference(hsm_notary_fuzz::REFERENCE.to_owned()),
            Selector::OciReference(format!("registry.example.com/team/app@{DIGEST}")),
            Selector::OciReference("no-digest.example/repo".to_owned()),
            Selector::BlobPolicyName(None),
        ];
        for statement in &document.statements {
            selectors.push(Selector::BlobPolicyName(Some(statement.name.clone())));
            for scope in &statement.registry_scopes {
                let _ = validate_scope_format(scope);
                selectors.push(Selector::OciReference(format!("{scope}@{DIGEST}")));
            }
            for store_type in StoreType::ALL {
                let _ = statement.stores_of_type(store_type);
            }
        }
        // Selection also runs over statements that did not validate.
        for selector in &selectors {
            let _ = select_index(kind, document.statements.iter(), selector);
        }
        if let Ok(validated) = document.validate() {
            for selector in &selectors {
                if let Ok(policy) = validated.select(selector) {
                    let _ = policy.name();
                    let _ = notary_verifier::AppliedPolicy::from(policy);
                }
            }
        }
        let input = PolicyInput {
            kind,
            content: data.to_vec(),
        };
        let _ = check_policy(&input);
        let _ = select_policy(&input, &selectors[0]);
    }
});

//! Artifact references as text. Always: the registry-scope grammar
//! (`trustpolicy::scope::validate_scope_format`) and statement selection by reference and
//! by blob policy name (`ValidatedDocument::select`) over fixed documents. With
//! `--features host`: `hsm_notary::registry::ArtifactRef::parse` / `parse_image` and the
//! OCI layout reference `hsm_notary::layout::parse_reference`, with the property that a
//! parsed reference, written back, parses to the same parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::Selector;
use notary_verifier::trustpolicy::scope::validate_scope_format;

use hsm_notary_fuzz::{SELECTION_BLOB, SELECTION_OCI};

fuzz_target!(|data: &[u8]| {
    let Some(text) = hsm_notary_fuzz::text(data) else {
        return;
    };
    let _ = validate_scope_format(text);
    let _ = SELECTION_OCI.select(&Selector::OciReference(text.to_owned()));
    let _ = SELECTION_BLOB.select(&Selector::BlobPolicyName(Some(text.to_owned())));
    #[cfg(feature = "host")]
    host(text);
});

#[cfg(feature = "host")]
fn host(text: &str) {
    use hsm_notary::registry::ArtifactRef;

    if let Ok(reference) = ArtifactRef::parse(text) {
        let name = reference.name();
        let written = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => format!("{name}@{digest}"),
            (None, Some(tag)) => format!("{name}:{tag}"),
            (None, None) => panic!("ArtifactRef::parse({text:?}) gave neither tag nor digest"),
        };
        match ArtifactRef::parse(&written) {
            Ok(again) => assert!(
                again.host == reference.host
                    && again.repository == reference.repository
                    && again.digest == reference.digest
                    && again.tag == reference.tag,
                "{text:?} -> {written:?} -> {again:?}: not the same reference"
            ),
            Err(e) => panic!("{text:?} parsed, but its parts {written:?} do not: {e}"),
        }
        let _ = hsm_notary::oci::referrers_tag(reference.digest.as_deref().unwrap_or_default());
    }
    let _ = ArtifactRef::parse_image(text);
    let _ = hsm_notary::layout::parse_reference(text);
    let _ = hsm_notary::oci::is_digest(text);
}

//! What an OCI image layout's reader parses, without a directory: `index.json` as
//! `Layout::open` decodes it (`serde_json` into `hsm_notary::oci::Index`), the
//! `oci-layout` marker's JSON, and the layout reference grammar
//! (`hsm_notary::layout::parse_reference`, `PATH@DIGEST` / `PATH:TAG`) on the input as
//! text and on `dir@<digest>` / `dir:<ref.name>` of every descriptor the index lists.
//! `Layout::open`, `resolve`, `signatures` and the breadth-first manifest walk work on a
//! directory on disk, with private readers, and are not reached here.
//! Needs `--features host`.
#![no_main]

use hsm_notary::layout::{LayoutRef, parse_reference};
use hsm_notary::oci::{self, Index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(text) = hsm_notary_fuzz::text(data) {
        let _ = parse_reference(text);
    }
    // The marker file: `imageLayoutVersion` must be a string.
    if let Ok(marker) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = marker.get("imageLayoutVersion").and_then(|v| v.as_str());
    }
    let Ok(index) = serde_json::from_slice::<Index>(data) else {
        return;
    };
    for d in &index.manifests {
        let _ = oci::is_digest(&d.digest);
        let by_digest = parse_reference(&format!("dir@{}", d.digest));
        if oci::is_digest(&d.digest) {
            // A well-formed digest has no `@`: it must come back unchanged.
            match by_digest {
                Ok((_, LayoutRef::Digest(digest))) => {
                    assert_eq!(digest, d.digest, "parse_reference changed the digest")
                }
                other => panic!(
                    "dir@{} does not parse as a digest reference: {other:?}",
                    d.digest
                ),
            }
        }
        if let Some(tag) = d.annotations.get(oci::ANNOTATION_REF_NAME) {
            let _ = parse_reference(&format!("dir:{tag}"));
        }
        if let Some(platform) = &d.platform {
            let _ = platform.matches("linux/amd64");
        }
    }
});

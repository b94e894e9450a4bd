//! OCI image manifests and indexes as the host reads them from a registry or a layout
//! (`host/src/oci.rs`: `Manifest`, `Index` through serde_json, as `registry.rs`,
//! `layout.rs` and `commands/verify.rs` do), the signature-manifest rule
//! (`Manifest::is_notary_signature`), `oci::manifest_media_type`, `oci::is_digest` and
//! `oci::check_content` of the input against every descriptor it lists. Property: a
//! decoded manifest / index, serialized again, decodes to the same value.
//! The host's `oci` module is compiled in as it is (`#[path]`), so this target needs no
//! host build.
#![no_main]

#[allow(dead_code, missing_docs)]
#[path = "../../host/src/oci.rs"]
mod oci;

use oci::{Descriptor, Index, Manifest};
use libfuzzer_sys::fuzz_target;

fn descriptor(d: &Descriptor, data: &[u8]) {
    let _ = oci::is_digest(&d.digest);
    let _ = oci::referrers_tag(&d.digest);
    let _ = oci::check_content(d, data, "fuzz");
    if let Some(platform) = &d.platform {
        let _ = platform.matches("linux/amd64");
        let _ = platform.matches("linux/arm64/v8");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = oci::manifest_media_type(data);
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(data) {
        let _ = manifest.is_notary_signature();
        descriptor(&manifest.config, data);
        manifest.layers.iter().for_each(|d| descriptor(d, data));
        if let Some(subject) = &manifest.subject {
            descriptor(subject, data);
        }
        let json = serde_json::to_vec(&manifest).expect("a Manifest serializes");
        let again: Manifest =
            serde_json::from_slice(&json).expect("a serialized Manifest deserializes");
        assert_eq!(again, manifest, "Manifest does not round-trip through JSON");
    }
    if let Ok(index) = serde_json::from_slice::<Index>(data) {
        index.manifests.iter().for_each(|d| descriptor(d, data));
        let json = serde_json::to_vec(&index).expect("an Index serializes");
        let again: Index = serde_json::from_slice(&json).expect("a serialized Index deserializes");
        assert_eq!(again, index, "Index does not round-trip through JSON");
    }
});

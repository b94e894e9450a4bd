//! Push a small sample image (one layer) to a registry and print its reference by digest:
//! `cargo run -p hsm-notary --example push_sample -- localhost:5000/demo:v1`.

use hsm_notary::registry::{ArtifactRef, Options, Registry};

fn main() -> anyhow::Result<()> {
    let reference = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: push_sample REGISTRY/REPOSITORY:TAG"))?;
    let artifact = ArtifactRef::parse(&reference)?;
    let registry = Registry::connect(&artifact, &Options::default())?;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = format!("hsm-notary sample layer for {reference}\n");
    let descriptor = registry.push_image(
        config,
        &[layer.as_bytes()],
        artifact.tag.as_deref().unwrap_or("latest"),
    )?;
    println!("{}@{}", artifact.name(), descriptor.digest);
    Ok(())
}

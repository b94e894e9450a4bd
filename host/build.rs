//! Builds the verifier component (`verifier-component/component`, target
//! `wasm32-unknown-unknown`, linked by `wasm-component-ld`) so the host can embed it.
//!
//! The nested cargo uses its own target directory (no lock contention with the outer
//! build) and inherits the outer build's job server, so it respects `-j`. Set
//! `HSM_NOTARY_COMPONENT=/path/to/component.wasm` to embed a prebuilt component instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HSM_NOTARY_COMPONENT");
    let wasm = match env::var_os("HSM_NOTARY_COMPONENT") {
        Some(path) => PathBuf::from(path),
        None => build_component(),
    };
    println!("cargo:rerun-if-changed={}", wasm.display());
    println!(
        "cargo:rustc-env=HSM_NOTARY_COMPONENT_WASM={}",
        wasm.display()
    );
}

fn build_component() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    for watched in [
        "verifier-component/src",
        "verifier-component/component/src",
        "wit",
        "Cargo.lock",
    ] {
        watch(&workspace.join(watched));
    }
    let target_dir = workspace.join("target").join("component");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "notary-verifier-component",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&target_dir);
    // Settings meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("failed to run cargo to build the verifier component");
    assert!(
        status.success(),
        "building the verifier component failed (is the wasm32-unknown-unknown target installed? run scripts/setup.sh)"
    );
    target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join("notary_verifier_component.wasm")
}

fn watch(path: &Path) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                watch(&entry.path());
            }
        }
    } else {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

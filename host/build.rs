//! Builds the verifier component (`verifier-component/component`, target
//! `wasm32-unknown-unknown`, linked by `wasm-component-ld`) so the host can embed it, the
//! wasi:http build (`verifier-component/http`, world `verifier-http`): an adapter that
//! imports the verifier, composed here with that same verifier component, byte for byte,
//! and the optional host-crypto build (`verifier-component/component-host-crypto`, world
//! `verifier-component-host-crypto`), embedded as it is and compiled only when chosen.
//!
//! The nested cargo uses its own target directory (no lock contention with the outer
//! build) and inherits the outer build's job server, so it respects `-j`. Set
//! `HSM_NOTARY_COMPONENT=/path/to/component.wasm` (and `HSM_NOTARY_HTTP_ADAPTER` for the
//! adapter, `HSM_NOTARY_HOST_CRYPTO_COMPONENT` for the host-crypto build) to embed
//! prebuilt components instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/engine/wasmtime_config.rs"]
mod wasmtime_config;

fn main() {
    println!("cargo:rerun-if-env-changed=HSM_NOTARY_COMPONENT");
    println!("cargo:rerun-if-env-changed=HSM_NOTARY_HTTP_ADAPTER");
    println!("cargo:rerun-if-env-changed=HSM_NOTARY_HOST_CRYPTO_COMPONENT");
    let prebuilt = (
        env::var_os("HSM_NOTARY_COMPONENT").map(PathBuf::from),
        env::var_os("HSM_NOTARY_HTTP_ADAPTER").map(PathBuf::from),
        env::var_os("HSM_NOTARY_HOST_CRYPTO_COMPONENT").map(PathBuf::from),
    );
    let (wasm, adapter, host_crypto) = match prebuilt {
        (Some(wasm), Some(adapter), Some(host_crypto)) => (wasm, adapter, host_crypto),
        (wasm, adapter, host_crypto) => {
            let built = build_components();
            (
                wasm.unwrap_or(built.0),
                adapter.unwrap_or(built.1),
                host_crypto.unwrap_or(built.2),
            )
        }
    };
    for path in [&wasm, &adapter, &host_crypto] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let http = out_dir.join("verifier-http.wasm");
    compose_http(&wasm, &adapter, &http);
    let precompiled = out_dir.join("verifier.cwasm");
    precompile(&wasm, &precompiled);
    println!(
        "cargo:rustc-env=HSM_NOTARY_COMPONENT_CWASM={}",
        precompiled.display()
    );
    println!(
        "cargo:rustc-env=HSM_NOTARY_COMPONENT_WASM={}",
        wasm.display()
    );
    println!(
        "cargo:rustc-env=HSM_NOTARY_HTTP_COMPONENT_WASM={}",
        http.display()
    );
    println!(
        "cargo:rustc-env=HSM_NOTARY_HOST_CRYPTO_COMPONENT_WASM={}",
        host_crypto.display()
    );
}

/// Compile the component to native code for the target now, so the binary embeds it: no
/// compile at start-up, and no compiled code read from a cache directory someone else may
/// write (wasmtime's deserialize trusts its input as code). The target's baseline CPU
/// features only, so the binary runs on any machine of its architecture. Where this
/// wasmtime cannot compile for the target (a cross build), an empty file is embedded and
/// the component is compiled in memory at start-up instead.
fn precompile(wasm: &Path, out: &Path) {
    let target = env::var("TARGET").expect("set by cargo");
    let bytes = (|| -> Result<Vec<u8>, String> {
        let mut config = wasmtime_config::config();
        config.target(&target).map_err(|e| e.to_string())?;
        let engine = wasmtime::Engine::new(&config).map_err(|e| e.to_string())?;
        let component = std::fs::read(wasm).map_err(|e| e.to_string())?;
        engine
            .precompile_component(&component)
            .map_err(|e| e.to_string())
    })()
    .unwrap_or_else(|e| {
        println!("cargo:warning=not precompiling the verifier component for {target}: {e}");
        Vec::new()
    });
    std::fs::write(out, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// Plugs the verifier component's exports into the adapter's imports (what `wac plug`
/// does). The verifier is embedded as a nested component, unchanged, so its digest can be
/// checked inside the composition.
fn compose_http(verifier: &Path, adapter: &Path, out: &Path) {
    use wac_graph::types::Package;
    use wac_graph::{CompositionGraph, EncodeOptions};

    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    };
    let mut graph = CompositionGraph::new();
    let socket = Package::from_bytes(
        "notary:verifier-http",
        None,
        read(adapter),
        graph.types_mut(),
    )
    .expect("the wasi:http adapter is a component");
    let socket = graph
        .register_package(socket)
        .expect("registering the adapter");
    let plug = Package::from_bytes("notary:verifier", None, read(verifier), graph.types_mut())
        .expect("the verifier is a component");
    let plug = graph
        .register_package(plug)
        .expect("registering the verifier");
    wac_graph::plug(&mut graph, vec![plug], socket)
        .expect("plugging the verifier into the adapter");
    let bytes = graph
        .encode(EncodeOptions::default())
        .expect("encoding the composed wasi:http component");
    std::fs::write(out, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

fn build_components() -> (PathBuf, PathBuf, PathBuf) {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf();
    for watched in [
        "verifier-component/src",
        "verifier-component/component/src",
        "verifier-component/component-host-crypto/src",
        "verifier-component/http/src",
        "wit",
        "Cargo.lock",
        // The wasm target's flags and the crates' manifests change the component too.
        ".cargo/config.toml",
        "Cargo.toml",
        "verifier-component/Cargo.toml",
        "verifier-component/component/Cargo.toml",
        "verifier-component/component-host-crypto/Cargo.toml",
        "verifier-component/http/Cargo.toml",
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
            "-p",
            "notary-verifier-http",
            "-p",
            "notary-verifier-component-host-crypto",
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
    let out = target_dir.join("wasm32-unknown-unknown").join("release");
    (
        out.join("notary_verifier_component.wasm"),
        out.join("notary_verifier_http.wasm"),
        out.join("notary_verifier_component_host_crypto.wasm"),
    )
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

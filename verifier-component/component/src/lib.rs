//! The verifier as a WebAssembly component (`wit/verifier.wit`, world
//! `verifier-component`, which imports nothing).
//!
//! This crate is only the export glue (`glue.rs`, shared with the host-crypto build).
//! The generated ABI code in `bindings` is the only `unsafe` in the component; the
//! verifier crate itself forbids it.

#![deny(unsafe_code)]

#[allow(unsafe_code, missing_docs, reason = "wit-bindgen generated ABI glue")]
mod bindings {
    wit_bindgen::generate!({
        world: "verifier-component",
        path: "../../wit",
    });
}

mod glue;

/// Called first by every export: this build brings all its arithmetic, nothing to set up.
fn enter() {}

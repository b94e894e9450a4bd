//! The JSON bundle the wasi:http endpoint reads (`verifier-component/http/src/bundle.rs`,
//! `bundle::parse`): strict fields, duplicate keys, base64 / PEM certificates, envelopes
//! and revocation evidence, RFC 3339 times, the policy as raw JSON or as a string.
//!
//! `notary-verifier-http` is a cdylib built for wasm32 (its `bindings` import the verifier
//! component), so it cannot be a dependency. Its `bundle.rs` is compiled into this target
//! unchanged, with the WIT types it builds generated here natively from the same
//! `wit/` world (`verifier-http`); the generated import stubs are never called: only the
//! decoder runs, not a verification.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(
    unsafe_code,
    missing_docs,
    dead_code,
    unused,
    clippy::all,
    reason = "wit-bindgen generated ABI glue"
)]
mod bindings {
    wit_bindgen::generate!({
        world: "verifier-http",
        path: "../wit",
        generate_all,
    });
}

#[allow(dead_code, reason = "only bundle::parse is called")]
#[path = "../../verifier-component/http/src/bundle.rs"]
mod bundle;

use bindings::notary::verifier::types as wit;

fn now() -> wit::Instant {
    wit::Instant {
        seconds: hsm_notary_fuzz::VERIFICATION_TIME,
        nanoseconds: 0,
        utc_offset_seconds: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = bundle::parse(data, now) {
        let _ = request.signatures.len();
        let _ = request.trust_stores.len();
        let _ = request.revocation_evidence.len();
    }
});

#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The component's world imports nothing: no filesystem, sockets, clocks or randomness —
//! nothing at all — so the same `.wasm` runs in wasmtime, Node and browsers.

use std::time::{Duration, Instant};

use hsm_notary::engine::Verifier;
use hsm_notary::engine::component::COMPONENT;

#[test]
fn the_component_imports_nothing() {
    let engine = hsm_notary_suite::component_engine();
    assert_eq!(engine.imports(), Vec::<String>::new());
    let exports = engine.exports();
    assert!(
        exports.contains(&"notary:verifier/verifier@0.1.0".to_owned()),
        "{exports:?}"
    );
    assert!(
        exports.contains(&"notary:verifier/types@0.1.0".to_owned()),
        "{exports:?}"
    );
}

#[test]
fn the_binary_embeds_a_component_not_a_core_module() {
    // Component binaries carry layer 1 in the preamble (`\0asm` 0d 00 01 00).
    assert_eq!(&COMPONENT[..4], b"\0asm");
    assert_eq!(&COMPONENT[4..8], &[0x0d, 0x00, 0x01, 0x00]);
}

/// The corpus's valid JWS case, as a request.
fn valid_jws_request() -> notary_verifier::verify::VerifyRequest {
    let case = hsm_notary_suite::cases()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "sig-x509-valid-strict")
        .expect("the valid JWS case");
    hsm_notary_suite::request_of(&case).unwrap()
}

#[test]
fn a_call_over_its_time_limit_is_stopped_with_a_clear_error() {
    let request = valid_jws_request();
    let mut engine = hsm_notary_suite::component_engine();
    // The default limit lets a real verification through...
    let outcome = engine.verify(&request).unwrap();
    assert_eq!(outcome.decision, notary_verifier::Decision::Verified);
    // ...and a call past its limit is interrupted, not left running.
    engine.set_time_limit(Duration::ZERO);
    let error = engine.verify(&request).unwrap_err().to_string();
    assert!(error.contains("over its time limit of 0ns"), "{error}");
    // Each call gets its own deadline: the engine is usable again.
    engine.set_time_limit(hsm_notary::engine::component::DEFAULT_TIME_LIMIT);
    assert_eq!(
        engine.verify(&request).unwrap().decision,
        notary_verifier::Decision::Verified
    );
}

#[test]
fn a_request_deadline_bounds_every_call_of_that_request_only() {
    let request = valid_jws_request();
    let engine = hsm_notary_suite::component_engine();
    // A deadline ahead lets the verification through.
    let ahead = engine.until(Instant::now() + Duration::from_secs(60));
    assert_eq!(
        ahead.verify(&request).unwrap().decision,
        notary_verifier::Decision::Verified
    );
    // Once the request's deadline has passed, its next call is stopped, whatever the
    // per-call limit still allows...
    let passed = engine.until(Instant::now());
    let error = passed.verify(&request).unwrap_err().to_string();
    assert!(error.contains("its request's deadline passed"), "{error}");
    // ...and the engine it came from (another request) is not affected.
    assert_eq!(
        engine.verify(&request).unwrap().decision,
        notary_verifier::Decision::Verified
    );
}

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

/// Instances kept across calls decide exactly as fresh ones: over the whole conformance
/// corpus (real notation signatures, good and bad), with a fresh instance per call, then
/// through kept instances in order and in reverse (every chain then met again, its
/// certificate signatures answered from the memo the instance kept).
#[test]
fn kept_instances_decide_the_corpus_exactly_as_fresh_ones() {
    let corpus = hsm_notary_suite::cases().unwrap();
    let kept = hsm_notary_suite::component_engine();
    let fresh = kept.fresh_instances();
    let observe = |engine: &dyn Verifier, order: Vec<usize>| {
        let mut seen: Vec<(usize, String)> = order
            .into_iter()
            .map(|i| {
                let run = hsm_notary_suite::run(&corpus[i], engine)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", corpus[i].name));
                (i, run.observation)
            })
            .collect();
        seen.sort();
        seen
    };
    let all: Vec<usize> = (0..corpus.len()).collect();
    let computed = observe(&fresh, all.clone());
    assert_eq!(
        fresh.warm_instances(),
        0,
        "a fresh-instance engine kept one"
    );
    let cold = observe(&kept, all.clone());
    assert_eq!(
        kept.warm_instances(),
        1,
        "one caller at a time needs one instance"
    );
    let warm = observe(&kept, all.into_iter().rev().collect());
    for ((i, f), ((_, c), (_, w))) in computed.iter().zip(cold.iter().zip(&warm)) {
        assert_eq!(
            f, c,
            "{}: a kept instance differs from a fresh one",
            corpus[*i].name
        );
        assert_eq!(
            f, w,
            "{}: a kept instance differs (second pass)",
            corpus[*i].name
        );
    }
}

#[test]
fn an_instance_whose_call_failed_is_not_kept() {
    let request = valid_jws_request();
    let engine = hsm_notary_suite::component_engine();
    engine.verify(&request).unwrap();
    assert_eq!(engine.warm_instances(), 1);
    // The kept instance is interrupted mid-call: it goes, whatever state it was left in.
    let mut stopped = engine.clone();
    stopped.set_time_limit(Duration::ZERO);
    assert!(stopped.verify(&request).is_err());
    assert_eq!(
        engine.warm_instances(),
        0,
        "an interrupted instance was kept"
    );
    // The next call gets a new instance and decides as before.
    assert_eq!(
        engine.verify(&request).unwrap().decision,
        notary_verifier::Decision::Verified
    );
    assert_eq!(engine.warm_instances(), 1);
}

#[test]
fn an_instance_that_grew_large_is_not_kept() {
    let mut request = valid_jws_request();
    let engine = hsm_notary_suite::component_engine();
    // 48 MiB of envelope is copied into the instance's memory and refused there; the
    // memory it grew to is given back with the instance.
    request.signatures[0].envelope = vec![b'{'; 48 << 20];
    let outcome = engine.verify(&request).unwrap();
    assert_ne!(outcome.decision, notary_verifier::Decision::Verified);
    assert_eq!(engine.warm_instances(), 0, "a 48 MiB instance was kept");
}

//! Bad input gets a clear error that names what is wrong, never a panic or a hang — in
//! the native library and in the wasm component alike.

use hsm_notary::engine::{NativeEngine, Verifier};
use hsm_notary_suite::{cases, component_engine, request_of};
use notary_verifier::{
    Decision, DocumentKind, FailureKind, PolicyInput, SignatureInput, VerifyRequest,
};

fn valid_request() -> VerifyRequest {
    let case = cases()
        .expect("corpus")
        .into_iter()
        .find(|c| c.name == "sig-x509-valid-strict")
        .expect("case");
    request_of(&case).expect("request")
}

fn engines() -> Vec<(&'static str, Box<dyn Verifier>)> {
    vec![
        ("native", Box::new(NativeEngine)),
        ("wasm", Box::new(component_engine())),
    ]
}

fn with_envelope(media_type: &str, envelope: Vec<u8>) -> VerifyRequest {
    let mut request = valid_request();
    request.signatures = vec![SignatureInput {
        media_type: media_type.to_owned(),
        envelope,
        manifest_digest: None,
        prior_failure: None,
    }];
    request
}

/// Run on both engines; the failure must be an integrity failure whose message contains
/// `needle`.
fn assert_integrity_failure(request: &VerifyRequest, needle: &str) {
    for (name, engine) in engines() {
        let outcome = engine.verify(request).expect("no trap");
        assert_eq!(outcome.decision, Decision::Failed, "{name}");
        let signature = &outcome.signatures[0];
        let failure = signature.failure.as_ref().expect("signature failure");
        assert_eq!(failure.kind, FailureKind::Integrity, "{name}: {failure:?}");
        assert!(
            failure.message.contains(needle),
            "{name}: {:?} does not mention {needle:?}",
            failure.message
        );
    }
}

#[test]
fn the_valid_envelope_verifies() {
    for (name, engine) in engines() {
        let outcome = engine.verify(&valid_request()).expect("no trap");
        assert_eq!(outcome.decision, Decision::Verified, "{name}: {outcome:?}");
    }
}

#[test]
fn truncated_envelopes_are_integrity_failures() {
    let envelope = valid_request().signatures[0].envelope.clone();
    for cut in [0, 1, 10, envelope.len() / 2, envelope.len() - 1] {
        let request = with_envelope("application/jose+json", envelope[..cut].to_vec());
        let needle = if cut == 0 {
            "unexpected end of JSON input"
        } else {
            "unable to parse the digital signature"
        };
        assert_integrity_failure(&request, needle);
    }
}

#[test]
fn unknown_media_types_are_named() {
    let envelope = valid_request().signatures[0].envelope.clone();
    assert_integrity_failure(
        &with_envelope("application/pkcs7-signature", envelope.clone()),
        "media type \"application/pkcs7-signature\" is not supported",
    );
    // A JWS given as COSE is not COSE.
    assert_integrity_failure(
        &with_envelope("application/cose", envelope),
        "invalid COSE_Sign1_Tagged object",
    );
}

#[test]
fn garbage_json_cbor_and_der_are_rejected_clearly() {
    assert_integrity_failure(
        &with_envelope("application/jose+json", b"{\"payload\": 5}".to_vec()),
        "cannot unmarshal number",
    );
    assert_integrity_failure(
        &with_envelope("application/jose+json", b"[[[[[[[[".to_vec()),
        "unable to parse",
    );
    let deep = "[".repeat(100_000);
    assert_integrity_failure(
        &with_envelope("application/jose+json", deep.into_bytes()),
        "unable to parse",
    );
    assert_integrity_failure(
        &with_envelope("application/cose", vec![0xd2, 0x84, 0xff, 0x00]),
        "cbor",
    );
    let mut deep_cbor = vec![0xd2, 0x84];
    deep_cbor.extend(std::iter::repeat_n(0x81, 100_000));
    assert_integrity_failure(&with_envelope("application/cose", deep_cbor), "cbor");
    // A JWS whose certificate is garbage DER.
    let jws =
        br#"{"payload":"e30","protected":"e30","header":{"x5c":["MIIBAA=="]},"signature":"AA"}"#;
    assert_integrity_failure(
        &with_envelope("application/jose+json", jws.to_vec()),
        "malformed leaf certificate",
    );
}

#[test]
fn mutated_envelopes_never_panic() {
    let envelope = valid_request().signatures[0].envelope.clone();
    let native = NativeEngine;
    let wasm = component_engine();
    // Deterministic pseudo-random byte flips across the whole envelope.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..300 {
        let mut mutated = envelope.clone();
        for _ in 0..(1 + round % 4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % mutated.len();
            mutated[at] = (state >> 32) as u8;
        }
        let request = with_envelope("application/jose+json", mutated);
        let n = native.verify(&request).expect("native");
        if round % 10 == 0 {
            let w = wasm.verify(&request).expect("wasm does not trap");
            assert_eq!(n, w, "round {round}: engines disagree");
        }
        assert!(n.decision == Decision::Failed || n.decision == Decision::Verified);
    }
}

#[test]
fn huge_certificate_chains_are_refused_with_the_limit() {
    let envelope: serde_json::Value =
        serde_json::from_slice(&valid_request().signatures[0].envelope).expect("json");
    let mut huge = envelope.clone();
    let cert = envelope["header"]["x5c"][0].clone();
    huge["header"]["x5c"] = serde_json::Value::Array(vec![cert; 5000]);
    let request = with_envelope(
        "application/jose+json",
        serde_json::to_vec(&huge).expect("json"),
    );
    assert_integrity_failure(&request, "more than the limit of 16");
}

#[test]
fn oversized_envelopes_are_refused_before_parsing() {
    let request = with_envelope("application/jose+json", vec![b' '; 33 * 1024 * 1024]);
    assert_integrity_failure(&request, "exceeds the limit");
}

#[test]
fn policies_with_wrong_types_are_malformed() {
    for text in [
        r#"{"version": 1, "trustPolicies": []}"#,
        r#"{"version": "1.0", "trustPolicies": {"name": "x"}}"#,
        r#"{"version": "1.0", "trustPolicies": [{"name": 5}]}"#,
        r#"{"version": "1.0", "trustPolicies": [{"name": "a", "registryScopes": "*"}]}"#,
        r#"{"version": "1.0", "trustPolicies": [{"name": "a", "signatureVerification": {"level": "strict", "override": {"expiry": 1}}}]}"#,
        r#"["not", "an", "object"]"#,
        "{ truncated",
    ] {
        let policy = PolicyInput {
            kind: DocumentKind::Oci,
            content: text.as_bytes().to_vec(),
        };
        for (name, engine) in engines() {
            let failure = engine
                .check_policy(&policy)
                .expect("no trap")
                .expect_err(text);
            assert_eq!(failure.kind, FailureKind::TrustPolicy, "{name}");
            assert!(
                failure.message.starts_with("malformed trust policy"),
                "{name}: {}",
                failure.message
            );
        }
    }
}

#[test]
fn trust_store_garbage_names_the_file() {
    let mut request = valid_request();
    for store in &mut request.trust_stores.stores {
        for file in &mut store.files {
            file.content =
                b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec();
        }
    }
    for (name, engine) in engines() {
        let outcome = engine.verify(&request).expect("no trap");
        let failure = outcome.failure.expect("failure");
        assert_eq!(failure.kind, FailureKind::TrustStore, "{name}");
        assert!(
            failure
                .message
                .contains("failed to read the trusted certificate"),
            "{name}: {}",
            failure.message
        );
    }
}

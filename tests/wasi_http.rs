#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The wasi:http build of the verifier (world `verifier-http`), served as `wasmtime serve`
//! serves a component: wasmtime-wasi-http behind a hyper server on 127.0.0.1, a fresh
//! instance per request, and `curl` as the client POSTing JSON bundles.
//!
//! The component under test is the one `hsm-notary component --world http` writes out;
//! it must nest the CLI's verifier component byte for byte, and must decide every
//! conformance case the way the native library does.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hsm_notary::engine::component::{COMPONENT, HTTP_COMPONENT};
use hsm_notary_suite::wasi_http::{HttpComponent, bundle_of};
use hsm_notary_suite::{Case, binary, cases, request_of};
use notary_verifier::verify::Target;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The component as the CLI writes it out.
fn exported_component() -> Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("verifier-http.wasm");
            let status = Command::new(binary())
                .args(["component", "--world", "http", "-o"])
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success(), "hsm-notary component --world http failed");
            std::fs::read(&path).unwrap()
        })
        .clone()
}

/// One server for the whole test binary: compiling the component is the slow part.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        HttpComponent::new(&exported_component())
            .unwrap()
            .serve_in_background()
            .unwrap()
    })
}

/// A response: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    /// Bytes of the body as sent.
    length: usize,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request made with curl, as any client would.
fn call(method: &str, path: &str, body: &[u8]) -> Reply {
    call_with(method, path, body, &[])
}

/// `call` with extra curl arguments.
fn call_with(method: &str, path: &str, body: &[u8], extra: &[&str]) -> Reply {
    let url = format!("http://{}{path}", server());
    let mut child = Command::new("curl")
        .args(["-sS", "-D", "-", "-X", method, "--max-time", "60"])
        .args(extra)
        .args([
            "-H",
            "content-type: application/json",
            // No `Expect: 100-continue`: one response per request to parse.
            "-H",
            "Expect:",
            "--data-binary",
            "@-",
        ])
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "curl {method} {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    Reply {
        status: status.parse().unwrap(),
        headers: lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
            .collect(),
        length: body.len(),
        body: serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    }
}

/// A bundle's bytes with `policy` spliced in as raw JSON text (which may repeat keys, as
/// a `Value` cannot).
fn with_raw_policy(bundle: &Value, raw: &str) -> Vec<u8> {
    let mut bundle = bundle.clone();
    bundle.as_object_mut().unwrap().remove("policy");
    let rest = serde_json::to_string(&bundle).unwrap();
    format!("{{\"policy\": {raw}, {}", &rest[1..]).into_bytes()
}

/// The endpoint decided as the native library did.
fn assert_native_decision(reply: &Reply, native: &notary_verifier::Outcome) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["decision"],
        json!(native.decision),
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body["failure"]["kind"],
        json!(native.failure.as_ref().map(|f| f.kind)),
        "{}",
        reply.body
    );
}

fn post(bundle: &Value) -> Reply {
    call("POST", "/verify", &serde_json::to_vec(bundle).unwrap())
}

fn verify_cases() -> Vec<Case> {
    cases()
        .unwrap()
        .into_iter()
        .filter(|c| {
            matches!(
                c.kind(),
                "verify" | "verify-blob" | "verify-authentic-timestamp"
            )
        })
        .collect()
}

/// The first single-signature OCI case whose expected outcome matches.
fn oci_case(failed_validation: Option<&str>) -> Case {
    verify_cases()
        .into_iter()
        .find(|c| {
            c.kind() == "verify"
                && c.json["signatures"].as_array().map(Vec::len) == Some(1)
                && c.expected()["failed_validation"].as_str() == failed_validation
        })
        .unwrap()
}

#[test]
fn the_http_component_nests_the_cli_verifier_byte_for_byte() {
    let wasm = exported_component();
    assert_eq!(sha256(&wasm), sha256(HTTP_COMPONENT));
    let nested: Vec<String> = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .filter_map(|payload| match payload.unwrap() {
            wasmparser::Payload::ComponentSection {
                unchecked_range, ..
            } => Some(sha256(&wasm[unchecked_range])),
            _ => None,
        })
        .collect();
    assert!(
        nested.contains(&sha256(COMPONENT)),
        "the verifier component (sha256:{}) is not among the nested components {nested:?}",
        sha256(COMPONENT)
    );
    let version = Command::new(binary()).arg("version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(version.contains(&format!("wasi:http component: sha256:{}", sha256(&wasm))));
}

#[test]
fn the_http_component_imports_only_the_wasi_http_proxy_world() {
    let engine = Engine::default();
    let component = Component::new(&engine, exported_component()).unwrap();
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    println!("the wasi:http component imports {imports:?}");
    // What `wasi:http/proxy` lets a component import.
    let proxy = [
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/stdout",
        "wasi:cli/stderr",
        "wasi:cli/stdin",
        "wasi:http/types",
        "wasi:http/outgoing-handler",
    ];
    for import in &imports {
        assert!(
            proxy.iter().any(|allowed| import.starts_with(allowed)),
            "{import} is outside the proxy world (imports: {imports:?})"
        );
    }
    let exports: Vec<String> = ty
        .exports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(
        exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2")),
        "{exports:?}"
    );
}

#[test]
fn a_valid_signature_is_verified_with_its_signer_and_validations() {
    let case = oci_case(None);
    let request = request_of(&case).unwrap();
    let reply = post(&bundle_of(&request));
    assert_eq!(reply.status, 200, "{case:?}: {}", reply.body);
    assert_eq!(reply.header("notary-decision"), Some("verified"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = &reply.body;
    assert_eq!(body["decision"], "verified", "{body}");
    assert_eq!(body["verifiedSignature"], 0);
    let signature = &body["signatures"][0];
    assert_eq!(signature["validations"][0]["check"], "integrity");
    assert_eq!(signature["validations"][0]["result"], "passed");
    let envelope = &signature["envelope"];
    assert!(
        !envelope["certificates"].as_array().unwrap().is_empty(),
        "{body}"
    );
    let Target::Oci { descriptor, .. } = &request.target else {
        unreachable!()
    };
    assert_eq!(envelope["signedArtifact"]["digest"], descriptor.digest);
    assert_eq!(body["target"]["digest"], descriptor.digest);
}

#[test]
fn the_first_signature_that_verifies_decides() {
    let case = verify_cases()
        .into_iter()
        .find(|c| {
            c.kind() == "verify"
                && c.expected()["outcome"] == "success"
                && c.json["signatures"][0]["envelope_media_type"] == "application/jose+json"
        })
        .unwrap();
    let mut request = request_of(&case).unwrap();
    // A JWS whose signature value has one character changed still parses: its outcome
    // carries the signer's chain, and its integrity fails.
    let mut forged = request.signatures[0].clone();
    let text = String::from_utf8(forged.envelope.clone()).unwrap();
    let at = text.find("\"signature\":\"").unwrap() + "\"signature\":\"".len();
    forged.envelope[at] = if forged.envelope[at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    request.signatures.insert(0, forged.clone());
    request.signatures.insert(0, forged);
    let reply = post(&bundle_of(&request));
    assert_eq!(reply.body["decision"], "verified", "{}", reply.body);
    assert_eq!(reply.body["verifiedSignature"], 2);
    for forged in 0..2 {
        let signature = &reply.body["signatures"][forged];
        assert_eq!(signature["failure"]["kind"], "integrity", "{signature}");
        assert!(signature["envelope"]["certificates"].as_array().is_some());
    }
    // Longer than one 4096-byte write: the response is written in several.
    assert!(reply.length > 4096, "{} bytes", reply.length);
}

#[test]
fn a_chunked_request_body_is_read_whole() {
    let bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    let reply = call_with(
        "POST",
        "/verify",
        &serde_json::to_vec(&bundle).unwrap(),
        &["-H", "Transfer-Encoding: chunked"],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["decision"], "verified");
}

#[test]
fn the_policy_reaches_the_verifier_as_sent_in_either_form() {
    let case = oci_case(None);
    let request = request_of(&case).unwrap();
    let text = String::from_utf8(request.policy.content.clone()).unwrap();
    let bundle = bundle_of(&request);
    // As a JSON object rather than a string.
    let reply = call("POST", "/verify", &with_raw_policy(&bundle, &text));
    assert_eq!(reply.body["decision"], "verified", "{}", reply.body);
    // With a key given twice: the verifier judges those exact bytes, as natively.
    let repeated = format!(
        "{{\"version\": \"1.0\", {}",
        text.trim_start().strip_prefix('{').unwrap()
    );
    let mut native_request = request.clone();
    native_request.policy.content = repeated.clone().into_bytes();
    let native = notary_verifier::verify(&native_request);
    let reply = call("POST", "/verify", &with_raw_policy(&bundle, &repeated));
    assert_native_decision(&reply, &native);
}

#[test]
fn left_out_media_types_and_time_default_to_the_envelope_and_the_host_clock() {
    let request = request_of(&oci_case(None)).unwrap();
    let mut bundle = bundle_of(&request);
    bundle["signatures"][0]
        .as_object_mut()
        .unwrap()
        .remove("mediaType");
    bundle.as_object_mut().unwrap().remove("verificationTime");
    let mut native_request = request.clone();
    native_request.verification_time = notary_verifier::Instant::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        0,
    );
    let native = notary_verifier::verify(&native_request);
    let reply = post(&bundle);
    assert_native_decision(&reply, &native);
    assert_eq!(
        reply.body["signatures"][0]["mediaType"],
        request.signatures[0].media_type
    );
    let at = time::OffsetDateTime::parse(
        reply.body["verificationTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let skew = (time::OffsetDateTime::now_utc() - at).whole_seconds().abs();
    assert!(skew < 120, "verification time {at} is {skew} s from now");
}

#[test]
fn a_tampered_envelope_fails_integrity() {
    let case = oci_case(None);
    let mut request = request_of(&case).unwrap();
    let envelope = &mut request.signatures[0].envelope;
    // Flip a bit in the middle of the envelope (inside the signed payload or signature).
    let middle = envelope.len() / 2;
    envelope[middle] ^= 0x01;
    let reply = post(&bundle_of(&request));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("notary-decision"), Some("failed"));
    assert_eq!(reply.body["decision"], "failed");
    assert_eq!(reply.body["failure"]["kind"], "integrity", "{}", reply.body);
}

#[test]
fn a_signature_from_an_untrusted_signer_fails_authenticity() {
    let case = oci_case(Some("authenticity"));
    let reply = post(&bundle_of(&request_of(&case).unwrap()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["decision"], "failed");
    assert_eq!(
        reply.body["failure"]["kind"], "authenticity",
        "{}",
        reply.body
    );
}

#[test]
fn an_unsigned_artifact_fails_signature_retrieval() {
    let mut request = request_of(&oci_case(None)).unwrap();
    request.signatures.clear();
    let reply = post(&bundle_of(&request));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["decision"], "failed");
    assert_eq!(reply.body["failure"]["kind"], "signature-retrieval");
}

#[test]
fn every_conformance_verification_gets_the_native_decision() {
    let cases = verify_cases();
    assert!(cases.len() > 50, "only {} cases", cases.len());
    let mut problems = Vec::new();
    for case in &cases {
        let request = request_of(case).unwrap();
        let native = notary_verifier::verify(&request);
        let reply = post(&bundle_of(&request));
        let expected = json!({
            "status": 200,
            "decision": native.decision,
            "failure": native.failure.as_ref().map(|f| f.kind),
            "verifiedSignature": native.verified_index,
            "signatures": native.signatures.len(),
        });
        let got = json!({
            "status": reply.status,
            "decision": reply.body["decision"],
            "failure": reply.body["failure"]["kind"],
            "verifiedSignature": reply.body["verifiedSignature"],
            "signatures": reply.body["signatures"].as_array().map_or(0, Vec::len),
        });
        if expected != got {
            problems.push(format!("{}: native {expected}, wasi:http {got}", case.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_bundle_that_cannot_be_read_is_a_400_naming_the_field() {
    let reply = call("POST", "/verify", b"{ not json");
    assert_eq!(reply.status, 400);
    assert!(reply.body["error"].as_str().unwrap().starts_with("bundle:"));

    let mut bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    bundle["trustStore"] = json!([]);
    let reply = post(&bundle);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `trustStore`"),
        "{}",
        reply.body
    );

    let mut bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    bundle["signatures"][0]["envelope"] = json!("not base64!");
    let reply = post(&bundle);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .starts_with("signatures[0].envelope"),
        "{}",
        reply.body
    );

    let mut bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    bundle["blob"] = json!({ "digest": "sha256:00", "size": 1 });
    let reply = post(&bundle);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("exactly one of")
    );

    let bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    let mut trimmed: Value = bundle.clone();
    trimmed.as_object_mut().unwrap().remove("userMetadata");
    let text = {
        let rest = serde_json::to_string(&trimmed).unwrap();
        format!(
            r#"{{"userMetadata": {{"env": "prod", "env": "dev"}}, {}"#,
            &rest[1..]
        )
    };
    let reply = call("POST", "/verify", text.as_bytes());
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"env\""),
        "{}",
        reply.body
    );

    let mut bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    bundle["artifact"]["reference"] =
        json!(format!("registry.example/other@sha256:{}", "0".repeat(64)));
    let reply = post(&bundle);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("artifact.descriptor.digest"),
        "{}",
        reply.body
    );

    let mut bundle = bundle_of(&request_of(&oci_case(None)).unwrap());
    bundle["verificationTime"] = json!("yesterday");
    let reply = post(&bundle);
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("verificationTime")
    );
}

#[test]
fn oversized_bundles_wrong_methods_and_unknown_routes_are_refused() {
    // One byte over the limit: the whole body is sent, so the answer is not cut short.
    let reply = call("POST", "/verify", &vec![b' '; 8 * 1024 * 1024 + 1]);
    assert_eq!(reply.status, 413);
    let reply = call("GET", "/verify", b"");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = call("POST", "/elsewhere", b"{}");
    assert_eq!(reply.status, 404);
    let reply = call("GET", "/healthz", b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ok");
}

/// The bundle's `revocation` evidence reaches the verifier: a chain naming CRLs verifies
/// with its CRLs, has an unknown status without them, and is revoked by a CRL listing the
/// leaf; each decided as the native library decides.
#[test]
fn revocation_evidence_in_the_bundle_decides_revocation() {
    use hsm_notary_suite::pki::{Locations, Pki, PkiOptions, Reason};
    use notary_verifier::revocation::Evidence;
    let leaf_crl = "http://127.0.0.1:9/leaf.crl";
    let intermediate_crl = "http://127.0.0.1:9/intermediate.crl";
    let pki = Pki::build(&PkiOptions {
        leaf: Locations::crl(leaf_crl),
        intermediate: Locations::crl(intermediate_crl),
    })
    .unwrap();
    let mut request = pki.signed_request().unwrap();
    let evidence = |leaf: Vec<u8>| {
        vec![
            Evidence::Crl {
                url: leaf_crl.into(),
                crl: leaf,
            },
            Evidence::Crl {
                url: intermediate_crl.into(),
                crl: pki.root.gencrl(24).unwrap(),
            },
        ]
    };

    let without = post(&bundle_of(&request));
    assert_native_decision(&without, &notary_verifier::verify(&request));
    assert_eq!(
        without.body["failure"]["kind"], "revocation",
        "{}",
        without.body
    );

    request.revocation_evidence = evidence(pki.intermediate.gencrl(24).unwrap());
    let good = post(&bundle_of(&request));
    assert_native_decision(&good, &notary_verifier::verify(&request));
    assert_eq!(good.body["decision"], "verified", "{}", good.body);

    pki.intermediate
        .revoke(&pki.leaf, Reason::KeyCompromise)
        .unwrap();
    request.revocation_evidence = evidence(pki.intermediate.gencrl(24).unwrap());
    let revoked = post(&bundle_of(&request));
    assert_native_decision(&revoked, &notary_verifier::verify(&request));
    assert!(
        revoked.body.to_string().contains("is revoked"),
        "{}",
        revoked.body
    );
}

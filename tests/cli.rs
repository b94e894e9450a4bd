//! The `hsm-notary` binary: configuration directory commands and `verify` on OCI layouts.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hsm_notary_suite::text;
use hsm_notary_suite::{binary, component_cache, root};

fn case_dir(name: &str) -> PathBuf {
    root().join("tests/conformance/cases").join(name)
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--config-dir")
        .arg(config)
        .args(args)
        .env("HSM_NOTARY_CACHE", component_cache())
        .output()
        .expect("binary runs")
}

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// `verify --oci-layout` of a conformance case's layout with its own policy and stores.
fn verify_case(config: &Path, case: &Path, extra: &[&str], layout: &str) -> Output {
    let policy = case.join("trustpolicy.json").display().to_string();
    let stores = case.join("truststore").display().to_string();
    let mut args = vec![
        "verify",
        "--oci-layout",
        "--scope",
        "localhost:5000/e2e",
        "--trust-policy",
        &policy,
        "--trust-store",
        &stores,
    ];
    args.extend_from_slice(extra);
    args.push(layout);
    run(config, &args)
}

#[test]
fn import_policy_add_certificate_then_verify() {
    let config = tempfile::tempdir().expect("tempdir");
    let case = case_dir("ti-valid-x509-subject");
    let imported = run(
        config.path(),
        &[
            "policy",
            "import",
            case.join("trustpolicy.json").to_str().unwrap(),
        ],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(text(&imported).contains("Successfully imported OCI trust policy configuration to"));
    let shown = run(config.path(), &["policy", "show"]);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        std::fs::read_to_string(case.join("trustpolicy.json")).unwrap()
    );

    let cert = case.join("truststore/x509/ca/e2e/e2e.crt");
    let added = run(
        config.path(),
        &[
            "cert",
            "add",
            "--type",
            "ca",
            "--store",
            "e2e",
            cert.to_str().unwrap(),
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    let again = run(
        config.path(),
        &[
            "cert",
            "add",
            "-t",
            "ca",
            "-s",
            "e2e",
            cert.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("certificate already exists in the Trust Store"));
    let listed = run(config.path(), &["cert", "list"]);
    assert!(
        text(&listed).contains("ca           e2e          e2e.crt"),
        "{}",
        text(&listed)
    );
    let shown = run(
        config.path(),
        &["cert", "show", "-t", "ca", "-s", "e2e", "e2e.crt"],
    );
    assert!(
        text(&shown).contains("Subject: CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"),
        "{}",
        text(&shown)
    );

    let layout = format!("{}@{DIGEST}", case.join("oci-layout").display());
    let verified = run(
        config.path(),
        &[
            "verify",
            "--oci-layout",
            "--scope",
            "localhost:5000/e2e",
            &layout,
        ],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("Successfully verified signature for"));

    let deleted = run(
        config.path(),
        &["cert", "delete", "-t", "ca", "-s", "e2e", "e2e.crt", "-y"],
    );
    assert!(deleted.status.success(), "{}", text(&deleted));
    let failed = run(
        config.path(),
        &[
            "verify",
            "--oci-layout",
            "--scope",
            "localhost:5000/e2e",
            &layout,
        ],
    );
    assert!(!failed.status.success());
    assert!(
        text(&failed).contains("the trust store \"e2e\" of type \"ca\" does not exist. Use command 'hsm-notary cert add'"),
        "{}",
        text(&failed)
    );
}

#[test]
fn an_invalid_policy_is_refused_naming_the_rule_and_nothing_is_written() {
    let config = tempfile::tempdir().expect("tempdir");
    let bad = case_dir("policy-same-scope-two-statements").join("trustpolicy.json");
    let out = run(config.path(), &["policy", "import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("failed to validate OCI trust policy configuration: registry scope \"registry.acme-rockets.io/software/net-monitor\" is present in multiple oci trust policy statements"), "{}", text(&out));
    assert!(!config.path().join("trustpolicy.oci.json").exists());

    let malformed = case_dir("policy-e2e-invalid-json").join("trustpolicy.json.malformed");
    let out = run(
        config.path(),
        &["policy", "import", malformed.to_str().unwrap()],
    );
    assert!(
        text(&out)
            .contains("failed to parse OCI trust policy configuration: malformed trust policy")
    );
}

#[test]
fn json_output_is_the_same_outcome_for_both_engines() {
    let config = tempfile::tempdir().expect("tempdir");
    let case = case_dir("vl-audit-untrusted-cert");
    let layout = format!("{}@{DIGEST}", case.join("oci-layout").display());
    let with_engine = |engine: &str| {
        let extra = [
            "--verify-at",
            "2026-11-22T00:00:00Z",
            "-o",
            "json",
            "--engine",
            engine,
        ];
        verify_case(config.path(), &case, &extra, &layout)
    };
    let wasm = with_engine("wasm");
    let native = with_engine("native");
    assert!(wasm.status.success(), "{}", text(&wasm));
    assert_eq!(wasm.stdout, native.stdout);
    let outcome: serde_json::Value = serde_json::from_slice(&wasm.stdout).expect("json");
    assert_eq!(outcome["decision"], "verified");
    assert_eq!(outcome["policy"]["level"], "audit");
}

#[test]
fn verify_at_moves_the_verification_time() {
    let config = tempfile::tempdir().expect("tempdir");
    let case = case_dir("vl-strict-expired-cert");
    let layout = format!("{}@{DIGEST}", case.join("oci-layout").display());
    let verify_at = |at: &str| verify_case(config.path(), &case, &["--verify-at", at], &layout);
    // The certificate was valid from 2023-06-26T06:10:00Z to 2023-06-27T06:10:00Z.
    let inside = verify_at("2023-06-27T06:09:00Z");
    assert!(inside.status.success(), "{}", text(&inside));
    let after = verify_at("2023-06-27T06:11:00Z");
    assert!(!after.status.success());
    assert!(
        text(&after).contains("authenticTimestamp validation failed"),
        "{}",
        text(&after)
    );
    let bad = verify_at("yesterday");
    assert!(text(&bad).contains("is not an RFC 3339 time"));
}

#[test]
fn skip_level_reads_no_signature() {
    let config = tempfile::tempdir().expect("tempdir");
    let case = case_dir("vl-skip-invalid-integrity");
    let layout = format!("{}:v1", case.join("oci-layout").display());
    let out = verify_case(config.path(), &case, &[], &layout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Trust policy is configured to skip signature verification"));
    assert!(text(&out).contains("Warning: Always verify the artifact using digest"));
}

#[test]
fn layouts_are_listed_and_inspected() {
    let config = tempfile::tempdir().expect("tempdir");
    let case = case_dir("multi-sig-one-trusted");
    let layout = format!("{}@{DIGEST}", case.join("oci-layout").display());
    let listed = run(config.path(), &["ls", "--oci-layout", &layout]);
    assert!(
        text(&listed)
            .contains("sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"),
        "{}",
        text(&listed)
    );
    assert!(
        text(&listed)
            .contains("sha256:c3ebe4a20b6832328fc5078a7795ddc1114b896e13fca2add38109c3866b5fbf")
    );
    let inspected = run(
        config.path(),
        &["inspect", "--oci-layout", "-o", "json", &layout],
    );
    assert!(inspected.status.success(), "{}", text(&inspected));
    let json: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(json["signatures"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        json["signatures"][0]["signatureAlgorithm"],
        "RSASSA-PSS-SHA-256"
    );
}

#[test]
fn a_tampered_layout_blob_is_caught() {
    let config = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let source = case_dir("ti-valid-x509-subject").join("oci-layout");
    copy_dir(&source, work.path());
    // Replace the signature envelope with other bytes under the same file name.
    let case = case_dir("ti-valid-x509-subject");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.join("case.json")).unwrap()).unwrap();
    let relative = json["signatures"][0]["envelope_path"].as_str().unwrap();
    let envelope = work.path().join(relative.trim_start_matches("oci-layout/"));
    assert!(envelope.exists(), "{}", envelope.display());
    std::fs::write(&envelope, b"{}").unwrap();
    let layout = format!("{}@{DIGEST}", work.path().display());
    let out = verify_case(config.path(), &case, &[], &layout);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has 2 bytes, but its descriptor says"),
        "{}",
        text(&out)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn version_names_the_digest_of_the_embedded_component() {
    let config = tempfile::tempdir().unwrap();
    let output = run(config.path(), &["version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let digest = hsm_notary::oci::sha256_digest(hsm_notary::engine::component::COMPONENT);
    assert!(
        stdout.contains(&format!("verifier component: {digest}")),
        "{stdout}"
    );
}

#[test]
fn a_reader_that_stops_reading_ends_the_output_quietly() {
    // `hsm-notary version | head -0`: the pipe's reading end is closed before anything is
    // written, so every write fails with EPIPE. Text printed with `print!` and bytes
    // written whole (the component) end alike.
    for args in [&["version"][..], &["component", "-o", "-"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(binary())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(141),
            "{args:?}: {}",
            text(&output)
        );
        assert!(output.stderr.is_empty(), "{args:?}: {}", text(&output));
    }
}

/// ADA-NOT-23-1 and ADA-NOT-23-7: `ls` and `inspect` read at most `--max-signatures`, say so
/// on stderr (stdout stays JSON), and refuse a limit that is not positive.
#[test]
fn list_and_inspect_read_at_most_max_signatures() {
    let config = tempfile::tempdir().unwrap();
    let layout = format!(
        "{}@{DIGEST}",
        case_dir("multi-sig-one-trusted")
            .join("oci-layout")
            .display()
    );
    let ls = run(
        config.path(),
        &[
            "ls",
            "--oci-layout",
            "-o",
            "json",
            "--max-signatures",
            "1",
            &layout,
        ],
    );
    assert!(ls.status.success(), "{}", text(&ls));
    let listed: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(
        listed["signatures"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    assert_eq!(listed["truncated"], true);
    let inspect = run(
        config.path(),
        &[
            "inspect",
            "--oci-layout",
            "-o",
            "json",
            "--max-signatures",
            "1",
            &layout,
        ],
    );
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).expect("stdout is JSON only");
    assert_eq!(inspected["signatures"].as_array().unwrap().len(), 1);
    assert!(
        String::from_utf8_lossy(&inspect.stderr)
            .contains("exceeded configured limit of max signatures 1"),
        "{}",
        text(&inspect)
    );
    let zero = run(
        config.path(),
        &["ls", "--oci-layout", "--max-signatures", "0", &layout],
    );
    assert!(!zero.status.success());
    assert!(
        text(&zero).contains("must be a positive number"),
        "{}",
        text(&zero)
    );
}

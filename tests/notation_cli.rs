//! hsm-notary where notation was: notation's commands, flag syntax, messages and
//! environment, run as a user runs the binary (`blob sign`, `blob policy`, `cert
//! cleanup-test`, `-d`, `--flag=false`, notation's argument errors, `NOTATION_CONFIG`).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hsm_notary_suite::text;
use hsm_notary_suite::{binary, component_cache, root};

/// The binary with `config` as its configuration directory and no standard input.
fn run(config: &Path, args: &[&str]) -> Output {
    run_env(config, args, &[])
}

fn run_env(config: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("HSM_NOTARY_CONFIG", config)
        .env("HSM_NOTARY_CACHE", component_cache())
        .env_remove("NOTATION_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let output = run(config, args);
    assert!(output.status.success(), "{args:?}:\n{}", text(&output));
    text(&output)
}

fn fails(config: &Path, args: &[&str]) -> String {
    let output = run(config, args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?}:\n{}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A configuration with a test key `signer` (trusted as `ca:signer`) and a blob to sign.
fn signer() -> (tempfile::TempDir, PathBuf) {
    let config = tempfile::tempdir().unwrap();
    ok(
        config.path(),
        &["cert", "generate-test", "signer", "--default"],
    );
    let blob = config.path().join("artifact.txt");
    std::fs::write(&blob, b"the blob's bytes\n").unwrap();
    (config, blob)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn blob_sign_writes_a_detached_signature_that_blob_verify_accepts_under_the_blob_policy() {
    let (config, blob) = signer();
    let dir = config.path();
    let signed = ok(dir, &["blob", "sign", "-m", "build=42", &path(&blob)]);
    let sig = dir.join("artifact.txt.jws.sig");
    assert!(
        signed.contains(&format!("Successfully signed {}", path(&blob)))
            && signed.contains(&format!(" Signature file written to {}", path(&sig))),
        "{signed}"
    );
    let cose_dir = dir.join("signatures");
    std::fs::create_dir(&cose_dir).unwrap();
    ok(
        dir,
        &[
            "blob",
            "sign",
            "--signature-format",
            "cose",
            "--signature-directory",
            &path(&cose_dir),
            "--media-type",
            "text/plain",
            &path(&blob),
        ],
    );
    let cose = cose_dir.join("artifact.txt.cose.sig");
    assert!(cose.exists());

    let init = ok(
        dir,
        &[
            "blob",
            "policy",
            "init",
            "-n",
            "blobs",
            "--trust-store",
            "ca:signer",
            "--trusted-identity",
            "*",
            "--global",
        ],
    );
    assert!(
        init.contains("Successfully initialized blob trust policy file to"),
        "{init}"
    );
    // As notation writes it: two-space indent, this key order, no trailing newline.
    let written = std::fs::read_to_string(dir.join("trustpolicy.blob.json")).unwrap();
    assert_eq!(
        written,
        "{\n  \"version\": \"1.0\",\n  \"trustPolicies\": [\n    {\n      \"name\": \"blobs\",\n      \"signatureVerification\": {\n        \"level\": \"strict\"\n      },\n      \"trustStores\": [\n        \"ca:signer\"\n      ],\n      \"trustedIdentities\": [\n        \"*\"\n      ],\n      \"globalPolicy\": true\n    }\n  ]\n}"
    );
    assert_eq!(ok(dir, &["blob", "policy", "show"]), written);

    let verified = ok(
        dir,
        &[
            "blob",
            "verify",
            "-s",
            &path(&sig),
            "-m",
            "build=42",
            &path(&blob),
        ],
    );
    assert!(
        verified.contains(&format!(
            "Successfully verified signature for {}",
            path(&blob)
        )),
        "{verified}"
    );
    ok(
        dir,
        &[
            "blob",
            "verify",
            "--signature",
            &path(&cose),
            "--media-type",
            "text/plain",
            &path(&blob),
        ],
    );
    // The COSE signature signed text/plain: another media type does not match.
    let wrong = fails(
        dir,
        &[
            "blob",
            "verify",
            "-s",
            &path(&cose),
            "--media-type",
            "application/json",
            &path(&blob),
        ],
    );
    assert!(
        wrong.contains("integrity check failed. signature does not match the given blob"),
        "{wrong}"
    );
    // A changed blob does not verify.
    std::fs::write(&blob, b"other bytes\n").unwrap();
    fails(dir, &["blob", "verify", "-s", &path(&sig), &path(&blob)]);
}

#[test]
fn blob_sign_overwrites_only_with_force_and_refuses_bad_media_types_and_directories() {
    let (config, blob) = signer();
    let dir = config.path();
    ok(dir, &["blob", "sign", &path(&blob)]);
    let sig = dir.join("artifact.txt.jws.sig");
    let first = std::fs::read(&sig).unwrap();
    // No answer to the prompt (no standard input): nothing is overwritten.
    let asked = ok(dir, &["blob", "sign", &path(&blob)]);
    assert!(
        asked.contains("The signature file already exists, do you want to overwrite it?"),
        "{asked}"
    );
    assert!(
        std::fs::read(&sig).unwrap() == first,
        "overwritten without --force"
    );
    // A stale file is replaced with --force (ECDSA here is deterministic, so the new
    // signature of the same second may equal the first: compare against other bytes).
    std::fs::write(&sig, b"stale").unwrap();
    let forced = run(dir, &["blob", "sign", "--force", &path(&blob)]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        String::from_utf8_lossy(&forced.stderr)
            .contains("Warning: existing signature file will be overwritten")
    );
    assert!(std::fs::read(&sig).unwrap() != b"stale", "not overwritten");

    let empty = fails(
        dir,
        &["blob", "sign", "--signature-directory=", &path(&blob)],
    );
    assert!(
        empty.contains("signature directory cannot be empty"),
        "{empty}"
    );
    let media = fails(
        dir,
        &["blob", "sign", "--media-type", "a/b/c d", &path(&blob)],
    );
    assert!(media.contains("invalid content media-type"), "{media}");
}

#[test]
fn blob_policy_import_applies_notations_rules_and_messages() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let missing = fails(dir, &["blob", "policy", "show"]);
    assert!(
        missing.contains("failed to show blob trust policy as the configuration does not exist"),
        "{missing}"
    );
    let two_global = dir.join("two-global.json");
    std::fs::write(
        &two_global,
        r#"{"version":"1.0","trustPolicies":[
            {"name":"a","signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"],"globalPolicy":true},
            {"name":"b","signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"],"globalPolicy":true}]}"#,
    )
    .unwrap();
    let refused = fails(dir, &["blob", "policy", "import", &path(&two_global)]);
    assert!(
        refused.contains("failed to validate blob trust policy configuration:"),
        "{refused}"
    );
    assert!(!dir.join("trustpolicy.blob.json").exists());
    let unreadable = fails(
        dir,
        &["blob", "policy", "import", "/nonexistent/policy.json"],
    );
    assert!(
        unreadable.contains("failed to read blob trust policy file:"),
        "{unreadable}"
    );
}

#[test]
fn cleanup_test_removes_what_generate_test_made_and_says_what_was_already_gone() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    ok(dir, &["cert", "generate-test", "throwaway"]);
    let key = dir.join("localkeys/throwaway.key");
    assert!(key.exists());
    let cleaned = ok(dir, &["cert", "cleanup-test", "throwaway", "-y"]);
    for line in [
        "Successfully deleted throwaway.crt from trust store throwaway of type ca",
        "Successfully removed key throwaway from the key list",
        &format!("Successfully deleted key file: {}", path(&key)),
        "Successfully deleted certificate file:",
        "Cleanup completed successfully",
    ] {
        assert!(cleaned.contains(line), "{line:?} missing in:\n{cleaned}");
    }
    assert!(!key.exists());
    assert!(!ok(dir, &["key", "list"]).contains("throwaway"));
    let again = ok(dir, &["cert", "cleanup-test", "--yes=true", "throwaway"]);
    for line in [
        "Certificate throwaway.crt does not exist in trust store throwaway of type ca",
        "Key throwaway does not exist in the key list",
        "does not exist",
        "Cleanup completed successfully",
    ] {
        assert!(again.contains(line), "{line:?} missing in:\n{again}");
    }
    let bad = fails(dir, &["cert", "cleanup-test", "-y", "bad name"]);
    assert!(
        bad.contains("certificate common name must follow [a-zA-Z0-9_.-]+ format"),
        "{bad}"
    );
}

#[test]
fn flags_take_notations_syntax_and_argument_errors_read_as_notations() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let missing = fails(dir, &["verify"]);
    assert_eq!(missing.trim(), "Error: requires 1 argument but received 0");
    let flags = fails(dir, &["cert", "add", "some.pem"]);
    assert!(
        flags.contains("required flag(s) \"type\", \"store\" not set"),
        "{flags}"
    );
    let unknown = fails(dir, &["verify", "--no-such-flag", "x"]);
    assert!(
        unknown.contains("Error: unknown flag: --no-such-flag"),
        "{unknown}"
    );
    // A bare group prints its help and succeeds, as notation's.
    let help = run(dir, &["blob"]);
    assert_eq!(help.status.code(), Some(0), "{}", text(&help));

    // --flag, --flag=true and --flag=false, on a layout as notation users write them.
    let verify = |layout_flag: &str| {
        let args = layout_verify(&[layout_flag]);
        run(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    for flag in ["--oci-layout", "--oci-layout=true"] {
        let out = verify(flag);
        assert!(out.status.success(), "{flag}: {}", text(&out));
    }
    // With --oci-layout=false the reference is a registry reference, which this is not.
    let off = verify("--oci-layout=false");
    assert!(!off.status.success(), "{}", text(&off));
}

#[test]
fn debug_logs_each_verification_step_on_stderr_and_nothing_without_it() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let args = |debug: bool| {
        let flags: &[&str] = if debug {
            &["-d", "--oci-layout"]
        } else {
            &["--oci-layout"]
        };
        let args = layout_verify(flags);
        run(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let debug = args(true);
    assert!(debug.status.success(), "{}", text(&debug));
    let log = String::from_utf8_lossy(&debug.stderr);
    for step in [
        "Check verification level",
        "Verify signature",
        "against artifact sha256:b8479de3",
        "Validating integrity",
        "Validating cert chain",
        "Validating trust identity",
        "Validating expiry",
        "Validating authentic timestamp",
        "Validating revocation",
    ] {
        assert!(log.contains(step), "{step:?} missing in:\n{log}");
    }
    let quiet = args(false);
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("Validating"),
        "{}",
        text(&quiet)
    );
}

#[test]
fn a_notation_configuration_directory_is_used_through_notation_config() {
    // A configuration made by hsm-notary stands in for ~/.config/notation: same files.
    let (config, blob) = signer();
    let dir = config.path();
    ok(
        dir,
        &[
            "blob",
            "policy",
            "init",
            "-n",
            "g",
            "--trust-store",
            "ca:signer",
            "--trusted-identity",
            "*",
            "--global",
        ],
    );
    let output = Command::new(binary())
        .args(["blob", "sign", &path(&blob)])
        .env_remove("HSM_NOTARY_CONFIG")
        .env("NOTATION_CONFIG", dir)
        .env("HSM_NOTARY_CACHE", component_cache())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let sig = dir.join("artifact.txt.jws.sig");
    let output = run_env(
        Path::new("/nonexistent"),
        &["blob", "verify", "-s", &path(&sig), &path(&blob)],
        &[],
    );
    // HSM_NOTARY_CONFIG wins over NOTATION_CONFIG: /nonexistent has no policy.
    assert!(!output.status.success());
    let output = Command::new(binary())
        .args(["blob", "verify", "-s", &path(&sig), &path(&blob)])
        .env_remove("HSM_NOTARY_CONFIG")
        .env("NOTATION_CONFIG", dir)
        .env("HSM_NOTARY_CACHE", component_cache())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

/// `verify FLAGS… <the conformance layout's policy, stores and scope> LAYOUT@DIGEST`.
fn layout_verify(flags: &[&str]) -> Vec<String> {
    let (layout, digest, args) = layout_case();
    let mut all = vec!["verify".to_owned()];
    all.extend(flags.iter().map(|f| (*f).to_owned()));
    all.extend(args);
    all.push(format!("{}@{digest}", path(&layout)));
    all
}

/// The conformance layout, its digest, and the arguments that verify it.
fn layout_case() -> (PathBuf, &'static str, Vec<String>) {
    let case = root().join("tests/conformance/cases/scope-oci-layout-local-scope");
    let args = vec![
        "--scope".to_owned(),
        "local/e2e".to_owned(),
        "--trust-policy".to_owned(),
        path(&case.join("trustpolicy.json")),
        "--trust-store".to_owned(),
        path(&case.join("truststore")),
    ];
    (
        case.join("oci-layout"),
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        args,
    )
}

fn tar(dir: &Path, archive: &Path, gzip: bool) {
    let status = Command::new("tar")
        .arg(if gzip { "-czf" } else { "-cf" })
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn layouts_given_as_tar_tar_gz_or_standard_input_verify_list_and_inspect() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let (layout, digest, args) = layout_case();
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("image.tar");
    let gzip = work.path().join("image.tar.gz");
    tar(&layout, &plain, false);
    tar(&layout, &gzip, true);
    for archive in [&plain, &gzip] {
        let reference = format!("{}@{digest}", path(archive));
        let mut verify = vec!["verify".to_owned(), "--oci-layout".to_owned()];
        verify.extend(args.iter().cloned());
        verify.push(reference.clone());
        let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
        let out = ok(dir, &verify);
        assert!(out.contains("Successfully verified signature for"), "{out}");
        let listed = ok(dir, &["ls", "--oci-layout", &reference]);
        assert!(
            listed.contains("application/vnd.cncf.notary.signature"),
            "{listed}"
        );
        ok(dir, &["inspect", "--oci-layout", "-o", "json", &reference]);
    }
    // Standard input: `-` as the layout path.
    let mut verify = vec!["verify".to_owned(), "--oci-layout".to_owned()];
    verify.extend(args.iter().cloned());
    verify.push(format!("-@{digest}"));
    let output = Command::new(binary())
        .args(&verify)
        .env("HSM_NOTARY_CONFIG", dir)
        .env("HSM_NOTARY_CACHE", component_cache())
        .stdin(std::fs::File::open(&gzip).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    // Signing writes into a layout: an archive is refused, nothing written.
    let before = std::fs::read(&plain).unwrap();
    let refused = fails(
        dir,
        &[
            "sign",
            "--oci-layout",
            &format!("{}@{digest}", path(&plain)),
        ],
    );
    assert!(refused.contains("must be a directory"), "{refused}");
    assert!(std::fs::read(&plain).unwrap() == before);
}

#[test]
fn docker_save_and_skopeo_style_archives_verify() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let (layout, digest, args) = layout_case();
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("layout");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&layout)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    // `skopeo copy … oci-archive:image.tar`: the layout's files at the top, no `./`.
    let skopeo = work.path().join("skopeo.tar");
    let packed = |archive: &Path, names: &[&str]| {
        let status = Command::new("tar")
            .arg("-cf")
            .arg(archive)
            .arg("-C")
            .arg(&copy)
            .args(names)
            .status()
            .unwrap();
        assert!(status.success());
    };
    packed(&skopeo, &["oci-layout", "index.json", "blobs"]);
    // `docker save` (Docker 25+): the same plus Docker's manifest.json and repositories,
    // and index.json entries named by containerd's image-name annotation and ref name.
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["digest"] == digest)
        .unwrap();
    entry["annotations"] = serde_json::json!({
        "io.containerd.image.name": "docker.io/library/e2e:latest",
        "org.opencontainers.image.ref.name": "latest",
    });
    std::fs::write(copy.join("index.json"), index.to_string()).unwrap();
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(
        copy.join("manifest.json"),
        format!(r#"[{{"Config":"blobs/sha256/{hex}","RepoTags":["e2e:latest"],"Layers":[]}}]"#),
    )
    .unwrap();
    std::fs::write(copy.join("repositories"), r#"{"e2e":{"latest":"0"}}"#).unwrap();
    let docker = work.path().join("docker.tar");
    packed(
        &docker,
        &[
            "blobs",
            "index.json",
            "manifest.json",
            "oci-layout",
            "repositories",
        ],
    );
    for reference in [
        format!("{}@{digest}", path(&skopeo)),
        format!("{}@{digest}", path(&docker)),
        format!("{}:latest", path(&docker)),
    ] {
        let mut verify = vec!["verify".to_owned(), "--oci-layout".to_owned()];
        verify.extend(args.iter().cloned());
        verify.push(reference.clone());
        let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
        let out = ok(dir, &verify);
        assert!(
            out.contains(&format!(
                "Successfully verified signature for {}",
                reference.split([':', '@']).next().unwrap()
            )),
            "{reference}: {out}"
        );
        assert!(out.contains(digest), "{reference}: {out}");
    }
}

#[test]
fn hostile_or_tampered_layout_archives_are_refused() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let (layout, digest, args) = layout_case();
    let work = tempfile::tempdir().unwrap();
    let verify = |archive: &Path| {
        let mut verify = vec!["verify".to_owned(), "--oci-layout".to_owned()];
        verify.extend(args.iter().cloned());
        verify.push(format!("{}@{digest}", path(archive)));
        let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
        run(dir, &verify)
    };
    // An entry escaping the layout (`../`), written with Python's tarfile.
    let escape = work.path().join("escape.tar");
    let script = format!(
        "import tarfile, io\nt = tarfile.open({:?}, 'w')\ndata = b'x'\ni = tarfile.TarInfo('../escaped')\ni.size = len(data)\nt.addfile(i, io.BytesIO(data))\nt.close()\n",
        path(&escape)
    );
    assert!(
        Command::new("python3")
            .args(["-c", &script])
            .status()
            .unwrap()
            .success()
    );
    let out = verify(&escape);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("would be written outside the layout"),
        "{}",
        text(&out)
    );
    assert!(!work.path().parent().unwrap().join("escaped").exists());
    // A tampered copy: one byte of each signature envelope flipped.
    let copy = work.path().join("layout");
    Command::new("cp")
        .arg("-r")
        .arg(&layout)
        .arg(&copy)
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&copy)
        .status()
        .unwrap();
    let blobs = copy.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let file = entry.unwrap().path();
        let mut bytes = std::fs::read(&file).unwrap();
        if bytes.starts_with(b"{\"payload\"") {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 1;
            std::fs::write(&file, bytes).unwrap();
        }
    }
    let tampered = work.path().join("tampered.tar");
    tar(&copy, &tampered, false);
    let out = verify(&tampered);
    assert!(!out.status.success(), "{}", text(&out));
    // Not an archive at all.
    let junk = work.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar file at all").unwrap();
    assert!(!verify(&junk).status.success());
}

#[test]
fn stateless_blob_verify_trusts_only_the_given_certificate_and_identities() {
    let (config, blob) = signer();
    let dir = config.path();
    ok(dir, &["blob", "sign", &path(&blob)]);
    let sig = dir.join("artifact.txt.jws.sig");
    let root_cert = dir.join("truststore/x509/ca/signer/signer.crt");
    // No configuration directory at all.
    let nowhere = Path::new("/nonexistent/hsm-notary-config");
    let verify = |certificate: &Path, identity: &str| {
        run(
            nowhere,
            &[
                "blob",
                "verify",
                "-s",
                &path(&sig),
                "--certificate",
                &path(certificate),
                "--trusted-identity",
                identity,
                &path(&blob),
            ],
        )
    };
    let good = verify(&root_cert, "*");
    assert!(good.status.success(), "{}", text(&good));
    let other_identity = verify(&root_cert, "x509.subject: C=US, ST=WA, O=Somebody Else");
    assert!(
        !other_identity.status.success(),
        "{}",
        text(&other_identity)
    );
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), &["cert", "generate-test", "stranger"]);
    let stranger = other
        .path()
        .join("truststore/x509/ca/stranger/stranger.crt");
    let untrusted = verify(&stranger, "*");
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    let no_identity = run(
        nowhere,
        &[
            "blob",
            "verify",
            "-s",
            &path(&sig),
            "--certificate",
            &path(&root_cert),
            &path(&blob),
        ],
    );
    assert!(
        text(&no_identity).contains("--certificate needs --trusted-identity"),
        "{}",
        text(&no_identity)
    );
}

#[test]
fn notations_config_json_sets_the_signature_format_and_insecure_registries() {
    use hsm_notary::registry::{ArtifactRef, Options, Registry};
    let (config, blob) = signer();
    let dir = config.path();
    std::fs::write(dir.join("config.json"), r#"{"signatureFormat": "COSE"}"#).unwrap();
    ok(dir, &["blob", "sign", &path(&blob)]);
    assert!(
        dir.join("artifact.txt.cose.sig").exists(),
        "config.json's format not used"
    );
    // The flag still wins.
    ok(
        dir,
        &["blob", "sign", "--signature-format", "jws", &path(&blob)],
    );
    assert!(dir.join("artifact.txt.jws.sig").exists());
    std::fs::write(dir.join("config.json"), r#"{"signatureFormat": "pgp"}"#).unwrap();
    let refused = fails(dir, &["blob", "sign", &path(&blob)]);
    assert!(
        refused.contains("signature format \"pgp\" not supported"),
        "{refused}"
    );

    // 127.0.0.1:<port> is HTTPS unless config.json lists it (as notation treats it).
    let registry = hsm_notary_suite::services::DistributionRegistry::start().unwrap();
    let host = format!("127.0.0.1:{}", registry.port);
    let artifact = ArtifactRef::parse(&format!("{host}/app:v1")).unwrap();
    let remote = Registry::connect(
        &artifact,
        &Options {
            insecure: true,
            ..Options::default()
        },
    )
    .unwrap();
    let pushed = remote
        .push_image(br#"{"os":"linux"}"#, &[b"layer"], "v1")
        .unwrap();
    let reference = format!("{host}/app@{}", pushed.digest);
    std::fs::remove_file(dir.join("config.json")).unwrap();
    fails(dir, &["ls", &reference]);
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"insecureRegistries": ["{host}"]}}"#),
    )
    .unwrap();
    let listed = ok(dir, &["ls", &reference]);
    assert!(listed.contains("has no associated signatures"), "{listed}");
}

#[test]
fn listings_print_json_with_o_json() {
    let (config, _) = signer();
    let dir = config.path();
    let keys: serde_json::Value =
        serde_json::from_str(&ok(dir, &["key", "list", "-o", "json"])).unwrap();
    assert_eq!(keys[0]["name"], "signer", "{keys}");
    assert_eq!(keys[0]["default"], true, "{keys}");
    let certs: serde_json::Value =
        serde_json::from_str(&ok(dir, &["cert", "list", "-o", "json"])).unwrap();
    assert_eq!(certs[0]["storeType"], "ca", "{certs}");
    assert_eq!(certs[0]["storeName"], "signer", "{certs}");
    let (layout, digest, _) = layout_case();
    let reference = format!("{}@{digest}", path(&layout));
    let listed: serde_json::Value =
        serde_json::from_str(&ok(dir, &["ls", "--oci-layout", "-o", "json", &reference])).unwrap();
    let signatures = listed["signatures"].as_array().unwrap();
    assert!(!signatures.is_empty(), "{listed}");
    assert!(
        signatures[0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{listed}"
    );
    assert_eq!(
        signatures[0]["artifactType"],
        "application/vnd.cncf.notary.signature"
    );
}

#[test]
fn cert_generate_test_prints_notations_lines_in_notations_order() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    let made = ok(dir, &["cert", "generate-test", "--default", "e2e"]);
    let lines: Vec<&str> = made.lines().collect();
    let keys = dir.join("localkeys");
    assert_eq!(lines[0], "generating RSA Key with 2048 bits", "{made}");
    let expiry = lines[1]
        .strip_prefix("generated certificate expiring on ")
        .unwrap_or_else(|| panic!("{made}"));
    assert!(
        notary_verifier::Instant::parse_rfc3339(expiry).is_some() && expiry.ends_with('Z'),
        "{expiry}"
    );
    assert_eq!(
        &lines[2..],
        [
            format!("wrote key: {}", path(&keys.join("e2e.key"))).as_str(),
            &format!("wrote certificate: {}", path(&keys.join("e2e.crt"))),
            "Successfully added e2e.crt to named store e2e of type ca",
            "e2e: added to the key list",
            "e2e: marked as default signing key",
        ],
        "{made}"
    );
    // notation's -b/--bits; the key is what it says.
    let bigger = ok(dir, &["cert", "generate-test", "-b", "3072", "e3"]);
    assert!(
        bigger.starts_with("generating RSA Key with 3072 bits\n"),
        "{bigger}"
    );
    let described = ok(dir, &["key", "describe", "e3"]);
    assert!(described.contains("key: RSA-3072"), "{described}");
    let small = fails(dir, &["cert", "generate-test", "--bits", "1024", "e4"]);
    assert!(
        small.contains("RSA key size 1024 is not supported"),
        "{small}"
    );
    let again = fails(dir, &["cert", "generate-test", "e2e"]);
    assert!(
        again.contains(&format!(
            "Error: failed to write key file: open {}: file exists",
            path(&keys.join("e2e.key"))
        )),
        "{again}"
    );
    // The key made under --default signs, and what it signs verifies.
    let blob = dir.join("b.txt");
    std::fs::write(&blob, b"bytes").unwrap();
    ok(dir, &["blob", "sign", &path(&blob)]);
    ok(
        dir,
        &["blob", "sign", "--key", "e3", "--force", &path(&blob)],
    );
    let listed = ok(dir, &["cert", "list"]);
    assert!(
        listed.starts_with("STORE TYPE   STORE NAME   CERTIFICATE   \n"),
        "{listed}"
    );
    let missing = fails(
        dir,
        &[
            "cert", "delete", "--type", "ca", "--store", "e2e", "-y", "x.crt",
        ],
    );
    assert_eq!(
        missing.trim(),
        format!(
            "Error: failed to delete the certificate file: stat {}: no such file or directory",
            path(&dir.join("truststore/x509/ca/e2e/x.crt"))
        )
    );
}

#[test]
fn policy_import_and_show_answer_as_notation_does() {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path();
    assert_eq!(
        fails(dir, &["policy", "import"]).trim(),
        "Error: requires 1 argument but received 0.\nUsage: hsm-notary policy import <path-to-policy.json>\nPlease specify a trust policy file location as the argument"
    );
    let absent = dir.join("absent.json");
    assert_eq!(
        fails(dir, &["policy", "import", &path(&absent)]).trim(),
        format!(
            "Error: failed to read OCI trust policy configuration: open {}: no such file or directory",
            path(&absent)
        )
    );
    assert_eq!(
        fails(dir, &["policy", "show"]).trim(),
        "Error: failed to show OCI trust policy as it does not exist.\nYou can import one using `hsm-notary policy import <path-to-policy.json>`"
    );
    // A legacy trustpolicy.json is shown with the deprecation warning on stderr.
    let policy = br#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:s"],"trustedIdentities":["*"]}]}"#;
    std::fs::write(dir.join("trustpolicy.json"), policy).unwrap();
    let shown = run(dir, &["policy", "show"]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert_eq!(shown.stdout, policy);
    assert_eq!(
        String::from_utf8_lossy(&shown.stderr).trim(),
        "Warning: old trust policy `trustpolicy.json` is deprecated; please update the trust policy configuration via `hsm-notary policy import`."
    );
    // An invalid policy: the bytes on stdout, why on stderr, exit 1.
    let invalid = br#"{"version":"1.0","trustPolicies":[]}"#;
    std::fs::write(dir.join("trustpolicy.oci.json"), invalid).unwrap();
    let shown = run(dir, &["policy", "show"]);
    assert_eq!(shown.status.code(), Some(1), "{}", text(&shown));
    assert_eq!(shown.stdout, invalid);
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(
        stderr.starts_with("Existing OCI trust policy configuration is invalid, you may update or create a new one via `hsm-notary policy import <path-to-policy.json>`. See https://github.com/notaryproject/specifications/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("#trust-policy-for-oci-artifacts for a trust policy example.\nError: "),
        "{stderr}"
    );
}

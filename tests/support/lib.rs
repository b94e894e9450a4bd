//! Shared helpers of the integration tests: the conformance corpus (`tests/conformance/`,
//! copied from `../shared/conformance`) and how each kind of case runs through a verifier
//! engine (native library or wasm component) or through the `hsm-notary` binary.

pub mod approval;
pub mod pki;
pub mod services;
pub mod wasi_http;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hsm_notary::engine::Verifier;
use notary_verifier::{
    Decision, Descriptor, DocumentKind, Evidence, Instant, Outcome, PolicyInput, Selector,
    SignatureInput, StoreType, Target, TimestampInfo, ValidationStatus, VerifyRequest,
};
use serde_json::Value;

/// `check` decided by both arithmetics a process-wide `switch` selects (`false`: the
/// RustCrypto crate's constant-time path, then `true`: the variable-time one, left on),
/// which must agree; the decision.
pub fn decide_both<T: PartialEq + std::fmt::Debug>(
    switch: fn(bool),
    what: &str,
    check: impl Fn() -> T,
) -> T {
    switch(false);
    let constant_time = check();
    switch(true);
    let variable_time = check();
    assert_eq!(variable_time, constant_time, "{what}");
    variable_time
}

/// `bytes` with bit 0 and then bit 7 of each byte at `positions` flipped, one variant
/// each, named `byte I ^ 0xB`.
pub fn bit_flips(bytes: &[u8], positions: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &i in positions {
        for bit in [0x01u8, 0x80] {
            let mut v = bytes.to_vec();
            v[i] ^= bit;
            out.push((format!("byte {i} ^ {bit:#x}"), v));
        }
    }
    out
}

/// Every document of a (multi-document) YAML text, as Kubernetes manifests are written.
pub fn yaml_documents(text: &str) -> Result<Vec<serde_yaml_ng::Value>> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| serde_yaml_ng::Value::deserialize(document).map_err(Into::into))
        .collect()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `hsm-notary` binary built beside the test executable (`cargo test --workspace`
/// builds it).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let binary = dir.join("hsm-notary");
    assert!(
        binary.exists(),
        "{} not found: run the tests with `cargo test --workspace`",
        binary.display()
    );
    refuse_stale(
        &binary,
        "run `cargo build -p hsm-notary` or `cargo test --workspace`",
    );
    binary
}

/// The `notation-hsm-notary` plugin executable built beside `hsm-notary`.
pub fn plugin_binary() -> PathBuf {
    let binary = binary().with_file_name("notation-hsm-notary");
    assert!(binary.exists(), "{} not found", binary.display());
    refuse_stale(&binary, "run `cargo build -p hsm-notary`");
    binary
}

/// A JWS over `target`, signed by the local key `key` with its `chain` file and the
/// `extended` signed attributes (key, value, critical), made with the signing library:
/// for signatures no signer here makes (ones that name a verification plugin).
pub fn envelope_with_attributes(
    key: &Path,
    chain: &Path,
    target: &notary_verifier::Descriptor,
    extended: &[(&str, &str, bool)],
) -> Result<Vec<u8>> {
    use notary_verifier::envelope::ExtendedAttribute;
    use notary_verifier::sign::{Format, SignRequest, SignedAttributes, assemble, prepare};
    let key = hsm_notary::sign::local::LocalKey::read(key)?;
    let chain = hsm_notary::sign::read_chain(chain)?;
    let payload = notary_verifier::payload::build(target);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let signing_time = Instant::from_unix(now, 0);
    let algorithm = notary_verifier::sign::check_signing_chain(&chain, signing_time)
        .map_err(anyhow::Error::msg)?;
    let request = SignRequest {
        format: Format::Jws,
        attributes: SignedAttributes {
            algorithm,
            content_type: notary_verifier::sign::payload_content_type().to_owned(),
            signing_time,
            expiry: None,
            extended: extended
                .iter()
                .map(|(key, value, critical)| ExtendedAttribute {
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                    critical: *critical,
                })
                .collect(),
        },
        payload: &payload,
        certificate_chain: chain,
        signing_agent: "hsm-notary-tests".to_owned(),
        timestamp_token: None,
    };
    let prepared = prepare(&request);
    let signature = key.sign(&prepared.to_sign)?;
    Ok(assemble(&request, &prepared, &signature))
}

/// A command's stdout then stderr, as text (what a user sees).
pub fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The command failed with exit status 1 and said `needle`.
pub fn assert_fails_with(output: &std::process::Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    assert!(
        text(output).contains(needle),
        "expected {needle:?} in:\n{}",
        text(output)
    );
}

/// Write `text` to `path` as an executable file (0755).
pub fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A shell-script plugin `dir/notation-{name}` whose `get-plugin-metadata` names
/// `version` and `capabilities` (JSON strings, comma-separated), `body` (`case` arms
/// over "$1") answering the other commands, and anything else failing with an error
/// response. Plugins as a test writes them: real processes, any behaviour.
pub fn script_plugin(
    dir: &Path,
    name: &str,
    version: &str,
    capabilities: &str,
    body: &str,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("notation-{name}"));
    write_executable(
        &path,
        &format!(
            "#!/bin/sh\ncase \"$1\" in\nget-plugin-metadata) printf '%s' '{{\"name\":\"{name}\",\"description\":\"a test plugin\",\"version\":\"{version}\",\"url\":\"https://example.com\",\"supportedContractVersions\":[\"1.0\"],\"capabilities\":[{capabilities}]}}';;\n{body}\n*) printf '%s' '{{\"errorCode\":\"ERROR\",\"errorMessage\":\"unsupported command\"}}' >&2; exit 1;;\nesac\n"
        ),
    )?;
    Ok(path)
}

/// Copy the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Every file and directory below `dir` with its bytes (directories: empty), sorted: to
/// show that a failed command changed nothing.
pub fn tree(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if std::fs::symlink_metadata(&path)?.is_dir() {
            out.push((path.clone(), Vec::new()));
            out.extend(tree(&path)?);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.push((path, bytes));
        }
    }
    out.sort();
    Ok(out)
}

/// The statically linked `hsm-notary` (musl), as `scripts/build-static.sh` builds it for
/// distroless images (Ratify's); not older than its sources.
pub fn static_binary() -> PathBuf {
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let binary = root()
        .join("target")
        .join(&triple)
        .join("release")
        .join("hsm-notary");
    assert!(
        binary.exists(),
        "{} not found: build it with scripts/build-static.sh (scripts/test.sh does)",
        binary.display()
    );
    refuse_stale(&binary, "run scripts/build-static.sh");
    binary
}

/// `cargo test --test x` alone does not rebuild a binary; testing a stale one would test
/// old code.
fn refuse_stale(binary: &Path, how: &str) {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = [
        "host/src",
        "verifier-component/src",
        "verifier-component/component/src",
    ]
    .iter()
    .filter_map(|dir| newest_change(&root.join(dir)))
    .max();
    if let (Some(built), Some(newest)) = (built, newest) {
        assert!(
            built >= newest,
            "{} is older than its sources: {how}",
            binary.display()
        );
    }
}

fn newest_change(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_change(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// One conformance case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Folder name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// `case.json`.
    pub json: Value,
}

impl Case {
    /// The `kind`.
    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or_default()
    }

    /// `expected`.
    pub fn expected(&self) -> &Value {
        &self.json["expected"]
    }

    fn path(&self, field: &str) -> Option<PathBuf> {
        self.json[field].as_str().map(|p| self.dir.join(p))
    }

    /// Whether upstream matched messages case-insensitively (the e2e suite does).
    pub fn case_insensitive(&self) -> bool {
        self.json["source"]["test_file"]
            .as_str()
            .is_some_and(|f| f.starts_with("test/e2e"))
    }
}

/// Every case listed in `tests/conformance/cases.json`.
pub fn cases() -> Result<Vec<Case>> {
    let base = root().join("tests/conformance");
    let index: Value = serde_json::from_slice(&std::fs::read(base.join("cases.json"))?)?;
    let mut out = Vec::new();
    for entry in index["cases"]
        .as_array()
        .context("cases.json has no cases")?
    {
        let dir = base.join(entry["path"].as_str().context("case without path")?);
        let json: Value = serde_json::from_slice(&std::fs::read(dir.join("case.json"))?)?;
        out.push(Case {
            name: json["name"].as_str().unwrap_or_default().to_owned(),
            dir,
            json,
        });
    }
    Ok(out)
}

/// The result of running one case on one engine.
#[derive(Clone, Debug)]
pub struct Run {
    /// What the engine returned, serialized; native and wasm must agree byte for byte.
    pub observation: String,
    /// Mismatches with the expected outcome (empty = pass).
    pub problems: Vec<String>,
}

fn now() -> Instant {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_unix(d.as_secs() as i64, 0)
}

fn time_of(case: &Case) -> Instant {
    case.json["verification_time"]
        .as_i64()
        .map(|s| Instant::from_unix(s, 0))
        .unwrap_or_else(now)
}

fn policy_of(case: &Case, kind: DocumentKind) -> Result<PolicyInput> {
    let path = case
        .path("trust_policy")
        .context("case without trust_policy")?;
    Ok(PolicyInput {
        kind,
        content: std::fs::read(&path).with_context(|| path.display().to_string())?,
    })
}

fn document_kind(case: &Case) -> DocumentKind {
    match case.json["document_type"].as_str() {
        Some("blob") => DocumentKind::Blob,
        _ if case.kind() == "verify-blob" => DocumentKind::Blob,
        _ => DocumentKind::Oci,
    }
}

fn stores_of(case: &Case) -> Result<notary_verifier::TrustStores> {
    match case.path("trust_store") {
        Some(dir) => hsm_notary::config::truststore::read(&dir),
        None => Ok(Default::default()),
    }
}

fn signatures_of(case: &Case) -> Result<Vec<SignatureInput>> {
    let mut out = Vec::new();
    for s in case.json["signatures"].as_array().into_iter().flatten() {
        let path = case
            .dir
            .join(s["envelope_path"].as_str().context("envelope_path")?);
        out.push(SignatureInput {
            media_type: s["envelope_media_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            envelope: std::fs::read(&path).with_context(|| path.display().to_string())?,
            manifest_digest: s["manifest_digest"].as_str().map(str::to_owned),
            prior_failure: None,
        });
    }
    Ok(out)
}

fn descriptor_of(value: &Value) -> Descriptor {
    Descriptor {
        media_type: value["mediaType"].as_str().unwrap_or_default().to_owned(),
        digest: value["digest"].as_str().unwrap_or_default().to_owned(),
        size: value["size"].as_u64().unwrap_or_default(),
        artifact_type: None,
        annotations: Default::default(),
    }
}

/// The verify request a case describes.
pub fn request_of(case: &Case) -> Result<VerifyRequest> {
    let kind = document_kind(case);
    let target = match case.kind() {
        "verify-blob" => {
            let d = &case.json["blob_descriptor"];
            Target::Blob {
                policy_name: case.json["policy_name"].as_str().map(str::to_owned),
                media_type: d["mediaType"].as_str().map(str::to_owned),
                digest: d["digest"].as_str().unwrap_or_default().to_owned(),
                size: d["size"].as_u64().unwrap_or_default(),
            }
        }
        _ => Target::Oci {
            reference: case.json["artifact_reference"]
                .as_str()
                .unwrap_or("localhost:5000/e2e@sha256:00")
                .to_owned(),
            descriptor: descriptor_of(&case.json["artifact"]["descriptor"]),
        },
    };
    let user_metadata = case.json["user_metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(VerifyRequest {
        policy: policy_of(case, kind)?,
        trust_stores: stores_of(case)?,
        target,
        signatures: signatures_of(case)?,
        user_metadata,
        verification_time: time_of(case),
        revocation_evidence: Vec::new(),
        max_signatures: case.json["max_signature_attempts"].as_u64().unwrap_or(100) as u32,
        plugin_evidence: Vec::new(),
    })
}

/// Substring check, case-insensitive where upstream was.
fn contains(case: &Case, haystack: &str, needle: &str) -> bool {
    if case.case_insensitive() {
        haystack.to_lowercase().contains(&needle.to_lowercase())
    } else {
        haystack.contains(needle)
    }
}

fn check_messages(case: &Case, text: &str, problems: &mut Vec<String>) {
    let expected = case.expected();
    let mut needles: Vec<&str> = Vec::new();
    for field in ["message_contains", "error_contains"] {
        if let Some(m) = expected[field].as_str() {
            needles.push(m);
        }
    }
    for m in expected["all_messages_contain"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(m) = m.as_str() {
            needles.push(m);
        }
    }
    for needle in needles {
        if !contains(case, text, needle) {
            problems.push(format!("message {needle:?} not found in:\n{text}"));
        }
    }
}

/// The validation that failed, in the corpus' vocabulary.
pub fn failed_validation(outcome: &Outcome) -> Option<String> {
    use notary_verifier::FailureKind as K;
    let failure = outcome.failure.as_ref()?;
    match failure.kind {
        K::TrustPolicy | K::NoApplicablePolicy => return Some("trust-policy".into()),
        K::SignatureRetrieval => return Some("signature-retrieval".into()),
        K::UserMetadata => return Some("user-metadata".into()),
        K::InvalidInput => return Some("invalid-input".into()),
        _ => {}
    }
    // The deepest enforced failure among the signatures tried.
    let enforced = outcome
        .signatures
        .iter()
        .flat_map(|s| s.results.iter())
        .filter(|r| {
            r.status == ValidationStatus::Failed && r.action == notary_verifier::Action::Enforce
        })
        .map(|r| r.check)
        .max();
    if let Some(check) = enforced {
        return Some(check.spec_name().to_owned());
    }
    let last = outcome
        .signatures
        .iter()
        .rev()
        .find_map(|s| s.failure.as_ref());
    Some(match last.map(|f| f.kind).unwrap_or(failure.kind) {
        K::UserMetadata => "user-metadata".into(),
        _ => "integrity".into(),
    })
}

fn expect_outcome(case: &Case, success: bool, problems: &mut Vec<String>) {
    let expected = case.expected()["outcome"].as_str().unwrap_or_default();
    let actual = if success { "success" } else { "failure" };
    if expected != actual {
        problems.push(format!("outcome {actual}, expected {expected}"));
    }
}

fn run_verify(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let request = request_of(case)?;
    let outcome = engine.verify(&request)?;
    let mut problems = Vec::new();
    let expected = case.expected();
    expect_outcome(case, outcome.decision != Decision::Failed, &mut problems);
    let failed = failed_validation(&outcome);
    if failed.as_deref() != expected["failed_validation"].as_str() {
        problems.push(format!(
            "failed validation {failed:?}, expected {:?}",
            expected["failed_validation"]
        ));
    }
    if let (Some(level), Some(policy)) = (expected["level"].as_str(), &outcome.policy)
        && policy.level.name() != level
    {
        problems.push(format!("level {}, expected {level}", policy.level.name()));
    }
    let display = match &request.target {
        Target::Oci { reference, .. } => reference.clone(),
        Target::Blob { digest, .. } => digest.clone(),
    };
    let rendered = hsm_notary::output::verify(&outcome, &display);
    let text = format!("{}{}", rendered.stderr, rendered.stdout);
    check_messages(case, &text, &mut problems);
    let results: Vec<_> = outcome
        .signatures
        .iter()
        .flat_map(|s| s.results.iter())
        .collect();
    for logged in expected["logged_failures"].as_array().into_iter().flatten() {
        let validation = logged["validation"].as_str().unwrap_or_default();
        let needle = logged["message_contains"].as_str().unwrap_or_default();
        let found = outcome
            .verified_signature()
            .into_iter()
            .flat_map(|s| s.results.iter())
            .any(|r| {
                r.is_logged_failure()
                    && r.check.policy_name() == validation
                    && r.message
                        .as_deref()
                        .is_some_and(|m| contains(case, m, needle))
            });
        if !found {
            problems.push(format!("logged failure {validation} {needle:?} missing"));
        }
    }
    if outcome.decision == Decision::Verified
        && expected["logged_failures"]
            .as_array()
            .is_some_and(|l| l.is_empty())
        && let Some(r) = outcome
            .verified_signature()
            .and_then(|s| s.logged_failures().next())
    {
        problems.push(format!("unexpected logged failure {:?}", r));
    }
    if let Some(vr) = expected["validation_result"].as_object() {
        let check = vr["type"].as_str().unwrap_or_default();
        let action = vr["action"].as_str().unwrap_or_default();
        match results.iter().find(|r| r.check.policy_name() == check) {
            None => problems.push(format!("no {check} result")),
            Some(r) => {
                if r.action.name() != action {
                    problems.push(format!(
                        "{check} action {}, expected {action}",
                        r.action.name()
                    ));
                }
                if let Some(needle) = vr["error_contains"].as_str() {
                    if !r.message.as_deref().is_some_and(|m| m.contains(needle)) {
                        problems.push(format!("{check} error {:?} lacks {needle:?}", r.message));
                    }
                } else if r.status == ValidationStatus::Failed {
                    problems.push(format!("{check} failed: {:?}", r.message));
                }
            }
        }
    }
    Ok(Run {
        observation: outcome.to_json(),
        problems,
    })
}

/// Evidence for cases whose TSA chain the reference checked online: the harness vouches
/// for "not revoked", as the case's `tsa_revocation_check` allows, and says so.
fn tsa_evidence(
    case: &Case,
    engine: &dyn Verifier,
    request: &VerifyRequest,
) -> Result<Vec<Evidence>> {
    let online = case.json["tsa_revocation_check"]
        .as_str()
        .is_some_and(|s| s.starts_with("network"));
    let Some(signature) = request.signatures.first().filter(|_| online) else {
        return Ok(Vec::new());
    };
    let mut evidence = Vec::new();
    if let Ok(info) = engine.inspect(signature)?
        && let Some(TimestampInfo::Range(range)) = info.timestamp
    {
        for cert in range.certificates {
            if !cert.ocsp_urls.is_empty() || !cert.crl_urls.is_empty() {
                evidence.push(Evidence::Asserted {
                        certificate_sha256: cert.sha256,
                        status: notary_verifier::revocation::Status::Good,
                        source: "conformance harness: the reference checked this TSA chain online (tsa_revocation_check); no network here".into(),
                    });
            }
        }
    }
    Ok(evidence)
}

fn run_single_result(
    case: &Case,
    result: notary_verifier::ValidationResult,
    problems: &mut Vec<String>,
) -> String {
    let passed = result.status == ValidationStatus::Passed;
    expect_outcome(case, passed, problems);
    if !passed {
        let check = result.check.spec_name();
        if case.expected()["failed_validation"].as_str() != Some(check) {
            problems.push(format!(
                "failed validation {check}, expected {:?}",
                case.expected()["failed_validation"]
            ));
        }
    }
    check_messages(
        case,
        result.message.as_deref().unwrap_or_default(),
        problems,
    );
    serde_json::to_string(&result).unwrap_or_default()
}

fn run_authentic_timestamp(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let mut request = request_of(case)?;
    request.revocation_evidence = tsa_evidence(case, engine, &request)?;
    let result = engine.check_authentic_timestamp(&request)?;
    let mut problems = Vec::new();
    let observation = run_single_result(case, result, &mut problems);
    Ok(Run {
        observation,
        problems,
    })
}

fn run_timestamp_token(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let request = request_of(case)?;
    let token = std::fs::read(case.path("timestamp_token").context("timestamp_token")?)?;
    let message = std::fs::read(
        case.path("timestamped_message")
            .context("timestamped_message")?,
    )?;
    let result = engine.check_timestamp_token(&request, &token, &message, &[])?;
    let mut problems = Vec::new();
    let observation = run_single_result(case, result, &mut problems);
    Ok(Run {
        observation,
        problems,
    })
}

fn run_policy_validation(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let policy = policy_of(case, document_kind(case))?;
    let result = engine.check_policy(&policy)?;
    let mut problems = Vec::new();
    expect_outcome(case, result.is_ok(), &mut problems);
    match &result {
        Ok(statements) => {
            let first = statements.first();
            if let (Some(level), Some(p)) = (case.expected()["level"].as_str(), first)
                && p.level.name() != level
            {
                problems.push(format!("level {}, expected {level}", p.level.name()));
            }
            if let (Some(actions), Some(p)) =
                (case.expected()["effective_actions"].as_object(), first)
            {
                let actual = serde_json::to_value(p.actions)?;
                if actual != Value::Object(actions.clone()) {
                    problems.push(format!("actions {actual}, expected {actions:?}"));
                }
            }
        }
        Err(f) => check_messages(case, &f.message, &mut problems),
    }
    Ok(Run {
        observation: serde_json::to_string(&result)?,
        problems,
    })
}

fn run_policy_selection(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let kind = document_kind(case);
    let policy = policy_of(case, kind)?;
    let selector = match kind {
        DocumentKind::Oci => Selector::OciReference(
            case.json["artifact_reference"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        DocumentKind::Blob => {
            Selector::BlobPolicyName(case.json["policy_name"].as_str().map(str::to_owned))
        }
    };
    let result = engine.select_policy(&policy, &selector)?;
    let mut problems = Vec::new();
    expect_outcome(case, result.is_ok(), &mut problems);
    match &result {
        Ok(p) => {
            if case.expected()["selected_statement"].as_str() != Some(p.statement.as_str()) {
                problems.push(format!(
                    "selected {}, expected {:?}",
                    p.statement,
                    case.expected()["selected_statement"]
                ));
            }
        }
        Err(f) => check_messages(case, &f.message, &mut problems),
    }
    Ok(Run {
        observation: serde_json::to_string(&result)?,
        problems,
    })
}

fn run_store_load(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let stores = stores_of(case)?;
    let store_type = match case.json["store_type"].as_str() {
        Some("ca") => StoreType::Ca,
        Some("signingAuthority") => StoreType::SigningAuthority,
        Some("tsa") => StoreType::Tsa,
        other => bail!("unknown store type {other:?}"),
    };
    let name = case.json["store_name"].as_str().unwrap_or_default();
    let result = engine.load_trust_store(&stores, store_type, name)?;
    let mut problems = Vec::new();
    expect_outcome(case, result.is_ok(), &mut problems);
    match &result {
        Ok(certs) => {
            if let Some(count) = case.expected()["certificate_count"].as_u64()
                && certs.len() as u64 != count
            {
                problems.push(format!("{} certificates, expected {count}", certs.len()));
            }
        }
        Err(f) => check_messages(case, &f.message, &mut problems),
    }
    Ok(Run {
        observation: serde_json::to_string(&result)?,
        problems,
    })
}

fn run_envelope_parse(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    let signature = signatures_of(case)?
        .into_iter()
        .next()
        .context("no signature")?;
    let result = engine.inspect(&signature)?;
    let mut problems = Vec::new();
    expect_outcome(case, result.is_ok(), &mut problems);
    match &result {
        Ok(info) => {
            if let Some(tree_file) = case.expected()["inspect_tree"].as_str() {
                let expected = std::fs::read_to_string(case.dir.join(tree_file))?;
                let rendered = hsm_notary::output::inspect_tree("ROOT", info).render();
                let ours: Vec<&str> = rendered.lines().skip(1).collect();
                // OCI inspect output nests the signature under two header nodes.
                let start = expected
                    .lines()
                    .position(|l| l.trim_start().starts_with("├── signature algorithm"))
                    .unwrap_or(0);
                let indent = expected
                    .lines()
                    .nth(start)
                    .map(|l| l.len() - l.trim_start().len())
                    .unwrap_or(0);
                let theirs: Vec<String> = expected
                    .lines()
                    .skip(start)
                    .map(|l| l.chars().skip(indent).collect())
                    .collect();
                if ours != theirs {
                    problems.push(format!(
                        "inspect tree differs:\n--- ours\n{}\n--- expected\n{}",
                        ours.join("\n"),
                        theirs.join("\n")
                    ));
                }
            }
            if let Some(json_file) = case.expected()["inspect_json"].as_str() {
                let expected: Value =
                    serde_json::from_slice(&std::fs::read(case.dir.join(json_file))?)?;
                let (expected_sig, digest) = match expected.get("signatures") {
                    Some(list) => {
                        let first = list[0].clone();
                        let digest = first["digest"].as_str().map(str::to_owned);
                        (first, digest)
                    }
                    None => (expected.clone(), None),
                };
                let ours = hsm_notary::output::inspect_json(info, digest.as_deref());
                if ours != expected_sig {
                    problems.push(format!(
                        "inspect json differs:\n--- ours\n{}\n--- expected\n{}",
                        serde_json::to_string_pretty(&ours)?,
                        serde_json::to_string_pretty(&expected_sig)?
                    ));
                }
            }
            check_messages(
                case,
                &hsm_notary::output::inspect_tree("ROOT", info).render(),
                &mut problems,
            );
        }
        Err(f) => {
            let text = format!("failed to parse signature: {}", f.message);
            check_messages(case, &text, &mut problems);
        }
    }
    Ok(Run {
        observation: serde_json::to_string(&result)?,
        problems,
    })
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn run_sign_vector(case: &Case) -> Result<Run> {
    use notary_verifier::envelope::ExtendedAttribute;
    use notary_verifier::sign::{Format, SignRequest, SignedAttributes, assemble, prepare};
    use notary_verifier::signature::SignatureAlgorithm;
    let request = &case.json["signing_request"];
    let vector: Value =
        serde_json::from_slice(&std::fs::read(case.path("vector").context("vector")?)?)?;
    let cose = case.kind() == "cose-sign-vector";
    let time = |unix: &str, text: &str| -> Option<Instant> {
        request[unix]
            .as_i64()
            .map(|s| Instant::from_unix(s, 0))
            .or_else(|| request[text].as_str().and_then(Instant::parse_rfc3339))
    };
    let extended = request["extended_signed_attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| ExtendedAttribute {
            key: a["key"].as_str().unwrap_or_default().to_owned(),
            value: a["value"].as_str().unwrap_or_default().to_owned(),
            critical: a["critical"].as_bool().unwrap_or(false),
        })
        .collect();
    let payload = request["payload_utf8"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let sign_request = SignRequest {
        format: if cose { Format::Cose } else { Format::Jws },
        attributes: SignedAttributes {
            algorithm: if cose {
                SignatureAlgorithm::RsassaPssSha384
            } else {
                SignatureAlgorithm::EcdsaSha256
            },
            content_type: request["payload_content_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            signing_time: time("signing_time_unix", "signing_time").context("signing time")?,
            expiry: time("expiry_unix", "expiry"),
            extended,
        },
        payload: &payload,
        certificate_chain: Vec::new(),
        signing_agent: request["signing_agent"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        timestamp_token: None,
    };
    let prepared = prepare(&sign_request);
    let mut problems = Vec::new();
    let observation = if cose {
        // Rebuild with the vector's placeholder signature and no x5chain, as upstream does.
        let expected = hex_decode(
            vector["expectedOutput"]["cborHex"]
                .as_str()
                .unwrap_or_default(),
        );
        let placeholder = cose_signature(&expected);
        let ours = assemble(&sign_request, &prepared, &placeholder);
        if ours != expected {
            problems.push(format!(
                "COSE bytes differ:\n ours {}\n theirs {}",
                hex(&ours),
                hex(&expected)
            ));
        }
        hex(&ours)
    } else {
        let text = String::from_utf8(prepared.to_sign.clone())?;
        let (protected, payload) = text.split_once('.').context("signing input")?;
        if Some(protected) != vector["protected"].as_str() {
            problems.push(format!("protected differs: {protected}"));
        }
        if Some(payload) != vector["payload"].as_str() {
            problems.push(format!("payload differs: {payload}"));
        }
        let envelope: Value =
            serde_json::from_slice(&assemble(&sign_request, &prepared, &[1, 2, 3]))?;
        if envelope["header"]["io.cncf.notary.signingAgent"]
            != vector["header"]["io.cncf.notary.signingAgent"]
        {
            problems.push("signing agent differs".into());
        }
        text
    };
    Ok(Run {
        observation,
        problems,
    })
}

/// The signature bstr of a COSE_Sign1: the last element of the array.
fn cose_signature(bytes: &[u8]) -> Vec<u8> {
    use ciborium::Value;
    let Ok(Value::Tag(_, inner)) = ciborium::de::from_reader::<Value, _>(bytes) else {
        return Vec::new();
    };
    match *inner {
        Value::Array(items) => match items.last() {
            Some(Value::Bytes(b)) => b.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Run one case on `engine`.
pub fn run(case: &Case, engine: &dyn Verifier) -> Result<Run> {
    match case.kind() {
        "verify" | "verify-blob" => run_verify(case, engine),
        "verify-authentic-timestamp" => run_authentic_timestamp(case, engine),
        "timestamp-token" => run_timestamp_token(case, engine),
        "trust-policy-validation" => run_policy_validation(case, engine),
        "trust-policy-selection" => run_policy_selection(case, engine),
        "trust-store-load" => run_store_load(case, engine),
        "envelope-parse" => run_envelope_parse(case, engine),
        "cose-sign-vector" | "jws-sign-vector" => run_sign_vector(case),
        other => bail!("unknown case kind {other}"),
    }
}

/// Run a `verify` case that has an OCI layout through the `hsm-notary` binary; returns
/// the problems (empty = pass), or `None` when the case cannot be run by the CLI.
pub fn run_cli(case: &Case, binary: &Path) -> Result<Option<Vec<String>>> {
    if case.kind() != "verify" {
        return Ok(None);
    }
    let Some(layout) = case.json["artifact"]["oci_layout"].as_str() else {
        return Ok(None);
    };
    // The scope is the repository of the reference the corpus verifies, so that the
    // policy sees exactly `artifact_reference`.
    let artifact_reference = case.json["artifact_reference"].as_str().unwrap_or_default();
    let scope = artifact_reference
        .rsplit_once('@')
        .map(|(repository, _)| repository)
        .or(case.json["artifact"]["oci_layout_scope"].as_str())
        .unwrap_or("local/e2e");
    let digest = case.json["artifact"]["digest"].as_str().unwrap_or_default();
    let reference = format!("{}@{digest}", case.dir.join(layout).display());
    let cache = tempfile_dir()?;
    let mut command = std::process::Command::new(binary);
    command
        .args(["verify", "--oci-layout", "--scope", scope])
        .arg("--trust-policy")
        .arg(case.path("trust_policy").context("trust_policy")?)
        .arg("--trust-store")
        .arg(case.path("trust_store").context("trust_store")?)
        .arg("--max-signatures")
        .arg(
            case.json["max_signature_attempts"]
                .as_u64()
                .unwrap_or(100)
                .to_string(),
        )
        .arg(&reference)
        .env("HSM_NOTARY_CACHE", &cache);
    if let Some(t) = case.json["verification_time"].as_i64() {
        command
            .arg("--verify-at")
            .arg(Instant::from_unix(t, 0).rfc3339());
    }
    let output = command.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let mut problems = Vec::new();
    expect_outcome(case, output.status.success(), &mut problems);
    // The CLI names the artifact by its layout path; the corpus by its registry reference.
    let expected_reference = case.json["artifact_reference"].as_str().unwrap_or_default();
    let text = text.replace(&reference, expected_reference);
    check_messages(case, &text, &mut problems);
    Ok(Some(problems))
}

/// One cache directory (CRLs) shared by the CLI runs of the test suite that do not need
/// their own.
pub fn component_cache() -> PathBuf {
    root().join("target").join("test-component-cache")
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = component_cache();
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The component engine, from the binary's precompiled component.
pub fn component_engine() -> hsm_notary::engine::ComponentEngine {
    hsm_notary::engine::ComponentEngine::new(hsm_notary::engine::component::COMPONENT)
        .expect("the embedded component loads")
}

/// A request for one envelope in `format`, signed now by a fresh local `spec` key whose
/// certificate a generated root issued, under a strict policy that trusts that root.
pub fn signed_request(
    spec: notary_verifier::signature::KeySpec,
    format: notary_verifier::sign::Format,
) -> Result<VerifyRequest> {
    use hsm_notary::sign::{KeySource, SigningKey, local::LocalKey};
    let day = std::time::Duration::from_secs(86_400);
    let (root_key, root_der) = hsm_notary::certgen::root("signed-request", day)?;
    let key = LocalKey::generate(spec)?;
    let leaf = hsm_notary::certgen::leaf(
        "signed-request",
        &key.public_key_der()?,
        &root_key,
        &root_der,
        day,
    )?;
    let signing = SigningKey {
        source: KeySource::Local(Box::new(key)),
        chain: vec![leaf, root_der.clone()],
    };
    request_signed_by(&signing, root_der, format, "s", "s")
}

/// A request for `signing`'s envelope in `format` over a fixed descriptor, made and
/// verified now, under one strict statement `policy` that trusts `root_der` as the store
/// `ca:store`; no revocation evidence.
pub fn request_signed_by(
    signing: &hsm_notary::sign::SigningKey,
    root_der: Vec<u8>,
    format: notary_verifier::sign::Format,
    policy: &str,
    store: &str,
) -> Result<VerifyRequest> {
    use notary_verifier::{NamedStore, StoreFile, TrustStores};
    let target = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 1234,
        ..Descriptor::default()
    };
    let now = hsm_notary::commands::verification_time(None)?;
    let signed = hsm_notary::sign::sign_descriptor(signing, format, &target, None, now, None)?;
    Ok(VerifyRequest {
        policy: PolicyInput {
            kind: DocumentKind::Oci,
            content: serde_json::json!({"version": "1.0", "trustPolicies": [{
                "name": policy,
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": [format!("ca:{store}")],
                "trustedIdentities": ["*"],
            }]})
            .to_string()
            .into_bytes(),
        },
        trust_stores: TrustStores {
            stores: vec![NamedStore {
                store_type: StoreType::Ca,
                name: store.into(),
                files: vec![StoreFile {
                    name: "root.der".into(),
                    content: root_der,
                }],
            }],
        },
        target: Target::Oci {
            reference: format!("registry.example/app@{}", target.digest),
            descriptor: target,
        },
        signatures: vec![SignatureInput {
            media_type: signed.media_type.into(),
            envelope: signed.envelope,
            manifest_digest: None,
            prior_failure: None,
        }],
        user_metadata: Vec::new(),
        verification_time: now,
        revocation_evidence: Vec::new(),
        max_signatures: 100,
        plugin_evidence: Vec::new(),
    })
}

/// Known divergences: cases we believe the reference gets wrong (each with a reason). They
/// still count as failing.
pub fn exceptions() -> Result<serde_json::Map<String, Value>> {
    let path = root().join("tests/conformance-exceptions.json");
    if !path.exists() {
        return Ok(Default::default());
    }
    let value: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok(value.as_object().cloned().unwrap_or_default())
}

/// The signature manifest digest in `sign`'s "Pushed the signature to REF@DIGEST" line.
pub fn pushed_signature_digest(sign_output: &str) -> String {
    sign_output
        .lines()
        .find_map(|l| l.strip_prefix("Pushed the signature to "))
        .and_then(|r| r.rsplit_once('@'))
        .map(|(_, digest)| digest.to_owned())
        .unwrap_or_else(|| panic!("no \"Pushed the signature to\" line in:\n{sign_output}"))
}

/// Run `hsm-notary` on configuration directory `config`; its stdout, or an error with
/// its output.
pub fn hsm_notary(config: &Path, args: &[&str]) -> Result<String> {
    let output = std::process::Command::new(binary())
        .args(args)
        .env("HSM_NOTARY_CONFIG", config)
        .env("HSM_NOTARY_CACHE", component_cache())
        .env("DOCKER_CONFIG", config)
        .output()?;
    if !output.status.success() {
        bail!(
            "hsm-notary {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A configuration directory for admission tests: local test CAs and keys `signer`
/// (trusted) and `other` (not), and one strict statement named `statement` for every
/// registry (so that one that is down is reached, and fails closed) trusting `ca:signer`.
pub fn signer_config(config: &Path, statement: &str) -> Result<()> {
    hsm_notary(config, &["cert", "generate-test", "signer"])?;
    hsm_notary(config, &["cert", "generate-test", "other"])?;
    let policy = config.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": statement,
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:signer"],
            "trustedIdentities": ["*"],
        }]})
        .to_string(),
    )?;
    hsm_notary(
        config,
        &["policy", "import", "--force", &policy.display().to_string()],
    )?;
    Ok(())
}

/// An OCI layout holding an index of an amd64 and an arm64/v8 image, tagged `v1`; the
/// children's digests.
pub fn layout_with_index(root: &std::path::Path) -> Vec<String> {
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs directory");
    let put = |bytes: &[u8]| {
        let digest = hsm_notary::oci::sha256_digest(bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).expect("blob");
        (digest, bytes.len())
    };
    let mut children = Vec::new();
    let mut entries = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let (config, config_size) =
            put(format!(r#"{{"architecture":"{arch}","os":"linux"}}"#).as_bytes());
        let (layer, layer_size) = put(format!("layer for {arch}").as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        });
        let (digest, size) = put(manifest.to_string().as_bytes());
        let mut platform = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size, "platform": platform,
        }));
        children.push(digest);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let (digest, size) = put(index.to_string().as_bytes());
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("layout file");
    std::fs::write(
        root.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }]})
        .to_string(),
    )
    .expect("layout file");
    children
}

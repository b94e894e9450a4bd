//! The clients of a signing service: `sign --signer` (request, wait, push), `approval
//! list|show|approve|reject`, and `signer audit export|verify`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use notary_verifier::sign::Format;
use serde_json::{Value, json};

use super::verification_time;
use crate::approval::{self, Decision};
use crate::cli::{
    ServiceRequestArgs, SignArgs, SignatureFormat, SignerArgs, SigningArgs, VerifyOutput,
};
use crate::config::ConfigDir;
use crate::oci;
use crate::signer::client::Client;
use crate::signer::store::{AuditEntry, Store, verify_audit};

fn request_path(id: &str) -> Result<String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{id:?} is not a request id (hex)");
    }
    Ok(format!("v1/requests/{id}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// One line about a request.
fn summary(request: &Value) -> String {
    let approvals = request["approvals"].as_array().map_or(0, |a| {
        a.iter().filter(|x| x["decision"] == "approve").count()
    });
    format!(
        "{}  {:<8}  key {}  {}@{}  approvals {approvals}/{}  requested by {}",
        text(&request["id"]),
        text(&request["status"]),
        text(&request["key"]),
        text(&request["subject"]["mediaType"]),
        text(&request["subject"]["digest"]),
        request["required"],
        text(&request["requester"]),
    )
}

fn print_json(value: &Value) -> Result<()> {
    let mut out = serde_json::to_string_pretty(value)?;
    out.push('\n');
    Ok(super::write_stdout(out.as_bytes())?)
}

/// `approval list`.
pub fn list(service: &SignerArgs, status: &str, output: VerifyOutput) -> Result<ExitCode> {
    let client = Client::new(service)?;
    let path = match status {
        "all" => "v1/requests".to_owned(),
        s => format!("v1/requests?status={s}"),
    };
    let answer = client.get(&path)?;
    match output {
        VerifyOutput::Json => print_json(&answer)?,
        VerifyOutput::Text => {
            let requests = answer["requests"].as_array().cloned().unwrap_or_default();
            if requests.is_empty() {
                println!("No {status} signing requests.");
            }
            for request in requests {
                println!("{}", summary(&request));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `approval show ID`.
pub fn show(service: &SignerArgs, id: &str, output: VerifyOutput) -> Result<ExitCode> {
    let client = Client::new(service)?;
    let mut answer = client.get(&request_path(id)?)?;
    if let Some(map) = answer.as_object_mut() {
        map.remove("envelope");
    }
    match output {
        VerifyOutput::Json => print_json(&answer)?,
        VerifyOutput::Text => {
            println!("{}", summary(&answer));
            println!("  format: {}", text(&answer["format"]));
            if let Some(metadata) = answer["metadata"].as_object() {
                for (k, v) in metadata {
                    println!("  metadata: {k}={}", text(v));
                }
            }
            println!(
                "  expires: {}",
                notary_verifier::Instant::from_unix(answer["expires"].as_i64().unwrap_or(0), 0)
                    .utc()
                    .rfc3339()
            );
            for a in answer["approvals"].as_array().into_iter().flatten() {
                println!(
                    "  {}: {} (certificate {})",
                    text(&a["decision"]),
                    text(&a["approver"]),
                    text(&a["certificate"])
                );
            }
            if let Some(reason) = answer["reason"].as_str() {
                println!("  reason: {reason}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `approval approve|reject ID --key K`: the approver's key signs the request's bytes
/// as they came from the service, after they are checked to be the request shown.
pub fn decide(
    config: &ConfigDir,
    args: &crate::cli::ApprovalDecideArgs,
    decision: Decision,
) -> Result<ExitCode> {
    let client = Client::new(&args.service)?;
    let path = request_path(&args.id)?;
    let answer = client.get(&path)?;
    let bytes = approval::from_base64(text(&answer["request"]))
        .map_err(|e| anyhow!("the service sent a request that is not base64: {e}"))?;
    let request = approval::SigningRequest::from_bytes(&bytes)?;
    // What is signed is what was shown: the bytes parse to the request the service
    // described, for this id.
    if request.id != args.id
        || answer["subject"]["digest"] != json!(request.subject.digest)
        || answer["key"] != json!(request.key)
    {
        bail!(
            "the service's description of request {} does not match the request bytes it sent",
            args.id
        );
    }
    if answer["status"] != "pending" {
        bail!(
            "request {} is {}, not pending",
            args.id,
            text(&answer["status"])
        );
    }
    let keys = crate::config::keys::KeyList::load(config.root())?;
    let key = keys
        .get(args.key.as_deref())?
        .open(args.pkcs11_module.as_deref())?;
    let now = verification_time(None)?;
    let hash = key.algorithm(now)?.hash();
    let target = approval::approval_target(&bytes, decision, hash.oci_name())?;
    let signed = crate::sign::sign_descriptor(&key, Format::Jws, &target, None, now, None)?;
    let answer = client.post(
        &format!("{path}/decisions"),
        &json!({
            "mediaType": signed.media_type,
            "envelope": approval::to_base64(&signed.envelope),
        }),
    )?;
    let verb = match decision {
        Decision::Approve => "Approved",
        Decision::Reject => "Rejected",
    };
    println!(
        "{verb} request {} ({}@{}); it is now {}",
        args.id,
        request.key,
        request.subject.digest,
        text(&answer["status"])
    );
    Ok(ExitCode::SUCCESS)
}

/// Make a request for `subject` (or fetch `--request ID`, checked to be for it).
fn request_for(
    client: &Client,
    signing: &SigningArgs,
    via: &ServiceRequestArgs,
    config: &ConfigDir,
    subject: &oci::Descriptor,
) -> Result<Value> {
    if signing.plugin.is_some() || signing.timestamp_url.is_some() {
        bail!(
            "--signer: the signing service signs with its own key; --plugin and --timestamp-url do not apply"
        );
    }
    if let Some(id) = &via.request {
        let request = client.get(&request_path(id)?)?;
        if request["subject"]["digest"] != json!(subject.digest) {
            bail!(
                "request {id} is for {}, not {}",
                text(&request["subject"]["digest"]),
                subject.digest
            );
        }
        return Ok(request);
    }
    let key = signing
        .key
        .as_deref()
        .context("--signer: name the service's key with --key")?;
    let metadata = super::parse_metadata(&signing.user_metadata, "user-metadata")?;
    let format = match config.signature_format(signing.signature_format)? {
        SignatureFormat::Jws => "jws",
        SignatureFormat::Cose => "cose",
    };
    let expiry = crate::sign::parse_duration(&signing.expiry)?;
    let created = client.post(
        "v1/requests",
        &json!({
            "key": key,
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "metadata": metadata.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "format": format,
            "signatureExpirySeconds": expiry.as_secs(),
        }),
    )?;
    println!(
        "Requested a signature of {} with key {key}: request {} (needs {} approvals)",
        subject.digest,
        text(&created["id"]),
        created["required"]
    );
    Ok(created)
}

/// Wait (with `--wait`) until the request is signed: `Some` once signed, `None` when it
/// is still waiting and no wait was asked for; an error when it was rejected or expired,
/// or the wait ended. `resume` is the command that finishes it later.
fn until_signed(
    client: &Client,
    mut request: Value,
    via: &ServiceRequestArgs,
    resume: &str,
) -> Result<Option<Value>> {
    let id = text(&request["id"]).to_owned();
    if let Some(wait_text) = &via.wait {
        let wait = crate::sign::parse_go_duration(wait_text)?;
        let deadline = std::time::Instant::now() + wait;
        let mut last = String::new();
        while request["status"] == "pending" || request["status"] == "approved" {
            let approvals = request["approvals"].as_array().map_or(0, |a| {
                a.iter().filter(|x| x["decision"] == "approve").count()
            });
            let line = format!(
                "Waiting for approvals of request {id}: {approvals} of {}",
                request["required"]
            );
            if line != last {
                eprint!("\r{line}");
                let _ = std::io::stderr().flush();
                last = line;
            }
            if std::time::Instant::now() >= deadline {
                eprintln!();
                bail!(
                    "request {id} was not approved within {wait_text}; finish it later with `{resume}`"
                );
            }
            std::thread::sleep(Duration::from_millis(500));
            request = client.get(&request_path(&id)?)?;
        }
        if !last.is_empty() {
            eprintln!();
        }
    }
    match text(&request["status"]) {
        "signed" => Ok(Some(request)),
        "pending" | "approved" => {
            println!(
                "Request {id} is waiting for approvals; once approved, finish it with `{resume}`"
            );
            Ok(None)
        }
        other => bail!(
            "request {id} is {other}: {}",
            request["reason"].as_str().unwrap_or("no reason given")
        ),
    }
}

/// The service's envelope of a signed request, checked as our own would be: it verifies
/// against its leaf, and its payload is exactly `subject` with the requested metadata.
fn received(request: &Value, subject: &oci::Descriptor) -> Result<crate::sign::SignedEnvelope> {
    let id = text(&request["id"]);
    let bytes = approval::from_base64(text(&request["request"]))
        .map_err(|e| anyhow!("the service sent a request that is not base64: {e}"))?;
    let signed_request = approval::SigningRequest::from_bytes(&bytes)?;
    if signed_request.subject.digest != subject.digest || signed_request.id != id {
        bail!(
            "the service's request {id} does not describe {}",
            subject.digest
        );
    }
    let metadata: Vec<(String, String)> = signed_request.metadata.clone().into_iter().collect();
    let target = super::sign::target_with_metadata(subject, &metadata)?;
    let payload = notary_verifier::payload::build(&target);
    let format = if signed_request.format == "cose" {
        Format::Cose
    } else {
        Format::Jws
    };
    let envelope = approval::from_base64(text(&request["envelope"]))
        .map_err(|e| anyhow!("the service sent an envelope that is not base64: {e}"))?;
    crate::sign::received_envelope(format, envelope, &payload)
}

/// `sign --signer URL`: ask the service to sign the resolved artifact, optionally wait
/// for the approvals, then push the envelope it made.
pub fn sign_with_service(args: &SignArgs, config: &ConfigDir) -> Result<ExitCode> {
    let client = Client::new(&args.via.service)?;
    // Where the signature goes, and the artifact's descriptor there.
    enum Place {
        Layout(crate::layout::Layout, std::path::PathBuf),
        Registry(crate::registry::Registry, crate::registry::ArtifactRef),
    }
    let (place, subject) = if args.oci_layout {
        let (path, reference) = crate::layout::parse_reference(&args.reference)?;
        let layout = crate::layout::Layout::open(&path)?;
        let subject = layout.resolve(&reference)?;
        (Place::Layout(layout, path), subject)
    } else {
        let artifact = crate::registry::ArtifactRef::parse(&args.reference)?;
        let registry =
            crate::registry::Registry::connect(&artifact, &args.registry.options_in(config)?)?;
        let wanted = artifact
            .digest
            .clone()
            .or_else(|| artifact.tag.clone())
            .unwrap_or_default();
        let (_, subject) = registry.manifest(&wanted, None)?;
        (Place::Registry(registry, artifact), subject)
    };
    let request = request_for(&client, &args.signing, &args.via, config, &subject)?;
    let id = text(&request["id"]).to_owned();
    let resume = format!(
        "hsm-notary sign --signer … --request {id} {}",
        args.reference
    );
    let Some(request) = until_signed(&client, request, &args.via, &resume)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let signed = received(&request, &subject)?;
    let manifest = super::sign::signature_manifest(&subject, &signed);
    match place {
        Place::Layout(layout, path) => {
            let digest = super::sign::write_to_layout(&layout, &manifest, &signed.envelope)?;
            println!("Successfully signed {}@{}", path.display(), subject.digest);
            println!("Pushed the signature to {}@{digest}", path.display());
        }
        Place::Registry(registry, artifact) => {
            let (result, _) =
                registry.push_signature(&manifest, &signed.envelope, args.force_referrers_tag);
            let digest = result.map_err(|e| {
                anyhow!(
                    "failed to push signature to registry with error: {e:#}\n(the signature of request {id} is kept by the signing service: push it again with `{resume}`)"
                )
            })?;
            println!("Successfully signed {}@{}", artifact.name(), subject.digest);
            println!("Pushed the signature to {}@{digest}", artifact.name());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `blob sign --signer URL`: the blob's descriptor (digested with the hash the service's
/// key implies) is signed by the service once approved; the signature file is written
/// as `blob sign` writes it.
pub fn blob_sign_with_service(
    args: &crate::cli::BlobSignArgs,
    config: &ConfigDir,
    dir: &std::path::Path,
) -> Result<ExitCode> {
    let client = Client::new(&args.via.service)?;
    let key_name = match &args.via.request {
        Some(id) => text(&client.get(&request_path(id)?)?["key"]).to_owned(),
        None => args
            .signing
            .key
            .clone()
            .context("--signer: name the service's key with --key")?,
    };
    let keys = client.get("v1/keys")?;
    let hash = keys["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["name"] == json!(key_name)))
        .and_then(|k| k["hash"].as_str())
        .ok_or_else(|| anyhow!("the signing service has no key {key_name:?}"))?
        .to_owned();
    let (digest, size) = super::blob::digest_file(&args.blob, &hash)?;
    let subject = oci::Descriptor {
        media_type: args.media_type.clone(),
        digest,
        size,
        ..oci::Descriptor::default()
    };
    let request = request_for(&client, &args.signing, &args.via, config, &subject)?;
    let id = text(&request["id"]).to_owned();
    let resume = format!(
        "hsm-notary blob sign --signer … --request {id} {}",
        args.blob.display()
    );
    let Some(request) = until_signed(&client, request, &args.via, &resume)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let signed = received(&request, &subject)?;
    let extension = if signed.media_type == notary_verifier::envelope::MEDIA_TYPE_COSE {
        "cose"
    } else {
        "jws"
    };
    super::blob::write_signature_file(args, dir, extension, &signed.envelope)
}

/// `signer audit export`.
pub fn audit_export(database: Option<&std::path::Path>, service: &SignerArgs) -> Result<ExitCode> {
    let entries: Vec<AuditEntry> = match database {
        Some(path) => Store::open(path)?.audit_log()?,
        None => {
            let answer = Client::new(service)?.get("v1/audit")?;
            serde_json::from_value(answer["entries"].clone())
                .context("the service's audit log is malformed")?
        }
    };
    let mut out = String::new();
    for entry in &entries {
        out.push_str(&serde_json::to_string(entry)?);
        out.push('\n');
    }
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `signer audit verify`.
pub fn audit_verify(
    file: Option<&std::path::Path>,
    database: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let entries: Vec<AuditEntry> = match (file, database) {
        (_, Some(path)) => Store::open(path)?.audit_log()?,
        (Some(path), None) => {
            let text = crate::files::read_regular(path, 1 << 30)?;
            let text = String::from_utf8(text).context("the audit log is not UTF-8")?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .with_context(|| format!("{} line {}", path.display(), i + 1))
                })
                .collect::<Result<_>>()?
        }
        (None, None) => bail!("give an exported audit log or --database"),
    };
    let (count, head) = verify_audit(&entries).context("the audit log does not verify")?;
    println!("The audit log verifies: {count} entries, last hash {head}");
    Ok(ExitCode::SUCCESS)
}

/// Whether a verified outcome's signature records enough approvals (`verify
/// --require-approvals M --approvers-store NAME`).
pub fn require_approvals(
    engine: &dyn crate::engine::Verifier,
    revocation: &crate::revocation::Bounded,
    stores: &notary_verifier::TrustStores,
    outcome: &notary_verifier::Outcome,
    required: usize,
    store: &str,
    time: notary_verifier::Instant,
) -> Result<Vec<String>> {
    let info = outcome
        .verified_signature()
        .and_then(|s| s.envelope.as_ref())
        .context("no signature verified, so there are no approvals to check")?;
    let (_, record, _) = info
        .extended_attributes
        .iter()
        .find(|(k, _, _)| k == approval::ATTRIBUTE)
        .ok_or_else(|| {
            anyhow!(
                "the verified signature records no approvals ({}), {required} required",
                approval::ATTRIBUTE
            )
        })?;
    let approvers = approval::Approvers::new(store, vec!["*".to_owned()], stores);
    if approvers.stores.stores.is_empty() {
        bail!("--approvers-store {store}: no trust store ca/{store}");
    }
    Ok(approval::check_record(
        engine,
        revocation,
        &approvers,
        record,
        &info.payload.digest,
        required,
        time,
    )?)
}

//! `hsm-notary blob verify|inspect`: detached signatures of arbitrary files.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{DocumentKind, SignatureInput, Target, VerifyRequest};
use sha2::Digest;

use super::verify::{inputs, report};
use super::{parse_metadata, verification_time};
use crate::cli::{InspectOutput, VerifyOutput};
use crate::config::ConfigDir;
use crate::engine::Verifier;
use crate::output;

/// The envelope media type a signature file name implies.
pub fn media_type_of(path: &Path) -> Result<&'static str> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.ends_with(".jws.sig") {
        Ok(notary_verifier::envelope::MEDIA_TYPE_JWS)
    } else if name.ends_with(".cose.sig") {
        Ok(notary_verifier::envelope::MEDIA_TYPE_COSE)
    } else {
        bail!(
            "signature file {} must end with .jws.sig or .cose.sig",
            path.display()
        )
    }
}

fn read_signature(path: &Path) -> Result<SignatureInput> {
    let media_type = media_type_of(path)?;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > notary_verifier::envelope::MAX_ENVELOPE_SIZE as u64 {
        bail!(
            "signature file {} is larger than {} bytes",
            path.display(),
            notary_verifier::envelope::MAX_ENVELOPE_SIZE
        );
    }
    Ok(SignatureInput {
        media_type: media_type.to_owned(),
        envelope: std::fs::read(path)?,
        manifest_digest: None,
        prior_failure: None,
    })
}

/// Digest a file with the algorithm the signing key implies.
pub(crate) fn digest_file(path: &Path, algorithm: &str) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    macro_rules! hash {
        ($hasher:ty) => {{
            let mut hasher = <$hasher>::new();
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                hasher.update(&buffer[..n]);
            }
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        }};
    }
    let hex = match algorithm {
        "sha256" => hash!(sha2::Sha256),
        "sha384" => hash!(sha2::Sha384),
        "sha512" => hash!(sha2::Sha512),
        other => bail!("unsupported hashing algorithm: {other}"),
    };
    Ok((format!("{algorithm}:{hex}"), size))
}

/// `blob verify`.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    revocation: &crate::revocation::Bounded,
    engine: &dyn Verifier,
    config: &ConfigDir,
    blob: &Path,
    signature: &Path,
    media_type: Option<String>,
    policy_name: Option<String>,
    trust_policy: Option<&Path>,
    trust_store: Option<&Path>,
    user_metadata: &[String],
    verify_at: Option<&str>,
    format: VerifyOutput,
    stateless: Option<(&Path, &[String])>,
) -> Result<ExitCode> {
    let metadata = parse_metadata(user_metadata, "user-metadata")?;
    let time = verification_time(verify_at)?;
    let inputs = match stateless {
        Some((certificate, identities)) => stateless_inputs(certificate, identities)?,
        None => inputs(config, trust_policy, trust_store, DocumentKind::Blob)?,
    };
    let signature = read_signature(signature)?;
    // The digest algorithm follows the signing key, so ask the envelope first.
    let algorithm = match engine.inspect(&signature)? {
        Ok(info) => info.digest_algorithm,
        Err(_) => "sha256".to_owned(),
    };
    let (digest, size) = digest_file(blob, &algorithm)?;
    let mut request = VerifyRequest {
        policy: inputs.policy,
        trust_stores: inputs.stores,
        target: Target::Blob {
            policy_name,
            media_type,
            digest,
            size,
        },
        signatures: vec![signature],
        user_metadata: metadata,
        verification_time: time,
        revocation_evidence: Vec::new(),
        max_signatures: 1,
        plugin_evidence: Vec::new(),
    };
    let outcome = revocation.verify(engine, &mut request)?;
    Ok(report(&outcome, &blob.display().to_string(), format))
}

/// Stateless `blob verify --certificate ROOT --trusted-identity ID` (notation PR #1265):
/// no configuration directory; one global strict statement trusting the certificate file
/// as a `ca` and a `signingAuthority` store, and only the identities given.
fn stateless_inputs(certificate: &Path, identities: &[String]) -> Result<super::verify::Inputs> {
    use notary_verifier::{NamedStore, PolicyInput, StoreFile, StoreType, TrustStores};
    if identities.is_empty() {
        bail!(
            "--certificate needs --trusted-identity (\"x509.subject: …\", or \"*\" for any identity the certificate issued)"
        );
    }
    let meta = std::fs::metadata(certificate)
        .with_context(|| format!("reading {}", certificate.display()))?;
    if !meta.is_file() || meta.len() > 4 * 1024 * 1024 {
        bail!(
            "{} is not a certificate file of at most 4 MiB",
            certificate.display()
        );
    }
    let content =
        std::fs::read(certificate).with_context(|| format!("reading {}", certificate.display()))?;
    let name = certificate
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "certificate.pem".to_owned());
    let store = |store_type| NamedStore {
        store_type,
        name: "stateless".to_owned(),
        files: vec![StoreFile {
            name: name.clone(),
            content: content.clone(),
        }],
    };
    let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "stateless",
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:stateless", "signingAuthority:stateless"],
        "trustedIdentities": identities,
        "globalPolicy": true,
    }]});
    Ok(super::verify::Inputs {
        policy: PolicyInput {
            kind: DocumentKind::Blob,
            content: serde_json::to_vec(&policy)?,
        },
        stores: TrustStores {
            stores: vec![store(StoreType::Ca), store(StoreType::SigningAuthority)],
        },
    })
}

/// `blob inspect`.
pub fn inspect(engine: &dyn Verifier, signature: &Path, format: InspectOutput) -> Result<ExitCode> {
    let input = read_signature(signature)?;
    let info = engine
        .inspect(&input)?
        .map_err(|f| anyhow::anyhow!("failed to parse signature: {}", f.message))?;
    match format {
        InspectOutput::Tree => print!(
            "{}",
            output::inspect_tree(&signature.display().to_string(), &info).render()
        ),
        InspectOutput::Json => print!("{}", output::json_text(&output::inspect_json(&info, None))),
    }
    Ok(ExitCode::SUCCESS)
}

/// `blob sign`: a detached signature `{dir}/{name}.{jws|cose}.sig` over the blob's
/// descriptor (`--media-type`, the digest the key implies, the size, `-m` annotations),
/// made by an HSM or local key, optionally timestamped; written only once it is complete
/// and self-verified.
pub fn sign(config: &ConfigDir, args: &crate::cli::BlobSignArgs) -> Result<ExitCode> {
    use notary_verifier::sign::Format;
    if args.blob.as_os_str().is_empty() {
        bail!("blob path cannot be empty");
    }
    if args.media_type.is_empty() {
        bail!("content media-type cannot be empty");
    }
    if !is_media_type(&args.media_type) {
        bail!(
            "invalid content media-type {:?}: mime: expected token after slash",
            args.media_type
        );
    }
    let dir = match &args.signature_directory {
        Some(d) if d.is_empty() => bail!("signature directory cannot be empty"),
        Some(d) => std::path::PathBuf::from(d),
        None => args
            .blob
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| std::path::PathBuf::from("."), Path::to_path_buf),
    };
    if args.via.service.url.is_some() {
        return super::approval::blob_sign_with_service(args, config, &dir);
    }
    let signer = super::sign::Signer::open(&args.signing, config, true)?;
    let extension = match signer.format {
        Format::Jws => "jws",
        Format::Cose => "cose",
    };
    // The digest algorithm follows the key (signature-specification.md: RSA-2048/EC-256
    // → SHA-256, RSA-3072/EC-384 → SHA-384, RSA-4096/EC-521 → SHA-512).
    let now = verification_time(None)?;
    let hash = signer.key.algorithm(now)?.hash();
    let (digest, size) = digest_file(&args.blob, hash.oci_name())?;
    let subject = crate::oci::Descriptor {
        media_type: args.media_type.clone(),
        digest,
        size,
        ..crate::oci::Descriptor::default()
    };
    let target = super::sign::target_with_metadata(&subject, &signer.metadata)?;
    let signed = crate::sign::sign_descriptor(
        &signer.key,
        signer.format,
        &target,
        Some(signer.expiry),
        now,
        signer.tsa(),
    )?;
    write_signature_file(args, &dir, extension, &signed.envelope)
}

/// Write `{dir}/{name}.{extension}.sig` (asking before overwriting, unless `--force`).
pub(crate) fn write_signature_file(
    args: &crate::cli::BlobSignArgs,
    dir: &Path,
    extension: &str,
    envelope: &[u8],
) -> Result<ExitCode> {
    let name = args
        .blob
        .file_name()
        .context("the blob path names no file")?
        .to_string_lossy()
        .into_owned();
    let path = dir.join(format!("{name}.{extension}.sig"));
    if args.force {
        eprintln!("Warning: existing signature file will be overwritten");
    } else if path.symlink_metadata().is_ok()
        && !super::confirm("The signature file already exists, do you want to overwrite it?")
    {
        return Ok(ExitCode::SUCCESS);
    }
    super::write_atomically(&path, envelope, 0o644, 0o755)
        .map_err(|e| anyhow::anyhow!("failed to write signature to file: {e:#}"))?;
    println!("Successfully signed {}", args.blob.display());
    println!(" Signature file written to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// A MIME type as Go's `mime.ParseMediaType` takes one: `type/subtype` tokens, or a
/// single token, with optional `; parameters`.
fn is_media_type(text: &str) -> bool {
    let base = text.split(';').next().unwrap_or_default().trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    match base.split_once('/') {
        Some((kind, sub)) => token(kind) && token(sub),
        None => token(base),
    }
}

/// `blob policy import FILE [--force]`.
pub fn policy_import(
    engine: &dyn Verifier,
    config: &ConfigDir,
    file: &Path,
    force: bool,
) -> Result<ExitCode> {
    let content = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("failed to read blob trust policy file: {e}"))?;
    let policy = notary_verifier::PolicyInput {
        kind: DocumentKind::Blob,
        content,
    };
    super::policy::validate_for_import(engine, &policy, "blob")?;
    write_blob_policy(engine, config, &policy.content, force, "imported")
}

/// `blob policy init`: one strict statement, validated, written as notation writes it
/// (two-space indent, no trailing newline).
pub fn policy_init(
    engine: &dyn Verifier,
    config: &ConfigDir,
    name: &str,
    trust_stores: &[String],
    trusted_identities: &[String],
    global: bool,
    force: bool,
) -> Result<ExitCode> {
    let mut statement = serde_json::Map::new();
    statement.insert("name".into(), name.into());
    statement.insert(
        "signatureVerification".into(),
        serde_json::json!({"level": "strict"}),
    );
    statement.insert("trustStores".into(), trust_stores.into());
    statement.insert("trustedIdentities".into(), trusted_identities.into());
    if global {
        statement.insert("globalPolicy".into(), true.into());
    }
    let document = serde_json::json!({"version": "1.0", "trustPolicies": [statement]});
    let content = serde_json::to_vec_pretty(&document)?;
    let policy = notary_verifier::PolicyInput {
        kind: DocumentKind::Blob,
        content,
    };
    if let Err(failure) = engine.check_policy(&policy)? {
        bail!("invalid blob policy: {}", failure.message);
    }
    write_blob_policy(engine, config, &policy.content, force, "initialized")
}

fn write_blob_policy(
    engine: &dyn Verifier,
    config: &ConfigDir,
    content: &[u8],
    force: bool,
    done: &str,
) -> Result<ExitCode> {
    let existing = config.blob_policy().ok();
    if !super::policy::may_overwrite(engine, existing.as_ref(), force, "blob")? {
        return Ok(ExitCode::SUCCESS);
    }
    let target = config.root().join(crate::config::BLOB_POLICY);
    super::write_private(&target, content)
        .map_err(|e| anyhow::anyhow!("failed to write blob trust policy configuration: {e:#}"))?;
    let absolute = std::fs::canonicalize(&target).unwrap_or(target);
    let what = if done == "initialized" {
        "Successfully initialized blob trust policy file to"
    } else {
        "Successfully imported blob trust policy configuration to"
    };
    println!("{what} {}.", absolute.display());
    Ok(ExitCode::SUCCESS)
}

/// `blob policy show`: the document as stored; a warning when it is invalid.
pub fn policy_show(engine: &dyn Verifier, config: &ConfigDir) -> Result<ExitCode> {
    let path = config.root().join(crate::config::BLOB_POLICY);
    if path.symlink_metadata().is_err() {
        bail!(
            "failed to show blob trust policy as the configuration does not exist.\nYou can import one using `hsm-notary blob policy import <path-to-policy.json>`"
        );
    }
    let policy = config
        .blob_policy()
        .map_err(|e| anyhow::anyhow!("failed to show trust policy: {e:#}"))?;
    let invalid = engine.check_policy(&policy)?.err();
    if invalid.is_some() {
        eprintln!(
            "Existing blob trust policy configuration is invalid, you may update or create a new one via `hsm-notary blob policy import <path-to-policy.json>`. See https://github.com/notaryproject/specifications/blob/8cf800c60b7315a43f0adbcae463d848a353b412/specs/trust-store-trust-policy.md#trust-policy-for-blobs for a blob trust policy example."
        );
    }
    super::write_stdout(&policy.content).context("writing the trust policy to stdout")?;
    match invalid {
        Some(failure) => bail!("{}", failure.message),
        None => Ok(ExitCode::SUCCESS),
    }
}

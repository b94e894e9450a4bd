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
    })
}

/// Digest a file with the algorithm the signing key implies.
fn digest_file(path: &Path, algorithm: &str) -> Result<(String, u64)> {
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
) -> Result<ExitCode> {
    let metadata = parse_metadata(user_metadata, "user-metadata")?;
    let time = verification_time(verify_at)?;
    let inputs = inputs(config, trust_policy, trust_store, DocumentKind::Blob)?;
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
    };
    let outcome = revocation.verify(engine, &mut request)?;
    Ok(report(&outcome, &blob.display().to_string(), format))
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

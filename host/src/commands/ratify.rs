//! Ratify v1 external verifier plugin (`release-1.4:pkg/verifier/plugin`): Ratify execs
//! the binary named after the verifier with no arguments, `RATIFY_VERIFIER_COMMAND=VERIFY`,
//! `RATIFY_VERIFIER_SUBJECT`, `RATIFY_VERIFIER_VERSION` (and `RATIFY_VERIFIER_ARGS`) in
//! the environment, and `{config, storeConfig, referenceDesc}` on stdin. The plugin fetches
//! the one signature `referenceDesc` names, the component decides, and the answer is a
//! `VerifierResult` on stdout (exit 0) — or a plugin error `{code, msg}` (exit 1).
//! With `config.platform` (`os/arch[/variant]`), a signature of an image index passes only
//! when that platform's manifest has a verified signature too.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{Decision, DocumentKind, Outcome, PolicyInput, SignatureInput};
use serde::Deserialize;
use serde_json::{Value, json};

use super::verification_time;
use super::verify::{Inputs, SignatureSource, inputs, resolve_remote, verify_artifact};
use crate::config::{self, ConfigDir};
use crate::engine::{self, EngineKind};
use crate::oci;
use crate::registry::{ArtifactRef, Options, Registry};

/// Protocol versions this plugin speaks (Ratify's skel accepts these).
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0.0", "0.1.0"];
/// The largest stdin document accepted.
const MAX_INPUT: u64 = 1 << 20;
/// Signatures of a platform manifest read (notation's default for `--max-signatures`).
const MAX_PLATFORM_SIGNATURES: usize = 100;

/// Ratify's plugin error codes (`pkg/common/plugin/types.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Stdin is not the plugin input JSON.
    ConfigParse = 1,
    /// The verifier configuration is unusable.
    InvalidConfig = 2,
    /// `RATIFY_VERIFIER_COMMAND` is not `VERIFY`.
    UnknownCommand = 3,
    /// A required environment variable is missing.
    MissingEnv = 4,
    /// Reading stdin failed.
    Io = 5,
    /// `RATIFY_VERIFIER_VERSION` is not supported.
    VersionUnsupported = 6,
    /// The verification could not be carried out (registry, trust configuration).
    CommandFailure = 8,
}

/// A plugin error: printed as `{"code", "msg", "details"}` with exit status 1.
#[derive(Debug)]
pub struct PluginError {
    code: Code,
    msg: String,
    details: Option<String>,
}

impl PluginError {
    fn new(code: Code, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    fn failed(e: anyhow::Error) -> Self {
        Self {
            code: Code::CommandFailure,
            msg: "verification could not be carried out".to_owned(),
            details: Some(format!("{e:#}")),
        }
    }
}

#[derive(Deserialize)]
struct Input {
    config: serde_json::Map<String, Value>,
    #[serde(rename = "storeConfig", default)]
    store_config: Value,
    #[serde(rename = "referenceDesc")]
    reference_desc: oci::Descriptor,
}

/// Run as a Ratify plugin: read the environment and stdin, print the result.
pub fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let mut stdin = Vec::new();
    let read = std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut stdin);
    let answer = read
        .map_err(|e| PluginError::new(Code::Io, format!("reading stdin: {e}")))
        .and_then(|_| verify(&env, &stdin));
    match answer {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut error = json!({ "code": e.code as u32, "msg": e.msg });
            if let Some(details) = e.details {
                error["details"] = Value::String(details);
            }
            println!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The protocol, with the environment and stdin passed in.
pub fn verify(env: &dyn Fn(&str) -> Option<String>, stdin: &[u8]) -> Result<Value, PluginError> {
    let required = |name: &str| {
        env(name).ok_or_else(|| {
            PluginError::new(
                Code::MissingEnv,
                format!("environment variable {name} is not set"),
            )
        })
    };
    let command = required("RATIFY_VERIFIER_COMMAND")?;
    if command != "VERIFY" {
        return Err(PluginError::new(
            Code::UnknownCommand,
            format!("unknown command {command:?}: only VERIFY is supported"),
        ));
    }
    let version = required("RATIFY_VERIFIER_VERSION")?;
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        return Err(PluginError::new(
            Code::VersionUnsupported,
            format!(
                "plugin protocol version {version:?} is not supported (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    let subject = required("RATIFY_VERIFIER_SUBJECT")?;
    if stdin.len() as u64 > MAX_INPUT {
        return Err(PluginError::new(
            Code::ConfigParse,
            format!("stdin is over the limit of {MAX_INPUT} bytes"),
        ));
    }
    let input: Input = serde_json::from_slice(stdin).map_err(|e| {
        PluginError::new(
            Code::ConfigParse,
            format!("stdin is not the plugin input: {e}"),
        )
    })?;
    let name = match input.config.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => {
            return Err(PluginError::new(
                Code::InvalidConfig,
                "config.name must be a non-empty string",
            ));
        }
    };
    let kind = match input.config.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => name.clone(),
    };
    let result = |success: bool, message: String, extensions: Value| {
        json!({
            "isSuccess": success,
            "message": message,
            "name": name,
            "type": kind,
            "verifierName": name,
            "verifierType": kind,
            "extensions": extensions,
        })
    };
    if let Some(artifact_type) = &input.reference_desc.artifact_type
        && artifact_type != oci::ARTIFACT_TYPE_NOTARY
    {
        return Ok(result(
            false,
            format!("artifact type {artifact_type} is not a Notary Project signature"),
            Value::Null,
        ));
    }
    let config_inputs = trust_inputs(&input.config).map_err(|e| {
        PluginError::new(Code::InvalidConfig, "the trust configuration is unusable").with_details(e)
    })?;
    let options = Options {
        insecure: input
            .store_config
            .pointer("/store/useHttp")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Options::default()
    };
    let plugins = config_dir(&input.config)
        .map(|dir| crate::plugin::verifier::Plugins::installed(&dir))
        .map_err(|e| {
            PluginError::new(Code::InvalidConfig, "the trust configuration is unusable")
                .with_details(e)
        })?;
    let platform = match input.config.get("platform") {
        None => None,
        Some(Value::String(p)) if p.split('/').count() >= 2 => Some(p.clone()),
        Some(_) => {
            return Err(PluginError::new(
                Code::InvalidConfig,
                "config.platform must be \"os/arch\" or \"os/arch/variant\"",
            ));
        }
    };
    let (outcome, platform_check) = decide(
        &subject,
        &input.reference_desc,
        &config_inputs,
        &options,
        plugins,
        platform.as_deref(),
    )
    .map_err(PluginError::failed)?;
    let mut extensions = extensions(&outcome);
    if let Some(check) = &platform_check {
        extensions["platform"] = json!({
            "platform": check.platform,
            "reference": check.reference,
            "verified": check.failure.is_none(),
        });
        if outcome.decision != Decision::Failed
            && let Some(why) = &check.failure
        {
            return Ok(result(
                false,
                format!("signature verification failed: {why}"),
                extensions,
            ));
        }
    }
    Ok(match outcome.decision {
        Decision::Verified => result(
            true,
            "signature verification success".to_owned(),
            extensions,
        ),
        Decision::Skipped => result(
            true,
            "signature verification skipped by the trust policy".to_owned(),
            extensions,
        ),
        Decision::Failed => result(
            false,
            format!(
                "signature verification failed: {}",
                crate::output::failure_reasons(&outcome)
            ),
            extensions,
        ),
    })
}

impl PluginError {
    fn with_details(mut self, e: anyhow::Error) -> Self {
        self.details = Some(format!("{e:#}"));
        self
    }
}

/// `config.configDir`, or `HSM_NOTARY_CONFIG`, or the default.
fn config_dir(config: &serde_json::Map<String, Value>) -> Result<ConfigDir> {
    match config.get("configDir") {
        Some(Value::String(dir)) => ConfigDir::resolve(Some(std::path::Path::new(dir))),
        Some(_) => bail!("config.configDir must be a string"),
        None => ConfigDir::resolve(None),
    }
}

/// The trust policy (`config.trustPolicyDoc`, inline, or the configuration directory's)
/// and trust stores (`config.configDir`, or `HSM_NOTARY_CONFIG`, or the default).
fn trust_inputs(config: &serde_json::Map<String, Value>) -> Result<Inputs> {
    let dir = config_dir(config)?;
    let mut loaded = match config.get("trustPolicyDoc") {
        Some(doc @ Value::Object(_)) => Inputs {
            policy: PolicyInput {
                kind: DocumentKind::Oci,
                content: serde_json::to_vec(doc)?,
            },
            stores: config::truststore::read(&dir.trust_store_dir())?,
        },
        Some(_) => bail!("config.trustPolicyDoc must be a trust policy object"),
        None => inputs(&dir, None, None, DocumentKind::Oci)?,
    };
    if loaded.policy.content.len() > notary_verifier::trustpolicy::MAX_POLICY_SIZE {
        bail!("config.trustPolicyDoc is over the trust policy size limit");
    }
    loaded.policy.kind = DocumentKind::Oci;
    Ok(loaded)
}

/// `config.platform`'s check of an image index: the platform manifest's signatures.
struct PlatformCheck {
    platform: String,
    /// The platform manifest, when the index has one.
    reference: Option<String>,
    /// Why the platform's manifest does not pass, if it does not.
    failure: Option<String>,
}

/// Fetch the subject's descriptor and the one signature, and let the component decide;
/// with a `platform` and an index for subject, also verify that platform's manifest
/// (any of its signatures), since the index's signature does not vouch for it.
fn decide(
    subject: &str,
    signature: &oci::Descriptor,
    inputs: &Inputs,
    options: &Options,
    plugins: std::sync::Arc<crate::plugin::verifier::Plugins>,
    platform: Option<&str>,
) -> Result<(Outcome, Option<PlatformCheck>)> {
    let artifact = ArtifactRef::parse(subject)
        .with_context(|| format!("RATIFY_VERIFIER_SUBJECT {subject:?}"))?;
    let registry = Registry::connect(&artifact, options)?;
    let target = resolve_remote(&registry, &artifact, "verify")?;
    let reference = format!("{}@{}", artifact.name(), target.digest);
    let engine = engine::engine(EngineKind::Wasm)?;
    // Read first: Ratify named this one signature, so a registry that cannot produce it
    // intact is an error of the plugin (failing closed), not a failed signature.
    let source = OneSignature {
        manifest: signature.clone(),
        signature: registry.signature(signature, &target)?,
    };
    let time = verification_time(None)?;
    let revocation = crate::revocation::Fetcher::new(Default::default())
        .unbounded()
        .with_plugins(plugins);
    let outcome = verify_artifact(
        engine.as_ref(),
        &source,
        inputs,
        &target,
        &reference,
        Vec::new(),
        time,
        1,
        &revocation,
    )?;
    let Some(platform) = platform.filter(|_| {
        target.media_type == oci::MEDIA_TYPE_IMAGE_INDEX && outcome.decision != Decision::Failed
    }) else {
        return Ok((outcome, None));
    };
    let Some(child) = oci::platform_manifest(registry.index_manifests(&target)?, platform) else {
        let check = PlatformCheck {
            platform: platform.to_owned(),
            reference: None,
            failure: Some(format!("the index has no manifest for platform {platform}")),
        };
        return Ok((outcome, Some(check)));
    };
    let child_reference = format!("{}@{}", artifact.name(), child.digest);
    let child_outcome = verify_artifact(
        engine.as_ref(),
        &registry,
        inputs,
        &child,
        &child_reference,
        Vec::new(),
        time,
        MAX_PLATFORM_SIGNATURES,
        &revocation,
    )?;
    let failure = (child_outcome.decision == Decision::Failed).then(|| {
        format!(
            "its {platform} manifest {child_reference}: {}",
            crate::output::failure_reasons(&child_outcome)
        )
    });
    let check = PlatformCheck {
        platform: platform.to_owned(),
        reference: Some(child_reference),
        failure,
    };
    Ok((outcome, Some(check)))
}

/// The signature manifest Ratify named, already read, and nothing else.
struct OneSignature {
    manifest: oci::Descriptor,
    signature: Option<SignatureInput>,
}

impl SignatureSource for OneSignature {
    fn candidates(
        &self,
        _subject: &oci::Descriptor,
        _max: usize,
    ) -> Result<(Vec<oci::Descriptor>, bool)> {
        Ok((vec![self.manifest.clone()], false))
    }

    fn read(
        &self,
        _candidate: &oci::Descriptor,
        _subject: &oci::Descriptor,
    ) -> Result<Option<SignatureInput>> {
        Ok(self.signature.clone())
    }
}

/// What Ratify's policy engine can look at: the signer, each validation, the component.
fn extensions(outcome: &Outcome) -> Value {
    let signature = outcome
        .verified_signature()
        .or_else(|| outcome.signatures.first());
    let leaf = signature
        .and_then(|s| s.envelope.as_ref())
        .and_then(|e| e.certificates.first());
    json!({
        "issuer": leaf.map(|c| c.issuer.clone()),
        "SN": leaf.map(|c| c.subject.clone()),
        "policy": outcome.policy.as_ref().map(|p| p.statement.clone()),
        "results": signature.map(|s| s.results.iter().map(|r| json!({
            "validation": r.check.policy_name(),
            "action": r.action.name(),
            "status": r.status,
            "message": r.message,
        })).collect::<Vec<_>>()),
        "component": oci::sha256_digest(crate::engine::component::COMPONENT),
    })
}

//! `notation-hsm-notary`: hsm-notary's PKCS#11 signer as a notation plugin, so that a team
//! that keeps the notation CLI signs with keys in any PKCS#11 HSM without a vendor plugin.
//!
//! ```text
//! notation plugin install --file notation-hsm-notary
//! notation key add release --plugin hsm-notary --id "pkcs11:token=ci;object=release" \
//!     --plugin-config module-path=/usr/lib/softhsm/libsofthsm2.so \
//!     --plugin-config pin-source=file:/run/secrets/pin \
//!     --plugin-config certificate-chain=/etc/release/chain.pem
//! ```
//!
//! The key id is the key's PKCS#11 URI. `pluginConfig` keys:
//! - `module-path`: the PKCS#11 module (else the URI's, else `HSM_NOTARY_PKCS11_MODULE`);
//! - `pin-source`: `file:PATH` holding the user PIN (else the URI's, else
//!   `HSM_NOTARY_PKCS11_PIN`); the plugin never prompts, and a PIN in the configuration
//!   (`pin`, `pin-value`) is refused, as the spec advises;
//! - `token`: the token label, over the URI's;
//! - `certificate-chain`: the PEM chain, leaf first, whose leaf must hold the key; without
//!   it, the certificate objects on the token (`hsm-notary key import-cert`);
//! - `capability`: `raw` (default: `SIGNATURE_GENERATOR.RAW`, notation assembles and
//!   timestamps) or `envelope` (`SIGNATURE_GENERATOR.ENVELOPE`: the plugin builds the
//!   envelope, timestamped by the TSA of `timestamp-url` and `timestamp-root-cert`).
//!
//! Errors go to stderr as the contract's JSON, with exit 1; stdout carries only the
//! response. The PIN is never written anywhere.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{
    self, CAP_ENVELOPE, CAP_RAW, CONTRACT_VERSION, DescribeKeyRequest, DescribeKeyResponse,
    ErrorCode, ErrorResponse, GenerateEnvelopeRequest, GenerateEnvelopeResponse,
    GenerateSignatureRequest, GenerateSignatureResponse, Metadata, MetadataRequest, PluginConfig,
};
use crate::pkcs11::{HsmKey, Pkcs11Uri, Token};

/// The plugin's name: its install directory is `plugins/hsm-notary/`.
pub const NAME: &str = "hsm-notary";

/// Requests larger than this are refused (a payload is a descriptor or a signing input).
const MAX_REQUEST: u64 = 4 << 20;

const COMMANDS: &str =
    "<describe-key|generate-envelope|generate-signature|get-plugin-metadata|version>";

/// An error for the caller: the spec's code and a message.
#[derive(Debug)]
pub struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }

    /// A failure from the PKCS#11 layer: a refused login is `ACCESS_DENIED`, a missing
    /// token or key `VALIDATION_ERROR` (the spec's code for an unknown key).
    fn from_hsm(error: anyhow::Error) -> Self {
        let message = format!("{error:#}");
        let code = if message.contains("incorrect PIN")
            || message.contains("login to token")
            || message.contains("no PIN")
            || message.contains("cannot read the PIN")
        {
            ErrorCode::AccessDenied
        } else if message.contains("no private key labelled")
            || message.contains("no public key labelled")
            || message.contains("no PKCS#11 token labelled")
            || message.contains("names no object")
        {
            ErrorCode::Validation
        } else {
            ErrorCode::Error
        };
        Self::new(code, message)
    }
}

/// Run the plugin with `args` (the command) and the process's stdin, stdout and stderr.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [command] if command == "version" => {
            let metadata = metadata(&PluginConfig::new());
            println!(
                "{} - {}\nVersion: {}",
                metadata.name, metadata.description, metadata.version
            );
            return ExitCode::SUCCESS;
        }
        [command] => run(command),
        _ => Err(Failure::validation(format!(
            "Invalid command, valid commands are: {COMMANDS}"
        ))),
    };
    match result {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&response)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let error = ErrorResponse {
                error_code: failure.code.as_str().to_owned(),
                error_message: failure.message,
                error_metadata: Default::default(),
            };
            let text = serde_json::to_string(&error).unwrap_or_default();
            let _ = std::io::stderr().write_all(text.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// Answer `command` with the request on stdin.
fn run(command: &str) -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST + 1)
        .read_to_end(&mut input)
        .map_err(|e| Failure::new(ErrorCode::Error, format!("reading the request: {e}")))?;
    if input.len() as u64 > MAX_REQUEST {
        return Err(Failure::validation(format!(
            "the request is larger than {MAX_REQUEST} bytes"
        )));
    }
    match command {
        protocol::GET_PLUGIN_METADATA => {
            let request: MetadataRequest = parse(&input)?;
            respond(&metadata(&request.plugin_config))
        }
        protocol::DESCRIBE_KEY => respond(&describe_key(&parse(&input)?)?),
        protocol::GENERATE_SIGNATURE => respond(&generate_signature(&parse(&input)?)?),
        protocol::GENERATE_ENVELOPE => respond(&generate_envelope(&parse(&input)?)?),
        _ => Err(Failure::validation(format!(
            "Invalid command, valid commands are: {COMMANDS}"
        ))),
    }
}

fn parse<T: DeserializeOwned>(input: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(input)
        .map_err(|e| Failure::validation(format!("Input is not a valid JSON: {e}")))
}

fn respond<T: Serialize>(response: &T) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(response).map_err(|e| Failure::new(ErrorCode::Error, e.to_string()))
}

/// What the plugin says of itself; `capability=envelope` makes it an envelope generator.
pub fn metadata(config: &PluginConfig) -> Metadata {
    let envelope = config.get("capability").is_some_and(|c| c == "envelope");
    Metadata {
        name: NAME.to_owned(),
        description: "Sign with keys in any PKCS#11 HSM (hsm-notary)".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        url: "https://github.com/hsm-notary/hsm-notary".to_owned(),
        supported_contract_versions: vec![CONTRACT_VERSION.to_owned()],
        capabilities: vec![if envelope { CAP_ENVELOPE } else { CAP_RAW }.to_owned()],
    }
}

fn check_contract(version: &str) -> Result<(), Failure> {
    if version != CONTRACT_VERSION {
        return Err(Failure::new(
            ErrorCode::UnsupportedContractVersion,
            format!(
                "\"{version}\" is not a supported contract version; the plugin supports {CONTRACT_VERSION}"
            ),
        ));
    }
    Ok(())
}

/// The key the id and configuration name, logged in.
fn open_key(key_id: &str, config: &PluginConfig) -> Result<HsmKey, Failure> {
    if key_id.is_empty() {
        return Err(Failure::validation("keyId cannot be empty"));
    }
    for secret in ["pin", "pin-value", "PIN"] {
        if config.contains_key(secret) {
            return Err(Failure::validation(format!(
                "pluginConfig {secret:?} is refused: a PIN does not belong in configuration; give pin-source=file:PATH or HSM_NOTARY_PKCS11_PIN"
            )));
        }
    }
    let mut uri = Pkcs11Uri::parse(key_id)
        .map_err(|e| Failure::validation(format!("keyId is not a PKCS#11 URI: {e:#}")))?;
    if let Some(source) = config.get("pin-source") {
        uri.pin_source = Some(source.clone());
    }
    if let Some(token) = config.get("token") {
        uri.token = Some(token.clone());
    }
    // stdin carries the request: there is nobody to prompt.
    if uri.pin_source.is_none() && std::env::var_os("HSM_NOTARY_PKCS11_PIN").is_none() {
        return Err(Failure::new(
            ErrorCode::AccessDenied,
            "no PIN for the token: give pluginConfig pin-source=file:PATH (or HSM_NOTARY_PKCS11_PIN)",
        ));
    }
    let label = uri
        .object
        .clone()
        .ok_or_else(|| Failure::validation("the keyId's PKCS#11 URI names no object"))?;
    let module = crate::pkcs11::module_path(&uri, config.get("module-path").map(Path::new))
        .map_err(|e| Failure::validation(format!("{e:#}")))?;
    let token: Arc<Token> = Token::open(&uri, &module).map_err(Failure::from_hsm)?;
    token.key(&label).map_err(Failure::from_hsm)
}

/// The chain: the `certificate-chain` file, else the certificate objects on the token
/// (`hsm-notary key import-cert`): the one holding the key, then its issuers. Either
/// way the leaf is checked to hold `key`.
fn chain_for(key: &HsmKey, config: &PluginConfig) -> Result<Vec<Vec<u8>>, Failure> {
    let key_spki = der::Encode::to_der(&key.spki)
        .map_err(|e| Failure::new(ErrorCode::Error, e.to_string()))?;
    let spki_of = |der: &[u8]| -> Option<Vec<u8>> {
        let cert = notary_verifier::x509::Cert::from_der(der).ok()?;
        der::Encode::to_der(cert.parsed().tbs_certificate().subject_public_key_info()).ok()
    };
    let (chain, source) = match config.get("certificate-chain") {
        Some(path) => {
            let path = PathBuf::from(path);
            let chain = crate::sign::read_chain(&path)
                .map_err(|e| Failure::validation(format!("{e:#}")))?;
            (chain, path.display().to_string())
        }
        None => {
            let certs = key.token().certificates().map_err(Failure::from_hsm)?;
            let leaf = certs
                .iter()
                .find(|der| spki_of(der).as_deref() == Some(key_spki.as_slice()))
                .cloned()
                .ok_or_else(|| {
                    Failure::validation(format!(
                        "no certificate for key {} on the token: store one (hsm-notary key import-cert) or give pluginConfig certificate-chain",
                        key.label()
                    ))
                })?;
            (issuers(leaf, &certs), "the token".to_owned())
        }
    };
    if spki_of(&chain[0]).as_deref() != Some(key_spki.as_slice()) {
        return Err(Failure::validation(format!(
            "the leaf certificate of {source} does not hold the key {}",
            key.label()
        )));
    }
    Ok(chain)
}

/// `leaf` and its issuers among `certs`, up to a self-issued one (at most 10).
fn issuers(leaf: Vec<u8>, certs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let names = |der: &[u8]| {
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let tbs = cert.tbs_certificate();
        Some((tbs.subject().to_der().ok()?, tbs.issuer().to_der().ok()?))
    };
    use der::{Decode, Encode};
    let mut chain = vec![leaf];
    while chain.len() < 10 {
        let Some((subject, issuer)) = chain.last().and_then(|c| names(c)) else {
            break;
        };
        if subject == issuer {
            break;
        }
        let next = certs
            .iter()
            .find(|der| !chain.contains(der) && names(der).is_some_and(|(s, _)| s == issuer));
        match next {
            Some(der) => chain.push(der.clone()),
            None => break,
        }
    }
    chain
}

fn describe_key(request: &DescribeKeyRequest) -> Result<DescribeKeyResponse, Failure> {
    check_contract(&request.contract_version)?;
    let key = open_key(&request.key_id, &request.plugin_config)?;
    Ok(DescribeKeyResponse {
        key_id: request.key_id.clone(),
        key_spec: key.spec.name(),
    })
}

fn generate_signature(
    request: &GenerateSignatureRequest,
) -> Result<GenerateSignatureResponse, Failure> {
    check_contract(&request.contract_version)?;
    let key = open_key(&request.key_id, &request.plugin_config)?;
    let spec = key.spec.name();
    if request.key_spec != spec {
        return Err(Failure::validation(format!(
            "keySpec {:?} does not match the key, which is {spec}",
            request.key_spec
        )));
    }
    let algorithm = key.spec.signature_algorithm().ok_or_else(|| {
        Failure::validation(format!("{spec} keys cannot sign Notary Project signatures"))
    })?;
    let (hash, signing_algorithm) = (protocol::hash_name(algorithm), algorithm.notation_name());
    if request.hash_algorithm != hash {
        return Err(Failure::validation(format!(
            "hashAlgorithm {:?} is not the one key spec {spec} uses ({hash})",
            request.hash_algorithm
        )));
    }
    if request.payload.is_empty() {
        return Err(Failure::validation("payload cannot be empty"));
    }
    let chain = chain_for(&key, &request.plugin_config)?;
    let signature = key.sign(&request.payload).map_err(Failure::from_hsm)?;
    Ok(GenerateSignatureResponse {
        key_id: request.key_id.clone(),
        signature,
        signing_algorithm: signing_algorithm.to_owned(),
        certificate_chain: chain,
    })
}

fn generate_envelope(
    request: &GenerateEnvelopeRequest,
) -> Result<GenerateEnvelopeResponse, Failure> {
    use notary_verifier::sign::Format;
    check_contract(&request.contract_version)?;
    if request.payload_type != protocol::PAYLOAD_TYPE {
        return Err(Failure::validation(format!(
            "payloadType {:?} is not supported; {} is",
            request.payload_type,
            protocol::PAYLOAD_TYPE
        )));
    }
    let format = match request.signature_envelope_type.as_str() {
        t if t == Format::Jws.media_type() => Format::Jws,
        t if t == Format::Cose.media_type() => Format::Cose,
        other => {
            return Err(Failure::validation(format!(
                "signatureEnvelopeType {other:?} is not supported"
            )));
        }
    };
    let target = notary_verifier::payload::parse(&request.payload)
        .map_err(|e| Failure::validation(format!("payload: {e}")))?;
    let config = &request.plugin_config;
    let key = open_key(&request.key_id, config)?;
    let chain = chain_for(&key, config)?;
    let key = crate::sign::SigningKey {
        source: crate::sign::KeySource::Pkcs11(Arc::new(key)),
        chain,
    };
    let tsa = match (
        config.get("timestamp-url"),
        config.get("timestamp-root-cert"),
    ) {
        (None, None) => None,
        (Some(url), Some(root)) => {
            let engine = crate::engine::engine(crate::engine::EngineKind::Native)
                .map_err(|e| Failure::new(ErrorCode::Error, format!("{e:#}")))?;
            let fetcher = crate::revocation::Fetcher::new(crate::revocation::Options::default());
            let tsa =
                crate::sign::timestamp::Timestamper::new(url, Path::new(root), &*engine, fetcher)
                    .map_err(|e| Failure::validation(format!("{e:#}")))?;
            Some((tsa, engine))
        }
        _ => {
            return Err(Failure::validation(
                "pluginConfig timestamp-url and timestamp-root-cert go together",
            ));
        }
    };
    let now = crate::commands::verification_time(None)
        .map_err(|e| Failure::new(ErrorCode::Error, format!("{e:#}")))?;
    let signed = crate::sign::sign_descriptor(
        &key,
        format,
        &target,
        request
            .expiry_duration_in_seconds
            .map(std::time::Duration::from_secs),
        now,
        tsa.as_ref()
            .map(|(tsa, engine)| (tsa, &**engine as &dyn crate::engine::Verifier)),
    )
    .map_err(|e| {
        let message = format!("{e:#}");
        if message.contains("timestamp") {
            Failure::new(ErrorCode::Error, message)
        } else {
            Failure::from_hsm(e)
        }
    })?;
    Ok(GenerateEnvelopeResponse {
        signature_envelope: signed.envelope,
        signature_envelope_type: format.media_type().to_owned(),
        annotations: Default::default(),
    })
}

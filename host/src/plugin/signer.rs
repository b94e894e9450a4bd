//! Plugins as key providers (`plugin-extensibility.md` §Signing interfaces).
//!
//! A RAW plugin (`describe-key` + `generate-signature`) signs the bytes hsm-notary
//! prepares, and hsm-notary assembles and timestamps the envelope. An ENVELOPE plugin
//! (`generate-envelope`) returns a whole envelope. Either way nothing the plugin says is
//! taken on trust: key ids, key specs and algorithms are compared with what was asked,
//! the chain must meet the certificate requirements, the signature must verify against
//! the leaf, and an envelope must pass the verifier component against the very
//! descriptor that was asked to be signed, before anything is published. When a plugin
//! has both capabilities RAW is used, as notation does.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use notary_verifier::signature::SignatureAlgorithm;
use notary_verifier::{Descriptor, Instant};

use super::process::Plugin;
use super::protocol::{
    self, CAP_ENVELOPE, CAP_RAW, CONTRACT_VERSION, DescribeKeyRequest, DescribeKeyResponse,
    GenerateEnvelopeRequest, GenerateEnvelopeResponse, GenerateSignatureRequest,
    GenerateSignatureResponse, Metadata, MetadataRequest, PluginConfig,
};

/// How the plugin signs.
#[derive(Clone, Debug)]
enum Mode {
    /// `SIGNATURE_GENERATOR.RAW`, with the key spec `describe-key` gave.
    Raw {
        key_spec: String,
        algorithm: SignatureAlgorithm,
    },
    /// `SIGNATURE_GENERATOR.ENVELOPE`.
    Envelope,
}

/// A key behind a plugin: `--plugin NAME --id KEY_ID [--plugin-config k=v]…`.
pub struct PluginKey {
    plugin: Plugin,
    key_id: String,
    config: PluginConfig,
    metadata: Metadata,
    mode: Mode,
    /// The component that checks envelopes, loaded at the first (`sign --recursive`
    /// signs several).
    engine: std::sync::OnceLock<Box<dyn crate::engine::Verifier + Send + Sync>>,
}

impl PluginKey {
    /// Find plugin `name` in `root`, ask its metadata and, for RAW, describe the key.
    pub fn open(
        root: &Path,
        name: &str,
        key_id: &str,
        config: PluginConfig,
        timeout: Duration,
        for_blob: bool,
    ) -> Result<Self> {
        if key_id.is_empty() {
            bail!("missing key id");
        }
        let path = super::locate(root, name)?;
        let mut plugin = Plugin::new(name, &path);
        plugin.timeout = timeout;
        let metadata: Metadata = plugin.call(
            protocol::GET_PLUGIN_METADATA,
            &MetadataRequest {
                plugin_config: config.clone(),
            },
        )?;
        metadata
            .validate()
            .map_err(|e| anyhow!("plugin {name}: {e}"))?;
        if metadata.name != name {
            bail!(
                "plugin executable file name must be \"notation-{}\" instead of \"notation-{name}\"",
                metadata.name
            );
        }
        let mode = if metadata.has(CAP_RAW) {
            let described: DescribeKeyResponse = plugin.call(
                protocol::DESCRIBE_KEY,
                &DescribeKeyRequest {
                    contract_version: CONTRACT_VERSION.to_owned(),
                    key_id: key_id.to_owned(),
                    plugin_config: config.clone(),
                },
            )?;
            if described.key_id != key_id {
                bail!(
                    "keyID in describeKey response {:?} does not match request {key_id:?}",
                    described.key_id
                );
            }
            let algorithm = protocol::algorithm_of(&described.key_spec).ok_or_else(|| {
                anyhow!(
                    "plugin {name} described key {key_id:?} with an unsupported key spec {:?}",
                    described.key_spec
                )
            })?;
            Mode::Raw {
                key_spec: described.key_spec,
                algorithm,
            }
        } else if metadata.has(CAP_ENVELOPE) && !for_blob {
            Mode::Envelope
        } else if for_blob {
            bail!(
                "the plugin {name:?} lacks the signature generator capability required for blob signing"
            );
        } else {
            bail!("the plugin {name:?} has neither {CAP_RAW} nor {CAP_ENVELOPE}: it cannot sign");
        };
        Ok(Self {
            plugin,
            key_id: key_id.to_owned(),
            config,
            metadata,
            mode,
            engine: std::sync::OnceLock::new(),
        })
    }

    /// The plugin's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The signing agent for envelopes this key makes (notation's form: the tool, then
    /// `{plugin}/{version}`).
    pub fn signing_agent(&self) -> String {
        format!(
            "{} {}/{}",
            crate::sign::SIGNING_AGENT,
            self.metadata.name,
            self.metadata.version
        )
    }

    /// The algorithm of a RAW key; `None` for an ENVELOPE plugin.
    pub fn raw_algorithm(&self) -> Option<SignatureAlgorithm> {
        match &self.mode {
            Mode::Raw { algorithm, .. } => Some(*algorithm),
            Mode::Envelope => None,
        }
    }

    /// `generate-signature` over `to_sign`: the signature and the chain (DER, leaf
    /// first), the chain checked against the certificate requirements and the key spec.
    /// The signature itself is checked when the envelope is assembled.
    pub fn sign_raw(
        &self,
        to_sign: &[u8],
        signing_time: Instant,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
        let Mode::Raw {
            key_spec,
            algorithm,
        } = &self.mode
        else {
            bail!(
                "plugin {} makes envelopes, not raw signatures",
                self.plugin.name
            );
        };
        let (hash, signing_algorithm) =
            (protocol::hash_name(*algorithm), algorithm.notation_name());
        let response: GenerateSignatureResponse = self.plugin.call(
            protocol::GENERATE_SIGNATURE,
            &GenerateSignatureRequest {
                contract_version: CONTRACT_VERSION.to_owned(),
                key_id: self.key_id.clone(),
                key_spec: key_spec.clone(),
                hash_algorithm: hash.to_owned(),
                payload: to_sign.to_vec(),
                plugin_config: self.config.clone(),
            },
        )?;
        if response.key_id != self.key_id {
            bail!(
                "keyID in generateSignature response {:?} does not match request {:?}",
                response.key_id,
                self.key_id
            );
        }
        if response.signing_algorithm != signing_algorithm {
            bail!(
                "plugin {} signed with {:?}, but key spec {key_spec} requires {signing_algorithm}",
                self.plugin.name,
                response.signing_algorithm
            );
        }
        if response.certificate_chain.is_empty() {
            bail!("plugin {} returned no certificate chain", self.plugin.name);
        }
        let chain_algorithm =
            notary_verifier::sign::check_signing_chain(&response.certificate_chain, signing_time)
                .map_err(|e| {
                anyhow!(
                    "the certificate chain from plugin {} cannot be used: {e}",
                    self.plugin.name
                )
            })?;
        if chain_algorithm != *algorithm {
            bail!(
                "the leaf certificate from plugin {} does not hold a {key_spec} key",
                self.plugin.name
            );
        }
        Ok((response.signature, response.certificate_chain))
    }

    /// `generate-envelope` for `target`, checked by the verifier component against
    /// `target` (and its annotations) before it is returned, with what the component
    /// read of it and the plugin's manifest annotations.
    pub fn generate_envelope(
        &self,
        format: notary_verifier::sign::Format,
        target: &Descriptor,
        expiry: Option<Duration>,
    ) -> Result<(
        Vec<u8>,
        notary_verifier::EnvelopeInfo,
        BTreeMap<String, String>,
    )> {
        let payload = notary_verifier::payload::build(target);
        let media_type = format.media_type();
        let response: GenerateEnvelopeResponse = self.plugin.call(
            protocol::GENERATE_ENVELOPE,
            &GenerateEnvelopeRequest {
                contract_version: CONTRACT_VERSION.to_owned(),
                key_id: self.key_id.clone(),
                payload_type: protocol::PAYLOAD_TYPE.to_owned(),
                signature_envelope_type: media_type.to_owned(),
                payload,
                expiry_duration_in_seconds: expiry.map(|d| d.as_secs()).filter(|s| *s > 0),
                plugin_config: self.config.clone(),
            },
        )?;
        if response.signature_envelope_type != media_type {
            bail!(
                "signatureEnvelopeType in generateEnvelope response {:?} does not match request {media_type:?}",
                response.signature_envelope_type
            );
        }
        tracing::debug!("Verifying signature envelope generated by the plugin");
        let info = self
            .check_envelope(&response.signature_envelope, media_type, target)
            .map_err(|e| {
                anyhow!(
                    "the envelope generated by plugin {} is refused: {e:#}",
                    self.plugin.name
                )
            })?;
        for key in response.annotations.keys() {
            if key.starts_with("io.cncf.notary") {
                bail!(
                    "plugin {} returned a manifest annotation with the reserved prefix io.cncf.notary: {key}",
                    self.plugin.name
                );
            }
        }
        Ok((response.signature_envelope, info, response.annotations))
    }

    /// Check a plugin's envelope with the verifier component before it is published: it
    /// verifies with its leaf's key, its payload names `target` with every annotation it
    /// was given, its chain meets the certificate requirements, a timestamp is over this
    /// signature. The trust decision is the verifier's later, against the user's trust
    /// policy (and a verification plugin the envelope names is asked then); this says the
    /// plugin signed what was asked.
    fn check_envelope(
        &self,
        envelope: &[u8],
        media_type: &str,
        target: &Descriptor,
    ) -> Result<notary_verifier::EnvelopeInfo> {
        let engine = match self.engine.get() {
            Some(engine) => engine,
            None => {
                let loaded = crate::engine::engine(crate::engine::EngineKind::Wasm)?;
                self.engine.get_or_init(|| loaded)
            }
        };
        let input = notary_verifier::SignatureInput {
            media_type: media_type.to_owned(),
            envelope: envelope.to_vec(),
            manifest_digest: None,
            prior_failure: None,
        };
        engine
            .check_generated_envelope(&input, target)?
            .map_err(|failure| anyhow!("{}", failure.message))
    }
}

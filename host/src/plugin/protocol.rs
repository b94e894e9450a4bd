//! The plugin contract's requests and responses (`plugin-extensibility.md`, version 1.0),
//! with notation's field names and encodings: binary fields are standard base64 with
//! padding, `pluginConfig` is omitted when empty, unknown response fields are ignored.

use std::collections::BTreeMap;

use notary_verifier::signature::SignatureAlgorithm;
use serde::{Deserialize, Serialize};

/// The one contract version this side speaks.
pub const CONTRACT_VERSION: &str = "1.0";

/// `get-plugin-metadata`
pub const GET_PLUGIN_METADATA: &str = "get-plugin-metadata";
/// `describe-key`
pub const DESCRIBE_KEY: &str = "describe-key";
/// `generate-signature`
pub const GENERATE_SIGNATURE: &str = "generate-signature";
/// `generate-envelope`
pub const GENERATE_ENVELOPE: &str = "generate-envelope";
/// `verify-signature`
pub const VERIFY_SIGNATURE: &str = "verify-signature";

/// Capability: raw signatures (`describe-key` + `generate-signature`).
pub const CAP_RAW: &str = "SIGNATURE_GENERATOR.RAW";
/// Capability: whole envelopes (`generate-envelope`).
pub const CAP_ENVELOPE: &str = "SIGNATURE_GENERATOR.ENVELOPE";
/// Capability: trusted identity verification.
pub const CAP_TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";
/// Capability: revocation check verification.
pub const CAP_REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";

/// The payload type of `generate-envelope`.
pub const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// Plugin configuration: string to string.
pub type PluginConfig = BTreeMap<String, String>;

/// `get-plugin-metadata` request (it has no `contractVersion`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataRequest {
    /// Optional plugin configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugin_config: PluginConfig,
}

/// `get-plugin-metadata` response: every field is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Plugin name; must equal its install directory.
    pub name: String,
    /// Description.
    pub description: String,
    /// Publisher's version.
    pub version: String,
    /// Support or documentation page.
    pub url: String,
    /// One contract version per major version.
    pub supported_contract_versions: Vec<String>,
    /// What the plugin can do.
    pub capabilities: Vec<String>,
}

impl Metadata {
    /// The checks notation makes: every field present, capabilities non-empty, contract
    /// 1.0 supported.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [
            ("name", &self.name),
            ("description", &self.description),
            ("version", &self.version),
            ("url", &self.url),
        ] {
            if value.is_empty() {
                return Err(format!("empty {field} in plugin metadata"));
            }
        }
        if self.capabilities.is_empty() {
            return Err("empty capabilities in plugin metadata".to_owned());
        }
        if !self
            .supported_contract_versions
            .iter()
            .any(|v| v == CONTRACT_VERSION)
        {
            return Err(format!(
                "plugin contract version mismatch: the plugin supports {:?}, hsm-notary requires {CONTRACT_VERSION}",
                self.supported_contract_versions
            ));
        }
        Ok(())
    }

    /// Whether the plugin has `capability`.
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// `describe-key` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyRequest {
    /// `1.0`.
    pub contract_version: String,
    /// The key id.
    pub key_id: String,
    /// Optional plugin configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugin_config: PluginConfig,
}

/// `describe-key` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeKeyResponse {
    /// The key id of the request.
    pub key_id: String,
    /// `RSA-2048`, ..., `EC-521`.
    pub key_spec: String,
}

/// `generate-signature` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureRequest {
    /// `1.0`.
    pub contract_version: String,
    /// The key id.
    pub key_id: String,
    /// The key spec `describe-key` gave.
    pub key_spec: String,
    /// The hash the spec pairs with the key spec.
    pub hash_algorithm: String,
    /// The bytes to sign (JWS signing input or COSE `Sig_structure`).
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    /// Optional plugin configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugin_config: PluginConfig,
}

/// `generate-signature` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignatureResponse {
    /// The key id of the request.
    pub key_id: String,
    /// The signature (ECDSA as `r || s`).
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    /// `RSASSA-PSS-SHA-256`, ..., `ECDSA-SHA-512`.
    pub signing_algorithm: String,
    /// DER certificates, leaf first.
    #[serde(with = "b64_list")]
    pub certificate_chain: Vec<Vec<u8>>,
}

/// `generate-envelope` request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeRequest {
    /// `1.0`.
    pub contract_version: String,
    /// The key id.
    pub key_id: String,
    /// Always [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// `application/jose+json` or `application/cose`.
    pub signature_envelope_type: String,
    /// The Notary Project payload (`{"targetArtifact": …}`).
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    /// Signature expiry in seconds (omitted when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_duration_in_seconds: Option<u64>,
    /// Optional plugin configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugin_config: PluginConfig,
}

/// `generate-envelope` response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateEnvelopeResponse {
    /// The envelope.
    #[serde(with = "b64")]
    pub signature_envelope: Vec<u8>,
    /// Its media type; must be the one asked for.
    pub signature_envelope_type: String,
    /// Added to the signature manifest's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The error a plugin writes on stderr.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// `VALIDATION_ERROR`, `UNSUPPORTED_CONTRACT_VERSION`, `ACCESS_DENIED`, `TIMEOUT`,
    /// `THROTTLED` or `ERROR`.
    #[serde(default)]
    pub error_code: String,
    /// A message for the user.
    #[serde(default)]
    pub error_message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_metadata: BTreeMap<String, String>,
}

/// The spec's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// A required field is empty, or a value malformed; includes an unknown key.
    Validation,
    /// The contract version is not supported.
    UnsupportedContractVersion,
    /// Authentication or authorization failed.
    AccessDenied,
    /// Timed out; may be retried.
    Timeout,
    /// Throttled; may be retried.
    Throttled,
    /// Anything else.
    Error,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION_ERROR",
            Self::UnsupportedContractVersion => "UNSUPPORTED_CONTRACT_VERSION",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::Timeout => "TIMEOUT",
            Self::Throttled => "THROTTLED",
            Self::Error => "ERROR",
        }
    }
}

/// The algorithm `signature-specification.md` §Algorithm Selection pairs with a key
/// spec name (`RSA-3072` → RSASSA-PSS-SHA-384, …), from the verifier's own table.
pub fn algorithm_of(key_spec: &str) -> Option<SignatureAlgorithm> {
    use notary_verifier::signature::{Curve, KeySpec};
    [
        KeySpec::Rsa(2048),
        KeySpec::Rsa(3072),
        KeySpec::Rsa(4096),
        KeySpec::Ec(Curve::P256),
        KeySpec::Ec(Curve::P384),
        KeySpec::Ec(Curve::P521),
    ]
    .into_iter()
    .find(|spec| spec.name() == key_spec)
    .and_then(KeySpec::signature_algorithm)
}

/// The contract's name of the hash `algorithm` uses (`SHA-256`, …).
pub fn hash_name(algorithm: SignatureAlgorithm) -> &'static str {
    use notary_verifier::signature::HashAlgorithm;
    match algorithm.hash() {
        HashAlgorithm::Sha256 => "SHA-256",
        HashAlgorithm::Sha384 => "SHA-384",
        HashAlgorithm::Sha512 => "SHA-512",
    }
}

/// Base64 (standard, padded) for `Vec<u8>` fields, as Go's `[]byte` JSON.
pub mod b64 {
    use base64ct::{Base64, Encoding};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Base64::encode_string(bytes))
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        Base64::decode_vec(&text).map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// Base64 for a list of byte strings.
pub mod b64_list {
    use base64ct::{Base64, Encoding};
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    /// Serialize.
    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&Base64::encode_string(bytes))?;
        }
        seq.end()
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
        texts
            .iter()
            .map(|t| Base64::decode_vec(t).map_err(|_| serde::de::Error::custom("invalid base64")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_as_notation_writes_them() {
        let request = GenerateSignatureRequest {
            contract_version: CONTRACT_VERSION.to_owned(),
            key_id: "key1".to_owned(),
            key_spec: "EC-256".to_owned(),
            hash_algorithm: "SHA-256".to_owned(),
            payload: b"ab".to_vec(),
            plugin_config: PluginConfig::new(),
        };
        assert_eq!(
            serde_json::to_string(&request).expect("json"),
            r#"{"contractVersion":"1.0","keyId":"key1","keySpec":"EC-256","hashAlgorithm":"SHA-256","payload":"YWI="}"#
        );
        assert_eq!(
            serde_json::to_string(&MetadataRequest::default()).expect("json"),
            "{}"
        );
    }

    #[test]
    fn metadata_needs_every_field_and_contract_one_zero() {
        let mut metadata = Metadata {
            name: "p".into(),
            description: "d".into(),
            version: "1.0.0".into(),
            url: "https://example.com".into(),
            supported_contract_versions: vec!["1.0".into()],
            capabilities: vec![CAP_RAW.into()],
        };
        assert!(metadata.validate().is_ok());
        metadata.supported_contract_versions = vec!["2.0".into()];
        assert!(metadata.validate().is_err());
        metadata.supported_contract_versions = vec!["1.0".into()];
        metadata.url.clear();
        assert!(metadata.validate().is_err());
    }
}

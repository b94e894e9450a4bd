//! JWS JSON flattened serialization (`signature-envelope-jws.md`).
//!
//! ```text
//! { "payload": "<Base64Url(JWSPayload)>",
//!   "protected": "<Base64Url(ProtectedHeaders)>",
//!   "header": { "io.cncf.notary.timestampSignature": "<Base64(TimeStampToken)>",
//!               "x5c": ["<Base64(DER(leafCert))>", ...],
//!               "io.cncf.notary.signingAgent": "notation/1.0.0" },
//!   "signature": "Base64Url( sign( ASCII( <Base64Url(ProtectedHeader)>.<Base64Url(JWSPayload)> )))" }
//! ```
//!
//! Verification checks, in notation's order: the leaf certificate, the JWS signature
//! over the compact signing input (header, payload, `alg`, crypto), then the protected
//! headers (`crit`, signing scheme, times) and the remaining fields.

use serde_json::{Map, Value};

use super::{
    EnvelopeContent, EnvelopeError, ExtendedAttribute, Payload, SignerInfo, SigningScheme, attr,
};
use crate::encoding::{Base64, decode_base64, go_field, go_json_type, parse_json};
use crate::quote::Q;
use crate::signature::{PssSalt, PublicKey, SignatureAlgorithm};
use crate::time::Instant;
use crate::x509::Cert;

/// Headers the JWS layer itself interprets (exact names; everything else in the
/// protected header is an extended attribute).
const HEADER_KEYS: [&str; 7] = [
    "alg",
    "cty",
    "crit",
    attr::EXPIRY,
    attr::SIGNING_TIME,
    attr::SIGNING_SCHEME,
    attr::AUTHENTIC_SIGNING_TIME,
];

/// A parsed JWS envelope, fields as received.
#[derive(Clone, Debug, Default)]
pub struct JwsEnvelope {
    payload: String,
    protected: String,
    signature: String,
    x5c: Vec<Vec<u8>>,
    timestamp_signature: Option<Vec<u8>>,
    signing_agent: String,
}

fn invalid(text: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid(text.into())
}

fn type_error(value: &Value, field: &str, go_type: &str) -> EnvelopeError {
    invalid(format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        go_json_type(value)
    ))
}

fn string_of(
    object: &Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<String, EnvelopeError> {
    match go_field(object, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(other, field, "string")),
    }
}

fn bytes_of(value: &Value, field: &str) -> Result<Option<Vec<u8>>, EnvelopeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => decode_base64(Base64::Std, s.as_bytes())
            .map(Some)
            .map_err(|e| invalid(e.to_string())),
        other => Err(type_error(other, field, "[]uint8")),
    }
}

impl JwsEnvelope {
    /// Read the JSON envelope as Go's `json.Unmarshal` does (unknown fields ignored,
    /// names matched ignoring case, `[]byte` fields in standard base64).
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let value = parse_json(bytes).map_err(invalid)?;
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(o) => o,
            other => {
                return Err(invalid(format!(
                    "json: cannot unmarshal {} into Go value of type jws.jwsEnvelope",
                    go_json_type(&other)
                )));
            }
        };
        let mut envelope = Self {
            payload: string_of(&object, "payload", "jwsEnvelope.payload")?,
            protected: string_of(&object, "protected", "jwsEnvelope.protected")?,
            signature: string_of(&object, "signature", "jwsEnvelope.signature")?,
            ..Self::default()
        };
        match go_field(&object, "header") {
            None | Some(Value::Null) => {}
            Some(Value::Object(header)) => {
                if let Some(v) = go_field(header, attr::TIMESTAMP_SIGNATURE) {
                    envelope.timestamp_signature =
                        bytes_of(v, "jwsEnvelope.header.io.cncf.notary.timestampSignature")?;
                }
                match go_field(header, "x5c") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(items)) => {
                        if items.len() > crate::certificate::MAX_CHAIN_LENGTH {
                            return Err(invalid(format!(
                                "certificate chain has {} certificates, more than the limit of {}",
                                items.len(),
                                crate::certificate::MAX_CHAIN_LENGTH
                            )));
                        }
                        for item in items {
                            envelope.x5c.push(
                                bytes_of(item, "jwsEnvelope.header.x5c")?.unwrap_or_default(),
                            );
                        }
                    }
                    Some(other) => {
                        return Err(type_error(other, "jwsEnvelope.header.x5c", "[][]uint8"));
                    }
                }
                envelope.signing_agent = string_of(
                    header,
                    attr::SIGNING_AGENT,
                    "jwsEnvelope.header.io.cncf.notary.signingAgent",
                )?;
            }
            Some(other) => {
                return Err(type_error(
                    other,
                    "jwsEnvelope.header",
                    "jws.jwsUnprotectedHeader",
                ));
            }
        }
        Ok(envelope)
    }

    /// The raw signing agent header.
    pub fn signing_agent(&self) -> &str {
        &self.signing_agent
    }

    /// Verify the signature with the leaf certificate's key, then read the content.
    pub fn verify(&self) -> Result<EnvelopeContent, EnvelopeError> {
        if self.x5c.is_empty() {
            return Err(invalid("certificate chain is not present"));
        }
        let leaf =
            Cert::from_der(&self.x5c[0]).map_err(|_| invalid("malformed leaf certificate"))?;
        self.verify_compact(&leaf)
            .map_err(EnvelopeError::Integrity)?;
        self.content()
    }

    /// The JWT-style check notation performs on `protected.payload.signature`.
    fn verify_compact(&self, leaf: &Cert) -> Result<(), String> {
        let segments = [&self.protected, &self.payload, &self.signature];
        if segments.iter().any(|s| s.contains('.')) {
            return Err("token contains an invalid number of segments".to_owned());
        }
        let header_bytes =
            decode_base64(Base64::RawUrl, self.protected.as_bytes()).map_err(|e| {
                let compact = format!("{}.{}.{}", self.protected, self.payload, self.signature);
                if compact.to_lowercase().starts_with("bearer ") {
                    "tokenstring should not contain 'bearer '".to_owned()
                } else {
                    e.to_string()
                }
            })?;
        let header = match parse_json(&header_bytes)? {
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    go_json_type(&other)
                ));
            }
        };
        let payload_bytes =
            decode_base64(Base64::RawUrl, self.payload.as_bytes()).map_err(|e| e.to_string())?;
        let mut claims = serde_json::Deserializer::from_slice(&payload_bytes).into_iter::<Value>();
        match claims.next() {
            Some(Ok(Value::Object(_))) => {}
            Some(Ok(other)) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type jwt.MapClaims",
                    go_json_type(&other)
                ));
            }
            Some(Err(e)) => return Err(format!("invalid JSON payload: {e}")),
            None => return Err("EOF".to_owned()),
        }
        let algorithm = match header.get("alg") {
            Some(Value::String(alg)) => match SignatureAlgorithm::from_jws_name(alg) {
                Some(a) => a,
                None if JWT_KNOWN_METHODS.contains(&alg.as_str()) => {
                    return Err(format!("signing method {alg} is invalid"));
                }
                None => return Err("signing method (alg) is unavailable.".to_owned()),
            },
            _ => return Err("signing method (alg) is unspecified.".to_owned()),
        };
        let signature =
            decode_base64(Base64::RawUrl, self.signature.as_bytes()).map_err(|e| e.to_string())?;
        let signing_input = format!("{}.{}", self.protected, self.payload);
        let ecdsa = matches!(
            algorithm,
            SignatureAlgorithm::EcdsaSha256
                | SignatureAlgorithm::EcdsaSha384
                | SignatureAlgorithm::EcdsaSha512
        );
        let key = match (&leaf.public_key, ecdsa) {
            (Ok(PublicKey::Rsa(_)), true) => return Err("key is of invalid type".to_owned()),
            (Ok(PublicKey::Rsa(_)), false) | (Ok(_), true) => {
                leaf.public_key.as_ref().map_err(Clone::clone)?
            }
            (_, false) => return Err("key is invalid".to_owned()),
            (Err(_), true) => return Err("key is of invalid type".to_owned()),
        };
        key.verify(
            algorithm,
            signing_input.as_bytes(),
            &signature,
            PssSalt::Auto,
        )
        .map_err(|_| {
            if ecdsa {
                "crypto/ecdsa: verification error".to_owned()
            } else {
                "crypto/rsa: verification error".to_owned()
            }
        })
    }

    /// Read and check the protected headers, payload and chain (no signature check).
    pub fn content(&self) -> Result<EnvelopeContent, EnvelopeError> {
        let protected = decode_base64(Base64::RawUrl, self.protected.as_bytes()).map_err(|e| {
            invalid(format!(
                "jws envelope protected header can't be decoded: {e}"
            ))
        })?;
        let header = ProtectedHeader::parse(&protected).map_err(|e| {
            invalid(format!(
                "jws envelope protected header can't be decoded: {e}"
            ))
        })?;
        let payload = decode_base64(Base64::RawUrl, self.payload.as_bytes())
            .map_err(|e| invalid(format!("payload error: {e}")))?;
        let scheme = header.validate()?;
        let algorithm = SignatureAlgorithm::from_jws_name(&header.alg).ok_or_else(|| {
            invalid(format!(
                "signature algorithm {} is not supported",
                Q(&header.alg)
            ))
        })?;
        let signing_time = match scheme {
            SigningScheme::X509 => header.signing_time,
            SigningScheme::X509SigningAuthority => header.authentic_signing_time,
        }
        .ok_or_else(super::time_missing)?;
        let signature = decode_base64(Base64::RawUrl, self.signature.as_bytes())
            .map_err(|e| invalid(e.to_string()))?;
        if signature.is_empty() {
            return Err(invalid("signature missing in jws-json envelope"));
        }
        let mut chain = Vec::with_capacity(self.x5c.len());
        for der in &self.x5c {
            chain.push(Cert::from_der(der).map_err(|e| invalid(e.to_string()))?);
        }
        let extended_attributes = header
            .extended
            .iter()
            .map(|(key, value)| ExtendedAttribute {
                key: key.clone(),
                critical: header.crit.contains(key),
                value: match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect();
        Ok(EnvelopeContent {
            signer_info: SignerInfo {
                signing_scheme: scheme,
                signing_time,
                expiry: header.expiry,
                extended_attributes,
                signing_agent: (!self.signing_agent.is_empty()).then(|| self.signing_agent.clone()),
                timestamp_signature: self.timestamp_signature.clone().filter(|t| !t.is_empty()),
                algorithm,
                certificate_chain: chain,
                signature,
            },
            payload: Payload {
                content_type: header.cty.clone(),
                content: payload,
            },
        })
    }
}

/// Algorithms golang-jwt knows but the Notary Project forbids.
const JWT_KNOWN_METHODS: [&str; 8] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "EdDSA", "none",
];

/// The protected header, decoded.
#[derive(Debug, Default)]
struct ProtectedHeader {
    alg: String,
    cty: String,
    crit: Vec<String>,
    expiry: Option<Instant>,
    signing_scheme: String,
    signing_time: Option<Instant>,
    authentic_signing_time: Option<Instant>,
    /// Every key but the seven standard ones, in header order.
    extended: Vec<(String, Value)>,
}

impl ProtectedHeader {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let object = match parse_json(bytes)? {
            Value::Object(o) => o,
            Value::Null => Map::new(),
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type jws.jwsProtectedHeader",
                    go_json_type(&other)
                ));
            }
        };
        let text = |name: &str| -> Result<String, String> {
            match go_field(&object, name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!(
                    "json: cannot unmarshal {} into Go struct field jwsProtectedHeader.{name} of type string",
                    go_json_type(other)
                )),
            }
        };
        let time = |name: &str| -> Result<Option<Instant>, String> {
            match go_field(&object, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Instant::parse_rfc3339(s).map(Some).ok_or_else(|| {
                    format!(
                        "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse",
                        Q(s)
                    )
                }),
                Some(other) => Err(format!(
                    "json: cannot unmarshal {} into Go struct field jwsProtectedHeader.{name} of type time.Time",
                    go_json_type(other)
                )),
            }
        };
        let crit = match go_field(&object, "crit") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    other => Err(format!(
                        "json: cannot unmarshal {} into Go struct field jwsProtectedHeader.crit of type string",
                        go_json_type(other)
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field jwsProtectedHeader.crit of type []string",
                    go_json_type(other)
                ));
            }
        };
        Ok(Self {
            alg: text("alg")?,
            cty: text("cty")?,
            crit,
            expiry: time(attr::EXPIRY)?,
            signing_scheme: text(attr::SIGNING_SCHEME)?,
            signing_time: time(attr::SIGNING_TIME)?,
            authentic_signing_time: time(attr::AUTHENTIC_SIGNING_TIME)?,
            extended: object
                .iter()
                .filter(|(k, _)| !HEADER_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Scheme rules and `crit` rules.
    fn validate(&self) -> Result<SigningScheme, EnvelopeError> {
        let scheme = match SigningScheme::from_name(&self.signing_scheme) {
            Some(SigningScheme::X509) => {
                if self.authentic_signing_time.is_some() {
                    return Err(invalid(format!(
                        "{} header must not be present for notary.x509 signing scheme",
                        Q(attr::AUTHENTIC_SIGNING_TIME)
                    )));
                }
                SigningScheme::X509
            }
            Some(SigningScheme::X509SigningAuthority) => {
                if self.signing_time.is_some() {
                    return Err(invalid(format!(
                        "{} header must not be present for notary.x509.signingAuthority signing scheme",
                        Q(attr::SIGNING_TIME)
                    )));
                }
                if self.authentic_signing_time.is_none() {
                    return Err(invalid(format!(
                        "{} header must be present for notary.x509.signingAuthority signing scheme",
                        Q(attr::AUTHENTIC_SIGNING_TIME)
                    )));
                }
                SigningScheme::X509SigningAuthority
            }
            None => {
                return Err(invalid(format!(
                    "unsupported SigningScheme: `{}`",
                    self.signing_scheme
                )));
            }
        };
        if self.crit.is_empty() {
            return Err(invalid("missing \"crit\" header"));
        }
        let mut must: Vec<&str> = vec![attr::SIGNING_SCHEME];
        if self.expiry.is_some() {
            must.push(attr::EXPIRY);
        }
        if scheme == SigningScheme::X509SigningAuthority {
            must.push(attr::AUTHENTIC_SIGNING_TIME);
        }
        for entry in &self.crit {
            if let Some(pos) = must.iter().position(|m| m == entry) {
                must.remove(pos);
            } else if !self.extended.iter().any(|(k, _)| k == entry) {
                return Err(invalid(format!(
                    "{} header is marked critical but not present",
                    Q(entry)
                )));
            }
        }
        if !must.is_empty() {
            return Err(invalid(format!(
                "these required headers are not marked as critical: [{}]",
                must.join(" ")
            )));
        }
        Ok(scheme)
    }
}

#[cfg(feature = "sign")]
pub use encode::encode;

#[cfg(feature = "sign")]
mod encode {
    //! The JWS encoder: protected header keys sorted as Go's `json.Marshal` sorts a map,
    //! `crit` = signingScheme, critical extended attributes, authenticSigningTime, expiry.

    use serde_json::{Map, Value};

    use crate::encoding::{encode_base64, encode_base64url};
    use crate::envelope::attr;
    use crate::sign::{SignRequest, SignedAttributes};

    /// The protected header and payload segments and the signing input.
    pub fn signing_input(attributes: &SignedAttributes, payload: &[u8]) -> (String, String) {
        let mut header = std::collections::BTreeMap::<String, Value>::new();
        header.insert(
            "alg".into(),
            Value::String(attributes.algorithm.jws_name().into()),
        );
        let mut crit = vec![Value::String(attr::SIGNING_SCHEME.into())];
        for ext in attributes.extended.iter().filter(|e| e.critical) {
            crit.push(Value::String(ext.key.clone()));
        }
        if let Some(expiry) = attributes.expiry {
            crit.push(Value::String(attr::EXPIRY.into()));
            header.insert(attr::EXPIRY.into(), Value::String(expiry.rfc3339()));
        }
        header.insert("crit".into(), Value::Array(crit));
        header.insert("cty".into(), Value::String(attributes.content_type.clone()));
        header.insert(
            attr::SIGNING_SCHEME.into(),
            Value::String(crate::envelope::SigningScheme::X509.name().into()),
        );
        header.insert(
            attr::SIGNING_TIME.into(),
            Value::String(attributes.signing_time.rfc3339()),
        );
        for ext in &attributes.extended {
            header.insert(ext.key.clone(), Value::String(ext.value.clone()));
        }
        // Go's json.Marshal writes map keys in byte order.
        let header: Map<String, Value> = header.into_iter().collect();
        let header_json = serde_json::to_string(&Value::Object(header)).unwrap_or_default();
        (
            encode_base64url(header_json.as_bytes()),
            encode_base64url(payload),
        )
    }

    /// Assemble the envelope JSON (`payload`, `protected`, `header`, `signature`), the
    /// unprotected header's keys in this order: timestamp signature, `x5c`, signing agent.
    /// Every value but the signing agent is base64, which JSON carries as it is, so only
    /// the agent goes through serde_json's escaping; the bytes are those of serializing
    /// the same map (`tests::direct_encoding_is_serde_json_s`).
    pub fn encode(
        request: &SignRequest<'_>,
        protected: &str,
        payload: &str,
        signature: &[u8],
    ) -> Vec<u8> {
        fn string(out: &mut String, base64: &str) {
            debug_assert!(
                base64
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
            );
            out.push('"');
            out.push_str(base64);
            out.push('"');
        }
        let x5c: Vec<String> = request
            .certificate_chain
            .iter()
            .map(|c| encode_base64(c))
            .collect();
        let mut out = String::with_capacity(
            payload.len() + protected.len() + x5c.iter().map(|c| c.len() + 3).sum::<usize>() + 512,
        );
        out.push_str("{\"payload\":");
        string(&mut out, payload);
        out.push_str(",\"protected\":");
        string(&mut out, protected);
        out.push_str(",\"header\":{");
        if let Some(token) = &request.timestamp_token {
            out.push('"');
            out.push_str(attr::TIMESTAMP_SIGNATURE);
            out.push_str("\":");
            string(&mut out, &encode_base64(token));
            out.push(',');
        }
        out.push_str("\"x5c\":[");
        for (i, cert) in x5c.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, cert);
        }
        out.push(']');
        if !request.signing_agent.is_empty() {
            out.push_str(",\"");
            out.push_str(attr::SIGNING_AGENT);
            out.push_str("\":");
            out.push_str(&Value::String(request.signing_agent.clone()).to_string());
        }
        out.push_str("},\"signature\":");
        string(&mut out, &encode_base64url(signature));
        out.push('}');
        out.into_bytes()
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used, reason = "test code")]

        use serde_json::{Map, Value};

        use crate::encoding::{encode_base64, encode_base64url};
        use crate::envelope::attr;
        use crate::sign::{SignRequest, SignedAttributes};

        /// The envelope as serde_json writes the map (the encoder before it wrote directly).
        fn by_serde_json(
            request: &SignRequest<'_>,
            protected: &str,
            payload: &str,
            signature: &[u8],
        ) -> Vec<u8> {
            let mut header = Map::new();
            if let Some(token) = &request.timestamp_token {
                header.insert(
                    attr::TIMESTAMP_SIGNATURE.into(),
                    Value::String(encode_base64(token)),
                );
            }
            header.insert(
                "x5c".into(),
                Value::Array(
                    request
                        .certificate_chain
                        .iter()
                        .map(|c| Value::String(encode_base64(c)))
                        .collect(),
                ),
            );
            if !request.signing_agent.is_empty() {
                header.insert(
                    attr::SIGNING_AGENT.into(),
                    Value::String(request.signing_agent.clone()),
                );
            }
            format!(
                "{{\"payload\":{},\"protected\":{},\"header\":{},\"signature\":{}}}",
                Value::String(payload.to_owned()),
                Value::String(protected.to_owned()),
                Value::Object(header),
                Value::String(encode_base64url(signature)),
            )
            .into_bytes()
        }

        #[test]
        fn direct_encoding_is_serde_json_s() {
            let attributes = SignedAttributes {
                algorithm: crate::signature::SignatureAlgorithm::EcdsaSha256,
                content_type: crate::sign::payload_content_type().to_owned(),
                signing_time: crate::Instant::from_unix(1_700_000_000, 0),
                expiry: None,
                extended: Vec::new(),
            };
            let payload = br#"{"targetArtifact":{}}"#;
            let (protected, payload) = super::signing_input(&attributes, payload);
            let chains: [Vec<Vec<u8>>; 3] = [
                vec![],
                vec![vec![0xfb; 70]],
                vec![vec![1, 2, 3], (0..=255).collect()],
            ];
            let agents = [
                "",
                "hsm-notary/0.1",
                "quote \" back\\slash \n tab\t é 🔏 \u{1}",
            ];
            let tokens = [None, Some(vec![0xff, 0xfe, 0x00, 0x3e])];
            for chain in &chains {
                for agent in agents {
                    for token in &tokens {
                        let request = SignRequest {
                            format: crate::sign::Format::Jws,
                            attributes: attributes.clone(),
                            payload: b"",
                            certificate_chain: chain.clone(),
                            signing_agent: agent.to_owned(),
                            timestamp_token: token.clone(),
                        };
                        let signature = [0x3fu8, 0xfb, 0xff, 1];
                        assert_eq!(
                            String::from_utf8(super::encode(
                                &request, &protected, &payload, &signature
                            ))
                            .unwrap(),
                            String::from_utf8(by_serde_json(
                                &request, &protected, &payload, &signature
                            ))
                            .unwrap(),
                            "agent {agent:?}, {} certificates, token {token:?}",
                            chain.len()
                        );
                    }
                }
            }
        }
    }
}

#[cfg(feature = "sign")]
pub use encode::signing_input;

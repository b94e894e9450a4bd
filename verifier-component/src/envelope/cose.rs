//! COSE_Sign1_Tagged (`signature-envelope-cose.md`), decoded with `coset`.
//!
//! ```text
//! 18([ / protected / << { 1: alg, 2: crit, 3: cty, "io.cncf.notary.signingScheme": tstr,
//!                          "io.cncf.notary.signingTime": 1(int), "io.cncf.notary.expiry": 1(int) } >>,
//!      / unprotected / { 33: [ bstr DER, ... ], "io.cncf.notary.timestampSignature": bstr,
//!                        "io.cncf.notary.signingAgent": tstr },
//!      / payload / bstr,
//!      / signature / bstr ])
//! ```
//!
//! The algorithm is derived from the leaf certificate's key and must equal the header's
//! `alg` (algorithm substitution is not possible); the `Sig_structure` is built over the
//! protected header bytes exactly as received.

use ciborium::Value;
use coset::iana::EnumI64;
use coset::{
    CborSerializable, CoseSign1, Label, RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::{
    EnvelopeContent, EnvelopeError, ExtendedAttribute, Payload, SignerInfo, SigningScheme, attr,
};
use crate::certificate;
use crate::signature::{PssSalt, SignatureAlgorithm};
use crate::time::Instant;
use crate::x509::Cert;

const X5CHAIN: i64 = 33;

/// A parsed COSE_Sign1 envelope.
#[derive(Clone, Debug)]
pub struct CoseEnvelope {
    message: CoseSign1,
}

fn invalid(text: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Invalid(text.into())
}

fn label_text(label: &Label) -> String {
    match label {
        Label::Int(i) => i.to_string(),
        Label::Text(t) => t.clone(),
    }
}

fn registered_i64<T: EnumI64 + coset::iana::WithPrivateRange>(
    label: &RegisteredLabelWithPrivate<T>,
) -> Result<i64, String> {
    match label {
        RegisteredLabelWithPrivate::Assigned(v) => Ok(v.to_i64()),
        RegisteredLabelWithPrivate::PrivateUse(i) => Ok(*i),
        RegisteredLabelWithPrivate::Text(t) => Err(t.clone()),
    }
}

fn crit_label(label: &RegisteredLabelWithPrivate<coset::iana::HeaderParameter>) -> Label {
    match registered_i64(label) {
        Ok(i) => Label::Int(i),
        Err(t) => Label::Text(t),
    }
}

/// go-cose's name for an algorithm value.
fn alg_name(value: i64) -> String {
    SignatureAlgorithm::from_cose_label(value)
        .map(|a| a.jws_name().to_owned())
        .unwrap_or_else(|| format!("unknown algorithm value {value}"))
}

impl CoseEnvelope {
    /// Decode a tagged COSE_Sign1.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() < 2 || bytes[0] != 0xd2 || bytes[1] != 0x84 {
            return Err(invalid("cbor: invalid COSE_Sign1_Tagged object"));
        }
        let message =
            CoseSign1::from_tagged_slice(bytes).map_err(|e| invalid(format!("cbor: {e}")))?;
        if message.signature.is_empty() {
            return Err(invalid("empty signature"));
        }
        for label in &message.protected.header.crit {
            let label = crit_label(label);
            if !protected_has(&message, &label) {
                return Err(invalid(format!(
                    "cbor: invalid protected header: protected header: header parameter: crit: missing critical header: {}",
                    label_text(&label)
                )));
            }
        }
        Ok(Self { message })
    }

    fn leaf(&self) -> Result<Cert, EnvelopeError> {
        let chain = self
            .x5chain()
            .ok_or_else(|| invalid("certificate chain is not present"))?;
        let first = match chain.first() {
            Some(Value::Bytes(der)) => der,
            _ => return Err(invalid("COSE envelope malformed leaf certificate")),
        };
        Cert::from_der(first).map_err(|_| invalid("malformed leaf certificate"))
    }

    fn x5chain(&self) -> Option<&Vec<Value>> {
        self.message
            .unprotected
            .rest
            .iter()
            .find(|(l, _)| *l == Label::Int(X5CHAIN))
            .and_then(|(_, v)| match v {
                Value::Array(items) if !items.is_empty() => Some(items),
                _ => None,
            })
    }

    /// Verify the signature with the leaf certificate's key, then read the content.
    pub fn verify(&self) -> Result<EnvelopeContent, EnvelopeError> {
        let leaf = self.leaf()?;
        let spec = certificate::key_spec(&leaf).map_err(invalid)?;
        let derived = spec
            .signature_algorithm()
            .ok_or_else(|| invalid(format!("{} keys are not supported", spec.name())))?;
        self.check_signature(&leaf, derived)
            .map_err(EnvelopeError::Integrity)?;
        self.content()
    }

    fn check_signature(&self, leaf: &Cert, derived: SignatureAlgorithm) -> Result<(), String> {
        let payload = self
            .message
            .payload
            .as_ref()
            .ok_or_else(|| "missing payload".to_owned())?;
        let _ = payload;
        let header_alg = match &self.message.protected.header.alg {
            None => return Err("algorithm not found".to_owned()),
            Some(alg) => registered_i64(alg).map_err(|t| {
                format!(
                    "algorithm mismatch: verifier {}: header Algorithm({t:?})",
                    derived.jws_name()
                )
            })?,
        };
        if header_alg != derived.cose_label() {
            return Err(format!(
                "algorithm mismatch: verifier {}: header {}",
                derived.jws_name(),
                alg_name(header_alg)
            ));
        }
        let key = leaf.public_key.as_ref().map_err(Clone::clone)?;
        let tbs = self.message.tbs_data(&[]);
        key.verify(derived, &tbs, &self.message.signature, PssSalt::EqualsHash)
            .map_err(|_| "verification error".to_owned())
    }

    /// Read and check the headers, payload and chain (no signature check).
    pub fn content(&self) -> Result<EnvelopeContent, EnvelopeError> {
        let protected = &self.message.protected.header;
        let content_type = match &protected.content_type {
            None => return Err(invalid("missing content type")),
            Some(coset::ContentType::Text(t)) => t.clone(),
            Some(coset::ContentType::Assigned(_)) => {
                return Err(invalid("content type should be of 'tstr' type"));
            }
        };
        let payload = self.message.payload.clone().unwrap_or_default();

        // Critical headers.
        let scheme_name = match protected_value(&self.message, attr::SIGNING_SCHEME) {
            Some(Value::Text(s)) => s.clone(),
            _ => return Err(invalid("invalid signingScheme")),
        };
        let crit: Vec<Label> = protected.crit.iter().map(crit_label).collect();
        let mut must: Vec<&str> = vec![attr::SIGNING_SCHEME];
        if scheme_name == SigningScheme::X509SigningAuthority.name() {
            must.push(attr::AUTHENTIC_SIGNING_TIME);
        }
        if protected_value(&self.message, attr::EXPIRY).is_some() {
            must.push(attr::EXPIRY);
        }
        must.retain(|m| !crit.contains(&Label::Text((*m).to_owned())));
        if !must.is_empty() {
            return Err(invalid(format!(
                "these required headers are not marked as critical: [{}]",
                must.join(" ")
            )));
        }
        let algorithm = match &protected.alg {
            None => return Err(invalid("algorithm not found")),
            Some(alg) => {
                let value = registered_i64(alg)
                    .map_err(|t| invalid(format!("signature algorithm not supported: {t}")))?;
                SignatureAlgorithm::from_cose_label(value)
                    .ok_or_else(|| invalid(format!("signature algorithm not supported: {value}")))?
            }
        };
        let scheme = SigningScheme::from_name(&scheme_name)
            .ok_or_else(|| invalid(format!("unsupported signingScheme: {scheme_name}")))?;
        let time_label = match scheme {
            SigningScheme::X509 => attr::SIGNING_TIME,
            SigningScheme::X509SigningAuthority => attr::AUTHENTIC_SIGNING_TIME,
        };
        let signing_time = parse_time(&self.message, time_label)
            .map_err(|e| invalid(format!("invalid signingTime: {e}")))?;
        let expiry = if protected_value(&self.message, attr::EXPIRY).is_some() {
            Some(
                parse_time(&self.message, attr::EXPIRY)
                    .map_err(|e| invalid(format!("invalid expiry: {e}")))?,
            )
        } else {
            None
        };
        let standard = [
            attr::EXPIRY,
            attr::SIGNING_SCHEME,
            attr::SIGNING_TIME,
            attr::AUTHENTIC_SIGNING_TIME,
        ];
        let extended_attributes = protected
            .rest
            .iter()
            .filter(|(label, _)| !matches!(label, Label::Text(t) if standard.contains(&t.as_str())))
            .map(|(label, value)| ExtendedAttribute {
                key: label_text(label),
                critical: crit.contains(label),
                value: match value {
                    Value::Text(t) => t.clone(),
                    other => format!("{other:?}"),
                },
            })
            .collect();

        let items = self
            .x5chain()
            .ok_or_else(|| invalid("certificate chain is not present"))?;
        if items.len() > certificate::MAX_CHAIN_LENGTH {
            return Err(invalid(format!(
                "certificate chain has {} certificates, more than the limit of {}",
                items.len(),
                certificate::MAX_CHAIN_LENGTH
            )));
        }
        let mut chain = Vec::with_capacity(items.len());
        for item in items {
            let Value::Bytes(der) = item else {
                return Err(invalid("certificate chain is not present"));
            };
            chain.push(Cert::from_der(der).map_err(|e| invalid(e.to_string()))?);
        }
        let unprotected = |name: &str| {
            self.message
                .unprotected
                .rest
                .iter()
                .find(|(l, _)| *l == Label::Text(name.to_owned()))
                .map(|(_, v)| v)
        };
        let signing_agent = match unprotected(attr::SIGNING_AGENT) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        };
        let timestamp_signature = match unprotected(attr::TIMESTAMP_SIGNATURE) {
            Some(Value::Bytes(b)) if !b.is_empty() => Some(b.clone()),
            _ => None,
        };
        Ok(EnvelopeContent {
            signer_info: SignerInfo {
                signing_scheme: scheme,
                signing_time,
                expiry,
                extended_attributes,
                signing_agent,
                timestamp_signature,
                algorithm,
                certificate_chain: chain,
                signature: self.message.signature.clone(),
            },
            payload: Payload {
                content_type,
                content: payload,
            },
        })
    }
}

fn protected_has(message: &CoseSign1, label: &Label) -> bool {
    let header = &message.protected.header;
    match label {
        Label::Int(1) => header.alg.is_some(),
        Label::Int(2) => !header.crit.is_empty(),
        Label::Int(3) => header.content_type.is_some(),
        Label::Int(4) => !header.key_id.is_empty(),
        Label::Int(5) => !header.iv.is_empty(),
        Label::Int(6) => !header.partial_iv.is_empty(),
        other => header.rest.iter().any(|(l, _)| l == other),
    }
}

fn protected_value<'a>(message: &'a CoseSign1, name: &str) -> Option<&'a Value> {
    message
        .protected
        .header
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Text(name.to_owned()))
        .map(|(_, v)| v)
}

/// A protected time: CBOR tag 1 (epoch seconds, integer or float) only.
fn parse_time(message: &CoseSign1, label: &str) -> Result<Instant, String> {
    match protected_value(message, label) {
        None => Err(format!("protected header {label:?} is missing")),
        Some(Value::Tag(1, inner)) => match inner.as_ref() {
            Value::Integer(i) => {
                let seconds = i64::try_from(i128::from(*i))
                    .map_err(|_| "time value out of range".to_owned())?;
                Ok(Instant::from_unix(seconds, 0))
            }
            Value::Float(f) if f.is_finite() && f.abs() < 1e15 => {
                let seconds = f.floor();
                let nanos = ((f - seconds) * 1e9).round() as u32;
                Ok(Instant::from_unix(seconds as i64, nanos))
            }
            _ => Err("invalid timeValue type".to_owned()),
        },
        Some(Value::Tag(_, _)) => Err("only Tag `1` Datetime CBOR object is supported".to_owned()),
        Some(_) => Err("invalid timeValue type".to_owned()),
    }
}

#[cfg(feature = "sign")]
pub use encode::{encode, signing_input};

#[cfg(feature = "sign")]
mod encode {
    //! The COSE encoder. Protected header keys are written in CBOR core deterministic
    //! order (bytewise order of the encoded keys), as go-cose does; `crit` =
    //! signingScheme, expiry, critical extended attributes.

    use ciborium::Value;

    use crate::envelope::attr;
    use crate::sign::{SignRequest, SignedAttributes};

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = ciborium::ser::into_writer(value, &mut out);
        out
    }

    fn time(seconds: i64) -> Value {
        Value::Tag(1, Box::new(Value::Integer(seconds.into())))
    }

    /// The encoded protected header and the `Sig_structure` to sign.
    pub fn signing_input(attributes: &SignedAttributes, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut crit = vec![Value::Text(attr::SIGNING_SCHEME.into())];
        let mut entries: Vec<(Value, Value)> = vec![
            (
                Value::Integer(1.into()),
                Value::Integer(attributes.algorithm.cose_label().into()),
            ),
            (
                Value::Integer(3.into()),
                Value::Text(attributes.content_type.clone()),
            ),
            (
                Value::Text(attr::SIGNING_SCHEME.into()),
                Value::Text(crate::envelope::SigningScheme::X509.name().into()),
            ),
            (
                Value::Text(attr::SIGNING_TIME.into()),
                time(attributes.signing_time.seconds),
            ),
        ];
        if let Some(expiry) = attributes.expiry {
            crit.push(Value::Text(attr::EXPIRY.into()));
            entries.push((Value::Text(attr::EXPIRY.into()), time(expiry.seconds)));
        }
        for ext in &attributes.extended {
            if ext.critical {
                crit.push(Value::Text(ext.key.clone()));
            }
            entries.push((Value::Text(ext.key.clone()), Value::Text(ext.value.clone())));
        }
        entries.push((Value::Integer(2.into()), Value::Array(crit)));
        entries.sort_by_key(|(k, _)| cbor(k));
        let protected = cbor(&Value::Map(entries));
        let sig_structure = cbor(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload.to_vec()),
        ]));
        (protected, sig_structure)
    }

    /// Assemble `18([protected, unprotected, payload, signature])`.
    pub fn encode(
        request: &SignRequest<'_>,
        protected: &[u8],
        payload: &[u8],
        signature: &[u8],
    ) -> Vec<u8> {
        let mut unprotected: Vec<(Value, Value)> = Vec::new();
        if !request.signing_agent.is_empty() {
            unprotected.push((
                Value::Text(attr::SIGNING_AGENT.into()),
                Value::Text(request.signing_agent.clone()),
            ));
        }
        if !request.certificate_chain.is_empty() {
            unprotected.push((
                Value::Integer(33.into()),
                Value::Array(
                    request
                        .certificate_chain
                        .iter()
                        .map(|c| Value::Bytes(c.clone()))
                        .collect(),
                ),
            ));
        }
        if let Some(token) = &request.timestamp_token {
            unprotected.push((
                Value::Text(attr::TIMESTAMP_SIGNATURE.into()),
                Value::Bytes(token.clone()),
            ));
        }
        unprotected.sort_by_key(|(k, _)| cbor(k));
        cbor(&Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected.to_vec()),
                Value::Map(unprotected),
                Value::Bytes(payload.to_vec()),
                Value::Bytes(signature.to_vec()),
            ])),
        ))
    }
}

/// Re-encode a decoded message (used by tests of round trips).
pub fn reencode(envelope: &CoseEnvelope) -> Option<Vec<u8>> {
    envelope
        .message
        .clone()
        .to_tagged_vec()
        .ok()
        .or_else(|| envelope.message.clone().to_vec().ok())
}

//! Trust policy documents (`trust-store-trust-policy.md` §Trust Policy): the OCI language
//! (`trustpolicy.oci.json`, legacy `trustpolicy.json`) and the blob language
//! (`trustpolicy.blob.json`), version 1.0.
//!
//! ```text
//! { "version": "1.0",
//!   "trustPolicies": [ { "name": "...", "registryScopes": ["..."],      // OCI only
//!                        "globalPolicy": true,                           // blob only
//!                        "signatureVerification": { "level": "strict",
//!                            "override": { "expiry": "log" }, "verifyTimestamp": "always" },
//!                        "trustStores": ["ca:acme"], "trustedIdentities": ["x509.subject: ..."] } ] }
//! ```
//!
//! Documents are read the way notation's Go decoder reads them (unknown fields ignored,
//! field names matched case-insensitively, `null` meaning "unset", only the first JSON
//! value considered) and then validated rule by rule, in notation's order and with its
//! messages.

pub mod identity;
pub mod level;
pub mod scope;
pub mod validate;

use serde_json::{Map, Value};

pub use level::{Action, Actions, Check, Level, VerifyTimestamp};
pub use validate::{LevelError, PolicyError};

use crate::truststore::StoreType;

/// Largest trust policy document accepted.
pub const MAX_POLICY_SIZE: usize = 1024 * 1024;

/// Which trust policy language a document uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// OCI artifacts, selected by registry scope.
    Oci,
    /// Blobs, selected by policy name.
    Blob,
}

impl DocumentKind {
    /// `oci` or `blob`, as notation prefixes its messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Oci => "oci",
            Self::Blob => "blob",
        }
    }
}

/// `signatureVerification` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureVerification {
    /// `level`.
    pub level: String,
    /// `override`, in document order.
    pub overrides: Vec<(String, String)>,
    /// `verifyTimestamp` (empty when unset).
    pub verify_timestamp: String,
}

/// A trust policy statement as written, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statement {
    /// `name`.
    pub name: String,
    /// `signatureVerification`.
    pub signature_verification: SignatureVerification,
    /// `trustStores`.
    pub trust_stores: Vec<String>,
    /// `trustedIdentities`.
    pub trusted_identities: Vec<String>,
    /// `registryScopes` (OCI).
    pub registry_scopes: Vec<String>,
    /// `globalPolicy` (blob).
    pub global_policy: bool,
}

/// A trust policy document as written, before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// OCI or blob.
    pub kind: DocumentKind,
    /// `version`.
    pub version: String,
    /// `trustPolicies`.
    pub statements: Vec<Statement>,
}

/// A statement that passed validation, with its level resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    /// The statement as written.
    pub statement: Statement,
    /// The predefined level named by `level`.
    pub level: Level,
    /// The action per validation after overrides.
    pub actions: Actions,
    /// When to verify the timestamp countersignature.
    pub verify_timestamp: VerifyTimestamp,
}

impl TrustPolicy {
    /// The statement's name.
    pub fn name(&self) -> &str {
        &self.statement.name
    }
}

/// A document that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedDocument {
    /// OCI or blob.
    pub kind: DocumentKind,
    /// The statements, in document order.
    pub policies: Vec<TrustPolicy>,
}

/// A `{type}:{name}` trust store reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRef {
    /// The store type.
    pub store_type: StoreType,
    /// The named store.
    pub name: String,
}

impl Document {
    /// Read a document as notation's JSON decoder would; any decoding problem is
    /// `malformed trust policy`.
    pub fn parse(kind: DocumentKind, bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge(bytes.len()));
        }
        let value = first_json_value(bytes).ok_or(PolicyError::Malformed)?;
        let mut document = Self {
            kind,
            version: String::new(),
            statements: Vec::new(),
        };
        let object = match value {
            Value::Null => return Ok(document),
            Value::Object(object) => object,
            _ => return Err(PolicyError::Malformed),
        };
        document.version = string_field(&object, "version")?;
        if let Some(list) = array_field(&object, "trustPolicies")? {
            for item in list {
                document.statements.push(match item {
                    Value::Null => Statement::default(),
                    Value::Object(fields) => statement(kind, fields)?,
                    _ => return Err(PolicyError::Malformed),
                });
            }
        }
        Ok(document)
    }

    /// Apply every rule of the specification, in notation's order.
    pub fn validate(&self) -> Result<ValidatedDocument, PolicyError> {
        validate::document(self)
    }
}

/// Parse and validate in one step.
pub fn load(kind: DocumentKind, bytes: &[u8]) -> Result<ValidatedDocument, PolicyError> {
    Document::parse(kind, bytes)?.validate()
}

/// Go's `json.Decoder.Decode` reads one value and ignores what follows it.
fn first_json_value(bytes: &[u8]) -> Option<Value> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    stream.next()?.ok()
}

/// The value Go would assign to struct field `name`: the last key that equals it,
/// ignoring case.
pub(crate) fn go_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut found = None;
    for (key, value) in object {
        if key == name || key.to_lowercase() == name.to_lowercase() {
            found = Some(value);
        }
    }
    found
}

fn string_field(object: &Map<String, Value>, name: &str) -> Result<String, PolicyError> {
    match go_field(object, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(PolicyError::Malformed),
    }
}

fn array_field<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Vec<Value>>, PolicyError> {
    match go_field(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(_) => Err(PolicyError::Malformed),
    }
}

fn string_list(object: &Map<String, Value>, name: &str) -> Result<Vec<String>, PolicyError> {
    let Some(list) = array_field(object, name)? else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|item| match item {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            _ => Err(PolicyError::Malformed),
        })
        .collect()
}

fn statement(kind: DocumentKind, fields: &Map<String, Value>) -> Result<Statement, PolicyError> {
    let mut statement = Statement {
        name: string_field(fields, "name")?,
        trust_stores: string_list(fields, "trustStores")?,
        trusted_identities: string_list(fields, "trustedIdentities")?,
        ..Statement::default()
    };
    match go_field(fields, "signatureVerification") {
        None | Some(Value::Null) => {}
        Some(Value::Object(sv)) => {
            statement.signature_verification.level = string_field(sv, "level")?;
            statement.signature_verification.verify_timestamp =
                string_field(sv, "verifyTimestamp")?;
            match go_field(sv, "override") {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (key, value) in map {
                        let value = match value {
                            Value::Null => String::new(),
                            Value::String(s) => s.clone(),
                            _ => return Err(PolicyError::Malformed),
                        };
                        statement
                            .signature_verification
                            .overrides
                            .push((key.clone(), value));
                    }
                }
                Some(_) => return Err(PolicyError::Malformed),
            }
        }
        Some(_) => return Err(PolicyError::Malformed),
    }
    match kind {
        DocumentKind::Oci => statement.registry_scopes = string_list(fields, "registryScopes")?,
        DocumentKind::Blob => {
            statement.global_policy = match go_field(fields, "globalPolicy") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(PolicyError::Malformed),
            }
        }
    }
    Ok(statement)
}

/// Split a trust store reference at its first `:` (`None` without one).
pub fn split_store_ref(value: &str) -> Option<(&str, &str)> {
    value.split_once(':')
}

/// Whether a named store name is acceptable (`[a-zA-Z0-9_.-]+`).
pub fn is_valid_store_name(name: &str) -> bool {
    // `.` and `..` match the pattern but name the store's parent directories.
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Statement {
    /// The statement's `{type}:{name}` references of one type, in order and without
    /// repeats. References without a `:` make this fail with notation's loader message.
    pub fn stores_of_type(&self, store_type: StoreType) -> Result<Vec<String>, PolicyError> {
        let mut names: Vec<String> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for value in &self.trust_stores {
            if seen.contains(&value.as_str()) {
                continue;
            }
            seen.push(value);
            let Some((kind, name)) = split_store_ref(value) else {
                return Err(PolicyError::LoaderMissingSeparator {
                    statement: self.name.clone(),
                    value: value.clone(),
                });
            };
            if kind == store_type.name() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

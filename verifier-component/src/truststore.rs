//! Trust stores (`trust-store-trust-policy.md` §Trust Store): named collections of
//! trusted root certificates of type `ca`, `signingAuthority` or `tsa`.
//!
//! The host reads the store directories (regular files only, no symlinks) and hands the
//! file bytes over; here they are parsed (PEM or DER, several certificates per file) and
//! admitted by notation's rules: every certificate is a CA or self-signed, and `tsa`
//! stores hold only self-signed roots.

use crate::quote::Q;
use crate::x509::{self, Cert};

/// Largest single store file accepted.
pub const MAX_STORE_FILE_SIZE: usize = 4 * 1024 * 1024;
/// Most certificates a named store may hold.
pub const MAX_STORE_CERTIFICATES: usize = 1000;

/// The three trust store types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StoreType {
    /// `x509/ca`: roots for `notary.x509` signatures.
    #[serde(rename = "ca")]
    Ca,
    /// `x509/signingAuthority`: roots for `notary.x509.signingAuthority` signatures.
    #[serde(rename = "signingAuthority")]
    SigningAuthority,
    /// `x509/tsa`: roots for RFC 3161 timestamp countersignatures.
    #[serde(rename = "tsa")]
    Tsa,
}

impl StoreType {
    /// The name used in trust policies and directory names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::SigningAuthority => "signingAuthority",
            Self::Tsa => "tsa",
        }
    }

    /// From a trust policy / directory name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ca" => Some(Self::Ca),
            "signingAuthority" => Some(Self::SigningAuthority),
            "tsa" => Some(Self::Tsa),
            _ => None,
        }
    }

    /// All three.
    pub const ALL: [Self; 3] = [Self::Ca, Self::SigningAuthority, Self::Tsa];
}

/// One file of a named store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreFile {
    /// File name within the store directory.
    pub name: String,
    /// The file's bytes.
    pub content: Vec<u8>,
}

/// A named store as the host read it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NamedStore {
    /// Its type.
    pub store_type: StoreType,
    /// Its name.
    pub name: String,
    /// Its files.
    pub files: Vec<StoreFile>,
}

/// All named stores the host found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustStores {
    /// The stores.
    pub stores: Vec<NamedStore>,
}

/// Why a named store cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    /// The name breaks `[a-zA-Z0-9_.-]+`.
    #[error("trust store name needs to follow [a-zA-Z0-9_.-]+ format, {0} is invalid")]
    InvalidName(String),
    /// No such store.
    #[error("the trust store {} of type {} does not exist", Q(.name), Q(.store_type.name()))]
    NotFound {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
    },
    /// A file that is not certificates.
    #[error("failed to read the trusted certificate {file} in trust store {name} of type {}. {detail}", .store_type.name())]
    Unreadable {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
        /// File name.
        file: String,
        /// Parser error.
        detail: String,
    },
    /// A certificate that may not be a trust anchor.
    #[error("failed to validate the trusted certificate {file} in trust store {name} of type {}. {detail}", .store_type.name())]
    NotAnchor {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
        /// File name.
        file: String,
        /// Why.
        detail: String,
    },
    /// A `tsa` store certificate that is not a root.
    #[error("trusted certificate {file} in trust store {name} of type {} is invalid: {detail}", .store_type.name())]
    NotRoot {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
        /// File name.
        file: String,
        /// Why.
        detail: String,
    },
    /// No certificate in the store.
    #[error("no x509 certificates were found in trust store {} of type {}", Q(.name), Q(.store_type.name()))]
    Empty {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
    },
    /// Over the size limits.
    #[error("trust store {name} of type {} is too large: {detail}", .store_type.name())]
    TooLarge {
        /// Store type.
        store_type: StoreType,
        /// Store name.
        name: String,
        /// Which limit.
        detail: String,
    },
}

impl TrustStoreError {
    /// Whether the store is missing (notation then suggests `cert add`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::Empty { .. })
    }
}

impl TrustStores {
    /// Load and admit the certificates of `store_type:name`.
    pub fn load(&self, store_type: StoreType, name: &str) -> Result<Vec<Cert>, TrustStoreError> {
        if !crate::trustpolicy::is_valid_store_name(name) {
            return Err(TrustStoreError::InvalidName(name.to_owned()));
        }
        let store = self
            .stores
            .iter()
            .find(|s| s.store_type == store_type && s.name == name)
            .ok_or_else(|| TrustStoreError::NotFound {
                store_type,
                name: name.to_owned(),
            })?;
        let mut files: Vec<&StoreFile> = store.files.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut certs = Vec::new();
        for file in files {
            let too_large = |detail: String| TrustStoreError::TooLarge {
                store_type,
                name: name.to_owned(),
                detail,
            };
            if file.content.len() > MAX_STORE_FILE_SIZE {
                return Err(too_large(format!(
                    "file {} has {} bytes, the limit is {MAX_STORE_FILE_SIZE}",
                    file.name,
                    file.content.len()
                )));
            }
            let parsed = x509::parse_certificates(&file.content).map_err(|e| {
                TrustStoreError::Unreadable {
                    store_type,
                    name: name.to_owned(),
                    file: file.name.clone(),
                    detail: e.to_string(),
                }
            })?;
            for cert in &parsed {
                admit(cert, store_type).map_err(|(not_root, detail)| {
                    let (store_type, name, file) = (store_type, name.to_owned(), file.name.clone());
                    if not_root {
                        TrustStoreError::NotRoot {
                            store_type,
                            name,
                            file,
                            detail,
                        }
                    } else {
                        TrustStoreError::NotAnchor {
                            store_type,
                            name,
                            file,
                            detail,
                        }
                    }
                })?;
            }
            certs.extend(parsed);
            if certs.len() > MAX_STORE_CERTIFICATES {
                return Err(too_large(format!(
                    "more than {MAX_STORE_CERTIFICATES} certificates"
                )));
            }
        }
        if certs.is_empty() {
            return Err(TrustStoreError::Empty {
                store_type,
                name: name.to_owned(),
            });
        }
        Ok(certs)
    }
}

/// notation's admission rules. The error says whether it is the `tsa` root rule.
fn admit(cert: &Cert, store_type: StoreType) -> Result<(), (bool, String)> {
    if !cert.is_ca() && cert.verifies_with_own_key().is_err() {
        return Err((
            false,
            format!(
                "certificate with subject {} is not a CA certificate or self-signed signing certificate",
                Q(&cert.subject)
            ),
        ));
    }
    if store_type == StoreType::Tsa {
        match cert.is_self_signed() {
            Ok(true) => {}
            Ok(false) => {
                return Err((
                    true,
                    format!(
                        "certificate with subject {} is not a root CA certificate: issuer ({}) and subject ({}) are not the same",
                        Q(&cert.subject),
                        cert.issuer,
                        cert.subject
                    ),
                ));
            }
            Err(e) => {
                return Err((
                    true,
                    format!(
                        "certificate with subject {} is not a root CA certificate: {e}",
                        Q(&cert.subject)
                    ),
                ));
            }
        }
    }
    Ok(())
}

//! The rules a trust policy document must satisfy (`trust-store-trust-policy.md`
//! §Trust Policy Properties, §OCI/Blob Trust Policy Constraints, §Custom Verification
//! Level, §Trusted Identities Constraints), checked in notation's order.

use std::collections::BTreeMap;

use super::identity::{self, DnError};
use super::level::{Action, Actions, Check, Level, VerifyTimestamp};
use super::scope::{self, ScopeError};
use super::{
    Document, DocumentKind, Statement, TrustPolicy, ValidatedDocument, is_valid_store_name,
    split_store_ref,
};
use crate::quote::Q;

const POLICY_LINK: &str = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy";

/// A rule of `signatureVerification` that a statement breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LevelError {
    /// `level` is missing.
    #[error("signature verification level is empty or missing in the trust policy statement")]
    Empty,
    /// `level` is not strict/permissive/audit/skip.
    #[error("invalid signature verification level {}", Q(.0))]
    Unknown(String),
    /// `skip` with overrides.
    #[error("signature verification level {} can't be used to customize signature verification", Q(.0))]
    SkipCustomized(String),
    /// An override key that is not a validation.
    #[error("verification type {} in custom signature verification is not supported, supported values are [\"integrity\" \"authenticity\" \"authenticTimestamp\" \"expiry\" \"revocation\"]", Q(.0))]
    UnknownCheck(String),
    /// An override value that is not an action.
    #[error("verification action {} in custom signature verification is not supported, supported values are [\"enforce\" \"log\" \"skip\"]", Q(.0))]
    UnknownAction(String),
    /// Integrity cannot be overridden.
    #[error("{} verification can not be overridden in custom signature verification", Q(.0))]
    IntegrityOverridden(String),
    /// Only revocation may be skipped.
    #[error("{} verification can not be skipped in custom signature verification", Q(.0))]
    CannotSkip(String),
    /// `verifyTimestamp` is neither `always` nor `afterCertExpiry`.
    #[error("verifyTimestamp must be \"always\" or \"afterCertExpiry\", but got {}", Q(.0))]
    VerifyTimestamp(String),
}

/// Why a trust policy document is rejected, or why no statement applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not decodable as a trust policy.
    #[error("malformed trust policy. To create a trust policy, see: {POLICY_LINK}")]
    Malformed,
    /// Over [`super::MAX_POLICY_SIZE`].
    #[error("trust policy document of {0} bytes exceeds the limit of {max} bytes", max = super::MAX_POLICY_SIZE)]
    TooLarge(usize),
    /// `version` missing.
    #[error("{} trust policy {}has empty version, version must be specified", .0.name(), if *.0 == DocumentKind::Oci { "document " } else { "" })]
    EmptyVersion(DocumentKind),
    /// `version` is not `1.0`.
    #[error("{} trust policy document uses unsupported version {}", .0.name(), Q(.1))]
    UnsupportedVersion(DocumentKind, String),
    /// No statements.
    #[error("{} trust policy document can not have zero trust policy statements", .0.name())]
    ZeroStatements(DocumentKind),
    /// Two statements with one name.
    #[error("multiple {} trust policy statements use the same name {}, statement names must be unique", .0.name(), Q(.1))]
    DuplicateName(DocumentKind, String),
    /// A statement-level rule, prefixed with the document kind.
    #[error("{} trust policy: {}", .0.name(), .1)]
    Statement(DocumentKind, Box<StatementError>),
    /// Two blob statements with `globalPolicy: true`.
    #[error(
        "multiple blob trust policy statements have globalPolicy set to true. Only one trust policy statement can be marked as global policy"
    )]
    MultipleGlobal,
    /// An OCI statement without scopes.
    #[error("oci trust policy statement {} has zero registry scopes, it must specify registry scopes with at least one value", Q(.0))]
    ZeroScopes(String),
    /// `*` next to other scopes.
    #[error("oci trust policy statement {} uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values", Q(.0))]
    WildcardScopeWithOthers(String),
    /// A malformed scope.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// One scope in two statements.
    #[error("registry scope {} is present in multiple oci trust policy statements, one registry scope value can only be associated with one statement", Q(.0))]
    ScopeInMultipleStatements(String),
    /// A reference without `@digest` cannot be matched to a scope.
    #[error("artifact URI {} could not be parsed, make sure it is the fully qualified oci artifact URI without the scheme/protocol. e.g domain.com:80/my/repository@sha256:digest", Q(.0))]
    ReferenceWithoutDigest(String),
    /// No statement applies to the artifact.
    #[error("artifact {} has no applicable oci trust policy statement. Trust policy applicability for a given artifact is determined by registryScopes. To create a trust policy, see: {POLICY_LINK}", Q(.0))]
    NoApplicableOciPolicy(String),
    /// Blob policy selection with a blank name.
    #[error("policy name cannot be empty")]
    EmptyPolicyName,
    /// No blob statement has the requested name.
    #[error("no applicable blob trust policy with name {}", Q(.0))]
    NoApplicableBlobPolicy(String),
    /// No blob statement is global.
    #[error("no global blob trust policy")]
    NoGlobalBlobPolicy,
    /// A `trustStores` entry without `:` met while loading stores.
    #[error("error while loading the trust store, trust policy statement {} is missing separator in trust store value {}. The required format is <TrustStoreType>:<TrustStoreName>", Q(.statement), Q(.value))]
    LoaderMissingSeparator {
        /// The statement name.
        statement: String,
        /// The entry.
        value: String,
    },
}

impl PolicyError {
    /// Whether the error means "no statement applies" rather than "the document is invalid".
    pub fn is_selection(&self) -> bool {
        matches!(
            self,
            Self::ReferenceWithoutDigest(_)
                | Self::NoApplicableOciPolicy(_)
                | Self::EmptyPolicyName
                | Self::NoApplicableBlobPolicy(_)
                | Self::NoGlobalBlobPolicy
        )
    }
}

/// A rule one statement breaks (`validatePolicyCore`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// No name.
    #[error("a trust policy statement is missing a name, every statement requires a name")]
    MissingName,
    /// `signatureVerification` is invalid.
    #[error("trust policy statement {} has invalid signatureVerification: {}", Q(.0), .1)]
    SignatureVerification(String, LevelError),
    /// `skip` with stores or identities.
    #[error("trust policy statement {} is set to skip signature verification but configured with trust stores and/or trusted identities, remove them if signature verification needs to be skipped", Q(.0))]
    SkipWithTrust(String),
    /// Stores or identities missing.
    #[error("trust policy statement {} is either missing trust stores or trusted identities, both must be specified", Q(.0))]
    MissingTrust(String),
    /// A store reference without `:`.
    #[error("trust policy statement {} has malformed trust store value {}. The required format is <TrustStoreType>:<TrustStoreName>", Q(.0), Q(.1))]
    MalformedStore(String, String),
    /// An unknown store type.
    #[error("trust policy statement {} uses an unsupported trust store type {} in trust store value {}", Q(.0), Q(.1), Q(.2))]
    UnsupportedStoreType(String, String, String),
    /// An invalid store name.
    #[error("trust policy statement {} uses an unsupported trust store name {} in trust store value {}. Named store name needs to follow [a-zA-Z0-9_.-]+ format", Q(.0), Q(.1), Q(.2))]
    UnsupportedStoreName(String, String, String),
    /// `*` next to other identities.
    #[error("trust policy statement {} uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values", Q(.0))]
    WildcardIdentityWithOthers(String),
    /// An empty identity.
    #[error("trust policy statement {} has an empty trusted identity", Q(.0))]
    EmptyIdentity(String),
    /// An identity without `prefix:`.
    #[error("trust policy statement {} has trusted identity {} missing separator", Q(.0), Q(.1))]
    IdentityMissingSeparator(String, String),
    /// `x509.subject:` with nothing after it.
    #[error("trust policy statement {} has trusted identity {} without an identity value", Q(.0), Q(.1))]
    IdentityWithoutValue(String, String),
    /// A DN that does not parse or lacks mandatory attributes.
    #[error("trust policy statement {} has trusted identity {} with invalid identity value: {}", Q(.0), Q(.1), .2)]
    InvalidIdentity(String, String, DnError),
    /// Two identities that a single certificate could both satisfy.
    #[error("trust policy statement {} has overlapping x509 trustedIdentities, {} overlaps with {}", Q(.0), Q(.1), Q(.2))]
    OverlappingIdentities(String, String, String),
}

const X509_SUBJECT: &str = "x509.subject";

/// Resolve `signatureVerification` to a level and per-validation actions
/// (notation's `GetVerificationLevel`), and check `verifyTimestamp`.
pub fn resolve_level(
    sv: &super::SignatureVerification,
) -> Result<(Level, Actions, VerifyTimestamp), LevelError> {
    if sv.level.is_empty() {
        return Err(LevelError::Empty);
    }
    let level = Level::from_name(&sv.level).ok_or_else(|| LevelError::Unknown(sv.level.clone()))?;
    let mut actions = Actions::of_level(level);
    if !sv.overrides.is_empty() && level == Level::Skip {
        return Err(LevelError::SkipCustomized(sv.level.clone()));
    }
    for (key, value) in &sv.overrides {
        let check =
            Check::from_policy_name(key).ok_or_else(|| LevelError::UnknownCheck(key.clone()))?;
        let action =
            Action::from_name(value).ok_or_else(|| LevelError::UnknownAction(value.clone()))?;
        if check == Check::Integrity {
            return Err(LevelError::IntegrityOverridden(key.clone()));
        }
        if action == Action::Skip && check != Check::Revocation {
            return Err(LevelError::CannotSkip(key.clone()));
        }
        actions.set(check, action);
    }
    let verify_timestamp = match sv.verify_timestamp.as_str() {
        "" | "always" => VerifyTimestamp::Always,
        "afterCertExpiry" => VerifyTimestamp::AfterCertExpiry,
        other => return Err(LevelError::VerifyTimestamp(other.to_owned())),
    };
    Ok((level, actions, verify_timestamp))
}

/// `validatePolicyCore`: the rules shared by OCI and blob statements.
fn statement_core(
    statement: &Statement,
) -> Result<(Level, Actions, VerifyTimestamp), StatementError> {
    let name = &statement.name;
    if name.is_empty() {
        return Err(StatementError::MissingName);
    }
    let resolved = resolve_level(&statement.signature_verification)
        .map_err(|e| StatementError::SignatureVerification(name.clone(), e))?;
    if resolved.0 == Level::Skip {
        if !statement.trust_stores.is_empty() || !statement.trusted_identities.is_empty() {
            return Err(StatementError::SkipWithTrust(name.clone()));
        }
        return Ok(resolved);
    }
    if statement.trust_stores.is_empty() || statement.trusted_identities.is_empty() {
        return Err(StatementError::MissingTrust(name.clone()));
    }
    for value in &statement.trust_stores {
        let Some((kind, store)) = split_store_ref(value) else {
            return Err(StatementError::MalformedStore(name.clone(), value.clone()));
        };
        if crate::truststore::StoreType::from_name(kind).is_none() {
            return Err(StatementError::UnsupportedStoreType(
                name.clone(),
                kind.to_owned(),
                value.clone(),
            ));
        }
        if !is_valid_store_name(store) {
            return Err(StatementError::UnsupportedStoreName(
                name.clone(),
                store.to_owned(),
                value.clone(),
            ));
        }
    }
    trusted_identities(name, &statement.trusted_identities)?;
    Ok(resolved)
}

/// The x509 DNs of a statement's identities, in order, after the identity rules.
pub fn trusted_identities(
    name: &str,
    identities: &[String],
) -> Result<Vec<(String, identity::DistinguishedName)>, StatementError> {
    if identities.len() > 1 && identities.iter().any(|i| i == "*") {
        return Err(StatementError::WildcardIdentityWithOthers(name.to_owned()));
    }
    let mut dns = Vec::new();
    for raw in identities {
        if raw.is_empty() {
            return Err(StatementError::EmptyIdentity(name.to_owned()));
        }
        if raw == "*" {
            continue;
        }
        let Some((prefix, value)) = raw.split_once(':') else {
            return Err(StatementError::IdentityMissingSeparator(
                name.to_owned(),
                raw.clone(),
            ));
        };
        if prefix != X509_SUBJECT {
            // Other identity types are for verification plugins; notation ignores them.
            continue;
        }
        if value.is_empty() {
            return Err(StatementError::IdentityWithoutValue(
                name.to_owned(),
                raw.clone(),
            ));
        }
        let dn = identity::parse_distinguished_name(value)
            .map_err(|e| StatementError::InvalidIdentity(name.to_owned(), raw.clone(), e))?;
        dns.push((raw.clone(), dn));
    }
    for (i, (raw_i, dn_i)) in dns.iter().enumerate() {
        for (j, (raw_j, dn_j)) in dns.iter().enumerate() {
            if i != j && identity::is_subset(dn_i, dn_j) {
                return Err(StatementError::OverlappingIdentities(
                    name.to_owned(),
                    raw_i.clone(),
                    raw_j.clone(),
                ));
            }
        }
    }
    Ok(dns)
}

/// Validate a whole document.
pub fn document(doc: &Document) -> Result<ValidatedDocument, PolicyError> {
    let kind = doc.kind;
    if doc.version.is_empty() {
        return Err(PolicyError::EmptyVersion(kind));
    }
    if doc.version != "1.0" {
        return Err(PolicyError::UnsupportedVersion(kind, doc.version.clone()));
    }
    if doc.statements.is_empty() {
        return Err(PolicyError::ZeroStatements(kind));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut policies = Vec::new();
    let mut global_seen = false;
    for statement in &doc.statements {
        if names.contains(&statement.name.as_str()) {
            return Err(PolicyError::DuplicateName(kind, statement.name.clone()));
        }
        let (level, actions, verify_timestamp) =
            statement_core(statement).map_err(|e| PolicyError::Statement(kind, Box::new(e)))?;
        if kind == DocumentKind::Blob && statement.global_policy {
            if global_seen {
                return Err(PolicyError::MultipleGlobal);
            }
            global_seen = true;
        }
        names.push(&statement.name);
        policies.push(TrustPolicy {
            statement: statement.clone(),
            level,
            actions,
            verify_timestamp,
        });
    }
    if kind == DocumentKind::Oci {
        registry_scopes(&doc.statements)?;
    }
    Ok(ValidatedDocument { kind, policies })
}

fn registry_scopes(statements: &[Statement]) -> Result<(), PolicyError> {
    let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for statement in statements {
        let scopes = &statement.registry_scopes;
        if scopes.is_empty() {
            return Err(PolicyError::ZeroScopes(statement.name.clone()));
        }
        if scopes.len() > 1 && scopes.iter().any(|s| s == "*") {
            return Err(PolicyError::WildcardScopeWithOthers(statement.name.clone()));
        }
        for scope in scopes {
            if scope != "*" {
                scope::validate_scope_format(scope)?;
            }
            let count = owners.entry(scope).or_insert(0);
            if *count == 0 {
                order.push(scope);
            }
            *count += 1;
        }
    }
    // A scope repeated inside one statement also counts twice, as in notation.
    if let Some(scope) = order.into_iter().find(|s| owners[s] > 1) {
        return Err(PolicyError::ScopeInMultipleStatements(scope.to_owned()));
    }
    Ok(())
}

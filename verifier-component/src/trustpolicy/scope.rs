//! Registry scopes and statement selection (`trust-store-trust-policy.md` §Selecting a
//! trust policy to verify a signed OCI artifact / a signed blob).

use super::validate::PolicyError;
use super::{DocumentKind, Statement, TrustPolicy, ValidatedDocument};
use crate::quote::Q;

const ENSURE: &str = "make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout";

/// A registry scope that is not `host[:port]/repository`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A partial wildcard such as `example.com/*`.
    #[error("registry scope {} with wild card(s) is not valid, {ENSURE}", Q(.0))]
    PartialWildcard(String),
    /// Not a fully qualified repository.
    #[error("registry scope {} is not valid, {ENSURE}", Q(.0))]
    Invalid(String),
}

/// Check that `scope` is `domain[:port]/repository[/...]` (the `*` global scope is
/// checked by the caller). The grammar is the OCI distribution reference grammar that
/// notation applies: lower-case repository components.
pub fn validate_scope_format(scope: &str) -> Result<(), ScopeError> {
    if scope.len() > 1 && scope.contains('*') {
        return Err(ScopeError::PartialWildcard(scope.to_owned()));
    }
    let invalid = || ScopeError::Invalid(scope.to_owned());
    let (domain, repository) = scope.split_once('/').ok_or_else(invalid)?;
    if domain.is_empty()
        || repository.is_empty()
        || !is_domain(domain)
        || !is_repository(repository)
    {
        return Err(invalid());
    }
    Ok(())
}

/// `domain(:port)?` with labels of letters, digits and inner hyphens.
fn is_domain(text: &str) -> bool {
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
}

/// Path components of lower-case letters and digits joined by `.`, `_`, `__` or dashes.
fn is_repository(text: &str) -> bool {
    text.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// How a statement is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// An OCI artifact reference `registry/repository@digest` (or `{scope}@{digest}`).
    OciReference(String),
    /// A blob policy name; `None` selects the global policy.
    BlobPolicyName(Option<String>),
}

impl ValidatedDocument {
    /// The statement that applies.
    pub fn select(&self, selector: &Selector) -> Result<&TrustPolicy, PolicyError> {
        let index = select_index(
            self.kind,
            self.policies.iter().map(|p| &p.statement),
            selector,
        )?;
        Ok(&self.policies[index])
    }
}

/// Index of the statement `selector` picks among `statements` (validated or not).
pub fn select_index<'a>(
    kind: DocumentKind,
    statements: impl Iterator<Item = &'a Statement>,
    selector: &Selector,
) -> Result<usize, PolicyError> {
    let statements: Vec<&Statement> = statements.collect();
    match (kind, selector) {
        (DocumentKind::Oci, Selector::OciReference(reference)) => {
            let at = reference
                .rfind('@')
                .ok_or_else(|| PolicyError::ReferenceWithoutDigest(reference.clone()))?;
            let path = &reference[..at];
            validate_scope_format(path)?;
            let mut exact = None;
            let mut wildcard = None;
            for (i, statement) in statements.iter().enumerate() {
                if statement.registry_scopes.iter().any(|s| s == "*") {
                    wildcard = Some(i);
                } else if statement.registry_scopes.iter().any(|s| s == path) {
                    exact = Some(i);
                }
            }
            exact
                .or(wildcard)
                .ok_or_else(|| PolicyError::NoApplicableOciPolicy(reference.clone()))
        }
        (DocumentKind::Blob, Selector::BlobPolicyName(Some(name))) => {
            if name.trim().is_empty() {
                return Err(PolicyError::EmptyPolicyName);
            }
            statements
                .iter()
                .position(|s| &s.name == name)
                .ok_or_else(|| PolicyError::NoApplicableBlobPolicy(name.clone()))
        }
        (DocumentKind::Blob, Selector::BlobPolicyName(None)) => statements
            .iter()
            .position(|s| s.global_policy)
            .ok_or(PolicyError::NoGlobalBlobPolicy),
        (DocumentKind::Oci, Selector::BlobPolicyName(name)) => Err(
            PolicyError::NoApplicableBlobPolicy(name.clone().unwrap_or_default()),
        ),
        (DocumentKind::Blob, Selector::OciReference(reference)) => {
            Err(PolicyError::NoApplicableOciPolicy(reference.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_grammar_matches_notation() {
        for valid in [
            "example.com/rep",
            "example.com/rep/subrep/subsub",
            "10.10.10.10:8080/rep/rep2",
            "domain/rep",
            "domain:1234/rep",
            "local/e2e",
            "localhost:5000/test-repo",
            "a.b/c__d/e---f.g_h",
        ] {
            assert!(validate_scope_format(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "1:1",
            "a,b",
            "abcd",
            "1111",
            "1,2",
            "example.com/rep:tag",
            "example.com",
            "rep/rep2:latest",
            "10.10.10.10",
            "local/myOCILayout",
            "example.com/a..b",
            "example.com/a___b",
            "-a.com/b",
        ] {
            assert!(validate_scope_format(invalid).is_err(), "{invalid}");
        }
        assert!(matches!(
            validate_scope_format("example.com/*"),
            Err(ScopeError::PartialWildcard(_))
        ));
    }
}

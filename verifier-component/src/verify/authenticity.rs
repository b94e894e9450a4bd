//! Authenticity (`trust-store-trust-policy.md` §Validate Authenticity): the signing chain
//! must contain a certificate of the trust stores the signing scheme uses (`ca` for
//! `notary.x509`, `signingAuthority` for `notary.x509.signingAuthority`), and the signing
//! certificate's subject must match a trusted identity.

use std::collections::BTreeMap;

use super::Context;
use crate::envelope::{SignerInfo, SigningScheme};
use crate::outcome::FailureKind;
use crate::quote::{Q, quote};
use crate::trustpolicy::identity::{self, DistinguishedName};
use crate::trustpolicy::validate::trusted_identities;
use crate::truststore::StoreType;
use crate::x509::Cert;

/// The authenticity result: trust store match, then trusted identity. An enforced trust
/// store failure stops there; when only logged, the identity is still checked and its
/// error, if any, is the one reported (as notation does).
pub fn check(
    context: &Context<'_>,
    si: &SignerInfo,
    identity_by_plugin: bool,
) -> Result<String, (FailureKind, String)> {
    let store_result = trusted_certificate(context, si);
    // A verification plugin with SIGNATURE_VERIFIER.TRUSTED_IDENTITY checks the identity.
    if identity_by_plugin {
        return store_result;
    }
    if store_result.is_err()
        && context.action(crate::trustpolicy::Check::Authenticity)
            == crate::trustpolicy::Action::Enforce
    {
        return store_result;
    }
    let identity_result = trusted_identity(context, si.leaf());
    match (store_result, identity_result) {
        (_, Err(e)) => Err((FailureKind::Authenticity, e)),
        (Err(e), Ok(_)) => Err(e),
        (Ok(anchor), Ok(identity)) => Ok(format!("{anchor}; {identity}")),
    }
}

fn trusted_certificate(
    context: &Context<'_>,
    si: &SignerInfo,
) -> Result<String, (FailureKind, String)> {
    let store_type = match si.signing_scheme {
        SigningScheme::X509 => StoreType::Ca,
        SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
    };
    let names = context
        .policy
        .statement
        .stores_of_type(store_type)
        .map_err(|e| (FailureKind::TrustStore, e.to_string()))?;
    let mut trusted: Vec<(String, Cert)> = Vec::new();
    for name in names {
        let certs = context
            .stores
            .load(store_type, &name)
            .map_err(|e| (FailureKind::TrustStore, e.to_string()))?;
        trusted.extend(certs.into_iter().map(|c| (name.clone(), c)));
    }
    if trusted.is_empty() {
        return Err((
            FailureKind::Authenticity,
            "no trusted certificates are found to verify authenticity".to_owned(),
        ));
    }
    for cert in &si.certificate_chain {
        if let Some((store, anchor)) = trusted.iter().find(|(_, t)| t == cert) {
            return Ok(format!(
                "chain contains {} from trust store {}:{store}",
                Q(&anchor.subject),
                store_type.name()
            ));
        }
    }
    Err((
        FailureKind::Authenticity,
        "the signature's certificate chain does not contain any trusted certificate".to_owned(),
    ))
}

/// Trusted identity: `*`, or an `x509.subject` DN that is a subset of the leaf subject.
pub fn trusted_identity(context: &Context<'_>, leaf: &Cert) -> Result<String, String> {
    let statement = &context.policy.statement;
    if statement.trusted_identities.iter().any(|i| i == "*") {
        return Ok("any identity is trusted (\"*\")".to_owned());
    }
    let dns = trusted_identities(&statement.name, &statement.trusted_identities)
        .map_err(|e| e.to_string())?;
    if dns.is_empty() {
        return Err(format!(
            "no x509 trusted identities are configured in the trust policy {}",
            Q(&statement.name)
        ));
    }
    let subject = identity::certificate_subject(leaf).map_err(|e| {
        format!(
            "error while parsing the certificate subject from the digital signature. error : {}",
            quote(&e.to_string())
        )
    })?;
    if let Some((raw, _)) = dns.iter().find(|(_, dn)| identity::is_subset(dn, &subject)) {
        return Ok(format!(
            "signing certificate matches trusted identity {}",
            Q(raw)
        ));
    }
    let listed: Vec<DistinguishedName> = dns.into_iter().map(|(_, dn)| dn).collect();
    Err(format!(
        "signing certificate from the digital signature does not match the X.509 trusted identities {} defined in the trust policy {}",
        go_quote_maps(&listed),
        Q(&statement.name)
    ))
}

/// Go's `%q` of a `[]map[string]string`: `[map["C":"US" "O":"X"]]`.
fn go_quote_maps(maps: &[BTreeMap<String, String>]) -> String {
    let rendered: Vec<String> = maps
        .iter()
        .map(|m| {
            let pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
                .collect();
            format!("map[{}]", pairs.join(" "))
        })
        .collect();
    format!("[{}]", rendered.join(" "))
}

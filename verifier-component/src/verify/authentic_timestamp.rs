//! Authentic timestamp (`trust-store-trust-policy.md` §Validate Authentic Timestamp and
//! §Timestamp Countersignature Verification details).
//!
//! `notary.x509`: when the statement names a `tsa` store and `verifyTimestamp` asks for it
//! (`always`, or `afterCertExpiry` with an expired chain), the RFC 3161 countersignature
//! must cover the signature value, chain to a `tsa` root at `genTime`, meet the
//! timestamping certificate requirements, and its range must lie inside every signing
//! certificate's validity. Otherwise the chain must be valid at the verification time.
//! `notary.x509.signingAuthority`: the authentic signing time must lie inside every
//! certificate's validity.

use super::{Context, SignatureInput, VerifyRequest};
use crate::certificate::{self, Purpose};
use crate::envelope::{Envelope, SignerInfo, SigningScheme};
use crate::outcome::{Passed, ValidationResult, ValidationStatus};
use crate::quote::Q;
use std::cell::RefCell;

use crate::revocation::{self, ChainPurpose, Need};
use crate::time::Instant;
use crate::timestamp::{self, Timestamp};
use crate::trustpolicy::validate::resolve_level;
use crate::trustpolicy::{self, Action, Actions, Check, Level, TrustPolicy, VerifyTimestamp};
use crate::truststore::StoreType;
use crate::x509::Cert;

/// The validation for one signer. `Ok` carries a note and, when the validation
/// established one, the authentic time the signature was made by (what revocation
/// weighs an `invalidityDate` against).
pub(super) fn check(
    context: &Context<'_>,
    si: &SignerInfo,
) -> Result<(Passed, Option<Instant>), String> {
    match si.signing_scheme {
        SigningScheme::X509SigningAuthority => {
            let t = si.signing_time;
            for cert in &si.certificate_chain {
                if t < cert.not_before || t > cert.not_after {
                    return Err(format!(
                        "certificate {} was not valid when the digital signature was produced at {}",
                        Q(&cert.subject),
                        Q(&t.rfc1123z())
                    ));
                }
            }
            Ok((
                format!(
                    "authentic signing time {} is within the validity of every certificate",
                    t.rfc1123z()
                )
                .into(),
                Some(t),
            ))
        }
        SigningScheme::X509 => x509(
            context,
            si,
            &si.signature,
            si.timestamp_signature.as_deref(),
        ),
    }
}

fn x509(
    context: &Context<'_>,
    si: &SignerInfo,
    signature: &[u8],
    token: Option<&[u8]>,
) -> Result<(Passed, Option<Instant>), String> {
    let statement = &context.policy.statement;
    let mut has_tsa = false;
    for value in &statement.trust_stores {
        match trustpolicy::split_store_ref(value) {
            None => {
                return Err(format!(
                    "failed to check tsa trust store configuration in turst policy with error: invalid trust policy statement: {} is missing separator in trust store value {}. The required format is <TrustStoreType>:<TrustStoreName>",
                    Q(&statement.name),
                    Q(value)
                ));
            }
            Some((kind, _)) if kind == StoreType::Tsa.name() => has_tsa = true,
            Some(_) => {}
        }
    }
    let now = context.time;
    let chain = &si.certificate_chain;
    let mut enabled = has_tsa;
    let mut disabled_note =
        "timestamp verification disabled: no tsa trust store is configured in trust policy";
    if enabled
        && context.policy.verify_timestamp == VerifyTimestamp::AfterCertExpiry
        && !chain.iter().any(|c| now > c.not_after)
    {
        enabled = false;
        disabled_note = "timestamp verification disabled: verifyTimestamp is set to \"afterCertExpiry\" and signing cert chain unexpired";
    }
    if !enabled {
        for cert in chain {
            if now < cert.not_before {
                return Err(format!(
                    "verification time is before certificate {} validity period, it will be valid from {}",
                    Q(&cert.subject),
                    Q(&cert.not_before.rfc1123z())
                ));
            }
            if now > cert.not_after {
                return Err(format!(
                    "verification time is after certificate {} validity period, it was expired at {}",
                    Q(&cert.subject),
                    Q(&cert.not_after.rfc1123z())
                ));
            }
        }
        return Ok((
            format!("{disabled_note}; every certificate is valid at the verification time").into(),
            None,
        ));
    }
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        "no timestamp countersignature was found in the signature envelope".to_owned()
    })?;
    // The signer's own `signingTime` is untrusted and "not used in trust decisions" (the
    // envelope specifications): a timestamp that starts before it (a signer whose clock
    // runs fast) is not held against the signature, as notation-go#518 settled.
    let (timestamp, tsa_chain) = countersignature(context, token, signature)?;
    check_within_signing_chain(&timestamp, chain)?;
    let revocation = tsa_revocation(context, &tsa_chain)?;
    Ok((
        Passed {
            note: format!(
                "timestamp {} by {} is within the validity of every certificate; TSA chain revocation: {}",
                timestamp.format_rfc3339(),
                Q(&tsa_chain[0].subject),
                revocation.note
            ),
            warnings: revocation.warnings,
        },
        Some(timestamp.upper()),
    ))
}

/// The TSA chain's revocation, always enforced when a countersignature is verified
/// (§Timestamp countersignature verification). No signing time excuses a TSA
/// revocation: a compromised TSA key could claim any time.
fn tsa_revocation(context: &Context<'_>, tsa_chain: &[Cert]) -> Result<Passed, String> {
    let inputs = revocation::Inputs {
        evidence: context.evidence,
        time: context.time,
        signing_time: None,
        needs: context.needs,
    };
    revocation::check_chain(tsa_chain, ChainPurpose::Timestamping, &inputs)
        .map_err(|e| e.to_string())
}

/// Parse, validate against the signature value, and verify the token against the `tsa`
/// stores; returns the timestamp and the TSA chain.
fn countersignature(
    context: &Context<'_>,
    token: &[u8],
    signature: &[u8],
) -> Result<(Timestamp, Vec<Cert>), String> {
    let signed_token = timestamp::parse_signed_token(token)
        .map_err(|e| format!("failed to parse timestamp countersignature with error: {e}"))?;
    let info = signed_token
        .info()
        .map_err(|e| format!("failed to get the timestamp TSTInfo with error: {e}"))?;
    let timestamp = info.validate(signature).map_err(|e| {
        format!("failed to get timestamp from timestamp countersignature with error: {e}")
    })?;
    let roots = tsa_roots(context)
        .map_err(|e| format!("failed to load tsa trust store with error: {e}"))?;
    if roots.is_empty() {
        return Err("no trusted TSA certificate found in trust store".to_owned());
    }
    let tsa_chain = signed_token
        .verify(&roots, timestamp.value)
        .map_err(|e| format!("failed to verify the timestamp countersignature with error: {e}"))?;
    certificate::validate_chain(&tsa_chain, Purpose::Timestamping, None).map_err(|e| {
        format!("failed to validate the timestamping certificate chain with error: {e}")
    })?;
    Ok((timestamp, tsa_chain))
}

fn tsa_roots(context: &Context<'_>) -> Result<Vec<Cert>, String> {
    let names = context
        .policy
        .statement
        .stores_of_type(StoreType::Tsa)
        .map_err(|e| e.to_string())?;
    let mut roots: Vec<Cert> = Vec::new();
    for name in names {
        for cert in context
            .stores
            .load(StoreType::Tsa, &name)
            .map_err(|e| e.to_string())?
        {
            if !roots.contains(&cert) {
                roots.push(cert);
            }
        }
    }
    Ok(roots)
}

fn check_within_signing_chain(timestamp: &Timestamp, chain: &[Cert]) -> Result<(), String> {
    for cert in chain {
        if !timestamp.bounded_after(cert.not_before) {
            return Err(format!(
                "timestamp can be before certificate {} validity period, it will be valid from {}",
                Q(&cert.subject),
                Q(&cert.not_before.rfc1123z())
            ));
        }
        if !timestamp.bounded_before(cert.not_after) {
            return Err(format!(
                "timestamp can be after certificate {} validity period, it was expired at {}",
                Q(&cert.subject),
                Q(&cert.not_after.rfc1123z())
            ));
        }
    }
    Ok(())
}

/// The statement a single-step check runs under. Like notation's own step, it uses the
/// statement as written: the document is not validated as a whole, so a step can be
/// audited on its own (a malformed store entry is then reported by the step itself).
fn lenient_policy(request: &VerifyRequest) -> Result<TrustPolicy, ValidationResult> {
    let failed = |message: String| ValidationResult {
        check: Check::AuthenticTimestamp,
        action: Action::Enforce,
        status: ValidationStatus::Failed,
        message: Some(message),
        warnings: Vec::new(),
    };
    let document = trustpolicy::Document::parse(request.policy.kind, &request.policy.content)
        .map_err(|e| failed(e.to_string()))?;
    let index = trustpolicy::scope::select_index(
        document.kind,
        document.statements.iter(),
        &request.target.selector(),
    )
    .map_err(|e| failed(e.to_string()))?;
    let statement = document.statements[index].clone();
    let (level, actions, verify_timestamp) = resolve_level(&statement.signature_verification)
        .unwrap_or((
            Level::Strict,
            Actions::of_level(Level::Strict),
            if statement.signature_verification.verify_timestamp == "afterCertExpiry" {
                VerifyTimestamp::AfterCertExpiry
            } else {
                VerifyTimestamp::Always
            },
        ));
    Ok(TrustPolicy {
        statement,
        level,
        actions,
        verify_timestamp,
    })
}

fn result(action: Action, outcome: Result<Passed, String>) -> ValidationResult {
    match outcome {
        Ok(Passed { note, warnings }) => ValidationResult {
            check: Check::AuthenticTimestamp,
            action,
            status: ValidationStatus::Passed,
            message: Some(note),
            warnings,
        },
        Err(message) => ValidationResult {
            check: Check::AuthenticTimestamp,
            action,
            status: ValidationStatus::Failed,
            message: Some(message),
            warnings: Vec::new(),
        },
    }
}

/// Only the authentic-timestamp validation of the request's first signature, after its
/// integrity (for audits of timestamped signatures).
pub fn authentic_timestamp(request: &VerifyRequest) -> ValidationResult {
    let policy = match lenient_policy(request) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let action = policy.actions.authentic_timestamp;
    let Some(input): Option<&SignatureInput> = request.signatures.first() else {
        return result(action, Err("no signature to check".to_owned()));
    };
    let content = match Envelope::parse(&input.media_type, &input.envelope).and_then(|e| e.verify())
    {
        Ok(c) => c,
        Err(e) => {
            return ValidationResult {
                check: Check::Integrity,
                action: Action::Enforce,
                status: ValidationStatus::Failed,
                message: Some(e.to_string()),
                warnings: Vec::new(),
            };
        }
    };
    let context = Context {
        policy: &policy,
        stores: &request.trust_stores,
        time: request.verification_time,
        evidence: &request.revocation_evidence,
        needs: None,
        target: &request.target,
        user_metadata: &request.user_metadata,
        plugins: &request.plugin_evidence,
        plugin_needs: None,
    };
    result(
        action,
        check(&context, &content.signer_info).map(|(passed, _)| passed),
    )
}

/// The countersignature part of the validation for a bare token over `signature_value`,
/// with `signing_chain` (DER, leaf first) as the signing certificates.
pub fn timestamp_token(
    request: &VerifyRequest,
    token: &[u8],
    signature_value: &[u8],
    signing_chain: &[Vec<u8>],
) -> ValidationResult {
    token_check(request, token, signature_value, signing_chain, None)
}

/// The revocation evidence [`timestamp_token`] would read that `request` lacks: the TSA
/// chain's, once the countersignature verified.
pub fn timestamp_token_needs(
    request: &VerifyRequest,
    token: &[u8],
    signature_value: &[u8],
    signing_chain: &[Vec<u8>],
) -> Vec<Need> {
    let needs = RefCell::new(Vec::new());
    let _ = token_check(request, token, signature_value, signing_chain, Some(&needs));
    needs.into_inner()
}

fn token_check(
    request: &VerifyRequest,
    token: &[u8],
    signature_value: &[u8],
    signing_chain: &[Vec<u8>],
    needs: Option<&RefCell<Vec<Need>>>,
) -> ValidationResult {
    let policy = match lenient_policy(request) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let action = policy.actions.authentic_timestamp;
    let context = Context {
        policy: &policy,
        stores: &request.trust_stores,
        time: request.verification_time,
        evidence: &request.revocation_evidence,
        needs,
        target: &request.target,
        user_metadata: &request.user_metadata,
        plugins: &request.plugin_evidence,
        plugin_needs: None,
    };
    let outcome = (|| {
        let (timestamp, tsa_chain) = countersignature(&context, token, signature_value)?;
        let mut chain = Vec::new();
        for der in signing_chain {
            chain.push(Cert::from_der(der).map_err(|e| e.to_string())?);
        }
        if chain.is_empty() {
            return Err("signing certificate chain is empty: the timestamp range cannot be checked against it".to_owned());
        }
        check_within_signing_chain(&timestamp, &chain)?;
        let revocation = tsa_revocation(&context, &tsa_chain)?;
        Ok(Passed {
            note: format!(
                "timestamp {}; TSA chain revocation: {}",
                timestamp.format_rfc3339(),
                revocation.note
            ),
            warnings: revocation.warnings,
        })
    })();
    result(action, outcome)
}

//! Path building from a leaf, through untrusted intermediates, to a trust anchor, at an
//! explicit time — as Go's `x509.Certificate.Verify` does for timestamp tokens (the TSA
//! certificate chains to a `tsa` trust store root at the timestamp's `genTime`).
//!
//! The code-signing chain of an envelope is not built: it is the ordered chain the
//! signer supplied, checked by [`crate::certificate::validate_chain`] and matched against
//! the trust store by certificate equality.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ANY_EXTENDED_KEY_USAGE;

use crate::time::Instant;
use crate::x509::Cert;

/// Signature checks one path search may spend (Go: `maxChainSignatureChecks`).
const MAX_SIGNATURE_CHECKS: usize = 100;
/// Longest path considered.
const MAX_DEPTH: usize = 16;

/// Why no path could be built; texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No chain reaches a trust anchor.
    #[error("x509: certificate signed by unknown authority")]
    UnknownAuthority,
    /// A certificate is outside its validity at the verification time.
    #[error(
        "x509: certificate has expired or is not yet valid: current time {now} is {relation} {bound}"
    )]
    Expired {
        /// Verification time (RFC 3339).
        now: String,
        /// `before` or `after`.
        relation: &'static str,
        /// The violated bound (RFC 3339).
        bound: String,
    },
    /// No chain permits the requested extended key usage.
    #[error("x509: certificate specifies an incompatible key usage")]
    IncompatibleUsage,
    /// The search budget ran out.
    #[error("x509: signature check attempts limit reached while verifying certificate chain")]
    TooManySignatureChecks,
}

/// Build paths from `leaf` to one of `roots`, with `intermediates` as helpers, valid at
/// `time` and permitting `usage`. Returns every path found (leaf first, anchor last).
pub fn build_paths(
    leaf: &Cert,
    intermediates: &[Cert],
    roots: &[Cert],
    time: Instant,
    usage: ObjectIdentifier,
) -> Result<Vec<Vec<Cert>>, PathError> {
    validity(leaf, time)?;
    let mut chains = if roots.iter().any(|r| r == leaf) {
        vec![vec![leaf.clone()]]
    } else {
        let mut budget = MAX_SIGNATURE_CHECKS;
        let mut found = Vec::new();
        let mut hint = None;
        extend(
            vec![leaf.clone()],
            intermediates,
            roots,
            time,
            &mut budget,
            &mut found,
            &mut hint,
        )?;
        if found.is_empty() {
            return Err(hint.unwrap_or(PathError::UnknownAuthority));
        }
        found
    };
    chains.retain(|chain| permits(chain, usage));
    if chains.is_empty() {
        return Err(PathError::IncompatibleUsage);
    }
    Ok(chains)
}

fn validity(cert: &Cert, time: Instant) -> Result<(), PathError> {
    if time < cert.not_before {
        return Err(PathError::Expired {
            now: time.utc().rfc3339(),
            relation: "before",
            bound: cert.not_before.rfc3339(),
        });
    }
    if time > cert.not_after {
        return Err(PathError::Expired {
            now: time.utc().rfc3339(),
            relation: "after",
            bound: cert.not_after.rfc3339(),
        });
    }
    Ok(())
}

fn extend(
    chain: Vec<Cert>,
    intermediates: &[Cert],
    roots: &[Cert],
    time: Instant,
    budget: &mut usize,
    found: &mut Vec<Vec<Cert>>,
    hint: &mut Option<PathError>,
) -> Result<(), PathError> {
    if chain.len() > MAX_DEPTH {
        return Ok(());
    }
    let Some(current) = chain.last() else {
        return Ok(());
    };
    let issuer = current.issuer_der();
    let candidates = roots
        .iter()
        .map(|c| (c, true))
        .chain(intermediates.iter().map(|c| (c, false)));
    for (candidate, is_root) in candidates {
        if candidate.subject_der() != issuer || chain.contains(candidate) {
            continue;
        }
        if *budget == 0 {
            return Err(PathError::TooManySignatureChecks);
        }
        *budget -= 1;
        if current.check_signature_from(candidate).is_err() {
            continue;
        }
        if let Err(e) = validity(candidate, time) {
            hint.get_or_insert(e);
            continue;
        }
        if !is_root && !candidate.is_ca() {
            continue;
        }
        if let Some(max) = candidate.basic_constraints.and_then(|bc| bc.path_len) {
            // Intermediates below this candidate: chain minus the leaf.
            if chain.len() - 1 > usize::from(max) {
                continue;
            }
        }
        let mut next = chain.clone();
        next.push(candidate.clone());
        if is_root {
            found.push(next);
        } else {
            extend(next, intermediates, roots, time, budget, found, hint)?;
        }
    }
    Ok(())
}

/// Go's `checkChainForKeyUsage`: every certificate that lists key purposes must allow
/// `usage` (or any).
fn permits(chain: &[Cert], usage: ObjectIdentifier) -> bool {
    chain.iter().rev().all(|cert| match &cert.ext_key_usage {
        None => true,
        Some(eku) if eku.purposes.is_empty() => true,
        Some(eku) => eku
            .purposes
            .iter()
            .any(|p| *p == usage || *p == ANY_EXTENDED_KEY_USAGE),
    })
}

//! What an envelope says, without a trust decision (notation's `inspect`).

use crate::envelope::{Envelope, EnvelopeContent};
use crate::outcome::{
    CertificateSummary, EnvelopeInfo, Failure, FailureKind, TimestampInfo, TimestampRange,
};
use crate::payload;
use crate::timestamp;
use crate::verify::SignatureInput;

/// Parse an envelope and describe it. The countersignature is only parsed and checked
/// against the signature value; a broken one is reported, not fatal.
pub fn inspect(input: &SignatureInput) -> Result<EnvelopeInfo, Failure> {
    let envelope = Envelope::parse(&input.media_type, &input.envelope)
        .map_err(|e| Failure::new(FailureKind::Integrity, e.to_string()))?;
    let content = envelope
        .content()
        .map_err(|e| Failure::new(FailureKind::Integrity, e.to_string()))?;
    Ok(envelope_info(&input.media_type, &content))
}

/// Describe checked envelope content.
pub fn envelope_info(media_type: &str, content: &EnvelopeContent) -> EnvelopeInfo {
    let si = &content.signer_info;
    let timestamp = si.timestamp_signature.as_ref().map(|token| {
        let parsed = timestamp::parse_signed_token(token).and_then(|t| {
            let range = t.info()?.validate(&si.signature)?;
            Ok((t, range))
        });
        match parsed {
            Ok((token, range)) => TimestampInfo::Range(TimestampRange {
                lower: range.lower(),
                upper: range.upper(),
                certificates: token
                    .certificates
                    .iter()
                    .map(CertificateSummary::from)
                    .collect(),
            }),
            Err(e) => {
                TimestampInfo::Error(format!("failed to parse timestamp countersignature: {e}"))
            }
        }
    });
    let (signing_time, authentic_signing_time) = match si.authentic_signing_time() {
        Some(t) => (None, Some(t)),
        None => (Some(si.signing_time), None),
    };
    EnvelopeInfo {
        media_type: media_type.to_owned(),
        signature_algorithm: si.algorithm.notation_name().to_owned(),
        content_type: content.payload.content_type.clone(),
        signing_scheme: si.signing_scheme.name().to_owned(),
        signing_time,
        authentic_signing_time,
        expiry: si.expiry,
        extended_attributes: si
            .extended_attributes
            .iter()
            .map(|a| (a.key.clone(), a.value.clone(), a.critical))
            .collect(),
        signing_agent: si.signing_agent.clone(),
        timestamp,
        certificates: si
            .certificate_chain
            .iter()
            .map(CertificateSummary::from)
            .collect(),
        payload: payload::parse(&content.payload.content).unwrap_or_default(),
        digest_algorithm: si.algorithm.hash().oci_name().to_owned(),
    }
}

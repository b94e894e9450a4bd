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

/// What a signer checks of an envelope it did not assemble itself, before publishing it
/// (`plugin-extensibility.md` §Signature Envelope Generator, step 4): it parses as its media
/// type says; its signature verifies with the leaf's key and a supported algorithm; its
/// payload is the Notary Project payload and names `target` (media type, digest, size)
/// with every one of `target`'s annotations (more may be added, none changed); its chain
/// meets the certificate requirements at its signing time; and a timestamp
/// countersignature, if any, is over this signature. No trust decision: that is
/// `verify`'s, against the trust policy, where a verification plugin the envelope names
/// is asked.
pub fn check_generated(
    input: &SignatureInput,
    target: &payload::Descriptor,
) -> Result<EnvelopeInfo, Failure> {
    let integrity = |message: String| Failure::new(FailureKind::Integrity, message);
    let envelope = Envelope::parse(&input.media_type, &input.envelope)
        .map_err(|e| integrity(format!("unable to parse the signature envelope: {e}")))?;
    let content = envelope.verify().map_err(|e| integrity(e.to_string()))?;
    if content.payload.content_type != crate::envelope::PAYLOAD_CONTENT_TYPE {
        return Err(integrity(format!(
            "payload content type {} not supported",
            crate::quote::Q(&content.payload.content_type)
        )));
    }
    let signed = payload::parse(&content.payload.content).map_err(integrity)?;
    if !signed.same_content(target) {
        return Err(integrity(format!(
            "the envelope signs {} {} ({} bytes), not the {} {} ({} bytes) that was asked to be signed",
            signed.media_type,
            signed.digest,
            signed.size,
            target.media_type,
            target.digest,
            target.size
        )));
    }
    for (key, value) in &target.annotations {
        if signed.annotations.get(key) != Some(value) {
            return Err(integrity(format!(
                "the envelope's payload does not carry the annotation {key}={value} that was asked to be signed"
            )));
        }
    }
    let si = &content.signer_info;
    crate::certificate::validate_chain(
        &si.certificate_chain,
        crate::certificate::Purpose::CodeSigning,
        Some(si.signing_time),
    )
    .map_err(|e| Failure::new(FailureKind::Authenticity, e.to_string()))?;
    let info = envelope_info(&input.media_type, &content);
    if let Some(TimestampInfo::Error(e)) = &info.timestamp {
        return Err(Failure::new(FailureKind::AuthenticTimestamp, e.clone()));
    }
    Ok(info)
}

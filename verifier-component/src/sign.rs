//! Building envelopes for signers (feature `sign`). The private key never comes here:
//! [`prepare`] returns the bytes to sign, the signer (an HSM, a file key) signs them, and
//! [`assemble`] writes the envelope around the signature. The signer then verifies the
//! result with [`crate::envelope::Envelope::verify`] before publishing it.

use crate::certificate::{self, Purpose};
use crate::envelope::{ExtendedAttribute, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, PAYLOAD_CONTENT_TYPE};
use crate::signature::SignatureAlgorithm;
use crate::time::Instant;
use crate::x509::Cert;

/// Envelope formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/jose+json`
    Jws,
    /// `application/cose`
    Cose,
}

impl Format {
    /// The envelope media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jws => MEDIA_TYPE_JWS,
            Self::Cose => MEDIA_TYPE_COSE,
        }
    }
}

/// The signed attributes of a `notary.x509` signature.
#[derive(Clone, Debug)]
pub struct SignedAttributes {
    /// The algorithm the signing key implies.
    pub algorithm: SignatureAlgorithm,
    /// Payload content type.
    pub content_type: String,
    /// Signing time (whole seconds).
    pub signing_time: Instant,
    /// Optional expiry (whole seconds).
    pub expiry: Option<Instant>,
    /// Extended signed attributes.
    pub extended: Vec<ExtendedAttribute>,
}

/// What to put in an envelope.
#[derive(Clone, Debug)]
pub struct SignRequest<'a> {
    /// JWS or COSE.
    pub format: Format,
    /// Signed attributes.
    pub attributes: SignedAttributes,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// The certificate chain, DER, leaf first.
    pub certificate_chain: Vec<Vec<u8>>,
    /// Signing agent.
    pub signing_agent: String,
    /// RFC 3161 token over the signature, if timestamped.
    pub timestamp_token: Option<Vec<u8>>,
}

/// The bytes to sign, and what [`assemble`] needs to finish.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Feed these to the signer.
    pub to_sign: Vec<u8>,
    protected: Vec<u8>,
    payload_segment: Vec<u8>,
}

/// Compute the signing input (JWS: `b64(protected).b64(payload)`; COSE: `Sig_structure`).
pub fn prepare(request: &SignRequest<'_>) -> Prepared {
    match request.format {
        Format::Jws => {
            let (protected, payload) =
                crate::envelope::jws::signing_input(&request.attributes, request.payload);
            Prepared {
                to_sign: format!("{protected}.{payload}").into_bytes(),
                protected: protected.into_bytes(),
                payload_segment: payload.into_bytes(),
            }
        }
        Format::Cose => {
            let (protected, sig_structure) =
                crate::envelope::cose::signing_input(&request.attributes, request.payload);
            Prepared {
                to_sign: sig_structure,
                protected,
                payload_segment: request.payload.to_vec(),
            }
        }
    }
}

/// Write the envelope with `signature` (ECDSA as raw `r || s`, RSASSA-PSS as is).
pub fn assemble(request: &SignRequest<'_>, prepared: &Prepared, signature: &[u8]) -> Vec<u8> {
    match request.format {
        Format::Jws => crate::envelope::jws::encode(
            request,
            core::str::from_utf8(&prepared.protected).unwrap_or_default(),
            core::str::from_utf8(&prepared.payload_segment).unwrap_or_default(),
            signature,
        ),
        Format::Cose => crate::envelope::cose::encode(
            request,
            &prepared.protected,
            &prepared.payload_segment,
            signature,
        ),
    }
}

/// Check a signing chain before signing: it meets the certificate requirements and is
/// valid at `signing_time`; returns the algorithm its key implies.
pub fn check_signing_chain(
    chain: &[Vec<u8>],
    signing_time: Instant,
) -> Result<SignatureAlgorithm, String> {
    let certs = parse_chain(chain)?;
    certificate::validate_chain(&certs, Purpose::CodeSigning, Some(signing_time))
        .map_err(|e| e.to_string())?;
    leaf_algorithm(&certs)
}

/// A signing chain that met every requirement but the time: [`check_signing_chain`]
/// passes for it exactly at the signing times [`CheckedChain::covers`] (the only
/// time-dependent requirement is each certificate's validity period), so a signer that
/// signs many times with one chain checks its signatures once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedChain {
    /// The algorithm the leaf's key implies.
    pub algorithm: SignatureAlgorithm,
    /// The latest `notBefore` of the chain.
    pub valid_from: Instant,
    /// The earliest `notAfter` of the chain.
    pub valid_until: Instant,
}

impl CheckedChain {
    /// Whether every certificate is valid at `signing_time`.
    pub fn covers(&self, signing_time: Instant) -> bool {
        self.valid_from <= signing_time && signing_time <= self.valid_until
    }
}

/// [`check_signing_chain`] without the validity periods, which come back as a window.
pub fn check_signing_chain_untimed(chain: &[Vec<u8>]) -> Result<CheckedChain, String> {
    let certs = parse_chain(chain)?;
    certificate::validate_chain(&certs, Purpose::CodeSigning, None).map_err(|e| e.to_string())?;
    let algorithm = leaf_algorithm(&certs)?;
    let valid_from = certs.iter().map(|c| c.not_before).max();
    let valid_until = certs.iter().map(|c| c.not_after).min();
    match (valid_from, valid_until) {
        (Some(valid_from), Some(valid_until)) => Ok(CheckedChain {
            algorithm,
            valid_from,
            valid_until,
        }),
        _ => Err("certificate chain must contain at least one certificate".to_owned()),
    }
}

fn parse_chain(chain: &[Vec<u8>]) -> Result<Vec<Cert>, String> {
    chain
        .iter()
        .map(|der| Cert::from_der(der).map_err(|e| e.to_string()))
        .collect()
}

fn leaf_algorithm(certs: &[Cert]) -> Result<SignatureAlgorithm, String> {
    let leaf = certs
        .first()
        .ok_or_else(|| "certificate chain must contain at least one certificate".to_owned())?;
    let spec = certificate::key_spec(leaf)?;
    spec.signature_algorithm()
        .ok_or_else(|| format!("{} keys cannot sign Notary Project signatures", spec.name()))
}

/// The payload content type every signature uses.
pub fn payload_content_type() -> &'static str {
    PAYLOAD_CONTENT_TYPE
}

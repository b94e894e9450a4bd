//! OCSP (RFC 6960): the request a host sends, and the evaluation of the response it got
//! back (`trust-store-trust-policy.md` §Revocation Checking with OCSP).
//!
//! The ASN.1 types follow RustCrypto's `x509-ocsp` 0.2, which is built on `der` 0.7 and
//! `x509-cert` 0.2; the workspace is on `der` 0.8 and `x509-cert` 0.3, so the few types an
//! OCSP client needs are declared here with the same derives.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;
use der::asn1::{AnyRef, BitString, GeneralizedTime, Null, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::{INVALIDITY_DATE, reason_name};
use crate::signature::X509SignatureAlgorithm;
use crate::time::Instant;
use crate::x509::Cert;

/// Largest OCSP response read (notation's limit).
pub const MAX_RESPONSE_SIZE: usize = 20 * 1024;

/// How far a responder's clock may run ahead of the verification time.
const CLOCK_SKEW_SECONDS: i128 = 5 * 60;

/// Why an OCSP response gives no status for a certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Over [`MAX_RESPONSE_SIZE`].
    #[error("OCSP response of {0} bytes exceeds the limit of {MAX_RESPONSE_SIZE} bytes")]
    TooLarge(usize),
    /// Not DER of the expected shape.
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    /// `responseStatus` other than successful.
    #[error("OCSP responder answered {0}")]
    Status(&'static str),
    /// Not an `id-pkix-ocsp-basic` response.
    #[error("OCSP response type {0} is not supported")]
    ResponseType(ObjectIdentifier),
    /// No `SingleResponse` for this certificate's `CertID`.
    #[error("OCSP response has no status for this certificate (CertID does not match)")]
    NoMatchingResponse,
    /// The responder is neither the issuer nor a responder the issuer delegated.
    #[error("OCSP responder is not authorized by the issuer: {0}")]
    UnauthorizedResponder(String),
    /// The response signature does not verify.
    #[error("OCSP response signature is invalid: {0}")]
    Signature(String),
    /// `thisUpdate` is after the verification time.
    #[error("OCSP response is not valid yet: thisUpdate {0} is after the verification time")]
    NotYetValid(String),
    /// `nextUpdate` is before the verification time.
    #[error("expired OCSP response: nextUpdate {0} is before the verification time")]
    Expired(String),
}

/// What the responder says about the certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `good`.
    Good,
    /// `revoked`.
    Revoked {
        /// `revocationTime`.
        at: Instant,
        /// `revocationReason`, if given.
        reason: Option<CrlReason>,
        /// The `invalidityDate` single extension, if given.
        invalidity: Option<Instant>,
    },
    /// `unknown`.
    Unknown,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct OcspRequest {
    tbs_request: TbsRequest,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TbsRequest {
    request_list: Vec<Request>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Request {
    req_cert: CertId,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct CertId {
    hash_algorithm: AlgorithmIdentifierOwned,
    issuer_name_hash: OctetString,
    issuer_key_hash: OctetString,
    serial_number: SerialNumber,
}

#[derive(Enumerated, Copy, Clone, Debug, Eq, PartialEq)]
#[repr(u32)]
enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct OcspResponse {
    response_status: ResponseStatus,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    response_bytes: Option<ResponseBytes>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct ResponseBytes {
    response_type: ObjectIdentifier,
    response: OctetString,
}

/// `BasicOCSPResponse`, with the signed `tbsResponseData` kept as received.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct BasicOcspResponse<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certs: Option<Vec<Certificate>>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct ResponseData {
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    version: Option<u8>,
    responder_id: ResponderId,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    response_extensions: Option<Extensions>,
}

#[derive(Clone, Debug, Eq, PartialEq, Choice)]
enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SingleResponse {
    cert_id: CertId,
    cert_status: CertStatus,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    single_extensions: Option<Extensions>,
}

#[derive(Copy, Clone, Debug, Eq, PartialEq, Choice)]
enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

#[derive(Copy, Clone, Debug, Eq, PartialEq, Sequence)]
struct RevokedInfo {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    revocation_reason: Option<CrlReason>,
}

/// The hash of a `CertID`.
fn hash(oid: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    Some(match oid {
        ID_SHA_1 => sha1::Sha1::digest(data).to_vec(),
        ID_SHA_256 => sha2::Sha256::digest(data).to_vec(),
        ID_SHA_384 => sha2::Sha384::digest(data).to_vec(),
        ID_SHA_512 => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// The issuer's `subjectPublicKey` bits, which `issuerKeyHash` and `byKey` hash.
fn key_bits(issuer: &Cert) -> &[u8] {
    issuer
        .parsed()
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
}

fn cert_id(cert: &Cert, issuer: &Cert, algorithm: ObjectIdentifier) -> Option<CertId> {
    Some(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: algorithm,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(hash(algorithm, &cert.issuer_der())?).ok()?,
        issuer_key_hash: OctetString::new(hash(algorithm, key_bits(issuer))?).ok()?,
        serial_number: cert.parsed().tbs_certificate().serial_number().clone(),
    })
}

/// The DER `OCSPRequest` for `cert`, issued by `issuer`: one SHA-1 `CertID` (what
/// notation sends, for CA compatibility), no nonce, unsigned.
pub fn request(cert: &Cert, issuer: &Cert) -> Option<Vec<u8>> {
    OcspRequest {
        tbs_request: TbsRequest {
            request_list: vec![Request {
                req_cert: cert_id(cert, issuer, ID_SHA_1)?,
            }],
        },
    }
    .to_der()
    .ok()
}

fn instant(t: GeneralizedTime) -> Instant {
    Instant::from(t.to_date_time())
}

/// Evaluate `der`, a response for `cert` issued by `issuer`, at `time`.
pub fn evaluate(
    der: &[u8],
    cert: &Cert,
    issuer: &Cert,
    time: Instant,
) -> Result<Answer, OcspError> {
    if der.len() > MAX_RESPONSE_SIZE {
        return Err(OcspError::TooLarge(der.len()));
    }
    let malformed = |e: der::Error| OcspError::Malformed(e.to_string());
    let response = OcspResponse::from_der(der).map_err(malformed)?;
    match response.response_status {
        ResponseStatus::Successful => {}
        ResponseStatus::MalformedRequest => return Err(OcspError::Status("malformedRequest")),
        ResponseStatus::InternalError => return Err(OcspError::Status("internalError")),
        ResponseStatus::TryLater => return Err(OcspError::Status("tryLater")),
        ResponseStatus::SigRequired => return Err(OcspError::Status("sigRequired")),
        ResponseStatus::Unauthorized => return Err(OcspError::Status("unauthorized")),
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("successful response without responseBytes".into()))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::ResponseType(bytes.response_type));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed)?;
    let tbs = basic.tbs_response_data.to_der().map_err(malformed)?;
    let data = ResponseData::from_der(&tbs).map_err(malformed)?;

    // Who signed: the issuer itself, or a responder certificate the issuer signed for
    // OCSP signing (RFC 6960 §4.2.2.2).
    let certs: Vec<Cert> = basic
        .certs
        .iter()
        .flatten()
        .filter_map(|c| c.to_der().ok().and_then(|d| Cert::from_der(&d).ok()))
        .collect();
    let names = |c: &Cert| match &data.responder_id {
        ResponderId::ByName(name) => name.to_der().ok() == Some(c.subject_der()),
        ResponderId::ByKey(h) => hash(ID_SHA_1, key_bits(c)).as_deref() == Some(h.as_bytes()),
    };
    let signer = if names(issuer) {
        issuer
    } else {
        let candidate = certs.iter().find(|c| names(c)).ok_or_else(|| {
            OcspError::UnauthorizedResponder(
                "the responder is not the issuer and its certificate is not in the response".into(),
            )
        })?;
        authorize_delegate(candidate, issuer, time)?;
        candidate
    };
    let algorithm =
        X509SignatureAlgorithm::from_algorithm_identifier(&basic.signature_algorithm, None)
            .map_err(|e| OcspError::Signature(e.to_string()))?;
    let key = signer
        .public_key
        .as_ref()
        .map_err(|e| OcspError::Signature(e.clone()))?;
    algorithm
        .verify_remembered("ocsp", signer, key, &tbs, basic.signature.raw_bytes())
        .map_err(|e| OcspError::Signature(e.to_string()))?;

    let single = data
        .responses
        .iter()
        .find(|r| {
            cert_id(cert, issuer, r.cert_id.hash_algorithm.oid).is_some_and(|id| {
                id.issuer_name_hash == r.cert_id.issuer_name_hash
                    && id.issuer_key_hash == r.cert_id.issuer_key_hash
                    && id.serial_number == r.cert_id.serial_number
            })
        })
        .ok_or(OcspError::NoMatchingResponse)?;
    let this_update = instant(single.this_update);
    if this_update > time.add_nanos(CLOCK_SKEW_SECONDS * 1_000_000_000) {
        return Err(OcspError::NotYetValid(this_update.rfc3339()));
    }
    if let Some(next) = single.next_update.map(instant)
        && time > next
    {
        return Err(OcspError::Expired(next.rfc3339()));
    }
    Ok(match single.cert_status {
        CertStatus::Good(_) => Answer::Good,
        CertStatus::Unknown(_) => Answer::Unknown,
        CertStatus::Revoked(info) => Answer::Revoked {
            at: instant(info.revocation_time),
            reason: info.revocation_reason,
            invalidity: single
                .single_extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == INVALIDITY_DATE)
                .and_then(|e| GeneralizedTime::from_der(e.extn_value.as_bytes()).ok())
                .map(instant),
        },
    })
}

/// A delegated responder: issued and signed by `issuer`, with `id-kp-OCSPSigning`, valid
/// at `time`.
fn authorize_delegate(responder: &Cert, issuer: &Cert, time: Instant) -> Result<(), OcspError> {
    let refuse = |why: String| OcspError::UnauthorizedResponder(why);
    if responder.issuer_der() != issuer.subject_der() {
        return Err(refuse(format!(
            "responder certificate {:?} is not issued by {:?}",
            responder.subject, issuer.subject
        )));
    }
    responder.check_signature_from(issuer).map_err(|e| {
        refuse(format!(
            "responder certificate {:?}: {e}",
            responder.subject
        ))
    })?;
    let delegated = responder
        .ext_key_usage
        .as_ref()
        .is_some_and(|eku| eku.purposes.contains(&ID_KP_OCSP_SIGNING));
    if !delegated {
        return Err(refuse(format!(
            "responder certificate {:?} lacks the OCSPSigning extended key usage",
            responder.subject
        )));
    }
    if !responder.is_valid_at(time) {
        return Err(refuse(format!(
            "responder certificate {:?} is not valid at the verification time",
            responder.subject
        )));
    }
    Ok(())
}

/// A short description of a revoked answer.
pub(super) fn describe_revoked(at: Instant, reason: Option<CrlReason>) -> String {
    match reason {
        Some(r) => format!("revoked at {} ({})", at.rfc3339(), reason_name(r)),
        None => format!("revoked at {}", at.rfc3339()),
    }
}

/// The earliest `nextUpdate` of a successful response's single responses: how long a
/// host may keep it (no verification; `evaluate` decides).
pub fn next_update(der: &[u8]) -> Option<Instant> {
    if der.len() > MAX_RESPONSE_SIZE {
        return None;
    }
    let response = OcspResponse::from_der(der).ok()?;
    let bytes = response.response_bytes?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).ok()?;
    let data = ResponseData::from_der(&basic.tbs_response_data.to_der().ok()?).ok()?;
    data.responses
        .iter()
        .map(|r| r.next_update.map(instant))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

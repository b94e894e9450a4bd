//! RFC 3161 timestamp countersignatures (`signature-specification.md` §Unsigned
//! Attributes, `trust-store-trust-policy.md` §Validate Authentic Timestamp).
//!
//! A `TimeStampToken` is a CMS `SignedData` (RustCrypto `cms`) whose content is a
//! `TSTInfo`. It is accepted when its signer certificate is named by the
//! `signing-certificate-v2` attribute, chains to a `tsa` trust store root at `genTime`,
//! signed the attributes, and the `messageImprint` covers the envelope's signature value.
//! Checks and messages follow notation's timestamp library (tspclient-go).
//!
//! ```text
//! TSTInfo ::= SEQUENCE { version INTEGER, policy OBJECT IDENTIFIER,
//!     messageImprint SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING },
//!     serialNumber INTEGER, genTime GeneralizedTime, accuracy Accuracy OPTIONAL,
//!     ordering BOOLEAN DEFAULT FALSE, nonce INTEGER OPTIONAL,
//!     tsa [0] GeneralName OPTIONAL, extensions [1] IMPLICIT Extensions OPTIONAL }
//! ```

mod asn1;
pub mod ber;

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_TIME_STAMPING;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_RSASSA_PSS, RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::{Decode, Encode};

use crate::chain;
use crate::quote::Q;
use crate::signature::{HashAlgorithm, X509SignatureAlgorithm};
use crate::time::Instant;
use crate::x509::Cert;
use asn1::{Element, elements};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const BASELINE_TIMESTAMP_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2023.1.1");

/// Largest token accepted.
pub const MAX_TOKEN_SIZE: usize = 1024 * 1024;
/// Most certificates a token may carry.
pub const MAX_TOKEN_CERTIFICATES: usize = 32;

/// A parsed timestamp token.
#[derive(Clone, Debug)]
pub struct SignedToken {
    signed_data: SignedData,
    /// Certificates in token order.
    pub certificates: Vec<Cert>,
    content: Vec<u8>,
}

fn cms_syntax(message: &str, detail: impl core::fmt::Display) -> String {
    format!("cms: syntax error: {message}: {detail}")
}

/// Parse a `TimeStampToken` (BER or DER).
pub fn parse_signed_token(ber: &[u8]) -> Result<SignedToken, String> {
    if ber.len() > MAX_TOKEN_SIZE {
        return Err(format!(
            "timestamp token of {} bytes exceeds the limit of {MAX_TOKEN_SIZE} bytes",
            ber.len()
        ));
    }
    let der = ber::to_der(ber)
        .map_err(|e| cms_syntax("invalid signed data: failed to convert from BER to DER", e))?;
    let info = ContentInfo::from_der(&der).map_err(|e| {
        cms_syntax(
            "invalid content info: failed to unmarshal DER to ContentInfo",
            e,
        )
    })?;
    if info.content_type != ID_SIGNED_DATA {
        return Err("cms: content type is not signed-data".to_owned());
    }
    let signed_data_der = info
        .content
        .to_der()
        .map_err(|e| cms_syntax("invalid signed data", e))?;
    let signed_data =
        SignedData::from_der(&signed_data_der).map_err(|e| cms_syntax("invalid signed data", e))?;
    if signed_data.version != CmsVersion::V3 {
        return Err(format!(
            "cms: syntax error: unsupported signed data version: got {}, want 3",
            signed_data.version as u8
        ));
    }
    let certificates = token_certificates(&signed_data_der).map_err(|e| {
        cms_syntax(
            "failed to parse X.509 certificates from signed data. Only X.509 certificates are supported",
            e,
        )
    })?;
    let content_type = signed_data.encap_content_info.econtent_type;
    if content_type != ID_CT_TST_INFO {
        return Err(format!(
            "unexpected content type: {content_type}. Expected to be id-ct-TSTInfo ({ID_CT_TST_INFO})"
        ));
    }
    let content = signed_data
        .encap_content_info
        .econtent
        .as_ref()
        .map(|any| any.value().to_vec())
        .unwrap_or_default();
    Ok(SignedToken {
        signed_data,
        certificates,
        content,
    })
}

/// The `certificates [0]` field of SignedData, in the order the TSA wrote it.
fn token_certificates(signed_data_der: &[u8]) -> Result<Vec<Cert>, String> {
    let outer = Element::parse_one(signed_data_der)?;
    let fields = elements(outer.content)?;
    let Some(field) = fields.iter().find(|e| e.tag == 0xa0) else {
        return Ok(Vec::new());
    };
    let items = elements(field.content)?;
    if items.len() > MAX_TOKEN_CERTIFICATES {
        return Err(format!(
            "{} certificates, more than the limit of {MAX_TOKEN_CERTIFICATES}",
            items.len()
        ));
    }
    items
        .iter()
        .map(|item| {
            if item.tag != 0x30 {
                return Err("x509: malformed certificate".to_owned());
            }
            Cert::from_der(item.full).map_err(|e| e.to_string())
        })
        .collect()
}

/// The time a TSA vouches for, with its accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// `genTime`.
    pub value: Instant,
    /// Accuracy in nanoseconds.
    pub accuracy_nanos: i128,
}

impl Timestamp {
    /// `genTime - accuracy`.
    pub fn lower(&self) -> Instant {
        self.value.add_nanos(-self.accuracy_nanos)
    }

    /// `genTime + accuracy`.
    pub fn upper(&self) -> Instant {
        self.value.add_nanos(self.accuracy_nanos)
    }

    /// The whole range is at or before `t`.
    pub fn bounded_before(&self, t: Instant) -> bool {
        self.upper() <= t
    }

    /// The whole range is at or after `t`.
    pub fn bounded_after(&self, t: Instant) -> bool {
        self.lower() >= t
    }

    /// `[lower, upper]` in RFC 3339 with fractions.
    pub fn format_rfc3339(&self) -> String {
        format!(
            "[{}, {}]",
            self.lower().rfc3339_nano(),
            self.upper().rfc3339_nano()
        )
    }
}

/// The decoded `TSTInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TstInfo {
    /// `version`.
    pub version: i64,
    /// `policy`.
    pub policy: ObjectIdentifier,
    /// `messageImprint.hashAlgorithm`.
    pub hash_algorithm: ObjectIdentifier,
    /// `messageImprint.hashedMessage`.
    pub hashed_message: Vec<u8>,
    /// `genTime`.
    pub gen_time: Instant,
    /// `accuracy` as (seconds, milliseconds, microseconds).
    pub accuracy: (i64, i64, i64),
    /// `nonce`: the INTEGER's content octets (two's complement, as encoded).
    pub nonce: Option<Vec<u8>>,
}

impl SignedToken {
    /// Decode the `TSTInfo` content.
    pub fn info(&self) -> Result<TstInfo, String> {
        asn1::tst_info(&self.content)
            .map_err(|e| format!("cannot unmarshal TSTInfo from timestamp token: {e}"))
    }

    /// Verify the token: a signer whose certificate chains to one of `roots` at `time`
    /// signed it. Returns that chain (leaf first).
    pub fn verify(&self, roots: &[Cert], time: Instant) -> Result<Vec<Cert>, String> {
        let wrap = |e: String| format!("failed to verify signed token: {e}");
        let signers: Vec<&SignerInfo> = self.signed_data.signer_infos.0.iter().collect();
        if signers.is_empty() {
            return Err(wrap("signerInfo not found".to_owned()));
        }
        if roots.is_empty() {
            return Err(wrap("tsa root certificate pool cannot be nil".to_owned()));
        }
        let mut last = String::new();
        for signer in signers {
            match self.verify_signer(signer, roots, time) {
                Ok(chain) => return Ok(chain),
                Err(e) => last = wrap(e),
            }
        }
        Err(last)
    }

    fn verify_signer(
        &self,
        signer: &SignerInfo,
        roots: &[Cert],
        time: Instant,
    ) -> Result<Vec<Cert>, String> {
        let cert = self.signing_certificate(signer)?;
        let chain = self.verify_cms_signer(signer, &cert, roots, time)?;
        let eku = cert.ext_key_usage.as_ref();
        if eku.is_none_or(|e| e.purposes.as_slice() != [ID_KP_TIME_STAMPING]) {
            return Err(
                "signing certificate must have and only have ExtKeyUsageTimeStamping as extended key usage"
                    .to_owned(),
            );
        }
        if !eku.is_some_and(|e| e.critical) {
            return Err(
                "signing certificate extended key usage extension must be set as critical"
                    .to_owned(),
            );
        }
        Ok(chain)
    }

    /// The certificate `signing-certificate-v2` names (RFC 5035 / RFC 5816).
    fn signing_certificate(&self, signer: &SignerInfo) -> Result<Cert, String> {
        let wrap =
            |e: String| format!("failed to get SigningCertificateV2 from signed attributes: {e}");
        let value = signed_attribute(signer, ID_SIGNING_CERTIFICATE_V2)
            .ok_or_else(|| wrap("attribute not found".to_owned()))?;
        let ess = asn1::signing_certificate_v2(&value).map_err(wrap)?;
        let first = ess
            .first()
            .ok_or_else(|| "signingCertificateV2 does not contain any certificate".to_owned())?;
        let (issuer, serial) = match &first.issuer_serial {
            Some((issuer, serial)) => {
                let issuer = issuer
                    .clone()
                    .ok_or_else(|| "issuer name is missing in IssuerSerial".to_owned())?;
                (issuer, serial.clone())
            }
            None => match &signer.sid {
                SignerIdentifier::IssuerAndSerialNumber(sid) => (
                    sid.issuer.to_der().map_err(|e| e.to_string())?,
                    sid.serial_number.as_bytes().to_vec(),
                ),
                SignerIdentifier::SubjectKeyIdentifier(_) => {
                    return Err("signing certificate not found in the timestamp token".to_owned());
                }
            },
        };
        let cert = self
            .certificates
            .iter()
            .find(|c| c.issuer_der() == issuer && same_integer(c.serial(), &serial))
            .ok_or_else(|| "signing certificate not found in the timestamp token".to_owned())?;
        let hash = match &first.hash_algorithm {
            None => HashAlgorithm::Sha256,
            Some(oid) => HashAlgorithm::from_oid(oid).ok_or_else(|| {
                "unsupported certificate hash algorithm in SigningCertificateV2 attribute"
                    .to_owned()
            })?,
        };
        if hash.digest(cert.der()) != first.cert_hash {
            return Err(
                "signing certificate hash does not match CertHash in signed attribute".to_owned(),
            );
        }
        Ok(cert.clone())
    }

    /// CMS signer verification: chain, signature over the signed attributes, then the
    /// content-type, message-digest and signing-time attributes.
    fn verify_cms_signer(
        &self,
        signer: &SignerInfo,
        cert: &Cert,
        roots: &[Cert],
        time: Instant,
    ) -> Result<Vec<Cert>, String> {
        let fail = |e: String| format!("cms verification failure: {e}");
        if signer.version != CmsVersion::V1 {
            return Err(fail(format!(
                "invalid signer info version: only version 1 is supported; got {}",
                signer.version as u8
            )));
        }
        let digest = HashAlgorithm::from_oid(&signer.digest_alg.oid);
        let algorithm = cms_signature_algorithm(&signer.signature_algorithm.oid, digest)
            .ok_or_else(|| fail("unknown signature algorithm".to_owned()))?;
        let Some(attributes) = &signer.signed_attrs else {
            return Err(fail("missing signed attributes".to_owned()));
        };
        // Go re-encodes the attributes as a DER SET (sorted), and so does `der`.
        let signed = attributes
            .to_der()
            .map_err(|_| fail("invalid signed attributes".to_owned()))?;
        let key = cert.public_key.as_ref().map_err(|e| fail(e.clone()))?;
        algorithm
            .verify(key, &signed, signer.signature.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        // Paths are built only for a token its certificate signed: a forged token with a
        // pile of certificates costs one signature check, not a path search.
        let chains = chain::build_paths(cert, &self.certificates, roots, time, ID_KP_TIME_STAMPING)
            .map_err(|e| fail(e.to_string()))?;

        let content_type = signed_attribute(signer, ID_CONTENT_TYPE)
            .ok_or_else(|| fail("invalid content type: attribute not found".to_owned()))?;
        let content_type = ObjectIdentifier::from_der(&content_type)
            .map_err(|e| fail(format!("invalid content type: {e}")))?;
        let econtent_type = self.signed_data.encap_content_info.econtent_type;
        if content_type != econtent_type {
            return Err(fail(format!(
                "mismatch content type: found {} in signer info, and {} in signed data",
                Q(&content_type.to_string()),
                Q(&econtent_type.to_string())
            )));
        }
        let message_digest = signed_attribute(signer, ID_MESSAGE_DIGEST)
            .ok_or_else(|| fail("invalid message digest: attribute not found".to_owned()))?;
        let message_digest = der::asn1::OctetString::from_der(&message_digest)
            .map_err(|e| fail(format!("invalid message digest: {e}")))?;
        let digest = digest.ok_or_else(|| fail("unsupported digest algorithm".to_owned()))?;
        if digest.digest(&self.content) != message_digest.as_bytes() {
            return Err(fail("mismatch message digest".to_owned()));
        }
        match signed_attribute(signer, ID_SIGNING_TIME) {
            None => chains
                .into_iter()
                .next()
                .ok_or_else(|| fail("no certificate chain".to_owned())),
            Some(value) => {
                let signing_time =
                    asn1::time(&value).map_err(|e| fail(format!("invalid signing time: {e}")))?;
                chains
                    .into_iter()
                    .find(|chain| chain.iter().all(|c| c.is_valid_at(signing_time)))
                    .ok_or_else(|| {
                        fail(format!(
                            "signing time, {}, is outside certificate's validity period",
                            signing_time.utc().rfc3339()
                        ))
                    })
            }
        }
    }
}

/// The DER of the first value of the first signed attribute of type `oid`.
fn signed_attribute(signer: &SignerInfo, oid: ObjectIdentifier) -> Option<Vec<u8>> {
    let attributes = signer.signed_attrs.as_ref()?;
    let attribute = attributes.iter().find(|a| a.oid == oid)?;
    attribute.values.iter().next()?.to_der().ok()
}

/// Compare two big-endian INTEGER contents by value.
fn same_integer(a: &[u8], b: &[u8]) -> bool {
    let trim = |x: &[u8]| -> Vec<u8> {
        let skip = x.iter().take_while(|&&b| b == 0).count();
        x[skip..].to_vec()
    };
    trim(a) == trim(b)
}

/// The signature algorithm of a CMS signer (digest algorithm + signature algorithm).
fn cms_signature_algorithm(
    oid: &ObjectIdentifier,
    digest: Option<HashAlgorithm>,
) -> Option<X509SignatureAlgorithm> {
    Some(match *oid {
        RSA_ENCRYPTION => X509SignatureAlgorithm::RsaPkcs1(digest?),
        ID_RSASSA_PSS => X509SignatureAlgorithm::RsaPss(digest?),
        SHA_256_WITH_RSA_ENCRYPTION => X509SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha256),
        SHA_384_WITH_RSA_ENCRYPTION => X509SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha384),
        SHA_512_WITH_RSA_ENCRYPTION => X509SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha512),
        ECDSA_WITH_SHA_256 => X509SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        ECDSA_WITH_SHA_384 => X509SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        ECDSA_WITH_SHA_512 => X509SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha512),
        _ => return None,
    })
}

impl TstInfo {
    /// Check the imprint covers `message` and return the timestamp with its accuracy.
    pub fn validate(&self, message: &[u8]) -> Result<Timestamp, String> {
        let fail = |e: String| format!("invalid TSTInfo: {e}");
        if self.version != 1 {
            return Err(fail(format!(
                "timestamp token info version must be 1, but got {}",
                self.version
            )));
        }
        let hash = HashAlgorithm::from_oid(&self.hash_algorithm).ok_or_else(|| {
            fail(format!(
                "unrecognized hash algorithm: {}",
                self.hash_algorithm
            ))
        })?;
        if hash.digest(message) != self.hashed_message {
            return Err(fail("mismatched message".to_owned()));
        }
        let (seconds, millis, micros) = self.accuracy;
        let accuracy_nanos = if seconds == 0
            && millis == 0
            && micros == 0
            && self.policy == BASELINE_TIMESTAMP_POLICY
        {
            1_000_000_000
        } else {
            i128::from(seconds) * 1_000_000_000
                + i128::from(millis) * 1_000_000
                + i128::from(micros) * 1_000
        };
        Ok(Timestamp {
            value: self.gen_time,
            accuracy_nanos,
        })
    }
}

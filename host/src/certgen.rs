//! Test certificates (`cert generate-test`) and certificate signing requests (`key csr`).
//!
//! `generate-test` makes a root CA (a local P-256 key) and a code-signing leaf for a key
//! that may live in the HSM, meeting the Notary Project certificate requirements: the
//! leaf has a critical keyUsage of digitalSignature, extendedKeyUsage codeSigning and
//! `cA = false`; the root has a critical basicConstraints `cA = true` and keyCertSign.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, anyhow};
use der::{Decode, Encode};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;

/// A profile with exactly the extensions given.
struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let mut extensions: Vec<Extension> = Vec::new();
        let basic = BasicConstraints {
            ca: self.ca,
            path_len_constraint: if self.ca { Some(0) } else { None },
        };
        extensions.push((&basic).to_extension(subject, &extensions)?);
        let usage = if self.ca {
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
        } else {
            KeyUsage(KeyUsages::DigitalSignature.into())
        };
        extensions.push((&usage).to_extension(subject, &extensions)?);
        if !self.ca {
            let eku = ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_CODE_SIGNING]);
            extensions.push((&eku).to_extension(subject, &extensions)?);
        }
        Ok(extensions)
    }
}

fn serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("random serial: {e}"))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).map_err(|e| anyhow!("serial: {e}"))
}

/// The DN notation's `generate-test` uses: `CN={name},O=Notary,L=Seattle,ST=WA,C=US`.
pub fn test_subject(common_name: &str) -> Result<Name> {
    Name::from_str(&format!("CN={common_name},O=Notary,L=Seattle,ST=WA,C=US"))
        .map_err(|e| anyhow!("invalid common name {common_name:?}: {e}"))
}

/// Valid from five minutes ago for `validity`: a certificate made just now must already be
/// valid for a timestamp whose accuracy reaches back a little (RFC 3161 `accuracy`), and for
/// a verifier whose clock is slightly behind.
fn backdated(validity: Duration) -> Result<Validity> {
    let mut out = Validity::from_now(validity)?;
    let start = std::time::SystemTime::now() - Duration::from_secs(5 * 60);
    out.not_before = x509_cert::time::Time::try_from(start)?;
    Ok(out)
}

/// A self-signed root CA with a new P-256 key. Returns (key, certificate DER).
pub fn root(common_name: &str, validity: Duration) -> Result<(p256::ecdsa::SigningKey, Vec<u8>)> {
    use p256::elliptic_curve::Generate;
    let key =
        p256::ecdsa::SigningKey::from(p256::SecretKey::try_generate().map_err(|e| anyhow!("{e}"))?);
    let subject = test_subject(&format!("{common_name} Root"))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
        .map_err(|e| anyhow!("root public key: {e}"))?;
    let builder = CertificateBuilder::new(
        Profile {
            issuer: subject.clone(),
            subject,
            ca: true,
        },
        serial()?,
        backdated(validity)?,
        spki,
    )?;
    let cert = builder.build::<_, p256::ecdsa::DerSignature>(&key)?;
    Ok((key, cert.to_der()?))
}

/// A code-signing leaf for `subject_key` (SubjectPublicKeyInfo DER), issued by the root.
pub fn leaf(
    common_name: &str,
    subject_key: &[u8],
    root_key: &p256::ecdsa::SigningKey,
    root_der: &[u8],
    validity: Duration,
) -> Result<Vec<u8>> {
    let root = x509_cert::Certificate::from_der(root_der)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_key)?;
    let builder = CertificateBuilder::new(
        Profile {
            subject: test_subject(common_name)?,
            issuer: root.tbs_certificate().subject().clone(),
            ca: false,
        },
        serial()?,
        backdated(validity)?,
        spki,
    )?;
    let cert = builder.build::<_, p256::ecdsa::DerSignature>(root_key)?;
    Ok(cert.to_der()?)
}

/// A PKCS#10 request for `spki`, signed by `sign` (which returns the raw signature for the
/// key: ECDSA `r || s`, RSA PKCS#1 v1.5 with SHA-256 over the request info).
pub fn csr(
    subject: &Name,
    spki: &SubjectPublicKeyInfoOwned,
    spec: notary_verifier::signature::KeySpec,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    use notary_verifier::signature::{Curve, KeySpec};
    use x509_cert::request::{CertReq, CertReqInfo, Version};
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: spki.clone(),
        attributes: Default::default(),
    };
    let info_der = info.to_der()?;
    let raw = sign(&info_der)?;
    let (oid, signature) = match spec {
        KeySpec::Ec(curve) => {
            let der =
                match curve {
                    Curve::P256 => p256::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                    Curve::P384 => p384::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                    Curve::P521 => p521::ecdsa::Signature::from_slice(&raw)
                        .map(|s| s.to_der().as_bytes().to_vec()),
                }
                .map_err(|e| anyhow!("bad ECDSA signature from the key: {e}"))?;
            let oid = match curve {
                Curve::P256 => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                Curve::P384 => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
                Curve::P521 => const_oid::db::rfc5912::ECDSA_WITH_SHA_512,
            };
            (oid, der)
        }
        KeySpec::Rsa(_) => (const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION, raw),
    };
    let parameters = match spec {
        KeySpec::Rsa(_) => Some(der::asn1::Null.into()),
        KeySpec::Ec(_) => None,
    };
    let request = CertReq {
        info,
        algorithm: spki::AlgorithmIdentifierOwned { oid, parameters },
        signature: der::asn1::BitString::from_bytes(&signature)?,
    };
    Ok(request.to_der()?)
}

/// PEM of a DER block.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = notary_verifier::encoding::encode_base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

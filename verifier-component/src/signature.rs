//! Signature algorithms of `signature-specification.md` §Algorithm Selection, and the
//! only place that calls the RustCrypto `p256` / `p384` / `p521` / `rsa` crates.
//!
//! ```text
//! | Public Key Algorithm | Key Size (bits) | Signature Algorithm             |
//! | RSA                  | 2048            | RSASSA-PSS with SHA-256         |
//! | RSA                  | 3072            | RSASSA-PSS with SHA-384         |
//! | RSA                  | 4096            | RSASSA-PSS with SHA-512         |
//! | EC                   | 256             | ECDSA on secp256r1 with SHA-256 |
//! | EC                   | 384             | ECDSA on secp384r1 with SHA-384 |
//! | EC                   | 521             | ECDSA on secp521r1 with SHA-512 |
//! ```

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_EC_PUBLIC_KEY, ID_RSASSA_PSS,
    RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1, SECP_521_R_1, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::Decode;
use rsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::SubjectPublicKeyInfoOwned;

use crate::x509::Cert;

pub mod arithmetic;
pub mod ecdsa_vartime;
pub mod memo;
pub mod rsa_vartime;

/// Whether RSA public-key operations use [`rsa_vartime`] (the default) or the `rsa`
/// crate's constant-time path; both decide alike, the switch is for side-by-side benches
/// and the differential test.
static RSA_VARIABLE_TIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Choose the RSA verification arithmetic (process-wide): variable-time (`true`, the
/// default) or the `rsa` crate's constant-time path.
pub fn set_variable_time_rsa(enabled: bool) {
    RSA_VARIABLE_TIME.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

fn variable_time_rsa() -> bool {
    RSA_VARIABLE_TIME.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether ECDSA verification on P-256 and P-384 uses [`ecdsa_vartime`] (the default) or
/// the `ecdsa` crate's constant-time path (P-521 always uses the crate).
static ECDSA_VARIABLE_TIME: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// Choose the ECDSA verification arithmetic for P-256 and P-384 (process-wide):
/// variable-time (`true`, the default) or the `ecdsa` crate's constant-time path.
pub fn set_variable_time_ecdsa(enabled: bool) {
    ECDSA_VARIABLE_TIME.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// `key`'s ECDSA signature of `digest`, by the arithmetic chosen above.
fn verify_ecdsa<C>(
    key: &ecdsa_vartime::Key<C>,
    digest: &[u8],
    signature: &ecdsa::Signature<C>,
) -> bool
where
    C: ecdsa_vartime::VartimeCurve,
    p256::elliptic_curve::Scalar<C>:
        p256::elliptic_curve::ops::Reduce<p256::elliptic_curve::FieldBytes<C>>,
    ecdsa::VerifyingKey<C>: PrehashVerifier<ecdsa::Signature<C>>,
{
    if ECDSA_VARIABLE_TIME.load(std::sync::atomic::Ordering::Relaxed) {
        key.verify_prehash(digest, signature)
    } else {
        key.verifying_key()
            .verify_prehash(digest, signature)
            .is_ok()
    }
}

const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const ECDSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Hash functions of the Notary Project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HashAlgorithm {
    /// SHA-256
    Sha256,
    /// SHA-384
    Sha384,
    /// SHA-512
    Sha512,
}

impl HashAlgorithm {
    /// Digest `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// The algorithm named by an OID, if it is one of ours.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            ID_SHA256 => Some(Self::Sha256),
            ID_SHA384 => Some(Self::Sha384),
            ID_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The OID of this hash.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => ID_SHA256,
            Self::Sha384 => ID_SHA384,
            Self::Sha512 => ID_SHA512,
        }
    }

    /// The OCI digest algorithm name (`sha256`, ...).
    pub fn oci_name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Output size in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// The six signature algorithms a Notary Project signature may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SignatureAlgorithm {
    /// RSASSA-PSS with SHA-256 (JWS `PS256`, COSE -37).
    RsassaPssSha256,
    /// RSASSA-PSS with SHA-384 (JWS `PS384`, COSE -38).
    RsassaPssSha384,
    /// RSASSA-PSS with SHA-512 (JWS `PS512`, COSE -39).
    RsassaPssSha512,
    /// ECDSA P-256 with SHA-256 (JWS `ES256`, COSE -7).
    EcdsaSha256,
    /// ECDSA P-384 with SHA-384 (JWS `ES384`, COSE -35).
    EcdsaSha384,
    /// ECDSA P-521 with SHA-512 (JWS `ES512`, COSE -36).
    EcdsaSha512,
}

impl SignatureAlgorithm {
    /// The JWS `alg` value.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "PS256",
            Self::RsassaPssSha384 => "PS384",
            Self::RsassaPssSha512 => "PS512",
            Self::EcdsaSha256 => "ES256",
            Self::EcdsaSha384 => "ES384",
            Self::EcdsaSha512 => "ES512",
        }
    }

    /// From a JWS `alg` value.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.jws_name() == name)
    }

    /// The COSE `alg` label.
    pub fn cose_label(self) -> i64 {
        match self {
            Self::RsassaPssSha256 => -37,
            Self::RsassaPssSha384 => -38,
            Self::RsassaPssSha512 => -39,
            Self::EcdsaSha256 => -7,
            Self::EcdsaSha384 => -35,
            Self::EcdsaSha512 => -36,
        }
    }

    /// From a COSE `alg` label.
    pub fn from_cose_label(label: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.cose_label() == label)
    }

    /// notation's name (`RSASSA-PSS-SHA-256`, `ECDSA-SHA-384`, ...).
    pub fn notation_name(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "RSASSA-PSS-SHA-256",
            Self::RsassaPssSha384 => "RSASSA-PSS-SHA-384",
            Self::RsassaPssSha512 => "RSASSA-PSS-SHA-512",
            Self::EcdsaSha256 => "ECDSA-SHA-256",
            Self::EcdsaSha384 => "ECDSA-SHA-384",
            Self::EcdsaSha512 => "ECDSA-SHA-512",
        }
    }

    /// The hash this algorithm uses.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsassaPssSha256 | Self::EcdsaSha256 => HashAlgorithm::Sha256,
            Self::RsassaPssSha384 | Self::EcdsaSha384 => HashAlgorithm::Sha384,
            Self::RsassaPssSha512 | Self::EcdsaSha512 => HashAlgorithm::Sha512,
        }
    }

    /// All six, in the order of the specification's table.
    pub const ALL: [Self; 6] = [
        Self::RsassaPssSha256,
        Self::RsassaPssSha384,
        Self::RsassaPssSha512,
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
    ];
}

/// Elliptic curves the verifier knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Curve {
    /// secp256r1
    P256,
    /// secp384r1
    P384,
    /// secp521r1
    P521,
}

impl Curve {
    /// Key size in bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }
}

/// The largest RSA modulus accepted, in bits (as Go's crypto/rsa).
pub const MAX_RSA_BITS: u32 = 8192;

/// A subject public key the verifier can use.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// An RSA key.
    Rsa(Box<rsa_vartime::RsaPublicKey>),
    /// A P-256 key.
    P256(ecdsa_vartime::Key<p256::NistP256>),
    /// A P-384 key.
    P384(ecdsa_vartime::Key<p384::NistP384>),
    /// A P-521 key.
    P521(p521::ecdsa::VerifyingKey),
}

/// notation's key specification: the key type and size that select the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeySpec {
    /// RSA with a modulus of this many bits.
    Rsa(u32),
    /// EC on this curve.
    Ec(Curve),
}

impl KeySpec {
    /// The signature algorithm the specification pairs with this key, if any.
    pub fn signature_algorithm(self) -> Option<SignatureAlgorithm> {
        match self {
            Self::Rsa(2048) => Some(SignatureAlgorithm::RsassaPssSha256),
            Self::Rsa(3072) => Some(SignatureAlgorithm::RsassaPssSha384),
            Self::Rsa(4096) => Some(SignatureAlgorithm::RsassaPssSha512),
            Self::Ec(Curve::P256) => Some(SignatureAlgorithm::EcdsaSha256),
            Self::Ec(Curve::P384) => Some(SignatureAlgorithm::EcdsaSha384),
            Self::Ec(Curve::P521) => Some(SignatureAlgorithm::EcdsaSha512),
            Self::Rsa(_) => None,
        }
    }

    /// notation's key spec name (`RSA-2048`, `EC-256`, ...).
    pub fn name(self) -> String {
        match self {
            Self::Rsa(bits) => format!("RSA-{bits}"),
            Self::Ec(curve) => format!("EC-{}", curve.bits()),
        }
    }
}

impl PublicKey {
    /// Decode a SubjectPublicKeyInfo; the error names what is unsupported.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, String> {
        let algorithm = spki.algorithm.oid;
        let key_bytes = spki.subject_public_key.raw_bytes();
        if algorithm == RSA_ENCRYPTION {
            let key = rsa::pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(key_bytes)
                .map_err(|e| format!("invalid RSA public key: {e}"))?;
            let n = rsa::BoxedUint::from_be_slice_vartime(key.modulus.as_bytes());
            // Go caps RSA keys at 8192 bits: a bigger modulus only makes a hostile chain
            // expensive to check.
            let bits = n.bit_width_vartime();
            if bits > MAX_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits exceeds the limit of {MAX_RSA_BITS} bits"
                ));
            }
            let e = rsa::BoxedUint::from_be_slice_vartime(key.public_exponent.as_bytes());
            let key = rsa_vartime::RsaPublicKey::new(n, e, 1024..=MAX_RSA_BITS)
                .map_err(|e| format!("invalid RSA public key: {e}"))?;
            return Ok(Self::Rsa(Box::new(key)));
        }
        if algorithm == ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| "EC public key without a named curve".to_owned())?;
            return match curve {
                SECP_256_R_1 => p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map(|key| Self::P256(ecdsa_vartime::Key::new(key)))
                    .map_err(|_| "invalid P-256 public key".to_owned()),
                SECP_384_R_1 => p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map(|key| Self::P384(ecdsa_vartime::Key::new(key)))
                    .map_err(|_| "invalid P-384 public key".to_owned()),
                SECP_521_R_1 => p521::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map(Self::P521)
                    .map_err(|_| "invalid P-521 public key".to_owned()),
                other => Err(format!("unsupported elliptic curve {other}")),
            };
        }
        Err(format!("unsupported public key algorithm {algorithm}"))
    }

    /// This EC key's decision on the signature `r_s` (`r || s`) of `prehash`: by the
    /// host's arithmetic where one is installed ([`arithmetic`]), else by `local`.
    fn ecdsa_decides(&self, prehash: &[u8], r_s: &[u8], local: impl FnOnce() -> bool) -> bool {
        let Some(host) = arithmetic::installed() else {
            return local();
        };
        let (curve, point) = match self {
            Self::P256(k) => (
                Curve::P256,
                k.verifying_key().to_sec1_point(false).to_bytes(),
            ),
            Self::P384(k) => (
                Curve::P384,
                k.verifying_key().to_sec1_point(false).to_bytes(),
            ),
            Self::P521(k) => (Curve::P521, k.to_sec1_point(false).to_bytes()),
            Self::Rsa(_) => return local(),
        };
        host.ecdsa_verify_prehash(curve, &point, prehash, r_s)
    }

    /// The key type and size.
    pub fn spec(&self) -> KeySpec {
        match self {
            Self::Rsa(key) => KeySpec::Rsa(key.bits()),
            Self::P256(_) => KeySpec::Ec(Curve::P256),
            Self::P384(_) => KeySpec::Ec(Curve::P384),
            Self::P521(_) => KeySpec::Ec(Curve::P521),
        }
    }

    /// Verify `signature` over `message` with one of the Notary Project algorithms: ECDSA
    /// signatures are raw `r || s` (JWS and COSE), RSASSA-PSS uses MGF1 with the same hash.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        pss_salt: PssSalt,
    ) -> Result<(), String> {
        let digest = algorithm.hash().digest(message);
        match (self, algorithm) {
            (Self::Rsa(key), SignatureAlgorithm::RsassaPssSha256) => {
                verify_pss::<Sha256>(key, &digest, signature, pss_salt)
            }
            (Self::Rsa(key), SignatureAlgorithm::RsassaPssSha384) => {
                verify_pss::<Sha384>(key, &digest, signature, pss_salt)
            }
            (Self::Rsa(key), SignatureAlgorithm::RsassaPssSha512) => {
                verify_pss::<Sha512>(key, &digest, signature, pss_salt)
            }
            (Self::P256(key), SignatureAlgorithm::EcdsaSha256) => {
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| "invalid ECDSA signature encoding".to_owned())?;
                self.ecdsa_decides(&digest, &sig.to_bytes(), || {
                    verify_ecdsa(key, &digest, &sig)
                })
                .then_some(())
                .ok_or_else(|| VERIFY_ERROR.to_owned())
            }
            (Self::P384(key), SignatureAlgorithm::EcdsaSha384) => {
                let sig = p384::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| "invalid ECDSA signature encoding".to_owned())?;
                self.ecdsa_decides(&digest, &sig.to_bytes(), || {
                    verify_ecdsa(key, &digest, &sig)
                })
                .then_some(())
                .ok_or_else(|| VERIFY_ERROR.to_owned())
            }
            (Self::P521(key), SignatureAlgorithm::EcdsaSha512) => {
                let sig = p521::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| "invalid ECDSA signature encoding".to_owned())?;
                self.ecdsa_decides(&digest, &sig.to_bytes(), || {
                    key.verify_prehash(&digest, &sig).is_ok()
                })
                .then_some(())
                .ok_or_else(|| VERIFY_ERROR.to_owned())
            }
            (_, algorithm) => Err(format!(
                "the {} key cannot verify a {} signature",
                self.spec().name(),
                algorithm.notation_name()
            )),
        }
    }
}

/// The salt length RSASSA-PSS verification expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PssSalt {
    /// Salt length equal to the hash length (COSE, RFC 8230).
    EqualsHash,
    /// Any salt length recovered from the encoding (JWS, as Go's `rsa.PSSSaltLengthAuto`).
    Auto,
}

const VERIFY_ERROR: &str = "signature verification failed";

fn verify_pss<D>(
    key: &rsa_vartime::RsaPublicKey,
    digest: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> Result<(), String>
where
    D: Digest + sha2::digest::FixedOutputReset,
{
    let sig = rsa::pss::Signature::try_from(signature)
        .map_err(|_| "invalid RSASSA-PSS signature encoding".to_owned())?;
    if variable_time_rsa() {
        return rsa_vartime::verify_pss::<D>(key, digest, signature, salt)
            .then_some(())
            .ok_or_else(|| VERIFY_ERROR.to_owned());
    }
    let key = key
        .crate_key()
        .map_err(|e| format!("invalid RSA public key: {e}"))?;
    let verifier = match salt {
        PssSalt::EqualsHash => rsa::pss::VerifyingKey::<D>::new(key.clone()),
        PssSalt::Auto => rsa::pss::VerifyingKey::<D>::new_with_auto_salt_len(key.clone()),
    };
    verifier
        .verify_prehash(digest, &sig)
        .map_err(|_| VERIFY_ERROR.to_owned())
}

/// Why an issuer's signature on a certificate (or CMS signer info) does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertSignatureError {
    /// SHA-1 based algorithms are forbidden by the specification.
    #[error("x509: cannot verify signature: insecure algorithm {0} (SHA-1)")]
    Sha1(&'static str),
    /// An algorithm outside the supported set.
    #[error("x509: cannot verify signature: algorithm unimplemented ({0})")]
    Unsupported(String),
    /// The issuer key type does not match the algorithm.
    #[error(
        "x509: signature algorithm specifies an {0} public key, but have public key of a different type"
    )]
    KeyMismatch(&'static str),
    /// The issuer's key is unusable.
    #[error("x509: cannot verify signature: {0}")]
    BadKey(String),
    /// The signature does not verify.
    #[error("x509: {0}")]
    Invalid(String),
}

/// A signature algorithm as found in an X.509 or CMS `AlgorithmIdentifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X509SignatureAlgorithm {
    /// PKCS #1 v1.5 with this hash.
    RsaPkcs1(HashAlgorithm),
    /// RSASSA-PSS with this hash (MGF1 with the same hash, salt = hash length).
    RsaPss(HashAlgorithm),
    /// ECDSA with this hash.
    Ecdsa(HashAlgorithm),
}

impl X509SignatureAlgorithm {
    /// Interpret an `AlgorithmIdentifier`. `key_hint` lets a CMS signer info that names
    /// only `rsaEncryption` (as RFC 5652 allows) use PKCS #1 v1.5 with `digest`.
    pub fn from_algorithm_identifier(
        algorithm: &spki::AlgorithmIdentifierOwned,
        digest: Option<HashAlgorithm>,
    ) -> Result<Self, CertSignatureError> {
        let oid = algorithm.oid;
        Ok(match oid {
            SHA_256_WITH_RSA_ENCRYPTION => Self::RsaPkcs1(HashAlgorithm::Sha256),
            SHA_384_WITH_RSA_ENCRYPTION => Self::RsaPkcs1(HashAlgorithm::Sha384),
            SHA_512_WITH_RSA_ENCRYPTION => Self::RsaPkcs1(HashAlgorithm::Sha512),
            ECDSA_WITH_SHA_256 => Self::Ecdsa(HashAlgorithm::Sha256),
            ECDSA_WITH_SHA_384 => Self::Ecdsa(HashAlgorithm::Sha384),
            ECDSA_WITH_SHA_512 => Self::Ecdsa(HashAlgorithm::Sha512),
            SHA1_WITH_RSA => return Err(CertSignatureError::Sha1("SHA1-RSA")),
            ECDSA_WITH_SHA1 => return Err(CertSignatureError::Sha1("ECDSA-SHA1")),
            ID_RSASSA_PSS => {
                let params = algorithm.parameters.as_ref().ok_or_else(|| {
                    CertSignatureError::Unsupported("RSASSA-PSS without parameters".into())
                })?;
                let params_der = der::Encode::to_der(params)
                    .map_err(|e| CertSignatureError::Unsupported(e.to_string()))?;
                let params = rsa::pkcs1::RsaPssParams::<der::Any>::try_from(params_der.as_slice())
                    .map_err(|e| {
                        CertSignatureError::Unsupported(format!("RSASSA-PSS parameters: {e}"))
                    })?;
                let hash = HashAlgorithm::from_oid(&params.hash.oid).ok_or_else(|| {
                    CertSignatureError::Unsupported(format!("RSASSA-PSS hash {}", params.hash.oid))
                })?;
                let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
                if mgf_hash != Some(hash.oid()) || usize::from(params.salt_len) != hash.size() {
                    return Err(CertSignatureError::Unsupported(
                        "RSASSA-PSS with a mask hash or salt length other than the message hash"
                            .into(),
                    ));
                }
                Self::RsaPss(hash)
            }
            RSA_ENCRYPTION => match digest {
                Some(hash) => Self::RsaPkcs1(hash),
                None => return Err(CertSignatureError::Unsupported(oid.to_string())),
            },
            other => return Err(CertSignatureError::Unsupported(other.to_string())),
        })
    }

    /// The hash the algorithm uses.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsaPkcs1(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
        }
    }

    /// [`Self::verify`] for a signed object other than a certificate (`kind`: a CRL, an
    /// OCSP response) signed by `signer` with `key`, remembered as certificate signatures
    /// are ([`memo`]): a CRL handed in for image after image is checked once.
    pub fn verify_remembered(
        self,
        kind: &str,
        signer: &Cert,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CertSignatureError> {
        let object = memo::object_digest(kind, &self, message, signature);
        if memo::known_digest(&object, signer) {
            return Ok(());
        }
        self.verify(key, message, signature)?;
        memo::remember_digest(object, signer);
        Ok(())
    }

    /// Verify `signature` over `message` with `key`.
    pub fn verify(
        self,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CertSignatureError> {
        let digest = self.hash().digest(message);
        match (self, key) {
            (Self::RsaPkcs1(hash), PublicKey::Rsa(key)) => {
                let sig = rsa::pkcs1v15::Signature::try_from(signature)
                    .map_err(|_| CertSignatureError::Invalid("invalid RSA signature".into()))?;
                if variable_time_rsa() {
                    return rsa_vartime::verify_pkcs1v15(key, hash, &digest, signature)
                        .then_some(())
                        .ok_or_else(|| {
                            CertSignatureError::Invalid("crypto/rsa: verification error".into())
                        });
                }
                let key = key
                    .crate_key()
                    .map_err(|e| CertSignatureError::BadKey(e.to_string()))?;
                let result = match hash {
                    HashAlgorithm::Sha256 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
                            .verify_prehash(&digest, &sig)
                    }
                    HashAlgorithm::Sha384 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key.clone())
                            .verify_prehash(&digest, &sig)
                    }
                    HashAlgorithm::Sha512 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key.clone())
                            .verify_prehash(&digest, &sig)
                    }
                };
                result.map_err(|_| {
                    CertSignatureError::Invalid("crypto/rsa: verification error".into())
                })
            }
            (Self::RsaPss(hash), PublicKey::Rsa(key)) => {
                let result = match hash {
                    HashAlgorithm::Sha256 => {
                        verify_pss::<Sha256>(key, &digest, signature, PssSalt::EqualsHash)
                    }
                    HashAlgorithm::Sha384 => {
                        verify_pss::<Sha384>(key, &digest, signature, PssSalt::EqualsHash)
                    }
                    HashAlgorithm::Sha512 => {
                        verify_pss::<Sha512>(key, &digest, signature, PssSalt::EqualsHash)
                    }
                };
                result.map_err(|_| {
                    CertSignatureError::Invalid("crypto/rsa: verification error".into())
                })
            }
            (Self::Ecdsa(_), ec) => {
                let ok = match ec {
                    PublicKey::P256(k) => {
                        p256::ecdsa::Signature::from_der(signature).ok().map(|s| {
                            ec.ecdsa_decides(&digest, &s.to_bytes(), || {
                                verify_ecdsa(k, &digest, &s)
                            })
                        })
                    }
                    PublicKey::P384(k) => {
                        p384::ecdsa::Signature::from_der(signature).ok().map(|s| {
                            ec.ecdsa_decides(&digest, &s.to_bytes(), || {
                                verify_ecdsa(k, &digest, &s)
                            })
                        })
                    }
                    PublicKey::P521(k) => {
                        p521::ecdsa::Signature::from_der(signature).ok().map(|s| {
                            ec.ecdsa_decides(&digest, &s.to_bytes(), || {
                                k.verify_prehash(&digest, &s).is_ok()
                            })
                        })
                    }
                    PublicKey::Rsa(_) => return Err(CertSignatureError::KeyMismatch("ECDSA")),
                };
                match ok {
                    Some(true) => Ok(()),
                    _ => Err(CertSignatureError::Invalid(
                        "ECDSA verification failure".into(),
                    )),
                }
            }
            (_, _) => Err(CertSignatureError::KeyMismatch("RSA")),
        }
    }
}

/// Verify that `issuer` signed `subject`.
pub fn verify_certificate_signature(
    subject: &Cert,
    issuer: &Cert,
) -> Result<(), CertSignatureError> {
    let algorithm =
        X509SignatureAlgorithm::from_algorithm_identifier(subject.signature_algorithm(), None)?;
    let key = issuer
        .public_key
        .as_ref()
        .map_err(|e| CertSignatureError::BadKey(e.clone()))?;
    if memo::known(subject, issuer) {
        return Ok(());
    }
    algorithm.verify(key, subject.tbs_der(), subject.signature_bytes())?;
    memo::remember(subject, issuer);
    Ok(())
}

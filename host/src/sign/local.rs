//! Local PEM private keys (PKCS#8), for development, tests and test certificates.

use anyhow::{Context, Result, anyhow, bail};
use notary_verifier::signature::{Curve, HashAlgorithm, KeySpec};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::signature::hazmat::PrehashSigner;
use rsa::signature::{RandomizedSigner, SignatureEncoding};

/// A private key held in memory.
pub enum LocalKey {
    /// P-256.
    P256(p256::ecdsa::SigningKey),
    /// P-384.
    P384(p384::ecdsa::SigningKey),
    /// P-521.
    P521(p521::ecdsa::SigningKey),
    /// RSA.
    Rsa(Box<rsa::PrivateKey>),
}

fn rng() -> rsa::rand_core::UnwrapErr<getrandom::SysRng> {
    rsa::rand_core::UnwrapErr(getrandom::SysRng)
}

impl LocalKey {
    /// Generate a key of `spec`.
    pub fn generate(spec: KeySpec) -> Result<Self> {
        use p256::elliptic_curve::Generate;
        Ok(match spec {
            KeySpec::Ec(Curve::P256) => Self::P256(p256::ecdsa::SigningKey::from(
                p256::SecretKey::try_generate().map_err(|e| anyhow!("{e}"))?,
            )),
            KeySpec::Ec(Curve::P384) => Self::P384(p384::ecdsa::SigningKey::from(
                p384::SecretKey::try_generate().map_err(|e| anyhow!("{e}"))?,
            )),
            KeySpec::Ec(Curve::P521) => Self::P521(p521::ecdsa::SigningKey::from(
                p521::SecretKey::try_generate().map_err(|e| anyhow!("{e}"))?,
            )),
            KeySpec::Rsa(bits) => Self::Rsa(Box::new(
                rsa::PrivateKey::new(&mut rng(), bits as usize)
                    .map_err(|e| anyhow!("generating an RSA key: {e}"))?,
            )),
        })
    }

    /// Read a PKCS#8 PEM file.
    pub fn from_pem(text: &str) -> Result<Self> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(text) {
            return Ok(Self::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(text) {
            return Ok(Self::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_pkcs8_pem(text) {
            return Ok(Self::P521(p521::ecdsa::SigningKey::from(k)));
        }
        if let Ok(k) = rsa::PrivateKey::from_pkcs8_pem(text) {
            return Ok(Self::Rsa(Box::new(k)));
        }
        bail!("not a PKCS#8 PEM private key (EC P-256/P-384/P-521 or RSA)")
    }

    /// Read a key file.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key {}", path.display()))?;
        Self::from_pem(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String> {
        let line = p256::pkcs8::LineEnding::LF;
        let pem = match self {
            Self::P256(k) => k.to_pkcs8_pem(line),
            Self::P384(k) => k.to_pkcs8_pem(line),
            Self::P521(k) => p521::SecretKey::from(k.as_nonzero_scalar()).to_pkcs8_pem(line),
            Self::Rsa(k) => k.to_pkcs8_pem(line),
        }
        .map_err(|e| anyhow!("encoding the key: {e}"))?;
        Ok(pem.to_string())
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            Self::P256(k) => k.verifying_key().to_public_key_der(),
            Self::P384(k) => k.verifying_key().to_public_key_der(),
            Self::P521(k) => p521::PublicKey::from(k.verifying_key()).to_public_key_der(),
            Self::Rsa(k) => rsa::PublicKey::from(k.as_ref()).to_public_key_der(),
        }
        .map_err(|e| anyhow!("encoding the public key: {e}"))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// The key's spec.
    pub fn spec(&self) -> KeySpec {
        match self {
            Self::P256(_) => KeySpec::Ec(Curve::P256),
            Self::P384(_) => KeySpec::Ec(Curve::P384),
            Self::P521(_) => KeySpec::Ec(Curve::P521),
            Self::Rsa(k) => {
                KeySpec::Rsa(rsa::traits::PublicKeyParts::n(k.as_ref()).bit_width_vartime())
            }
        }
    }

    /// Sign `message` with the algorithm the key implies (ECDSA raw `r || s`, RSASSA-PSS
    /// with salt = hash length).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let algorithm = self.spec().signature_algorithm().ok_or_else(|| {
            anyhow!(
                "{} keys cannot make Notary Project signatures",
                self.spec().name()
            )
        })?;
        let digest = algorithm.hash().digest(message);
        Ok(match self {
            Self::P256(k) => {
                let s: p256::ecdsa::Signature =
                    k.sign_prehash(&digest).map_err(|e| anyhow!("{e}"))?;
                s.to_bytes().to_vec()
            }
            Self::P384(k) => {
                let s: p384::ecdsa::Signature =
                    k.sign_prehash(&digest).map_err(|e| anyhow!("{e}"))?;
                s.to_bytes().to_vec()
            }
            Self::P521(k) => {
                let s: p521::ecdsa::Signature =
                    k.sign_prehash(&digest).map_err(|e| anyhow!("{e}"))?;
                s.to_bytes().to_vec()
            }
            Self::Rsa(k) => match algorithm.hash() {
                HashAlgorithm::Sha256 => rsa::pss::SigningKey::<sha2::Sha256>::new((**k).clone())
                    .try_sign_with_rng(&mut rng(), message)
                    .map_err(|e| anyhow!("{e}"))?
                    .to_vec(),
                HashAlgorithm::Sha384 => rsa::pss::SigningKey::<sha2::Sha384>::new((**k).clone())
                    .try_sign_with_rng(&mut rng(), message)
                    .map_err(|e| anyhow!("{e}"))?
                    .to_vec(),
                HashAlgorithm::Sha512 => rsa::pss::SigningKey::<sha2::Sha512>::new((**k).clone())
                    .try_sign_with_rng(&mut rng(), message)
                    .map_err(|e| anyhow!("{e}"))?
                    .to_vec(),
            },
        })
    }
}

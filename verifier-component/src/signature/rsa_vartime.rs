//! RSA signature verification (RFC 8017 §8.1.2 RSASSA-PSS, §8.2.2 RSASSA-PKCS1-v1_5)
//! with the public-key operation `s^e mod n` computed in variable time.
//!
//! Why hand-written beside the `rsa` crate: the crate's public operation runs a
//! constant-time fixed-window exponentiation (about 19 multiplications and 17 squarings
//! for `e = 65537`, where square-and-multiply needs 16 and 1) because it shares code with
//! private-key operations. Verification handles only public data — the key, the signature
//! and the message are all in the envelope — so there is no secret whose timing could
//! leak, and the shorter sequence is safe here. It is never used for signing. The
//! Montgomery arithmetic is [`montgomery`]'s (why there), the two encodings' checks are
//! written step by step after RFC 8017 and Go's `crypto/rsa`, and `tests/rsa_vartime.rs`
//! compares every decision with the `rsa` crate's on good, tampered and malformed
//! signatures.

mod montgomery;

use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};

use crypto_bigint::Odd;
use rsa::BoxedUint;
use sha2::Digest;

use super::{HashAlgorithm, PssSalt};

/// An RSA public key, with the Montgomery parameters of its modulus computed in variable
/// time and only when the key is first used (the `rsa` crate computes them in constant
/// time whenever it makes a key, a tenth of a verification, and most keys parsed — trust
/// store roots, a chain's root whose signature is remembered — verify nothing). The
/// `rsa` crate's own key, for its constant-time path, is made only if that path is asked
/// for. Both are shared by clones, so a key parsed once (a remembered certificate,
/// [`crate::x509`]'s memo) computes its parameters once.
#[derive(Clone, Debug)]
pub struct RsaPublicKey {
    n: Odd<BoxedUint>,
    e: BoxedUint,
    /// `e` as a word (it is at most `2^33 − 1`).
    e_word: u64,
    modulus: Arc<OnceLock<Option<montgomery::Modulus>>>,
    bits: RangeInclusive<u32>,
    crate_key: Arc<OnceLock<Result<rsa::PublicKey, rsa::Error>>>,
}

impl RsaPublicKey {
    /// The key `(n, e)`, refused as `rsa::PublicKey::new_with_size_limits` refuses it
    /// (same checks, same order, same errors): a modulus outside `bits`, even, or not
    /// above `e`; an even `e`, or one outside `[2, 2^33 - 1]`.
    pub fn new(n: BoxedUint, e: BoxedUint, bits: RangeInclusive<u32>) -> Result<Self, rsa::Error> {
        let width = n.bit_width_vartime();
        if width < *bits.start() {
            return Err(rsa::Error::ModulusTooSmall);
        }
        if width > *bits.end() {
            return Err(rsa::Error::ModulusTooLarge);
        }
        if e >= n || !n.bit_vartime(0) {
            return Err(rsa::Error::InvalidModulus);
        }
        if !e.bit_vartime(0) {
            return Err(rsa::Error::InvalidExponent);
        }
        if e < BoxedUint::from(rsa::PublicKey::MIN_PUB_EXPONENT) {
            return Err(rsa::Error::PublicExponentTooSmall);
        }
        if e > BoxedUint::from(rsa::PublicKey::MAX_PUB_EXPONENT) {
            return Err(rsa::Error::PublicExponentTooLarge);
        }
        let e_word = e
            .to_be_bytes()
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let n = Odd::new(n)
            .into_option()
            .ok_or(rsa::Error::InvalidModulus)?;
        Ok(Self {
            modulus: Arc::default(),
            n,
            e,
            e_word,
            bits,
            crate_key: Arc::default(),
        })
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> u32 {
        self.n.bit_width_vartime()
    }

    /// The modulus with its Montgomery parameters (`None` is unreachable: [`Self::new`]
    /// refuses an even modulus).
    fn modulus(&self) -> Option<&montgomery::Modulus> {
        self.modulus
            .get_or_init(|| montgomery::Modulus::new(&self.n.to_be_bytes()))
            .as_ref()
    }

    /// The `rsa` crate's key, for its constant-time verification.
    pub(crate) fn crate_key(&self) -> Result<&rsa::PublicKey, rsa::Error> {
        self.crate_key
            .get_or_init(|| {
                let range = *self.bits.start() as usize..=*self.bits.end() as usize;
                rsa::PublicKey::new_with_size_limits(self.n.clone().get(), self.e.clone(), range)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// `s^e mod n` as `k` big-endian bytes (`k` the modulus length), or `None` when the
/// signature is not `k` bytes or not below `n` (RFC 8017 §5.2.2 step 1): by the host's
/// arithmetic where one is installed ([`super::arithmetic`]), else here.
fn public_operation(key: &RsaPublicKey, signature: &[u8]) -> Option<Vec<u8>> {
    match super::arithmetic::installed() {
        Some(host) => {
            host.rsa_public_operation(&key.n.to_be_bytes(), &key.e.to_be_bytes(), signature)
        }
        None => public_operation_local(key, signature),
    }
}

/// [`public_operation`] by this module's own arithmetic.
pub(crate) fn public_operation_local(key: &RsaPublicKey, signature: &[u8]) -> Option<Vec<u8>> {
    key.modulus()?.pow_vartime(signature, key.e_word)
}

/// The DER `DigestInfo` prefix of each hash (RFC 8017 §9.2, note 1).
fn digest_info_prefix(hash: HashAlgorithm) -> &'static [u8] {
    match hash {
        HashAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// RSASSA-PKCS1-v1_5 verification of `digest` (RFC 8017 §8.2.2).
pub fn verify_pkcs1v15(
    key: &RsaPublicKey,
    hash: HashAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    public_operation(key, signature).is_some_and(|em| pkcs1v15_encoding_matches(&em, hash, digest))
}

/// Whether `em` (the recovered integer, as long as the modulus) is exactly
/// `00 01 FF…FF 00 || DigestInfo || digest` (EMSA-PKCS1-v1_5, RFC 8017 §9.2).
pub fn pkcs1v15_encoding_matches(em: &[u8], hash: HashAlgorithm, digest: &[u8]) -> bool {
    let prefix = digest_info_prefix(hash);
    if digest.len() != hash.size() {
        return false;
    }
    let t_len = prefix.len() + digest.len();
    let k = em.len();
    if k < t_len + 11 {
        return false;
    }
    let (header, rest) = em.split_at(2);
    let (padding, rest) = rest.split_at(k - t_len - 3);
    let (separator, rest) = rest.split_at(1);
    let (info, hashed) = rest.split_at(prefix.len());
    header == [0x00, 0x01]
        && padding.iter().all(|b| *b == 0xff)
        && separator == [0x00]
        && info == prefix
        && hashed == digest
}

/// RSASSA-PSS verification of `digest` with MGF1 over the same hash `D` (RFC 8017
/// §8.1.2), the salt as long as the hash or, with [`PssSalt::Auto`], as long as the
/// encoding says (Go's `PSSSaltLengthAuto`).
pub fn verify_pss<D: Digest>(
    key: &RsaPublicKey,
    digest: &[u8],
    signature: &[u8],
    salt: PssSalt,
) -> bool {
    public_operation(key, signature)
        .is_some_and(|em| pss_encoding_matches::<D>(&em, key.bits(), digest, salt))
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) of `recovered` (the recovered integer, as long as a
/// modulus of `modulus_bits`) against `digest`.
pub fn pss_encoding_matches<D: Digest>(
    recovered: &[u8],
    modulus_bits: u32,
    digest: &[u8],
    salt: PssSalt,
) -> bool {
    let h_len = <D as Digest>::output_size();
    if digest.len() != h_len {
        return false;
    }
    let Some(em_bits) = usize::try_from(modulus_bits)
        .ok()
        .and_then(|bits| bits.checked_sub(1))
    else {
        return false;
    };
    let em_len = em_bits.div_ceil(8);
    // With a modulus of 8·m + 1 bits, the encoding is one byte shorter than the modulus,
    // and that byte must be zero.
    let em = match recovered.split_first() {
        Some((first, rest)) if em_len < recovered.len() => {
            if *first != 0 {
                return false;
            }
            rest
        }
        _ => recovered,
    };
    if em.len() != em_len || em_len < h_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let h = &rest[..h_len];
    // The leftmost 8·emLen − emBits bits of the encoding are zero.
    let top = 0xffu8 >> ((8 - em_bits % 8) % 8);
    if masked_db.first().is_some_and(|b| b & !top != 0) {
        return false;
    }
    let mut db = masked_db.to_vec();
    mgf1_xor::<D>(&mut db, h);
    if let Some(first) = db.first_mut() {
        *first &= top;
    }
    // DB = PS (zeros) || 0x01 || salt.
    let salt_start = match salt {
        PssSalt::EqualsHash => {
            let Some(ps_len) = em_len.checked_sub(2 * h_len + 2) else {
                return false;
            };
            if db[..ps_len].iter().any(|b| *b != 0) || db[ps_len] != 0x01 {
                return false;
            }
            ps_len + 1
        }
        PssSalt::Auto => match db.iter().position(|b| *b != 0) {
            Some(ps_len) if db[ps_len] == 0x01 => ps_len + 1,
            _ => return false,
        },
    };
    let mut m_prime = D::new();
    m_prime.update([0u8; 8]);
    m_prime.update(digest);
    m_prime.update(&db[salt_start..]);
    m_prime.finalize().as_slice() == h
}

/// `out ^= MGF1(seed, out.len())` (RFC 8017 §B.2.1).
fn mgf1_xor<D: Digest>(out: &mut [u8], seed: &[u8]) {
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(<D as Digest>::output_size())) {
        let mut block = D::new();
        block.update(seed);
        block.update(counter.to_be_bytes());
        for (o, m) in chunk.iter_mut().zip(block.finalize().iter()) {
            *o ^= m;
        }
    }
}

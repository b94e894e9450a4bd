//! RSA verification with the variable-time public operation
//! (`signature::rsa_vartime`): the EMSA-PSS and EMSA-PKCS1-v1_5 checks on arbitrary
//! recovered encodings and modulus sizes, and whole verifications with an arbitrary odd
//! modulus and signature, decided both by this code and by the `rsa` crate, which must
//! agree. The first byte picks the hash; then two bytes of modulus length, the modulus,
//! and the rest split into digest and signature / encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::signature::rsa_vartime::{
    RsaPublicKey, pkcs1v15_encoding_matches, pss_encoding_matches,
};
use notary_verifier::signature::{self, HashAlgorithm, PssSalt, PublicKey, SignatureAlgorithm};
use sha2::{Sha256, Sha384, Sha512};

fn encodings(hash: HashAlgorithm, em: &[u8], bits: u32, digest: &[u8]) {
    let _ = pkcs1v15_encoding_matches(em, hash, digest);
    let pss = |salt| match hash {
        HashAlgorithm::Sha256 => pss_encoding_matches::<Sha256>(em, bits, digest, salt),
        HashAlgorithm::Sha384 => pss_encoding_matches::<Sha384>(em, bits, digest, salt),
        HashAlgorithm::Sha512 => pss_encoding_matches::<Sha512>(em, bits, digest, salt),
    };
    let auto = pss(PssSalt::Auto);
    // A salt as long as the hash is one of the lengths "auto" accepts.
    if pss(PssSalt::EqualsHash) {
        assert!(
            auto,
            "an encoding with the hash's salt length is refused by auto"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (hash, algorithm) = match selector % 3 {
        0 => (HashAlgorithm::Sha256, SignatureAlgorithm::RsassaPssSha256),
        1 => (HashAlgorithm::Sha384, SignatureAlgorithm::RsassaPssSha384),
        _ => (HashAlgorithm::Sha512, SignatureAlgorithm::RsassaPssSha512),
    };
    let size = hash.size();
    if rest.len() < 2 + size {
        return;
    }
    let (length, rest) = rest.split_at(2);
    let n_len = usize::from(u16::from_be_bytes([length[0], length[1]]) % 300).max(1);
    let (digest, rest) = rest.split_at(size);
    // The rest as a recovered encoding of every modulus size near its length.
    let bytes = u32::try_from(rest.len()).unwrap_or(u32::MAX);
    let bits8 = bytes.saturating_mul(8);
    for bits in [
        bits8,
        bits8.saturating_add(1),
        bits8.saturating_sub(7),
        u32::from(selector),
    ] {
        encodings(hash, rest, bits, digest);
    }
    // A whole verification: the first n_len bytes as an odd modulus, the rest as the
    // signature, e = 65537, both arithmetics.
    if rest.len() <= n_len {
        return;
    }
    let (modulus, sig) = rest.split_at(n_len);
    let mut n = modulus.to_vec();
    if let Some(last) = n.last_mut() {
        *last |= 1;
    }
    let n = rsa::BoxedUint::from_be_slice_vartime(&n);
    let e = rsa::BoxedUint::from_be_slice_vartime(&[1, 0, 1]);
    let Ok(key) = RsaPublicKey::new(n, e, 512..=2400) else {
        return;
    };
    let key = PublicKey::Rsa(Box::new(key));
    for salt in [PssSalt::EqualsHash, PssSalt::Auto] {
        signature::set_variable_time_rsa(true);
        let variable = key.verify(algorithm, digest, sig, salt).is_ok();
        signature::set_variable_time_rsa(false);
        let constant = key.verify(algorithm, digest, sig, salt).is_ok();
        signature::set_variable_time_rsa(true);
        assert_eq!(variable, constant, "the two arithmetics disagree");
    }
});

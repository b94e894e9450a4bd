//! ECDSA verification with the variable-time arithmetic (`signature::ecdsa_vartime`)
//! against the `ecdsa` crate, which must agree on every input. The first byte picks the
//! curve (P-256, P-384) and the mode; then a private scalar (the key is its multiple of G),
//! a digest of any length up to 64 bytes, and either an arbitrary `r || s` or two scalars
//! `u1`, `u2` from which a valid signature is built (`r = x((u1 + u2·d)·G)`), which must
//! then verify unless that point is infinity. Both the one-off loop and a key's split
//! tables decide.
#![no_main]

use ecdsa::signature::hazmat::PrehashVerifier;
use libfuzzer_sys::fuzz_target;
use notary_verifier::signature::ecdsa_vartime::{Key, verify_prehash};

macro_rules! check {
    ($curve:ident, $point:ident, $size:literal, $data:expr, $built:expr) => {{
        use $curve::elliptic_curve::ff::{Field, PrimeField};
        use $curve::elliptic_curve::ops::Reduce;
        use $curve::elliptic_curve::sec1::ToSec1Point;
        use $curve::{ProjectivePoint, Scalar};
        let data: &[u8] = $data;
        let scalar = |bytes: &[u8]| {
            let mut wide = $curve::FieldBytes::default();
            let n = bytes.len().min($size);
            wide[$size - n..].copy_from_slice(&bytes[..n]);
            <Scalar as Reduce<$curve::FieldBytes>>::reduce(&wide)
        };
        if data.len() < $size + 1 {
            return;
        }
        let (secret, rest) = data.split_at($size);
        let d = scalar(secret);
        if bool::from(Field::is_zero(&d)) {
            return;
        }
        let key = ecdsa::VerifyingKey::<$curve::$point>::from_affine(
            (ProjectivePoint::GENERATOR * d).to_affine(),
        );
        let Ok(key) = key else { return };
        let (digest_len, rest) = rest.split_at(1);
        let digest_len = usize::from(digest_len[0] % 65).min(rest.len());
        let (digest, rest) = rest.split_at(digest_len);
        if rest.len() < 2 * $size {
            return;
        }
        let (a, b) = rest.split_at($size);
        let (r, s) = if $built {
            // u1 = a, u2 = b: r from the point they make, s = r/u2, digest = u1·s.
            let (u1, u2) = (scalar(a), scalar(&b[..$size]));
            let Some(u2_inv) = Option::<Scalar>::from(Field::invert(&u2)) else {
                return;
            };
            let point = (ProjectivePoint::GENERATOR * (u1 + u2 * d)).to_affine();
            let encoded = point.to_sec1_point(false);
            let Some(x) = encoded.x() else { return };
            let r = <Scalar as Reduce<$curve::FieldBytes>>::reduce(x);
            let s = r * u2_inv;
            let z = (u1 * s).to_repr();
            let Ok(sig) = ecdsa::Signature::<$curve::$point>::from_scalars(r.to_repr(), s.to_repr()) else {
                return;
            };
            let crate_says = key.verify_prehash(&z, &sig).is_ok();
            let here = verify_prehash(&key, &z, &sig);
            assert_eq!(here, crate_says, "built signature");
            let split = Key::precomputed(key).verify_prehash(&z, &sig);
            assert_eq!(split, crate_says, "built signature, split tables");
            assert!(here, "a signature built from u1, u2 verifies");
            return;
        } else {
            (a, &b[..$size])
        };
        let Ok(sig) = ecdsa::Signature::<$curve::$point>::from_slice(&[r, s].concat()) else {
            return;
        };
        let crate_says = key.verify_prehash(digest, &sig).is_ok();
        assert_eq!(verify_prehash(&key, digest, &sig), crate_says, "arbitrary signature");
        let split = Key::precomputed(key).verify_prehash(digest, &sig);
        assert_eq!(split, crate_says, "arbitrary signature, split tables");
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => check!(p256, NistP256, 32, rest, false),
        1 => check!(p256, NistP256, 32, rest, true),
        2 => check!(p384, NistP384, 48, rest, false),
        _ => check!(p384, NistP384, 48, rest, true),
    }
});

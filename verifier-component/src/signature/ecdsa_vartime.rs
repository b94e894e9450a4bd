//! Variable-time ECDSA verification on P-256 and P-384 (SEC 1 §4.1.4), the default for
//! every ECDSA signature this crate checks on those curves.
//!
//! Verification uses only public data (the key, the digest, the signature), so its time
//! may depend on them; signing never comes here. RustCrypto's `ecdsa` verifies with
//! complete projective formulas (Renes–Costello–Batina), built to be constant time, over a
//! field type whose every operation goes through constant-time selection: on this
//! machine a P-256 verification took 320 µs against OpenSSL's 59 µs. Here:
//!
//! - the field is fiat-crypto's (formally verified, generated code; 64-bit limbs on
//!   64-bit targets, 32-bit limbs on wasm32), about twice as fast per operation;
//! - Jacobian coordinates with the `a = -3` doubling (3M + 5S) and mixed additions
//!   against affine tables (7M + 4S), about half the multiplications of the complete
//!   formulas;
//! - one interleaved (Shamir) wNAF loop for `u1·G + u2·Q`, with the odd multiples of `G`
//!   built once per process (width 7) and those of `Q` per verification (width 4): about
//!   100 µs ([`verify_prehash`]);
//! - for a key that verifies again ([`Key`]: a signer's leaf on many images, the
//!   self-check of every envelope an HSM signs), tables of `2^(32·j)·G` and `2^(32·j)·Q`
//!   for each 32-bit chunk `j` of the scalars, so the loop takes 32 doublings instead of
//!   256: about 35 µs, below OpenSSL's 45 µs here (64-bit chunks, 64 doublings: 43 µs).
//!
//! The incomplete formulas' exceptional cases (equal or opposite points, the point at
//! infinity) are decided by branches, so every input gets the mathematically right answer;
//! `tests/ecdsa_vartime.rs` holds them against the `ecdsa` crate on OpenSSL-made
//! signatures, this module's tests both loops on crafted ones (also on the 32-bit field,
//! `--features fiat-32`), and the `ecdsa_vartime` fuzz target on arbitrary ones. Scalars
//! (`s⁻¹`, `u1`, `u2`), the field inversion and the signature and key decoding are the
//! curve crates' own.

use std::ops::{Add, Mul, Sub};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use ecdsa::{EcdsaCurve, Signature, VerifyingKey};
use p256::elliptic_curve::bigint::Invert;
use p256::elliptic_curve::ff::{Field, PrimeField};
use p256::elliptic_curve::hazmat::FieldArithmetic;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::elliptic_curve::{CurveArithmetic, FieldBytes, Scalar};

/// wNAF width for the generator (its table is built once: 2^(w-2) = 32 affine points).
const GENERATOR_WIDTH: usize = 7;
/// wNAF width for the public key (its table is built per verification: 4 points).
const KEY_WIDTH: usize = 4;

/// What the point arithmetic needs of a prime field (elements fully reduced).
pub trait FieldElement:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// `self²`
    fn square(&self) -> Self;
    /// `-self`
    fn neg(&self) -> Self;
    /// `2·self`
    fn double(&self) -> Self {
        *self + *self
    }
    /// `self == 0`
    fn is_zero(&self) -> bool;
    /// `1/self` (variable time); `None` for 0.
    fn invert(&self) -> Option<Self>;
    /// From a canonical big-endian encoding; `None` when it is not below the modulus.
    fn from_be_bytes(bytes: &[u8]) -> Option<Self>;
}

/// A fiat-crypto field in the Montgomery domain (`$fiat` is a module like `fiat_p256`,
/// with the curve prefix dropped from fiat's names); inversion and the range check on decoding are the curve
/// crate's field type's.
macro_rules! fiat_field {
    ($name:ident, $curve:ty, $bytes:literal, $fiat:ident) => {
        #[doc = concat!("An element of the base field of ", stringify!($curve), ".")]
        #[derive(Clone, Copy, Debug)]
        pub struct $name([$fiat::Limb; $fiat::LIMBS]);

        impl $name {
            /// `op(self)` for one of fiat's unary operations.
            fn unary(self, op: fn(&mut $fiat::Mont, &$fiat::Mont)) -> Self {
                let mut out = $fiat::Mont([0; $fiat::LIMBS]);
                op(&mut out, &$fiat::Mont(self.0));
                Self(out.0)
            }

            /// `op(self, rhs)` for one of fiat's binary operations.
            fn binary(
                self,
                rhs: Self,
                op: fn(&mut $fiat::Mont, &$fiat::Mont, &$fiat::Mont),
            ) -> Self {
                let mut out = $fiat::Mont([0; $fiat::LIMBS]);
                op(&mut out, &$fiat::Mont(self.0), &$fiat::Mont(rhs.0));
                Self(out.0)
            }

            /// Canonical big-endian bytes.
            fn to_be_bytes(self) -> [u8; $bytes] {
                let mut plain = $fiat::Plain([0; $fiat::LIMBS]);
                $fiat::from_montgomery(&mut plain, &$fiat::Mont(self.0));
                let mut bytes = [0u8; $bytes];
                $fiat::to_bytes(&mut bytes, &plain.0);
                bytes.reverse();
                bytes
            }

            /// From a value the curve crate has range-checked.
            fn from_checked(bytes: &FieldBytes<$curve>) -> Self {
                let mut little = [0u8; $bytes];
                little.copy_from_slice(bytes);
                little.reverse();
                let mut plain = [0; $fiat::LIMBS];
                $fiat::from_bytes(&mut plain, &little);
                let mut out = $fiat::Mont([0; $fiat::LIMBS]);
                $fiat::to_montgomery(&mut out, &$fiat::Plain(plain));
                Self(out.0)
            }
        }

        impl Add for $name {
            type Output = Self;
            fn add(self, rhs: Self) -> Self {
                self.binary(rhs, $fiat::add)
            }
        }

        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                self.binary(rhs, $fiat::sub)
            }
        }

        impl Mul for $name {
            type Output = Self;
            fn mul(self, rhs: Self) -> Self {
                self.binary(rhs, $fiat::mul)
            }
        }

        impl FieldElement for $name {
            const ZERO: Self = Self([0; $fiat::LIMBS]);
            const ONE: Self = {
                let mut one = $fiat::Mont([0; $fiat::LIMBS]);
                $fiat::set_one(&mut one);
                Self(one.0)
            };

            fn square(&self) -> Self {
                self.unary($fiat::square)
            }

            fn neg(&self) -> Self {
                self.unary($fiat::opp)
            }

            fn is_zero(&self) -> bool {
                let mut nonzero = 0;
                $fiat::nonzero(&mut nonzero, &self.0);
                nonzero == 0
            }

            fn invert(&self) -> Option<Self> {
                type Crate = <$curve as FieldArithmetic>::FieldElement;
                let value: Option<Crate> = Crate::from_repr(self.to_be_bytes().into()).into();
                let inverse: Option<Crate> = Invert::invert_vartime(&value?).into();
                Some(Self::from_checked(&inverse?.to_repr()))
            }

            fn from_be_bytes(bytes: &[u8]) -> Option<Self> {
                type Crate = <$curve as FieldArithmetic>::FieldElement;
                let repr = FieldBytes::<$curve>::try_from(bytes).ok()?;
                let checked: Option<Crate> = Crate::from_repr(repr).into();
                checked.map(|c| Self::from_checked(&c.to_repr()))
            }
        }
    };
}

/// fiat-crypto's P-256 field with the target's limb width (32-bit on wasm32, or with
/// the `fiat-32` feature), its names without the curve prefix.
mod fiat_p256 {
    pub use fiat::{
        fiat_p256_add as add, fiat_p256_from_bytes as from_bytes,
        fiat_p256_from_montgomery as from_montgomery,
        fiat_p256_montgomery_domain_field_element as Mont, fiat_p256_mul as mul,
        fiat_p256_non_montgomery_domain_field_element as Plain, fiat_p256_nonzero as nonzero,
        fiat_p256_opp as opp, fiat_p256_set_one as set_one, fiat_p256_square as square,
        fiat_p256_sub as sub, fiat_p256_to_bytes as to_bytes,
        fiat_p256_to_montgomery as to_montgomery,
    };
    #[cfg(any(not(target_pointer_width = "64"), feature = "fiat-32"))]
    use fiat_crypto::p256_32 as fiat;
    #[cfg(all(target_pointer_width = "64", not(feature = "fiat-32")))]
    use fiat_crypto::p256_64 as fiat;
    #[cfg(all(target_pointer_width = "64", not(feature = "fiat-32")))]
    pub type Limb = u64;
    #[cfg(any(not(target_pointer_width = "64"), feature = "fiat-32"))]
    pub type Limb = u32;
    pub const LIMBS: usize = 32 / core::mem::size_of::<Limb>();
}

/// fiat-crypto's P-384 field with the target's limb width (32-bit on wasm32, or with
/// the `fiat-32` feature), its names without the curve prefix.
mod fiat_p384 {
    pub use fiat::{
        fiat_p384_add as add, fiat_p384_from_bytes as from_bytes,
        fiat_p384_from_montgomery as from_montgomery,
        fiat_p384_montgomery_domain_field_element as Mont, fiat_p384_mul as mul,
        fiat_p384_non_montgomery_domain_field_element as Plain, fiat_p384_nonzero as nonzero,
        fiat_p384_opp as opp, fiat_p384_set_one as set_one, fiat_p384_square as square,
        fiat_p384_sub as sub, fiat_p384_to_bytes as to_bytes,
        fiat_p384_to_montgomery as to_montgomery,
    };
    #[cfg(any(not(target_pointer_width = "64"), feature = "fiat-32"))]
    use fiat_crypto::p384_32 as fiat;
    #[cfg(all(target_pointer_width = "64", not(feature = "fiat-32")))]
    use fiat_crypto::p384_64 as fiat;
    #[cfg(all(target_pointer_width = "64", not(feature = "fiat-32")))]
    pub type Limb = u64;
    #[cfg(any(not(target_pointer_width = "64"), feature = "fiat-32"))]
    pub type Limb = u32;
    pub const LIMBS: usize = 48 / core::mem::size_of::<Limb>();
}

fiat_field!(P256Field, p256::NistP256, 32, fiat_p256);
fiat_field!(P384Field, p384::NistP384, 48, fiat_p384);

/// A point in affine coordinates, never the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Affine<F> {
    x: F,
    y: F,
}

impl<F: FieldElement> Affine<F> {
    fn neg(&self) -> Self {
        Self {
            x: self.x,
            y: self.y.neg(),
        }
    }
}

/// A point in Jacobian coordinates `(X/Z², Y/Z³)`; `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Jacobian<F> {
    x: F,
    y: F,
    z: F,
}

impl<F: FieldElement> Jacobian<F> {
    const INFINITY: Self = Self {
        x: F::ONE,
        y: F::ONE,
        z: F::ZERO,
    };

    fn from_affine(p: &Affine<F>) -> Self {
        Self {
            x: p.x,
            y: p.y,
            z: F::ONE,
        }
    }

    fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// `2P` for `a = -3` (dbl-2001-b).
    fn double(&self) -> Self {
        if self.is_infinity() {
            return *self;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x * gamma;
        let t = (self.x - delta) * (self.x + delta);
        let alpha = t.double() + t;
        let beta4 = beta.double().double();
        let x3 = alpha.square() - beta4.double();
        let z3 = (self.y + self.z).square() - gamma - delta;
        let gamma2 = gamma.square();
        let y3 = alpha * (beta4 - x3) - gamma2.double().double().double();
        Self {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `P + Q` for an affine `Q` (madd-2007-bl), exceptional cases by branch.
    fn add_affine(&self, q: &Affine<F>) -> Self {
        if self.is_infinity() {
            return Self::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x * z1z1;
        let s2 = q.y * self.z * z1z1;
        let h = u2 - self.x;
        let r = (s2 - self.y).double();
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Self::INFINITY
            };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h * i;
        let v = self.x * i;
        let x3 = r.square() - j - v.double();
        let y3 = r * (v - x3) - (self.y * j).double();
        let z3 = (self.z + h).square() - z1z1 - hh;
        Self {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `P + Q` (add-2007-bl), exceptional cases by branch.
    fn add(&self, q: &Self) -> Self {
        if self.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x * z2z2;
        let u2 = q.x * z1z1;
        let s1 = self.y * q.z * z2z2;
        let s2 = q.y * self.z * z1z1;
        let h = u2 - u1;
        let r = (s2 - s1).double();
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Self::INFINITY
            };
        }
        let i = h.double().square();
        let j = h * i;
        let v = u1 * i;
        let x3 = r.square() - j - v.double();
        let y3 = r * (v - x3) - (s1 * j).double();
        let z3 = ((self.z + q.z).square() - z1z1 - z2z2) * h;
        Self {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}

/// `P, 3P, 5P, …, (2^(w-1) - 1)P` in affine coordinates, one field inversion for all.
/// `None` when a multiple is the point at infinity (not for a point of large prime order).
fn odd_multiples<F: FieldElement>(p: &Jacobian<F>, width: usize) -> Option<Vec<Affine<F>>> {
    let count = 1usize << (width - 2);
    let p = *p;
    let twice = p.double();
    let mut points = Vec::with_capacity(count);
    points.push(p);
    for k in 1..count {
        let next = points[k - 1].add(&twice);
        points.push(next);
    }
    // Montgomery's trick: prefix products of Z, one inversion, back again.
    let mut prefix = Vec::with_capacity(count);
    let mut product = F::ONE;
    for point in &points {
        if point.is_infinity() {
            return None;
        }
        product = product * point.z;
        prefix.push(product);
    }
    let mut inverse = product.invert()?;
    let mut affine = vec![
        Affine {
            x: F::ZERO,
            y: F::ZERO
        };
        count
    ];
    for k in (0..count).rev() {
        let z_inv = if k == 0 {
            inverse
        } else {
            inverse * prefix[k - 1]
        };
        inverse = inverse * points[k].z;
        let z2 = z_inv.square();
        affine[k] = Affine {
            x: points[k].x * z2,
            y: points[k].y * z2 * z_inv,
        };
    }
    Some(affine)
}

/// Digits of a split-table chunk: a 32-bit chunk has at most 33 wNAF digits.
const CHUNK_DIGITS: usize = CHUNK_BITS + 1;

/// [`wnaf`] of one chunk (at most 32 bits, big-endian), without allocating: the split
/// loop makes two per chunk, sixteen for a P-256 verification.
fn wnaf_chunk(big_endian: &[u8], width: usize) -> [i8; CHUNK_DIGITS] {
    let mut digits = [0i8; CHUNK_DIGITS];
    let mut k = big_endian
        .iter()
        .fold(0i64, |k, byte| (k << 8) | i64::from(*byte));
    let (window, half) = (1i64 << width, 1i64 << (width - 1));
    let mut position = 0;
    debug_assert!(big_endian.len() <= CHUNK_BITS / 8);
    // k < 2^32 + 2^(w-1) throughout, so the digits end by position CHUNK_BITS.
    while k != 0 && position < CHUNK_DIGITS {
        if k & 1 == 1 {
            let mut digit = k & (window - 1);
            if digit >= half {
                digit -= window;
            }
            digits[position] = digit as i8;
            k -= digit;
        }
        k >>= 1;
        position += 1;
    }
    digits
}

/// Width-`w` non-adjacent form of a big-endian integer, least significant digit first:
/// each digit is zero or odd with `|d| < 2^(w-1)`, and no two non-zero digits are closer
/// than `w` positions.
fn wnaf(big_endian: &[u8], width: usize) -> Vec<i8> {
    let bits = big_endian.len() * 8;
    // Little-endian limbs with room for the window to read past the top.
    let mut limbs = vec![0u64; bits / 64 + 2];
    for (i, byte) in big_endian.iter().rev().enumerate() {
        limbs[i / 8] |= u64::from(*byte) << ((i % 8) * 8);
    }
    let window_size = 1u64 << width;
    let mask = window_size - 1;
    let mut digits = vec![0i8; bits + 1];
    let mut carry = 0u64;
    let mut pos = 0;
    while pos <= bits {
        let index = pos / 64;
        let shift = pos % 64;
        let buffer = if shift + width <= 64 {
            limbs[index] >> shift
        } else {
            (limbs[index] >> shift) | (limbs[index + 1] << (64 - shift))
        };
        let window = carry + (buffer & mask);
        if window & 1 == 0 {
            pos += 1;
            continue;
        }
        if window < window_size / 2 {
            carry = 0;
            digits[pos] = window as i8;
        } else {
            carry = 1;
            digits[pos] = (window as i64 - window_size as i64) as i8;
        }
        pos += width;
    }
    digits
}

fn add_digit<F: FieldElement>(acc: &Jacobian<F>, table: &[Affine<F>], digit: i8) -> Jacobian<F> {
    match digit {
        0 => *acc,
        d if d > 0 => acc.add_affine(&table[(d / 2) as usize]),
        d => acc.add_affine(&table[(-(d as i16) / 2) as usize].neg()),
    }
}

/// A curve verified here: its field and its generator's odd multiples, built once.
pub trait VartimeCurve: EcdsaCurve + CurveArithmetic {
    /// The base field, as the point arithmetic computes in it.
    type Field: FieldElement;
    /// `G, 3G, …` for [`GENERATOR_WIDTH`] (empty if it could not be built, which would
    /// make every verification fail rather than pass).
    fn generator_table() -> &'static [Affine<Self::Field>];
    /// The odd multiples of `2^(32·j)·G` for every 32-bit chunk `j` of a scalar.
    fn generator_split_tables() -> &'static [Vec<Affine<Self::Field>>];
    /// 32-bit chunks in a scalar.
    const CHUNKS: usize;
    /// The generator's affine coordinates, big-endian.
    fn generator() -> (FieldBytes<Self>, FieldBytes<Self>);
    /// A field element's canonical big-endian encoding.
    fn encode(element: &Self::Field) -> FieldBytes<Self>;
    /// The key's point in affine coordinates.
    fn key_point(key: &VerifyingKey<Self>) -> Option<Affine<Self::Field>>;
}

/// The generator in the point arithmetic's field.
fn generator<C: VartimeCurve>() -> Option<Affine<C::Field>> {
    let (x, y) = C::generator();
    Some(Affine {
        x: C::Field::from_be_bytes(&x)?,
        y: C::Field::from_be_bytes(&y)?,
    })
}

fn build_generator_table<C: VartimeCurve>() -> Vec<Affine<C::Field>> {
    generator::<C>()
        .and_then(|g| odd_multiples(&Jacobian::from_affine(&g), GENERATOR_WIDTH))
        .unwrap_or_default()
}

/// For each 32-bit chunk `j` of a scalar, the odd multiples of `2^(32·j)·P`.
fn split_tables<F: FieldElement>(
    p: &Affine<F>,
    chunks: usize,
    width: usize,
) -> Option<Vec<Vec<Affine<F>>>> {
    let mut base = Jacobian::from_affine(p);
    let mut tables = Vec::with_capacity(chunks);
    for j in 0..chunks {
        if j > 0 {
            for _ in 0..CHUNK_BITS {
                base = base.double();
            }
        }
        if base.is_infinity() {
            return None;
        }
        tables.push(odd_multiples(&base, width)?);
    }
    Some(tables)
}

fn build_generator_split_tables<C: VartimeCurve>() -> Vec<Vec<Affine<C::Field>>> {
    generator::<C>()
        .and_then(|g| split_tables(&g, C::CHUNKS, SPLIT_GENERATOR_WIDTH))
        .unwrap_or_default()
}

macro_rules! vartime_curve {
    ($curve:ty, $field:ty, $chunks:literal) => {
        impl VartimeCurve for $curve {
            type Field = $field;

            const CHUNKS: usize = $chunks;

            fn generator_table() -> &'static [Affine<$field>] {
                static TABLE: OnceLock<Vec<Affine<$field>>> = OnceLock::new();
                TABLE.get_or_init(build_generator_table::<$curve>)
            }

            fn generator_split_tables() -> &'static [Vec<Affine<$field>>] {
                static TABLES: OnceLock<Vec<Vec<Affine<$field>>>> = OnceLock::new();
                TABLES.get_or_init(build_generator_split_tables::<$curve>)
            }

            fn generator() -> (FieldBytes<Self>, FieldBytes<Self>) {
                let point =
                    <$curve as CurveArithmetic>::AffinePoint::GENERATOR.to_sec1_point(false);
                (
                    point.x().cloned().unwrap_or_default(),
                    point.y().cloned().unwrap_or_default(),
                )
            }

            fn encode(element: &$field) -> FieldBytes<Self> {
                element.to_be_bytes().into()
            }

            fn key_point(key: &VerifyingKey<Self>) -> Option<Affine<$field>> {
                // A valid point other than infinity: `VerifyingKey` holds no others.
                let encoded = key.as_affine().to_sec1_point(false);
                Some(Affine {
                    x: <$field>::from_be_bytes(encoded.x()?)?,
                    y: <$field>::from_be_bytes(encoded.y()?)?,
                })
            }
        }
    };
}

vartime_curve!(p256::NistP256, P256Field, 8);
vartime_curve!(p384::NistP384, P384Field, 12);

/// `bits2int(prehash) mod n` for an order of a whole number of bytes (P-256, P-384): the
/// leftmost bytes of a longer digest, a shorter one as it is.
fn digest_scalar<C>(prehash: &[u8]) -> Scalar<C>
where
    C: VartimeCurve,
    Scalar<C>: Reduce<FieldBytes<C>>,
{
    let mut bytes = FieldBytes::<C>::default();
    let size = bytes.len();
    if prehash.len() >= size {
        bytes.copy_from_slice(&prehash[..size]);
    } else {
        bytes[size - prehash.len()..].copy_from_slice(prehash);
    }
    <Scalar<C> as Reduce<FieldBytes<C>>>::reduce(&bytes)
}

/// `u1 = z/s`, `u2 = r/s` and `r` of a signature over the digest `prehash`.
fn scalars<C>(prehash: &[u8], signature: &Signature<C>) -> Option<(Scalar<C>, Scalar<C>, Scalar<C>)>
where
    C: VartimeCurve,
    Scalar<C>: Reduce<FieldBytes<C>>,
{
    // r and s are in [1, n-1]: a `Signature` holds no others.
    let (r, s) = signature.split_scalars();
    let z = digest_scalar::<C>(prehash);
    let s_inv: Option<Scalar<C>> = Invert::invert_vartime(&*s).into();
    let s_inv = s_inv?;
    Some((z * s_inv, *r * s_inv, *r))
}

/// `Σ digits_k · table_k` by one double-and-add loop over all the streams (Shamir's
/// trick): a digit `d` adds `±table[|d|/2]`.
fn interleave<F: FieldElement, D: AsRef<[i8]>>(streams: &[(&[Affine<F>], D)]) -> Jacobian<F> {
    let len = streams
        .iter()
        .map(|(_, d)| d.as_ref().len())
        .max()
        .unwrap_or(0);
    let top = (0..len).rev().find(|&i| {
        streams
            .iter()
            .any(|(_, d)| d.as_ref().get(i).is_some_and(|x| *x != 0))
    });
    let mut acc = Jacobian::<F>::INFINITY;
    let Some(top) = top else { return acc };
    for i in (0..=top).rev() {
        acc = acc.double();
        for (table, digits) in streams {
            if let Some(&digit) = digits.as_ref().get(i) {
                acc = add_digit(&acc, table, digit);
            }
        }
    }
    acc
}

/// Whether the point is not infinity and its `x mod n` is `r`, without leaving Jacobian
/// coordinates: the affine `x = X/Z²` is below `p < 2n`, so `x mod n = r` exactly when
/// `X = r·Z²`, or `X = (r + n)·Z²` where `r + n < p` (saves the field inversion).
fn x_is_r<C: VartimeCurve>(point: &Jacobian<C::Field>, r: &Scalar<C>) -> bool
where
    Scalar<C>: Reduce<FieldBytes<C>>,
{
    if point.is_infinity() {
        return false;
    }
    let z2 = point.z.square();
    let is_x = |candidate: &[u8]| {
        C::Field::from_be_bytes(candidate).is_some_and(|c| (c * z2 - point.x).is_zero())
    };
    let r_bytes = r.to_repr();
    if is_x(&r_bytes) {
        return true;
    }
    // r + n = r + (n - 1) + 1, big-endian; a carry out of the top means it is past p.
    let n_minus_1 = (-Scalar::<C>::ONE).to_repr();
    let mut sum = r_bytes;
    let mut carry = 1u16;
    for (out, add) in sum.iter_mut().zip(n_minus_1.iter()).rev() {
        let total = u16::from(*out) + u16::from(*add) + carry;
        *out = total as u8;
        carry = total >> 8;
    }
    carry == 0 && is_x(&sum)
}

/// Whether `signature` is `key`'s ECDSA signature of the digest `prehash`, decided as
/// the `ecdsa` crate's `verify_prehash` decides it: one loop over the full scalars, the
/// key's table built for this verification alone.
pub fn verify_prehash<C>(key: &VerifyingKey<C>, prehash: &[u8], signature: &Signature<C>) -> bool
where
    C: VartimeCurve,
    Scalar<C>: Reduce<FieldBytes<C>>,
{
    let Some((u1, u2, r)) = scalars::<C>(prehash, signature) else {
        return false;
    };
    let key_table =
        C::key_point(key).and_then(|q| odd_multiples(&Jacobian::from_affine(&q), KEY_WIDTH));
    let (Some(key_table), generator) = (key_table, C::generator_table()) else {
        return false;
    };
    if generator.is_empty() {
        return false;
    }
    let acc = interleave(&[
        (generator, wnaf(&u1.to_repr(), GENERATOR_WIDTH)),
        (&key_table, wnaf(&u2.to_repr(), KEY_WIDTH)),
    ]);
    x_is_r::<C>(&acc, &r)
}

/// Verifications a key makes before it builds its split tables: natively its first two
/// (a new chain's root verifies twice, its own signature and the leaf's, and tables built
/// for that alone cost more than they save: COSE with a new chain 330 -> 392 µs when they
/// were built on the second); in the wasm component its first three, since some of its
/// hosts make an instance per call, where tables built for one request (and the
/// generator's) would be thrown away (measured with tables on the second verification
/// there: a COSE verification in a fresh instance 1.7 -> 2.7 ms), while the hosts that
/// keep instances (hsm-notary) verify a signer's key image after image.
const UNSPLIT_USES: u32 = if cfg!(target_family = "wasm") { 3 } else { 2 };

/// One table of odd multiples per 32-bit chunk.
type SplitTables<F> = Vec<Vec<Affine<F>>>;

/// wNAF width of a key's split tables (32 points per 32-bit chunk).
const SPLIT_KEY_WIDTH: usize = 7;
/// wNAF width of the generator's split tables (64 points per 32-bit chunk, built once).
const SPLIT_GENERATOR_WIDTH: usize = 8;

// wNAF digits are `i8`: a width past 8 has digits past ±127 (width 9 was tried, and
// refused valid signatures, before this was written down).
const _: () = assert!(
    GENERATOR_WIDTH <= 8 && KEY_WIDTH <= 8 && SPLIT_KEY_WIDTH <= 8 && SPLIT_GENERATOR_WIDTH <= 8
);
/// Bits per chunk of the split scalars.
const CHUNK_BITS: usize = 32;

/// A verifying key that remembers its split tables once it has verified a few times (see
/// [`UNSPLIT_USES`]), for keys
/// met again and again (a signer's leaf on many images, an intermediate's on many leaves,
/// the self-check of every envelope an HSM signs). With the scalars cut into 32-bit
/// chunks and a table per chunk, `u1·G + u2·Q` takes 32 doublings instead of 256, at the
/// price of building the key's tables once (about one verification's work). Clones share
/// the tables.
#[derive(Clone, Debug)]
pub struct Key<C: VartimeCurve> {
    key: VerifyingKey<C>,
    uses: Arc<AtomicU32>,
    tables: Arc<OnceLock<SplitTables<C::Field>>>,
}

impl<C> Key<C>
where
    C: VartimeCurve,
    Scalar<C>: Reduce<FieldBytes<C>>,
{
    /// The key, its tables built once it has verified [`UNSPLIT_USES`] times.
    pub fn new(key: VerifyingKey<C>) -> Self {
        Self {
            key,
            uses: Arc::default(),
            tables: Arc::default(),
        }
    }

    /// The key with its tables built now (so every verification takes the split path).
    pub fn precomputed(key: VerifyingKey<C>) -> Self {
        let this = Self::new(key);
        this.split_tables();
        this
    }

    /// The key itself.
    pub fn verifying_key(&self) -> &VerifyingKey<C> {
        &self.key
    }

    fn split_tables(&self) -> &[Vec<Affine<C::Field>>] {
        self.tables.get_or_init(|| {
            C::key_point(&self.key)
                .and_then(|q| split_tables(&q, C::CHUNKS, SPLIT_KEY_WIDTH))
                .unwrap_or_default()
        })
    }

    /// Whether `signature` is this key's signature of the digest `prehash`; decides as
    /// [`verify_prehash`] does.
    pub fn verify_prehash(&self, prehash: &[u8], signature: &Signature<C>) -> bool {
        if self.tables.get().is_none() && self.uses.fetch_add(1, Ordering::Relaxed) < UNSPLIT_USES {
            return verify_prehash(&self.key, prehash, signature);
        }
        let Some((u1, u2, r)) = scalars::<C>(prehash, signature) else {
            return false;
        };
        let (keys, generators) = (self.split_tables(), C::generator_split_tables());
        if keys.len() != C::CHUNKS || generators.len() != C::CHUNKS {
            return false;
        }
        let (u1, u2) = (u1.to_repr(), u2.to_repr());
        // Chunk j is the j-th CHUNK_BITS/8 bytes from the end of the big-endian encoding.
        let bytes = CHUNK_BITS / 8;
        let mut streams = Vec::with_capacity(2 * C::CHUNKS);
        for (j, (generator, key)) in generators.iter().zip(keys).enumerate() {
            let end = u1.len() - bytes * j;
            let chunk = end.saturating_sub(bytes)..end;
            streams.push((
                &generator[..],
                wnaf_chunk(&u1[chunk.clone()], SPLIT_GENERATOR_WIDTH),
            ));
            streams.push((&key[..], wnaf_chunk(&u2[chunk], SPLIT_KEY_WIDTH)));
        }
        x_is_r::<C>(&interleave(&streams), &r)
    }
}

#[cfg(test)]
mod tests {
    //! Both loops against the `ecdsa` crate (with `--features fiat-32` on the wasm build's
    //! 32-bit field too).
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::{Key, verify_prehash};

    /// Signatures whose `u1 = z/s` and `u2 = r/s` are chosen (small, or the key's negation),
    /// so the wNAF loop adds a point to itself, to its negation, or reaches infinity; valid
    /// ones (r is x((u1 + u2·d)·G)) and the same with r, s or the digest changed. Both
    /// arithmetics must decide each alike, and the valid ones must verify.
    macro_rules! crafted_cases {
        ($curve:ident $curve_type:ident) => {{
            use $curve::elliptic_curve::ff::{Field, PrimeField};
            use $curve::elliptic_curve::ops::Reduce;
            use $curve::elliptic_curve::sec1::ToSec1Point;
            use $curve::{ProjectivePoint, Scalar};
            let minus_one = -Scalar::ONE;
            let keys = [
                Scalar::ONE,
                Scalar::from(2u64),
                Scalar::from(3u64),
                minus_one,
                minus_one - Scalar::ONE,
                Scalar::from(0x1234_5678_9abc_def1u64).square().square(),
            ];
            let mut valid = 0;
            let mut checked = 0;
            for d in keys {
                let q = (ProjectivePoint::GENERATOR * d).to_affine();
                let key = ecdsa::VerifyingKey::<$curve::$curve_type>::from_affine(q).unwrap();
                let split = Key::precomputed(key);
                let mut pairs: Vec<(Scalar, Scalar)> = Vec::new();
                for a in 0..6u64 {
                    for b in 1..6u64 {
                        pairs.push((Scalar::from(a), Scalar::from(b)));
                    }
                }
                // u1 = -u2·d (infinity), u1 = u2·d (the two halves equal), and large u's.
                pairs.push((-(d * Scalar::from(3u64)), Scalar::from(3u64)));
                pairs.push((d * Scalar::from(5u64), Scalar::from(5u64)));
                pairs.push((minus_one, minus_one));
                // With d = n - 1 the partial sum is P + (-P) at bit 8, with d = 1 it is P + P,
                // and the loop goes on below: u1 = 81·2^8 + 5 has wNAF-7 digits -47 at 8, 1 at
                // 15 and 5 at 0; u2 = 81·2^8 + 1 has wNAF-4 digits 1 at 8, 5 at 12, 1 at 0.
                pairs.push((Scalar::from(81 * 256 + 5u64), Scalar::from(81 * 256 + 1u64)));
                pairs.push((Scalar::from(81 * 256 + 1u64), Scalar::from(81 * 256 + 1u64)));
                for (u1, u2) in pairs {
                    let point = (ProjectivePoint::GENERATOR * (u1 + u2 * d)).to_affine();
                    let encoded = point.to_sec1_point(false);
                    let r = match encoded.x() {
                        Some(x) => <Scalar as Reduce<_>>::reduce(x),
                        None => Scalar::ONE, // infinity: no valid r exists
                    };
                    if bool::from(Field::is_zero(&r)) {
                        continue;
                    }
                    let is_valid = encoded.x().is_some();
                    let s = r * Option::<Scalar>::from(Field::invert(&u2)).unwrap();
                    let z = u1 * s;
                    let tweaks = [
                        ("as built", r, s, z),
                        ("r + 1", r + Scalar::ONE, s, z),
                        ("s + 1", r, s + Scalar::ONE, z),
                        ("z + 1", r, s, z + Scalar::ONE),
                    ];
                    for (tweak, r, s, z) in tweaks {
                        let Ok(sig) = ecdsa::Signature::<$curve::$curve_type>::from_scalars(
                            r.to_repr(),
                            s.to_repr(),
                        ) else {
                            continue;
                        };
                        let digest = z.to_repr();
                        let what = format!(
                            "{} d={:?} u1={:?} u2={:?} {tweak}",
                            stringify!($curve),
                            d,
                            u1,
                            u2
                        );
                        let crate_says = {
                            use ecdsa::signature::hazmat::PrehashVerifier;
                            key.verify_prehash(&digest, &sig).is_ok()
                        };
                        let here = verify_prehash(&key, &digest, &sig);
                        assert_eq!(here, crate_says, "{what}");
                        let split_says = split.verify_prehash(&digest, &sig);
                        assert_eq!(split_says, crate_says, "{what}, split tables");
                        if tweak == "as built" {
                            assert_eq!(here, is_valid, "{what}");
                            valid += usize::from(here);
                        }
                        checked += 1;
                    }
                }
            }
            (valid, checked)
        }};
    }

    #[test]
    fn crafted_signatures_reach_every_exceptional_case_and_decide_as_the_ecdsa_crate() {
        let (valid, checked) = crafted_cases!(p256 NistP256);
        assert!(
            valid > 150 && checked > 600,
            "P-256: {valid} valid of {checked}"
        );
        let (valid, checked) = crafted_cases!(p384 NistP384);
        assert!(
            valid > 150 && checked > 600,
            "P-384: {valid} valid of {checked}"
        );
    }

    /// A signature whose point `R` has `n <= x < p`, so `r = x - n`: both loops must find
    /// it through `r + n` (there is a point with such an `x` among the first few tries; the
    /// key is chosen to make `R` the point: `Q = R - 5·G`, `u1 = 5`, `u2 = 1`).
    macro_rules! x_above_the_order {
        ($curve:ident $curve_type:ident) => {{
            use $curve::elliptic_curve::ff::PrimeField;
            use $curve::elliptic_curve::sec1::ToSec1Point;
            use $curve::{ProjectivePoint, PublicKey, Scalar};
            let n_minus_1 = (-Scalar::ONE).to_repr();
            // From n + 1 (x = n would make r = 0, which no signature has).
            let mut x = n_minus_1.to_vec();
            let last = x.len() - 1;
            x[last] = x[last].wrapping_add(1); // n - 1 is even: no carry
            let mut found = None;
            for _ in 0..64 {
                // x += 1, big-endian.
                for byte in x.iter_mut().rev() {
                    *byte = byte.wrapping_add(1);
                    if *byte != 0 {
                        break;
                    }
                }
                let compressed = [&[0x02u8][..], &x].concat();
                if let Ok(point) = PublicKey::from_sec1_bytes(&compressed) {
                    found = Some(point);
                    break;
                }
            }
            let r_point = found.expect("a point with n <= x < p");
            let x_bytes = r_point.as_affine().to_sec1_point(false);
            assert!(x_bytes.x().unwrap().as_slice() > n_minus_1.as_slice());
            let q = (ProjectivePoint::from(*r_point.as_affine())
                - ProjectivePoint::GENERATOR * Scalar::from(5u64))
            .to_affine();
            let key = ecdsa::VerifyingKey::<$curve::$curve_type>::from_affine(q).unwrap();
            let split = Key::precomputed(key);
            // r = x mod n (x < 2n); s = r/u2 = r; z = u1·s.
            let r =
                <Scalar as $curve::elliptic_curve::ops::Reduce<_>>::reduce(x_bytes.x().unwrap());
            for (r, expected) in [(r, true), (r + Scalar::ONE, false)] {
                let sig =
                    ecdsa::Signature::<$curve::$curve_type>::from_scalars(r.to_repr(), r.to_repr())
                        .unwrap();
                let digest = (Scalar::from(5u64) * r).to_repr();
                let crate_says = {
                    use ecdsa::signature::hazmat::PrehashVerifier;
                    key.verify_prehash(&digest, &sig).is_ok()
                };
                assert_eq!(crate_says, expected, "{}", stringify!($curve));
                assert_eq!(verify_prehash(&key, &digest, &sig), expected);
                assert_eq!(split.verify_prehash(&digest, &sig), expected);
            }
        }};
    }

    #[test]
    fn a_point_whose_x_is_at_least_the_order_verifies_through_r_plus_n() {
        x_above_the_order!(p256 NistP256);
        x_above_the_order!(p384 NistP384);
    }

    #[test]
    fn random_signatures_from_the_ecdsa_crate_verify_and_their_neighbours_do_not() {
        use ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
        use sha2::Digest;
        for i in 0..64u32 {
            let seed = sha2::Sha512::digest(i.to_be_bytes());
            let signer = p256::ecdsa::SigningKey::from_slice(&seed[..32]).unwrap();
            let digest = sha2::Sha256::digest(seed);
            let sig: p256::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
            let key = signer.verifying_key();
            let split = Key::precomputed(*key);
            assert!(verify_prehash(key, &digest, &sig));
            assert!(split.verify_prehash(&digest, &sig));
            let mut other = digest;
            other[i as usize % 32] ^= 1 << (i % 8);
            assert_eq!(
                verify_prehash(key, &other, &sig),
                key.verify_prehash(&other, &sig).is_ok()
            );
            assert!(!verify_prehash(key, &other, &sig));
            assert!(!split.verify_prehash(&other, &sig));

            let signer = p384::ecdsa::SigningKey::from_slice(&seed[..48]).unwrap();
            let digest = sha2::Sha384::digest(seed);
            let sig: p384::ecdsa::Signature = signer.sign_prehash(&digest).unwrap();
            let key = signer.verifying_key();
            let split = Key::precomputed(*key);
            assert!(verify_prehash(key, &digest, &sig));
            assert!(split.verify_prehash(&digest, &sig));
            let mut other = digest;
            other[i as usize % 48] ^= 1 << (i % 8);
            assert!(!verify_prehash(key, &other, &sig));
            assert!(!split.verify_prehash(&other, &sig));
        }
    }
}

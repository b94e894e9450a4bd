//! Variable-time Montgomery arithmetic modulo an odd RSA modulus, for the public
//! operation `s^e mod n` only.
//!
//! Why not `crypto-bigint`'s (which this replaced): its Montgomery multiplication is one
//! fused loop with a bounds-checked, allocating step per operation and no dedicated
//! squaring, and it always runs on 64-bit limbs, which wasm32 has to emulate with four
//! 32-bit multiplications each. Here a squaring computes each cross product once (about
//! three quarters of a multiplication's work), the scratch space is allocated once per
//! exponentiation, and the limb is the target's word: `u64` natively, `u32` on wasm32,
//! where `i64.mul` gives a full 32×32→64 product in one instruction. Nothing here is
//! constant-time; it only ever sees public data (a key, a signature).
//!
//! The algorithms are the textbook ones (Handbook of Applied Cryptography 14.16 for
//! squaring, 14.32 for Montgomery reduction), and the unit tests compare every result
//! with `crypto-bigint` on both limb widths.

macro_rules! montgomery {
    ($module:ident, $limb:ty, $wide:ty) => {
        pub mod $module {
            /// A machine word of the numbers below, least significant first.
            pub type Limb = $limb;
            type Wide = $wide;
            const BITS: u32 = Limb::BITS;

            /// An odd modulus `n > 1` with what Montgomery arithmetic modulo it needs.
            #[derive(Clone, Debug)]
            pub struct Modulus {
                /// `n`, little-endian limbs, the top one non-zero.
                n: Vec<Limb>,
                /// `-n⁻¹ mod 2^BITS`.
                n0_inv: Limb,
                /// `R² mod n` with `R = 2^(BITS·k)`, `k` the limb count.
                r2: Vec<Limb>,
                /// The modulus length in bytes.
                pub(super) byte_len: usize,
            }

            impl Modulus {
                /// The modulus of big-endian `bytes` (leading zeros allowed), or `None`
                /// unless it is odd and above one.
                pub fn new(bytes: &[u8]) -> Option<Self> {
                    let n = limbs_of(strip_zeros(bytes));
                    let low = *n.first()?;
                    if low & 1 == 0 || (n.len() == 1 && low == 1) {
                        return None;
                    }
                    // Newton's iteration doubles the correct low bits each time; an odd
                    // `n0` is its own inverse modulo 8.
                    let mut inv = low;
                    for _ in 0..5 {
                        inv = inv.wrapping_mul((2 as Limb).wrapping_sub(low.wrapping_mul(inv)));
                    }
                    let byte_len = strip_zeros(bytes).len();
                    let mut modulus = Self {
                        n0_inv: inv.wrapping_neg(),
                        r2: Vec::new(),
                        n,
                        byte_len,
                    };
                    modulus.r2 = modulus.compute_r2();
                    Some(modulus)
                }

                /// `R² mod n`. Doubling `2^(bits − 1)` (below `n`) up to `2^(BITS·k + k)`
                /// gives the Montgomery form of `2^k`; squaring that `log2(BITS)` times
                /// gives the Montgomery form of `2^(k·BITS) = R`, which is `R²`. About
                /// a hundred doublings and six squarings, where doubling all the way
                /// would take `BITS·k`.
                fn compute_r2(&self) -> Vec<Limb> {
                    let k = self.n.len();
                    let top = self.n[k - 1];
                    let bits = (k as u32 - 1) * BITS + (BITS - top.leading_zeros());
                    let mut x = vec![0; k];
                    x[((bits - 1) / BITS) as usize] = 1 << ((bits - 1) % BITS);
                    let target = BITS as usize * k + k;
                    for _ in (bits as usize - 1)..target {
                        let carry = shift_left_one(&mut x);
                        if carry != 0 || !less_than(&x, &self.n) {
                            subtract_in_place(&mut x, &self.n);
                        }
                    }
                    let mut scratch = vec![0; 2 * k];
                    let mut y = vec![0; k];
                    for _ in 0..BITS.trailing_zeros() {
                        self.square(&x, &mut scratch, &mut y);
                        core::mem::swap(&mut x, &mut y);
                    }
                    x
                }

                /// `base^e mod n` as big-endian bytes as long as the modulus, or
                /// `None` when `base` (big-endian, exactly the modulus's length) is not
                /// below `n` or `e` is zero.
                pub fn pow_vartime(&self, base: &[u8], e: u64) -> Option<Vec<u8>> {
                    if base.len() != self.byte_len || e == 0 {
                        return None;
                    }
                    let k = self.n.len();
                    let mut plain = limbs_of(base);
                    plain.resize(k, 0);
                    if plain.len() != k || !less_than(&plain, &self.n) {
                        return None;
                    }
                    // Two buffers take turns as operand and result, and one scratch
                    // area serves every product: no allocation inside the loop.
                    let mut scratch = vec![0; 2 * k];
                    let mut base_m = vec![0; k];
                    self.mul(&plain, &self.r2, &mut scratch, &mut base_m);
                    let top = 63 - e.leading_zeros();
                    let result = if top == 0 {
                        plain
                    } else {
                        let mut x = base_m.clone();
                        let mut y = vec![0; k];
                        for bit in (1..top).rev() {
                            self.square(&x, &mut scratch, &mut y);
                            if (e >> bit) & 1 == 1 {
                                self.mul(&y, &base_m, &mut scratch, &mut x);
                            } else {
                                core::mem::swap(&mut x, &mut y);
                            }
                        }
                        self.square(&x, &mut scratch, &mut y);
                        // The last step multiplies by the base in plain form (odd `e`) or
                        // by one: the Montgomery product leaves Montgomery form as it
                        // multiplies, so no separate conversion is needed.
                        let last = if e & 1 == 1 {
                            plain
                        } else {
                            let mut one = vec![0; k];
                            one[0] = 1;
                            one
                        };
                        self.mul(&y, &last, &mut scratch, &mut x);
                        x
                    };
                    Some(bytes_of(&result, self.byte_len))
                }

                /// `out = a·b·R⁻¹ mod n`, for `a, b < n`; `t` is scratch of `2k` limbs.
                fn mul(&self, a: &[Limb], b: &[Limb], t: &mut [Limb], out: &mut [Limb]) {
                    let k = self.n.len();
                    t.fill(0);
                    for (i, &ai) in a.iter().enumerate() {
                        let row = &mut t[i..i + k];
                        let mut carry: Limb = 0;
                        for (tj, &bj) in row.iter_mut().zip(b) {
                            (*tj, carry) = mac(*tj, ai, bj, carry);
                        }
                        t[i + k] = carry;
                    }
                    self.reduce(t, out);
                }

                /// `out = a²·R⁻¹ mod n`, for `a < n`: each cross product `aᵢ·aⱼ`
                /// once, doubled, plus the squares on the diagonal.
                fn square(&self, a: &[Limb], t: &mut [Limb], out: &mut [Limb]) {
                    let k = self.n.len();
                    t.fill(0);
                    for (i, &ai) in a.iter().enumerate() {
                        let row = &mut t[2 * i + 1..i + k];
                        let mut carry: Limb = 0;
                        for (tj, &aj) in row.iter_mut().zip(&a[i + 1..]) {
                            (*tj, carry) = mac(*tj, ai, aj, carry);
                        }
                        t[i + k] = carry;
                    }
                    let mut shifted_out: Limb = 0;
                    let mut carry: Wide = 0;
                    for (pair, &ai) in t.chunks_exact_mut(2).zip(a) {
                        let square = Wide::from(ai) * Wide::from(ai);
                        let (lo, hi) = (pair[0], pair[1]);
                        let lo2 = (lo << 1) | shifted_out;
                        let hi2 = (hi << 1) | (lo >> (BITS - 1));
                        shifted_out = hi >> (BITS - 1);
                        let v = Wide::from(lo2) + (square as Limb as Wide) + carry;
                        pair[0] = v as Limb;
                        let v = Wide::from(hi2) + (square >> BITS) + (v >> BITS);
                        pair[1] = v as Limb;
                        carry = v >> BITS;
                    }
                    self.reduce(t, out);
                }

                /// Montgomery reduction of `t < n·R` (`2k` limbs): `out = t·R⁻¹ mod n`.
                fn reduce(&self, t: &mut [Limb], out: &mut [Limb]) {
                    let k = self.n.len();
                    let mut pending: Limb = 0;
                    for i in 0..k {
                        let m = t[i].wrapping_mul(self.n0_inv);
                        let row = &mut t[i..i + k];
                        let mut carry: Limb = 0;
                        for (tj, &nj) in row.iter_mut().zip(&self.n) {
                            (*tj, carry) = mac(*tj, m, nj, carry);
                        }
                        let v = Wide::from(t[i + k]) + Wide::from(carry) + Wide::from(pending);
                        t[i + k] = v as Limb;
                        pending = (v >> BITS) as Limb;
                    }
                    // The result is below 2n: one subtraction at most.
                    out.copy_from_slice(&t[k..]);
                    if pending != 0 || !less_than(out, &self.n) {
                        subtract_in_place(out, &self.n);
                    }
                }
            }

            /// `t + a·b + carry` as (low, high) words; the sum always fits in `Wide`
            /// (`(2^B − 1)² + 2·(2^B − 1) = 2^2B − 1`). Natively the carry is added last
            /// on the low word, so the chain from one limb's carry to the next is one
            /// addition and its carry-out (78 against 90 µs per JWS); on wasm32, which has
            /// no carry flag, one 64-bit sum is faster (1.53 against 2.20 ms).
            #[inline(always)]
            fn mac(t: Limb, a: Limb, b: Limb, carry: Limb) -> (Limb, Limb) {
                if BITS == 64 {
                    let product = Wide::from(a) * Wide::from(b) + Wide::from(t);
                    let (low, overflow) = (product as Limb).overflowing_add(carry);
                    (low, (product >> BITS) as Limb + Limb::from(overflow))
                } else {
                    let sum = Wide::from(a) * Wide::from(b) + Wide::from(t) + Wide::from(carry);
                    (sum as Limb, (sum >> BITS) as Limb)
                }
            }

            fn strip_zeros(bytes: &[u8]) -> &[u8] {
                let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                &bytes[start..]
            }

            /// Little-endian limbs of big-endian `bytes`, as many as they need.
            fn limbs_of(bytes: &[u8]) -> Vec<Limb> {
                const SIZE: usize = core::mem::size_of::<Limb>();
                bytes
                    .rchunks(SIZE)
                    .map(|chunk| {
                        chunk
                            .iter()
                            .fold(0 as Limb, |acc, b| (acc << 8) | Limb::from(*b))
                    })
                    .collect()
            }

            /// The low `len` bytes of `limbs`, big-endian.
            fn bytes_of(limbs: &[Limb], len: usize) -> Vec<u8> {
                let mut out: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
                out.resize(len, 0);
                out.truncate(len);
                out.reverse();
                out
            }

            /// `a < b`, both `k` limbs.
            fn less_than(a: &[Limb], b: &[Limb]) -> bool {
                for (x, y) in a.iter().rev().zip(b.iter().rev()) {
                    if x != y {
                        return x < y;
                    }
                }
                false
            }

            /// `a -= b` modulo `2^(BITS·k)`.
            fn subtract_in_place(a: &mut [Limb], b: &[Limb]) {
                let mut borrow = false;
                for (x, &y) in a.iter_mut().zip(b) {
                    let (d, b1) = x.overflowing_sub(y);
                    let (d, b2) = d.overflowing_sub(Limb::from(borrow));
                    *x = d;
                    borrow = b1 || b2;
                }
            }

            /// `a <<= 1`, returning the bit shifted out.
            fn shift_left_one(a: &mut [Limb]) -> Limb {
                let mut carry: Limb = 0;
                for x in a.iter_mut() {
                    let out = *x >> (BITS - 1);
                    *x = (*x << 1) | carry;
                    carry = out;
                }
                carry
            }
        }
    };
}

#[cfg(any(test, target_pointer_width = "64"))]
montgomery!(limb64, u64, u128);
#[cfg(any(test, not(target_pointer_width = "64")))]
montgomery!(limb32, u32, u64);

#[cfg(not(target_pointer_width = "64"))]
pub use limb32::Modulus;
#[cfg(target_pointer_width = "64")]
pub use limb64::Modulus;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};
    use sha2::Digest;

    /// `len` pseudo-random bytes from `seed`.
    fn bytes(seed: &str, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut counter = 0u32;
        while out.len() < len {
            let mut h = sha2::Sha512::new();
            h.update(seed.as_bytes());
            h.update(counter.to_be_bytes());
            out.extend_from_slice(&h.finalize());
            counter += 1;
        }
        out.truncate(len);
        out
    }

    /// `base^e mod n` by crypto-bigint.
    fn expected(n: &[u8], base: &[u8], e: u64) -> Vec<u8> {
        let bits = (n.len() as u32 * 8).next_multiple_of(64);
        let modulus = Odd::new(BoxedUint::from_be_slice(n, bits).unwrap()).unwrap();
        let params = BoxedMontyParams::new_vartime(modulus);
        let b = BoxedMontyForm::new(BoxedUint::from_be_slice(base, bits).unwrap(), &params);
        let power = b.pow(&BoxedUint::from(e));
        let out = power.retrieve().to_be_bytes();
        out[out.len() - n.len()..].to_vec()
    }

    /// Moduli of many shapes: every length from one to five limbs of either width and
    /// RSA sizes, top bits from one to full, low limbs near zero and near all ones.
    fn moduli() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for len in (1..=20).chain([255, 256, 257, 384, 512]) {
            for shape in 0..6u8 {
                let mut n = bytes(&format!("n {len} {shape}"), len);
                match shape {
                    0 => {}
                    1 => n[0] = 0x01,
                    2 => n[0] = 0xff,
                    3 => n.iter_mut().skip(1).for_each(|b| *b = 0xff),
                    4 => n.iter_mut().skip(1).for_each(|b| *b = 0),
                    _ => n[0] |= 0x80,
                }
                if n[0] == 0 {
                    n[0] = 1;
                }
                *n.last_mut().unwrap() |= 1;
                if n == [1] {
                    continue;
                }
                out.push(n);
            }
        }
        out
    }

    fn check<M>(new: impl Fn(&[u8]) -> Option<M>, pow: impl Fn(&M, &[u8], u64) -> Option<Vec<u8>>) {
        let mut checked = 0;
        for n in moduli() {
            let modulus = new(&n).unwrap();
            let mut below = n.clone();
            // n − 1, n − 2 and 0, 1 are bases too.
            *below.last_mut().unwrap() -= 1;
            let mut bases = vec![below, vec![0; n.len()], {
                let mut one = vec![0; n.len()];
                *one.last_mut().unwrap() = 1;
                one
            }];
            for i in 0..4 {
                let mut b = bytes(&format!("b {n:?} {i}"), n.len());
                b[0] &= n[0].saturating_sub(1);
                bases.push(b);
            }
            for base in bases {
                for e in [1u64, 2, 3, 17, 65537, 65536, (1 << 33) - 1, 0x1_2345_6789] {
                    let here = pow(&modulus, &base, e).unwrap();
                    assert_eq!(
                        here,
                        expected(&n, &base, e),
                        "n={n:02x?} base={base:02x?} e={e}"
                    );
                    checked += 1;
                }
            }
            // Not below the modulus, wrong length, zero exponent: refused.
            assert!(pow(&modulus, &n, 3).is_none());
            assert!(pow(&modulus, &vec![0xff; n.len()], 3).is_none());
            assert!(pow(&modulus, &n[1..], 3).is_none() || n.len() == 1);
            assert!(pow(&modulus, &[&[0u8][..], &n].concat(), 3).is_none());
            assert!(pow(&modulus, &vec![0; n.len()], 0).is_none());
        }
        assert!(checked > 5000, "{checked}");
    }

    #[test]
    fn powers_match_crypto_bigint_on_64_bit_limbs() {
        check(
            super::limb64::Modulus::new,
            super::limb64::Modulus::pow_vartime,
        );
    }

    #[test]
    fn powers_match_crypto_bigint_on_32_bit_limbs() {
        check(
            super::limb32::Modulus::new,
            super::limb32::Modulus::pow_vartime,
        );
    }

    #[test]
    fn even_zero_and_one_moduli_are_refused() {
        for n in [&[][..], &[0], &[1], &[0, 1], &[2], &[1, 0], &[0xff, 0xfe]] {
            assert!(super::limb64::Modulus::new(n).is_none(), "{n:?}");
            assert!(super::limb32::Modulus::new(n).is_none(), "{n:?}");
        }
        assert_eq!(super::limb64::Modulus::new(&[0, 0, 3]).unwrap().byte_len, 1);
    }
}

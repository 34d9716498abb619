//! Exact fractions for the unrounded cost.
//!
//! A span costs `rate x usage / RateUnit`; with a 60 s unit that is often a
//! repeating decimal (0.2/min for 10 s is 0.0333...). A [`Decimal`] keeps
//! 28 digits of it, so adding pieces could differ in the 28th digit.
//! `exact` mode therefore sums spans as fractions and rounds once, exactly.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::money::{Rounding, RoundingMethod};

/// An exact amount `num / den`, always reduced, `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExactAmount {
    num: i128,
    den: u128,
}

/// Binary GCD: shifts and subtractions, no 128-bit division. Takes the
/// 64-bit path when both fit (the usual case: rates with a few decimals
/// over nanosecond units).
fn gcd(mut a: u128, mut b: u128) -> u128 {
    if let (Ok(x), Ok(y)) = (u64::try_from(a), u64::try_from(b)) {
        return u128::from(gcd64(x, y));
    }
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// [`gcd`] on 64 bits, by Euclid: costs and rates are full of common
/// factors of ten, so a few remainders finish it.
fn gcd64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// 10^0 ..= 10^38: every power of ten a `u128` holds.
const POW10: [u128; 39] = {
    let mut t = [1_u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(n: u32) -> Option<u128> {
    POW10.get(n as usize).copied()
}

/// `q % m` for `m < 2^32`, on 64-bit halves (no 128-bit division call).
fn mod_small(q: u128, m: u64) -> u64 {
    // Both casts keep exactly 64 bits: the high and low halves.
    #[allow(clippy::cast_possible_truncation)]
    let (hi, lo) = ((q >> 64) as u64, q as u64);
    if hi == 0 {
        return lo % m;
    }
    // 2^64 mod m, then (hi * 2^64 + lo) mod m; each product < m^2 < 2^64.
    let r64 = (u64::MAX % m + 1) % m;
    ((hi % m) * r64 % m + lo % m) % m
}

impl ExactAmount {
    /// Zero.
    pub const ZERO: ExactAmount = ExactAmount { num: 0, den: 1 };

    fn reduced(num: i128, den: u128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        if num == 0 {
            return Some(Self::ZERO);
        }
        if let (Ok(n), Ok(d)) = (u64::try_from(num.unsigned_abs()), u64::try_from(den)) {
            // 64-bit divisions instead of 128-bit library calls.
            let g = gcd64(n, d);
            let n = i128::from(n / g);
            return Some(ExactAmount {
                num: if num < 0 { -n } else { n },
                den: u128::from(d / g),
            });
        }
        let g = gcd(num.unsigned_abs(), den);
        let g = if g == 0 { 1 } else { g };
        let num = num / i128::try_from(g).ok()?;
        let den = den / g;
        Some(ExactAmount { num, den })
    }

    /// [`ExactAmount::reduced`] of a 64-bit fraction, `den > 0`: the same
    /// result, with no 128-bit arithmetic at all.
    fn reduced64(num: i64, den: u64) -> Self {
        if num == 0 {
            return Self::ZERO;
        }
        let g = gcd64(num.unsigned_abs(), den);
        let n = i128::from(num.unsigned_abs() / g);
        ExactAmount {
            num: if num < 0 { -n } else { n },
            den: u128::from(den / g),
        }
    }

    /// The decimal as a fraction.
    #[must_use]
    pub fn from_decimal(d: Decimal) -> Option<Self> {
        Self::reduced(d.mantissa(), pow10(d.scale())?)
    }

    /// `rate x len / unit`, exactly.
    pub(crate) fn ratio(rate: Decimal, len: u64, unit: u64) -> Option<Self> {
        // On 64 bits when everything fits (rates with a few decimals).
        if let Ok(m) = i64::try_from(rate.mantissa()) {
            let num = i64::try_from(len).ok().and_then(|l| m.checked_mul(l));
            let den = POW10
                .get(rate.scale() as usize)
                .and_then(|&p| u64::try_from(p).ok())
                .and_then(|p| p.checked_mul(unit))
                .filter(|&d| d > 0);
            if let (Some(num), Some(den)) = (num, den) {
                return Some(Self::reduced64(num, den));
            }
        }
        let num = rate.mantissa().checked_mul(i128::from(len))?;
        let den = pow10(rate.scale())?.checked_mul(u128::from(unit))?;
        Self::reduced(num, den)
    }

    /// The sum, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, o: Self) -> Option<Self> {
        // Both are reduced, so adding zero changes nothing.
        if o.num == 0 {
            return Some(self);
        }
        if self.num == 0 {
            return Some(o);
        }
        if let Some(sum) = self.add64(o) {
            return Some(sum);
        }
        if self.den == o.den {
            return Self::reduced(self.num.checked_add(o.num)?, self.den);
        }
        if let (Ok(d1), Ok(d2)) = (u64::try_from(self.den), u64::try_from(o.den)) {
            // The same sum with 64-bit divisions: lcm = d1 * (d2 / g).
            let g = gcd64(d1, d2);
            let (m1, m2) = (d2 / g, d1 / g);
            if let Some(lcm) = d1.checked_mul(m1) {
                let a = self.num.checked_mul(i128::from(m1))?;
                let b = o.num.checked_mul(i128::from(m2))?;
                return Self::reduced(a.checked_add(b)?, u128::from(lcm));
            }
        }
        let g = gcd(self.den, o.den);
        let lcm = (self.den / g).checked_mul(o.den)?;
        let a = self.num.checked_mul(i128::try_from(lcm / self.den).ok()?)?;
        let b = o.num.checked_mul(i128::try_from(lcm / o.den).ok()?)?;
        Self::reduced(a.checked_add(b)?, lcm)
    }

    /// `self x n`, exactly: with `self` reduced, only the common factor
    /// of `n` and the denominator needs dividing out (a GCD of two small
    /// numbers, where `rate x len / unit` works one out on the products).
    pub(crate) fn checked_mul_int(self, n: u64) -> Option<Self> {
        if self.num == 0 || n == 0 {
            return Some(Self::ZERO);
        }
        if let (Ok(num), Ok(den)) = (i64::try_from(self.num), u64::try_from(self.den)) {
            let g = gcd64(n, den);
            if let Some(num) = i64::try_from(n / g).ok().and_then(|k| num.checked_mul(k)) {
                return Some(ExactAmount {
                    num: i128::from(num),
                    den: u128::from(den / g),
                });
            }
        }
        let g = gcd(u128::from(n), self.den);
        let k = i128::try_from(u128::from(n) / g).ok()?;
        Some(ExactAmount {
            num: self.num.checked_mul(k)?,
            den: self.den / g,
        })
    }

    /// The sum of `terms`, reduced once at the end instead of after each
    /// addition (the same fraction as adding them one by one: the running
    /// denominator is the exact LCM of the terms' ones). `None` when a term
    /// or a step does not fit 64 bits; the caller then adds one by one.
    pub(crate) fn sum64(terms: impl IntoIterator<Item = Self>) -> Option<Self> {
        let (mut num, mut den) = (0_i64, 1_u64);
        for t in terms {
            let (n, d) = (i64::try_from(t.num).ok()?, u64::try_from(t.den).ok()?);
            if d == den {
                num = num.checked_add(n)?;
                continue;
            }
            // lcm = den * (d / g); the running sum and the term scaled to it.
            let g = gcd64(den, d);
            let (m_sum, m_term) = (d / g, den / g);
            let a = num.checked_mul(i64::try_from(m_sum).ok()?)?;
            let b = n.checked_mul(i64::try_from(m_term).ok()?)?;
            num = a.checked_add(b)?;
            den = den.checked_mul(m_sum)?;
        }
        Some(Self::reduced64(num, den))
    }

    /// The sum on 64 bits (numerators and denominators that fit, and no
    /// overflow on the way), or `None` to take the 128-bit path.
    fn add64(self, o: Self) -> Option<Self> {
        let (n1, n2) = (i64::try_from(self.num).ok()?, i64::try_from(o.num).ok()?);
        let (d1, d2) = (u64::try_from(self.den).ok()?, u64::try_from(o.den).ok()?);
        if d1 == d2 {
            return Some(Self::reduced64(n1.checked_add(n2)?, d1));
        }
        // lcm = d1 * (d2 / g).
        let g = gcd64(d1, d2);
        let (m1, m2) = (d2 / g, d1 / g);
        let lcm = d1.checked_mul(m1)?;
        let a = n1.checked_mul(i64::try_from(m1).ok()?)?;
        let b = n2.checked_mul(i64::try_from(m2).ok()?)?;
        Some(Self::reduced64(a.checked_add(b)?, lcm))
    }

    /// The nearest decimal (28 significant digits), for display: what
    /// `rust_decimal` gives for `num / den`, to the last digit and scale.
    #[must_use]
    pub fn to_decimal(self) -> Option<Decimal> {
        if let Some(d) = self.to_decimal_small() {
            return Some(d);
        }
        let n = Decimal::try_from_i128_with_scale(self.num, 0).ok()?;
        let d = Decimal::try_from_i128_with_scale(i128::try_from(self.den).ok()?, 0).ok()?;
        n.checked_div(d)
    }

    /// [`ExactAmount::to_decimal`] without a `Decimal` division, for a
    /// denominator under 2^32 and a value under 7 in size (every cost of a
    /// call's span, in practice): the same steps as `rust_decimal`'s
    /// division by a 32-bit divisor, on integers. The quotient takes 9
    /// more decimals at a time (then 1, up to 28) until the remainder is
    /// zero; at 28 decimals the remainder rounds it half to even; then
    /// trailing zeros are dropped the way `rust_decimal` drops them (8 at
    /// a time only while the low 32 bits are zero, then at most 4, 2 and
    /// 1), so even the scale is the same. `None` outside that range.
    fn to_decimal_small(self) -> Option<Decimal> {
        const MAX_SCALE: u32 = 28;
        let d = u64::try_from(self.den).ok().filter(|&d| d < 1 << 32)?;
        let n = u64::try_from(self.num.unsigned_abs())
            .ok()
            .filter(|&n| n < 7 * d)?;
        let (mut q, mut r) = (u128::from(n / d), n % d);
        let mut scale = 0_u32;
        if r == 0 {
            // An integer: no remainder, no rescaling.
            let q = i128::try_from(q).ok()?;
            return Some(Decimal::from_i128_with_scale(
                if self.num < 0 { -q } else { q },
                0,
            ));
        }
        while r != 0 {
            if scale == MAX_SCALE {
                // Half to even: r/d against one half.
                let twice = 2 * r;
                if twice > d || (twice == d && q & 1 == 1) {
                    q += 1;
                }
                break;
            }
            let p = if scale + 9 <= MAX_SCALE {
                9
            } else {
                MAX_SCALE - scale
            };
            let pow = 10_u64.pow(p);
            // r < d < 2^32 and pow <= 10^9 < 2^30: no overflow.
            let scaled = r * pow;
            q = q * u128::from(pow) + u128::from(scaled / d);
            r = scaled % d;
            scale += p;
        }
        if q == 0 {
            return None;
        }
        while q & 0xFFFF_FFFF == 0 && scale >= 8 && mod_small(q, 100_000_000) == 0 {
            q /= 100_000_000;
            scale -= 8;
        }
        for (pow, digits) in [(10_000, 4), (100, 2), (10, 1)] {
            if scale >= digits && mod_small(q, pow) == 0 {
                // On 64 bits when it fits: no 128-bit division call.
                q = match u64::try_from(q) {
                    Ok(q) => u128::from(q / pow),
                    Err(_) => q / u128::from(pow),
                };
                scale -= digits;
            }
        }
        let q = i128::try_from(q).ok()?;
        Some(Decimal::from_i128_with_scale(
            if self.num < 0 { -q } else { q },
            scale,
        ))
    }

    /// Rounds exactly to the rule's decimals and direction.
    pub(crate) fn round(self, rounding: Rounding) -> Option<Decimal> {
        let scale = rounding.decimals();
        let scaled = self.num.checked_mul(i128::try_from(pow10(scale)?).ok()?)?;
        let den = i128::try_from(self.den).ok()?;
        let (q, r) = match (i64::try_from(scaled), i64::try_from(den)) {
            // 64-bit division when it fits: same floor and remainder.
            (Ok(s), Ok(d)) => (i128::from(s.div_euclid(d)), i128::from(s.rem_euclid(d))),
            _ => (scaled.div_euclid(den), scaled.rem_euclid(den)), // floor, den > 0
        };
        let q = match rounding.method() {
            RoundingMethod::Down => q,
            RoundingMethod::Up if r > 0 => q.checked_add(1)?,
            RoundingMethod::Up => q,
            // Half away from zero, as Decimal's MidpointAwayFromZero.
            RoundingMethod::Middle => {
                let twice = r.checked_mul(2)?;
                if twice > den || (twice == den && q >= 0) {
                    q.checked_add(1)?
                } else {
                    q
                }
            }
        };
        Decimal::try_from_i128_with_scale(q, scale).ok()
    }
}

impl ExactAmount {
    /// How many whole `o` fit in `self` (floor), for `o > 0`.
    pub(crate) fn floor_div(self, o: Self) -> Option<i128> {
        if o.num <= 0 {
            return None;
        }
        let a = self.num.checked_mul(i128::try_from(o.den).ok()?)?;
        let b = o.num.checked_mul(i128::try_from(self.den).ok()?)?;
        Some(a.div_euclid(b))
    }

    /// `self - o`, or `None` on overflow.
    pub(crate) fn checked_sub(self, o: Self) -> Option<Self> {
        self.checked_add(ExactAmount {
            num: o.num.checked_neg()?,
            den: o.den,
        })
    }
}

impl PartialOrd for ExactAmount {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        let a = self.num.checked_mul(i128::try_from(o.den).ok()?)?;
        let b = o.num.checked_mul(i128::try_from(self.den).ok()?)?;
        Some(a.cmp(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn thirds_add_up_exactly() {
        // 0.2/min for 10 s = 1/30; three of them are 0.1 exactly.
        let third = ExactAmount::ratio(d("0.2"), 10, 60).unwrap();
        let sum = third
            .checked_add(third)
            .unwrap()
            .checked_add(third)
            .unwrap();
        assert_eq!(sum, ExactAmount::from_decimal(d("0.1")).unwrap());
        assert_eq!(third.to_decimal().unwrap().round_dp(6), d("0.033333"));
    }

    #[test]
    fn rounds_in_each_direction() {
        let x = ExactAmount::ratio(d("0.1"), 7, 60).unwrap(); // 0.011666...
        assert_eq!(
            x.round(Rounding::new(RoundingMethod::Up, 4)),
            Some(d("0.0117"))
        );
        assert_eq!(
            x.round(Rounding::new(RoundingMethod::Down, 4)),
            Some(d("0.0116"))
        );
        assert_eq!(
            x.round(Rounding::new(RoundingMethod::Middle, 4)),
            Some(d("0.0117"))
        );
        let half = ExactAmount::from_decimal(d("0.00005")).unwrap();
        assert_eq!(
            half.round(Rounding::new(RoundingMethod::Middle, 4)),
            Some(d("0.0001"))
        );
        let exact = ExactAmount::from_decimal(d("0.1234")).unwrap();
        assert_eq!(
            exact.round(Rounding::new(RoundingMethod::Up, 4)),
            Some(d("0.1234"))
        );
    }

    #[test]
    fn binary_gcd() {
        assert_eq!(gcd(0, 5), 5);
        assert_eq!(gcd(60_000_000_000, 1_000_000_000), 1_000_000_000);
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(17, 5), 1);
    }

    #[test]
    fn compares_across_denominators() {
        let a = ExactAmount::ratio(d("1"), 1, 3).unwrap();
        let b = ExactAmount::from_decimal(d("0.3333")).unwrap();
        assert!(a > b);
        assert_eq!(
            ExactAmount::from_decimal(d("0.50")),
            ExactAmount::from_decimal(d("0.5"))
        );
    }

    /// The slow paths the fast ones must agree with.
    fn reduced_slow(num: i128, den: u128) -> ExactAmount {
        let g = gcd(num.unsigned_abs(), den).max(1);
        let num = num / i128::try_from(g).unwrap();
        if num == 0 {
            return ExactAmount::ZERO;
        }
        ExactAmount { num, den: den / g }
    }

    /// The `Decimal` division `to_decimal_small` stands in for.
    fn decimal_div(x: ExactAmount) -> Option<Decimal> {
        let n = Decimal::try_from_i128_with_scale(x.num, 0).ok()?;
        let d = Decimal::try_from_i128_with_scale(i128::try_from(x.den).ok()?, 0).ok()?;
        n.checked_div(d)
    }

    fn same_decimal(a: Option<Decimal>, b: Option<Decimal>) -> bool {
        // Same value, same digits, same scale, same sign.
        a.map(|d| (d.mantissa(), d.scale(), d.is_sign_negative()))
            == b.map(|d| (d.mantissa(), d.scale(), d.is_sign_negative()))
    }

    #[test]
    fn small_quotients_match_decimal_division_digit_for_digit() {
        // Every fraction num/den with den up to 400 and |num/den| < 7, and
        // the denominators of rates over nanosecond units.
        let mut checked = 0;
        for den in 1_u128..=400 {
            for num in -(7 * den as i128)..(7 * den as i128) {
                let x = ExactAmount::reduced(num, den).unwrap();
                assert!(same_decimal(x.to_decimal(), decimal_div(x)), "{num}/{den}");
                checked += u32::from(x.to_decimal_small().is_some());
            }
        }
        assert!(checked > 500_000);
        for (num, den) in [
            (59, 2000),
            (1, 3),
            (2, 3),
            (1, 7),
            (7, 60_000),
            (413, 60_000),
        ] {
            let x = ExactAmount::reduced(num, den).unwrap();
            assert!(x.to_decimal_small().is_some());
            assert!(same_decimal(x.to_decimal(), decimal_div(x)), "{num}/{den}");
        }
    }

    proptest::proptest! {
        #[test]
        fn small_quotients_agree_with_decimal_division(
            den in 1_u64..(1 << 32),
            frac in 0_u64..7_000_000,
            neg in proptest::bool::ANY,
            twos in 0_u32..32,
            fives in 0_u32..14,
        ) {
            // Denominators of every size, and powers of 2 and 5 times a
            // little, whose quotients end (many trailing zeros).
            for den in [den, (1_u64 << twos) * 5_u64.pow(fives) % (1 << 32), 3 * (1_u64 << twos.min(29))] {
                let den = u128::from(den.max(1));
                // frac / 10^6 of the way to 7.
                let num = i128::try_from(u128::from(frac) * den / 1_000_000).unwrap();
                let num = if neg { -num } else { num };
                for k in [num, num + 1, num - 1, 1, -1] {
                    let Some(x) = ExactAmount::reduced(k, den) else { continue };
                    proptest::prop_assert!(same_decimal(x.to_decimal(), decimal_div(x)), "{}/{}", k, den);
                }
            }
        }

        #[test]
        fn sum_reduced_once_is_the_sum_step_by_step(
            terms in proptest::collection::vec(
                (-1_000_000_000_i64..1_000_000_000, proptest::sample::select(vec![1u64, 3, 7, 20, 60, 1000, 2000, 3600, 60_000_000_000])),
                0..6,
            ),
        ) {
            let terms: Vec<ExactAmount> = terms
                .into_iter()
                .map(|(n, d)| ExactAmount::reduced(n.into(), d.into()).unwrap())
                .collect();
            let step = terms.iter().try_fold(ExactAmount::ZERO, |acc, t| acc.checked_add(*t));
            if let Some(once) = ExactAmount::sum64(terms.iter().copied()) {
                proptest::prop_assert_eq!(Some(once), step);
            }
        }

        #[test]
        fn increment_cost_times_n_is_the_span_ratio(
            mantissa in -10_000_000_i64..10_000_000,
            scale in 0u32..9,
            unit_s in proptest::sample::select(vec![1u64, 6, 30, 60, 3600]),
            inc_s in proptest::sample::select(vec![1u64, 6, 10, 30, 60]),
            n in 0u64..100_000,
        ) {
            let rate = Decimal::new(mantissa, scale);
            let (unit, inc) = (unit_s * 1_000_000_000, inc_s * 1_000_000_000);
            let one = ExactAmount::ratio(rate, inc, unit).unwrap();
            proptest::prop_assert_eq!(one.checked_mul_int(n), ExactAmount::ratio(rate, n * inc, unit));
            let big = ExactAmount::reduced(i128::from(mantissa) << 70, 7).unwrap();
            let want = ExactAmount::reduced(big.num * i128::from(n), big.den);
            proptest::prop_assert_eq!(big.checked_mul_int(n), want);
        }

        #[test]
        fn fast_paths_agree_with_128_bit_division(
            num in proptest::num::i128::ANY,
            num64 in proptest::num::i64::ANY,
            twos in 0u32..40,
            fives in 0u32..30,
            other in proptest::sample::select(vec![1u128, 1, 1, 3, 7, 9, 11, 60, 3600]),
            big in proptest::bool::ANY,
            dec in 0u32..19,
            method in proptest::sample::select(vec![RoundingMethod::Up, RoundingMethod::Down, RoundingMethod::Middle]),
        ) {
            let num = if big { num >> 20 } else { i128::from(num64 >> 8) };
            let Some(den) = 5_u128.checked_pow(fives).and_then(|f| f.checked_shl(twos)).and_then(|x| x.checked_mul(other)) else {
                return Ok(());
            };
            let x = ExactAmount::reduced(num, den).unwrap();
            proptest::prop_assert_eq!(x, reduced_slow(num, den));
            let r = Rounding::new(method, dec);
            let scaled = x.num.checked_mul(i128::try_from(pow10(dec).unwrap()).unwrap());
            let slow_round = scaled.map(|s| {
                let d = i128::try_from(x.den).unwrap();
                (s.div_euclid(d), s.rem_euclid(d), d)
            });
            if let (Some(got), Some((q, rem, d))) = (x.round(r), slow_round) {
                let want = match method {
                    RoundingMethod::Down => q,
                    RoundingMethod::Up => q + i128::from(rem > 0),
                    RoundingMethod::Middle => q + i128::from(rem * 2 > d || (rem * 2 == d && q >= 0)),
                };
                proptest::prop_assert_eq!(got, Decimal::try_from_i128_with_scale(want, dec).unwrap());
            }
            let y = ExactAmount::reduced(num64.into(), 60_000_000_000).unwrap();
            let sum = x.checked_add(y);
            let slow_sum = (|| {
                let g = gcd(x.den, y.den);
                let lcm = (x.den / g).checked_mul(y.den)?;
                let a = x.num.checked_mul(i128::try_from(lcm / x.den).ok()?)?;
                let b = y.num.checked_mul(i128::try_from(lcm / y.den).ok()?)?;
                Some(reduced_slow(a.checked_add(b)?, lcm))
            })();
            proptest::prop_assert_eq!(sum, slow_sum);
        }
    }
}

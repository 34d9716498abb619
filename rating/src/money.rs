//! Money and rounding: exact decimals, never floats.
//!
//! Amounts and rates are [`Money`], a newtype over [`Decimal`]. Every
//! tariff carries a [`Rounding`] (method and decimals, from the
//! DestinationRates file). [`RoundingMode`] picks how a call's cost is
//! rounded: once at the end ([`RoundingMode::Exact`]) or the way CGRateS
//! does it, step by step ([`RoundingMode::Cgrates`]).

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// An amount of money (or a price per rate unit), exact to 28 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Wraps a decimal amount.
    #[must_use]
    pub const fn new(amount: Decimal) -> Self {
        Money(amount)
    }

    /// The amount as a decimal.
    #[must_use]
    pub const fn amount(self) -> Decimal {
        self.0
    }

    /// Parses a plain decimal (`0.2`, `12`, `-1`) or scientific notation
    /// (`1e-3`), as CGRateS's float parsing accepts both.
    #[must_use]
    pub fn parse(s: &str) -> Option<Money> {
        let s = s.trim();
        Decimal::from_str_exact(s)
            .or_else(|_| Decimal::from_scientific(s))
            .ok()
            .map(Money)
    }

    /// The amount rounded with `rounding`.
    #[must_use]
    pub fn rounded(self, rounding: Rounding) -> Money {
        Money(rounding.apply(self.0))
    }

    /// The exact digits of the amount, without trailing zeros: `0.7`, `1.4`,
    /// `0`. This is what JSON output prints as a number.
    #[must_use]
    pub fn to_plain_string(self) -> String {
        self.0.normalize().to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

impl From<Decimal> for Money {
    fn from(d: Decimal) -> Self {
        Money(d)
    }
}

/// A DestinationRates RoundingMethod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundingMethod {
    /// `*up`: towards +infinity (ceiling) at the given decimals.
    Up,
    /// `*down`: towards -infinity (floor) at the given decimals.
    Down,
    /// `*middle`: half up (0.00005 at 4 decimals becomes 0.0001).
    Middle,
}

impl RoundingMethod {
    /// The CGRateS spelling: `*up`, `*down`, `*middle`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMethod::Up => "*up",
            RoundingMethod::Down => "*down",
            RoundingMethod::Middle => "*middle",
        }
    }
}

impl FromStr for RoundingMethod {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "*up" => Ok(RoundingMethod::Up),
            "*down" => Ok(RoundingMethod::Down),
            "*middle" => Ok(RoundingMethod::Middle),
            _ => Err(()),
        }
    }
}

/// How a tariff rounds: a method and a number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rounding {
    method: RoundingMethod,
    decimals: u32,
}

/// The largest RoundingDecimals a plan may ask for. Costs keep 28
/// significant digits, so 18 decimals leave room for amounts up to 10^10.
pub const MAX_ROUNDING_DECIMALS: u32 = 18;

impl Rounding {
    /// A rounding rule; `decimals` is clamped to [`MAX_ROUNDING_DECIMALS`].
    #[must_use]
    pub fn new(method: RoundingMethod, decimals: u32) -> Self {
        Rounding {
            method,
            decimals: decimals.min(MAX_ROUNDING_DECIMALS),
        }
    }

    /// The method.
    #[must_use]
    pub fn method(self) -> RoundingMethod {
        self.method
    }

    /// The number of decimals kept.
    #[must_use]
    pub fn decimals(self) -> u32 {
        self.decimals
    }

    /// Rounds exactly: the decimal is cut at `decimals` places in the
    /// method's direction, with no tolerance.
    #[must_use]
    pub fn apply(self, d: Decimal) -> Decimal {
        let strategy = match self.method {
            RoundingMethod::Up => RoundingStrategy::ToPositiveInfinity,
            RoundingMethod::Down => RoundingStrategy::ToNegativeInfinity,
            RoundingMethod::Middle => RoundingStrategy::MidpointAwayFromZero,
        };
        d.round_dp_with_strategy(self.decimals, strategy)
    }

    /// Rounds the way CGRateS's `utils.Round` does: scale by 10^decimals,
    /// split off the fraction, then `*up` takes the ceiling only when that
    /// fraction is at least 10^-max(7, decimals) (CGRateS's guard against
    /// float noise), `*middle` takes the ceiling when it is at least 0.5,
    /// `*down` takes the floor.
    #[must_use]
    pub fn apply_cgrates(self, d: Decimal) -> Decimal {
        let pow = Decimal::from_i128_with_scale(10_i128.pow(self.decimals), 0);
        let Some(scaled) = d.checked_mul(pow) else {
            // Too large to scale: nothing CGRateS's float could keep either.
            return self.apply(d);
        };
        let frac = scaled.fract();
        let rounder = match self.method {
            RoundingMethod::Up => {
                let max_prec = self.decimals.max(7);
                if frac >= Decimal::new(1, max_prec) {
                    scaled.ceil()
                } else {
                    scaled.floor()
                }
            }
            RoundingMethod::Down => scaled.floor(),
            RoundingMethod::Middle => {
                if frac >= Decimal::new(5, 1) {
                    scaled.ceil()
                } else {
                    scaled.floor()
                }
            }
        };
        rounder / pow
    }
}

/// How a call's cost is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoundingMode {
    /// Compute exactly in decimals and round once, at the end, with the
    /// plan's method and decimals.
    #[default]
    Exact,
    /// Reproduce CGRateS to the digit: each timespan's cost and each
    /// increment's cost are rounded to 5 decimals with `*middle` before
    /// summing, and the sum is rounded with CGRateS's `utils.Round`.
    Cgrates,
}

impl RoundingMode {
    /// `exact` or `cgrates`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMode::Exact => "exact",
            RoundingMode::Cgrates => "cgrates",
        }
    }
}

impl FromStr for RoundingMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "exact" => Ok(RoundingMode::Exact),
            "cgrates" => Ok(RoundingMode::Cgrates),
            _ => Err(()),
        }
    }
}

/// CGRateS's `globalRoundingDecimals` (config `rounding_decimals`, default 5):
/// the rounding it applies to every timespan and increment cost.
pub(crate) const CGRATES_STEP: Rounding = Rounding {
    method: RoundingMethod::Middle,
    decimals: 5,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn exact_rounding_methods() {
        // 0.12341 at 4 decimals: *up -> 0.1235, *down -> 0.1234, *middle -> 0.1234
        let x = d("0.12341");
        assert_eq!(Rounding::new(RoundingMethod::Up, 4).apply(x), d("0.1235"));
        assert_eq!(Rounding::new(RoundingMethod::Down, 4).apply(x), d("0.1234"));
        assert_eq!(
            Rounding::new(RoundingMethod::Middle, 4).apply(x),
            d("0.1234")
        );
        // 0.12345 is a midpoint: *middle goes up to 0.1235.
        assert_eq!(
            Rounding::new(RoundingMethod::Middle, 4).apply(d("0.12345")),
            d("0.1235")
        );
        // Exact *up has no tolerance: 0.10000000001 -> 0.1001.
        assert_eq!(
            Rounding::new(RoundingMethod::Up, 4).apply(d("0.10000000001")),
            d("0.1001")
        );
    }

    #[test]
    fn cgrates_up_ignores_float_noise_below_ten_to_minus_seven() {
        // scaled = 1000.000000001: fraction 1e-9 < 1e-7 -> floor -> 0.1
        let up = Rounding::new(RoundingMethod::Up, 4);
        assert_eq!(up.apply_cgrates(d("0.1000000000001")), d("0.1"));
        // scaled = 1000.0000001: fraction 1e-7 -> ceil -> 0.1001
        assert_eq!(up.apply_cgrates(d("0.10000000001")), d("0.1001"));
        assert_eq!(up.apply_cgrates(d("0.12341")), d("0.1235"));
    }

    #[test]
    fn cgrates_middle_and_down() {
        let mid = CGRATES_STEP;
        // 0.000015 * 10^5 = 1.5 -> ceil -> 0.00002
        assert_eq!(mid.apply_cgrates(d("0.000015")), d("0.00002"));
        // 0.0000149 -> 1.49 -> floor -> 0.00001
        assert_eq!(mid.apply_cgrates(d("0.0000149")), d("0.00001"));
        let down = Rounding::new(RoundingMethod::Down, 2);
        assert_eq!(down.apply_cgrates(d("1.239")), d("1.23"));
    }

    #[test]
    fn money_parses_plain_and_scientific_and_prints_exact_digits() {
        assert_eq!(Money::parse("0.2").unwrap().amount(), d("0.2"));
        assert_eq!(Money::parse("1e-3").unwrap().amount(), d("0.001"));
        assert!(Money::parse("abc").is_none());
        assert_eq!(Money::new(d("0.7000")).to_plain_string(), "0.7");
        assert_eq!(Money::new(d("10")).to_string(), "10");
    }

    #[test]
    fn names_parse_back() {
        for m in [
            RoundingMethod::Up,
            RoundingMethod::Down,
            RoundingMethod::Middle,
        ] {
            assert_eq!(m.as_str().parse::<RoundingMethod>(), Ok(m));
        }
        assert!("*ceil".parse::<RoundingMethod>().is_err());
        assert_eq!("cgrates".parse::<RoundingMode>(), Ok(RoundingMode::Cgrates));
        assert_eq!(RoundingMode::default(), RoundingMode::Exact);
    }
}

//! `Money`: an amount in yuan (CNY), always a `rust_decimal::Decimal`, never a float.
//!
//! The wire carries money as scaled integers at three resolutions (unit prices at 0.00001
//! yuan, transaction amounts at 0.0001 yuan, balances at 0.01 yuan). Decoding is always
//! exact; encoding fails when the amount has more digits than the field can carry, so a value
//! is never silently truncated. Rounding happens only where a caller asks for it, through
//! [`Money::round_to`] with a named [`RoundingRule`].

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The scales (number of decimal places) money uses on the wire and in the ledger.
pub mod scale {
    /// Unit prices in billing models: 0.00001 yuan.
    pub const UNIT_PRICE: u32 = 5;
    /// Amounts in transaction records and real-time data: 0.0001 yuan.
    pub const AMOUNT: u32 = 4;
    /// Balances and ledger postings: 0.01 yuan (one fen).
    pub const CENT: u32 = 2;
}

/// How an exact amount is turned into one with fewer decimal places.
///
/// Voltline rounds billed amounts once, half away from zero ("四舍五入", what drivers and
/// operators in the market expect), at the point documented by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingRule {
    /// 0.005 → 0.01, -0.005 → -0.01.
    HalfAwayFromZero,
    /// Banker's rounding: 0.005 → 0.00, 0.015 → 0.02.
    HalfEven,
    /// Toward zero: never bills more than the exact amount.
    Down,
}

impl RoundingRule {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingRule::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
            RoundingRule::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingRule::Down => RoundingStrategy::ToZero,
        }
    }
}

/// An amount of money in yuan. Exact; may be negative (refunds, reversals, payouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

/// Money that cannot be represented in a given field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// More decimal places than the field carries.
    #[error("{value} yuan has more than {scale} decimal places; round it first")]
    TooPrecise { value: Decimal, scale: u32 },
    /// Outside the range of the field.
    #[error("{value} yuan is outside the field's range {min}..={max}")]
    OutOfRange {
        value: Decimal,
        min: Decimal,
        max: Decimal,
    },
    /// Not a decimal number.
    #[error("'{0}' is not an amount of money; write a decimal number of yuan such as 12.50")]
    Parse(String),
}

impl Money {
    /// Zero yuan.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Wraps an exact decimal amount of yuan.
    pub const fn from_yuan(amount: Decimal) -> Money {
        Money(amount)
    }

    /// `units` × 10^-`scale` yuan, exactly (e.g. `from_scaled(12345, 4)` is 1.2345 yuan).
    pub fn from_scaled(units: i64, scale: u32) -> Money {
        assert!(
            scale <= 28,
            "rust_decimal supports at most 28 decimal places"
        );
        Money(Decimal::new(units, scale))
    }

    /// Whole fen (0.01 yuan).
    pub fn from_cents(cents: i64) -> Money {
        Money::from_scaled(cents, scale::CENT)
    }

    /// The amount in yuan.
    pub const fn yuan(self) -> Decimal {
        self.0
    }

    /// The amount as an integer count of 10^-`scale` yuan, if it is exactly representable and
    /// fits in an `i64`.
    pub fn to_scaled(self, scale: u32) -> Result<i64, MoneyError> {
        let factor = Decimal::from_i128_with_scale(10i128.pow(scale), 0);
        let scaled = self.0.checked_mul(factor).ok_or(MoneyError::OutOfRange {
            value: self.0,
            min: Decimal::from(i64::MIN),
            max: Decimal::from(i64::MAX),
        })?;
        if !scaled.fract().is_zero() {
            return Err(MoneyError::TooPrecise {
                value: self.0,
                scale,
            });
        }
        i64::try_from(scaled).map_err(|_| MoneyError::OutOfRange {
            value: self.0,
            min: Decimal::from(i64::MIN),
            max: Decimal::from(i64::MAX),
        })
    }

    /// The amount as an unsigned count of 10^-`scale` yuan that fits in `max_units`.
    pub fn to_scaled_unsigned(self, scale: u32, max_units: u64) -> Result<u64, MoneyError> {
        let units = self.to_scaled(scale)?;
        if units < 0 || units as u64 > max_units {
            return Err(MoneyError::OutOfRange {
                value: self.0,
                min: Decimal::ZERO,
                max: Decimal::new(max_units.min(i64::MAX as u64) as i64, scale),
            });
        }
        Ok(units as u64)
    }

    /// Rounds to `scale` decimal places by `rule`. The only rounding entry point.
    pub fn round_to(self, scale: u32, rule: RoundingRule) -> Money {
        Money(self.0.round_dp_with_strategy(scale, rule.strategy()))
    }

    /// Rounds to whole fen, half away from zero: the rule for every billed amount.
    pub fn round_cents(self) -> Money {
        self.round_to(scale::CENT, RoundingRule::HalfAwayFromZero)
    }

    /// `self × factor`, exact.
    pub fn times(self, factor: Decimal) -> Money {
        Money(self.0 * factor)
    }

    /// True when below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// True when exactly zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Normalised (trailing zeros removed) for display and comparison of text forms.
    pub fn normalize(self) -> Money {
        Money(self.0.normalize())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Decimal::from_str_exact(trimmed)
            .map(Money)
            .map_err(|_| MoneyError::Parse(s.to_owned()))
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 -= rhs.0;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn scaled_round_trip_is_exact() {
        let m = Money::from_scaled(123_456, scale::UNIT_PRICE);
        assert_eq!(m.yuan(), dec!(1.23456));
        assert_eq!(m.to_scaled(scale::UNIT_PRICE), Ok(123_456));
        assert_eq!(m.to_scaled(6), Ok(1_234_560));
    }

    #[test]
    fn too_precise_amount_is_refused_not_truncated() {
        let m = Money::from_yuan(dec!(0.123456));
        assert!(matches!(
            m.to_scaled(scale::UNIT_PRICE),
            Err(MoneyError::TooPrecise { .. })
        ));
    }

    #[test]
    fn unsigned_range_is_checked() {
        assert!(Money::from_yuan(dec!(-0.01))
            .to_scaled_unsigned(2, u32::MAX as u64)
            .is_err());
        assert!(Money::from_yuan(dec!(42949672.96))
            .to_scaled_unsigned(2, u32::MAX as u64)
            .is_err());
        assert_eq!(
            Money::from_yuan(dec!(42949672.95)).to_scaled_unsigned(2, u32::MAX as u64),
            Ok(u32::MAX as u64)
        );
    }

    #[test]
    fn rounding_rules_differ_only_at_midpoints() {
        let m = Money::from_yuan(dec!(0.125));
        assert_eq!(m.round_cents().yuan(), dec!(0.13));
        assert_eq!(m.round_to(2, RoundingRule::HalfEven).yuan(), dec!(0.12));
        assert_eq!(m.round_to(2, RoundingRule::Down).yuan(), dec!(0.12));
        assert_eq!((-m).round_cents().yuan(), dec!(-0.13));
    }

    #[test]
    fn serde_uses_decimal_strings() {
        let m: Money = serde_json::from_str("\"1.50\"").unwrap();
        assert_eq!(m, Money::from_cents(150));
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"1.50\"");
        assert!(serde_json::from_str::<Money>("\"1.5x\"").is_err());
    }
}

//! `Energy` and `Power`: integer quantities at a resolution finer than every wire scale, so
//! that every value a charger sends converts exactly and arithmetic never rounds.
//!
//! * `Energy` counts milliwatt-hours (1 mWh = 0.000001 kWh). The wire uses 0.0001 kWh
//!   (= 100 mWh); a value that is not a multiple of the wire step cannot be encoded.
//! * `Power` counts watts, signed: negative is discharging (V2G). The wire uses 0.1 kW
//!   (= 100 W).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A quantity that cannot be represented in a given wire field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a multiple of the field's step.
    #[error("{value} is not a multiple of the field's step {step}")]
    NotAMultiple { value: String, step: String },
    /// Outside the field's range.
    #[error("{value} is outside the field's range {min}..={max}")]
    OutOfRange {
        value: String,
        min: String,
        max: String,
    },
    /// Not a number in the expected unit.
    #[error("'{text}' is not a valid {what}; write a decimal number such as 12.5")]
    Parse { text: String, what: &'static str },
}

/// An amount of electrical energy, in milliwatt-hours. May be negative only as a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Energy(i64);

/// Milliwatt-hours in one wire step of 0.0001 kWh.
pub const ENERGY_WIRE_STEP_MWH: i64 = 100;

impl Energy {
    /// No energy.
    pub const ZERO: Energy = Energy(0);

    /// From milliwatt-hours.
    pub const fn from_mwh(mwh: i64) -> Energy {
        Energy(mwh)
    }

    /// From watt-hours.
    pub const fn from_wh(wh: i64) -> Energy {
        Energy(wh * 1_000)
    }

    /// From the wire's 0.0001 kWh units. Always exact.
    pub const fn from_wire_units(units: u64) -> Energy {
        // u64 wire fields are at most 5 bytes (40 bits); × 100 cannot overflow i64.
        Energy(units as i64 * ENERGY_WIRE_STEP_MWH)
    }

    /// Milliwatt-hours.
    pub const fn mwh(self) -> i64 {
        self.0
    }

    /// Exact kilowatt-hours.
    pub fn kwh(self) -> Decimal {
        Decimal::new(self.0, 6)
    }

    /// From exact kilowatt-hours; fails if finer than 1 mWh.
    pub fn from_kwh(kwh: Decimal) -> Result<Energy, QuantityError> {
        let mwh = kwh * Decimal::from(1_000_000);
        if !mwh.fract().is_zero() {
            return Err(QuantityError::NotAMultiple {
                value: format!("{kwh} kWh"),
                step: "0.000001 kWh".into(),
            });
        }
        i64::try_from(mwh)
            .map(Energy)
            .map_err(|_| QuantityError::OutOfRange {
                value: format!("{kwh} kWh"),
                min: i64::MIN.to_string(),
                max: i64::MAX.to_string(),
            })
    }

    /// The value in wire units of 0.0001 kWh, if exact and within `0..=max_units`.
    pub fn to_wire_units(self, max_units: u64) -> Result<u64, QuantityError> {
        if self.0 % ENERGY_WIRE_STEP_MWH != 0 {
            return Err(QuantityError::NotAMultiple {
                value: format!("{} kWh", self.kwh()),
                step: "0.0001 kWh".into(),
            });
        }
        let units = self.0 / ENERGY_WIRE_STEP_MWH;
        if units < 0 || units as u64 > max_units {
            return Err(QuantityError::OutOfRange {
                value: format!("{} kWh", self.kwh()),
                min: "0 kWh".into(),
                max: format!("{} kWh", Decimal::new(max_units as i64, 4)),
            });
        }
        Ok(units as u64)
    }

    /// Rounds down to the wire step (what a meter register shows).
    pub const fn floor_to_wire_step(self) -> Energy {
        Energy(self.0.div_euclid(ENERGY_WIRE_STEP_MWH) * ENERGY_WIRE_STEP_MWH)
    }

    /// `self - rhs`, or `None` on overflow.
    pub fn checked_sub(self, rhs: Energy) -> Option<Energy> {
        self.0.checked_sub(rhs.0).map(Energy)
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Energy) -> Option<Energy> {
        self.0.checked_add(rhs.0).map(Energy)
    }
}

impl fmt::Display for Energy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kWh", self.kwh().normalize())
    }
}

impl Add for Energy {
    type Output = Energy;
    fn add(self, rhs: Energy) -> Energy {
        Energy(self.0 + rhs.0)
    }
}

impl Sub for Energy {
    type Output = Energy;
    fn sub(self, rhs: Energy) -> Energy {
        Energy(self.0 - rhs.0)
    }
}

impl AddAssign for Energy {
    fn add_assign(&mut self, rhs: Energy) {
        self.0 += rhs.0;
    }
}

impl SubAssign for Energy {
    fn sub_assign(&mut self, rhs: Energy) {
        self.0 -= rhs.0;
    }
}

impl Neg for Energy {
    type Output = Energy;
    fn neg(self) -> Energy {
        Energy(-self.0)
    }
}

impl Sum for Energy {
    fn sum<I: Iterator<Item = Energy>>(iter: I) -> Energy {
        iter.fold(Energy::ZERO, Add::add)
    }
}

/// Serialised as a decimal string of kWh ("12.3456").
impl Serialize for Energy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.kwh().normalize())
    }
}

impl<'de> Deserialize<'de> for Energy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Energy {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kwh = Decimal::from_str_exact(s.trim()).map_err(|_| QuantityError::Parse {
            text: s.to_owned(),
            what: "energy in kWh",
        })?;
        Energy::from_kwh(kwh)
    }
}

/// Electrical power in watts. Negative means energy flows out of the vehicle (discharge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Power(i64);

/// Watts in one wire step of 0.1 kW.
pub const POWER_WIRE_STEP_W: i64 = 100;

impl Power {
    /// No power.
    pub const ZERO: Power = Power(0);

    /// From watts.
    pub const fn from_watts(w: i64) -> Power {
        Power(w)
    }

    /// From whole kilowatts.
    pub const fn from_kw(kw: i64) -> Power {
        Power(kw * 1_000)
    }

    /// From the wire's 0.1 kW units. Always exact.
    pub const fn from_wire_units(units: i64) -> Power {
        Power(units * POWER_WIRE_STEP_W)
    }

    /// Watts.
    pub const fn watts(self) -> i64 {
        self.0
    }

    /// Exact kilowatts.
    pub fn kw(self) -> Decimal {
        Decimal::new(self.0, 3)
    }

    /// The value in wire units of 0.1 kW, if exact and within `min..=max`.
    pub fn to_wire_units(self, min: i64, max: i64) -> Result<i64, QuantityError> {
        if self.0 % POWER_WIRE_STEP_W != 0 {
            return Err(QuantityError::NotAMultiple {
                value: format!("{} kW", self.kw()),
                step: "0.1 kW".into(),
            });
        }
        let units = self.0 / POWER_WIRE_STEP_W;
        if units < min || units > max {
            return Err(QuantityError::OutOfRange {
                value: format!("{} kW", self.kw()),
                min: format!("{} kW", Decimal::new(min, 1)),
                max: format!("{} kW", Decimal::new(max, 1)),
            });
        }
        Ok(units)
    }

    /// Energy delivered at this power for `millis` milliseconds (truncated to 1 mWh).
    pub fn energy_over_ms(self, millis: u64) -> Energy {
        // W × ms / 3_600_000 = Wh; × 1000 = mWh  →  W × ms / 3_600.
        let mwh = (self.0 as i128 * millis as i128) / 3_600;
        Energy::from_mwh(mwh as i64)
    }

    /// Absolute value.
    pub const fn abs(self) -> Power {
        Power(self.0.abs())
    }
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kW", self.kw().normalize())
    }
}

impl Add for Power {
    type Output = Power;
    fn add(self, rhs: Power) -> Power {
        Power(self.0 + rhs.0)
    }
}

impl Sub for Power {
    type Output = Power;
    fn sub(self, rhs: Power) -> Power {
        Power(self.0 - rhs.0)
    }
}

impl Sum for Power {
    fn sum<I: Iterator<Item = Power>>(iter: I) -> Power {
        iter.fold(Power::ZERO, Add::add)
    }
}

/// Serialised as a decimal string of kW ("7.4").
impl Serialize for Power {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.kw().normalize())
    }
}

impl<'de> Deserialize<'de> for Power {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let parse_err = || QuantityError::Parse {
            text: text.to_string(),
            what: "power in kW",
        };
        let kw = Decimal::from_str_exact(text.trim())
            .map_err(|_| serde::de::Error::custom(parse_err()))?;
        let w = kw * Decimal::from(1_000);
        if !w.fract().is_zero() {
            return Err(serde::de::Error::custom(format!(
                "{kw} kW is finer than 1 W"
            )));
        }
        i64::try_from(w)
            .map(Power)
            .map_err(|_| serde::de::Error::custom(parse_err()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn wire_energy_is_exact_both_ways() {
        let e = Energy::from_wire_units(123_456);
        assert_eq!(e.kwh(), dec!(12.3456));
        assert_eq!(e.to_wire_units(u32::MAX as u64), Ok(123_456));
    }

    #[test]
    fn energy_finer_than_wire_step_is_refused() {
        assert!(matches!(
            Energy::from_mwh(150).to_wire_units(u32::MAX as u64),
            Err(QuantityError::NotAMultiple { .. })
        ));
        assert_eq!(
            Energy::from_mwh(150).floor_to_wire_step(),
            Energy::from_mwh(100)
        );
    }

    #[test]
    fn energy_range_is_checked() {
        assert!(Energy::from_mwh(-100).to_wire_units(10).is_err());
        assert!(Energy::from_mwh(1_100).to_wire_units(10).is_err());
    }

    #[test]
    fn power_over_time_gives_energy() {
        // 7 kW for 15 s = 29.1666 Wh → 29 166 mWh.
        assert_eq!(
            Power::from_kw(7).energy_over_ms(15_000),
            Energy::from_mwh(29_166)
        );
        assert_eq!(
            Power::from_kw(-10).energy_over_ms(3_600_000),
            Energy::from_wh(-10_000)
        );
    }

    #[test]
    fn serde_in_kwh_and_kw() {
        let e: Energy = serde_json::from_str("\"1.5\"").unwrap();
        assert_eq!(e, Energy::from_wh(1_500));
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"1.5\"");
        let p: Power = serde_json::from_str("\"-7.4\"").unwrap();
        assert_eq!(p, Power::from_watts(-7_400));
        assert_eq!(p.to_wire_units(-1000, 1000), Ok(-74));
    }
}

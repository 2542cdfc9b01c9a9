//! Electrical and battery quantities at the resolutions chargers report them: `Voltage`
//! (0.1 V), `Current` (0.1 A, signed), `Temperature` (1 °C) and `Soc` (1 %).
//!
//! Each stores its wire resolution as an integer, so decoding is exact and encoding checks
//! only the range.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::energy::QuantityError;

macro_rules! tenths_quantity {
    ($(#[$doc:meta])* $name:ident, $repr:ty, $unit:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name($repr);

        impl $name {
            /// From tenths of the unit (the wire form).
            pub const fn from_tenths(tenths: $repr) -> Self {
                Self(tenths)
            }

            /// Tenths of the unit.
            pub const fn tenths(self) -> $repr {
                self.0
            }

            /// The exact value in the unit.
            pub fn value(self) -> Decimal {
                Decimal::new(self.0 as i64, 1)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.value(), $unit)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.value())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                let parse_err = || QuantityError::Parse { text: text.to_string(), what: $what };
                let v = Decimal::from_str_exact(text.trim())
                    .map_err(|_| serde::de::Error::custom(parse_err()))?;
                let tenths = v * Decimal::TEN;
                if !tenths.fract().is_zero() {
                    return Err(serde::de::Error::custom(QuantityError::NotAMultiple {
                        value: format!("{v} {}", $unit),
                        step: format!("0.1 {}", $unit),
                    }));
                }
                <$repr>::try_from(tenths)
                    .map(Self)
                    .map_err(|_| serde::de::Error::custom(parse_err()))
            }
        }
    };
}

tenths_quantity!(
    /// Voltage in tenths of a volt (225.1 V is 2251).
    Voltage, u32, "V", "voltage in V"
);
tenths_quantity!(
    /// Current in tenths of an ampere (signed: some BMS fields are offset to allow negatives).
    Current, i32, "A", "current in A"
);

/// A temperature in whole degrees Celsius. The wire adds an offset of 50 (0 means -50 °C).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Temperature(i16);

impl Temperature {
    /// From degrees Celsius.
    pub const fn from_celsius(c: i16) -> Self {
        Temperature(c)
    }

    /// Degrees Celsius.
    pub const fn celsius(self) -> i16 {
        self.0
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} °C", self.0)
    }
}

/// State of charge in whole percent, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Soc(u8);

impl Soc {
    /// Empty.
    pub const EMPTY: Soc = Soc(0);
    /// Full.
    pub const FULL: Soc = Soc(100);

    /// A state of charge, or `None` above 100 %.
    pub const fn new(percent: u8) -> Option<Soc> {
        if percent <= 100 {
            Some(Soc(percent))
        } else {
            None
        }
    }

    /// Percent.
    pub const fn percent(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Soc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        Soc::new(v).ok_or_else(|| {
            serde::de::Error::custom(format!("state of charge {v} % is above 100 %"))
        })
    }
}

impl fmt::Display for Soc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} %", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voltage_is_exact_in_tenths() {
        let v = Voltage::from_tenths(2251);
        assert_eq!(v.to_string(), "225.1 V");
        let back: Voltage = serde_json::from_str("\"225.1\"").unwrap();
        assert_eq!(back, v);
        assert!(serde_json::from_str::<Voltage>("\"225.15\"").is_err());
        assert!(serde_json::from_str::<Voltage>("\"-1\"").is_err());
    }

    #[test]
    fn soc_above_full_is_refused() {
        assert_eq!(Soc::new(100), Some(Soc::FULL));
        assert_eq!(Soc::new(101), None);
        assert!(serde_json::from_str::<Soc>("101").is_err());
    }
}

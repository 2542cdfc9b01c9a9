//! [`TimeOfDay`]: a local wall-clock time at minute resolution, the unit of a tariff's
//! daily schedule. It names a reading of the wall clock, never an instant: which instant it
//! means on a given day is decided in [`schedule`](super::schedule), with the DST rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::model::TariffError;

/// A local wall-clock time of day at minute resolution, `00:00` to `23:59`.
/// Written `"HH:MM"` in text and serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// 00:00, where every schedule starts.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    /// Minutes in a day.
    pub const MINUTES_PER_DAY: u16 = 1_440;

    /// `hour:minute`, with `hour` in 0..=23 and `minute` in 0..=59.
    pub fn new(hour: u8, minute: u8) -> Result<TimeOfDay, TariffError> {
        if hour > 23 || minute > 59 {
            return Err(TariffError::BadTimeOfDay {
                text: format!("{hour:02}:{minute:02}"),
            });
        }
        Ok(TimeOfDay(u16::from(hour) * 60 + u16::from(minute)))
    }

    /// Minutes after midnight, in 0..1440.
    pub fn from_minutes(minutes: u16) -> Result<TimeOfDay, TariffError> {
        if minutes >= Self::MINUTES_PER_DAY {
            return Err(TariffError::BadTimeOfDay {
                text: format!("{minutes} minutes after midnight"),
            });
        }
        Ok(TimeOfDay(minutes))
    }

    /// Minutes after midnight.
    pub const fn minutes(self) -> u16 {
        self.0
    }

    /// The hour, 0..=23.
    pub const fn hour(self) -> u8 {
        (self.0 / 60) as u8
    }

    /// The minute within the hour, 0..=59.
    pub const fn minute(self) -> u8 {
        (self.0 % 60) as u8
    }

    /// The same wall-clock time as a `jiff` civil time.
    pub fn to_civil(self) -> jiff::civil::Time {
        jiff::civil::time(self.hour() as i8, self.minute() as i8, 0, 0)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl FromStr for TimeOfDay {
    type Err = TariffError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TariffError::BadTimeOfDay { text: s.to_owned() };
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let digits = |t: &str, max_len: usize| {
            (!t.is_empty() && t.len() <= max_len && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<u8>().ok())
                .flatten()
        };
        let hour = digits(h, 2).ok_or_else(bad)?;
        let minute = if m.len() == 2 { digits(m, 2) } else { None }.ok_or_else(bad)?;
        TimeOfDay::new(hour, minute).map_err(|_| bad())
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

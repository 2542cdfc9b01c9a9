//! CP56Time2a, the 7-byte timestamp of IEC 60870-5-104 that YKC uses:
//! milliseconds (u16 LE, 0..=59999), minutes (bits 0-5; bit 7 = IV "invalid"), hours (bits
//! 0-4; bit 7 = SU "summer time"), day of month (bits 0-4) with day of week (bits 5-7), month
//! (bits 0-3), years since 2000 (bits 0-6).
//!
//! The time is the pile's local wall-clock time; it carries no zone. `Cp56Time` keeps the
//! seven bytes it was decoded from (after validating them), so re-encoding is byte-exact even
//! for the flag and reserved bits. Seven zero bytes mean "not set" and are accepted as such.

use std::fmt;

use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

/// Why seven bytes are not a valid CP56Time2a.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("CP56Time2a {part} is {value}, allowed {allowed}")]
pub struct BadCp56 {
    /// Which part is wrong (milliseconds, minute, hour, day, month, year, date).
    pub part: &'static str,
    /// The value found.
    pub value: u16,
    /// What is allowed.
    pub allowed: &'static str,
    /// Byte index of the part within the 7 bytes.
    pub index: usize,
}

/// A validated CP56Time2a timestamp.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cp56Time([u8; 7]);

impl Cp56Time {
    /// All zeros: "no time" (e.g. a field a pile leaves empty).
    pub const UNSET: Cp56Time = Cp56Time([0; 7]);

    /// Validates seven wire bytes.
    pub fn from_bytes(b: [u8; 7]) -> Result<Cp56Time, BadCp56> {
        if b == [0; 7] {
            return Ok(Cp56Time::UNSET);
        }
        let ms = u16::from_le_bytes([b[0], b[1]]);
        let check = |ok: bool, part, value: u16, allowed, index| {
            if ok {
                Ok(())
            } else {
                Err(BadCp56 {
                    part,
                    value,
                    allowed,
                    index,
                })
            }
        };
        check(ms <= 59_999, "milliseconds", ms, "0..=59999", 0)?;
        let minute = b[2] & 0x3F;
        check(minute <= 59, "minute", minute as u16, "0..=59", 2)?;
        let hour = b[3] & 0x1F;
        check(hour <= 23, "hour", hour as u16, "0..=23", 3)?;
        let day = b[4] & 0x1F;
        check((1..=31).contains(&day), "day", day as u16, "1..=31", 4)?;
        let month = b[5] & 0x0F;
        check(
            (1..=12).contains(&month),
            "month",
            month as u16,
            "1..=12",
            5,
        )?;
        let year = b[6] & 0x7F;
        check(year <= 99, "year", year as u16, "0..=99 (2000-2099)", 6)?;
        let t = Cp56Time(b);
        check(
            t.to_civil().is_some(),
            "date",
            day as u16,
            "a day that exists in that month",
            4,
        )?;
        Ok(t)
    }

    /// From a civil (wall-clock) date-time in 2000..=2099; flags clear, weekday filled in.
    pub fn from_civil(dt: DateTime) -> Option<Cp56Time> {
        let year = dt.year();
        if !(2000..=2099).contains(&year) {
            return None;
        }
        let ms = (dt.second() as u32 * 1000 + dt.subsec_nanosecond() as u32 / 1_000_000) as u16;
        let weekday = dt.weekday().to_monday_one_offset() as u8; // 1 = Monday .. 7 = Sunday
        let [m0, m1] = ms.to_le_bytes();
        Some(Cp56Time([
            m0,
            m1,
            dt.minute() as u8,
            dt.hour() as u8,
            (weekday << 5) | dt.day() as u8,
            dt.month() as u8,
            (year - 2000) as u8,
        ]))
    }

    /// The wall-clock date-time, or `None` when unset.
    pub fn to_civil(self) -> Option<DateTime> {
        if self.is_unset() {
            return None;
        }
        let b = self.0;
        let ms = u16::from_le_bytes([b[0], b[1]]);
        DateTime::new(
            2000 + (b[6] & 0x7F) as i16,
            (b[5] & 0x0F) as i8,
            (b[4] & 0x1F) as i8,
            (b[3] & 0x1F) as i8,
            (b[2] & 0x3F) as i8,
            (ms / 1000) as i8,
            (ms % 1000) as i32 * 1_000_000,
        )
        .ok()
    }

    /// True for the all-zero "no time" value.
    pub fn is_unset(self) -> bool {
        self.0 == [0; 7]
    }

    /// The IV ("invalid") flag.
    pub fn invalid_flag(self) -> bool {
        self.0[2] & 0x80 != 0
    }

    /// The SU ("summer time") flag.
    pub fn summer_flag(self) -> bool {
        self.0[3] & 0x80 != 0
    }

    /// The wire bytes.
    pub const fn as_bytes(&self) -> &[u8; 7] {
        &self.0
    }
}

impl fmt::Debug for Cp56Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cp56Time({self})")
    }
}

impl fmt::Display for Cp56Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_civil() {
            None => f.write_str("unset"),
            Some(dt) => write!(f, "{}", dt.strftime("%Y-%m-%dT%H:%M:%S%.3f")),
        }
    }
}

/// JSON form: `"2020-01-06T18:03:42.000"` (wall clock, no zone), `null` when unset, or
/// `{"raw": "<14 hex digits>"}` when flag or reserved bits are set so that the text form
/// would lose them.
impl Serialize for Cp56Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_civil() {
            None => s.serialize_none(),
            Some(dt) if Cp56Time::from_civil(dt) == Some(*self) => s.collect_str(self),
            Some(_) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("raw", &hex::encode_upper(self.0))?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Cp56Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Raw { raw: String },
            Unset(()),
        }
        use serde::de::Error;
        match Form::deserialize(d)? {
            Form::Unset(()) => Ok(Cp56Time::UNSET),
            Form::Text(t) => {
                let dt: DateTime = t.parse().map_err(|e| {
                    D::Error::custom(format!(
                        "'{t}' is not a wall-clock time like 2020-01-06T18:03:42: {e}"
                    ))
                })?;
                Cp56Time::from_civil(dt)
                    .ok_or_else(|| D::Error::custom(format!("{t} is outside 2000..=2099")))
            }
            Form::Raw { raw } => {
                let bytes: [u8; 7] = hex::decode(&raw)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| D::Error::custom("raw CP56Time2a must be 14 hex digits"))?;
                Cp56Time::from_bytes(bytes).map_err(D::Error::custom)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn civil_round_trip() {
        let dt = date(2020, 1, 6).at(18, 3, 42, 250_000_000);
        let t = Cp56Time::from_civil(dt).unwrap();
        assert_eq!(t.to_civil(), Some(dt));
        assert_eq!(Cp56Time::from_bytes(*t.as_bytes()), Ok(t));
        assert_eq!(t.to_string(), "2020-01-06T18:03:42.250");
    }

    #[test]
    fn out_of_range_parts_are_refused() {
        let good = *Cp56Time::from_civil(date(2024, 2, 29).at(0, 0, 0, 0))
            .unwrap()
            .as_bytes();
        let mut b = good;
        b[2] = 60;
        assert_eq!(Cp56Time::from_bytes(b).unwrap_err().part, "minute");
        let mut b = good;
        b[5] = 13;
        assert_eq!(Cp56Time::from_bytes(b).unwrap_err().part, "month");
        let mut b = good;
        b[6] = 23; // 2023-02-29 does not exist
        assert_eq!(Cp56Time::from_bytes(b).unwrap_err().part, "date");
        let mut b = good;
        b[0] = 0x60;
        b[1] = 0xEA; // 60000 ms
        assert_eq!(Cp56Time::from_bytes(b).unwrap_err().part, "milliseconds");
    }

    #[test]
    fn flags_survive_and_force_raw_json() {
        let mut b = *Cp56Time::from_civil(date(2024, 6, 1).at(12, 0, 0, 0))
            .unwrap()
            .as_bytes();
        b[3] |= 0x80;
        let t = Cp56Time::from_bytes(b).unwrap();
        assert!(t.summer_flag());
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("raw"), "{json}");
        let back: Cp56Time = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn unset_is_null() {
        assert_eq!(serde_json::to_string(&Cp56Time::UNSET).unwrap(), "null");
        let back: Cp56Time = serde_json::from_str("null").unwrap();
        assert!(back.is_unset());
    }
}

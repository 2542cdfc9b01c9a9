//! The validated [`Tariff`] value: periods with prices, a daily schedule, a time zone.
//!
//! A `Tariff` can only be built through [`Tariff::new`] (or [`TariffSpec`], its plain serde
//! form), which checks every rule below, so any `Tariff` in hand is valid: the rest of the
//! module never re-checks and never panics on one. Deserialising validates too.

use std::fmt;

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits;
use super::time_of_day::TimeOfDay;
use crate::domain::Money;

/// Identifies one version of an operator's tariff. Settlement prices a session with the
/// version in force at its start, so versions are never edited in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TariffVersion(pub u32);

impl fmt::Display for TariffVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The two prices per kWh in force at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPrice {
    /// Electricity price, yuan per kWh.
    pub energy_price: Money,
    /// Service fee, yuan per kWh.
    pub service_fee: Money,
}

impl UnitPrice {
    /// Energy price plus service fee, yuan per kWh.
    pub fn total(&self) -> Money {
        self.energy_price + self.service_fee
    }
}

/// One period of a tariff: a label ("sharp", "peak", "flat", "valley", or any other) and
/// its two prices per kWh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffPeriod {
    /// A unique, non-empty label of at most 32 characters.
    pub name: String,
    /// Electricity price, yuan per kWh, non-negative.
    pub energy_price: Money,
    /// Service fee, yuan per kWh, non-negative.
    pub service_fee: Money,
}

impl TariffPeriod {
    /// A period with the given label and prices (checked when the tariff is built).
    pub fn new(name: impl Into<String>, energy_price: Money, service_fee: Money) -> Self {
        TariffPeriod {
            name: name.into(),
            energy_price,
            service_fee,
        }
    }

    /// Both prices.
    pub fn unit_price(&self) -> UnitPrice {
        UnitPrice {
            energy_price: self.energy_price,
            service_fee: self.service_fee,
        }
    }
}

/// From `start` (local wall-clock time) until the next entry's start, `period` is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEntry {
    /// When the period starts, in the tariff's time zone.
    pub start: TimeOfDay,
    /// Index into the tariff's periods.
    pub period: usize,
}

impl ScheduleEntry {
    /// `period` from `start` on.
    pub fn new(start: TimeOfDay, period: usize) -> Self {
        ScheduleEntry { start, period }
    }
}

/// A validated time-of-use tariff. Fields are private so that every value obeys:
/// 1..=48 periods with unique non-empty names and prices in 0..=10 000 yuan/kWh with at most
/// 8 decimal places; 1..=288 schedule entries, the first at 00:00, starts strictly
/// increasing, each naming an existing period; the last entry runs to the next midnight; a
/// time zone with an IANA name (so that the tariff serialises and means the same everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TariffSpec", into = "TariffSpec")]
pub struct Tariff {
    pub(super) version: TariffVersion,
    pub(super) time_zone: TimeZone,
    pub(super) periods: Vec<TariffPeriod>,
    pub(super) schedule: Vec<ScheduleEntry>,
}

/// The plain, unvalidated form of a [`Tariff`]: what a config file or an edge↔cloud message
/// carries. Convert with `Tariff::try_from(spec)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffSpec {
    pub version: TariffVersion,
    /// IANA time zone name, e.g. `"Asia/Shanghai"`.
    pub time_zone: String,
    pub periods: Vec<TariffPeriod>,
    pub schedule: Vec<ScheduleEntry>,
}

/// Why a tariff was refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("a tariff needs at least one period; add one")]
    NoPeriods,
    #[error(
        "a tariff has at most {max} periods, this one has {count}; merge periods with equal prices"
    )]
    TooManyPeriods { count: usize, max: usize },
    #[error("period {index} has an empty name; give it a label such as \"peak\"")]
    EmptyPeriodName { index: usize },
    #[error("period {index}'s name is longer than {max} characters; shorten it")]
    PeriodNameTooLong { index: usize, max: usize },
    #[error("two periods are named \"{name}\"; period names must be unique")]
    DuplicatePeriodName { name: String },
    #[error("period \"{period}\" has a negative {which} ({price} yuan/kWh); prices must be zero or more")]
    NegativePrice {
        period: String,
        which: &'static str,
        price: Money,
    },
    #[error("period \"{period}\" has a {which} of {price} yuan/kWh, above the limit of {max}; check the unit (yuan per kWh)")]
    PriceTooHigh {
        period: String,
        which: &'static str,
        price: Money,
        max: i64,
    },
    #[error("period \"{period}\" has a {which} of {price} yuan/kWh with more than {max_decimals} decimal places; round it")]
    PriceTooPrecise {
        period: String,
        which: &'static str,
        price: Money,
        max_decimals: u32,
    },
    #[error("the schedule is empty; start it with an entry at 00:00")]
    EmptySchedule,
    #[error("the schedule has {count} entries, at most {max} are allowed")]
    TooManyScheduleEntries { count: usize, max: usize },
    #[error("the schedule starts at {start}; its first entry must start at 00:00")]
    ScheduleMustStartAtMidnight { start: TimeOfDay },
    #[error("schedule entry {index} starts at {start}, not after the previous entry's {previous}; list entries in increasing time order without repeats")]
    ScheduleNotIncreasing {
        index: usize,
        start: TimeOfDay,
        previous: TimeOfDay,
    },
    #[error("schedule entry {index} names period {period}, but there are only {period_count} periods (numbered from 0)")]
    UnknownPeriod {
        index: usize,
        period: usize,
        period_count: usize,
    },
    #[error("the time zone has no IANA name; use a named zone such as \"Asia/Shanghai\", not a fixed offset")]
    TimeZoneWithoutName,
    #[error(
        "'{name}' is not a known IANA time zone ({reason}); use a name such as \"Asia/Shanghai\""
    )]
    UnknownTimeZone { name: String, reason: String },
    #[error("'{text}' is not a time of day; write HH:MM between 00:00 and 23:59")]
    BadTimeOfDay { text: String },
    #[error(
        "the billing model has a loss ratio of {pct}%, which a tariff cannot carry; set it to 0"
    )]
    LossRatioUnsupported { pct: u8 },
}

impl Tariff {
    /// Builds a tariff, checking every rule listed on [`Tariff`].
    pub fn new(
        version: TariffVersion,
        time_zone: TimeZone,
        periods: Vec<TariffPeriod>,
        schedule: Vec<ScheduleEntry>,
    ) -> Result<Tariff, TariffError> {
        if time_zone.iana_name().is_none() {
            return Err(TariffError::TimeZoneWithoutName);
        }
        check_periods(&periods)?;
        check_schedule(&schedule, periods.len())?;
        Ok(Tariff {
            version,
            time_zone,
            periods,
            schedule,
        })
    }

    /// The version.
    pub fn version(&self) -> TariffVersion {
        self.version
    }

    /// The zone the schedule's wall-clock times are read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The zone's IANA name.
    pub fn time_zone_name(&self) -> &str {
        // Checked in `new`: every tariff's zone has a name.
        self.time_zone.iana_name().unwrap_or("UTC")
    }

    /// All periods, in the order schedule entries and cost lines refer to them.
    pub fn periods(&self) -> &[TariffPeriod] {
        &self.periods
    }

    /// One period, if `index` exists.
    pub fn period(&self, index: usize) -> Option<&TariffPeriod> {
        self.periods.get(index)
    }

    /// The daily schedule, first entry at 00:00, starts strictly increasing.
    pub fn schedule(&self) -> &[ScheduleEntry] {
        &self.schedule
    }

    /// The plain serde form.
    pub fn to_spec(&self) -> TariffSpec {
        TariffSpec::from(self.clone())
    }
}

fn check_periods(periods: &[TariffPeriod]) -> Result<(), TariffError> {
    if periods.is_empty() {
        return Err(TariffError::NoPeriods);
    }
    if periods.len() > limits::MAX_PERIODS {
        return Err(TariffError::TooManyPeriods {
            count: periods.len(),
            max: limits::MAX_PERIODS,
        });
    }
    for (index, p) in periods.iter().enumerate() {
        if p.name.trim().is_empty() {
            return Err(TariffError::EmptyPeriodName { index });
        }
        if p.name.chars().count() > limits::MAX_PERIOD_NAME_CHARS {
            return Err(TariffError::PeriodNameTooLong {
                index,
                max: limits::MAX_PERIOD_NAME_CHARS,
            });
        }
        if periods[..index].iter().any(|q| q.name == p.name) {
            return Err(TariffError::DuplicatePeriodName {
                name: p.name.clone(),
            });
        }
        check_price(&p.name, "energy price", p.energy_price)?;
        check_price(&p.name, "service fee", p.service_fee)?;
    }
    Ok(())
}

fn check_price(period: &str, which: &'static str, price: Money) -> Result<(), TariffError> {
    if price.is_negative() {
        return Err(TariffError::NegativePrice {
            period: period.to_owned(),
            which,
            price,
        });
    }
    if price.yuan() > Decimal::from(limits::MAX_PRICE_YUAN) {
        return Err(TariffError::PriceTooHigh {
            period: period.to_owned(),
            which,
            price,
            max: limits::MAX_PRICE_YUAN,
        });
    }
    if price.yuan().normalize().scale() > limits::MAX_PRICE_DECIMALS {
        return Err(TariffError::PriceTooPrecise {
            period: period.to_owned(),
            which,
            price,
            max_decimals: limits::MAX_PRICE_DECIMALS,
        });
    }
    Ok(())
}

fn check_schedule(schedule: &[ScheduleEntry], period_count: usize) -> Result<(), TariffError> {
    let first = schedule.first().ok_or(TariffError::EmptySchedule)?;
    if schedule.len() > limits::MAX_SCHEDULE_ENTRIES {
        return Err(TariffError::TooManyScheduleEntries {
            count: schedule.len(),
            max: limits::MAX_SCHEDULE_ENTRIES,
        });
    }
    if first.start != TimeOfDay::MIDNIGHT {
        return Err(TariffError::ScheduleMustStartAtMidnight { start: first.start });
    }
    for (index, entry) in schedule.iter().enumerate() {
        if entry.period >= period_count {
            return Err(TariffError::UnknownPeriod {
                index,
                period: entry.period,
                period_count,
            });
        }
        if index > 0 && entry.start <= schedule[index - 1].start {
            return Err(TariffError::ScheduleNotIncreasing {
                index,
                start: entry.start,
                previous: schedule[index - 1].start,
            });
        }
    }
    Ok(())
}

impl TryFrom<TariffSpec> for Tariff {
    type Error = TariffError;
    fn try_from(spec: TariffSpec) -> Result<Tariff, TariffError> {
        let time_zone =
            TimeZone::get(&spec.time_zone).map_err(|e| TariffError::UnknownTimeZone {
                name: spec.time_zone.clone(),
                reason: e.to_string(),
            })?;
        Tariff::new(spec.version, time_zone, spec.periods, spec.schedule)
    }
}

impl From<Tariff> for TariffSpec {
    fn from(t: Tariff) -> TariffSpec {
        TariffSpec {
            version: t.version,
            time_zone: t.time_zone_name().to_owned(),
            periods: t.periods,
            schedule: t.schedule,
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(crate) mod tests;

//! The time-of-use [`Tariff`] and its cost function: what a session's energy costs.
//!
//! This module owns the tariff model (named periods, each an energy price and a service fee
//! per kWh, and a daily schedule of local wall-clock start times in an IANA time zone), the
//! mapping of that schedule onto UTC instants across midnights and DST changes, the exact
//! split of metered energy across periods, the one rounding step, and the conversion to and
//! from the YKC four-rate billing model. Edge (offline pricing) and cloud (settlement) call
//! the same functions so that they agree to the milliwatt-hour and the fen.
//!
//! It must never do I/O or read a clock: every instant comes in as an argument, and the time
//! zone database is the one bundled into `jiff` (never the host's), so two machines evaluate
//! a tariff identically.
//!
//! The files, one idea each:
//! - [`model`]: the validated [`Tariff`] value, its parts and its serde form;
//! - [`time_of_day`]: the wall-clock [`TimeOfDay`] schedule entries start at;
//! - [`schedule`]: local wall-clock schedule → UTC [`Segment`]s (the DST rules live here);
//! - [`cost`]: meter readings → [`CostBreakdown`] (the split and rounding rules live here);
//! - [`ykc`]: conversion to and from the YKC [`BillingModel`](crate::message::register::BillingModel).
//!
//! A discharge (V2G feed-in) tariff is an ordinary [`Tariff`] whose prices are what the
//! operator pays per exported kWh; price the export register's readings with the same
//! [`Tariff::cost`]. The sign of the resulting money (a credit to the driver) is the caller's
//! business, not this module's.

pub mod cost;
pub mod model;
pub mod schedule;
pub mod time_of_day;
pub mod ykc;

pub use cost::{CostBreakdown, CostError, CostLine, MeterReading};
pub use model::{
    ScheduleEntry, Tariff, TariffError, TariffPeriod, TariffSpec, TariffVersion, UnitPrice,
};
pub use schedule::{Segment, SpanError};
pub use time_of_day::TimeOfDay;
pub use ykc::NotRepresentable;

/// Limits that keep every tariff and every cost calculation bounded.
pub mod limits {
    /// Most periods (distinct prices) a tariff may have.
    pub const MAX_PERIODS: usize = 48;
    /// Most schedule entries (period changes) per day: one every five minutes.
    pub const MAX_SCHEDULE_ENTRIES: usize = 288;
    /// Longest period name, in characters.
    pub const MAX_PERIOD_NAME_CHARS: usize = 32;
    /// Highest energy price or service fee, yuan per kWh.
    pub const MAX_PRICE_YUAN: i64 = 10_000;
    /// Most decimal places of a price (YKC itself carries 5).
    pub const MAX_PRICE_DECIMALS: u32 = 8;
    /// Longest span [`Tariff::segments`](super::Tariff::segments) and
    /// [`Tariff::cost`](super::Tariff::cost) accept, in days of 24 hours.
    pub const MAX_SPAN_DAYS: i64 = 31;
    /// Longest span, in nanoseconds.
    pub const MAX_SPAN_NS: i128 = MAX_SPAN_DAYS as i128 * 24 * 3_600 * 1_000_000_000;
    /// Most meter readings one cost calculation accepts (one per second for 11 days, or one
    /// every 15 s for the whole longest span).
    pub const MAX_READINGS: usize = 1_000_000;
    /// Most energy one session may meter: 10 GWh, in mWh. Far above any real session, low
    /// enough that energy × price can never overflow a `Decimal`.
    pub const MAX_SESSION_ENERGY_MWH: i64 = 10_000_000_000_000;
}

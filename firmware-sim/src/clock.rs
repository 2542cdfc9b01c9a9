//! Simulated time, and each pile's own wall clock.
//!
//! Three clocks meet here, and keeping them apart is what lets a one-hour session run in a
//! second while every timestamp on the wire still reads like a real pile's:
//! - [`SimTime`]: milliseconds of *simulated* time since the fleet started. Every timer of
//!   the charger state machine (heartbeats, reports, record resends, dead-man) is in it, so a
//!   speed-up factor scales all of them at once.
//! - [`SimClock`]: maps simulated time to tokio's real clock with the speed factor (the
//!   transport tasks sleep on it).
//! - [`PileClock`]: the pile's wall clock, local time in the site's zone, which may be skewed
//!   or stuck at 1970 by a fault, and is set by the platform's time sync (0x56). CP56 fields
//!   and billing slots are read from it.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use voltline_protocol::wire::cp56::Cp56Time;

/// Simulated milliseconds since the fleet's epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The fleet's start.
    pub const ZERO: SimTime = SimTime(0);

    /// From whole simulated seconds.
    pub const fn from_secs(s: u64) -> SimTime {
        SimTime(s * 1_000)
    }

    /// Milliseconds since the epoch.
    pub const fn ms(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating.
    pub const fn plus_ms(self, ms: u64) -> SimTime {
        SimTime(self.0.saturating_add(ms))
    }

    /// `self + secs`, saturating.
    pub const fn plus_secs(self, secs: u64) -> SimTime {
        self.plus_ms(secs.saturating_mul(1_000))
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// A speed-up factor: simulated seconds per real second (1.0 is real time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Speed(f64);

/// A speed that is not a positive finite number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("speed factor {0} must be a finite number above 0 (1 is real time, 3600 runs an hour per second)")]
pub struct BadSpeed(pub f64);

impl Speed {
    /// Real time.
    pub const REAL_TIME: Speed = Speed(1.0);
    /// The largest factor: beyond it the tokio timer's 1 ms resolution swallows whole reports.
    pub const MAX: f64 = 100_000.0;

    /// A validated factor.
    pub fn new(factor: f64) -> Result<Speed, BadSpeed> {
        if factor.is_finite() && factor > 0.0 && factor <= Self::MAX {
            Ok(Speed(factor))
        } else {
            Err(BadSpeed(factor))
        }
    }

    /// The factor.
    pub fn factor(self) -> f64 {
        self.0
    }
}

impl Default for Speed {
    fn default() -> Self {
        Speed::REAL_TIME
    }
}

/// Maps simulated time onto tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    start: tokio::time::Instant,
    speed: Speed,
    /// The true UTC instant at simulated time zero.
    epoch: Timestamp,
}

impl SimClock {
    /// A clock starting now, at `epoch` in true UTC.
    pub fn start(speed: Speed, epoch: Timestamp) -> SimClock {
        SimClock {
            start: tokio::time::Instant::now(),
            speed,
            epoch,
        }
    }

    /// Simulated time now.
    pub fn now(&self) -> SimTime {
        let real = self.start.elapsed().as_secs_f64();
        SimTime((real * self.speed.0 * 1_000.0) as u64)
    }

    /// The real instant at which simulated time reaches `at`.
    pub fn deadline(&self, at: SimTime) -> tokio::time::Instant {
        let real_s = at.0 as f64 / 1_000.0 / self.speed.0;
        // Bounded: a deadline a century out is as good as never.
        self.start + Duration::from_secs_f64(real_s.min(3.0e9))
    }

    /// Real duration of `sim_ms` simulated milliseconds.
    pub fn real_duration(&self, sim_ms: u64) -> Duration {
        Duration::from_secs_f64(sim_ms as f64 / 1_000.0 / self.speed.0)
    }

    /// The speed factor.
    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// The true UTC instant at simulated time zero.
    pub fn epoch(&self) -> Timestamp {
        self.epoch
    }
}

/// The pile's wall clock: true time plus an offset (a skew, a 1970 reset, or whatever the last
/// time sync set), shown in the site's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct PileClock {
    epoch: Timestamp,
    zone: TimeZone,
    offset_ms: i64,
}

impl PileClock {
    /// A correct clock.
    pub fn new(epoch: Timestamp, zone: TimeZone) -> PileClock {
        PileClock {
            epoch,
            zone,
            offset_ms: 0,
        }
    }

    /// The true instant at simulated time `now`.
    pub fn true_instant(&self, now: SimTime) -> Timestamp {
        self.epoch
            .checked_add(SignedDuration::from_millis(now.0 as i64))
            .unwrap_or(self.epoch)
    }

    /// What the pile believes the instant is.
    pub fn instant(&self, now: SimTime) -> Timestamp {
        let t = self.true_instant(now);
        t.checked_add(SignedDuration::from_millis(self.offset_ms))
            .unwrap_or(t)
    }

    /// The pile's local wall-clock time.
    pub fn civil(&self, now: SimTime) -> DateTime {
        self.zone.to_datetime(self.instant(now))
    }

    /// The pile's wall-clock time as a CP56Time2a (see [`cp56_of`]).
    pub fn cp56(&self, now: SimTime) -> Cp56Time {
        cp56_of(self.civil(now))
    }

    /// The offset from true time, milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Skews the clock by `minutes` from true time (a fault).
    pub fn skew_minutes(&mut self, minutes: i64) {
        self.offset_ms = minutes.saturating_mul(60_000);
    }

    /// Resets the clock to 1970-01-01 00:00:00 local at `now` (a flat RTC battery).
    pub fn reset_to_1970(&mut self, now: SimTime) {
        let target = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
        self.set_civil(now, target);
    }

    /// Sets the clock so that it reads `civil` (local) at `now` (time sync 0x56).
    pub fn set_civil(&mut self, now: SimTime, civil: DateTime) {
        let Ok(wanted) = self.zone.to_timestamp(civil) else {
            return;
        };
        let wanted = wanted.as_millisecond();
        let truth = self.true_instant(now).as_millisecond();
        self.offset_ms = wanted - truth;
    }

    /// The index of the half-hour billing slot (0..48) the pile's clock is in.
    pub fn slot(&self, now: SimTime) -> usize {
        let c = self.civil(now);
        (c.hour() as usize) * 2 + (c.minute() as usize) / 30
    }

    /// Simulated milliseconds until the pile's clock crosses the next half-hour boundary
    /// (at least 1).
    pub fn ms_to_next_slot(&self, now: SimTime) -> u64 {
        let c = self.civil(now);
        let into_slot_ms = ((c.minute() as u64) % 30) * 60_000
            + (c.second() as u64) * 1_000
            + (c.subsec_nanosecond() as u64) / 1_000_000;
        (30 * 60_000 - into_slot_ms).max(1)
    }
}

/// Encodes a wall-clock time as CP56Time2a the way a pile's firmware does: the year byte is
/// the two-digit year (an RTC keeps `year % 100`), so a clock at 1970 goes out as year byte 70
/// and a platform decodes it as 2070. Times CP56 cannot carry at all come out as `UNSET`.
///
/// This belongs in `voltline_protocol::wire::cp56` (as `Cp56Time::from_civil_two_digit_year`):
/// `Cp56Time::from_civil` refuses years outside 2000..=2099, which a real pile never checks.
pub fn cp56_of(dt: DateTime) -> Cp56Time {
    if let Some(t) = Cp56Time::from_civil(dt) {
        return t;
    }
    let ms = (dt.second() as u32 * 1_000 + dt.subsec_nanosecond() as u32 / 1_000_000) as u16;
    let weekday = dt.weekday().to_monday_one_offset() as u8;
    let [m0, m1] = ms.to_le_bytes();
    let bytes = [
        m0,
        m1,
        dt.minute() as u8,
        dt.hour() as u8,
        (weekday << 5) | dt.day() as u8,
        dt.month() as u8,
        dt.year().rem_euclid(100) as u8,
    ];
    Cp56Time::from_bytes(bytes).unwrap_or(Cp56Time::UNSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> Timestamp {
        "2026-03-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn pile_clock_reads_local_time_and_follows_sim_time() {
        let c = PileClock::new(epoch(), TimeZone::get("Asia/Shanghai").unwrap());
        assert_eq!(c.civil(SimTime::ZERO).hour(), 8);
        assert_eq!(c.civil(SimTime::from_secs(3_600)).hour(), 9);
        assert_eq!(c.slot(SimTime::ZERO), 16);
        assert_eq!(c.ms_to_next_slot(SimTime::from_secs(600)), 20 * 60_000);
    }

    #[test]
    fn skew_and_1970_show_in_cp56() {
        let mut c = PileClock::new(epoch(), TimeZone::UTC);
        c.skew_minutes(-7);
        assert_eq!(c.civil(SimTime::ZERO).minute(), 53);
        c.reset_to_1970(SimTime::from_secs(10));
        let t = c.cp56(SimTime::from_secs(70));
        assert_eq!(t.as_bytes()[6], 70, "two-digit year of 1970");
        assert_eq!(t.as_bytes()[2], 1, "one minute after the reset");
    }

    #[test]
    fn time_sync_sets_the_clock() {
        let mut c = PileClock::new(epoch(), TimeZone::UTC);
        c.reset_to_1970(SimTime::ZERO);
        c.set_civil(
            SimTime::from_secs(5),
            DateTime::constant(2026, 3, 1, 0, 0, 5, 0),
        );
        assert_eq!(c.offset_ms(), 0);
    }

    #[test]
    fn sim_clock_speed_scales_deadlines() {
        let s = Speed::new(3_600.0).unwrap();
        let clock = SimClock::start(s, epoch());
        assert_eq!(clock.real_duration(3_600_000), Duration::from_secs(1));
        assert!(Speed::new(0.0).is_err());
        assert!(Speed::new(f64::NAN).is_err());
    }
}

//! What the edge can tell of a discharging vehicle's battery from the pile's 0xC7 readings
//! alone: its SoC in whole percent (rounded down by the vehicle) and the meter registers.
//! The pile never reports the battery's capacity, so it is learned from the session: the
//! net energy out over a SoC drop of at least [`LEARN_MIN_SOC_POINTS`]. Until then an
//! assumed capacity (configured per site) stands in.
//!
//! The estimates lean low, so the energy above the floor is not overstated: the SoC read
//! is rounded down (the true SoC is up to one point higher), and the learned capacity
//! divides by the SoC drop plus one point (the most the drop can be, given rounding). The
//! assumed capacity should be the smallest battery expected: the planner's horizon (two
//! report intervals) keeps a vehicle off its floor between two readings as long as the
//! capacity used is at most twice the real one. The floor itself is kept by the pile too
//! (0xC2 carries it); the edge stops a vehicle whose reading is at or below its floor.
//! Pure: no I/O.

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Soc};

/// SoC points a session must fall before its capacity is learned.
pub const LEARN_MIN_SOC_POINTS: u8 = 3;

/// Learned capacities are held within these bounds (a reading gone wrong cannot make a
/// vehicle look empty or enormous).
pub const MIN_CAPACITY: Energy = Energy::from_wh(5_000);
pub const MAX_CAPACITY: Energy = Energy::from_wh(250_000);

/// One session's view of the battery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatteryEstimate {
    /// The first reading: SoC and net energy out (export − import register).
    baseline: Option<(u8, i64)>,
    /// The last SoC read.
    soc: Option<u8>,
    /// Learned, once the SoC fell far enough.
    learned: Option<Energy>,
}

impl BatteryEstimate {
    /// Takes a reading.
    pub fn update(&mut self, soc: Soc, import: Energy, export: Energy) {
        let net = export.mwh() - import.mwh();
        let soc = soc.percent();
        self.soc = Some(soc);
        let Some((soc0, net0)) = self.baseline else {
            self.baseline = Some((soc, net));
            return;
        };
        if soc0 >= soc + LEARN_MIN_SOC_POINTS && net > net0 {
            let drop = i64::from(soc0 - soc) + 1;
            let mwh = (net - net0).saturating_mul(100) / drop;
            self.learned = Some(Energy::from_mwh(
                mwh.clamp(MIN_CAPACITY.mwh(), MAX_CAPACITY.mwh()),
            ));
        }
    }

    /// The capacity used: the learned one, else `assumed`.
    pub fn capacity(&self, assumed: Energy) -> Energy {
        self.learned.unwrap_or(assumed)
    }

    /// The last SoC read.
    pub fn soc(&self) -> Option<Soc> {
        self.soc.and_then(Soc::new)
    }

    /// Energy the vehicle can still give above `floor` (zero at or below it, or before any
    /// reading).
    pub fn available(&self, floor: Soc, assumed: Energy) -> Energy {
        let Some(soc) = self.soc else {
            return Energy::ZERO;
        };
        let points = i64::from(soc.saturating_sub(floor.percent()));
        Energy::from_mwh(self.capacity(assumed).mwh() * points / 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soc(p: u8) -> Soc {
        Soc::new(p).unwrap()
    }

    const ASSUMED: Energy = Energy::from_wh(40_000);

    #[test]
    fn nothing_is_available_before_a_reading_or_at_the_floor() {
        let mut b = BatteryEstimate::default();
        assert_eq!(b.available(soc(20), ASSUMED), Energy::ZERO);
        b.update(soc(20), Energy::ZERO, Energy::ZERO);
        assert_eq!(b.available(soc(20), ASSUMED), Energy::ZERO);
        assert_eq!(b.available(soc(30), ASSUMED), Energy::ZERO);
    }

    #[test]
    fn the_assumed_capacity_stands_in_until_the_soc_fell_three_points() {
        let mut b = BatteryEstimate::default();
        b.update(soc(80), Energy::from_wh(1_000), Energy::ZERO);
        b.update(soc(78), Energy::from_wh(1_000), Energy::from_wh(1_200));
        assert_eq!(b.capacity(ASSUMED), ASSUMED);
        assert_eq!(
            b.available(soc(30), ASSUMED),
            Energy::from_wh(40_000 * 48 / 100)
        );
    }

    #[test]
    fn the_learned_capacity_leans_low() {
        // A 60 kWh battery from 80 % to 70 %: 6 kWh out, read as a 10-point drop; learned as
        // 6 kWh over 11 points, about 54.5 kWh.
        let mut b = BatteryEstimate::default();
        b.update(soc(80), Energy::ZERO, Energy::from_wh(500));
        b.update(soc(70), Energy::ZERO, Energy::from_wh(6_500));
        let c = b.capacity(ASSUMED);
        assert!(
            c <= Energy::from_wh(60_000) && c >= Energy::from_wh(54_000),
            "{c}"
        );
        // Imported energy counts against the net out.
        let mut b2 = BatteryEstimate::default();
        b2.update(soc(80), Energy::ZERO, Energy::ZERO);
        b2.update(soc(70), Energy::from_wh(1_000), Energy::from_wh(7_000));
        assert_eq!(b2.capacity(ASSUMED), b.capacity(ASSUMED));
    }

    #[test]
    fn learned_capacities_are_bounded() {
        let mut b = BatteryEstimate::default();
        b.update(soc(90), Energy::ZERO, Energy::ZERO);
        b.update(soc(10), Energy::ZERO, Energy::from_wh(10));
        assert_eq!(b.capacity(ASSUMED), MIN_CAPACITY);
        let mut b = BatteryEstimate::default();
        b.update(soc(90), Energy::ZERO, Energy::ZERO);
        b.update(soc(87), Energy::ZERO, Energy::from_wh(100_000_000));
        assert_eq!(b.capacity(ASSUMED), MAX_CAPACITY);
    }
}

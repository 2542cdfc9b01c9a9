//! The vehicle plugged into a connector: a battery with a capacity and a state of charge, a
//! charge curve that tapers near full, and (for V2G) a floor it will not discharge below.
//!
//! Energy is integer milliwatt-hours throughout, and the battery only changes by what the
//! pile's meter measured, so the meter and the vehicle model agree to the milliwatt-hour
//! (charger losses are not modelled: what the meter counts is what the battery gets).

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Power, Soc};

/// Above this SoC (per mille) the charge power tapers.
const TAPER_START_PERMILLE: i64 = 800;
/// The charge power at 100 % SoC, per mille of the maximum.
const TAPER_END_PERMILLE: i64 = 50;
/// Powers are rounded down to the wire's 0.1 kW step.
const POWER_STEP_W: i64 = 100;

/// What a test or scenario plugs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleSpec {
    /// Usable battery capacity.
    pub battery: Energy,
    /// State of charge on arrival, percent.
    pub start_soc_pct: u8,
    /// The battery management system stops charging here, percent.
    pub target_soc_pct: u8,
    /// The on-board charger's limit on AC piles.
    pub max_ac_power: Power,
    /// The battery's limit on DC piles.
    pub max_dc_power: Power,
    /// Whether the vehicle can discharge to the grid.
    pub v2g: bool,
    /// The vehicle's own floor for discharging, percent (the platform's floor in 0xC2 applies
    /// too; the higher wins).
    pub discharge_floor_pct: u8,
    /// The vehicle's discharge power limit.
    pub max_discharge_power: Power,
    /// The VIN, 17 characters.
    pub vin: String,
}

impl VehicleSpec {
    /// A mid-size car: 60 kWh, 20 % → 80 %, 11 kW AC, 120 kW DC, not V2G.
    pub fn standard() -> VehicleSpec {
        VehicleSpec {
            battery: Energy::from_wh(60_000),
            start_soc_pct: 20,
            target_soc_pct: 80,
            max_ac_power: Power::from_kw(11),
            max_dc_power: Power::from_kw(120),
            v2g: false,
            discharge_floor_pct: 20,
            max_discharge_power: Power::from_kw(11),
            vin: "LVSHCAMB1CE000001".into(),
        }
    }

    /// The same vehicle able to discharge.
    pub fn with_v2g(mut self) -> VehicleSpec {
        self.v2g = true;
        self
    }

    /// The same vehicle with other SoCs.
    pub fn with_soc(mut self, start_pct: u8, target_pct: u8) -> VehicleSpec {
        self.start_soc_pct = start_pct;
        self.target_soc_pct = target_pct;
        self
    }

    /// The same vehicle with another battery.
    pub fn with_battery(mut self, battery: Energy) -> VehicleSpec {
        self.battery = battery;
        self
    }

    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.battery.mwh() <= 0 {
            return Err(format!("battery capacity {} must be above 0", self.battery));
        }
        if self.start_soc_pct > 100 || self.target_soc_pct > 100 || self.discharge_floor_pct > 100 {
            return Err("SoC percentages must be 0..=100".into());
        }
        if self.vin.len() > 17 || !self.vin.is_ascii() {
            return Err(format!(
                "VIN '{}' must be at most 17 ASCII characters",
                self.vin
            ));
        }
        Ok(())
    }
}

/// A vehicle on a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub spec: VehicleSpec,
    /// Energy in the battery, mWh.
    stored_mwh: i64,
    /// Energy taken in since arrival, mWh.
    charged_mwh: i64,
    /// Energy given back since arrival, mWh.
    discharged_mwh: i64,
}

impl Vehicle {
    /// A vehicle arriving with its start SoC.
    pub fn arrive(spec: VehicleSpec) -> Vehicle {
        let stored_mwh = spec.battery.mwh() * spec.start_soc_pct as i64 / 100;
        Vehicle {
            spec,
            stored_mwh,
            charged_mwh: 0,
            discharged_mwh: 0,
        }
    }

    /// Energy in the battery.
    pub fn stored(&self) -> Energy {
        Energy::from_mwh(self.stored_mwh)
    }

    /// Energy charged since arrival (exact).
    pub fn charged(&self) -> Energy {
        Energy::from_mwh(self.charged_mwh)
    }

    /// Energy discharged since arrival (exact).
    pub fn discharged(&self) -> Energy {
        Energy::from_mwh(self.discharged_mwh)
    }

    /// State of charge, per mille, rounded down.
    pub fn soc_permille(&self) -> i64 {
        (self.stored_mwh * 1_000 / self.spec.battery.mwh().max(1)).clamp(0, 1_000)
    }

    /// State of charge in whole percent, rounded down.
    pub fn soc(&self) -> Soc {
        Soc::new((self.soc_permille() / 10) as u8).unwrap_or(Soc::FULL)
    }

    /// Energy still wanted to reach the target SoC (0 when reached).
    pub fn energy_to_target(&self) -> Energy {
        let target = self.spec.battery.mwh() * self.spec.target_soc_pct as i64 / 100;
        Energy::from_mwh((target - self.stored_mwh).max(0))
    }

    /// Energy available above a floor of `floor_pct` (0 when at or below).
    pub fn energy_above_floor(&self, floor_pct: u8) -> Energy {
        let floor_pct = floor_pct.max(self.spec.discharge_floor_pct);
        let floor = self.spec.battery.mwh() * floor_pct as i64 / 100;
        Energy::from_mwh((self.stored_mwh - floor).max(0))
    }

    /// The charge power the vehicle accepts now from a pile that can give `pile_max`:
    /// flat up to 80 % SoC, then tapering linearly to 5 % of the maximum at 100 %.
    pub fn charge_power(&self, pile_max: Power, ac: bool) -> Power {
        let vehicle_max = if ac {
            self.spec.max_ac_power
        } else {
            self.spec.max_dc_power
        };
        let max_w = pile_max.watts().min(vehicle_max.watts()).max(0);
        let soc = self.soc_permille();
        let taper = if soc <= TAPER_START_PERMILLE {
            1_000
        } else {
            1_000
                - (soc - TAPER_START_PERMILLE) * (1_000 - TAPER_END_PERMILLE)
                    / (1_000 - TAPER_START_PERMILLE)
        };
        let w = max_w * taper / 1_000;
        Power::from_watts((w / POWER_STEP_W * POWER_STEP_W).max(POWER_STEP_W.min(max_w)))
    }

    /// Takes `e` into the battery.
    pub fn absorb(&mut self, e: Energy) {
        self.stored_mwh += e.mwh();
        self.charged_mwh += e.mwh();
    }

    /// Gives `e` out of the battery.
    pub fn release(&mut self, e: Energy) {
        self.stored_mwh -= e.mwh();
        self.discharged_mwh += e.mwh();
    }

    /// Rough minutes to the target at power `p`.
    pub fn minutes_to_target(&self, p: Power) -> u16 {
        if p.watts() <= 0 {
            return 0;
        }
        let min = self.energy_to_target().mwh() * 60 / (p.watts() * 1_000).max(1);
        min.clamp(0, 600) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_flat_then_tapers_near_full() {
        let mut v = Vehicle::arrive(VehicleSpec::standard().with_soc(50, 100));
        assert_eq!(
            v.charge_power(Power::from_kw(60), false),
            Power::from_kw(60)
        );
        assert_eq!(v.charge_power(Power::from_kw(60), true), Power::from_kw(11));
        v.absorb(Energy::from_wh(24_000)); // 90 %
        let p = v.charge_power(Power::from_kw(60), false);
        assert!(p < Power::from_kw(35) && p > Power::from_kw(25), "{p}");
        v.absorb(Energy::from_wh(6_000)); // 100 %
        assert_eq!(v.charge_power(Power::from_kw(60), false), Power::from_kw(3));
    }

    #[test]
    fn energy_to_target_and_floor() {
        let v = Vehicle::arrive(VehicleSpec::standard().with_soc(20, 30));
        assert_eq!(v.energy_to_target(), Energy::from_wh(6_000));
        assert_eq!(
            v.energy_above_floor(10),
            Energy::ZERO,
            "vehicle floor 20 % wins"
        );
        assert_eq!(v.soc(), Soc::new(20).unwrap());
    }
}

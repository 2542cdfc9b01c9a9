//! A connector's bidirectional energy meter: an import register (grid → vehicle) and an
//! export register (vehicle → grid).
//!
//! Registers integrate power exactly: watt-milliseconds are carried over between steps, so no
//! energy is lost to rounding however small the steps. The wire carries registers at
//! 0.0001 kWh; [`Meter::import_wire`] floors to it. Registers only ever grow; the one
//! exception is [`Meter::reset`], an injected fault (a replaced meter, or firmware that zeroes
//! it on reboot).

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Power};

/// Watt-milliseconds in one milliwatt-hour.
const WMS_PER_MWH: i128 = 3_600;

/// Import and export registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    import_mwh: i64,
    export_mwh: i64,
    /// Watt-milliseconds not yet a whole mWh.
    #[serde(default)]
    import_carry_wms: i64,
    #[serde(default)]
    export_carry_wms: i64,
}

impl Meter {
    /// A meter with these registers.
    pub fn with_registers(import: Energy, export: Energy) -> Meter {
        Meter {
            import_mwh: import.mwh().max(0),
            export_mwh: export.mwh().max(0),
            ..Meter::default()
        }
    }

    /// Integrates `power` (non-negative) over `dt_ms` into the import register; returns the
    /// energy the register grew by.
    pub fn import(&mut self, power: Power, dt_ms: u64) -> Energy {
        let (e, carry) = integrate(power, dt_ms, self.import_carry_wms);
        self.import_carry_wms = carry;
        self.import_mwh += e;
        Energy::from_mwh(e)
    }

    /// Integrates discharge `power` (a non-negative magnitude) into the export register.
    pub fn export(&mut self, power: Power, dt_ms: u64) -> Energy {
        let (e, carry) = integrate(power, dt_ms, self.export_carry_wms);
        self.export_carry_wms = carry;
        self.export_mwh += e;
        Energy::from_mwh(e)
    }

    /// The exact import register.
    pub fn import_exact(&self) -> Energy {
        Energy::from_mwh(self.import_mwh)
    }

    /// The exact export register.
    pub fn export_exact(&self) -> Energy {
        Energy::from_mwh(self.export_mwh)
    }

    /// The import register at the wire's resolution (floored).
    pub fn import_wire(&self) -> Energy {
        self.import_exact().floor_to_wire_step()
    }

    /// The export register at the wire's resolution (floored).
    pub fn export_wire(&self) -> Energy {
        self.export_exact().floor_to_wire_step()
    }

    /// Zeroes both registers (a fault: the only way a register goes down).
    pub fn reset(&mut self) {
        *self = Meter::default();
    }
}

/// Energy of `power` over `dt_ms`, with a carry of watt-milliseconds in and out.
fn integrate(power: Power, dt_ms: u64, carry_wms: i64) -> (i64, i64) {
    let wms = power.watts().max(0) as i128 * dt_ms as i128 + carry_wms as i128;
    let mwh = wms / WMS_PER_MWH;
    ((mwh as i64), (wms % WMS_PER_MWH) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_is_exact_across_tiny_steps() {
        let mut m = Meter::default();
        let mut total = Energy::ZERO;
        for _ in 0..3_600 {
            total += m.import(Power::from_kw(7), 1_000);
        }
        assert_eq!(m.import_exact(), Energy::from_wh(7_000));
        assert_eq!(total, Energy::from_wh(7_000));
        let mut m = Meter::default();
        for _ in 0..3_600_000 / 7 {
            m.import(Power::from_watts(1), 7);
        }
        assert_eq!(
            m.import_exact().mwh(),
            999,
            "carry keeps every watt-millisecond"
        );
    }

    #[test]
    fn wire_registers_are_floored_and_reset_zeroes() {
        let mut m = Meter::with_registers(Energy::from_mwh(1_234_567), Energy::ZERO);
        assert_eq!(m.import_wire(), Energy::from_mwh(1_234_500));
        m.export(Power::from_kw(10), 360);
        assert_eq!(m.export_exact(), Energy::from_mwh(1_000));
        m.reset();
        assert_eq!(m.import_exact(), Energy::ZERO);
    }
}

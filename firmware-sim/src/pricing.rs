//! How a pile prices a session with the YKC billing model it holds (0x0A / 0x58): energy is
//! attributed to the rate (sharp, peak, flat, valley) of the half-hour slot the pile's own
//! clock is in when it flows, and each period's amount is its loss-adjusted energy times the
//! rate's energy price plus service fee.
//!
//! Rounding, once and documented: each period's energy is floored to the wire's 0.0001 kWh,
//! and what flooring lost is added to the period energy last flowed in, so that the period
//! energies sum exactly to the record's total (end register − start register, both floored).
//! Each period amount is rounded half away from zero to the record's 0.0001 yuan; the total
//! amount is the sum of the period amounts.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::money::{scale, RoundingRule};
use voltline_protocol::domain::{Energy, Money};
use voltline_protocol::message::record::PeriodLine;
use voltline_protocol::message::register::{BillingModel, RateKind};

/// Exact energy per rate kind (sharp, peak, flat, valley).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodEnergy {
    mwh: [i64; 4],
    /// The kind energy last flowed in (sharp until any flowed).
    last: usize,
}

impl PeriodEnergy {
    /// Adds energy to a rate kind.
    pub fn add(&mut self, kind: RateKind, e: Energy) {
        let i = kind as usize;
        self.mwh[i] += e.mwh();
        if e.mwh() > 0 {
            self.last = i;
        }
    }

    /// The exact total.
    pub fn total(&self) -> Energy {
        Energy::from_mwh(self.mwh.iter().sum())
    }

    /// The four period lines, their energies summing to `total_wire` (a wire-step multiple),
    /// priced with `model`.
    pub fn lines(&self, model: &BillingModel, total_wire: Energy) -> [PeriodLine; 4] {
        let mut wire: [i64; 4] = self
            .mwh
            .map(|m| Energy::from_mwh(m.max(0)).floor_to_wire_step().mwh());
        let mut rest = total_wire.mwh().max(0) - wire.iter().sum::<i64>();
        if rest >= 0 {
            wire[self.last] += rest;
        } else {
            // Only after a meter fault: take the excess from the largest periods.
            while rest < 0 {
                let (i, _) = wire
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, v)| **v)
                    .unwrap_or((0, &0));
                let take = (-rest).min(wire[i]);
                if take == 0 {
                    break;
                }
                wire[i] -= take;
                rest += take;
            }
        }
        let kinds = [
            RateKind::Sharp,
            RateKind::Peak,
            RateKind::Flat,
            RateKind::Valley,
        ];
        kinds.map(|k| price_line(model, k, Energy::from_mwh(wire[k as usize])))
    }
}

/// One priced period line.
pub fn price_line(model: &BillingModel, kind: RateKind, energy: Energy) -> PeriodLine {
    let rate = model.rate(kind);
    let unit_price = rate.energy_price + rate.service_fee;
    let loss_adjusted = loss_adjusted(model, energy);
    PeriodLine {
        unit_price,
        energy,
        loss_adjusted_energy: loss_adjusted,
        amount: amount_of(unit_price, loss_adjusted),
    }
}

/// Energy with the model's loss ratio added, floored to the wire step.
pub fn loss_adjusted(model: &BillingModel, e: Energy) -> Energy {
    if model.loss_ratio_pct == 0 {
        return e;
    }
    Energy::from_mwh(e.mwh() * (100 + model.loss_ratio_pct as i64) / 100).floor_to_wire_step()
}

/// `energy × unit_price`, rounded half away from zero to 0.0001 yuan.
pub fn amount_of(unit_price: Money, energy: Energy) -> Money {
    unit_price
        .times(energy.kwh())
        .round_to(scale::AMOUNT, RoundingRule::HalfAwayFromZero)
}

/// The sum of the lines' amounts.
pub fn total_amount(lines: &[PeriodLine; 4]) -> Money {
    lines.iter().map(|l| l.amount).sum()
}

/// A flat model (every slot the flat rate): handy for tests and the demo.
pub fn flat_model(model_no: u16, energy_price: Decimal, service_fee: Decimal) -> BillingModel {
    use voltline_protocol::message::register::Rate;
    let rate = Rate {
        energy_price: Money::from_yuan(energy_price),
        service_fee: Money::from_yuan(service_fee),
    };
    BillingModel {
        model_no: model_number(model_no),
        rates: [rate; 4],
        loss_ratio_pct: 0,
        slots: [RateKind::Flat; 48],
    }
}

/// A two-rate day: valley 00:00-08:00, peak 08:00-22:00 (sharp 18:00-20:00), flat after.
pub fn time_of_use_model(model_no: u16) -> BillingModel {
    use voltline_protocol::message::register::Rate;
    let r = |e: i64, s: i64| Rate {
        energy_price: Money::from_scaled(e, scale::UNIT_PRICE),
        service_fee: Money::from_scaled(s, scale::UNIT_PRICE),
    };
    let mut slots = [RateKind::Flat; 48];
    for (i, slot) in slots.iter_mut().enumerate() {
        *slot = match i {
            0..=15 => RateKind::Valley,
            36..=39 => RateKind::Sharp,
            16..=43 => RateKind::Peak,
            _ => RateKind::Flat,
        };
    }
    BillingModel {
        model_no: model_number(model_no),
        rates: [
            r(130_000, 40_000),
            r(110_000, 40_000),
            r(80_000, 40_000),
            r(40_000, 40_000),
        ],
        loss_ratio_pct: 0,
        slots,
    }
}

/// A billing model number from 0..=9999.
pub fn model_number(n: u16) -> voltline_protocol::message::register::BillingModelNo {
    let bytes =
        voltline_protocol::wire::bcd::encode_value::<2>(n.min(9_999) as u64).unwrap_or([0; 2]);
    voltline_protocol::wire::bcd::Bcd::from_bytes(bytes)
        .unwrap_or(voltline_protocol::wire::bcd::Bcd::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_energies_sum_to_the_total_and_amounts_round_once() {
        let model = time_of_use_model(7);
        let mut p = PeriodEnergy::default();
        p.add(RateKind::Valley, Energy::from_mwh(1_234_567));
        p.add(RateKind::Peak, Energy::from_mwh(2_000_050));
        let lines = p.lines(&model, Energy::from_mwh(3_234_700));
        let sum: Energy = lines.iter().map(|l| l.energy).sum();
        assert_eq!(sum, Energy::from_mwh(3_234_700));
        assert_eq!(
            lines[RateKind::Peak as usize].energy,
            Energy::from_mwh(2_000_200)
        );
        // Valley 1.2345 kWh × 0.8 yuan = 0.9876 yuan.
        assert_eq!(
            lines[RateKind::Valley as usize].amount,
            Money::from_scaled(9_876, 4)
        );
        assert_eq!(total_amount(&lines), lines.iter().map(|l| l.amount).sum());
    }
}

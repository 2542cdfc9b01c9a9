//! The cost of a series of meter readings under a tariff.
//!
//! **Energy split (exact, integer mWh).** Each interval between consecutive readings carries
//! the register delta. The delta is divided among the tariff segments the interval overlaps
//! in proportion to time: each share is `floor(delta × overlap_ns / interval_ns)` (in `i128`),
//! and the few mWh left over go one each to the shares with the largest remainders (ties to
//! the earliest segment), so the shares always sum to the delta. A positive delta between two
//! readings at the same instant goes to the period in force at that instant. Energy is never
//! negative: a register that goes backwards is an error, not a refund.
//!
//! **Rounding (once, at one point).** Line amounts are exact `Decimal`s (energy × unit price,
//! no rounding), and the exact lines sum exactly to the exact fee totals. Then the session's
//! energy fee and its service fee are each rounded **once** to whole fen, half away from zero
//! ([`Money::round_cents`]). The rounded fee of each line is its exact amount rounded down to
//! the fen plus, for the lines with the largest sub-fen remainders (ties to the earlier line),
//! one more fen, as many as it takes for the rounded lines to sum exactly to the rounded fee
//! total (largest-remainder method; each rounded line is within one fen of its exact value).
//! `total = energy_fee + service_fee`: the sum of the two rounded fees, which may differ by
//! one fen from the exact total rounded on its own, because receipts and the charger's
//! transaction record show the two fees separately.
//!
//! Lines: one per period that received energy, in the tariff's period order.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limits;
use super::model::{Tariff, TariffVersion};
use super::schedule::{Segment, SpanError};
use crate::domain::money::scale;
use crate::domain::{Energy, Money, RoundingRule};

/// One reading of a cumulative meter register (import, or export for V2G).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterReading {
    /// When the register was read.
    pub at: Timestamp,
    /// The register's value: energy since the meter's zero, never decreasing.
    pub register: Energy,
}

impl MeterReading {
    /// A reading of `register` at `at`.
    pub fn new(at: Timestamp, register: Energy) -> Self {
        MeterReading { at, register }
    }
}

/// What one period contributed to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    /// Index into the tariff's periods.
    pub period: usize,
    /// The period's name.
    pub name: String,
    /// Energy metered while the period was in force.
    pub energy: Energy,
    /// Energy price, yuan per kWh.
    pub energy_price: Money,
    /// Service fee rate, yuan per kWh.
    pub service_fee_rate: Money,
    /// `energy × energy_price`, exact.
    pub energy_fee_exact: Money,
    /// `energy × service_fee_rate`, exact.
    pub service_fee_exact: Money,
    /// This line's share of the rounded session energy fee, whole fen.
    pub energy_fee: Money,
    /// This line's share of the rounded session service fee, whole fen.
    pub service_fee: Money,
}

impl CostLine {
    /// `energy_fee + service_fee`, whole fen.
    pub fn total(&self) -> Money {
        self.energy_fee + self.service_fee
    }
}

/// The priced session. Invariants (property-tested): line energies sum to `total_energy`,
/// which is the last register minus the first; exact line fees sum to the exact fees; rounded
/// line fees sum to the rounded fees; each rounded fee is its exact fee rounded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// The tariff version that priced the session.
    pub tariff_version: TariffVersion,
    /// One line per period that received energy, in period order.
    pub lines: Vec<CostLine>,
    /// Last register minus first.
    pub total_energy: Energy,
    /// Sum of the lines' exact energy fees.
    pub energy_fee_exact: Money,
    /// Sum of the lines' exact service fees.
    pub service_fee_exact: Money,
    /// `round_cents(energy_fee_exact)`.
    pub energy_fee: Money,
    /// `round_cents(service_fee_exact)`.
    pub service_fee: Money,
    /// `energy_fee + service_fee`.
    pub total: Money,
}

impl CostBreakdown {
    /// `energy_fee_exact + service_fee_exact`.
    pub fn total_exact(&self) -> Money {
        self.energy_fee_exact + self.service_fee_exact
    }
}

/// Why a series of readings could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error(
        "pricing needs at least two meter readings, got {count}; send the start and end registers"
    )]
    TooFewReadings { count: usize },
    #[error("{count} meter readings is more than the limit of {max}; thin them out (only the first, last and period-boundary readings matter much)")]
    TooManyReadings { count: usize, max: usize },
    #[error("reading {index} at {at} is earlier than the reading before it at {previous}; sort readings by time")]
    OutOfOrder {
        index: usize,
        at: Timestamp,
        previous: Timestamp,
    },
    #[error(
        "reading {index} has a negative register ({register}); a meter register starts at zero"
    )]
    NegativeRegister { index: usize, register: Energy },
    #[error("the register went backwards at reading {index}, from {previous} to {register}; a meter register never decreases (was the meter replaced or reset?)")]
    RegisterWentBackwards {
        index: usize,
        previous: Energy,
        register: Energy,
    },
    #[error(
        "the session metered {energy}, more than the limit of {max}; check the register readings"
    )]
    EnergyTooLarge { energy: Energy, max: Energy },
    #[error(transparent)]
    Span(#[from] SpanError),
    #[error("an amount overflowed while pricing; check the prices and readings")]
    Overflow,
}

impl Tariff {
    /// Prices a session from its meter readings (see the module doc for the split and the
    /// rounding rule). Readings must be in time order (equal instants allowed) with registers
    /// never decreasing, at least two of them, spanning at most 31 days.
    pub fn cost(&self, readings: &[MeterReading]) -> Result<CostBreakdown, CostError> {
        let energy = self.energy_by_period(readings)?;
        let mut lines = Vec::new();
        for (period, &e) in energy.iter().enumerate() {
            if e == Energy::ZERO {
                continue;
            }
            let p = &self.periods[period];
            let kwh = e.kwh();
            lines.push(CostLine {
                period,
                name: p.name.clone(),
                energy: e,
                energy_price: p.energy_price,
                service_fee_rate: p.service_fee,
                energy_fee_exact: exact_fee(kwh, p.energy_price)?,
                service_fee_exact: exact_fee(kwh, p.service_fee)?,
                energy_fee: Money::ZERO,
                service_fee: Money::ZERO,
            });
        }
        let exact_energy: Vec<Money> = lines.iter().map(|l| l.energy_fee_exact).collect();
        let exact_service: Vec<Money> = lines.iter().map(|l| l.service_fee_exact).collect();
        let energy_fee_exact = checked_sum(&exact_energy)?;
        let service_fee_exact = checked_sum(&exact_service)?;
        // The one rounding point.
        let energy_fee = energy_fee_exact.round_cents();
        let service_fee = service_fee_exact.round_cents();
        let energy_alloc = allocate_cents(&exact_energy, energy_fee);
        let service_alloc = allocate_cents(&exact_service, service_fee);
        for ((line, e), s) in lines.iter_mut().zip(energy_alloc).zip(service_alloc) {
            line.energy_fee = e;
            line.service_fee = s;
        }
        let first = readings[0].register;
        let last = readings[readings.len() - 1].register;
        Ok(CostBreakdown {
            tariff_version: self.version,
            lines,
            total_energy: last - first,
            energy_fee_exact,
            service_fee_exact,
            energy_fee,
            service_fee,
            total: energy_fee + service_fee,
        })
    }

    /// The session's energy per period, indexed like [`Tariff::periods`]; sums exactly to
    /// the last register minus the first.
    pub fn energy_by_period(&self, readings: &[MeterReading]) -> Result<Vec<Energy>, CostError> {
        check_readings(readings)?;
        let from = readings[0].at;
        let to = readings[readings.len() - 1].at;
        let segments = self.segments(from, to)?;
        let mut by_period = vec![0i64; self.periods.len()];
        let mut seg = 0usize;
        let mut shares: Vec<Share> = Vec::new();
        for pair in readings.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let delta = (b.register - a.register).mwh();
            if delta == 0 {
                continue;
            }
            if a.at == b.at {
                by_period[self.period_index_at(a.at)] += delta;
                continue;
            }
            while segments[seg].end <= a.at {
                seg += 1;
            }
            split_interval(&segments[seg..], a.at, b.at, delta, &mut shares);
            for s in &shares {
                by_period[s.period] += s.mwh;
            }
        }
        Ok(by_period.into_iter().map(Energy::from_mwh).collect())
    }
}

fn check_readings(readings: &[MeterReading]) -> Result<(), CostError> {
    if readings.len() < 2 {
        return Err(CostError::TooFewReadings {
            count: readings.len(),
        });
    }
    if readings.len() > limits::MAX_READINGS {
        return Err(CostError::TooManyReadings {
            count: readings.len(),
            max: limits::MAX_READINGS,
        });
    }
    for (index, r) in readings.iter().enumerate() {
        if r.register < Energy::ZERO {
            return Err(CostError::NegativeRegister {
                index,
                register: r.register,
            });
        }
        if index == 0 {
            continue;
        }
        let prev = readings[index - 1];
        if r.at < prev.at {
            return Err(CostError::OutOfOrder {
                index,
                at: r.at,
                previous: prev.at,
            });
        }
        if r.register < prev.register {
            return Err(CostError::RegisterWentBackwards {
                index,
                previous: prev.register,
                register: r.register,
            });
        }
    }
    // Registers are non-negative and non-decreasing, so this cannot overflow.
    let energy = readings[readings.len() - 1].register - readings[0].register;
    let max = Energy::from_mwh(limits::MAX_SESSION_ENERGY_MWH);
    if energy > max {
        return Err(CostError::EnergyTooLarge { energy, max });
    }
    Ok(())
}

/// One segment's part of an interval's energy.
struct Share {
    period: usize,
    mwh: i64,
    remainder: i128,
}

/// Splits `delta` mWh over `[a, b)` (with `a < b`) across `segments`, which start with the
/// one containing `a` and tile on past `b`. Fills `out`; the shares sum to exactly `delta`.
fn split_interval(
    segments: &[Segment],
    a: Timestamp,
    b: Timestamp,
    delta: i64,
    out: &mut Vec<Share>,
) {
    out.clear();
    let (a_ns, b_ns) = (a.as_nanosecond(), b.as_nanosecond());
    let interval = b_ns - a_ns;
    // delta ≤ 10^16 mWh and overlap ≤ 31 days ≈ 2.7·10^15 ns: the product fits easily in i128.
    let mut given = 0i64;
    for s in segments.iter().take_while(|s| s.start < b) {
        let overlap = s.end.as_nanosecond().min(b_ns) - s.start.as_nanosecond().max(a_ns);
        let numerator = i128::from(delta) * overlap;
        let mwh = (numerator / interval) as i64; // ≤ delta
        given += mwh;
        out.push(Share {
            period: s.period,
            mwh,
            remainder: numerator % interval,
        });
    }
    // 0 ≤ left < number of shares, because each floor loses less than one mWh.
    let left = delta - given;
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&i, &j| out[j].remainder.cmp(&out[i].remainder).then(i.cmp(&j)));
    for &i in order.iter().take(left as usize) {
        out[i].mwh += 1;
    }
}

fn exact_fee(kwh: Decimal, price: Money) -> Result<Money, CostError> {
    kwh.checked_mul(price.yuan())
        .map(Money::from_yuan)
        .ok_or(CostError::Overflow)
}

fn checked_sum(amounts: &[Money]) -> Result<Money, CostError> {
    amounts.iter().try_fold(Money::ZERO, |acc, m| {
        acc.yuan()
            .checked_add(m.yuan())
            .map(Money::from_yuan)
            .ok_or(CostError::Overflow)
    })
}

/// Splits `total` (whole fen) over lines with non-negative `exact` amounts whose sum rounds
/// to `total`: each line gets its amount rounded down to the fen, and the fen still missing
/// go one each to the largest remainders (ties to the earlier line).
fn allocate_cents(exact: &[Money], total: Money) -> Vec<Money> {
    let mut out: Vec<Money> = exact
        .iter()
        .map(|m| m.round_to(scale::CENT, RoundingRule::Down))
        .collect();
    if out.is_empty() {
        return out;
    }
    let floor_sum: Money = out.iter().sum();
    // Whole fen by construction; at most `out.len()` (see the module doc).
    let missing = (total - floor_sum).to_scaled(scale::CENT).unwrap_or(0);
    debug_assert!(
        (0..=out.len() as i64).contains(&missing),
        "{missing} fen to allocate"
    );
    let mut order: Vec<usize> = (0..out.len()).collect();
    let remainder = |i: usize| exact[i] - out[i];
    order.sort_by(|&i, &j| remainder(j).cmp(&remainder(i)).then(i.cmp(&j)));
    let cent = Money::from_cents(1);
    for k in 0..missing.unsigned_abs() as usize {
        // Cycles only if the precondition is broken, so that the sum still holds.
        let i = order[k % order.len()];
        if missing > 0 {
            out[i] += cent;
        } else {
            out[i] -= cent;
        }
    }
    out
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;

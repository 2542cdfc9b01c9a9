//! The end-of-run verdict of a crash test: the transaction records the chargers produced
//! (their own journals) against what the cloud stored and settled. Pure: no I/O.
//!
//! [`check_billed_once`] holds the cloud to: every record billed exactly once, within a cent
//! of the charger's own total (which it must store exactly), with the charger's energy; nothing billed that no
//! charger produced; no order settled twice. It must never soften a finding: every
//! difference is listed, none is skipped.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use voltline_cloud::domain::OrderKind;
use voltline_cloud::store::reports::TransactionSummary;
use voltline_protocol::domain::{Money, TransactionSerial};
use voltline_protocol::message::record::TransactionRecord;

/// What a clean run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingVerdict {
    /// Records produced, each billed once.
    pub records: usize,
    /// What they came to, by the chargers' own totals (= what the cloud billed).
    pub total: Money,
}

/// Checks `produced` (the chargers' transaction records by serial) against `stored` (every
/// transaction the cloud has for the site). `Err` lists every problem found.
pub fn check_billed_once(
    produced: &BTreeMap<TransactionSerial, TransactionRecord>,
    stored: &[TransactionSummary],
) -> Result<BillingVerdict, Vec<String>> {
    let mut problems = Vec::new();
    let mut by_serial: HashMap<TransactionSerial, Vec<&TransactionSummary>> = HashMap::new();
    for t in stored.iter().filter(|t| t.kind == OrderKind::Charge) {
        by_serial.entry(t.serial).or_default().push(t);
    }
    let mut total = Money::ZERO;
    for (serial, record) in produced {
        let t = match by_serial.get(serial).map(Vec::as_slice) {
            None | Some([]) => {
                problems.push(format!(
                    "record {serial} (pile {}, {}) never reached the cloud",
                    record.pile_code, record.total_amount
                ));
                continue;
            }
            Some([t]) => *t,
            Some(many) => {
                problems.push(format!(
                    "record {serial} is stored {} times (sequences {:?})",
                    many.len(),
                    many.iter().map(|t| t.seq).collect::<Vec<_>>()
                ));
                continue;
            }
        };
        total += record.total_amount;
        if t.pile != record.pile_code {
            problems.push(format!(
                "record {serial} is stored for pile {}, produced by {}",
                t.pile, record.pile_code
            ));
        }
        if t.energy != record.total_energy {
            problems.push(format!(
                "record {serial}: the cloud has {:?}, the charger {:?}",
                t.energy, record.total_energy
            ));
        }
        if t.charger_total != Some(record.total_amount) {
            problems.push(format!(
                "record {serial}: the cloud's charger total is {:?}, the charger's {}",
                t.charger_total, record.total_amount
            ));
        }
        match &t.settlement {
            None => problems.push(format!("record {serial} is not settled")),
            Some(s) if !within_a_cent(s.cost, record.total_amount) || s.mismatch => {
                problems.push(format!(
                    "record {serial} billed {} (mismatch flag {}), the charger's total is {}",
                    s.cost, s.mismatch, record.total_amount
                ))
            }
            Some(_) => {}
        }
    }
    for (serial, ts) in &by_serial {
        if !produced.contains_key(serial) {
            problems.push(format!(
                "the cloud stored {serial} ({} times) that no charger produced",
                ts.len()
            ));
        }
    }
    let mut orders: HashMap<_, Vec<TransactionSerial>> = HashMap::new();
    for t in stored.iter().filter(|t| t.settled) {
        if let Some(o) = &t.order {
            orders.entry(o.clone()).or_default().push(t.serial);
        }
    }
    for (order, serials) in orders.iter().filter(|(_, s)| s.len() > 1) {
        problems.push(format!(
            "order {order} was settled {} times: {serials:?}",
            serials.len()
        ));
    }
    if problems.is_empty() {
        Ok(BillingVerdict {
            records: produced.len(),
            total,
        })
    } else {
        problems.sort();
        Err(problems)
    }
}

/// The cloud's price agrees with the charger's total to the cent: it prices the session from
/// its own tariff in whole fen while the pile keeps 0.0001 yuan, and flags (as a mismatch)
/// a difference of more than 0.01 yuan.
fn within_a_cent(billed: Money, charger: Money) -> bool {
    (billed.yuan() - charger.yuan()).abs() <= Decimal::new(1, 2)
}

#[cfg(test)]
#[path = "billing_check_tests.rs"]
mod tests;

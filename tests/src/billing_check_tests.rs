use std::collections::BTreeMap;

use jiff::civil::date;
use jiff::Timestamp;
use rust_decimal_macros::dec;
use voltline_cloud::domain::OrderKind;
use voltline_cloud::store::reports::{SettlementSummary, TransactionSummary};
use voltline_protocol::domain::{Energy, Money, PileCode, TransactionSerial};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::message::record::TransactionRecord;

use super::{check_billed_once, BillingVerdict};
use crate::fixtures::{serial, transaction_record, SessionSpec};

fn pile() -> PileCode {
    PileCode::from_number(32_010_699_000_001).unwrap()
}

fn record(counter: u16, total: Money) -> TransactionRecord {
    let at = date(2026, 12, 1).at(12, 0, 0, 0);
    transaction_record(&SessionSpec {
        pile: pile(),
        connector: 1,
        serial: serial(pile(), 1, at, counter),
        start: at,
        end: date(2026, 12, 1).at(12, 30, 0, 0),
        meter_start: Energy::from_wh(0),
        meter_end: Energy::from_wh(1_000),
        total,
        card: PhysicalCardNo([0, 0, 0, 0, 0xCA, 0x4D, 0, 1]),
    })
}

fn billed(r: &TransactionRecord, seq: u64, order: &str, cost: Money) -> TransactionSummary {
    TransactionSummary {
        pile: r.pile_code,
        serial: r.serial,
        kind: OrderKind::Charge,
        seq,
        order: Some(order.parse().unwrap()),
        energy: r.total_energy,
        charger_total: Some(r.total_amount),
        edge_cost: None,
        received_at: Timestamp::UNIX_EPOCH,
        settled: true,
        settlement: Some(SettlementSummary {
            account: "driver-1".parse().unwrap(),
            cost,
            mismatch: false,
            from_hold: cost,
            released: Money::ZERO,
            from_wallet: Money::ZERO,
            receivable: Money::ZERO,
            operator_share: cost,
            platform_fee: Money::ZERO,
            settled_at: Timestamp::UNIX_EPOCH,
        }),
    }
}

fn yuan(v: rust_decimal::Decimal) -> Money {
    Money::from_yuan(v)
}

fn produced(records: &[&TransactionRecord]) -> BTreeMap<TransactionSerial, TransactionRecord> {
    records.iter().map(|r| (r.serial, (*r).clone())).collect()
}

#[test]
fn every_record_billed_once_at_the_chargers_total_is_clean() {
    let (a, b) = (record(1, yuan(dec!(1.23))), record(2, yuan(dec!(0.77))));
    let stored = vec![
        billed(&a, 1, "order-1", a.total_amount),
        billed(&b, 2, "order-2", b.total_amount),
    ];
    assert_eq!(
        check_billed_once(&produced(&[&a, &b]), &stored),
        Ok(BillingVerdict {
            records: 2,
            total: yuan(dec!(2.00))
        })
    );
}

fn problems(
    produced: &BTreeMap<TransactionSerial, TransactionRecord>,
    stored: &[TransactionSummary],
) -> Vec<String> {
    check_billed_once(produced, stored).expect_err("problems")
}

#[test]
fn a_record_the_cloud_lacks_is_lost() {
    let (a, b) = (record(1, yuan(dec!(1))), record(2, yuan(dec!(1))));
    let p = problems(&produced(&[&a, &b]), &[billed(&a, 1, "o1", a.total_amount)]);
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("never reached the cloud"), "{p:?}");
}

#[test]
fn a_record_stored_twice_or_an_order_settled_twice_is_reported() {
    let a = record(1, yuan(dec!(1)));
    let p = problems(
        &produced(&[&a]),
        &[
            billed(&a, 1, "o1", a.total_amount),
            billed(&a, 2, "o1", a.total_amount),
        ],
    );
    assert!(p.iter().any(|m| m.contains("stored 2 times")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("settled 2 times")), "{p:?}");
    let b = record(2, yuan(dec!(1)));
    let p = problems(
        &produced(&[&a, &b]),
        &[
            billed(&a, 1, "o1", a.total_amount),
            billed(&b, 2, "o1", b.total_amount),
        ],
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("order o1 was settled 2 times"), "{p:?}");
}

#[test]
fn a_cent_off_unsettled_or_a_mismatch_is_reported() {
    let a = record(1, yuan(dec!(1.2429)));
    for within in [dec!(1.24), dec!(1.25), dec!(1.2329)] {
        let stored = [billed(&a, 1, "o1", yuan(within))];
        assert!(
            check_billed_once(&produced(&[&a]), &stored).is_ok(),
            "{within}"
        );
    }
    let p = problems(&produced(&[&a]), &[billed(&a, 1, "o1", yuan(dec!(1.26)))]);
    assert!(p[0].contains("billed 1.26"), "{p:?}");
    let p = problems(&produced(&[&a]), &[billed(&a, 1, "o1", yuan(dec!(1.23)))]);
    assert_eq!(p.len(), 1, "{p:?}");
    let mut t = billed(&a, 1, "o1", a.total_amount);
    t.settlement.as_mut().unwrap().mismatch = true;
    assert_eq!(problems(&produced(&[&a]), &[t]).len(), 1);
    let mut t = billed(&a, 1, "o1", a.total_amount);
    t.settled = false;
    t.settlement = None;
    assert!(problems(&produced(&[&a]), &[t])[0].contains("not settled"));
    let mut t = billed(&a, 1, "o1", a.total_amount);
    t.charger_total = Some(yuan(dec!(0.99)));
    t.energy = Energy::from_wh(999);
    assert_eq!(problems(&produced(&[&a]), &[t]).len(), 2);
}

#[test]
fn a_transaction_no_charger_produced_is_reported_and_discharges_are_not_compared() {
    let (a, b) = (record(1, yuan(dec!(1))), record(2, yuan(dec!(1))));
    let p = problems(
        &produced(&[&a]),
        &[
            billed(&a, 1, "o1", a.total_amount),
            billed(&b, 2, "o2", b.total_amount),
        ],
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("no charger produced"), "{p:?}");
    let mut discharge = billed(&b, 3, "o3", b.total_amount);
    discharge.kind = OrderKind::Discharge;
    assert!(check_billed_once(
        &produced(&[&a]),
        &[billed(&a, 1, "o1", a.total_amount), discharge]
    )
    .is_ok());
}

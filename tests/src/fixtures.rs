//! Values end-to-end tests build often: a time-of-use tariff, transaction serials, charger
//! transaction records and the sync records that carry them. Pure: no I/O.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rust_decimal::Decimal;
use voltline_protocol::domain::{AccountId, ConnectorNo, PileCode, SerialTime, TransactionSerial};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::message::transaction::{
    PeriodLine, StopReason, TransactionOrigin, TransactionRecord,
};
use voltline_protocol::sync::{Authorisation, Record, RecordBody, TransactionUp};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{Energy, Money};

fn yuan(units: i64, scale: u32) -> Money {
    Money::from_yuan(Decimal::new(units, scale))
}

/// A three-period time-of-use tariff in `zone` (energy + service fee, yuan per kWh):
/// valley 00:00–08:00 at 0.30 + 0.20, peak 08:00–18:00 at 1.00 + 0.60, flat 18:00–24:00 at
/// 0.70 + 0.40.
pub fn tou_tariff(version: u32, zone: &str) -> Tariff {
    let tz = TimeZone::get(zone).unwrap_or_else(|e| panic!("time zone {zone}: {e}"));
    let at = |h| TimeOfDay::new(h, 0).expect("a time of day");
    Tariff::new(
        TariffVersion(version),
        tz,
        vec![
            TariffPeriod::new("valley", yuan(30, 2), yuan(20, 2)),
            TariffPeriod::new("peak", yuan(100, 2), yuan(60, 2)),
            TariffPeriod::new("flat", yuan(70, 2), yuan(40, 2)),
        ],
        vec![
            ScheduleEntry::new(at(0), 0),
            ScheduleEntry::new(at(8), 1),
            ScheduleEntry::new(at(18), 2),
        ],
    )
    .expect("a valid tariff")
}

/// A one-period tariff in `zone`: `energy` + `service` yuan per kWh all day.
pub fn flat_tariff(version: u32, zone: &str, energy: Money, service: Money) -> Tariff {
    let tz = TimeZone::get(zone).unwrap_or_else(|e| panic!("time zone {zone}: {e}"));
    Tariff::new(
        TariffVersion(version),
        tz,
        vec![TariffPeriod::new("flat", energy, service)],
        vec![ScheduleEntry::new(
            TimeOfDay::new(0, 0).expect("midnight"),
            0,
        )],
    )
    .expect("a valid tariff")
}

/// A serial for `pile`/`connector` composed from the civil time `at` and `counter`.
pub fn serial(pile: PileCode, connector: u8, at: DateTime, counter: u16) -> TransactionSerial {
    let part = |v: i32| u8::try_from(v).expect("a two-digit time part");
    let time = SerialTime {
        year: part(i32::from(at.year()) - 2000),
        month: part(at.month().into()),
        day: part(at.day().into()),
        hour: part(at.hour().into()),
        minute: part(at.minute().into()),
        second: part(at.second().into()),
    };
    let connector = ConnectorNo::new(connector).expect("connector 1..=99");
    TransactionSerial::compose(pile, connector, time, counter).expect("a valid serial")
}

/// What a charger reports at the end of a session.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub pile: PileCode,
    pub connector: u8,
    pub serial: TransactionSerial,
    /// Start and end in the site's local (civil) time, as the pile's clock shows them.
    pub start: DateTime,
    pub end: DateTime,
    /// The import register at start and at end.
    pub meter_start: Energy,
    pub meter_end: Energy,
    /// The total the pile computed.
    pub total: Money,
    /// The card that started it ([`PhysicalCardNo::NONE`] for none).
    pub card: PhysicalCardNo,
}

fn cp56(at: DateTime) -> Cp56Time {
    Cp56Time::from_civil(at).expect("a time CP56Time2a can carry")
}

/// The 0x3B transaction record of `s` (all energy on the first period line).
pub fn transaction_record(s: &SessionSpec) -> TransactionRecord {
    let energy = s.meter_end - s.meter_start;
    let line = |e: Energy, amount: Money| PeriodLine {
        unit_price: Money::ZERO,
        energy: e,
        loss_adjusted_energy: e,
        amount,
    };
    let zero = line(Energy::from_wh(0), Money::ZERO);
    TransactionRecord {
        serial: s.serial,
        pile_code: s.pile,
        connector: ConnectorNo::new(s.connector).expect("connector 1..=99"),
        start_time: cp56(s.start),
        end_time: cp56(s.end),
        periods: [line(energy, s.total), zero, zero, zero],
        meter_start: s.meter_start,
        meter_end: s.meter_end,
        total_energy: energy,
        loss_adjusted_total_energy: energy,
        total_amount: s.total,
        vin: FixedText::EMPTY,
        origin: if s.card.is_none() {
            TransactionOrigin::APP
        } else {
            TransactionOrigin::OFFLINE_CARD
        },
        transaction_time: cp56(s.end),
        stop_reason: StopReason::SOC_FULL,
        physical_card: s.card,
    }
}

/// A sync record carrying `s`'s transaction, started at the pile by a card of `account`.
pub fn offline_card_transaction(
    seq: u64,
    at: Timestamp,
    s: &SessionSpec,
    account: &AccountId,
) -> Record {
    Record {
        seq,
        at,
        body: RecordBody::Transaction(TransactionUp {
            pile: s.pile,
            authorisation: Authorisation::OfflineCard {
                card: s.card.to_string(),
                account: account.clone(),
            },
            edge_cost: None,
            record: transaction_record(s),
        }),
    }
}

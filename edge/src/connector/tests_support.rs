//! Builders shared by the connector tests: instants, a tariff, frames, commands, and machines
//! driven into each state through ordinary inputs.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rust_decimal::Decimal;
use voltline_protocol::domain::{
    AccountId, CommandId, ConnectorNo, Energy, Money, OrderId, PileCode, SiteId, Soc, Temperature,
};
use voltline_protocol::message::realtime::{
    CellVoltage, ChargingFinished, ConnectorStatus as PileStatus, GunPlugged, RealTimeData,
};
use voltline_protocol::message::register::{GunHealth, Heartbeat};
use voltline_protocol::message::transaction::{
    Outcome, PeriodLine, PhysicalCardNo, PileStartRequest, RemoteStartFailure, RemoteStartReply,
    RemoteStopFailure, RemoteStopReply, StartMethod, StopReason, TransactionOrigin,
    TransactionRecord,
};
use voltline_protocol::sync::{Command, CommandEnvelope, SessionLimit, V1};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{Message, TransactionSerial};

use super::{
    Admission, CardDecision, ConnectorId, ConnectorMachine, Context, Input, MachineConfig, Step,
};

/// 2026-01-01T00:00:00Z plus `s` seconds.
pub fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + s).unwrap()
}

/// UTC: "flat" (1.00 + 0.20 yuan/kWh) from 00:00 and 12:00, "peak" (2.00 + 0.50) from 08:00.
pub fn two_period_tariff() -> Tariff {
    let money = |s: &str| Money::from_yuan(s.parse::<Decimal>().unwrap());
    Tariff::new(
        TariffVersion(1),
        TimeZone::UTC,
        vec![
            TariffPeriod::new("flat", money("1.00"), money("0.20")),
            TariffPeriod::new("peak", money("2.00"), money("0.50")),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0),
            ScheduleEntry::new(TimeOfDay::new(8, 0).unwrap(), 1),
            ScheduleEntry::new(TimeOfDay::new(12, 0).unwrap(), 0),
        ],
    )
    .unwrap()
}

pub fn pile() -> PileCode {
    "32010600019236".parse().unwrap()
}

pub fn conn() -> ConnectorNo {
    ConnectorNo::new(1).unwrap()
}

pub fn id() -> ConnectorId {
    ConnectorId {
        pile: pile(),
        connector: conn(),
    }
}

/// A serial of this connector with counter `n`.
pub fn serial(n: u16) -> TransactionSerial {
    let at = voltline_protocol::domain::SerialTime {
        year: 26,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    TransactionSerial::compose(pile(), conn(), at, n).unwrap()
}

pub fn order() -> OrderId {
    OrderId::new("ord-1").unwrap()
}

pub fn cmd_id(s: &str) -> CommandId {
    CommandId::new(s).unwrap()
}

pub fn ctx(now: Timestamp, tariff: Option<&Tariff>) -> Context<'_> {
    Context {
        now,
        tariff,
        admission: Admission::Open,
    }
}

pub fn envelope(id: &str, expires_at: Timestamp, command: Command) -> Input {
    Input::Command(CommandEnvelope {
        v: V1,
        id: cmd_id(id),
        site: SiteId::new("site-1").unwrap(),
        issued_at: t(0),
        expires_at,
        command,
    })
}

pub fn start_cmd(id: &str, n: u16, limit: SessionLimit) -> Input {
    envelope(
        id,
        t(3_600 * 24 * 30),
        Command::StartCharging {
            pile: pile(),
            connector: conn(),
            order: order(),
            account: AccountId::new("acct-1").unwrap(),
            serial: serial(n),
            limit,
        },
    )
}

pub fn stop_cmd(id: &str) -> Input {
    envelope(
        id,
        t(3_600 * 24 * 30),
        Command::StopCharging {
            pile: pile(),
            connector: conn(),
            order: order(),
        },
    )
}

pub fn start_reply(n: u16, ok: bool) -> Input {
    Input::Frame(Message::RemoteStartReply(RemoteStartReply {
        serial: serial(n),
        pile_code: pile(),
        connector: conn(),
        result: if ok {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        failure: if ok {
            RemoteStartFailure::None
        } else {
            RemoteStartFailure::DeviceFault
        },
    }))
}

pub fn stop_reply(ok: bool) -> Input {
    Input::Frame(Message::RemoteStopReply(RemoteStopReply {
        pile_code: pile(),
        connector: conn(),
        result: if ok {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        failure: if ok {
            RemoteStopFailure::None
        } else {
            RemoteStopFailure::Other
        },
    }))
}

/// A 0x13 of transaction `n` (0 = none) with `wh` delivered after `minutes`.
pub fn rt(n: u16, status: PileStatus, wh: i64, minutes: u16) -> Input {
    let mut f = RealTimeData::idle(pile(), conn());
    f.serial = if n == 0 {
        TransactionSerial::NONE
    } else {
        serial(n)
    };
    f.status = status;
    f.gun_plugged = GunPlugged::Yes;
    f.energy = Energy::from_wh(wh);
    f.billed_energy = f.energy;
    f.charging_time_min = minutes;
    f.soc = Soc::new(50).unwrap();
    Input::Frame(Message::RealTimeData(f))
}

pub fn charging(n: u16, wh: i64, minutes: u16) -> Input {
    rt(n, PileStatus::Charging, wh, minutes)
}

pub fn heartbeat() -> Input {
    Input::Frame(Message::Heartbeat(Heartbeat {
        pile_code: pile(),
        connector: conn(),
        health: GunHealth::Normal,
    }))
}

pub fn finished_frame(n: u16) -> Input {
    Input::Frame(Message::ChargingFinished(ChargingFinished {
        serial: serial(n),
        pile_code: pile(),
        connector: conn(),
        final_soc: Soc::new(80).unwrap(),
        min_cell_voltage: CellVoltage::from_hundredths(320),
        max_cell_voltage: CellVoltage::from_hundredths(340),
        min_battery_temperature: Temperature::from_celsius(20),
        max_battery_temperature: Temperature::from_celsius(30),
        charging_time_min: 60,
        output_energy: Energy::from_wh(10_000),
        charger_no: 1,
    }))
}

/// The pile's 0x3B for transaction `n`.
pub fn tx_record(n: u16) -> TransactionRecord {
    let line = PeriodLine {
        unit_price: Money::ZERO,
        energy: Energy::ZERO,
        loss_adjusted_energy: Energy::ZERO,
        amount: Money::ZERO,
    };
    TransactionRecord {
        serial: serial(n),
        pile_code: pile(),
        connector: conn(),
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        periods: [line; 4],
        meter_start: Energy::ZERO,
        meter_end: Energy::from_wh(10_000),
        total_energy: Energy::from_wh(10_000),
        loss_adjusted_total_energy: Energy::from_wh(10_000),
        total_amount: Money::ZERO,
        vin: FixedText::EMPTY,
        origin: TransactionOrigin::APP,
        transaction_time: Cp56Time::UNSET,
        stop_reason: StopReason::APP_REMOTE_STOP,
        physical_card: PhysicalCardNo::NONE,
    }
}

pub fn record_frame(n: u16) -> Input {
    Input::Frame(Message::TransactionRecord(Box::new(tx_record(n))))
}

/// Steps `m` at `now` without a tariff.
pub fn go(m: &mut ConnectorMachine, now: Timestamp, input: Input) -> Step {
    m.step(&ctx(now, None), input)
}

/// A machine whose pile just connected (idle, plugged in).
pub fn idle_machine() -> ConnectorMachine {
    let mut m = ConnectorMachine::new(id(), MachineConfig::default());
    go(&mut m, t(0), Input::PileConnected);
    go(&mut m, t(1), rt(0, PileStatus::Idle, 0, 0));
    m
}

/// A machine with start command "c-start" (transaction 1) in flight.
pub fn start_requested_machine() -> ConnectorMachine {
    let mut m = idle_machine();
    go(
        &mut m,
        t(2),
        start_cmd("c-start", 1, SessionLimit::default()),
    );
    m
}

/// A machine charging transaction 1.
pub fn charging_machine() -> ConnectorMachine {
    let mut m = start_requested_machine();
    go(&mut m, t(3), start_reply(1, true));
    m
}

/// A machine stopping transaction 1 on cloud command "c-stop".
pub fn stopping_machine() -> ConnectorMachine {
    let mut m = charging_machine();
    go(&mut m, t(4), stop_cmd("c-stop"));
    m
}

/// A machine whose record of transaction 1 is being stored.
pub fn finished_machine() -> ConnectorMachine {
    let mut m = stopping_machine();
    go(&mut m, t(5), stop_reply(true));
    go(&mut m, t(6), record_frame(1));
    m
}

/// A machine whose connector faulted while idle.
pub fn faulted_machine() -> ConnectorMachine {
    let mut m = idle_machine();
    go(&mut m, t(2), rt(0, PileStatus::Fault, 0, 0));
    m
}

/// A machine whose pile went away while idle.
pub fn offline_machine() -> ConnectorMachine {
    let mut m = idle_machine();
    go(&mut m, t(2), Input::PileDisconnected);
    m
}

/// Card `n` (its physical number).
pub fn card(n: u64) -> PhysicalCardNo {
    PhysicalCardNo::from_bytes(n.to_be_bytes())
}

/// The pile's 0x31 for `card`.
pub fn card_request(card: PhysicalCardNo) -> Input {
    Input::Frame(Message::PileStartRequest(PileStartRequest {
        pile_code: pile(),
        connector: conn(),
        method: StartMethod::Card,
        password_required: false,
        card,
        password_md5: FixedText::EMPTY,
        vin_reversed: FixedText::EMPTY,
    }))
}

/// The cached list's yes for `card`: transaction `n`, a 30-yuan limit and balance.
pub fn card_authorised(card: PhysicalCardNo, n: u16) -> Input {
    let yuan30 = Money::from_yuan(Decimal::new(30, 0));
    Input::CardDecision {
        card,
        decision: CardDecision::Authorised {
            account: AccountId::new("acct-card").unwrap(),
            serial: serial(n),
            limit: SessionLimit {
                amount: Some(yuan30),
                energy: None,
            },
            balance: yuan30,
        },
    }
}

/// A machine whose card 7 start (transaction 3) was answered at `t(3)`.
pub fn card_start_machine() -> ConnectorMachine {
    let mut m = idle_machine();
    go(&mut m, t(2), card_request(card(7)));
    go(&mut m, t(3), card_authorised(card(7), 3));
    m
}

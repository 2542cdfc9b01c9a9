//! The state machine without sockets: inputs in, outputs out, simulated time only.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use voltline_protocol::domain::{ConnectorNo, Money, PileCode};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{LoginReply, LoginResult};
use voltline_protocol::message::transaction::{
    Outcome, PhysicalCardNo, RemoteStart, RemoteStartFailure,
};
use voltline_protocol::message::Message;
use voltline_protocol::wire::bcd::Bcd;

use super::*;
use crate::vehicle::VehicleSpec;

fn pile() -> PileCode {
    "32010600019236".parse().unwrap()
}

fn charger(spec: ChargerSpec) -> Charger {
    let epoch: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
    Charger::new(spec, epoch, TimeZone::UTC, SimTime::ZERO)
}

fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(f) => Some(f.message.clone()),
            _ => None,
        })
        .collect()
}

/// Connects and logs in at `now`; returns the outputs of the login reply.
fn online(c: &mut Charger, now: SimTime) -> Vec<Output> {
    let mut out = Vec::new();
    c.handle(now, Input::Connected, &mut out);
    assert!(matches!(sent(&out)[0], Message::Login(_)));
    let mut out = Vec::new();
    let reply = Frame::new(
        0,
        LoginReply {
            pile_code: pile(),
            result: LoginResult::Accepted,
        },
    );
    c.handle(now, Input::Frame(reply), &mut out);
    out
}

/// Ticks at every deadline until `until`, collecting outputs.
fn run_until(c: &mut Charger, until: SimTime, out: &mut Vec<Output>) {
    loop {
        let at = c.next_deadline();
        if at > until {
            break;
        }
        c.handle(at, Input::Tick, out);
    }
}

#[test]
fn login_then_billing_model_request_then_heartbeats_every_10_s() {
    let mut c = charger(ChargerSpec::ac(pile()));
    let out = online(&mut c, SimTime::ZERO);
    let msgs = sent(&out);
    assert!(matches!(msgs[0], Message::BillingModelVerify(_)));
    let mut out = Vec::new();
    // Answer every heartbeat so the link stays up.
    let mut t = SimTime::ZERO;
    while t < SimTime::from_secs(60) {
        t = c.next_deadline();
        let mut step = Vec::new();
        c.handle(t, Input::Tick, &mut step);
        for m in sent(&step) {
            if let Message::Heartbeat(h) = m {
                let r = voltline_protocol::message::register::HeartbeatReply {
                    pile_code: h.pile_code,
                    connector: h.connector,
                    reply: 0,
                };
                c.handle(t, Input::Frame(Frame::new(0, r)), &mut step);
            }
        }
        out.extend(step);
    }
    let beats = sent(&out)
        .iter()
        .filter(|m| matches!(m, Message::Heartbeat(_)))
        .count();
    assert!((6..=7).contains(&beats), "{beats} heartbeats in 60 s");
}

#[test]
fn three_unanswered_heartbeats_drop_the_link() {
    let mut c = charger(ChargerSpec::ac(pile()));
    online(&mut c, SimTime::ZERO);
    let mut out = Vec::new();
    run_until(&mut c, SimTime::from_secs(40), &mut out);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Drop(DropReason::HeartbeatsUnanswered))));
    assert!(!c.is_online());
}

#[test]
fn no_login_reply_drops_the_link() {
    let mut c = charger(ChargerSpec::ac(pile()));
    let mut out = Vec::new();
    c.handle(SimTime::ZERO, Input::Connected, &mut out);
    run_until(&mut c, SimTime::from_secs(31), &mut out);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Drop(DropReason::LoginTimeout))));
}

#[test]
fn a_full_record_store_refuses_new_sessions_and_keeps_the_old_records() {
    let mut spec = ChargerSpec::ac(pile());
    spec.max_pending_records = 1;
    spec.billing_model = Some(crate::pricing::time_of_use_model(1));
    let mut c = charger(spec);
    online(&mut c, SimTime::ZERO);
    let start = |n: u16| {
        Frame::new(
            n,
            RemoteStart {
                serial: crate::harness::new_serial(pile(), 1, n),
                pile_code: pile(),
                connector: ConnectorNo::new(1).unwrap(),
                logical_card: Bcd::ZERO,
                physical_card: PhysicalCardNo::NONE,
                balance: Money::ZERO,
            },
        )
    };
    let mut out = Vec::new();
    c.handle(
        SimTime::from_secs(1),
        Input::PlugIn {
            connector: 1,
            vehicle: VehicleSpec::standard(),
            start: StartBy::Remote,
        },
        &mut out,
    );
    c.handle(SimTime::from_secs(1), Input::Frame(start(1)), &mut out);
    c.handle(
        SimTime::from_secs(20),
        Input::UserStop { connector: 1 },
        &mut out,
    );
    assert_eq!(c.snapshot().pending_records.len(), 1);
    let mut out = Vec::new();
    c.handle(SimTime::from_secs(21), Input::Frame(start(2)), &mut out);
    let reply = sent(&out)
        .into_iter()
        .find_map(|m| match m {
            Message::RemoteStartReply(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (reply.result, reply.failure),
        (Outcome::Failed, RemoteStartFailure::DeviceFault)
    );
    assert_eq!(
        c.snapshot().pending_records.len(),
        1,
        "the old record is kept"
    );
}

#[test]
fn registers_never_decrease_and_a_session_records_its_meter_span() {
    let mut spec = ChargerSpec::dc(pile(), 120);
    spec.billing_model = Some(crate::pricing::time_of_use_model(1));
    let mut c = charger(spec);
    let mut out = Vec::new();
    c.handle(
        SimTime::ZERO,
        Input::PlugIn {
            connector: 2,
            vehicle: VehicleSpec::standard().with_soc(10, 100),
            start: StartBy::Remote,
        },
        &mut out,
    );
    online(&mut c, SimTime::ZERO);
    let s = crate::harness::new_serial(pile(), 2, 9);
    let f = Frame::new(
        3,
        RemoteStart {
            serial: s,
            pile_code: pile(),
            connector: ConnectorNo::new(2).unwrap(),
            logical_card: Bcd::ZERO,
            physical_card: PhysicalCardNo::NONE,
            balance: Money::ZERO,
        },
    );
    c.handle(SimTime::from_secs(1), Input::Frame(f), &mut out);
    let mut last = voltline_protocol::domain::Energy::ZERO;
    for minute in 1..=90 {
        c.handle(SimTime::from_secs(60 * minute), Input::Tick, &mut out);
        let r = c.snapshot().connector(2).unwrap().import_register;
        assert!(r >= last);
        last = r;
    }
    // 54 kWh from 10 % to 100 %, tapering: finished within 90 minutes at 120 kW.
    let snap = c.snapshot();
    let conn = snap.connector(2).unwrap();
    assert!(!conn.charging);
    assert_eq!(conn.soc.map(|s| s.percent()), Some(100));
    assert_eq!(conn.import_register, conn.vehicle_charged);
}

#[test]
fn offline_cards_sync_and_query_and_update_is_answered() {
    use voltline_protocol::message::cards::{CardPresence, CardQuery, CardSync, OfflineCard};
    use voltline_protocol::message::maintenance::{
        ExecuteWhen, Update, UpdatePileKind, UpdateStatus,
    };
    let mut c = charger(ChargerSpec::ac(pile()));
    online(&mut c, SimTime::ZERO);
    let card = PhysicalCardNo([0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]);
    let mut out = Vec::new();
    let sync = CardSync {
        pile_code: pile(),
        cards: vec![OfflineCard {
            logical_card_no: Bcd::ZERO,
            physical_card_no: card,
        }],
    };
    c.handle(
        SimTime::from_secs(1),
        Input::Frame(Frame::new(5, sync)),
        &mut out,
    );
    let query = CardQuery {
        pile_code: pile(),
        cards: vec![card, PhysicalCardNo::NONE],
    };
    c.handle(
        SimTime::from_secs(1),
        Input::Frame(Frame::new(6, query)),
        &mut out,
    );
    let update = Update {
        pile_code: pile(),
        pile_kind: UpdatePileKind::Ac,
        pile_power_kw: 7,
        server_address: voltline_protocol::wire::text::FixedText::EMPTY,
        server_port: 21,
        username: voltline_protocol::wire::text::FixedText::EMPTY,
        password: voltline_protocol::message::maintenance::UpdatePassword(
            voltline_protocol::wire::text::FixedText::EMPTY,
        ),
        file_path: voltline_protocol::wire::text::FixedText::EMPTY,
        when: ExecuteWhen::Immediately,
        download_timeout_min: 5,
    };
    c.handle(
        SimTime::from_secs(1),
        Input::Frame(Frame::new(7, update)),
        &mut out,
    );
    let msgs = sent(&out);
    assert!(msgs
        .iter()
        .any(|m| matches!(m, Message::CardSyncReply(r) if r.result == Outcome::Succeeded)));
    let presence: Vec<_> = msgs
        .iter()
        .find_map(|m| match m {
            Message::CardQueryReply(r) => Some(r.results.iter().map(|x| x.presence).collect()),
            _ => None,
        })
        .unwrap();
    assert_eq!(presence, vec![CardPresence::Present, CardPresence::Absent]);
    assert!(msgs.iter().any(
        |m| matches!(m, Message::UpdateReply(r) if r.status == UpdateStatus::DownloadTimeout)
    ));
}

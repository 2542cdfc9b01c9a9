//! Idempotency, ordering, limits and deadlines: the rules of the `connector` module doc.

use rust_decimal_macros::dec;
use voltline_protocol::domain::{AccountId, Energy, Money, Power, Soc};
use voltline_protocol::message::transaction::{PhysicalCardNo, PileStartRequest, StartMethod};
use voltline_protocol::message::v2g::{BidirectionalMeter, DischargeRecord, DischargeStartReply};
use voltline_protocol::message::v2g::{DischargeReason, DischargeStopReason, Outcome};
use voltline_protocol::sync::{
    Authorisation, Command, CommandOutcome, ConnectorState, RecordBody, SessionLimit,
};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::Message;

use super::tests_support::*;
use super::{
    Admission, CardDecision, ConnectorMachine, Context, Effect, Ignored, Input, MachineConfig,
    State,
};

fn results(step: &super::Step) -> Vec<CommandOutcome> {
    step.records()
        .filter_map(|r| match r {
            RecordBody::CommandResult(c) => Some(c.outcome.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn resent_record_while_its_store_is_in_flight_yields_nothing() {
    let mut m = charging_machine();
    let first = go(&mut m, t(10), record_frame(1));
    let stored = |s: &super::Step| {
        s.records()
            .filter(|r| matches!(r, RecordBody::Transaction(_)))
            .count()
    };
    assert_eq!(stored(&first), 1);
    let again = go(&mut m, t(11), record_frame(1));
    assert!(again.effects.is_empty());
    assert_eq!(again.ignored, Some(Ignored::InFlight));
}

#[test]
fn record_whose_store_failed_is_stored_again_when_resent() {
    let mut m = charging_machine();
    go(&mut m, t(10), record_frame(1));
    let failed = go(&mut m, t(11), Input::RecordFailed { serial: serial(1) });
    assert!(failed.effects.is_empty());
    let again = go(&mut m, t(12), record_frame(1));
    assert!(
        matches!(again.effects[..], [Effect::StoreThenAck { .. }, ..]),
        "the resend is stored again: {:?}",
        again.effects
    );
    let unknown = go(&mut m, t(13), Input::RecordFailed { serial: serial(9) });
    assert_eq!(unknown.ignored, Some(Ignored::NotPending));
}

#[test]
fn transaction_ack_travels_only_inside_store_then_ack() {
    let mut m = charging_machine();
    let step = go(&mut m, t(10), record_frame(1));
    assert_eq!(
        step.frames().count(),
        0,
        "no ack before the record is durable"
    );
    let Effect::StoreThenAck { serial: s, ack, .. } = &step.effects[0] else {
        panic!("{:?}", step.effects)
    };
    assert_eq!(*s, serial(1));
    assert!(matches!(ack, Message::TransactionRecordAck(a) if a.serial == serial(1)));
}

#[test]
fn resent_record_after_it_is_durable_yields_only_a_reack() {
    let mut m = finished_machine();
    let done = go(&mut m, t(10), Input::RecordDurable { serial: serial(1) });
    assert_eq!(done.effects, vec![Effect::ClearSession]);
    assert_eq!(m.state(), &State::Idle { plugged: true });
    let again = go(&mut m, t(11), record_frame(1));
    assert_eq!(again.records().count(), 0, "never a second outbox record");
    assert_eq!(
        again.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0x40]
    );
}

#[test]
fn stale_or_repeated_realtime_data_is_ignored_for_pricing() {
    let tariff = two_period_tariff();
    let mut m = charging_machine();
    let c = ctx(t(8 * 3600), Some(&tariff));
    let s1 = m.step(&c, charging(1, 2_000, 10));
    assert_eq!(s1.records().count(), 1);
    let priced = m.state().session().unwrap().cost;
    for stale in [
        charging(1, 2_000, 10),
        charging(1, 1_000, 5),
        charging(1, 1_500, 12),
    ] {
        let s = m.step(&ctx(t(8 * 3600 + 60), Some(&tariff)), stale);
        assert_eq!(s.ignored, Some(Ignored::Stale));
        assert!(s.effects.is_empty());
    }
    assert_eq!(m.state().session().unwrap().cost, priced);
    assert_eq!(m.state().session().unwrap().energy, Energy::from_wh(2_000));
}

#[test]
fn start_reply_for_a_command_no_longer_pending_is_ignored() {
    let mut m = charging_machine();
    let dup = go(&mut m, t(10), start_reply(1, true));
    assert_eq!(dup.ignored, Some(Ignored::NotPending));
    let mut m = start_requested_machine();
    let other = go(&mut m, t(10), start_reply(7, true));
    assert_eq!(other.ignored, Some(Ignored::NotPending));
    assert_eq!(m.state().name(), "start_requested");
}

#[test]
fn stop_reply_without_a_stop_in_flight_is_ignored() {
    let mut m = stopping_machine();
    assert_eq!(
        results(&go(&mut m, t(10), stop_reply(true))),
        vec![CommandOutcome::Accepted]
    );
    let again = go(&mut m, t(11), stop_reply(true));
    assert_eq!(again.ignored, Some(Ignored::NotPending));
}

#[test]
fn expired_command_is_reported_and_never_sent() {
    let mut m = idle_machine();
    let late = envelope(
        "c-late",
        t(5),
        Command::StopCharging {
            pile: pile(),
            connector: conn(),
            order: order(),
        },
    );
    let step = go(&mut m, t(5), late);
    assert_eq!(step.frames().count(), 0);
    assert_eq!(results(&step), vec![CommandOutcome::Expired]);
}

#[test]
fn command_delivered_twice_acts_once() {
    let mut m = idle_machine();
    let cmd = start_cmd("c-start", 1, SessionLimit::default());
    assert_eq!(go(&mut m, t(2), cmd.clone()).frames().count(), 1);
    let again = go(&mut m, t(3), cmd.clone());
    assert!(again.effects.is_empty());
    go(&mut m, t(4), start_reply(1, true));
    assert!(
        go(&mut m, t(5), cmd).effects.is_empty(),
        "still a duplicate while charging"
    );
}

#[test]
fn spending_limit_sends_exactly_one_stop() {
    let tariff = two_period_tariff();
    let limit = SessionLimit {
        amount: Some(Money::from_yuan(dec!(5))),
        energy: None,
    };
    let mut m = idle_machine();
    let c = |s| ctx(t(9 * 3600 + s), Some(&tariff));
    m.step(&c(0), start_cmd("c-start", 1, limit));
    m.step(&c(1), start_reply(1, true));
    let mut stops = 0;
    // Peak: 2.50 yuan/kWh, 1 kWh per minute: 5 yuan after 2 kWh.
    for minute in 1..=6u16 {
        let step = m.step(
            &c(60 * i64::from(minute)),
            charging(1, 1_000 * i64::from(minute), minute),
        );
        stops += step.frames().filter(|f| f.frame_type() == 0x36).count();
        if minute == 3 {
            assert_eq!(
                stops,
                1,
                "stopped at 5 yuan: {:?}",
                m.state().session().unwrap().cost
            );
        }
    }
    assert_eq!(stops, 1);
    assert_eq!(m.state().name(), "stopping");
    let cost = m.state().session().unwrap().cost.unwrap();
    assert!(cost >= Money::from_yuan(dec!(5)), "{cost}");
}

#[test]
fn spending_limit_stops_one_report_early_when_the_next_would_overspend() {
    let tariff = two_period_tariff();
    let limit = SessionLimit {
        amount: Some(Money::from_yuan(dec!(6))),
        energy: None,
    };
    let mut m = idle_machine();
    let c = |s: i64| ctx(t(9 * 3600 + s), Some(&tariff));
    m.step(&c(0), start_cmd("c-start", 1, limit));
    m.step(&c(1), start_reply(1, true));
    // Peak: 2.50 yuan/kWh, 1 kWh a minute: 2.50 then 5.00; the next minute would reach
    // 7.50, past the 6-yuan limit, so the stop goes at 5.00.
    let first = m.step(&c(60), charging(1, 1_000, 1));
    assert_eq!(first.frames().filter(|f| f.frame_type() == 0x36).count(), 0);
    let second = m.step(&c(120), charging(1, 2_000, 2));
    assert_eq!(
        second.frames().filter(|f| f.frame_type() == 0x36).count(),
        1,
        "cost {:?}",
        m.state().session().unwrap().cost
    );
    assert_eq!(m.state().name(), "stopping");
    assert_eq!(
        m.state().session().unwrap().cost,
        Some(Money::from_yuan(dec!(5)))
    );
}

#[test]
fn energy_limit_sends_a_stop() {
    let limit = SessionLimit {
        amount: None,
        energy: Some(Energy::from_wh(3_000)),
    };
    let mut m = idle_machine();
    go(&mut m, t(2), start_cmd("c-start", 1, limit));
    go(&mut m, t(3), start_reply(1, true));
    // 1 kWh a report: the next report would land exactly on the limit, not past it.
    assert_eq!(go(&mut m, t(60), charging(1, 1_000, 1)).frames().count(), 0);
    assert_eq!(
        go(&mut m, t(120), charging(1, 2_000, 2)).frames().count(),
        0
    );
    // Half a kWh, then the limit itself.
    assert_eq!(
        go(&mut m, t(150), charging(1, 2_500, 3)).frames().count(),
        0
    );
    let step = go(&mut m, t(180), charging(1, 3_000, 4));
    assert_eq!(
        step.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0x36]
    );
}

#[test]
fn energy_limit_the_next_report_would_pass_stops_early() {
    let limit = SessionLimit {
        amount: None,
        energy: Some(Energy::from_wh(3_000)),
    };
    let mut m = idle_machine();
    go(&mut m, t(2), start_cmd("c-start", 1, limit));
    go(&mut m, t(3), start_reply(1, true));
    let step = go(&mut m, t(60), charging(1, 2_000, 1));
    assert_eq!(
        step.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0x36],
        "2 kWh now and 2 more by the next report would pass 3 kWh"
    );
}

#[test]
fn start_without_answer_fails_at_its_deadline() {
    let mut m = start_requested_machine();
    go(&mut m, t(30), heartbeat());
    assert!(go(&mut m, t(60), Input::Tick).effects.is_empty());
    go(&mut m, t(70), heartbeat());
    let step = go(&mut m, t(2 + 75), Input::Tick);
    assert!(matches!(
        results(&step)[..],
        [CommandOutcome::Failed { .. }]
    ));
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn unanswered_stop_is_resent_a_bounded_number_of_times() {
    let mut m = stopping_machine();
    let mut sent = 1;
    for i in 1..=10 {
        let now = t(4 + 31 * i);
        go(&mut m, now, heartbeat());
        sent += go(&mut m, now, Input::Tick).frames().count();
    }
    assert_eq!(sent, usize::from(MachineConfig::default().stop_attempts));
}

#[test]
fn card_start_uses_the_cached_list_decision() {
    let mut m = idle_machine();
    let card: PhysicalCardNo = "00000000D14B0A54".parse().unwrap();
    let request = Input::Frame(Message::PileStartRequest(PileStartRequest {
        pile_code: pile(),
        connector: conn(),
        method: StartMethod::Card,
        password_required: false,
        card,
        password_md5: FixedText::EMPTY,
        vin_reversed: FixedText::EMPTY,
    }));
    let ask = go(&mut m, t(2), request.clone());
    assert!(matches!(ask.effects[..], [Effect::AuthoriseCard { .. }]));
    let decision = CardDecision::Authorised {
        account: AccountId::new("acct-9").unwrap(),
        serial: serial(5),
        limit: SessionLimit {
            amount: Some(Money::from_yuan(dec!(30))),
            energy: None,
        },
        balance: Money::from_yuan(dec!(30)),
    };
    let reply = go(&mut m, t(3), Input::CardDecision { card, decision });
    assert!(
        matches!(&reply.effects[..], [Effect::SaveStart { reply, .. }] if reply.frame_type() == 0x32),
        "{:?}",
        reply.effects
    );
    go(&mut m, t(20), charging(5, 100, 1));
    let session = m.state().session().unwrap();
    assert!(
        matches!(&session.authorisation, Authorisation::OfflineCard { card: c, .. } if c == "00000000D14B0A54")
    );
    assert_eq!(session.limit.amount, Some(Money::from_yuan(dec!(30))));

    // With the store near its bound, the pile is refused at once.
    let mut m = idle_machine();
    let refuse = Context {
        now: t(2),
        tariff: None,
        admission: Admission::Refuse,
    };
    let step = m.step(&refuse, request);
    assert_eq!(
        step.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0x32]
    );
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn refused_admission_rejects_a_start_command() {
    let mut m = idle_machine();
    let refuse = Context {
        now: t(2),
        tariff: None,
        admission: Admission::Refuse,
    };
    let step = m.step(&refuse, start_cmd("c-start", 1, SessionLimit::default()));
    assert_eq!(step.frames().count(), 0);
    assert!(matches!(
        results(&step)[..],
        [CommandOutcome::Rejected { .. }]
    ));
}

#[test]
fn restored_session_resumes_and_prices_its_record() {
    let running = charging_machine();
    let mut session = running.state().session().unwrap().clone();
    session.cost = Some(Money::from_yuan(dec!(12.34)));
    let mut m = ConnectorMachine::restore(id(), MachineConfig::default(), Some(session));
    assert_eq!(m.public_state(), ConnectorState::Offline);
    go(&mut m, t(100), Input::PileConnected);
    assert_eq!(m.state().name(), "charging");
    let step = go(&mut m, t(101), record_frame(1));
    let Some(RecordBody::Transaction(up)) = step.records().next() else {
        panic!("{:?}", step.effects)
    };
    assert_eq!(up.edge_cost, Some(Money::from_yuan(dec!(12.34))));
    assert!(matches!(up.authorisation, Authorisation::Order { .. }));
}

#[test]
fn discharge_session_round_trip() {
    let mut m = idle_machine();
    let cmd = envelope(
        "c-v2g",
        t(3600),
        Command::StartDischarge {
            pile: pile(),
            connector: conn(),
            order: order(),
            serial: serial(9),
            soc_floor: Soc::new(30).unwrap(),
            max_power: Power::from_kw(7),
            until: t(7200),
        },
    );
    assert_eq!(
        go(&mut m, t(2), cmd).frames().next().unwrap().frame_type(),
        0xC2
    );
    let ok = Message::DischargeStartReply(DischargeStartReply {
        serial: serial(9),
        pile_code: pile(),
        connector: conn(),
        result: Outcome::Succeeded,
        reason: DischargeReason::None,
    });
    go(&mut m, t(3), Input::Frame(ok));
    assert_eq!(m.public_state(), ConnectorState::Discharging);
    let meter = |export_wh| {
        Input::Frame(Message::BidirectionalMeter(BidirectionalMeter {
            serial: serial(9),
            pile_code: pile(),
            connector: conn(),
            import_register: Energy::from_wh(1_000),
            export_register: Energy::from_wh(export_wh),
            active_power: Power::from_kw(-7),
            soc: Soc::new(60).unwrap(),
        }))
    };
    assert_eq!(go(&mut m, t(20), meter(500)).records().count(), 1);
    assert_eq!(go(&mut m, t(21), meter(500)).ignored, Some(Ignored::Stale));
    assert_eq!(go(&mut m, t(35), meter(700)).records().count(), 1);
    assert_eq!(m.state().session().unwrap().energy, Energy::from_wh(200));
    let record = Message::DischargeRecord(DischargeRecord {
        serial: serial(9),
        pile_code: pile(),
        connector: conn(),
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        export_register_start: Energy::from_wh(500),
        export_register_end: Energy::from_wh(700),
        exported_energy: Energy::from_wh(200),
        stop_reason: DischargeStopReason(0x40),
    });
    let step = go(&mut m, t(40), Input::Frame(record.clone()));
    assert!(matches!(
        &step.effects[0],
        Effect::StoreThenAck {
            ack: Message::DischargeRecordAck(_),
            ..
        }
    ));
    assert_eq!(m.state().name(), "finished");
    go(&mut m, t(41), Input::RecordDurable { serial: serial(9) });
    let again = go(&mut m, t(42), Input::Frame(record));
    assert_eq!(
        again.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0xCA]
    );
    assert_eq!(again.records().count(), 0);
}

#[test]
fn lost_start_reply_is_recovered_from_realtime_data() {
    let mut m = start_requested_machine();
    let step = go(&mut m, t(10), charging(1, 100, 1));
    assert_eq!(results(&step), vec![CommandOutcome::Accepted]);
    assert_eq!(m.state().name(), "charging");
    assert_eq!(
        go(&mut m, t(11), start_reply(1, true)).ignored,
        Some(Ignored::NotPending)
    );
}

#[test]
fn frames_of_another_connector_are_not_ours() {
    let mut m = charging_machine();
    let mut other = voltline_protocol::message::realtime::RealTimeData::idle(
        pile(),
        voltline_protocol::domain::ConnectorNo::new(2).unwrap(),
    );
    other.status = voltline_protocol::message::realtime::ConnectorStatus::Fault;
    let step = go(&mut m, t(10), Input::Frame(Message::RealTimeData(other)));
    assert_eq!(step.ignored, Some(Ignored::NotOurs));
    assert_eq!(m.state().name(), "charging");
}

#[test]
fn record_made_durable_while_offline_ends_the_session() {
    let mut m = finished_machine();
    go(&mut m, t(10), Input::PileDisconnected);
    let step = go(&mut m, t(11), Input::RecordDurable { serial: serial(1) });
    assert_eq!(step.effects, vec![Effect::ClearSession]);
    assert_eq!(m.state(), &State::Offline { session: None });
    go(&mut m, t(12), Input::PileConnected);
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn parallel_start_reply_counts_as_a_start_reply() {
    use voltline_protocol::message::parallel::{GunRole, ParallelRemoteStartReply};
    use voltline_protocol::message::transaction::RemoteStartFailure;
    use voltline_protocol::wire::bcd::Bcd;
    let reply = Input::Frame(Message::ParallelRemoteStartReply(
        ParallelRemoteStartReply {
            serial: serial(1),
            pile_code: pile(),
            connector: conn(),
            started: Outcome::Succeeded,
            failure: RemoteStartFailure::None,
            gun_role: GunRole::Main,
            parallel_serial: Bcd::ZERO,
        },
    ));
    let mut m = start_requested_machine();
    assert_eq!(
        results(&go(&mut m, t(10), reply.clone())),
        vec![CommandOutcome::Accepted]
    );
    assert_eq!(m.state().name(), "charging");
    assert_eq!(go(&mut m, t(11), reply).ignored, Some(Ignored::NotPending));
}

#[test]
fn stale_idle_frame_does_not_switch_off_the_spending_limit() {
    use voltline_protocol::message::realtime::ConnectorStatus as PileStatus;
    let tariff = two_period_tariff();
    let limit = SessionLimit {
        amount: Some(Money::from_yuan(dec!(5))),
        energy: None,
    };
    let mut m = idle_machine();
    let c = |s: i64| ctx(t(9 * 3600 + s), Some(&tariff));
    m.step(&c(0), start_cmd("c-start", 1, limit));
    m.step(&c(1), start_reply(1, true));
    // An idle frame from before the start, delivered late (MQTT redelivery).
    m.step(&c(2), rt(0, PileStatus::Idle, 0, 0));
    assert_eq!(m.state().name(), "stopping");
    // The pile goes on charging: the session is charging again and its limit holds.
    m.step(&c(60), charging(1, 1_000, 1));
    assert_eq!(m.state().name(), "charging");
    let step = m.step(&c(120), charging(1, 2_000, 2));
    assert_eq!(
        step.frames().map(|f| f.frame_type()).collect::<Vec<_>>(),
        vec![0x36]
    );
}

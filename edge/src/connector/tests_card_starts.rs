//! Card starts at the pile (0x31 → 0x32): repeated requests, another card, idle reports, a
//! cloud start holding the connector, and the same across a link loss and an edge restart.
//! The rules are in the doc of `cards.rs`.

use rust_decimal_macros::dec;
use voltline_protocol::domain::Money;
use voltline_protocol::message::realtime::{ConnectorStatus as PileStatus, GunPlugged};
use voltline_protocol::message::transaction::{Outcome, PileStartReply};
use voltline_protocol::sync::{Authorisation, ConnectorState, RecordBody};
use voltline_protocol::Message;

use super::tests_support::*;
use super::{
    Admission, ConnectorMachine, Context, Effect, Ignored, Input, MachineConfig, PendingStart,
    Saved, State, Step,
};

/// The 0x32 frames a step sends, at once or once its card start is durable.
fn answers(step: &Step) -> Vec<&PileStartReply> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(Message::PileStartReply(r))
            | Effect::SaveStart {
                reply: Message::PileStartReply(r),
                ..
            } => Some(r),
            _ => None,
        })
        .collect()
}

/// Whether every authorised 0x32 of the step waits for its start to be durable.
fn authorised_only_after_saving(step: &Step) -> bool {
    step.frames()
        .all(|m| !matches!(m, Message::PileStartReply(r) if r.authorised == Outcome::Succeeded))
}

fn pending(m: &ConnectorMachine) -> &PendingStart {
    match m.state() {
        State::StartRequested(p) => p,
        other => panic!("not start_requested: {other:?}"),
    }
}

fn saved_start(step: &Step) -> Option<&PendingStart> {
    step.effects.iter().find_map(|e| match e {
        Effect::SaveStart { start, .. } => Some(start),
        _ => None,
    })
}

fn clears(step: &Step) -> bool {
    step.effects.contains(&Effect::ClearSession)
}

fn asks_about(step: &Step) -> Vec<super::PhysicalCardNo> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::AuthoriseCard { card, .. } => Some(*card),
            _ => None,
        })
        .collect()
}

/// A 0x13 that is not charging, with the gun in or out.
fn idle_report(plugged: bool) -> Input {
    let Input::Frame(Message::RealTimeData(mut f)) = rt(0, PileStatus::Idle, 0, 0) else {
        unreachable!()
    };
    f.gun_plugged = if plugged {
        GunPlugged::Yes
    } else {
        GunPlugged::No
    };
    Input::Frame(Message::RealTimeData(f))
}

fn assert_card_session(m: &ConnectorMachine, n: u16) {
    let State::Charging(s) = m.state() else {
        panic!("not charging: {:?}", m.state())
    };
    assert_eq!(s.serial, serial(n));
    assert!(
        matches!(&s.authorisation, Authorisation::OfflineCard { card: c, account } if *c == card(7).to_string() && account.as_str() == "acct-card"),
        "{:?}",
        s.authorisation
    );
    assert_eq!(s.limit.amount, Some(Money::from_yuan(dec!(30))));
}

#[test]
fn an_authorised_card_is_answered_once_and_its_start_saved() {
    let mut m = idle_machine();
    let ask = go(&mut m, t(2), card_request(card(7)));
    assert_eq!(asks_about(&ask), vec![card(7)]);
    let step = go(&mut m, t(3), card_authorised(card(7), 3));
    let [reply] = answers(&step)[..] else {
        panic!("{:?}", step.effects)
    };
    assert_eq!(
        (reply.serial, reply.authorised, reply.balance),
        (serial(3), Outcome::Succeeded, Money::from_yuan(dec!(30)))
    );
    assert_eq!(saved_start(&step), Some(pending(&m)));
    assert!(authorised_only_after_saving(&step), "{:?}", step.effects);
    let answer = pending(&m).card.clone().expect("a card start");
    assert_eq!((answer.card, answer.answered_at), (card(7), t(3)));
}

#[test]
fn the_same_card_asking_again_gets_the_same_answer_and_a_fresh_window() {
    let mut m = card_start_machine();
    for (i, now) in [t(4), t(5), t(60)].into_iter().enumerate() {
        let step = go(&mut m, now, card_request(card(7)));
        assert!(asks_about(&step).is_empty(), "request {i} decided again");
        let [reply] = answers(&step)[..] else {
            panic!("request {i}: {:?}", step.effects)
        };
        assert_eq!(reply.serial, serial(3), "request {i}");
        assert_eq!(reply.authorised, Outcome::Succeeded);
        assert_eq!(reply.balance, Money::from_yuan(dec!(30)));
        let p = pending(&m);
        assert_eq!(saved_start(&step), Some(p));
        assert!(authorised_only_after_saving(&step), "request {i}");
        assert_eq!(p.serial, serial(3));
        assert_eq!(p.card.as_ref().unwrap().answered_at, now);
        let window = MachineConfig::default().start_timeout_ms as i64 / 1_000;
        assert_eq!(p.deadline, now + jiff::SignedDuration::from_secs(window));
    }
    // Past the first answer's deadline, the start lives on from the last answer...
    assert_eq!(go(&mut m, t(3 + 76), Input::Tick).effects, vec![]);
    assert_eq!(m.state().name(), "start_requested");
    // ... and the pile charges the one transaction it was given.
    go(&mut m, t(80), charging(3, 100, 1));
    assert_card_session(&m, 3);
}

#[test]
fn the_same_card_is_answered_again_even_while_the_store_refuses_new_sessions() {
    let mut m = card_start_machine();
    let refuse = Context {
        now: t(4),
        tariff: None,
        admission: Admission::Refuse,
    };
    let step = m.step(&refuse, card_request(card(7)));
    let [reply] = answers(&step)[..] else {
        panic!("{:?}", step.effects)
    };
    assert_eq!(
        (reply.serial, reply.authorised),
        (serial(3), Outcome::Succeeded)
    );
}

#[test]
fn another_card_drops_the_pending_card_start_and_is_decided_afresh() {
    let mut m = card_start_machine();
    let step = go(&mut m, t(4), card_request(card(8)));
    assert_eq!(asks_about(&step), vec![card(8)]);
    assert!(clears(&step), "the dropped start stays in the store");
    assert!(answers(&step).is_empty());
    assert_eq!(m.state().name(), "idle");
    let step = go(&mut m, t(5), card_authorised(card(8), 4));
    assert_eq!(answers(&step)[0].serial, serial(4));
    assert_eq!(pending(&m).card.as_ref().unwrap().card, card(8));
    // The first card asking now is the other card: decided afresh too.
    let step = go(&mut m, t(6), card_request(card(7)));
    assert_eq!(asks_about(&step), vec![card(7)]);
}

#[test]
fn a_card_during_a_cloud_start_is_left_unanswered() {
    let mut m = start_requested_machine();
    let before = pending(&m).clone();
    let step = go(&mut m, t(4), card_request(card(7)));
    assert_eq!(step.effects, vec![]);
    assert_eq!(step.ignored, Some(Ignored::Irrelevant));
    assert_eq!(pending(&m), &before);
    // Once the cloud's start fails, the pile's next request is decided.
    go(&mut m, t(5), start_reply(1, false));
    let step = go(&mut m, t(6), card_request(card(7)));
    assert_eq!(asks_about(&step), vec![card(7)]);
}

#[test]
fn a_plugged_idle_report_drops_the_card_start_only_after_the_grace() {
    let grace = MachineConfig::default().card_answer_grace_ms as i64 / 1_000;
    let mut m = card_start_machine();
    // Sent before the 0x32 reached the pile: the start stands.
    let step = go(&mut m, t(3 + grace - 1), idle_report(true));
    assert_eq!(step.effects, vec![]);
    assert_eq!(m.state().name(), "start_requested");
    // Well after it: the pile did not start.
    let step = go(&mut m, t(3 + grace), idle_report(true));
    assert_eq!(step.effects, vec![Effect::ClearSession]);
    assert_eq!(m.state(), &State::Idle { plugged: true });
    let step = go(&mut m, t(3 + grace + 1), card_request(card(7)));
    assert_eq!(asks_about(&step), vec![card(7)]);
}

#[test]
fn an_unplugged_report_drops_the_card_start_at_once() {
    let mut m = card_start_machine();
    let step = go(&mut m, t(3), idle_report(false));
    assert!(clears(&step));
    assert!(step.records().any(|r| matches!(
        r,
        RecordBody::ConnectorStatus(s) if s.state == ConnectorState::Available
    )));
    assert_eq!(m.state(), &State::Idle { plugged: false });
}

#[test]
fn idle_reports_never_drop_a_cloud_start() {
    let mut m = start_requested_machine();
    for now in [t(10), t(50)] {
        assert_eq!(go(&mut m, now, idle_report(true)).effects, vec![]);
        assert_eq!(go(&mut m, now, idle_report(false)).effects, vec![]);
        assert_eq!(m.state().name(), "start_requested");
    }
}

#[test]
fn an_unanswered_card_start_times_out_and_is_forgotten_in_the_store() {
    let mut m = card_start_machine();
    go(&mut m, t(70), heartbeat());
    let step = go(&mut m, t(3 + 75), Input::Tick);
    assert_eq!(step.effects, vec![Effect::ClearSession]);
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn a_card_start_outlives_a_link_loss_and_its_session_keeps_the_card() {
    let mut m = card_start_machine();
    let step = go(&mut m, t(4), Input::PileDisconnected);
    assert!(!clears(&step), "the pile may have started on the 0x32");
    assert_eq!(m.public_state(), ConnectorState::Offline);
    go(&mut m, t(5), Input::PileConnected);
    assert_eq!(pending(&m).serial, serial(3));
    go(&mut m, t(6), charging(3, 100, 1));
    assert_card_session(&m, 3);
}

/// A machine restored from what the store saved for the card start of `card_start_machine`.
fn restored() -> ConnectorMachine {
    let step = {
        let mut m = idle_machine();
        go(&mut m, t(2), card_request(card(7)));
        go(&mut m, t(3), card_authorised(card(7), 3))
    };
    let saved = saved_start(&step).expect("saved").clone();
    // Through the store's encoding.
    let bytes = serde_json::to_vec(&saved).unwrap();
    let Saved::CardStart(start) = serde_json::from_slice::<Saved>(&bytes).unwrap() else {
        panic!("decoded as a session")
    };
    assert_eq!(start, saved);
    ConnectorMachine::restore_card_start(id(), MachineConfig::default(), start)
}

#[test]
fn after_a_restart_the_pile_charging_the_answered_start_keeps_the_card() {
    let mut m = restored();
    assert_eq!(m.public_state(), ConnectorState::Offline);
    go(&mut m, t(20), charging(3, 100, 1));
    assert_card_session(&m, 3);
}

#[test]
fn after_a_restart_a_request_is_decided_afresh_and_the_old_start_still_bills_the_card() {
    let mut m = restored();
    go(&mut m, t(20), Input::PileConnected);
    // The pile may have charged and ended transaction 3 while the edge was down: 3 is never
    // handed out again.
    let step = go(&mut m, t(21), card_request(card(7)));
    assert!(answers(&step).is_empty());
    assert_eq!(asks_about(&step), vec![card(7)]);
    assert!(clears(&step));
    let step = go(&mut m, t(22), card_authorised(card(7), 4));
    assert_eq!(answers(&step)[0].serial, serial(4));
    // Transaction 3's record, resent now, is the card's.
    let step = go(&mut m, t(23), record_frame(3));
    let Some(RecordBody::Transaction(up)) = step.records().next() else {
        panic!("{:?}", step.effects)
    };
    assert!(matches!(
        &up.authorisation,
        Authorisation::OfflineCard { .. }
    ));
    assert_eq!(pending(&m).serial, serial(4));
}

#[test]
fn after_a_link_loss_a_request_is_decided_afresh() {
    let mut m = card_start_machine();
    go(&mut m, t(4), Input::PileDisconnected);
    go(&mut m, t(5), Input::PileConnected);
    let step = go(&mut m, t(6), card_request(card(7)));
    assert_eq!(asks_about(&step), vec![card(7)]);
    assert!(answers(&step).is_empty());
}

#[test]
fn after_a_restart_an_idle_report_drops_the_start_and_the_store_forgets_it() {
    let mut m = restored();
    let step = go(&mut m, t(20), idle_report(true));
    assert!(clears(&step));
    assert_eq!(m.state().name(), "idle");
    let step = go(&mut m, t(21), card_request(card(7)));
    assert_eq!(asks_about(&step), vec![card(7)]);
}

#[test]
fn after_a_restart_a_start_past_its_deadline_is_forgotten_while_offline() {
    let mut m = restored();
    assert_eq!(go(&mut m, t(40), Input::Tick).effects, vec![]);
    let step = go(&mut m, t(3 + 75), Input::Tick);
    assert_eq!(step.effects, vec![Effect::ClearSession]);
    go(&mut m, t(100), Input::PileConnected);
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn a_cloud_start_is_never_restored_as_a_card_start() {
    let cloud = pending(&start_requested_machine()).clone();
    let mut m = ConnectorMachine::restore_card_start(id(), MachineConfig::default(), cloud);
    go(&mut m, t(20), Input::PileConnected);
    assert_eq!(m.state().name(), "idle");
}

#[test]
fn a_saved_session_still_decodes_as_a_session() {
    let session = charging_machine().state().session().unwrap().clone();
    let bytes = serde_json::to_vec(&session).unwrap();
    assert_eq!(
        serde_json::from_slice::<Saved>(&bytes).unwrap(),
        Saved::Session(session)
    );
}

#[test]
fn a_pile_charging_a_dropped_card_start_still_charges_the_card() {
    let grace = MachineConfig::default().card_answer_grace_ms as i64 / 1_000;
    let mut m = card_start_machine();
    go(&mut m, t(3 + grace), idle_report(true));
    assert_eq!(m.state().name(), "idle");
    // The 0x32 reached the pile later than the grace assumed: it started after all.
    let step = go(&mut m, t(3 + grace + 1), charging(3, 100, 1));
    assert_card_session(&m, 3);
    assert!(step
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveSession(s) if s.serial == serial(3))));
    // Only once: the memory of the dropped start is used up.
    assert_eq!(m.take_dropped_start(serial(3)), None);
}

#[test]
fn the_record_of_a_dropped_card_start_is_billed_to_the_card() {
    let mut m = card_start_machine();
    go(&mut m, t(60), heartbeat());
    go(&mut m, t(3 + 75), Input::Tick);
    assert_eq!(m.state().name(), "idle");
    let step = go(&mut m, t(80), record_frame(3));
    let Some(RecordBody::Transaction(up)) = step.records().next() else {
        panic!("{:?}", step.effects)
    };
    assert!(
        matches!(&up.authorisation, Authorisation::OfflineCard { account, .. } if account.as_str() == "acct-card"),
        "{:?}",
        up.authorisation
    );
    // Another serial is the pile's own, as before.
    let step = go(&mut m, t(81), record_frame(4));
    let Some(RecordBody::Transaction(up)) = step.records().next() else {
        panic!("{:?}", step.effects)
    };
    assert_eq!(up.authorisation, Authorisation::Pile);
}

#[test]
fn a_start_whose_serial_has_a_record_is_never_answered_again() {
    let mut m = card_start_machine();
    m.remember_durable(serial(3));
    let step = go(&mut m, t(4), card_request(card(7)));
    assert!(
        answers(&step).is_empty(),
        "serial 3 given to a second session"
    );
    assert_eq!(asks_about(&step), vec![card(7)]);
    assert!(clears(&step));
}

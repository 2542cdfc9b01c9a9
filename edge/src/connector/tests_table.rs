//! The transition table: every state × a representative input of every kind, with the next
//! state and the effects (in order). A row reads: in `state`, `input` leads to `next` and
//! does `effects`.

use voltline_protocol::message::realtime::ConnectorStatus as PileStatus;
use voltline_protocol::sync::{RecordBody, SessionLimit};

use super::tests_support::*;
use super::{ConnectorMachine, Effect, Input, Step};

fn summary(step: &Step) -> Vec<String> {
    step.effects
        .iter()
        .map(|e| match e {
            Effect::Send(m) => format!("send:{}", m.name()),
            Effect::Record(r) => format!("record:{}", record_name(r)),
            Effect::StoreThenAck { ack, .. } => format!("store_then_ack:{}", ack.name()),
            Effect::AuthoriseCard { .. } => "authorise_card".to_owned(),
            Effect::SaveSession(_) => "save_session".to_owned(),
            Effect::SaveStart { reply, .. } => format!("save_start_then_send:{}", reply.name()),
            Effect::ClearSession => "clear_session".to_owned(),
        })
        .collect()
}

fn record_name(r: &RecordBody) -> String {
    match r {
        RecordBody::Transaction(_) => "transaction".into(),
        RecordBody::Discharge(_) => "discharge".into(),
        RecordBody::MeterReading(_) => "meter_reading".into(),
        RecordBody::ConnectorStatus(s) => format!("status={:?}", s.state),
        RecordBody::CommandResult(c) => format!("result={:?}", c.outcome),
        RecordBody::Alarm(a) => format!("alarm={}", a.code),
        RecordBody::Thinned => "thinned".into(),
    }
}

type Builder = fn() -> ConnectorMachine;

const STATES: [(&str, Builder); 7] = [
    ("offline", offline_machine),
    ("idle", idle_machine),
    ("start_requested", start_requested_machine),
    ("charging", charging_machine),
    ("stopping", stopping_machine),
    ("finished", finished_machine),
    ("faulted", faulted_machine),
];

fn inputs() -> Vec<(&'static str, Input)> {
    vec![
        ("heartbeat", heartbeat()),
        ("rt_idle", rt(0, PileStatus::Idle, 0, 0)),
        ("rt_charging", charging(1, 1_000, 1)),
        ("rt_fault", rt(0, PileStatus::Fault, 0, 0)),
        ("start_ok", start_reply(1, true)),
        ("start_refused", start_reply(1, false)),
        ("stop_ok", stop_reply(true)),
        ("record", record_frame(1)),
        ("finished_0x19", finished_frame(1)),
        ("start_cmd", start_cmd("c-new", 2, SessionLimit::default())),
        ("stop_cmd", stop_cmd("c-stop-2")),
        ("disconnect", Input::PileDisconnected),
        ("connect", Input::PileConnected),
        ("durable", Input::RecordDurable { serial: serial(1) }),
        ("silence", Input::Tick),
    ]
}

/// Runs every row and renders `state | input -> next | effects`.
fn render() -> Vec<String> {
    let mut rows = Vec::new();
    for (state, build) in STATES {
        for (name, input) in inputs() {
            let mut m = build();
            assert_eq!(m.state().name(), state, "builder of {state}");
            // Silence: far past the heartbeat timeout; everything else shortly after setup.
            let now = if name == "silence" { t(1_000) } else { t(10) };
            let step = go(&mut m, now, input);
            rows.push(format!(
                "{state} | {name} -> {} | {}",
                m.state().name(),
                summary(&step).join(", ")
            ));
        }
    }
    rows
}

const EXPECTED: &str = include_str!("transition_table.txt");

#[test]
fn every_state_and_input_follows_the_transition_table() {
    let actual = render();
    let expected: Vec<&str> = EXPECTED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    if std::env::var_os("PRINT_TABLE").is_some() {
        println!("{}", actual.join("\n"));
    }
    assert_eq!(actual.len(), expected.len(), "row count");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a, e);
    }
}

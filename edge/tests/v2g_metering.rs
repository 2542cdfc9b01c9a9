//! Bidirectional metering end to end at the edge, with a hand-made V2G pile (the simulator's
//! registers never go down): a session that both charges and discharges keeps import and
//! export apart in its readings and in its discharge record; a register that drops (a meter
//! reset) is flagged in an alarm and in the record, never counted as negative energy; a late
//! (reordered) reading is not counted twice; the pile's self-contradicting record is flagged.

mod v2g_support;

use std::time::Duration;

use tokio::sync::mpsc;
use v2g_support::*;
use voltline_edge::ops::metrics::Port;
use voltline_edge::ports::{next_conn_id, ConnId, Outbound, PileSender, PortEvent};
use voltline_protocol::domain::{Energy, PileCode, Power, Soc};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{Carrier, Login, NetworkKind, PileKind};
use voltline_protocol::message::v2g::{
    BidirectionalMeter, DischargeReason, DischargeRecord, DischargeStartReply, DischargeStopReason,
    Outcome,
};
use voltline_protocol::message::Message;
use voltline_protocol::sync::{AnomalyKind, CommandOutcome, RecordBody, Register};
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;

struct FakePile {
    pile: PileCode,
    conn: ConnId,
    rx: mpsc::Receiver<Outbound>,
    seq: u16,
}

impl FakePile {
    async fn connect(edge: &Edge, pile: PileCode) -> FakePile {
        let (tx, rx) = mpsc::channel(1_024);
        let conn = next_conn_id();
        let sender = PileSender::new(pile, conn, Port::Tcp, tx);
        edge.events
            .send(PortEvent::Connected { sender })
            .await
            .unwrap();
        FakePile {
            pile,
            conn,
            rx,
            seq: 0,
        }
    }

    async fn send(&mut self, edge: &Edge, seq: Option<u16>, m: impl Into<Message>) {
        self.seq += 1;
        let frame = Frame::new(seq.unwrap_or(self.seq), m.into());
        edge.events
            .send(PortEvent::Frame {
                pile: self.pile,
                conn: self.conn,
                port: Port::Tcp,
                frame,
            })
            .await
            .unwrap();
    }

    /// The next frame to the pile that `pick` accepts (others are skipped).
    async fn expect<T>(&mut self, what: &str, pick: impl Fn(&Frame) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                let out = self.rx.recv().await.expect("the pile's queue is open");
                if let Some(t) = pick(&out.frame) {
                    return t;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} reached the pile"))
    }
}

fn meter(p: PileCode, n: u16, import_wh: i64, export_wh: i64) -> BidirectionalMeter {
    BidirectionalMeter {
        serial: serial(p, n),
        pile_code: p,
        connector: gun(),
        import_register: Energy::from_wh(import_wh),
        export_register: Energy::from_wh(export_wh),
        active_power: Power::from_kw(-5),
        soc: Soc::new(60).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_stay_apart_and_a_register_drop_is_flagged_not_billed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pile(1);
    let edge = Edge::start(
        dir.path(),
        &[p],
        fast_grid(1),
        None,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let mut pile = FakePile::connect(&edge, p).await;
    pile.send(
        &edge,
        None,
        Login {
            pile_code: p,
            pile_kind: PileKind::Dc,
            connector_count: 1,
            protocol_version_x10: 0x10,
            program_version: FixedText::from_text("v2g").unwrap(),
            network: NetworkKind::Lan,
            sim: Bcd::ZERO,
            carrier: Carrier::Other,
        },
    )
    .await;
    pile.expect("login reply", |f| {
        matches!(f.message, Message::LoginReply(_)).then_some(())
    })
    .await;

    let id = edge.command(discharge(p, 1, 20, 11)).await;
    let start_seq = pile
        .expect("discharge start", |f| {
            matches!(f.message, Message::DischargeStart(_)).then_some(f.sequence)
        })
        .await;
    pile.send(
        &edge,
        Some(start_seq),
        DischargeStartReply {
            serial: serial(p, 1),
            pile_code: p,
            connector: gun(),
            result: Outcome::Succeeded,
            reason: DischargeReason::None,
        },
    )
    .await;
    assert_eq!(edge.result_of(&id).await, CommandOutcome::Accepted);

    // The session charges 500 Wh, discharges 1 kWh, a late frame arrives, the meter resets
    // and the session goes on: 400 + 200 Wh more out, 300 Wh more in.
    for (import, export) in [
        (1_000, 2_000),
        (1_500, 2_000),
        (1_500, 3_000),
        (1_500, 2_500), // late: counted nowhere, flagged nowhere
        (1_500, 3_000),
        (1_500, 0), // the export register was reset
        (1_500, 400),
        (1_800, 600),
    ] {
        pile.send(&edge, None, meter(p, 1, import, export)).await;
    }
    // The pile's own record spans the reset: its end register is below its start.
    let record = DischargeRecord {
        serial: serial(p, 1),
        pile_code: p,
        connector: gun(),
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        export_register_start: Energy::from_wh(2_000),
        export_register_end: Energy::from_wh(600),
        exported_energy: Energy::ZERO,
        stop_reason: DischargeStopReason(0x40),
    };
    pile.send(&edge, None, record).await;
    pile.expect("discharge record confirmation", |f| {
        matches!(f.message, Message::DischargeRecordAck(_)).then_some(())
    })
    .await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    let records = edge.records().await;
    let alarms: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            RecordBody::Alarm(a) if a.code == "meter_register_anomaly" => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(alarms.len(), 1, "one reset, one alarm: {alarms:?}");
    assert_eq!(alarms[0].pile, Some(p));
    let readings: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            RecordBody::MeterReading(m) if m.serial == serial(p, 1) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(readings.len(), 8, "every distinct reading goes up");
    assert!(readings.iter().all(|m| m.export_register.is_some()));
    assert_eq!(readings[1].import_register, Energy::from_wh(1_500));
    assert_eq!(readings[1].export_register, Some(Energy::from_wh(2_000)));

    let up = records
        .iter()
        .find_map(|r| match r {
            RecordBody::Discharge(d) => Some(d),
            _ => None,
        })
        .expect("the discharge record is stored");
    let m = up.metering.as_ref().expect("the edge's metering goes up");
    assert_eq!(
        m.import_energy,
        Energy::from_wh(800),
        "imported, kept apart"
    );
    assert_eq!(
        m.export_energy,
        Energy::from_wh(1_600),
        "exported: 1000 before the reset, 600 after; never negative"
    );
    let kinds: Vec<_> = m.anomalies.iter().map(|a| (a.register, a.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (Register::Export, AnomalyKind::Decreased),
            (Register::Export, AnomalyKind::RecordInconsistent)
        ]
    );
    assert_eq!(m.anomaly_count, 2);
    assert_eq!(
        (m.anomalies[0].before, m.anomalies[0].reading),
        (Energy::from_wh(3_000), Energy::ZERO)
    );
    assert_eq!(
        up.record.exported_energy,
        Energy::ZERO,
        "the pile's record as sent"
    );
    edge.stop().await;
}

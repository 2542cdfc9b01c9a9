//! The site with a real store and group committer, fed through the port channels by a fake
//! pile whose outbound queue the test reads.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal_macros::dec;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::{AccountId, Money};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{Carrier, Login, LoginResult, NetworkKind, PileKind};
use voltline_protocol::message::settings::TimeSyncReply;
use voltline_protocol::message::transaction::{
    AuthFailure, Outcome, PhysicalCardNo, PileStartRequest, StartMethod,
};
use voltline_protocol::sync::{Command, CommandOutcome, RecordBody};
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::Message;

use super::{Site, SiteDeps, SiteOptions, SiteView};
use crate::connector::tests_support::{cmd_id, conn, envelope, pile, serial, tx_record};
use crate::connector::Input;
use crate::ops::metrics::{EdgeMetrics, Port, PortLabels};
use crate::ports::{
    next_conn_id, ChargerDirectory, ChargerEntry, ConnId, Outbound, PileSender, PortEvent,
};
use crate::store::tests_outbox::{open, test_config};
use crate::store::{
    CardAuthorisation, GroupCommitConfig, GroupCommitter, SiteConfig, SiteLimits, Store,
};

const WAIT: Duration = Duration::from_secs(10);

pub(super) struct Harness {
    _dir: tempfile::TempDir,
    pub(super) store: Store,
    metrics: Arc<EdgeMetrics>,
    events: mpsc::Sender<PortEvent>,
    commands: mpsc::Sender<voltline_protocol::sync::CommandEnvelope>,
    pub(super) view: tokio::sync::watch::Receiver<SiteView>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), super::SiteError>>,
    committer_task: tokio::task::JoinHandle<()>,
}

pub(super) struct FakePile {
    conn: ConnId,
    rx: mpsc::Receiver<Outbound>,
    seq: u16,
}

pub(super) fn options() -> SiteOptions {
    SiteOptions {
        tick_ms: 50,
        pile_command_timeout_ms: 300,
        ..SiteOptions::default()
    }
}

pub(super) async fn start_with(dir: tempfile::TempDir, opts: SiteOptions) -> Harness {
    let store = open(dir.path(), test_config());
    let (committer, committer_task) =
        GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
    let metrics = Arc::new(EdgeMetrics::default());
    let directory = ChargerDirectory::new([ChargerEntry {
        pile: pile(),
        credential_sha256: None,
    }]);
    let site = Site::new(
        opts,
        SiteDeps {
            store: store.clone(),
            committer,
            directory,
            metrics: metrics.clone(),
        },
    )
    .unwrap();
    let view = site.view();
    let (events, events_rx) = mpsc::channel(64);
    let (commands, commands_rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(site.run(events_rx, commands_rx, shutdown.clone()));
    Harness {
        _dir: dir,
        store,
        metrics,
        events,
        commands,
        view,
        shutdown,
        task,
        committer_task,
    }
}

pub(super) async fn start() -> Harness {
    start_with(tempfile::tempdir().unwrap(), options()).await
}

impl Harness {
    async fn connect(&self) -> FakePile {
        let (tx, rx) = mpsc::channel(64);
        let conn = next_conn_id();
        let sender = PileSender::new(pile(), conn, Port::Tcp, tx);
        self.events
            .send(PortEvent::Connected { sender })
            .await
            .unwrap();
        FakePile { conn, rx, seq: 100 }
    }

    pub(super) async fn send(&self, p: &mut FakePile, message: Message) -> u16 {
        p.seq += 1;
        self.events
            .send(PortEvent::Frame {
                pile: pile(),
                conn: p.conn,
                port: Port::Tcp,
                frame: Frame::new(p.seq, message),
            })
            .await
            .unwrap();
        p.seq
    }

    pub(super) async fn login(&self) -> FakePile {
        let mut p = self.connect().await;
        let seq = self.send(&mut p, login(2)).await;
        let reply = next(&mut p).await;
        assert_eq!(
            reply.sequence, seq,
            "a reply carries its request's sequence"
        );
        let Message::LoginReply(r) = reply.message else {
            panic!("{reply:?}")
        };
        assert_eq!(r.result, LoginResult::Accepted);
        p
    }

    pub(super) async fn records(&self) -> Vec<RecordBody> {
        // Records are submitted at the end of each turn; wait for them to be durable.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.store.flush().await.unwrap();
        self.store
            .unacked_after(0, 10_000, jiff::Timestamp::now())
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    pub(super) async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        // The committer ends once the site's handle is gone; then only this clone holds the
        // store's files.
        self.committer_task.await.unwrap();
        drop(self.store);
        self._dir
    }
}

pub(super) async fn next(p: &mut FakePile) -> Frame {
    tokio::time::timeout(WAIT, p.rx.recv())
        .await
        .expect("a frame to the pile in time")
        .expect("the pile's queue is open")
        .frame
}

fn login(connectors: u8) -> Message {
    Message::Login(Login {
        pile_code: pile(),
        pile_kind: PileKind::Dc,
        connector_count: connectors,
        protocol_version_x10: 0x10,
        program_version: FixedText::from_text("v1").unwrap(),
        network: NetworkKind::Lan,
        sim: Bcd::ZERO,
        carrier: Carrier::Other,
    })
}

pub(super) fn card(n: u64) -> PhysicalCardNo {
    PhysicalCardNo::from_bytes(n.to_be_bytes())
}

pub(super) fn card_request(n: u64) -> Message {
    Message::PileStartRequest(PileStartRequest {
        pile_code: pile(),
        connector: conn(),
        method: StartMethod::Card,
        password_required: false,
        card: card(n),
        password_md5: FixedText::EMPTY,
        vin_reversed: FixedText::EMPTY,
    })
}

pub(super) fn frame_of(input: Input) -> Message {
    let Input::Frame(m) = input else { panic!() };
    m
}

#[tokio::test]
async fn login_is_answered_and_its_connectors_come_online() {
    let h = start().await;
    let _p = h.login().await;
    let mut view = h.view.clone();
    let v = *view
        .wait_for(|v| v.piles_connected == 1 && v.connectors == 2)
        .await
        .unwrap();
    assert_eq!(v.sessions, 0);
    let records = h.records().await;
    let online = records
        .iter()
        .filter(|r| matches!(r, RecordBody::ConnectorStatus(_)))
        .count();
    assert_eq!(
        online, 2,
        "each connector reports it is online: {records:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn transaction_record_is_acknowledged_only_once_durable_and_stored_once() {
    let h = start().await;
    let mut p = h.login().await;
    let record = Message::TransactionRecord(Box::new(tx_record(1)));
    let seq = h.send(&mut p, record.clone()).await;
    let ack = next(&mut p).await;
    assert_eq!(ack.sequence, seq);
    let Message::TransactionRecordAck(a) = &ack.message else {
        panic!("{ack:?}")
    };
    assert_eq!(a.serial, serial(1));
    let stored = h
        .store
        .transaction_seq(&serial(1))
        .unwrap()
        .expect("stored");
    assert!(
        h.store.durable_head() >= stored,
        "the ack went out before the record's flush"
    );
    // The pile did not hear the ack and resends: acknowledged again, stored once.
    h.send(&mut p, record).await;
    let again = next(&mut p).await;
    assert!(matches!(again.message, Message::TransactionRecordAck(_)));
    let transactions = h
        .records()
        .await
        .into_iter()
        .filter(|r| matches!(r, RecordBody::Transaction(_)))
        .count();
    assert_eq!(transactions, 1);
    h.stop().await;
}

pub(super) async fn with_cards(h: &Harness) {
    let config = SiteConfig::new(
        2,
        Some(crate::connector::tests_support::two_period_tariff()),
        vec![CardAuthorisation {
            card: card(0xD14B_0A54),
            account: AccountId::new("driver-7").unwrap(),
            offline_limit: Money::from_yuan(dec!(30)),
        }],
        SiteLimits {
            offline_session_limit: Money::from_yuan(dec!(50)),
            max_site_power: None,
        },
    )
    .unwrap();
    assert!(h.store.put_site_config(config).await.unwrap());
}

#[tokio::test]
async fn card_start_is_authorised_from_the_cached_list_without_the_cloud() {
    let h = start().await;
    with_cards(&h).await;
    let mut p = h.login().await;
    // The connector must have seen the pile idle before it takes a card.
    h.send(
        &mut p,
        frame_of(crate::connector::tests_support::rt(
            0,
            voltline_protocol::message::realtime::ConnectorStatus::Idle,
            0,
            0,
        )),
    )
    .await;
    let seq = h.send(&mut p, card_request(0xD14B_0A54)).await;
    let reply = next(&mut p).await;
    assert_eq!(reply.sequence, seq);
    let Message::PileStartReply(r) = reply.message else {
        panic!("{reply:?}")
    };
    assert_eq!(r.authorised, Outcome::Succeeded);
    assert_eq!(
        r.balance,
        Money::from_yuan(dec!(30)),
        "the card's own limit is smaller"
    );
    assert_eq!(r.serial.pile_code(), pile());

    // An unknown card on the other connector is refused.
    let c2 = voltline_protocol::domain::ConnectorNo::new(2).unwrap();
    let Message::RealTimeData(mut idle) = frame_of(crate::connector::tests_support::rt(
        0,
        voltline_protocol::message::realtime::ConnectorStatus::Idle,
        0,
        0,
    )) else {
        panic!()
    };
    idle.connector = c2;
    h.send(&mut p, Message::RealTimeData(idle)).await;
    let Message::PileStartRequest(mut unknown) = card_request(0x0BAD) else {
        panic!()
    };
    unknown.connector = c2;
    let seq = h.send(&mut p, Message::PileStartRequest(unknown)).await;
    let reply = next(&mut p).await;
    assert_eq!(reply.sequence, seq);
    let Message::PileStartReply(r) = reply.message else {
        panic!("{reply:?}")
    };
    assert_eq!(r.authorised, Outcome::Failed);
    assert_eq!(r.failure, AuthFailure::AccountNotFound);
    h.stop().await;
}

#[tokio::test]
async fn unknown_card_is_refused_when_no_list_was_ever_cached() {
    let h = start().await;
    let mut p = h.login().await;
    h.send(
        &mut p,
        frame_of(crate::connector::tests_support::rt(
            0,
            voltline_protocol::message::realtime::ConnectorStatus::Idle,
            0,
            0,
        )),
    )
    .await;
    h.send(&mut p, card_request(0xD14B_0A54)).await;
    let Message::PileStartReply(r) = next(&mut p).await.message else {
        panic!()
    };
    assert_eq!(r.authorised, Outcome::Failed);
    assert_eq!(r.failure, AuthFailure::AccountNotFound);
    h.stop().await;
}

#[tokio::test]
async fn frame_naming_another_pile_is_dropped_and_counted() {
    let h = start().await;
    let mut p = h.login().await;
    let mut other = tx_record(3);
    other.pile_code = "32010600019299".parse().unwrap();
    h.send(&mut p, Message::TransactionRecord(Box::new(other)))
        .await;
    let got = tokio::time::timeout(Duration::from_millis(300), p.rx.recv()).await;
    assert!(got.is_err(), "nothing is answered: {got:?}");
    assert_eq!(
        h.metrics
            .foreign_frames
            .get_or_create(&PortLabels { port: Port::Tcp })
            .get(),
        1
    );
    assert!(h.store.transaction_seq(&serial(3)).unwrap().is_none());
    h.stop().await;
}

#[tokio::test]
async fn command_for_an_unregistered_pile_fails_with_a_reason() {
    let h = start().await;
    let stranger = "32010600019299".parse().unwrap();
    let Input::Command(env) = envelope(
        "c-1",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60),
        Command::Reboot { pile: stranger },
    ) else {
        panic!()
    };
    h.commands.send(env).await.unwrap();
    let Input::Command(mut env) =
        crate::connector::tests_support::start_cmd("c-2", 1, Default::default())
    else {
        panic!()
    };
    env.expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    if let Command::StartCharging { pile, .. } = &mut env.command {
        *pile = stranger;
    }
    h.commands.send(env).await.unwrap();
    let results: Vec<_> = h
        .records()
        .await
        .into_iter()
        .filter_map(|r| match r {
            RecordBody::CommandResult(c) => Some((c.command_id, c.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results
        .iter()
        .all(|(_, o)| matches!(o, CommandOutcome::Failed { .. })));
    assert_eq!(results[0].0, cmd_id("c-1"));
    h.stop().await;
}

#[tokio::test]
async fn time_sync_is_sent_answered_or_failed_at_its_deadline() {
    let h = start().await;
    let mut p = h.login().await;
    let cmd = |id: &str| {
        let Input::Command(env) = envelope(
            id,
            jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60),
            Command::SyncTime { pile: pile() },
        ) else {
            panic!()
        };
        env
    };
    h.commands.send(cmd("sync-1")).await.unwrap();
    let sent = next(&mut p).await;
    let Message::TimeSync(ts) = sent.message else {
        panic!("{sent:?}")
    };
    h.send(
        &mut p,
        Message::TimeSyncReply(TimeSyncReply {
            pile_code: pile(),
            time: ts.time,
        }),
    )
    .await;
    h.commands.send(cmd("sync-2")).await.unwrap();
    assert!(matches!(next(&mut p).await.message, Message::TimeSync(_)));
    // No answer to the second: it fails at its deadline.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let results: Vec<_> = h
        .records()
        .await
        .into_iter()
        .filter_map(|r| match r {
            RecordBody::CommandResult(c) => Some((c.command_id.as_str().to_owned(), c.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        vec![
            ("sync-1".to_owned(), CommandOutcome::Accepted),
            (
                "sync-2".to_owned(),
                CommandOutcome::Failed {
                    reason: "the pile did not answer in time".into()
                }
            ),
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn a_session_in_the_store_is_resumed_after_a_restart() {
    let h = start().await;
    let mut p = h.login().await;
    let Input::Command(mut env) =
        crate::connector::tests_support::start_cmd("c-start", 1, Default::default())
    else {
        panic!()
    };
    env.expires_at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    h.send(
        &mut p,
        frame_of(crate::connector::tests_support::rt(
            0,
            voltline_protocol::message::realtime::ConnectorStatus::Idle,
            0,
            0,
        )),
    )
    .await;
    h.commands.send(env).await.unwrap();
    assert!(matches!(
        next(&mut p).await.message,
        Message::RemoteStart(_)
    ));
    h.send(
        &mut p,
        frame_of(crate::connector::tests_support::start_reply(1, true)),
    )
    .await;
    h.send(
        &mut p,
        frame_of(crate::connector::tests_support::charging(1, 500, 1)),
    )
    .await;
    let mut view = h.view.clone();
    view.wait_for(|v| v.sessions == 1).await.unwrap();
    let dir = h.stop().await;
    let h = start_with(dir, options()).await;
    let v = *h.view.borrow();
    assert_eq!(
        v.sessions, 1,
        "the charging session came back from the store"
    );
    h.stop().await;
}

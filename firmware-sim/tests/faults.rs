//! Each fault knob does what it says.

mod common;

use std::time::Duration;

use common::*;
use voltline_protocol::domain::Energy;
use voltline_protocol::message::maintenance::{ExecuteWhen, Reboot};
use voltline_protocol::message::Message;
use voltline_protocol::FrameError;
use voltline_sim::harness::HarnessConfig;
use voltline_sim::{ChargerFault, ChargerSpec, Fault, SimEvent, VehicleSpec};

/// Runs a short session (start, `run` real time, stop) and returns its record.
async fn short_session(
    fleet: &voltline_sim::SimFleet,
    conn: &mut voltline_sim::harness::PileConn,
    counter: u16,
    run: Duration,
) -> voltline_protocol::message::record::TransactionRecord {
    let p = fleet.piles()[0];
    let charger = fleet.charger(&p).unwrap();
    charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
    let seq = conn.remote_start(1, serial(p, counter)).await.unwrap();
    reply(conn, seq, 0x33).await;
    tokio::time::sleep(run).await;
    let seq = conn.remote_stop(1).await.unwrap();
    reply(conn, seq, 0x35).await;
    let rec = record(conn).await;
    charger.unplug(1).await.unwrap();
    rec
}

/// Reads and discards what the pile already sent (the 60× speed sends a heartbeat every
/// ~170 ms, so a 20 ms quiet gap means the queue is empty).
async fn drain(conn: &mut voltline_sim::harness::PileConn) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(20), conn.next()).await {}
}

#[tokio::test]
async fn dropped_connection_reconnects_with_backoff_and_resends_the_record() {
    bounded(async {
        let p = pile(10);
        let (platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 300.0, HarnessConfig::default()).await;
        let rec = short_session(&fleet, &mut conn, 1, Duration::from_millis(200)).await;
        let mut events = fleet.events();
        fleet
            .charger(&p)
            .unwrap()
            .inject(Fault::DropConnection)
            .await
            .unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::Disconnected { .. })
        })
        .await
        .unwrap();
        // The old connection ends; a new one logs in and the unconfirmed record comes again.
        let mut conn2 = logged_in(&platform).await;
        let again = record(&mut conn2).await;
        assert_eq!(again, rec);
        conn2.ack_record(rec.serial).await.unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::RecordConfirmed { .. })
        })
        .await
        .unwrap();
        drop(conn);
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn garbage_bytes_reach_the_wire_and_the_next_frames_still_decode() {
    bounded(async {
        let p = pile(11);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 60.0, HarnessConfig::default()).await;
        fleet
            .charger(&p)
            .unwrap()
            .inject(Fault::Garbage { bytes: 100 })
            .await
            .unwrap();
        // Frames keep coming after the garbage, and the garbage was seen as such.
        for _ in 0..3 {
            conn.expect(WAIT, "a heartbeat", |f| {
                matches!(f.message, Message::Heartbeat(_)).then_some(())
            })
            .await
            .unwrap();
        }
        assert!(
            conn.errors
                .iter()
                .any(|e| matches!(e, FrameError::Garbage { .. })),
            "{:?}",
            conn.errors
        );
        assert!(fleet.charger(&p).unwrap().state().await.unwrap().online);
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn duplicated_frames_arrive_twice() {
    bounded(async {
        let p = pile(12);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 60.0, HarnessConfig::default()).await;
        let charger = fleet.charger(&p).unwrap();
        drain(&mut conn).await;
        charger
            .inject(Fault::DuplicateNext { frames: 1 })
            .await
            .unwrap();
        // The next frame the pile sends: a real-time report on plug-in.
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let first = conn
            .expect(WAIT, "a frame", |f| Some(f.clone()))
            .await
            .unwrap();
        let second = conn.next().await.unwrap();
        assert_eq!(
            first, second,
            "the frame came twice, same sequence and body"
        );
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reordered_frames_arrive_out_of_sequence() {
    bounded(async {
        let p = pile(13);
        // A V2G pile sends 0x13 and 0xC7 together on plug-in: the second overtakes the first.
        let (_platform, fleet, mut conn) = setup(
            ChargerSpec::ac(p).with_v2g(),
            60.0,
            HarnessConfig::default(),
        )
        .await;
        let charger = fleet.charger(&p).unwrap();
        drain(&mut conn).await;
        charger
            .inject(Fault::ReorderNext { frames: 1 })
            .await
            .unwrap();
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let a = conn.next().await.unwrap();
        let b = conn.next().await.unwrap();
        assert!(
            b.sequence.wrapping_add(1) == a.sequence,
            "second frame sent first: got {} then {}",
            a.sequence,
            b.sequence
        );
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn clock_at_1970_and_skewed_clock_show_in_cp56_fields() {
    bounded(async {
        let p = pile(14);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 60.0, HarnessConfig::default()).await;
        let charger = fleet.charger(&p).unwrap();
        charger.inject(ChargerFault::ClockAt1970).await.unwrap();
        let rec = short_session(&fleet, &mut conn, 1, Duration::from_millis(50)).await;
        assert_eq!(
            rec.start_time.as_bytes()[6],
            70,
            "two-digit year 70: {}",
            rec.start_time
        );
        assert_eq!(rec.start_time.as_bytes()[5], 1, "January");
        conn.ack_record(rec.serial).await.unwrap();

        charger
            .inject(ChargerFault::ClockSkew { minutes: -7 })
            .await
            .unwrap();
        let st = charger.state().await.unwrap();
        assert_eq!(st.clock_offset_ms, -7 * 60_000);
        let rec = short_session(&fleet, &mut conn, 2, Duration::from_millis(50)).await;
        let pile_time = rec.end_time.to_civil().unwrap();
        let truth = jiff::tz::TimeZone::get("Asia/Shanghai")
            .unwrap()
            .to_datetime(jiff::Timestamp::now());
        // The simulation runs 60× real time, so true simulated time is a little ahead.
        let behind = pile_time
            .until(truth)
            .unwrap()
            .total(jiff::Unit::Minute)
            .unwrap();
        assert!(
            (5.0..=9.0).contains(&behind),
            "pile clock {pile_time} vs now {truth}: {behind} min behind"
        );
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn meter_reset_on_reboot_zeroes_the_registers() {
    bounded(async {
        let p = pile(15);
        let config = HarnessConfig {
            ack_records: true,
            ..HarnessConfig::default()
        };
        let (platform, fleet, mut conn) = setup(ChargerSpec::ac(p), 600.0, config).await;
        let charger = fleet.charger(&p).unwrap();
        let rec = short_session(&fleet, &mut conn, 1, Duration::from_millis(300)).await;
        assert!(rec.meter_end > Energy::ZERO);
        let mut events = fleet.events();
        charger
            .inject(ChargerFault::MeterResetOnNextReboot)
            .await
            .unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::FaultInjected { .. })
        })
        .await
        .unwrap();
        let seq = conn
            .send(Reboot {
                pile_code: p,
                when: ExecuteWhen::Immediately,
            })
            .await
            .unwrap();
        reply(&mut conn, seq, 0x91).await;
        let e = voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::Rebooting { .. })
        })
        .await
        .unwrap();
        assert_eq!(
            e,
            SimEvent::Rebooting {
                pile: p,
                meter_reset: true
            }
        );
        // Back after the reboot (5 simulated seconds), with zeroed registers.
        let _conn2 = logged_in(&platform).await;
        let st = until(&charger, "the pile back online", |s| s.online).await;
        assert_eq!(st.connector(1).unwrap().import_register, Energy::ZERO);
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn power_loss_mid_session_bills_the_session_after_power_returns() {
    bounded(async {
        let p = pile(16);
        let (platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 600.0, HarnessConfig::default()).await;
        let charger = fleet.charger(&p).unwrap();
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let s = serial(p, 1);
        let seq = conn.remote_start(1, s).await.unwrap();
        reply(&mut conn, seq, 0x33).await;
        // Let a few 15 s checkpoints pass (25 ms each here), then cut the power.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = charger
            .state()
            .await
            .unwrap()
            .connector(1)
            .unwrap()
            .import_register;
        let mut events = fleet.events();
        charger
            .inject(Fault::PowerLoss { off_s: 30 })
            .await
            .unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::PowerRestored { .. })
        })
        .await
        .unwrap();
        let mut conn2 = logged_in(&platform).await;
        let rec = record(&mut conn2).await;
        assert_eq!(rec.serial, s);
        assert_eq!(
            rec.stop_reason,
            voltline_protocol::message::stop_reason::StopReason::PILE_POWER_LOST
        );
        assert!(rec.total_energy > Energy::ZERO);
        assert!(
            rec.meter_end <= before.floor_to_wire_step(),
            "billed up to the last checkpoint"
        );
        assert_eq!(rec.total_energy, rec.meter_end - rec.meter_start);
        drop(conn);
        fleet.shutdown().await;
    })
    .await;
}

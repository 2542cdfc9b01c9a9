//! A pile never forgets a bill: records stay in the state dir until confirmed, across a
//! simulator restart and across a power loss mid-session.

mod common;

use std::time::Duration;

use common::*;
use voltline_protocol::domain::Energy;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::harness::{HarnessConfig, Platform};
use voltline_sim::{ChargerSpec, SimEvent, VehicleSpec};

async fn fleet(platform: &Platform, spec: ChargerSpec, dir: &std::path::Path) -> SimFleet {
    SimFleet::spawn(
        FleetConfig::tcp(platform.addr().to_string(), vec![spec])
            .speed(600.0)
            .unwrap()
            .state_dir(dir),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unconfirmed_record_is_resent_after_a_simulator_restart_until_confirmed() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let p = pile(20);
        let platform = Platform::bind(HarnessConfig::default()).await.unwrap();
        let first = fleet(&platform, ChargerSpec::ac(p), dir.path()).await;
        let mut conn = logged_in(&platform).await;
        let charger = first.charger(&p).unwrap();
        until(&charger, "a billing model", |s| {
            s.online && s.billing_model_no.is_some()
        })
        .await;
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let s = serial(p, 7);
        let seq = conn.remote_start(1, s).await.unwrap();
        reply(&mut conn, seq, 0x33).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seq = conn.remote_stop(1).await.unwrap();
        reply(&mut conn, seq, 0x35).await;
        let rec = record(&mut conn).await;
        // Never confirmed: the simulator stops.
        first.shutdown().await;
        drop(conn);
        let file = voltline_sim::state_dir::load(dir.path(), &p)
            .unwrap()
            .unwrap();
        assert_eq!(file.pending.len(), 1);

        let second = fleet(&platform, ChargerSpec::ac(p), dir.path()).await;
        let mut events = second.events();
        let mut conn = logged_in(&platform).await;
        let again = record(&mut conn).await;
        assert_eq!(again, rec, "the same record, byte for byte");
        // Still unconfirmed: resent again.
        assert_eq!(record(&mut conn).await, rec);
        conn.ack_record(rec.serial).await.unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::RecordConfirmed { .. })
        })
        .await
        .unwrap();
        let charger = second.charger(&p).unwrap();
        assert!(charger.state().await.unwrap().pending_records.is_empty());
        // Registers survived the restart too.
        let reg = charger
            .state()
            .await
            .unwrap()
            .connector(1)
            .unwrap()
            .import_register_wire;
        assert_eq!(reg, rec.meter_end);
        second.shutdown().await;
        let file = voltline_sim::state_dir::load(dir.path(), &p)
            .unwrap()
            .unwrap();
        assert!(
            file.pending.is_empty(),
            "confirmed records leave the state dir"
        );
    })
    .await;
}

#[tokio::test]
async fn a_session_cut_by_a_simulator_crash_is_billed_from_the_state_dir() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let p = pile(21);
        let platform = Platform::bind(HarnessConfig::default()).await.unwrap();
        let first = fleet(&platform, ChargerSpec::dc(p, 60), dir.path()).await;
        let mut conn = logged_in(&platform).await;
        let charger = first.charger(&p).unwrap();
        until(&charger, "a billing model", |s| {
            s.online && s.billing_model_no.is_some()
        })
        .await;
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let s = serial(p, 8);
        let seq = conn.remote_start(1, s).await.unwrap();
        reply(&mut conn, seq, 0x33).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The process dies mid-session: nothing is finalised.
        first.shutdown().await;
        drop(conn);
        let file = voltline_sim::state_dir::load(dir.path(), &p)
            .unwrap()
            .unwrap();
        assert_eq!(file.charging.len(), 1, "the session was checkpointed");

        let second = fleet(&platform, ChargerSpec::dc(p, 60), dir.path()).await;
        let mut conn = logged_in(&platform).await;
        let rec = record(&mut conn).await;
        assert_eq!(rec.serial, s);
        assert_eq!(rec.stop_reason, StopReason::PILE_POWER_LOST);
        assert!(rec.total_energy > Energy::ZERO);
        assert_eq!(rec.total_energy, rec.meter_end - rec.meter_start);
        assert_eq!(rec.meter_end, file.charging[0].meter_at);
        conn.ack_record(s).await.unwrap();
        second.shutdown().await;
    })
    .await;
}

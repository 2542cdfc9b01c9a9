//! The MQTT transport against a real broker (Mosquitto). Set VOLTLINE_TEST_MQTT=host:port to
//! run it; without it the test says it was skipped (and fails when VOLTLINE_CI is set).

mod common;

use common::*;
use voltline_protocol::domain::ConnectorNo;
use voltline_protocol::message::record::{RecordAckResult, TransactionRecordAck};
use voltline_protocol::message::transaction::{Outcome, PhysicalCardNo, RemoteStart, RemoteStop};
use voltline_protocol::message::Message;
use voltline_protocol::wire::bcd::Bcd;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::harness::{HarnessConfig, MqttPlatform};
use voltline_sim::{ChargerSpec, SimEvent, VehicleSpec};

fn broker() -> Option<String> {
    match std::env::var("VOLTLINE_TEST_MQTT") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            assert!(
                std::env::var_os("VOLTLINE_CI").is_none(),
                "VOLTLINE_CI is set but VOLTLINE_TEST_MQTT is not: the MQTT transport must be tested in CI"
            );
            println!("skipped: set VOLTLINE_TEST_MQTT=127.0.0.1:1883 to test the MQTT transport against a broker");
            None
        }
    }
}

#[tokio::test]
async fn a_session_over_mqtt_ends_with_a_confirmed_record() {
    let Some(broker) = broker() else { return };
    bounded(async {
        let p = pile(40 + (std::process::id() as u64 % 1_000) * 100);
        let mut platform = MqttPlatform::connect(
            &broker,
            &format!("voltline-sim-test-{p}"),
            HarnessConfig::default(),
        )
        .await
        .expect("connect the test platform to the broker");
        let fleet = SimFleet::spawn(
            FleetConfig::mqtt(&broker, "secret", vec![ChargerSpec::ac(p)])
                .speed(600.0)
                .unwrap(),
        )
        .await
        .unwrap();
        let mut events = fleet.events();
        platform
            .expect(WAIT, "a login over MQTT", |pile, f| {
                (*pile == p && matches!(f.message, Message::Login(_))).then_some(())
            })
            .await
            .unwrap();
        let charger = fleet.charger(&p).unwrap();
        until(&charger, "a billing model", |s| {
            s.online && s.billing_model_no.is_some()
        })
        .await;
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let s = serial(p, 1);
        let seq = platform
            .send(
                &p,
                RemoteStart {
                    serial: s,
                    pile_code: p,
                    connector: ConnectorNo::new(1).unwrap(),
                    logical_card: Bcd::ZERO,
                    physical_card: PhysicalCardNo::NONE,
                    balance: voltline_protocol::domain::Money::from_cents(10_000),
                },
            )
            .unwrap();
        let ok = platform
            .expect(WAIT, "0x33", |_, f| match &f.message {
                Message::RemoteStartReply(r) if f.sequence == seq => Some(r.result),
                _ => None,
            })
            .await
            .unwrap();
        assert_eq!(ok, Outcome::Succeeded);
        // Let it charge a little (frames keep flowing: poll the platform meanwhile).
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            loop {
                if platform.next().await.is_err() {
                    return;
                }
            }
        })
        .await;
        platform
            .send(
                &p,
                RemoteStop {
                    pile_code: p,
                    connector: ConnectorNo::new(1).unwrap(),
                },
            )
            .unwrap();
        let rec = platform
            .expect(WAIT, "0x3B", |_, f| match &f.message {
                Message::TransactionRecord(r) => Some((**r).clone()),
                _ => None,
            })
            .await
            .unwrap();
        assert_eq!(rec.serial, s);
        assert_eq!(rec.total_energy, rec.meter_end - rec.meter_start);
        platform
            .send(
                &p,
                TransactionRecordAck {
                    serial: s,
                    result: RecordAckResult::Accepted,
                },
            )
            .unwrap();
        let confirmed = async {
            loop {
                tokio::select! {
                    e = events.recv() => if let Ok(SimEvent::RecordConfirmed { .. }) = e { return },
                    r = platform.next() => { r.unwrap(); }
                }
            }
        };
        tokio::time::timeout(WAIT, confirmed)
            .await
            .expect("record confirmed over MQTT");
        fleet.shutdown().await;
    })
    .await;
}

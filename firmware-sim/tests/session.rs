//! A whole session against the harness platform: remote start, charging, remote stop, the
//! record resent until confirmed, with its energy equal to what the vehicle model took in and
//! its amount equal to the billing model's prices.

mod common;

use std::time::Duration;

use common::*;
use voltline_protocol::domain::Energy;
use voltline_protocol::message::register::RateKind;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::transaction::{Outcome, RemoteStartFailure, RemoteStopFailure};
use voltline_protocol::message::Message;
use voltline_sim::harness::HarnessConfig;
use voltline_sim::pricing;
use voltline_sim::{ChargerFault, ChargerSpec, SimEvent, VehicleSpec};

const STEP: i64 = 100; // mWh, the wire step

#[tokio::test]
async fn remote_start_stop_gives_a_record_resent_until_confirmed() {
    bounded(async {
        let p = pile(1);
        let config = HarnessConfig::default();
        let model = config.billing_model.clone();
        let (_platform, fleet, mut conn) = setup(ChargerSpec::ac(p), 600.0, config).await;
        let mut events = fleet.events();
        let charger = fleet.charger(&p).unwrap();
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let s = serial(p, 1);
        let seq = conn.remote_start(1, s).await.unwrap();
        let f = reply(&mut conn, seq, 0x33).await;
        let Message::RemoteStartReply(r) = f.message else {
            unreachable!()
        };
        assert_eq!(
            (r.serial, r.result, r.failure),
            (s, Outcome::Succeeded, RemoteStartFailure::None)
        );

        tokio::time::sleep(Duration::from_millis(800)).await; // ~8 simulated minutes
        let seq = conn.remote_stop(1).await.unwrap();
        let f = reply(&mut conn, seq, 0x35).await;
        let Message::RemoteStopReply(r) = f.message else {
            unreachable!()
        };
        assert_eq!(r.result, Outcome::Succeeded);

        let rec = record(&mut conn).await;
        let ended = voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::SessionEnded { .. })
        })
        .await
        .unwrap();
        let SimEvent::SessionEnded { summary, .. } = ended else {
            unreachable!()
        };
        assert_eq!(rec, summary.record);
        assert_eq!(rec.serial, s);
        assert_eq!(rec.stop_reason, StopReason::APP_REMOTE_STOP);
        assert!(
            rec.total_energy > Energy::from_wh(500),
            "{}",
            rec.total_energy
        );
        // The meter's energy is the vehicle model's, to the wire step.
        assert_eq!(rec.total_energy, rec.meter_end - rec.meter_start);
        let diff = (rec.total_energy.mwh() - summary.vehicle_energy.mwh()).abs();
        assert!(
            diff < STEP,
            "record {} vs vehicle {}",
            rec.total_energy,
            summary.vehicle_energy
        );
        // Priced with the model the pile holds.
        assert_eq!(rec.period_energy_sum(), rec.total_energy);
        for (kind, line) in rec.period_lines() {
            assert_eq!(
                *line,
                pricing::price_line(&model, kind, line.energy),
                "{kind:?}"
            );
        }
        assert_eq!(rec.total_amount, rec.period_amount_sum());

        // Not confirmed: resent (30 simulated seconds = 50 ms here) with the same content.
        let again = record(&mut conn).await;
        assert_eq!(again, rec);
        conn.ack_record(s).await.unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::RecordConfirmed { .. })
        })
        .await
        .unwrap();
        assert!(charger.state().await.unwrap().pending_records.is_empty());
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn session_to_target_soc_bills_exactly_the_energy_the_battery_took() {
    bounded(async {
        let p = pile(2);
        let config = HarnessConfig {
            ack_records: true,
            ..HarnessConfig::default()
        };
        let model = config.billing_model.clone();
        let (_platform, fleet, mut conn) = setup(ChargerSpec::ac(p), 3_600.0, config).await;
        let charger = fleet.charger(&p).unwrap();
        // 60 kWh from 20 % to 30 %: 6 kWh at 7 kW, about 51 simulated minutes.
        charger
            .plug_in(1, VehicleSpec::standard().with_soc(20, 30))
            .await
            .unwrap();
        let s = serial(p, 2);
        conn.remote_start(1, s).await.unwrap();
        let rec = record(&mut conn).await;
        assert_eq!(rec.stop_reason, StopReason::SOC_FULL);
        assert_eq!(rec.meter_start, Energy::ZERO);
        assert_eq!(rec.total_energy, Energy::from_wh(6_000));
        assert_eq!(rec.period_energy_sum(), Energy::from_wh(6_000));
        let expected: voltline_protocol::domain::Money = rec
            .period_lines()
            .map(|(k, l)| {
                pricing::amount_of(
                    model.rate(k).energy_price + model.rate(k).service_fee,
                    l.energy,
                )
            })
            .sum();
        assert_eq!(rec.total_amount, expected);
        let state = charger.state().await.unwrap();
        let c = state.connector(1).unwrap();
        assert!(!c.charging);
        assert_eq!(c.import_register_wire, Energy::from_wh(6_000));
        assert_eq!(c.vehicle_charged, c.import_register);
        let _ = RateKind::Flat;
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn remote_commands_fail_with_the_reference_codes() {
    bounded(async {
        let p = pile(3);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 60.0, HarnessConfig::default()).await;
        let charger = fleet.charger(&p).unwrap();

        // Stop while idle: "not charging".
        let seq = conn.remote_stop(1).await.unwrap();
        let Message::RemoteStopReply(r) = reply(&mut conn, seq, 0x35).await.message else {
            unreachable!()
        };
        assert_eq!(
            (r.result, r.failure),
            (Outcome::Failed, RemoteStopFailure::NotCharging)
        );

        // Start with no gun: "not plugged in", then a late success when it comes within 60 s.
        let s = serial(p, 3);
        let seq = conn.remote_start(1, s).await.unwrap();
        let Message::RemoteStartReply(r) = reply(&mut conn, seq, 0x33).await.message else {
            unreachable!()
        };
        assert_eq!(
            (r.result, r.failure),
            (Outcome::Failed, RemoteStartFailure::NotPluggedIn)
        );
        charger.plug_in(1, VehicleSpec::standard()).await.unwrap();
        let Message::RemoteStartReply(r) = reply(&mut conn, seq, 0x33).await.message else {
            unreachable!()
        };
        assert_eq!((r.serial, r.result), (s, Outcome::Succeeded));

        // Start while charging: "already charging".
        let seq = conn.remote_start(1, serial(p, 4)).await.unwrap();
        let Message::RemoteStartReply(r) = reply(&mut conn, seq, 0x33).await.message else {
            unreachable!()
        };
        assert_eq!(r.failure, RemoteStartFailure::AlreadyCharging);

        // Faulted: charging stops (a record), and starts are refused with "device fault".
        charger
            .inject(ChargerFault::ConnectorFault { connector: 1 })
            .await
            .unwrap();
        let rec = record(&mut conn).await;
        assert_eq!(rec.stop_reason, StopReason(0x75));
        let seq = conn.remote_start(1, serial(p, 5)).await.unwrap();
        let Message::RemoteStartReply(r) = reply(&mut conn, seq, 0x33).await.message else {
            unreachable!()
        };
        assert_eq!(r.failure, RemoteStartFailure::DeviceFault);

        // Another pile's code: "pile mismatch".
        let seq = conn
            .send(voltline_protocol::message::transaction::RemoteStart {
                serial: serial(pile(99), 6),
                pile_code: pile(99),
                connector: voltline_protocol::domain::ConnectorNo::new(1).unwrap(),
                logical_card: voltline_protocol::wire::bcd::Bcd::ZERO,
                physical_card: voltline_protocol::message::transaction::PhysicalCardNo::NONE,
                balance: voltline_protocol::domain::Money::ZERO,
            })
            .await
            .unwrap();
        let Message::RemoteStartReply(r) = reply(&mut conn, seq, 0x33).await.message else {
            unreachable!()
        };
        assert_eq!(r.failure, RemoteStartFailure::PileMismatch);
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn card_start_time_sync_tariff_set_and_read_real_time_data_are_answered() {
    bounded(async {
        use voltline_protocol::message::realtime::ReadRealTimeData;
        use voltline_protocol::message::settings::{
            BillingModelSet, Outcome as SetOutcome, TimeSync,
        };
        let p = pile(4);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::dc(p, 120), 60.0, HarnessConfig::default()).await;
        let charger = fleet.charger(&p).unwrap();
        // A card swipe: 0x31, authorised by the harness's 0x32, then charging.
        let card =
            voltline_protocol::message::transaction::PhysicalCardNo([0, 0, 0, 0, 1, 2, 3, 4]);
        charger
            .plug_in_with(
                2,
                VehicleSpec::standard(),
                voltline_sim::StartBy::Card(card),
            )
            .await
            .unwrap();
        conn.expect(WAIT, "0x31", |f| {
            matches!(f.message, Message::PileStartRequest(_)).then_some(())
        })
        .await
        .unwrap();
        conn.expect(WAIT, "0x13 charging on connector 2", |f| match &f.message {
            Message::RealTimeData(r) if r.connector.get() == 2 && r.is_charging() => Some(()),
            _ => None,
        })
        .await
        .unwrap();
        // 0x12 → 0x13 with the same sequence.
        let seq = conn
            .send(ReadRealTimeData {
                pile_code: p,
                connector: voltline_protocol::domain::ConnectorNo::new(2).unwrap(),
            })
            .await
            .unwrap();
        let Message::RealTimeData(r) = reply(&mut conn, seq, 0x13).await.message else {
            unreachable!()
        };
        assert!(r.is_charging() && r.soc.percent() >= 20);
        // 0x56 → 0x55, the clock set.
        let t =
            voltline_sim::clock::cp56_of(jiff::civil::DateTime::constant(2030, 6, 1, 12, 0, 0, 0));
        let seq = conn
            .send(TimeSync {
                pile_code: p,
                time: t,
            })
            .await
            .unwrap();
        let Message::TimeSyncReply(r) = reply(&mut conn, seq, 0x55).await.message else {
            unreachable!()
        };
        assert_eq!(r.time.to_civil().unwrap().year(), 2030);
        // 0x58 → 0x57, the model installed.
        let model =
            pricing::flat_model(4321, rust_decimal::Decimal::ONE, rust_decimal::Decimal::ONE);
        let seq = conn
            .send(BillingModelSet {
                pile_code: p,
                model,
            })
            .await
            .unwrap();
        let Message::BillingModelSetReply(r) = reply(&mut conn, seq, 0x57).await.message else {
            unreachable!()
        };
        assert_eq!(r.result, SetOutcome::Succeeded);
        let st = charger.state().await.unwrap();
        assert_eq!(st.billing_model_no.as_deref(), Some("4321"));
        assert!(st.pile_time.starts_with("2030-06-01"), "{}", st.pile_time);
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn heartbeats_come_every_ten_simulated_seconds_per_connector() {
    bounded(async {
        let p = pile(5);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::dc(p, 60), 10.0, HarnessConfig::default()).await;
        let t0 = std::time::Instant::now();
        let mut beats = 0;
        while t0.elapsed() < Duration::from_secs(3) {
            if let Ok(Ok(f)) = tokio::time::timeout(Duration::from_millis(100), conn.next()).await {
                beats += matches!(f.message, Message::Heartbeat(_)) as usize;
            }
        }
        // 30 simulated seconds, two connectors: 6 to 8 heartbeats.
        assert!((6..=8).contains(&beats), "{beats} heartbeats");
        fleet.shutdown().await;
    })
    .await;
}

//! V2G: discharge start with the PROTOCOL.md reasons, bidirectional meter data, setpoints
//! with a dead-man, stop, and the discharge record resent until confirmed.

mod common;

use std::time::Duration;

use common::*;
use voltline_protocol::domain::{ConnectorNo, Energy, Power, Soc};
use voltline_protocol::message::v2g::{
    DischargeReason, DischargeRecordAck, DischargeSetpoint, DischargeStart, DischargeStop, Outcome,
};
use voltline_protocol::message::Message;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_sim::harness::HarnessConfig;
use voltline_sim::{ChargerSpec, SimEvent, VehicleSpec};

fn start(p: voltline_protocol::domain::PileCode, counter: u16, floor: u8) -> DischargeStart {
    DischargeStart {
        serial: serial(p, counter),
        pile_code: p,
        connector: ConnectorNo::new(1).unwrap(),
        soc_floor: Soc::new(floor).unwrap(),
        max_discharge_power: Power::from_kw(10),
        end_time: Cp56Time::UNSET,
    }
}

#[tokio::test]
async fn discharge_session_with_setpoint_dead_man_and_confirmed_record() {
    bounded(async {
        let p = pile(30);
        let (_platform, fleet, mut conn) = setup(
            ChargerSpec::dc(p, 60).with_v2g().with_connectors(1),
            600.0,
            HarnessConfig::default(),
        )
        .await;
        let charger = fleet.charger(&p).unwrap();
        let mut events = fleet.events();

        // Not plugged in.
        let seq = conn.send(start(p, 1, 30)).await.unwrap();
        let Message::DischargeStartReply(r) = reply(&mut conn, seq, 0xC1).await.message else {
            unreachable!()
        };
        assert_eq!(
            (r.result, r.reason),
            (Outcome::Failed, DischargeReason::NotPlugged)
        );

        // A vehicle that cannot discharge.
        charger
            .plug_in(1, VehicleSpec::standard().with_soc(80, 90))
            .await
            .unwrap();
        let seq = conn.send(start(p, 2, 30)).await.unwrap();
        let Message::DischargeStartReply(r) = reply(&mut conn, seq, 0xC1).await.message else {
            unreachable!()
        };
        assert_eq!(r.reason, DischargeReason::NotV2gCapable);
        charger.unplug(1).await.unwrap();

        // A V2G vehicle at 80 % with the floor at 80 %: at or below floor.
        charger
            .plug_in(1, VehicleSpec::standard().with_soc(80, 90).with_v2g())
            .await
            .unwrap();
        let seq = conn.send(start(p, 3, 80)).await.unwrap();
        let Message::DischargeStartReply(r) = reply(&mut conn, seq, 0xC1).await.message else {
            unreachable!()
        };
        assert_eq!(r.reason, DischargeReason::SocAtOrBelowFloor);

        // Floor 30 %: starts.
        let s = serial(p, 4);
        let seq = conn.send(start(p, 4, 30)).await.unwrap();
        let Message::DischargeStartReply(r) = reply(&mut conn, seq, 0xC1).await.message else {
            unreachable!()
        };
        assert_eq!(
            (r.result, r.reason),
            (Outcome::Succeeded, DischargeReason::None)
        );
        // 0xC7 with negative power.
        let m = conn
            .expect(WAIT, "0xC7 while discharging", |f| match &f.message {
                Message::BidirectionalMeter(m) if m.active_power < Power::ZERO => Some(m.clone()),
                _ => None,
            })
            .await
            .unwrap();
        assert_eq!(m.serial, s);
        assert_eq!(m.active_power, Power::from_kw(-10));

        // A setpoint valid for 60 simulated seconds (100 ms), then the dead-man stops it.
        let seq = conn
            .send(DischargeSetpoint {
                pile_code: p,
                connector: ConnectorNo::new(1).unwrap(),
                discharge_power: Power::from_kw(5),
                valid_for_s: 60,
            })
            .await
            .unwrap();
        let Message::DischargeSetpointReply(r) = reply(&mut conn, seq, 0xC3).await.message else {
            unreachable!()
        };
        assert_eq!(r.result, Outcome::Succeeded);
        let st = charger.state().await.unwrap();
        assert_eq!(st.connector(1).unwrap().power, Power::from_kw(-5));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let st = charger.state().await.unwrap();
        let c = st.connector(1).unwrap();
        assert!(c.discharging, "still in the session");
        assert_eq!(
            c.power,
            Power::ZERO,
            "dead-man: no setpoint within valid_for"
        );
        let exported = c.export_register_wire;
        assert!(exported > Energy::ZERO);

        // Stop: 0xC5, then 0xC9 resent until 0xCA.
        let seq = conn
            .send(DischargeStop {
                pile_code: p,
                connector: ConnectorNo::new(1).unwrap(),
            })
            .await
            .unwrap();
        let Message::DischargeStopReply(r) = reply(&mut conn, seq, 0xC5).await.message else {
            unreachable!()
        };
        assert_eq!(r.result, Outcome::Succeeded);
        let pick = |f: &voltline_protocol::frame::Frame| match &f.message {
            Message::DischargeRecord(r) => Some(r.clone()),
            _ => None,
        };
        let rec = conn.expect(WAIT, "0xC9", pick).await.unwrap();
        assert_eq!(rec.serial, s);
        assert_eq!(rec.export_register_end, exported);
        assert_eq!(
            rec.exported_energy,
            rec.export_register_end - rec.export_register_start
        );
        let ended = voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(e, SimEvent::DischargeEnded { .. })
        })
        .await
        .unwrap();
        let SimEvent::DischargeEnded { summary, .. } = ended else {
            unreachable!()
        };
        assert!((summary.vehicle_energy.mwh() - rec.exported_energy.mwh()).abs() < 100);
        assert_eq!(conn.expect(WAIT, "0xC9 again", pick).await.unwrap(), rec);
        conn.send(DischargeRecordAck {
            serial: s,
            result: Outcome::Succeeded,
        })
        .await
        .unwrap();
        voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
            matches!(
                e,
                SimEvent::RecordConfirmed {
                    frame_type: 0xC9,
                    ..
                }
            )
        })
        .await
        .unwrap();
        fleet.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_charge_only_pile_refuses_to_discharge() {
    bounded(async {
        let p = pile(31);
        let (_platform, fleet, mut conn) =
            setup(ChargerSpec::ac(p), 60.0, HarnessConfig::default()).await;
        fleet
            .charger(&p)
            .unwrap()
            .plug_in(1, VehicleSpec::standard().with_v2g())
            .await
            .unwrap();
        let seq = conn.send(start(p, 1, 20)).await.unwrap();
        let Message::DischargeStartReply(r) = reply(&mut conn, seq, 0xC1).await.message else {
            unreachable!()
        };
        assert_eq!(
            (r.result, r.reason),
            (Outcome::Failed, DischargeReason::NotV2gCapable)
        );
        fleet.shutdown().await;
    })
    .await;
}

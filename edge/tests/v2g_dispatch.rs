//! A grid event over 20 simulated V2G vehicles at one site, with vehicles arriving and
//! leaving while it runs: the site shares the event within its export limit, re-plans as
//! vehicles come and go, never takes a vehicle below its driver's floor (checked on the
//! simulator's own battery SoC, not on what the edge believes), and ends every discharge
//! when the event ends.

mod v2g_support;

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use v2g_support::*;
use voltline_protocol::domain::{PileCode, Power};
use voltline_protocol::sync::{Command, CommandOutcome};
use voltline_sim::SimEvent;

const SPEED: u64 = 30;
const VEHICLES: u64 = 20;
/// 12 vehicles are there when the event starts; 8 arrive while it runs.
const AT_START: u64 = 12;
const SITE_LIMIT_KW: i64 = 60;
const VEHICLE_MAX_KW: i64 = 11;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_event_over_20_vehicles_with_arrivals_and_departures_keeps_every_floor() {
    let dir = tempfile::tempdir().unwrap();
    let piles: Vec<PileCode> = (1..=VEHICLES).map(pile).collect();
    let edge = Edge::start(
        dir.path(),
        &piles,
        fast_grid(SPEED),
        Some(Power::from_kw(SITE_LIMIT_KW)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let fleet = fleet(edge.tcp_addr, &piles, SPEED as f64).await;
    let mut sim_events = fleet.events();
    let mut view = edge.view.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == piles.len()))
        .await
        .expect("every pile logs in")
        .unwrap();

    // Floors from 25 to 35 %, batteries of 20 to 50 kWh (the edge assumes 20 kWh until it
    // learns better). Vehicles 1 to 3 start 3 points above their floor; the others at 40 to
    // 60 %, more than the event takes, so the event's end stops them.
    let floor = |i: u64| 25 + (i % 3) as u8 * 5;
    let arrive = |i: u64| {
        let charger = fleet.charger(&pile(i)).unwrap();
        let edge = &edge;
        async move {
            charger
                .plug_in(
                    1,
                    v2g_vehicle(
                        20_000 + (i as i64 % 4) * 10_000,
                        if i <= 3 {
                            floor(i) + 3
                        } else {
                            40 + (i % 3) as u8 * 10
                        },
                    ),
                )
                .await
                .unwrap();
            let id = edge
                .command(discharge(pile(i), 1, floor(i), VEHICLE_MAX_KW))
                .await;
            assert_eq!(
                edge.result_of(&id).await,
                CommandOutcome::Accepted,
                "vehicle {i} starts discharging"
            );
        }
    };
    for i in 1..=AT_START {
        arrive(i).await;
    }

    let now = Timestamp::now();
    let event_len = SignedDuration::from_secs(40);
    let event = edge
        .command(Command::GridEvent {
            event_id: "evt-20".into(),
            power: Power::from_kw(80),
            from: now,
            to: now + event_len,
        })
        .await;
    assert_eq!(edge.result_of(&event).await, CommandOutcome::Accepted);
    let end = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut reasons: HashMap<PileCode, u8> = HashMap::new();
    let mut discharged = 0;
    let mut drain = |rx: &mut tokio::sync::broadcast::Receiver<SimEvent>| loop {
        match rx.try_recv() {
            Ok(SimEvent::DischargeEnded { pile, summary, .. }) => {
                reasons.insert(pile, summary.stop_reason.0);
                if summary.vehicle_energy.mwh() > 0 {
                    discharged += 1;
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    };

    // While the event runs: arrivals, departures, and the simulator's SoC watched.
    let mut next_arrival = AT_START + 1;
    let mut unplugged = Vec::new();
    let mut max_site_w = 0i64;
    let mut round = 0u64;
    while tokio::time::Instant::now() < end + Duration::from_secs(3) {
        round += 1;
        if round.is_multiple_of(6) && next_arrival <= VEHICLES {
            arrive(next_arrival).await;
            next_arrival += 1;
        }
        if round.is_multiple_of(9) && unplugged.len() < 5 {
            // Vehicles 2, 4, 6, 8, 10 leave.
            let i = 2 * (unplugged.len() as u64 + 1);
            fleet.charger(&pile(i)).unwrap().unplug(1).await.unwrap();
            unplugged.push(i);
        }
        let mut site_w = 0;
        for i in 1..=VEHICLES {
            let state = fleet.charger(&pile(i)).unwrap().state().await.unwrap();
            let c = state.connector(1).unwrap();
            if let Some(soc) = c.soc.filter(|_| c.plugged) {
                assert!(
                    soc.percent() >= floor(i),
                    "vehicle {i} is at {} %, below its floor of {} %",
                    soc.percent(),
                    floor(i)
                );
            }
            if c.discharging {
                site_w += -c.power.watts().min(0);
            }
        }
        max_site_w = max_site_w.max(site_w);
        drain(&mut sim_events);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(next_arrival, VEHICLES + 1, "every vehicle arrived");
    assert_eq!(unplugged.len(), 5);

    // The piles' snapshots are read one after the other (not one instant), so a vehicle
    // taking up a new setpoint may be counted at its old power: one vehicle's worth.
    assert!(
        max_site_w <= (SITE_LIMIT_KW + VEHICLE_MAX_KW) * 1_000,
        "the site exported {max_site_w} W, limit {SITE_LIMIT_KW} kW"
    );
    assert!(
        edge.metrics.grid_planned_watts.get() <= SITE_LIMIT_KW * 1_000,
        "plans stay within the site limit"
    );

    // After the event nothing discharges, every session was ended and its record confirmed.
    eventually("every discharge ended", || async {
        let mut any = false;
        for i in 1..=VEHICLES {
            let state = fleet.charger(&pile(i)).unwrap().state().await.unwrap();
            any |= state.connector(1).unwrap().discharging;
        }
        !any
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&mut sim_events);
    assert_eq!(
        reasons.len(),
        VEHICLES as usize,
        "every session ended: {reasons:?}"
    );
    assert_eq!(discharged, VEHICLES as usize, "every vehicle gave energy");
    // The edge ended every discharge that did not end by unplugging (0x40, remote stop):
    // none ran into the pile's own floor stop.
    for i in (1..=VEHICLES).filter(|i| !unplugged.contains(i)) {
        assert_eq!(
            reasons[&pile(i)],
            0x40,
            "vehicle {i}'s session: {reasons:?}"
        );
    }
    assert_eq!(
        edge.stops("event_ended") + edge.stops("floor_reached"),
        VEHICLES - unplugged.len() as u64,
        "the event's end (or a floor) stopped every vehicle still there"
    );
    assert!(
        edge.metrics.grid_setpoints.get() > VEHICLES,
        "setpoints were re-planned"
    );
    assert_eq!(edge.metrics.grid_event_active.get(), 0);
    eventually("the ended event is forgotten", || async {
        edge.store.grid_event().unwrap().is_none()
    })
    .await;
    fleet.shutdown().await;
    edge.stop().await;
}

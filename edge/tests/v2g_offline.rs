//! V2G with the cloud unreachable, on simulated V2G chargers: the cloud dead-man ends a
//! discharge that runs on its driver's order alone, while a grid event runs past the
//! dead-man to its end, its floors kept (the edge stops a vehicle at its floor before the
//! pile's own floor stop would).

mod v2g_support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use v2g_support::*;
use voltline_protocol::domain::{PileCode, Power};
use voltline_protocol::sync::{Command, CommandOutcome};
use voltline_sim::fleet::SimFleet;
use voltline_sim::SimEvent;

const SPEED: u64 = 30;
/// The pile's stop reason when the platform stopped the discharge (0xC6).
const REMOTE_STOP: u8 = 0x40;

fn offline_grid() -> voltline_edge::site::GridOptions {
    voltline_edge::site::GridOptions {
        cloud_dead_man_ms: 3_000,
        ..fast_grid(SPEED)
    }
}

async fn discharging(fleet: &SimFleet, p: PileCode) -> bool {
    let state = fleet.charger(&p).unwrap().state().await.unwrap();
    state.connector(1).unwrap().discharging
}

async fn soc(fleet: &SimFleet, p: PileCode) -> u8 {
    let state = fleet.charger(&p).unwrap().state().await.unwrap();
    state.connector(1).unwrap().soc.unwrap().percent()
}

/// The stop reason of the next discharge record of `p`.
async fn ended(events: &mut tokio::sync::broadcast::Receiver<SimEvent>, p: PileCode) -> u8 {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(SimEvent::DischargeEnded { pile, summary, .. }) if pile == p => {
                    return summary.stop_reason.0
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("simulator events: {e}"),
            }
        }
    })
    .await
    .expect("the discharge ends")
}

async fn start(piles: &[PileCode]) -> (tempfile::TempDir, Edge, SimFleet) {
    let dir = tempfile::tempdir().unwrap();
    let edge = Edge::start(
        dir.path(),
        piles,
        offline_grid(),
        None,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let fleet = fleet(edge.tcp_addr, piles, SPEED as f64).await;
    let mut view = edge.view.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == piles.len()))
        .await
        .expect("the piles log in")
        .unwrap();
    (dir, edge, fleet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_dead_man_stops_discharge_outside_an_event_only_after_silence() {
    let p = pile(1);
    let (_dir, edge, fleet) = start(&[p]).await;
    let mut events = fleet.events();
    fleet
        .charger(&p)
        .unwrap()
        .plug_in(1, v2g_vehicle(60_000, 70))
        .await
        .unwrap();
    let id = edge.command(discharge(p, 1, 20, 11)).await;
    assert_eq!(edge.result_of(&id).await, CommandOutcome::Accepted);

    // While the cloud is heard, twice the dead-man passes and the discharge goes on.
    let online_until = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < online_until {
        edge.cloud_seen();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        discharging(&fleet, p).await,
        "discharging while the cloud is there"
    );
    assert_eq!(edge.stops("cloud_unreachable"), 0);

    // Silence: the dead-man ends it.
    assert_eq!(ended(&mut events, p).await, REMOTE_STOP);
    assert_eq!(edge.stops("cloud_unreachable"), 1);
    assert!(!discharging(&fleet, p).await);
    fleet.shutdown().await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_an_event_runs_past_the_dead_man_to_its_end_and_a_floor_stops_a_vehicle() {
    let (near, far) = (pile(2), pile(3));
    let (_dir, edge, fleet) = start(&[near, far]).await;
    let mut events = fleet.events();
    // `near`: 3 points above its 30 % floor; `far`: plenty above its 20 %.
    fleet
        .charger(&near)
        .unwrap()
        .plug_in(1, v2g_vehicle(20_000, 33))
        .await
        .unwrap();
    fleet
        .charger(&far)
        .unwrap()
        .plug_in(1, v2g_vehicle(60_000, 70))
        .await
        .unwrap();
    for (p, floor) in [(near, 30), (far, 20)] {
        let id = edge.command(discharge(p, 1, floor, 11)).await;
        assert_eq!(edge.result_of(&id).await, CommandOutcome::Accepted);
    }
    let now = Timestamp::now();
    let event = edge
        .command(Command::GridEvent {
            event_id: "evt-offline".into(),
            power: Power::from_kw(22),
            from: now,
            to: now + SignedDuration::from_secs(20),
        })
        .await;
    assert_eq!(edge.result_of(&event).await, CommandOutcome::Accepted);
    let last_contact = tokio::time::Instant::now();
    // From here on the cloud is silent.

    assert_eq!(
        ended(&mut events, near).await,
        REMOTE_STOP,
        "the edge stopped `near` at its floor, not the pile"
    );
    assert_eq!(edge.stops("floor_reached"), 1);
    assert!(soc(&fleet, near).await >= 30, "`near` kept its floor");

    // Well past the dead-man, the event still runs.
    tokio::time::sleep_until(last_contact + Duration::from_secs(6)).await;
    assert!(
        discharging(&fleet, far).await,
        "the event goes on while the cloud is silent"
    );
    assert_eq!(edge.stops("cloud_unreachable"), 0);

    assert_eq!(ended(&mut events, far).await, REMOTE_STOP);
    assert_eq!(edge.stops("event_ended"), 1);
    assert_eq!(edge.stops("cloud_unreachable"), 0);
    assert!(soc(&fleet, far).await >= 20);
    fleet.shutdown().await;
    edge.stop().await;
}

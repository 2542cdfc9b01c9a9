//! A grid event survives an edge restart: the event and the discharge orders are cached in
//! the store, so the restarted edge (with the cloud still unreachable) takes the event up
//! again when the simulated piles reconnect, dispatches it, ends it on time and forgets it.

mod v2g_support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use v2g_support::*;
use voltline_protocol::domain::{PileCode, Power};
use voltline_protocol::sync::{Command, CommandOutcome};

const SPEED: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_event_survives_an_edge_restart_and_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let piles: Vec<PileCode> = (1..=2).map(pile).collect();
    let edge = Edge::start(
        dir.path(),
        &piles,
        fast_grid(SPEED),
        None,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let addr = edge.tcp_addr;
    let fleet = fleet(addr, &piles, SPEED as f64).await;
    for p in &piles {
        fleet
            .charger(p)
            .unwrap()
            .plug_in(1, v2g_vehicle(60_000, 70))
            .await
            .unwrap();
        let id = edge.command(discharge(*p, 1, 20, 11)).await;
        assert_eq!(edge.result_of(&id).await, CommandOutcome::Accepted);
    }
    let now = Timestamp::now();
    let to = now + SignedDuration::from_secs(25);
    let event = edge
        .command(Command::GridEvent {
            event_id: "evt-restart".into(),
            power: Power::from_kw(10),
            from: now,
            to,
        })
        .await;
    assert_eq!(edge.result_of(&event).await, CommandOutcome::Accepted);
    eventually("both vehicles dispatched", || async {
        edge.metrics.grid_participants.get() == 2
    })
    .await;
    edge.stop().await;

    // The edge is down for a moment; the piles hold zero once their setpoints lapse.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let edge = Edge::start(dir.path(), &piles, fast_grid(SPEED), None, addr).await;
    assert_eq!(
        edge.store.grid_event().unwrap().map(|e| e.id),
        Some("evt-restart".to_owned()),
        "the event is cached"
    );
    assert_eq!(
        edge.store.opt_ins().unwrap().len(),
        2,
        "the orders are cached"
    );
    eventually("the restarted edge dispatches the event", || async {
        edge.metrics.grid_event_active.get() == 1
            && edge.metrics.grid_participants.get() == 2
            && edge.metrics.grid_setpoints.get() >= 2
    })
    .await;
    // 10 kW shared among two vehicles: both discharge again under the restored plan.
    eventually("both piles discharge at the planned power", || async {
        let mut total = 0;
        for p in &piles {
            let state = fleet.charger(p).unwrap().state().await.unwrap();
            total += -state.connector(1).unwrap().power.watts().min(0);
        }
        total == 10_000
    })
    .await;

    eventually("the event ends and stops both", || async {
        edge.stops("event_ended") == 2
    })
    .await;
    assert!(Timestamp::now() >= to, "not before the event's end");
    eventually("no discharge after the event", || async {
        let mut any = false;
        for p in &piles {
            let state = fleet.charger(p).unwrap().state().await.unwrap();
            any |= state.connector(1).unwrap().discharging;
        }
        !any
    })
    .await;
    eventually("the event and the orders are forgotten", || async {
        edge.store.grid_event().unwrap().is_none() && edge.store.opt_ins().unwrap().is_empty()
    })
    .await;
    fleet.shutdown().await;
    edge.stop().await;
}

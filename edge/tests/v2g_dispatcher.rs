//! The dispatcher's rules, in simulated time: a grid event over 20 vehicles arriving and
//! leaving (site limit, floors, departures, the event's end), vehicles the plan does not need
//! held at zero, the cloud dead-man (free-running discharge only; events run to their end),
//! floor and departure stops with bounded resends, free-running discharge within the site
//! limit, and the order and dead-band of setpoint changes.

// The simulation keeps parallel per-vehicle arrays indexed together.
#![allow(clippy::needless_range_loop)]

use jiff::{SignedDuration, Timestamp};
use voltline_edge::dispatch::dispatcher::{
    DispatchAction, DispatchConfig, Dispatcher, GridEvent, StopCause, VehicleReport,
    MAX_STOP_ATTEMPTS,
};
use voltline_edge::dispatch::plan::{ConnectorKey, Participant};
use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, Power};

fn key(i: u64) -> ConnectorKey {
    ConnectorKey {
        pile: PileCode::from_number(32_010_600_000_000 + i).unwrap(),
        connector: ConnectorNo::new(1).unwrap(),
    }
}

fn participant(i: u64, available_wh: i64, max_kw: i64) -> Participant {
    Participant {
        key: key(i),
        available: Energy::from_wh(available_wh),
        max_power: Power::from_kw(max_kw),
    }
}

fn config(limit_kw: i64, dead_man: SignedDuration) -> DispatchConfig {
    DispatchConfig {
        site_export_limit: Power::from_kw(limit_kw),
        setpoint_valid_for_s: 60,
        refresh: SignedDuration::from_secs(20),
        replan_horizon: SignedDuration::from_secs(15),
        cloud_dead_man: dead_man,
        stop_retry: SignedDuration::from_secs(30),
    }
}

fn report(p: Participant, departure: Option<Timestamp>) -> VehicleReport {
    VehicleReport {
        participant: p,
        departure,
        in_event: false,
    }
}

fn stops(actions: &[DispatchAction]) -> Vec<(ConnectorKey, StopCause)> {
    actions
        .iter()
        .filter_map(|a| match a {
            DispatchAction::Stop { key, cause } => Some((*key, *cause)),
            _ => None,
        })
        .collect()
}

/// A one-hour event of 300 kW over 20 vehicles that arrive and leave, re-planned on every
/// 15 s meter update: the site limit holds, no vehicle is ever taken below its floor, every
/// stop has its cause, and the event ends on time.
#[test]
fn grid_event_over_20_vehicles_never_passes_a_floor() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let mut d = Dispatcher::new(config(250, SignedDuration::from_hours(4)), t0);
    d.set_event(
        GridEvent {
            id: "evt-1".into(),
            power: Power::from_kw(300),
            from: t0,
            to: t0 + SignedDuration::from_hours(1),
        },
        t0,
    )
    .unwrap();
    // available energy in mWh, current power in W, plugged?
    let mut avail: Vec<i64> = (0..20).map(|i| (2_000 + 1_500 * i) * 1_000).collect();
    let mut power = vec![0i64; 20];
    let mut plugged = [false; 20];
    let max_kw = |i: usize| if i.is_multiple_of(3) { 7 } else { 22 };
    let step = SignedDuration::from_secs(15);
    // Every 4th vehicle's driver leaves at tick 100 + 5 i (its order's departure); every
    // vehicle with i % 4 == 1 is unplugged abruptly at tick 150 + i.
    let departure = |i: usize| {
        i.is_multiple_of(4)
            .then(|| t0 + SignedDuration::from_secs(15 * (100 + 5 * i as i64)))
    };
    let mut now = t0;
    let mut seen = Vec::new();
    for tick in 0..300 {
        let mut actions = Vec::new();
        for i in 0..20 {
            if tick == 2 * i && !plugged[i] {
                plugged[i] = true;
            }
            if i % 4 == 1 && tick == 150 + i && plugged[i] {
                plugged[i] = false;
                power[i] = 0;
                actions.extend(d.remove_vehicle(key(i as u64), now).unwrap());
            }
        }
        for i in 0..20 {
            if plugged[i] {
                let p = Participant {
                    key: key(i as u64),
                    available: Energy::from_mwh(avail[i]),
                    max_power: Power::from_kw(max_kw(i)),
                };
                actions.extend(d.upsert_vehicle(report(p, departure(i)), now).unwrap());
            }
        }
        actions.extend(d.tick(now).unwrap());
        for a in &actions {
            apply(a, &mut power, &mut seen);
        }
        for i in 0..20 {
            if departure(i).is_some_and(|d| now >= d) {
                assert_eq!(power[i], 0, "vehicle {i} discharges past its departure");
            }
        }
        let site_total: i64 = power.iter().sum();
        assert!(site_total <= 250_000, "site limit exceeded: {site_total} W");
        // 15 s of discharge at the setpoints.
        for i in 0..20 {
            avail[i] -= Power::from_watts(power[i]).energy_over_ms(15_000).mwh();
            assert!(
                avail[i] >= 0,
                "vehicle {i} went below its floor: {} mWh",
                avail[i]
            );
        }
        now += step;
    }
    assert!(d.event().is_none(), "the event ended");
    assert!(
        power.iter().all(|&p| p == 0),
        "all discharge stopped: {power:?}"
    );
    assert!(seen.contains(&StopCause::EventEnded));
    assert!(seen.contains(&StopCause::Departed));
}

fn apply(a: &DispatchAction, power: &mut [i64], seen: &mut Vec<StopCause>) {
    let idx =
        |k: &ConnectorKey| (0..20u64).find(|&i| key(i) == *k).expect("known vehicle") as usize;
    match a {
        DispatchAction::Setpoint { key, power: p, .. } => power[idx(key)] = p.watts(),
        DispatchAction::Stop { key, cause } => {
            power[idx(key)] = 0;
            seen.push(*cause);
        }
    }
}

#[test]
fn a_vehicle_the_plan_does_not_need_is_held_at_zero_not_stopped() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let mut d = Dispatcher::new(config(100, SignedDuration::from_hours(1)), t0);
    d.set_event(
        GridEvent {
            id: "e".into(),
            power: Power::from_kw(7),
            from: t0,
            to: t0 + SignedDuration::from_hours(1),
        },
        t0,
    )
    .unwrap();
    d.upsert_vehicle(report(participant(1, 50_000, 7), None), t0)
        .unwrap();
    // The second has so little that its share rounds to nothing.
    let a = d
        .upsert_vehicle(report(participant(2, 10, 7), None), t0)
        .unwrap();
    assert!(stops(&a).is_empty(), "{a:?}");
    assert!(a.contains(&DispatchAction::Setpoint {
        key: key(2),
        power: Power::ZERO,
        valid_for_s: 60
    }));
    assert_eq!(d.figures().participants, 2);
}

#[test]
fn the_cloud_dead_man_stops_only_free_running_discharge_and_events_run_to_their_end() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let min = SignedDuration::from_mins;
    let mut d = Dispatcher::new(config(100, min(30)), t0);
    // Vehicle 1 discharges on its order alone; vehicle 2 as well until the event starts.
    d.upsert_vehicle(report(participant(1, 50_000, 22), None), t0)
        .unwrap();
    d.upsert_vehicle(report(participant(2, 50_000, 22), None), t0)
        .unwrap();
    // The cloud is heard at 10 minutes, then not again.
    d.cloud_seen(t0 + min(10));
    d.set_event(
        GridEvent {
            id: "e".into(),
            power: Power::from_kw(10),
            from: t0 + min(45),
            to: t0 + min(155),
        },
        t0 + min(10),
    )
    .unwrap();
    assert!(stops(&d.tick(t0 + min(39)).unwrap()).is_empty());
    // 30 minutes after the last contact, before the event: both are free-running.
    assert_eq!(
        stops(&d.tick(t0 + min(40)).unwrap()),
        vec![
            (key(1), StopCause::CloudUnreachable),
            (key(2), StopCause::CloudUnreachable)
        ]
    );
    // A vehicle that arrives once the event runs takes part and runs to the event's end,
    // however long the cloud has been silent.
    let mut d = Dispatcher::new(config(100, min(30)), t0);
    d.set_event(
        GridEvent {
            id: "e".into(),
            power: Power::from_kw(10),
            from: t0,
            to: t0 + min(120),
        },
        t0,
    )
    .unwrap();
    d.upsert_vehicle(report(participant(1, 50_000, 22), None), t0)
        .unwrap();
    for m in (1..120).step_by(7) {
        assert!(
            stops(&d.tick(t0 + min(m)).unwrap()).is_empty(),
            "stopped at minute {m}"
        );
    }
    assert_eq!(
        stops(&d.tick(t0 + min(120)).unwrap()),
        vec![(key(1), StopCause::EventEnded)]
    );
    // After its event, a vehicle known to have taken part is stopped when it shows up again
    // (an edge restarted after the event ended).
    let mut d = Dispatcher::new(config(100, min(30)), t0);
    let a = d
        .upsert_vehicle(
            VehicleReport {
                participant: participant(1, 50_000, 22),
                departure: None,
                in_event: true,
            },
            t0,
        )
        .unwrap();
    assert_eq!(stops(&a), vec![(key(1), StopCause::EventEnded)]);
}

#[test]
fn floor_and_departure_stop_free_running_discharge_and_stops_are_resent_a_bounded_number_of_times()
{
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let secs = SignedDuration::from_secs;
    let mut d = Dispatcher::new(config(100, SignedDuration::from_hours(1)), t0);
    d.upsert_vehicle(report(participant(1, 5_000, 22), Some(t0 + secs(600))), t0)
        .unwrap();
    d.upsert_vehicle(report(participant(2, 5_000, 22), None), t0)
        .unwrap();
    assert_eq!(
        stops(
            &d.upsert_vehicle(report(participant(2, 0, 22), None), t0 + secs(15))
                .unwrap()
        ),
        vec![(key(2), StopCause::FloorReached)]
    );
    // Vehicle 2 is still reported: its stop is resent every 30 s, at most 3 frames in all.
    let mut resent = 0;
    for s in (45..600).step_by(15) {
        resent += stops(&d.tick(t0 + secs(s)).unwrap()).len();
    }
    assert_eq!(resent, MAX_STOP_ATTEMPTS as usize - 1);
    assert_eq!(
        stops(&d.tick(t0 + secs(600)).unwrap()),
        vec![(key(1), StopCause::Departed)]
    );
    // Once its session is over it is forgotten.
    let after = d.remove_vehicle(key(2), t0 + secs(700)).unwrap();
    assert!(stops(&after).iter().all(|(k, _)| *k != key(2)), "{after:?}");
    assert_eq!(d.vehicles().count(), 1);
}

fn setpoints(actions: &[DispatchAction]) -> Vec<(ConnectorKey, i64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            DispatchAction::Setpoint { key, power, .. } => Some((*key, power.watts())),
            _ => None,
        })
        .collect()
}

#[test]
fn free_running_discharge_runs_at_each_orders_power_within_the_site_limit() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let mut d = Dispatcher::new(config(25, SignedDuration::from_hours(1)), t0);
    let mut last = Vec::new();
    for i in 1..=3 {
        last = d
            .upsert_vehicle(report(participant(i, 50_000, 11), None), t0)
            .unwrap();
    }
    let total: i64 = setpoints(&last).iter().map(|(_, w)| w).sum();
    assert_eq!(total, 25_000, "three orders of 11 kW share the 25 kW limit");
    assert!(setpoints(&last).iter().all(|(_, w)| *w <= 11_000));
    assert!(!d.is_in_event(&key(1)), "no event: free-running");
    // With room under the limit each runs at its order's power.
    d.set_site_limit(Power::from_kw(100));
    let a = d.tick(t0 + SignedDuration::from_secs(30)).unwrap();
    assert_eq!(
        setpoints(&a),
        (1..=3).map(|i| (key(i), 11_000)).collect::<Vec<_>>()
    );
}

#[test]
fn lower_setpoints_go_out_at_once_and_small_raises_wait_for_the_refresh() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let secs = SignedDuration::from_secs;
    let mut d = Dispatcher::new(config(100, SignedDuration::from_hours(1)), t0);
    d.set_event(
        GridEvent {
            id: "e".into(),
            power: Power::from_kw(10),
            from: t0,
            to: t0 + SignedDuration::from_hours(1),
        },
        t0,
    )
    .unwrap();
    d.upsert_vehicle(report(participant(1, 50_000, 22), None), t0)
        .unwrap();
    d.upsert_vehicle(report(participant(2, 50_000, 22), None), t0)
        .unwrap();
    // Vehicle 2 gives a little less: its share drops by 100 W (sent), vehicle 1's rises by
    // 100 W (held until the refresh).
    let a = d
        .upsert_vehicle(report(participant(2, 49_000, 22), None), t0 + secs(5))
        .unwrap();
    assert_eq!(setpoints(&a), vec![(key(2), 4_900)]);
    // A big change goes out in full, the lowering first.
    let a = d
        .upsert_vehicle(report(participant(2, 10_000, 22), None), t0 + secs(10))
        .unwrap();
    assert_eq!(setpoints(&a), vec![(key(2), 1_700), (key(1), 8_300)]);
    // The refresh sends every setpoint as planned.
    let a = d.tick(t0 + secs(20)).unwrap();
    assert_eq!(setpoints(&a).len(), 2);
}

//! Properties of the dispatch planner and a simulated grid event over 20 vehicles.

// The simulation keeps parallel per-vehicle arrays indexed together.
#![allow(clippy::needless_range_loop)]

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use voltline_edge::dispatch::dispatcher::{
    DispatchAction, DispatchConfig, Dispatcher, GridEvent, StopCause,
};
use voltline_edge::dispatch::plan::{
    plan, power_for_horizon, ConnectorKey, Participant, SETPOINT_STEP_W,
};
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

const HOUR_MS: u64 = 3_600_000;

#[test]
fn shares_follow_available_energy() {
    // 30 kW among 10, 20 and 30 kWh: 5, 10 and 15 kW; nobody capped.
    let ps = [
        participant(1, 10_000, 50),
        participant(2, 20_000, 50),
        participant(3, 30_000, 50),
    ];
    let p = plan(&ps, Power::from_kw(30), Power::from_kw(100), 60_000).unwrap();
    let kw: Vec<i64> = p.setpoints.iter().map(|s| s.power.watts()).collect();
    assert_eq!(kw, vec![5_000, 10_000, 15_000]);
    assert_eq!(p.total, Power::from_kw(30));
    assert_eq!(p.shortfall, Power::ZERO);
}

#[test]
fn a_capped_vehicle_passes_its_excess_to_the_others() {
    // Vehicle 3 would get 15 kW but is capped at 7 kW; 8 kW go to 1 and 2 in proportion 1:2.
    let ps = [
        participant(1, 10_000, 50),
        participant(2, 20_000, 50),
        participant(3, 30_000, 7),
    ];
    let p = plan(&ps, Power::from_kw(30), Power::from_kw(100), 60_000).unwrap();
    let w: Vec<i64> = p.setpoints.iter().map(|s| s.power.watts()).collect();
    assert_eq!(w[2], 7_000);
    assert_eq!(w[0] + w[1], 23_000);
    assert!((w[1] - 2 * w[0]).abs() <= 2 * SETPOINT_STEP_W, "{w:?}");
}

#[test]
fn site_limit_and_shortfall() {
    let ps = [participant(1, 10_000, 7), participant(2, 10_000, 7)];
    let p = plan(&ps, Power::from_kw(100), Power::from_kw(50), 60_000).unwrap();
    assert_eq!(p.target, Power::from_kw(50));
    assert_eq!(p.total, Power::from_kw(14));
    assert_eq!(p.shortfall, Power::from_kw(36));
}

#[test]
fn a_vehicle_never_gets_more_than_it_can_give_before_the_next_replan() {
    // 100 Wh left, next re-plan in 60 s: at most 6 kW.
    assert_eq!(
        power_for_horizon(Energy::from_wh(100), 60_000),
        Power::from_kw(6)
    );
    let ps = [participant(1, 100, 50), participant(2, 100_000, 50)];
    let p = plan(&ps, Power::from_kw(40), Power::from_kw(100), 60_000).unwrap();
    assert!(p.setpoints[0].power <= Power::from_kw(6));
    assert_eq!(p.total, Power::from_kw(40));
}

fn participants() -> impl Strategy<Value = Vec<Participant>> {
    proptest::collection::vec((0i64..80_000, 0i64..160), 0..60).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (wh, kw))| participant(i as u64, wh, kw))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn plans_respect_every_limit_and_meet_the_target_when_they_can(
        ps in participants(),
        event_kw in 0i64..2_000,
        site_kw in 0i64..2_000,
        horizon_s in 1u64..900,
    ) {
        let horizon_ms = horizon_s * 1_000;
        let p = plan(&ps, Power::from_kw(event_kw), Power::from_kw(site_kw), horizon_ms).unwrap();
        prop_assert_eq!(p.setpoints.len(), ps.len());
        let target = event_kw.min(site_kw) * 1_000;
        prop_assert_eq!(p.target.watts(), target);
        let mut cap_sum = 0;
        for (sp, part) in p.setpoints.iter().zip(&ps) {
            let w = sp.power.watts();
            prop_assert!(w >= 0 && w % SETPOINT_STEP_W == 0);
            prop_assert!(w <= part.max_power.watts());
            prop_assert!(w <= power_for_horizon(part.available, horizon_ms).watts());
            if part.available.mwh() == 0 { prop_assert_eq!(w, 0); }
            let cap = part.max_power.watts().min(power_for_horizon(part.available, horizon_ms).watts());
            cap_sum += if part.available.mwh() > 0 { cap / SETPOINT_STEP_W * SETPOINT_STEP_W } else { 0 };
        }
        prop_assert!(p.total.watts() <= target);
        prop_assert_eq!(p.total.watts(), target.min(cap_sum), "meets the target whenever the caps allow");
        prop_assert_eq!(p.shortfall.watts(), target - p.total.watts());
    }

    #[test]
    fn unsaturated_shares_are_proportional_to_available_energy(
        ps in participants(), event_kw in 1i64..500,
    ) {
        let p = plan(&ps, Power::from_kw(event_kw), Power::from_kw(10_000), HOUR_MS).unwrap();
        // Among vehicles below their cap, watts per kWh available differ by at most a step's worth.
        let free: Vec<(i64, i64)> = p.setpoints.iter().zip(&ps)
            .filter(|(sp, part)| part.available.mwh() > 0
                && sp.power.watts() + SETPOINT_STEP_W <= part.max_power.watts().min(power_for_horizon(part.available, HOUR_MS).watts()))
            .map(|(sp, part)| (sp.power.watts(), part.available.mwh()))
            .collect();
        for a in &free {
            for b in &free {
                // Both are within one step of shares with the same ratio x/e, so
                // (w_a - step) / e_a < x_a / e_a = x_b / e_b < (w_b + step) / e_b.
                let lhs = ((a.0 - SETPOINT_STEP_W) as i128) * b.1 as i128;
                let rhs = ((b.0 + SETPOINT_STEP_W) as i128) * a.1 as i128;
                prop_assert!(lhs <= rhs, "{:?} vs {:?}", a, b);
            }
        }
    }
}

/// A one-hour event of 300 kW over 20 vehicles that arrive and leave, re-planned on every
/// 15 s meter update: no vehicle is ever taken below its floor, every stop has its cause, and
/// the event ends on time.
#[test]
fn grid_event_over_20_vehicles_never_passes_a_floor() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let config = DispatchConfig {
        site_export_limit: Power::from_kw(250),
        setpoint_valid_for_s: 60,
        refresh: SignedDuration::from_secs(20),
        replan_horizon: SignedDuration::from_secs(15),
        cloud_dead_man: SignedDuration::from_hours(4),
    };
    let mut d = Dispatcher::new(config, t0);
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
    let mut now = t0;
    let mut stops = Vec::new();
    for tick in 0..300 {
        // Arrivals: vehicle i arrives at tick 2*i; departures: every 4th leaves at tick 100 + 5*i.
        for i in 0..20 {
            if tick == 2 * i && !plugged[i] {
                plugged[i] = true;
            }
            if i.is_multiple_of(4) && tick == 100 + 5 * i && plugged[i] {
                plugged[i] = false;
                for a in d.remove_vehicle(key(i as u64), now).unwrap() {
                    apply(&a, &mut power, &mut stops);
                }
            }
        }
        for i in 0..20 {
            if plugged[i] {
                let p = Participant {
                    key: key(i as u64),
                    available: Energy::from_mwh(avail[i]),
                    max_power: Power::from_kw(max_kw(i)),
                };
                for a in d.upsert_vehicle(p, None, now).unwrap() {
                    apply(&a, &mut power, &mut stops);
                }
            }
        }
        for a in d.tick(now).unwrap() {
            apply(&a, &mut power, &mut stops);
        }
        let site_total: i64 = power.iter().sum();
        assert!(site_total <= 250_000, "site limit exceeded: {site_total} W");
        // 15 s of discharge at the setpoints.
        for i in 0..20 {
            if !plugged[i] {
                power[i] = 0;
            }
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
    assert!(stops.contains(&StopCause::EventEnded));
    assert!(stops.contains(&StopCause::Departed));
}

fn apply(a: &DispatchAction, power: &mut [i64], stops: &mut Vec<StopCause>) {
    let idx =
        |k: &ConnectorKey| (0..20u64).find(|&i| key(i) == *k).expect("known vehicle") as usize;
    match a {
        DispatchAction::Setpoint { key, power: p, .. } => power[idx(key)] = p.watts(),
        DispatchAction::Stop { key, cause } => {
            power[idx(key)] = 0;
            stops.push(*cause);
        }
    }
}

#[test]
fn cloud_dead_man_stops_discharge_but_a_short_event_runs_to_its_end_offline() {
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let config = DispatchConfig {
        site_export_limit: Power::from_kw(100),
        setpoint_valid_for_s: 60,
        refresh: SignedDuration::from_secs(20),
        replan_horizon: SignedDuration::from_secs(15),
        cloud_dead_man: SignedDuration::from_mins(30),
    };
    let event = |hours| GridEvent {
        id: "e".into(),
        power: Power::from_kw(10),
        from: t0,
        to: t0 + SignedDuration::from_hours(hours),
    };
    let p = participant(1, 50_000, 22);
    // A 2-hour event with the cloud silent: stops at 30 minutes.
    let mut d = Dispatcher::new(config, t0);
    d.set_event(event(2), t0).unwrap();
    d.upsert_vehicle(p, None, t0).unwrap();
    assert!(d
        .tick(t0 + SignedDuration::from_mins(29))
        .unwrap()
        .iter()
        .all(|a| !matches!(a, DispatchAction::Stop { .. })));
    let at_30 = d.tick(t0 + SignedDuration::from_mins(30)).unwrap();
    assert_eq!(
        at_30,
        vec![DispatchAction::Stop {
            key: key(1),
            cause: StopCause::CloudUnreachable
        }]
    );
    // A 20-minute event with the cloud silent runs to its end.
    let mut d2 = Dispatcher::new(config, t0);
    d2.set_event(
        GridEvent {
            to: t0 + SignedDuration::from_mins(20),
            ..event(1)
        },
        t0,
    )
    .unwrap();
    d2.upsert_vehicle(p, None, t0).unwrap();
    let at_19 = d2.tick(t0 + SignedDuration::from_mins(19)).unwrap();
    assert!(at_19
        .iter()
        .all(|a| !matches!(a, DispatchAction::Stop { .. })));
    let at_20 = d2.tick(t0 + SignedDuration::from_mins(20)).unwrap();
    assert_eq!(
        at_20,
        vec![DispatchAction::Stop {
            key: key(1),
            cause: StopCause::EventEnded
        }]
    );
}

//! Properties of the dispatch planner (the dispatcher's rules are in `v2g_dispatcher.rs`).

use proptest::prelude::*;
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

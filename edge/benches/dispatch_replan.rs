//! Dispatch re-planning for 500 vehicles on one site (issue #8 goal: under 1 ms per re-plan),
//! beside a baseline measured in the same run: copying the participants into a fresh vector
//! (the least any re-plan must do).

use std::hint::black_box;
use std::time::Instant;

use voltline_edge::dispatch::plan::{plan, ConnectorKey, Participant};
use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, Power};

const VEHICLES: u64 = 500;
const ROUNDS: usize = 2_000;

fn main() {
    let mut ps: Vec<Participant> = (0..VEHICLES)
        .map(|i| Participant {
            key: ConnectorKey {
                pile: PileCode::from_number(32_010_600_000_000 + i).unwrap(),
                connector: ConnectorNo::new(1 + (i % 2) as u8).unwrap(),
            },
            available: Energy::from_wh(2_000 + (i as i64 * 7_919) % 60_000),
            max_power: Power::from_kw(if i % 3 == 0 {
                7
            } else {
                22 + (i as i64 % 5) * 10
            }),
        })
        .collect();
    let mut times = Vec::with_capacity(ROUNDS);
    let mut base = Vec::with_capacity(ROUNDS);
    for r in 0..ROUNDS {
        // A meter update changes one vehicle's energy, as in the field.
        let i = r % ps.len();
        ps[i].available = Energy::from_mwh(ps[i].available.mwh() - 1_000);
        let t = Instant::now();
        let copy: Vec<Participant> = black_box(&ps).clone();
        black_box(&copy);
        base.push(t.elapsed());
        let t = Instant::now();
        let p = plan(
            black_box(&ps),
            Power::from_kw(3_000),
            Power::from_kw(2_500),
            15_000,
        )
        .unwrap();
        black_box(&p);
        times.push(t.elapsed());
    }
    times.sort();
    base.sort();
    let pct = |v: &Vec<std::time::Duration>, q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    let p50 = pct(&times, 0.5);
    let p99 = pct(&times, 0.99);
    println!(
        "dispatch re-plan, {VEHICLES} vehicles, {ROUNDS} rounds: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; baseline (copy the inputs) p50 {:.2} µs; ratio p50 {:.0}x",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        times.last().unwrap().as_secs_f64() * 1e6,
        pct(&base, 0.5).as_secs_f64() * 1e6,
        p50.as_secs_f64() / pct(&base, 0.5).as_secs_f64().max(1e-9),
    );
    println!(
        "goal: under 1 ms per re-plan: {} (p99 {:.3} ms)",
        if p99.as_secs_f64() < 1e-3 {
            "met"
        } else {
            "NOT met"
        },
        p99.as_secs_f64() * 1e3
    );
}

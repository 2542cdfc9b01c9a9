//! Sharing a grid event's export power among the plugged-in, opted-in V2G vehicles of a site.
//!
//! The rule: each vehicle's share is proportional to the energy it can still give above the
//! floor its driver keeps, so that — uncapped — every vehicle reaches its floor at the same
//! moment, and nobody is drained first. A vehicle's share never exceeds its own power cap
//! (vehicle, charger and order limits, whichever is lowest); what a capped vehicle cannot take
//! is shared again among the others, in proportion (water filling). The site's export limit
//! caps the target. Setpoints are multiples of the wire step (0.1 kW); the steps left over by
//! rounding down go to the vehicles with the largest remainders that still have headroom, so
//! the planned total is exactly the target whenever the caps allow it.
//!
//! Pure integer arithmetic (watts, milliwatt-hours, i128 products): the same inputs always
//! give the same plan, on every machine.

use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, Power};

/// The wire step of a discharge setpoint, in watts (0.1 kW).
pub const SETPOINT_STEP_W: i64 = 100;

/// Most vehicles one plan shares power among (bounds work and memory per re-plan).
pub const MAX_PARTICIPANTS: usize = 4_096;

/// Where a vehicle is plugged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorKey {
    pub pile: PileCode,
    pub connector: ConnectorNo,
}

/// A vehicle taking part in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    pub key: ConnectorKey,
    /// Energy it can still give before reaching its floor.
    pub available: Energy,
    /// The most it may discharge: the lowest of the vehicle's, the charger's and the order's
    /// limits.
    pub max_power: Power,
}

/// One vehicle's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setpoint {
    pub key: ConnectorKey,
    /// Discharge power, ≥ 0, a multiple of 0.1 kW.
    pub power: Power,
}

/// The outcome of a re-plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One entry per participant, in the order given.
    pub setpoints: Vec<Setpoint>,
    /// What the site should export: the event's power capped by the site limit, on the step.
    pub target: Power,
    /// The sum of the setpoints.
    pub total: Power,
    /// `target - total`: power the vehicles cannot provide.
    pub shortfall: Power,
}

/// A plan that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// More participants than one plan handles.
    #[error("{count} vehicles take part; one plan handles at most {max}: split the site's event")]
    TooManyParticipants { count: usize, max: usize },
}

fn floor_step(w: i64) -> i64 {
    w.max(0) / SETPOINT_STEP_W * SETPOINT_STEP_W
}

/// The most a vehicle with `available` energy may discharge so that it cannot pass its floor
/// before the next re-plan, `horizon_ms` from now: `E / t`, rounded down.
pub fn power_for_horizon(available: Energy, horizon_ms: u64) -> Power {
    if available.mwh() <= 0 {
        return Power::ZERO;
    }
    let horizon_ms = horizon_ms.max(1) as i128;
    // E [mWh] = P [W] × t [ms] / 3 600  ⇒  P = E × 3 600 / t.
    let w = available.mwh() as i128 * 3_600 / horizon_ms;
    Power::from_watts(w.min(i64::MAX as i128) as i64)
}

/// Shares `event_power` (export, positive) among `participants`, capped by `site_limit`, so
/// that no vehicle can pass its floor within `horizon_ms` (the time until the next re-plan).
pub fn plan(
    participants: &[Participant],
    event_power: Power,
    site_limit: Power,
    horizon_ms: u64,
) -> Result<Plan, PlanError> {
    if participants.len() > MAX_PARTICIPANTS {
        return Err(PlanError::TooManyParticipants {
            count: participants.len(),
            max: MAX_PARTICIPANTS,
        });
    }
    let n = participants.len();
    let target_w = floor_step(event_power.watts().min(site_limit.watts()));
    // Caps on the step grid; a vehicle with nothing left takes nothing.
    let caps: Vec<i64> = participants
        .iter()
        .map(|p| {
            if p.available.mwh() <= 0 {
                0
            } else {
                let horizon_cap = power_for_horizon(p.available, horizon_ms).watts();
                floor_step(p.max_power.watts().min(horizon_cap))
            }
        })
        .collect();
    let weights: Vec<i64> = participants
        .iter()
        .map(|p| p.available.mwh().max(0))
        .collect();

    // Water filling: visit vehicles by cap/weight ascending (the first to saturate first).
    let mut order: Vec<usize> = (0..n).filter(|&i| weights[i] > 0 && caps[i] > 0).collect();
    order.sort_by(|&a, &b| {
        // caps[a] / weights[a] < caps[b] / weights[b]  ⇔  caps[a] * weights[b] < caps[b] * weights[a]
        (caps[a] as i128 * weights[b] as i128)
            .cmp(&(caps[b] as i128 * weights[a] as i128))
            .then(participants[a].key.cmp(&participants[b].key))
    });
    let mut share_w = vec![0i64; n];
    let mut remainder_num = vec![0i128; n];
    let mut remaining_target = target_w as i128;
    let mut remaining_weight: i128 = order.iter().map(|&i| weights[i] as i128).sum();
    let mut idx = 0;
    while idx < order.len() {
        let i = order[idx];
        let cap = caps[i] as i128;
        // The proportional share of vehicle i at this point.
        if remaining_target * (weights[i] as i128) >= cap * remaining_weight {
            share_w[i] = caps[i];
            remaining_target -= cap;
            remaining_weight -= weights[i] as i128;
            idx += 1;
            continue;
        }
        // No later vehicle saturates either: share the rest in proportion.
        for &j in &order[idx..] {
            let num = remaining_target * weights[j] as i128;
            share_w[j] = (num / remaining_weight) as i64;
            remainder_num[j] = num % remaining_weight;
        }
        break;
    }

    // Onto the step grid, then hand out the leftover steps by largest remainder.
    let mut stepped: Vec<i64> = share_w.iter().map(|&w| floor_step(w)).collect();
    let planned: i64 = stepped.iter().sum();
    let wanted = target_w.min(caps.iter().sum());
    let mut leftover_steps = (wanted - planned) / SETPOINT_STEP_W;
    if leftover_steps > 0 {
        let mut candidates: Vec<usize> = (0..n)
            .filter(|&i| stepped[i] + SETPOINT_STEP_W <= caps[i])
            .collect();
        // Largest remainder first: the watts dropped by flooring to the step, then the fraction
        // of a watt (all unsaturated shares have the same denominator, so numerators compare).
        candidates.sort_by(|&a, &b| {
            let ra = (share_w[a] - stepped[a], remainder_num[a]);
            let rb = (share_w[b] - stepped[b], remainder_num[b]);
            rb.cmp(&ra)
                .then(participants[a].key.cmp(&participants[b].key))
        });
        // Repeat rounds while steps remain (a vehicle can take more than one leftover step only
        // if every candidate has already taken one).
        while leftover_steps > 0 {
            let mut gave = false;
            for &i in &candidates {
                if leftover_steps == 0 {
                    break;
                }
                if stepped[i] + SETPOINT_STEP_W <= caps[i] {
                    stepped[i] += SETPOINT_STEP_W;
                    leftover_steps -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }

    let total: i64 = stepped.iter().sum();
    debug_assert!(
        total <= target_w,
        "planned {total} W above the target {target_w} W"
    );
    debug_assert!((0..n).all(|i| stepped[i] >= 0 && stepped[i] <= caps[i]));
    Ok(Plan {
        setpoints: participants
            .iter()
            .zip(&stepped)
            .map(|(p, &w)| Setpoint {
                key: p.key,
                power: Power::from_watts(w),
            })
            .collect(),
        target: Power::from_watts(target_w),
        total: Power::from_watts(total),
        shortfall: Power::from_watts(target_w - total),
    })
}

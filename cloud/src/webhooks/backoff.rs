//! Retry delays for webhook deliveries: exponential, capped, with jitter so that many events
//! failing together (an endpoint that was down) do not retry in lockstep.
//!
//! `delay(n)` for the n-th failed attempt (1-based) is uniformly drawn from
//! `[d/2, d]` where `d = min(base × 2^(n-1), cap)`. Pure: the random draw is an argument.

use std::time::Duration;

/// The delay after the `attempt`-th failure, with `unit` a uniform draw in `[0, 1)`.
pub fn delay(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let d = base.saturating_mul(1u32 << exp.min(20)).min(cap);
    let unit = unit.clamp(0.0, 1.0);
    d / 2 + d.mul_f64(unit / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_in_their_band_and_are_capped() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(3_600);
        let mut previous_max = Duration::ZERO;
        for attempt in 1..=40 {
            let lo = delay(attempt, base, cap, 0.0);
            let hi = delay(attempt, base, cap, 0.999_999);
            assert!(lo <= hi && hi <= cap, "attempt {attempt}");
            assert!(hi >= previous_max.min(cap / 2), "attempt {attempt}");
            previous_max = hi;
        }
        assert_eq!(delay(1, base, cap, 0.0), Duration::from_millis(500));
        assert_eq!(delay(3, base, cap, 0.0), Duration::from_secs(2));
        assert_eq!(delay(40, base, cap, 0.0), Duration::from_secs(1_800));
    }
}

//! Jittered exponential backoff between reconnect attempts (rumqttc has none: polling a broken
//! event loop again reconnects at once). Pure: the random draw is passed in, so the bounds
//! are tested without a clock.
//!
//! "Equal jitter": after `n` consecutive failures the ceiling is `base · 2ⁿ` capped at `cap`,
//! and the delay is drawn uniformly from the upper half of `[0, ceiling]`, so a fleet of edges
//! that lost the cloud together spreads its reconnects while none retries faster than half
//! the ceiling.

use std::time::Duration;

use rand::Rng;

/// Most doublings; beyond this the ceiling is the cap anyway.
const MAX_DOUBLINGS: u32 = 20;

/// The state of one backoff sequence.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    failures: u32,
}

impl Backoff {
    /// A backoff from `base_ms` up to `cap_ms` (both at least 1 ms; `cap_ms >= base_ms`).
    pub fn new(base_ms: u64, cap_ms: u64) -> Backoff {
        let base_ms = base_ms.max(1);
        Backoff {
            base_ms,
            cap_ms: cap_ms.max(base_ms),
            failures: 0,
        }
    }

    /// A success: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.failures.min(MAX_DOUBLINGS))
            .min(self.cap_ms);
        self.failures = self.failures.saturating_add(1);
        let low = (ceiling / 2).max(1);
        Duration::from_millis(rng.random_range(low..=ceiling.max(low)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_then_stay_under_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = Backoff::new(100, 5_000);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let d = b.next_delay(&mut rng).as_millis() as u64;
            ceilings.push(d);
            assert!(d <= 5_000, "{d} above the cap");
        }
        assert!(ceilings[0] >= 50 && ceilings[0] <= 100, "{ceilings:?}");
        assert!(ceilings[11] >= 2_500, "{ceilings:?}");
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let draws: std::collections::HashSet<u128> = (0..20)
            .map(|_| {
                let mut b = Backoff::new(1_000, 1_000);
                b.next_delay(&mut rng).as_millis()
            })
            .collect();
        assert!(draws.len() > 5, "{draws:?}");
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut b = Backoff::new(u64::MAX / 2, u64::MAX);
        for _ in 0..100 {
            let _ = b.next_delay(&mut rng);
        }
    }
}

//! Reconnect backoff: exponential with full jitter (AWS architecture blog, "Exponential
//! Backoff and Jitter"): the n-th wait is uniform in [0, min(cap, base × 2^n)], so 10,000
//! chargers that lost their edge at the same instant come back spread over the window
//! instead of in one second.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// Backoff settings (real time: networks do not speed up with the simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackoffConfig {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_ms: 1_000,
            cap_ms: 60_000,
        }
    }
}

/// The state of one charger's backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

/// Doublings before the cap is certainly reached (bounds the shift).
const MAX_DOUBLINGS: u32 = 20;

impl Backoff {
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff { config, attempt: 0 }
    }

    /// The wait before the next attempt.
    pub fn next(&mut self, rng: &mut SplitMix64) -> Duration {
        let exp = self
            .config
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(MAX_DOUBLINGS));
        let ceiling = exp.min(self.config.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(rng.between(0, ceiling))
    }

    /// The ceiling of the next wait (for tests and logs).
    pub fn ceiling(&self) -> Duration {
        let exp = self
            .config
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(MAX_DOUBLINGS));
        Duration::from_millis(exp.min(self.config.cap_ms))
    }

    /// After a successful login.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_and_are_jittered() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut rng = SplitMix64::new(7);
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling());
            let w = b.next(&mut rng);
            assert!(w <= *ceilings.last().unwrap());
        }
        assert_eq!(ceilings[0], Duration::from_secs(1));
        assert_eq!(ceilings[3], Duration::from_secs(8));
        assert_eq!(ceilings[9], Duration::from_secs(60));
        // 10,000 first retries spread over the whole second.
        let waits: Vec<_> = (0..10_000)
            .map(|_| {
                Backoff::new(BackoffConfig::default())
                    .next(&mut rng)
                    .as_millis()
            })
            .collect();
        let first_decile = waits.iter().filter(|w| **w < 100).count();
        assert!((800..1_200).contains(&first_decile), "{first_decile}");
    }
}

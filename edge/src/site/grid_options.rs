//! The V2G settings of a site (`[v2g]` in the edge config) and the checks a grid event
//! must pass before the site takes it: a bounded id, export power above zero, an end after
//! its start and after now, and a length within `max_event_ms` — the bound that keeps an
//! offline site from being held to an event without end (events run to their end while the
//! cloud is unreachable). Pure.

use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::{Energy, Power};

use crate::dispatch::{DispatchConfig, GridEvent};

/// Longest grid event id accepted.
pub const MAX_EVENT_ID_LEN: usize = 64;

/// The V2G settings of a site (see `[v2g]` in the edge config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridOptions {
    /// Validity of each setpoint on the pile (its own dead-man), seconds.
    pub setpoint_valid_for_s: u16,
    /// How often standing setpoints are re-sent (well below the validity).
    pub refresh_ms: u64,
    /// The horizon over which the planner protects floors (the longest gap between readings).
    pub replan_horizon_ms: u64,
    /// How long the cloud may be unreachable before free-running discharge stops.
    pub cloud_dead_man_ms: u64,
    /// How long before an unanswered stop is sent again.
    pub stop_retry_ms: u64,
    /// The longest grid event accepted (from its start, or from now if it already runs).
    pub max_event_ms: u64,
    /// The edge's own export cap; the cached site config's `max_site_power` applies too.
    pub export_limit: Option<Power>,
    /// A battery's capacity until a session's own is learned from its readings.
    pub assumed_capacity: Energy,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            setpoint_valid_for_s: 60,
            refresh_ms: 20_000,
            replan_horizon_ms: 30_000,
            cloud_dead_man_ms: 15 * 60_000,
            stop_retry_ms: 30_000,
            max_event_ms: 24 * 3_600_000,
            export_limit: None,
            assumed_capacity: Energy::from_wh(20_000),
        }
    }
}

fn ms(v: u64) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(v).unwrap_or(i64::MAX))
}

impl GridOptions {
    pub(super) fn dispatch_config(&self) -> DispatchConfig {
        DispatchConfig {
            site_export_limit: self.export_limit.unwrap_or(Power::from_watts(i64::MAX)),
            setpoint_valid_for_s: self.setpoint_valid_for_s,
            refresh: ms(self.refresh_ms),
            replan_horizon: ms(self.replan_horizon_ms),
            cloud_dead_man: ms(self.cloud_dead_man_ms),
            stop_retry: ms(self.stop_retry_ms),
        }
    }

    /// Why `event` cannot be run at `now`, if it cannot.
    pub fn refusal(&self, event: &GridEvent, now: Timestamp) -> Option<String> {
        if event.id.is_empty() || event.id.len() > MAX_EVENT_ID_LEN {
            return Some(format!(
                "the grid event id must be 1 to {MAX_EVENT_ID_LEN} characters"
            ));
        }
        if event.power <= Power::ZERO {
            return Some("the grid event's power must be above 0 kW (export)".into());
        }
        if event.from >= event.to {
            return Some("the grid event must end after it starts".into());
        }
        if event.to <= now {
            return Some("the grid event has already ended".into());
        }
        if event.to.duration_since(event.from.max(now)) > ms(self.max_event_ms) {
            return Some(format!(
                "the grid event runs longer than this edge accepts ({} h); split it into shorter events",
                self.max_event_ms / 3_600_000
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn event(id: &str, kw: i64, from: i64, to: i64) -> GridEvent {
        GridEvent {
            id: id.into(),
            power: Power::from_kw(kw),
            from: t(from),
            to: t(to),
        }
    }

    #[test]
    fn a_sound_event_is_taken_also_when_it_already_runs() {
        let o = GridOptions::default();
        assert_eq!(o.refusal(&event("e1", 50, 0, 3_600), t(0)), None);
        // Started a day ago, ends in an hour: what is left is within the bound.
        assert_eq!(o.refusal(&event("e1", 50, -86_400, 3_600), t(0)), None);
    }

    #[test]
    fn unsound_events_are_refused_with_what_to_do() {
        let o = GridOptions::default();
        let long = "x".repeat(MAX_EVENT_ID_LEN + 1);
        for (e, says) in [
            (event("", 50, 0, 60), "id"),
            (event(&long, 50, 0, 60), "id"),
            (event("e", 0, 0, 60), "above 0 kW"),
            (event("e", -5, 0, 60), "above 0 kW"),
            (event("e", 50, 60, 60), "end after it starts"),
            (event("e", 50, -120, -60), "already ended"),
            (event("e", 50, 0, 25 * 3_600), "split it"),
        ] {
            let why = o.refusal(&e, t(0)).expect("refused");
            assert!(why.contains(says), "{e:?}: {why}");
        }
    }

    #[test]
    fn options_become_the_dispatchers_config() {
        let o = GridOptions {
            export_limit: Some(Power::from_kw(80)),
            ..GridOptions::default()
        };
        let c = o.dispatch_config();
        assert_eq!(c.site_export_limit, Power::from_kw(80));
        assert_eq!(c.cloud_dead_man, SignedDuration::from_mins(15));
        assert_eq!(
            GridOptions::default().dispatch_config().site_export_limit,
            Power::from_watts(i64::MAX),
            "no limit configured: the event's power bounds the plan"
        );
    }
}

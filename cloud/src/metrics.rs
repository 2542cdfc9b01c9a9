//! Prometheus metrics: ingest rate, dedup hits, command states, HTTP latency.
//!
//! The `metrics` facade has one global recorder per process; [`Metrics::install`] installs the
//! Prometheus recorder the first time and hands out the same handle after (tests start many
//! servers in one process). Names:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `voltline_ingest_records_total` | counter | `path` (mqtt, http) — fresh records committed |
//! | `voltline_ingest_duplicates_total` | counter | `path` — records seen before (dedup hits) |
//! | `voltline_ingest_rejected_total` | counter | `path` — batches refused (bad payload, wrong site) |
//! | `voltline_commands_total` | counter | `state` — commands entering each state |
//! | `voltline_commands_published_total` | counter | — |
//! | `voltline_holds_voided_total` | counter | — |
//! | `voltline_holds_expired_total` | counter | — expired holds of never-started sessions voided by the sweeper |
//! | `voltline_settlements_total` | counter | `outcome` (settled, replayed, failed) — transaction records through the settlement loop |
//! | `voltline_settlement_price_db_reads_total` | counter | — prices read from the database while settling (a tariff-cache miss); stays 0 |
//! | `voltline_settlement_backlog` | gauge | — unsettled records seen by the last settlement pass (capped by its batch) |
//! | `voltline_http_request_duration_seconds` | histogram | `method`, `route`, `status` |

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::CommandState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Where metrics are recorded and rendered.
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// The process's Prometheus recorder (installed on first use). If another recorder was
    /// installed first, metrics are still counted by it and `/metrics` says so.
    pub fn install() -> Metrics {
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        });
        Metrics {
            handle: handle.clone(),
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        match &self.handle {
            Some(h) => h.render(),
            None => "# another metrics recorder is installed in this process\n".to_owned(),
        }
    }

    pub fn ingested(&self, path: &'static str, fresh: usize, duplicates: usize) {
        metrics::counter!("voltline_ingest_records_total", "path" => path).increment(fresh as u64);
        metrics::counter!("voltline_ingest_duplicates_total", "path" => path)
            .increment(duplicates as u64);
    }

    pub fn ingest_rejected(&self, path: &'static str) {
        metrics::counter!("voltline_ingest_rejected_total", "path" => path).increment(1);
    }

    pub fn command_state(&self, state: CommandState) {
        metrics::counter!("voltline_commands_total", "state" => state.as_str()).increment(1);
    }

    pub fn command_published(&self) {
        metrics::counter!("voltline_commands_published_total").increment(1);
    }

    pub fn hold_voided(&self) {
        metrics::counter!("voltline_holds_voided_total").increment(1);
    }

    pub fn holds_expired(&self, voided: usize) {
        metrics::counter!("voltline_holds_expired_total").increment(voided as u64);
    }

    /// One settlement pass: its outcomes and how many unsettled records it picked up.
    pub fn settlement_pass(&self, settled: usize, replayed: usize, failed: usize, picked: usize) {
        for (outcome, n) in [
            ("settled", settled),
            ("replayed", replayed),
            ("failed", failed),
        ] {
            metrics::counter!("voltline_settlements_total", "outcome" => outcome)
                .increment(n as u64);
        }
        metrics::gauge!("voltline_settlement_backlog").set(picked as f64);
    }

    /// Registers the settlement counters at 0, so `/metrics` shows them before the first pass.
    pub fn settlement_registered(&self) {
        self.settlement_pass(0, 0, 0, 0);
        metrics::counter!(crate::money::tariffs::PRICE_DB_READS_METRIC).increment(0);
        self.holds_expired(0);
    }

    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        metrics::histogram!(
            "voltline_http_request_duration_seconds",
            "method" => method.to_owned(),
            "route" => route.to_owned(),
            "status" => status.to_string()
        )
        .record(seconds);
    }
}

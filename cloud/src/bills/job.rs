//! [`BillJob`]: issues every operator's daily bills, once, on a schedule.
//!
//! A pass ([`BillJob::run_pass`]) takes the `daily-bills` [`JobLease`] (or does nothing if
//! another instance holds it), then for each operator, in pages of
//! [`limits::OPERATOR_PAGE`], [`limits::PARALLEL_OPERATORS`] at a time, issues each due day in
//! order from the day after its last bill (or its first billing day): a day is due once its
//! local end (the next local midnight, found with the zone's rules, so a DST day has 23 or 25
//! hours) plus `grace_s` has passed. At most [`limits::MAX_DAYS_PER_OPERATOR`] days per
//! operator per pass, so a long catch-up is spread over passes and the lease stays renewed.
//!
//! Issuing one day ([`BillJob::issue_with`]): read the operator's sessions that are on no bill
//! and settled before the day's end (looking back [`limits::LATE_LOOKBACK_DAYS`]), cut the bill
//! with [`cut_open_bill`] (pure), then in one write transaction: fence the lease (renewing it),
//! make sure the day has no bill, insert the bill, its session keys and its webhook events,
//! commit. The read happens before the transaction; that is safe because nothing else bills
//! (the lease) and, if something did, the session keys' primary key refuses the second bill.
//!
//! [`BillJob::rerun`] recomputes an issued bill from the settlement rows of its sessions and
//! reports whether it reproduces (same lines, same digest) or how it differs, and how many
//! sessions settled within the day are still on no bill (they go to the next bill's
//! adjustment lines). It never writes.
//!
//! It must never issue a day twice, never edit an issued bill, and never write without the
//! lease's current token.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use voltline_protocol::domain::OperatorId;

use super::error::BillsError;
use super::lease::{JobLease, LeaseGrant};
use super::limits;
use super::rules::{billing_settings, billing_settings_page, BillingSettings};
use super::store::{self as bill_store, digest, StoredBill};
use crate::sharing::bill::{cut_open_bill, day_bounds, DailyBill, Totals};
use crate::shutdown::Shutdown;
use crate::store::{Backend, Store};
use crate::webhooks::NewEvent;

/// The lease's name.
pub const LEASE_NAME: &str = "daily-bills";

/// Bill job settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillJobConfig {
    /// Issue bills in the background.
    pub enabled: bool,
    /// How often due days are looked for.
    pub interval_ms: u64,
    /// Wait after an operator's local midnight before its day is cut (settlements in flight
    /// commit first; any that miss go to the next bill's adjustment lines anyway).
    pub grace_s: u64,
    /// How long the lease is held without renewal.
    pub lease_ttl_s: u64,
}

impl Default for BillJobConfig {
    fn default() -> Self {
        BillJobConfig {
            enabled: true,
            interval_ms: 60_000,
            grace_s: 300,
            lease_ttl_s: 120,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// The token the pass ran under; `None` when another instance held the lease.
    pub token: Option<i64>,
    /// Who held the lease when this pass could not take it.
    pub held_by: Option<String>,
    /// Bills issued: (operator, day, bill id).
    pub issued: Vec<(OperatorId, Date, String)>,
    /// Operators whose days stopped at an error: (operator, error).
    pub failures: Vec<(OperatorId, String)>,
}

/// One operator's share of a pass: (operator, days issued with bill ids, the error it stopped at).
type OperatorPass = (OperatorId, Vec<(Date, String)>, Option<BillsError>);

/// A re-run of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunReport {
    pub bill_id: String,
    /// The recomputed bill equals the issued one, line for line.
    pub reproduced: bool,
    pub stored_digest: String,
    pub recomputed_digest: String,
    /// What differs (empty when reproduced).
    pub differences: Vec<String>,
    /// Sessions settled within the day that are on no bill yet (next bill's adjustments).
    pub unbilled_in_day: u64,
}

/// Issues daily bills (see the module doc).
#[derive(Clone)]
pub struct BillJob {
    store: Store,
    config: BillJobConfig,
    lease: JobLease,
}

impl BillJob {
    /// A job over `store`; `holder` names this instance in the lease row.
    pub fn new(store: Store, config: BillJobConfig, holder: &str) -> BillJob {
        let ttl =
            SignedDuration::from_secs(i64::try_from(config.lease_ttl_s.max(1)).unwrap_or(120));
        BillJob {
            lease: JobLease::new(store.clone(), LEASE_NAME, holder, ttl),
            store,
            config,
        }
    }

    /// The lease this job runs under.
    pub fn lease(&self) -> &JobLease {
        &self.lease
    }

    fn grace(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.config.grace_s).unwrap_or(0))
    }

    /// One pass at `now` (see the module doc).
    pub async fn run_pass(&self, now: Timestamp) -> Result<PassReport, BillsError> {
        let mut report = PassReport::default();
        let Some(grant) = self.lease.try_acquire(now).await? else {
            report.held_by = self.lease.current(now).await?.map(|(h, _, _)| h);
            return Ok(report);
        };
        report.token = Some(grant.token);
        let last: HashMap<String, String> = bill_store::last_issued_days(&self.store)
            .await?
            .into_iter()
            .collect();
        let mut after = String::new();
        let mut lost = None;
        loop {
            let page = billing_settings_page(&self.store, &after, limits::OPERATOR_PAGE).await?;
            let Some(tail) = page.last() else { break };
            after = tail.operator.to_string();
            let results: Vec<OperatorPass> = futures::stream::iter(page)
                .map(|s| {
                    let last_day = last
                        .get(s.operator.as_str())
                        .and_then(|d| d.parse::<Date>().ok());
                    let grant = &grant;
                    async move {
                        let (issued, error) = self.bill_operator(grant, &s, last_day, now).await;
                        (s.operator, issued, error)
                    }
                })
                .buffer_unordered(limits::PARALLEL_OPERATORS)
                .collect()
                .await;
            for (op, issued, error) in results {
                for (day, id) in issued {
                    report.issued.push((op.clone(), day, id));
                }
                match error {
                    Some(e @ BillsError::LeaseLost { .. }) => lost = Some(e),
                    Some(e) => report.failures.push((op, e.to_string())),
                    None => {}
                }
            }
            if lost.is_some() {
                break;
            }
        }
        report.issued.sort();
        if let Some(e) = lost {
            return Err(e);
        }
        self.lease.release(&grant, now).await?;
        Ok(report)
    }

    async fn bill_operator(
        &self,
        grant: &LeaseGrant,
        s: &BillingSettings,
        last_day: Option<Date>,
        now: Timestamp,
    ) -> (Vec<(Date, String)>, Option<BillsError>) {
        let mut issued = Vec::new();
        let mut day = match last_day.and_then(|d| d.tomorrow().ok()) {
            Some(next) => next.max(s.first_day),
            None => s.first_day,
        };
        for _ in 0..limits::MAX_DAYS_PER_OPERATOR {
            let bounds = match day_bounds(&s.time_zone, day) {
                Ok(b) => b,
                Err(e) => return (issued, Some(e.into())),
            };
            if now < bounds.end + self.grace() {
                break;
            }
            match self.issue_with(grant, s, day, now).await {
                Ok(b) => issued.push((day, b.id)),
                Err(BillsError::AlreadyIssued { .. }) => {}
                Err(e) => return (issued, Some(e)),
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        (issued, None)
    }

    /// Issues `operator`'s bill for `day` now, taking the lease for it (an operator action or
    /// a test; the scheduled pass does the same for every due day). Refused for a day that has
    /// not ended at `now`, and while another instance holds the lease.
    pub async fn issue_day(
        &self,
        operator: &OperatorId,
        day: Date,
        now: Timestamp,
    ) -> Result<StoredBill, BillsError> {
        let settings = billing_settings(&self.store, operator).await?;
        let bounds = day_bounds(&settings.time_zone, day)?;
        if now < bounds.end {
            return Err(BillsError::invalid(
                "day",
                format!(
                    "{day} has not ended in {} (it ends at {}); a bill is cut after the local midnight",
                    settings.time_zone.iana_name().unwrap_or("the operator's zone"),
                    bounds.end
                ),
            ));
        }
        let Some(grant) = self.lease.try_acquire(now).await? else {
            return Err(BillsError::Conflict(format!(
                "the {LEASE_NAME} lease is held by another instance"
            )));
        };
        let result = self.issue_with(&grant, &settings, day, now).await;
        self.lease.release(&grant, now).await?;
        result
    }

    /// Issues one day under `grant` (see the module doc).
    pub async fn issue_with(
        &self,
        grant: &LeaseGrant,
        s: &BillingSettings,
        day: Date,
        now: Timestamp,
    ) -> Result<StoredBill, BillsError> {
        let bounds = day_bounds(&s.time_zone, day)?;
        let id = StoredBill::id_for(&s.operator, day);
        let already = || BillsError::AlreadyIssued {
            operator: s.operator.clone(),
            day: day.to_string(),
        };
        if bill_store::get_bill(&self.store, &id).await?.is_some() {
            return Err(already());
        }
        let from = bounds.start - SignedDuration::from_hours(24 * limits::LATE_LOOKBACK_DAYS);
        let sessions =
            bill_store::unbilled_sessions(&self.store, &s.operator, from, bounds.end).await?;
        if sessions.len() > limits::MAX_SESSIONS_PER_BILL {
            return Err(BillsError::invalid(
                "bill",
                format!(
                    "operator {} has more than {} sessions to bill for {day}; raise limits::MAX_SESSIONS_PER_BILL",
                    s.operator,
                    limits::MAX_SESSIONS_PER_BILL
                ),
            ));
        }
        let bill = cut_open_bill(&s.operator, &s.time_zone, day, &sessions)?;
        let keys: Vec<&str> = sessions.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            keys.len() as u64,
            bill.totals.sessions,
            "every read session is on the bill"
        );
        let stored = StoredBill {
            digest: digest(&bill),
            id,
            issued_at: Timestamp::now(),
            lease_token: grant.token,
            bill,
        };
        let events = events_for(&stored);
        let renew = now + self.lease.ttl();
        macro_rules! write {
            ($pool:expr, $dialect:expr, $m:ident) => {{
                let _turn = self.store.write_turn().await;
                let mut tx = $pool.begin_with($dialect.begin_write()).await?;
                super::lease::$m::fence(&mut tx, grant, now, renew).await?;
                if super::store::$m::bill_exists(&mut tx, &stored.id).await? {
                    return Err(already());
                }
                let events: &[NewEvent] =
                    if crate::webhooks::outbox::$m::has_endpoint(&mut tx, s.operator.as_str())
                        .await?
                    {
                        &events
                    } else {
                        &[]
                    };
                match super::store::$m::insert_bill(&mut tx, &stored, &keys, events).await {
                    Ok(()) => {}
                    Err(BillsError::Store(crate::StoreError::Database(sqlx::Error::Database(
                        db,
                    )))) if db.is_unique_violation() => {
                        return Err(BillsError::Conflict(format!(
                            "bill {} or one of its sessions was written by another instance",
                            stored.id
                        )));
                    }
                    Err(e) => return Err(e),
                }
                tx.commit().await?;
            }};
        }
        match &self.store.backend {
            Backend::Sqlite(pool) => write!(pool, crate::store::Dialect::Sqlite, sqlite),
            Backend::Postgres(pool) => write!(pool, crate::store::Dialect::Postgres, postgres),
        }
        tracing::info!(bill = %stored.id, sessions = stored.bill.totals.sessions, "daily bill issued");
        Ok(stored)
    }

    /// Re-runs `operator`'s `day` without writing (see the module doc).
    pub async fn rerun(&self, operator: &OperatorId, day: Date) -> Result<RerunReport, BillsError> {
        rerun(&self.store, operator, day).await
    }

    /// Runs a pass every `interval_ms` until `shutdown`.
    pub fn spawn(self, shutdown: Shutdown) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(self.config.interval_ms.max(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.wait() => return,
                }
                match self.run_pass(Timestamp::now()).await {
                    Ok(r) if !r.issued.is_empty() || !r.failures.is_empty() => {
                        tracing::info!(issued = r.issued.len(), failures = ?r.failures, "bill pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "bill pass failed; retrying next pass"),
                }
            }
        })
    }
}

/// Re-runs an issued bill from its sessions' settlement rows (see the module doc).
pub async fn rerun(
    store: &Store,
    operator: &OperatorId,
    day: Date,
) -> Result<RerunReport, BillsError> {
    let stored = bill_store::bill_of_day(store, operator, day)
        .await?
        .ok_or_else(|| BillsError::NotFound {
            what: "bill",
            id: StoredBill::id_for(operator, day),
        })?;
    let tz = super::rules::parse_zone(&stored.bill.time_zone)?;
    let sessions = bill_store::sessions_of_bill(store, &stored.id).await?;
    let mut recomputed = cut_open_bill(operator, &tz, day, &sessions)?;
    // The sessions are those of the bill; the cut's carry rule depends on the bounds only.
    recomputed.bounds = stored.bill.bounds;
    let differences = compare_bills(&stored.bill, &recomputed);
    let unbilled = bill_store::unbilled_sessions(
        store,
        operator,
        stored.bill.bounds.start,
        stored.bill.bounds.end,
    )
    .await?
    .len() as u64;
    let recomputed_digest = digest(&recomputed);
    Ok(RerunReport {
        bill_id: stored.id,
        reproduced: differences.is_empty() && recomputed_digest == stored.digest,
        stored_digest: stored.digest,
        recomputed_digest,
        differences,
        unbilled_in_day: unbilled,
    })
}

fn totals_diff(what: &str, a: &Totals, b: &Totals, out: &mut Vec<String>) {
    let fields: [(&str, String, String); 8] = [
        ("sessions", a.sessions.to_string(), b.sessions.to_string()),
        (
            "energy_in",
            a.energy_in.to_string(),
            b.energy_in.to_string(),
        ),
        (
            "energy_out",
            a.energy_out.to_string(),
            b.energy_out.to_string(),
        ),
        ("gross", a.gross.to_string(), b.gross.to_string()),
        (
            "platform_fees",
            a.platform_fees.to_string(),
            b.platform_fees.to_string(),
        ),
        (
            "operator_payable",
            a.operator_payable.to_string(),
            b.operator_payable.to_string(),
        ),
        (
            "v2g_driver_credits",
            a.v2g_driver_credits.to_string(),
            b.v2g_driver_credits.to_string(),
        ),
        (
            "v2g_operator_share",
            a.v2g_operator_share.to_string(),
            b.v2g_operator_share.to_string(),
        ),
    ];
    for (name, x, y) in fields {
        if x != y {
            out.push(format!("{what} {name}: issued {x}, recomputed {y}"));
        }
    }
}

/// The differences between an issued bill and a recomputed one, line by line.
pub fn compare_bills(issued: &DailyBill, recomputed: &DailyBill) -> Vec<String> {
    let mut out = Vec::new();
    totals_diff("total", &issued.totals, &recomputed.totals, &mut out);
    let sites = |b: &DailyBill| -> std::collections::BTreeMap<String, Totals> {
        b.sites
            .iter()
            .map(|l| (l.site.to_string(), l.totals))
            .collect()
    };
    let adjustments = |b: &DailyBill| -> std::collections::BTreeMap<String, Totals> {
        b.adjustments
            .iter()
            .map(|l| (format!("{} of {}", l.site, l.service_day), l.totals))
            .collect()
    };
    for (kind, a, b) in [
        ("site", sites(issued), sites(recomputed)),
        ("adjustment", adjustments(issued), adjustments(recomputed)),
    ] {
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let zero = Totals::default();
        for k in keys {
            totals_diff(
                &format!("{kind} line {k}"),
                a.get(k).unwrap_or(&zero),
                b.get(k).unwrap_or(&zero),
                &mut out,
            );
        }
    }
    out
}

/// The webhook events a bill announces: `bill.issued` and `payout.created`, with ids derived
/// from the bill id (so a replay never makes a second event).
pub fn events_for(b: &StoredBill) -> Vec<NewEvent> {
    let t = &b.bill.totals;
    let issued_id = format!("evt-{}-issued", b.id);
    let payout_id = format!("evt-{}-payout", b.id);
    let issued = serde_json::json!({
        "id": issued_id,
        "type": "bill.issued",
        "created_at": b.issued_at,
        "data": {
            "bill_id": b.id,
            "operator": b.bill.operator,
            "day": b.bill.day,
            "time_zone": b.bill.time_zone,
            "sessions": t.sessions,
            "adjustment_sessions": b.bill.adjustment_sessions(),
            "gross": t.gross,
            "platform_fees": t.platform_fees,
            "net_payable": t.net_payable(),
            "digest": b.digest,
        }
    });
    let payout = serde_json::json!({
        "id": payout_id,
        "type": "payout.created",
        "created_at": b.issued_at,
        "data": {
            "payout_id": format!("payout-{}", b.id),
            "bill_id": b.id,
            "operator": b.bill.operator,
            "amount": t.net_payable(),
            "currency": "CNY",
            "status": "due",
        }
    });
    vec![
        NewEvent {
            id: issued_id,
            operator: b.bill.operator.clone(),
            kind: "bill.issued".into(),
            body: issued.to_string(),
        },
        NewEvent {
            id: payout_id,
            operator: b.bill.operator.clone(),
            kind: "payout.created".into(),
            body: payout.to_string(),
        },
    ]
}

//! Read-only summaries for operators' checks and for tests: a site's transaction records with
//! their settlement ([`Store::site_transactions`]) and what ingest committed for a site
//! ([`Store::ingest_summary`]). Nothing here writes.

use std::collections::HashMap;

use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, OrderId, PileCode, SiteId, TransactionSerial};
use voltline_protocol::{Energy, Money};

use super::types::{DbMoney, DbTime};
use super::{parse_stored, to_u64, with_pool, Store, StoreResult};
use crate::domain::OrderKind;

/// Most transaction records [`Store::site_transactions`] returns.
pub const MAX_REPORTED_TRANSACTIONS: usize = 100_000;

/// A stored transaction (or discharge) record of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSummary {
    pub pile: PileCode,
    pub serial: TransactionSerial,
    pub kind: OrderKind,
    /// The edge's sequence number of the record.
    pub seq: u64,
    pub order: Option<OrderId>,
    pub energy: Energy,
    /// The total the charger reported.
    pub charger_total: Option<Money>,
    /// The edge's own price of the session.
    pub edge_cost: Option<Money>,
    pub received_at: Timestamp,
    pub settled: bool,
    /// The settlement, once settled.
    pub settlement: Option<SettlementSummary>,
}

/// What settlement billed for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementSummary {
    pub account: AccountId,
    /// The cloud's price of the session (what the driver paid).
    pub cost: Money,
    /// The charger's total differed from the cloud's price.
    pub mismatch: bool,
    pub from_hold: Money,
    pub released: Money,
    pub from_wallet: Money,
    pub receivable: Money,
    pub operator_share: Money,
    pub platform_fee: Money,
    pub settled_at: Timestamp,
}

/// What ingest committed for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestSummary {
    /// Every sequence up to this one is committed (the cumulative ack).
    pub acked_seq: u64,
    /// Committed sequences above the ack (they arrived before a gap was filled).
    pub committed_above_ack: u64,
    pub transactions: u64,
    pub meter_readings: u64,
    pub command_results: u64,
    /// Connector status changes and alarms.
    pub events: u64,
}

impl IngestSummary {
    /// Records committed in all (thinned sequences included).
    pub fn records(&self) -> u64 {
        self.acked_seq + self.committed_above_ack
    }
}

type TxRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    Option<DbMoney>,
    Option<DbMoney>,
    DbTime,
    bool,
);

type SettlementRow = (
    String,
    String,
    String,
    DbMoney,
    bool,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
    DbTime,
);

fn settlement_from_row(r: SettlementRow) -> StoreResult<((String, String), SettlementSummary)> {
    Ok((
        (r.0, r.1),
        SettlementSummary {
            account: parse_stored(&r.2, "account id")?,
            cost: r.3 .0,
            mismatch: r.4,
            from_hold: r.5 .0,
            released: r.6 .0,
            from_wallet: r.7 .0,
            receivable: r.8 .0,
            operator_share: r.9 .0,
            platform_fee: r.10 .0,
            settled_at: r.11 .0,
        },
    ))
}

impl Store {
    /// The site's transaction and discharge records, in sequence order, each with its
    /// settlement if settled (at most [`MAX_REPORTED_TRANSACTIONS`]).
    pub async fn site_transactions(&self, site: &SiteId) -> StoreResult<Vec<TransactionSummary>> {
        let limit = i64::try_from(MAX_REPORTED_TRANSACTIONS).unwrap_or(i64::MAX);
        let (rows, settled): (Vec<TxRow>, Vec<SettlementRow>) = with_pool!(self, |pool, d| {
            let rows = sqlx::query_as(
                "SELECT pile_code, serial, kind, seq, order_id, energy_mwh, total_amount, edge_cost, \
                 received_at, settled FROM transactions WHERE site_id = $1 ORDER BY seq LIMIT $2",
            )
            .bind(site.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let settled = sqlx::query_as(
                "SELECT s.pile_code, s.serial, s.account_id, s.cost, s.mismatch, s.from_hold, s.released, \
                 s.from_wallet, s.receivable, s.operator_share, s.platform_fee, s.settled_at \
                 FROM settlements s JOIN transactions t ON t.pile_code = s.pile_code AND t.serial = s.serial \
                 WHERE t.site_id = $1",
            )
            .bind(site.as_str())
            .fetch_all(pool)
            .await?;
            (rows, settled)
        });
        let mut by_record: HashMap<(String, String), SettlementSummary> = settled
            .into_iter()
            .map(settlement_from_row)
            .collect::<StoreResult<_>>()?;
        rows.into_iter()
            .map(|r| {
                let settlement = by_record.remove(&(r.0.clone(), r.1.clone()));
                Ok(TransactionSummary {
                    pile: parse_stored(&r.0, "pile code")?,
                    serial: parse_stored(&r.1, "transaction serial")?,
                    kind: parse_stored(&r.2, "transaction kind")?,
                    seq: to_u64(r.3, "sequence")?,
                    order: r.4.map(|o| parse_stored(&o, "order id")).transpose()?,
                    energy: Energy::from_mwh(r.5),
                    charger_total: r.6.map(|m| m.0),
                    edge_cost: r.7.map(|m| m.0),
                    received_at: r.8 .0,
                    settled: r.9,
                    settlement,
                })
            })
            .collect()
    }

    /// What ingest committed for the site.
    pub async fn ingest_summary(&self, site: &SiteId) -> StoreResult<IngestSummary> {
        let counts: (i64, i64, i64, i64, i64) = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT \
                 (SELECT COUNT(*) FROM edge_pending_seqs WHERE site_id = $1), \
                 (SELECT COUNT(*) FROM transactions WHERE site_id = $1), \
                 (SELECT COUNT(*) FROM meter_readings WHERE site_id = $1), \
                 (SELECT COUNT(*) FROM command_results WHERE site_id = $1), \
                 (SELECT COUNT(*) FROM edge_events WHERE site_id = $1)",
            )
            .bind(site.as_str())
            .fetch_one(pool)
            .await?
        });
        Ok(IngestSummary {
            acked_seq: self.acked_seq(site).await?,
            committed_above_ack: to_u64(counts.0, "count")?,
            transactions: to_u64(counts.1, "count")?,
            meter_readings: to_u64(counts.2, "count")?,
            command_results: to_u64(counts.3, "count")?,
            events: to_u64(counts.4, "count")?,
        })
    }
}

//! [`ReverseSettler`]: exactly-once reverse settlement of stored discharge records (V2G).
//!
//! `settle_pending(limit)` takes discharge records not yet settled, and for each: loads its
//! discharge order (the driver to credit); turns the record's CP56 instants into UTC in the
//! site's zone; measures both registers apart from the record, the edge's metering and the
//! stored readings ([`super::reverse_lines`]); prices the export with the discharge tariff
//! version in force at the session's start and, when the vehicle also charged, the import
//! with the charge tariff in force then — both from the [`TariffCache`], no price read from
//! the database; splits them by the operator's sharing rule in force at the start (the V2G
//! host share and the import's platform fee; without a rule the configured platform fee
//! splits the import and the host share is zero); and submits a planned job to the writer
//! that makes [`plan_reverse`] from the batch's balances.
//!
//! **Exactly once, in one transaction.** The job's key is `v2g:{pile}:{serial}`; its
//! settlement row (one per session: import cost and V2G credit side by side, the
//! [`V2gBreakdown`] as its breakdown), `transactions.settled = true` and the order's state and
//! flags are written by the writer in the same database transaction as the postings, exactly
//! as for charging. A record seen twice replays the first result.
//!
//! **Anomalies** (a register lower than the last, a reset, a rollover, a record that
//! contradicts itself, or anything the edge listed) are never billed as energy: the drop
//! counts nothing. They flag the session: the row's `mismatch` (the order's `cost_mismatch`)
//! is set for a V2G session whose metering is anomalous, in the same transaction, and the
//! breakdown lists them for the discharge order's view.
//!
//! It must never net import against export, never bill a drop, and never read a price from
//! the database while settling.

use std::sync::Arc;

use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, Energy, OrderId, SiteId};
use voltline_protocol::sync::DischargeUp;
use voltline_protocol::Money;

use super::funds::open_account;
use super::reverse_lines::{measure_session, price_lines, StoredReading, V2gBreakdown};
use super::settle::{SettleOutcome, SettleReport, SettlerConfig};
use super::tariffs::TariffCache;
use super::writer::{Applied, Job, LedgerWriter, Planned, SettlementRow};
use super::{limits, MoneyError};
use crate::domain::OrderKind;
use crate::ledger::{
    plan_reverse, reverse_key, split_cost, AccountPolicy, CostSplit, ExportLine, ImportLine,
    LedgerAccountId, LedgerError, LedgerView, RecordRef, ReverseInput,
};
use crate::sharing::{SessionMoney, SettlementShare};
use crate::store::types::DbTime;
use crate::store::{with_pool, Store};

/// (pile, serial, site, order, record, received_at).
type PickedRow = (
    String,
    String,
    String,
    Option<String>,
    sqlx::types::Json<DischargeUp>,
    DbTime,
);

/// Settles discharge records through the ledger writer.
pub struct ReverseSettler {
    writer: LedgerWriter,
    cache: Arc<TariffCache>,
    config: SettlerConfig,
    rules: Option<crate::bills::RuleCache>,
    opened: moka::sync::Cache<String, ()>,
    /// Where the next `settle_pending` goes on (see `Settler::settle_pending`).
    cursor: std::sync::Mutex<Option<(DbTime, String, String)>>,
}

impl ReverseSettler {
    pub fn new(
        writer: LedgerWriter,
        cache: Arc<TariffCache>,
        config: SettlerConfig,
    ) -> ReverseSettler {
        ReverseSettler {
            writer,
            cache,
            config,
            rules: None,
            opened: moka::sync::Cache::new(100_000),
            cursor: std::sync::Mutex::new(None),
        }
    }

    /// Splits sessions by the operators' sharing rules (the rule in force at the start).
    pub fn with_rules(mut self, rules: crate::bills::RuleCache) -> ReverseSettler {
        self.rules = Some(rules);
        self
    }

    /// Settles up to `limit` unsettled discharge records, all submitted at once so that
    /// they share group commits. Walks them from a cursor like the charging settler, so
    /// records that keep failing are retried once per walk and never starve the others.
    pub async fn settle_pending(&self, limit: usize) -> Result<SettleReport, MoneyError> {
        let limit = limit.clamp(1, limits::MAX_SETTLE_BATCH);
        let store = self.writer.store().clone();
        let after = self
            .cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (at, pile, serial) =
            after.unwrap_or((DbTime(Timestamp::UNIX_EPOCH), String::new(), String::new()));
        let picked: Vec<PickedRow> = with_pool!(store, |pool, d| {
            sqlx::query_as(
                "SELECT pile_code, serial, site_id, order_id, record, received_at FROM transactions \
                 WHERE kind = 'discharge' AND settled = $1 AND (received_at, pile_code, serial) > ($2, $3, $4) \
                 ORDER BY received_at, pile_code, serial LIMIT $5",
            )
            .bind(false)
            .bind(at)
            .bind(pile)
            .bind(serial)
            .bind(i64::try_from(limit).unwrap_or(1))
            .fetch_all(pool)
            .await?
        });
        let next = (picked.len() == limit)
            .then(|| picked.last().map(|r| (r.5, r.0.clone(), r.1.clone())))
            .flatten();
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = next;
        let futures = picked.into_iter().map(|row| async move {
            let id = (row.0.clone(), row.1.clone());
            let outcome = SettleOutcome::of(self.settle_row(row).await);
            (id, outcome)
        });
        let outcomes = futures::future::join_all(futures).await;
        for ((pile, serial), o) in &outcomes {
            if let SettleOutcome::Failed(why) = o {
                tracing::warn!(pile, serial, why, "discharge record not settled");
            }
        }
        Ok(SettleReport { outcomes })
    }

    async fn settle_row(&self, row: PickedRow) -> Result<Applied, MoneyError> {
        let store = self.writer.store();
        let (pile, serial, site, order_id, up) = (row.0, row.1, row.2, row.3, row.4 .0);
        let record = &up.record;
        let order_text = order_id
            .or_else(|| up.order.as_ref().map(|o| o.to_string()))
            .ok_or_else(|| {
                MoneyError::Invalid(format!(
                    "discharge record {pile}/{serial} names no order, so there is nobody to credit; attach it to its discharge order"
                ))
            })?;
        let order: OrderId = super::db::parse(&order_text, "order id")?;
        let account = order_account(store, &order).await?;
        let site_id: SiteId = super::db::parse(&site, "site id")?;
        let pricing = self.cache.for_settlement(store, &site_id).await?;
        let instant = |t: voltline_protocol::wire::cp56::Cp56Time, what: &str| {
            let civil = t.to_civil().ok_or_else(|| {
                MoneyError::Invalid(format!(
                    "discharge record {pile}/{serial} has no {what} time"
                ))
            })?;
            pricing.time_zone.to_timestamp(civil).map_err(|e| {
                MoneyError::Invalid(format!("discharge record {pile}/{serial} {what} time: {e}"))
            })
        };
        let (start, end) = (
            instant(record.start_time, "start")?,
            instant(record.end_time, "end")?,
        );
        let discharge = pricing.tariff_at(OrderKind::Discharge, start).ok_or_else(|| {
            MoneyError::Invalid(format!(
                "site {site} has no discharge tariff at {start}; assign one (POST /v1/sites/{site}/tariffs with \"kind\": \"discharge\"), then settlement retries"
            ))
        })?;
        let charge = pricing.tariff_at(OrderKind::Charge, start);
        let readings = session_readings(store, &pile, &serial).await?;
        let measured = measure_session(record, up.metering.as_ref(), (start, end), &readings);
        let (export, import) = price_lines(&measured, &discharge, charge.as_deref())
            .map_err(|e| MoneyError::Invalid(format!("discharge record {pile}/{serial}: {e}")))?;
        let money = SessionMoney {
            energy: measured.import.energy,
            energy_fee: import.as_ref().map_or(Money::ZERO, |c| c.energy_fee),
            service_fee: import.as_ref().map_or(Money::ZERO, |c| c.service_fee),
            export_energy: measured.export.energy,
            export_value: export.total,
        };
        let shared = match &self.rules {
            Some(rules) => rules
                .for_operator(&pricing.operator)
                .await
                .and_then(|r| r.split(&pricing.operator, &site_id, start, &money))
                .map_err(|e| {
                    MoneyError::Invalid(format!(
                        "discharge record {pile}/{serial}: sharing rule: {e}; settlement retries"
                    ))
                })?,
            None => None,
        };
        let (import_split, host_share, rule_version) = match (&shared, &import) {
            (Some((s, v)), _) => (
                CostSplit {
                    operator: s.operator_payable,
                    platform_fee: s.platform_fee,
                },
                s.v2g_operator_share,
                Some(*v),
            ),
            (None, Some(cost)) => (
                split_cost(cost, &self.config.platform_fee)?,
                Money::ZERO,
                None,
            ),
            (None, None) => (
                CostSplit {
                    operator: Money::ZERO,
                    platform_fee: Money::ZERO,
                },
                Money::ZERO,
                None,
            ),
        };
        let record_ref = RecordRef {
            pile: record.pile_code,
            serial: record.serial,
        };
        let wallet = LedgerAccountId::DriverWallet(account.clone());
        let payable = LedgerAccountId::OperatorPayable(pricing.operator.clone());
        for id in [&payable, &LedgerAccountId::V2gPayout] {
            if !self.opened.contains_key(&id.to_string()) {
                open_account(store, id, AccountPolicy::default_for(id)).await?;
                self.opened.insert(id.to_string(), ());
            }
        }
        let accounts = vec![
            wallet.clone(),
            payable,
            LedgerAccountId::V2gPayout,
            LedgerAccountId::SessionClearing,
            LedgerAccountId::PlatformRevenue,
        ];
        let share = SettlementShare {
            operator: pricing.operator.to_string(),
            site: site.clone(),
            started_at: Some(start),
            ended_at: Some(end),
            energy_mwh: measured.import.energy.mwh(),
            export_mwh: measured.export.energy.mwh(),
            v2g_driver_credit: export.total,
            v2g_operator_share: host_share,
            rule_version,
        };
        let operator = pricing.operator.clone();
        let (discharge_version, charge_version) =
            (discharge.version(), charge.as_ref().map(|t| t.version()));
        let record_exported = record.exported_energy;
        let job = Job::planned(reverse_key(&record_ref), accounts, vec![], move |view| {
            let w = view
                .account(&wallet)
                .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?;
            let input = ReverseInput {
                record: record_ref,
                order: order.clone(),
                account: account.clone(),
                operator: operator.clone(),
                export: ExportLine {
                    value: &export,
                    tariff_version_at_start: discharge_version,
                    operator_share: host_share,
                },
                import: import
                    .as_ref()
                    .zip(charge_version)
                    .map(|(cost, v)| ImportLine {
                        cost,
                        tariff_version_at_start: v,
                        split: import_split,
                    }),
                wallet_available: w.available(),
                credit_limit: w.policy.credit_limit().unwrap_or(Money::ZERO),
            };
            let plan = plan_reverse(&input)?;
            let figures = plan.figures();
            let breakdown = V2gBreakdown {
                export_energy: measured.export.energy,
                import_energy: measured.import.energy,
                record_exported_energy: record_exported,
                export: export.clone(),
                import: import.clone(),
                meter_anomaly: measured.flagged(),
                anomalies: measured.anomalies.clone(),
                anomaly_count: measured.anomaly_count,
                figures: figures.clone(),
            };
            let import_plan = plan.import.as_ref();
            let row = SettlementRow {
                pile: record_ref.pile.to_string(),
                serial: record_ref.serial.to_string(),
                key: plan.set.key.to_string(),
                order: Some(order.to_string()),
                account: account.to_string(),
                cost: figures.import_cost,
                charger_total: figures.import_cost,
                mismatch: measured.flagged(),
                difference: Money::ZERO,
                from_hold: Money::ZERO,
                released: Money::ZERO,
                from_wallet: figures.from_wallet,
                receivable: figures.receivable,
                operator_share: import_plan.map_or(Money::ZERO, |p| p.split.operator),
                platform_fee: import_plan.map_or(Money::ZERO, |p| p.split.platform_fee),
                breakdown: serde_json::to_value(&breakdown).unwrap_or(serde_json::Value::Null),
                share: share.clone(),
            };
            Ok(Planned {
                settlement: Some(row),
                set: plan.set,
            })
        });
        self.writer.submit(job).await
    }
}

/// The account of a discharge order.
async fn order_account(store: &Store, order: &OrderId) -> Result<AccountId, MoneyError> {
    let row: Option<(String, String)> = with_pool!(store, |pool, d| {
        sqlx::query_as("SELECT account_id, kind FROM orders WHERE id = $1")
            .bind(order.as_str())
            .fetch_optional(pool)
            .await?
    });
    match row {
        Some((account, kind)) if kind == OrderKind::Discharge.as_str() => {
            super::db::parse(&account, "account id")
        }
        Some(_) => Err(MoneyError::Invalid(format!(
            "order {order} of a discharge record is a charging order; a discharge record is credited to a discharge order"
        ))),
        None => Err(MoneyError::Invalid(format!(
            "order {order} of a discharge record does not exist"
        ))),
    }
}

/// The session's stored readings, oldest first.
async fn session_readings(
    store: &Store,
    pile: &str,
    serial: &str,
) -> Result<Vec<StoredReading>, MoneyError> {
    let rows: Vec<(DbTime, i64, Option<i64>)> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT measured_at, import_mwh, export_mwh FROM meter_readings \
             WHERE serial = $1 AND pile_code = $2 ORDER BY measured_at",
        )
        .bind(serial)
        .bind(pile)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(at, import, export)| StoredReading {
            at: at.0,
            import: Energy::from_mwh(import),
            export: export.map(Energy::from_mwh),
        })
        .collect())
}

/// What reverse settlement wrote for a discharge order, if it settled: its breakdown.
pub async fn order_breakdown(
    store: &Store,
    order: &OrderId,
) -> Result<Option<V2gBreakdown>, MoneyError> {
    let row: Option<(String, sqlx::types::Json<serde_json::Value>)> = with_pool!(
        store,
        |pool, d| {
            sqlx::query_as(
            "SELECT idem_key, breakdown FROM settlements WHERE order_id = $1 AND idem_key LIKE 'v2g:%'",
        )
        .bind(order.as_str())
        .fetch_optional(pool)
        .await?
        }
    );
    row.map(|(key, b)| {
        serde_json::from_value(b.0)
            .map_err(|e| MoneyError::Corrupt(format!("settlement {key} breakdown: {e}")))
    })
    .transpose()
}

/// The V2G columns of a discharge order's settlement row (what the daily bills read):
/// exported mWh and the driver's credit.
pub async fn settlement_v2g_columns(
    store: &Store,
    order: &OrderId,
) -> Result<Option<(i64, Money)>, MoneyError> {
    let row: Option<(i64, crate::store::types::DbMoney)> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT export_mwh, v2g_driver_credit FROM settlements WHERE order_id = $1 AND idem_key LIKE 'v2g:%'",
        )
        .bind(order.as_str())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|(mwh, credit)| (mwh, credit.0)))
}

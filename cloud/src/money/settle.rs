//! [`Settler`]: exactly-once settlement of stored transaction records.
//!
//! `settle_pending(limit)` takes charge records not yet settled, reads their orders and
//! stored meter readings with one statement each ([`PassReads`]), and for each: takes its order
//! (the hold) or, for an offline card start or a record the edge could not tie to its start,
//! the account of the card the record names; builds the session's meter
//! readings (the record's start and end registers at its start and end instants in the site's
//! time zone, plus the stored readings between); prices them with the tariff version in force
//! at session start, from the [`TariffCache`] (no price read from the database); and submits a
//! planned job to the writer that makes [`plan_settlement`] from the batch's balances (the
//! wallet's available balance and credit line as of that batch, the hold as it stands).
//!
//! **Exactly once, and why in one transaction.** The settlement row (cost, mismatch flag,
//! amounts), `transactions.settled = true` and the order's cost and mismatch are written in
//! the *same* database transaction as the postings. So there is no window in which money
//! moved but the record looks unsettled (or the reverse), and no repair job is needed. A
//! record processed twice (a duplicate, a replay, two instances picking the same row) carries
//! the same key `settle:{pile}:{serial}`: the second finds the key stored and returns the
//! first result (a key race between instances replays the batch, which then finds it).
//!
//! **The split.** With a [`RuleCache`](crate::bills::RuleCache) ([`Settler::with_rules`]), a
//! session is split by its operator's sharing rule in force when it *started*
//! ([`crate::sharing::split`]: rounded once, the operator takes the remainder) and posted with
//! [`plan_settlement_with_split`]; the split's operator, site, energy and rule version go on
//! the settlement row (same transaction) for the daily bills. Without a rule in force, the
//! configured `platform_fee` splits it as before.

use std::sync::Arc;

use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, OrderId};
use voltline_protocol::sync::{Authorisation, TransactionUp};
use voltline_protocol::tariff::{CostBreakdown, MeterReading};
use voltline_protocol::{Energy, Money};

use super::funds::open_account;
use super::pass_reads::PassReads;
use super::tariffs::TariffCache;
use super::writer::{Applied, Job, LedgerWriter, Planned, SettlementRow};
use super::{limits, MoneyError};
use crate::domain::OrderKind;
use crate::ledger::{
    plan_settlement, plan_settlement_with_split, AccountPolicy, CostSplit, Hold, IdempotencyKey,
    LedgerAccountId, LedgerError, LedgerView, PendingStatus, PlatformFeeRule, RecordRef,
    SettlementInput, TransferId,
};
use crate::store::types::{DbMoney, DbTime};
use crate::store::{with_pool, Store};

/// Settlement rules.
#[derive(Debug, Clone, Copy)]
pub struct SettlerConfig {
    pub platform_fee: PlatformFeeRule,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Settled now.
    Settled(Box<SettlementRow>),
    /// Settled before (the first result's ledger sequence).
    Replayed { sequence: i64 },
    /// Could not be settled; it stays unsettled and is retried by the next call.
    Failed(String),
}

/// One call's results, per (pile, serial).
#[derive(Debug, Clone, Default)]
pub struct SettleReport {
    pub outcomes: Vec<((String, String), SettleOutcome)>,
}

impl SettleOutcome {
    /// What settling one record came to: the writer's answer, or the error that stopped it.
    pub(crate) fn of(result: Result<Applied, MoneyError>) -> SettleOutcome {
        match result {
            Ok(a) if a.replay => SettleOutcome::Replayed {
                sequence: a.sequence,
            },
            Ok(a) => match a.settlement {
                Some(s) => SettleOutcome::Settled(Box::new(s)),
                None => SettleOutcome::Failed("settled without a settlement row".into()),
            },
            Err(e) => SettleOutcome::Failed(e.to_string()),
        }
    }
}

impl SettleReport {
    /// How many settled now.
    pub fn settled(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, SettleOutcome::Settled(_)))
            .count()
    }
    /// How many failed.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, SettleOutcome::Failed(_)))
            .count()
    }
}

/// Settles transaction records through the ledger writer.
pub struct Settler {
    writer: LedgerWriter,
    cache: Arc<TariffCache>,
    config: SettlerConfig,
    opened: moka::sync::Cache<String, ()>,
    /// Held while an account is opened, so that concurrent records open it once.
    opening: tokio::sync::Mutex<()>,
    /// The operators' revenue-sharing rules (issue #9); without them, or when no rule is in
    /// force, the session is split by `config.platform_fee`.
    rules: Option<crate::bills::RuleCache>,
    /// Where the next `settle_pending` goes on: after this (received, pile, serial).
    cursor: std::sync::Mutex<Option<(DbTime, String, String)>>,
}

type TxRow = (
    String,
    String,
    String,
    Option<String>,
    sqlx::types::Json<TransactionUp>,
);

/// A [`TxRow`] with its `received_at` (the walk's cursor).
type PickedRow = (
    String,
    String,
    String,
    Option<String>,
    sqlx::types::Json<TransactionUp>,
    DbTime,
);

impl Settler {
    pub fn new(writer: LedgerWriter, cache: Arc<TariffCache>, config: SettlerConfig) -> Settler {
        Settler {
            writer,
            cache,
            config,
            opened: moka::sync::Cache::new(100_000),
            opening: tokio::sync::Mutex::new(()),
            rules: None,
            cursor: std::sync::Mutex::new(None),
        }
    }

    /// Splits sessions by the operators' sharing rules from `rules` (the rule in force at the
    /// session's start; see `crate::bills::rules`).
    pub fn with_rules(mut self, rules: crate::bills::RuleCache) -> Settler {
        self.rules = Some(rules);
        self
    }

    /// The tariff cache.
    pub fn cache(&self) -> &Arc<TariffCache> {
        &self.cache
    }

    /// Settles up to `limit` unsettled charge records, all submitted at once so that they
    /// share group commits.
    ///
    /// Calls walk the unsettled records in (received, pile, serial) order from a cursor: a
    /// full batch moves the cursor past it, a short one sets it back to the start. So records
    /// that keep failing (no tariff yet, say) are retried once per walk and can never fill
    /// every batch and starve the records behind them.
    pub async fn settle_pending(&self, limit: usize) -> Result<SettleReport, MoneyError> {
        let limit = limit.clamp(1, limits::MAX_SETTLE_BATCH);
        let store = self.writer.store().clone();
        let after = self
            .cursor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The start of the walk: before any instant the cloud stamps `received_at` with.
        let (at, pile, serial) =
            after.unwrap_or((DbTime(Timestamp::UNIX_EPOCH), String::new(), String::new()));
        let picked: Vec<PickedRow> = with_pool!(store, |pool, d| {
            sqlx::query_as(
                "SELECT pile_code, serial, site_id, order_id, record, received_at FROM transactions \
                 WHERE settled = $1 AND kind = 'charge' AND (received_at, pile_code, serial) > ($2, $3, $4) \
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
        let rows: Vec<TxRow> = picked
            .into_iter()
            .map(|(p, s, site, o, rec, _)| (p, s, site, o, rec))
            .collect();
        let reads = {
            let orders: Vec<&str> = rows.iter().filter_map(|r| r.3.as_deref()).collect();
            let sessions: Vec<(&str, &str)> = rows.iter().map(|r| (&*r.0, &*r.1)).collect();
            PassReads::load(&store, &orders, &sessions).await?
        };
        let reads = &reads;
        let futures = rows.into_iter().map(|row| async move {
            let id = (row.0.clone(), row.1.clone());
            let outcome = SettleOutcome::of(self.settle_row(row, reads).await);
            (id, outcome)
        });
        let outcomes = futures::future::join_all(futures).await;
        for ((pile, serial), o) in &outcomes {
            if let SettleOutcome::Failed(why) = o {
                tracing::warn!(pile, serial, why, "transaction record not settled");
            }
        }
        Ok(SettleReport { outcomes })
    }

    async fn settle_row(&self, row: TxRow, reads: &PassReads) -> Result<Applied, MoneyError> {
        let store = self.writer.store();
        let (pile, serial, site, order_id, up) = (row.0, row.1, row.2, row.3, row.4 .0);
        let record = &up.record;
        let (order, account, hold_id) = self.payer(store, reads, &up, order_id.as_deref()).await?;
        let pricing = self
            .cache
            .for_settlement(store, &super::db::parse(&site, "site id")?)
            .await?;
        let to_instant = |t: voltline_protocol::wire::cp56::Cp56Time,
                          what: &str|
         -> Result<Timestamp, MoneyError> {
            let civil = t.to_civil().ok_or_else(|| {
                MoneyError::Invalid(format!("record {pile}/{serial} has no {what} time"))
            })?;
            pricing.time_zone.to_timestamp(civil).map_err(|e| {
                MoneyError::Invalid(format!("record {pile}/{serial} {what} time: {e}"))
            })
        };
        let start = to_instant(record.start_time, "start")?;
        let end = to_instant(record.end_time, "end")?;
        let tariff = pricing.tariff_at(OrderKind::Charge, start).ok_or_else(|| {
            MoneyError::Invalid(format!(
                "site {site} has no charge tariff at {start}; assign one, then settlement retries"
            ))
        })?;
        let readings = session_readings(
            reads.readings(&pile, &serial),
            (start, record.meter_start),
            (end, record.meter_end),
        );
        let cost = tariff.cost(&readings).map_err(|e| {
            MoneyError::Invalid(format!("record {pile}/{serial} cannot be priced: {e}"))
        })?;
        // The operator's sharing rule in force at the session's start, if any (cached).
        let site_id: voltline_protocol::domain::SiteId = super::db::parse(&site, "site id")?;
        let shared = match &self.rules {
            Some(rules) => rules
                .for_operator(&pricing.operator)
                .await
                .and_then(|r| {
                    r.split(
                        &pricing.operator,
                        &site_id,
                        start,
                        &crate::sharing::SessionMoney {
                            energy: cost.total_energy,
                            energy_fee: cost.energy_fee,
                            service_fee: cost.service_fee,
                            export_energy: Energy::ZERO,
                            export_value: Money::ZERO,
                        },
                    )
                })
                .map_err(|e| {
                    MoneyError::Invalid(format!(
                        "record {pile}/{serial}: sharing rule: {e}; settlement retries"
                    ))
                })?,
            None => None,
        };
        let share = crate::sharing::SettlementShare {
            operator: pricing.operator.to_string(),
            site: site.clone(),
            started_at: Some(start),
            ended_at: Some(end),
            energy_mwh: cost.total_energy.mwh(),
            export_mwh: 0,
            v2g_driver_credit: Money::ZERO,
            v2g_operator_share: Money::ZERO,
            rule_version: shared.as_ref().map(|(_, v)| *v),
        };
        let shared = shared.map(|(s, _)| CostSplit {
            operator: s.operator_payable,
            platform_fee: s.platform_fee,
        });
        let record_ref = RecordRef {
            pile: record.pile_code,
            serial: record.serial,
        };
        let key = IdempotencyKey::settlement(&record_ref);
        let wallet = LedgerAccountId::DriverWallet(account.clone());
        let payable = LedgerAccountId::OperatorPayable(pricing.operator.clone());
        let opened_key = payable.to_string();
        if !self.opened.contains_key(&opened_key) {
            // One opening per account: a pass's records all arrive here at once.
            let _one = self.opening.lock().await;
            if !self.opened.contains_key(&opened_key) {
                open_account(store, &payable, AccountPolicy::default_for(&payable)).await?;
                self.opened.insert(opened_key, ());
            }
        }
        // Read up front; the receivable is read only when an overrun needs it.
        let accounts = vec![
            wallet.clone(),
            payable,
            LedgerAccountId::SessionClearing,
            LedgerAccountId::PlatformRevenue,
        ];
        let hold_id: Option<TransferId> = hold_id.as_deref().map(str::parse).transpose()?;
        let operator = pricing.operator.clone();
        let fee = self.config.platform_fee;
        let version = tariff.version();
        let charger_total = record.total_amount;
        let order_text = order.as_ref().map(|o| o.to_string());
        let job = Job::planned(
            key,
            accounts,
            hold_id.iter().cloned().collect(),
            move |view| {
                let w = view
                    .account(&wallet)
                    .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?;
                let hold = hold_id
                    .as_ref()
                    .and_then(|id| view.pending(id))
                    .filter(|p| p.status == PendingStatus::Open && p.debit == wallet)
                    .map(|p| Hold {
                        order: order
                            .clone()
                            .unwrap_or_else(|| OrderId::new("offline").expect("a valid id")),
                        account: account.clone(),
                        pending: p.id,
                        amount: p.amount,
                    });
                let input = SettlementInput {
                    record: record_ref,
                    order: order
                        .clone()
                        .unwrap_or_else(|| OrderId::new("offline").expect("a valid id")),
                    account: account.clone(),
                    operator: operator.clone(),
                    hold,
                    tariff_version_at_start: version,
                    cost: &cost,
                    charger_reported_total: charger_total,
                    platform_fee: fee,
                    wallet_available: w.available(),
                    credit_limit: w.policy.credit_limit().unwrap_or(Money::ZERO),
                };
                let plan = match shared {
                    Some(split) => plan_settlement_with_split(&input, split)?,
                    None => plan_settlement(&input)?,
                };
                let mut row = settlement_row(
                    &plan,
                    &record_ref,
                    order_text.clone(),
                    &account,
                    &cost,
                    charger_total,
                );
                row.share = share.clone();
                // A credit session's unused authorisation goes back to its provider in the
                // same set (issue #10; the capture follows from the posted hold).
                let set = crate::payment::plans::with_credit_release(
                    plan.set,
                    hold_id.as_ref(),
                    &account,
                    plan.released,
                );
                Ok(Planned {
                    settlement: Some(row),
                    set,
                })
            },
        );
        self.writer.submit(job).await
    }

    /// Who pays: the order's account and hold, an offline card's account, or the account
    /// of the card the record names.
    async fn payer(
        &self,
        store: &Store,
        reads: &PassReads,
        up: &TransactionUp,
        order_id: Option<&str>,
    ) -> Result<(Option<OrderId>, AccountId, Option<String>), MoneyError> {
        if let Some(order) = order_id {
            let (account, hold) = reads.payer(order).cloned().ok_or_else(|| {
                MoneyError::Invalid(format!(
                    "order {order} of a transaction record does not exist"
                ))
            })?;
            return Ok((
                Some(super::db::parse(order, "order id")?),
                super::db::parse(&account, "account id")?,
                hold,
            ));
        }
        if let Authorisation::OfflineCard { account, .. } = &up.authorisation {
            return Ok((None, account.clone(), None));
        }
        // A record the edge could not tie to its start (it lost an answered card start in a
        // crash, say) is billed to the account of the card that started it, when the pile
        // names a card the platform issued: the money is owed all the same.
        let card = &up.record.physical_card;
        if !card.is_none() {
            match store.get_card(card).await {
                Ok(c) => {
                    tracing::warn!(pile = %up.pile, serial = %up.record.serial, card = %card, account = %c.account, "settlement: record without an order or card start billed to its card's account");
                    return Ok((None, c.account, None));
                }
                Err(crate::store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(MoneyError::Invalid("a transaction record without an order or a card account has nobody to bill; register the card that started it (POST /v1/accounts/{id}/cards) or attach it to an order".into()))
    }

    /// The stored settlement of (pile, serial), if settled: (cost, mismatch, order).
    pub async fn settlement_of(
        &self,
        pile: &str,
        serial: &str,
    ) -> Result<Option<(Money, bool, Option<String>)>, MoneyError> {
        let store = self.writer.store();
        let row: Option<(DbMoney, bool, Option<String>)> = with_pool!(store, |pool, d| {
            sqlx::query_as("SELECT cost, mismatch, order_id FROM settlements WHERE pile_code = $1 AND serial = $2")
                .bind(pile)
                .bind(serial)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(c, m, o)| (c.0, m, o)))
    }
}

impl Settler {
    /// What settlement wrote on an order: (billed cost, charger mismatch flag), if settled.
    pub async fn order_settlement(
        &self,
        order: &OrderId,
    ) -> Result<Option<(Money, bool)>, MoneyError> {
        let store = self.writer.store();
        let row: Option<(Option<DbMoney>, Option<bool>)> = with_pool!(store, |pool, d| {
            sqlx::query_as("SELECT settled_cost, cost_mismatch FROM orders WHERE id = $1")
                .bind(order.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(c, m)| Some((c?.0, m?))))
    }
}

/// The session's readings: start and end from the record, the stored `between` (oldest
/// first) that fall inside them and never run the register backwards.
fn session_readings(
    between: &[(DbTime, i64)],
    start: (Timestamp, Energy),
    end: (Timestamp, Energy),
) -> Vec<MeterReading> {
    let mut out = vec![MeterReading::new(start.0, start.1)];
    for &(at, mwh) in between {
        let r = Energy::from_mwh(mwh);
        if at.0 > start.0 && at.0 < end.0 && r >= start.1 && r <= end.1 {
            if let Some(last) = out.last() {
                if r < last.register {
                    continue;
                }
            }
            out.push(MeterReading::new(at.0, r));
        }
    }
    out.push(MeterReading::new(end.0, end.1));
    out
}

fn settlement_row(
    plan: &crate::ledger::SettlementPlan,
    record: &RecordRef,
    order: Option<String>,
    account: &AccountId,
    cost: &CostBreakdown,
    charger_total: Money,
) -> SettlementRow {
    SettlementRow {
        pile: record.pile.to_string(),
        serial: record.serial.to_string(),
        key: plan.set.key.to_string(),
        order,
        account: account.to_string(),
        cost: plan.cost,
        charger_total,
        mismatch: plan.mismatch.is_some(),
        difference: charger_total - plan.cost,
        from_hold: plan.from_hold,
        released: plan.released,
        from_wallet: plan.from_wallet,
        receivable: plan.receivable,
        operator_share: plan.split.operator,
        platform_fee: plan.split.platform_fee,
        breakdown: serde_json::to_value(cost).unwrap_or(serde_json::Value::Null),
        share: crate::sharing::SettlementShare::default(),
    }
}

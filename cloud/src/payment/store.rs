//! The payments tables (migration 0007): one row per credit payment (keyed by order, unique by
//! trade number and hold), refunds, and the notifications seen. One query text serves both
//! backends (`with_pool!`); money binds as `DbMoney`, instants as `DbTime`. Every state change
//! is `UPDATE ... WHERE order_id = ? AND version = ?`: `false` means another caller moved the
//! row first, and the caller reads it again instead of acting.

use jiff::Timestamp;
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use super::state::CaptureState;
use crate::ledger::{PendingTransfer, TransferId};
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};
use crate::store::{with_pool, Store};

/// A payment row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PaymentRow {
    pub order_id: String,
    pub account_id: String,
    pub operator_id: String,
    pub provider: String,
    pub out_trade_no: String,
    pub hold_id: String,
    pub provider_ref: Option<String>,
    pub authorised_amount: DbMoney,
    pub state: String,
    pub capture_amount: Option<DbMoney>,
    pub transaction_ref: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: DbTime,
    pub last_error: Option<String>,
    pub dunning: Option<String>,
    pub dunning_step: i64,
    pub dunning_next_at: Option<DbTime>,
    pub version: i64,
}

impl PaymentRow {
    /// The state, parsed.
    pub fn capture_state(&self) -> Result<CaptureState, MoneyError> {
        CaptureState::parse(&self.state).ok_or_else(|| {
            MoneyError::Corrupt(format!(
                "payment {} has state '{}'",
                self.order_id, self.state
            ))
        })
    }
}

const COLUMNS: &str =
    "SELECT order_id, account_id, operator_id, provider, out_trade_no, hold_id, provider_ref, \
    authorised_amount, state, capture_amount, transaction_ref, attempts, next_attempt_at, \
    last_error, dunning, dunning_step, dunning_next_at, version FROM payments";

/// A payment about to be authorised.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub order: &'a OrderId,
    pub account: &'a str,
    pub operator: &'a str,
    pub provider: &'a str,
    pub out_trade_no: &'a str,
    pub hold_id: &'a TransferId,
    pub amount: Money,
}

/// Inserts a payment in state `authorising` (before the provider is asked, so that a crash
/// after it answered leaves a row the resolver finds).
pub async fn insert(store: &Store, p: &NewPayment<'_>, now: Timestamp) -> Result<(), MoneyError> {
    let now = DbTime::from(now);
    with_pool!(store, |pool, d| {
        sqlx::query(
            "INSERT INTO payments (order_id, account_id, operator_id, provider, out_trade_no, hold_id, authorised_amount, \
             state, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'authorising', $8, $8, $8)",
        )
        .bind(p.order.as_str())
        .bind(p.account)
        .bind(p.operator)
        .bind(p.provider)
        .bind(p.out_trade_no)
        .bind(p.hold_id.to_string())
        .bind(DbMoney(p.amount))
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// The payment of `order`.
pub async fn by_order(store: &Store, order: &str) -> Result<Option<PaymentRow>, MoneyError> {
    let q = format!("{COLUMNS} WHERE order_id = $1");
    Ok(with_pool!(store, |pool, d| sqlx::query_as(
        sqlx::AssertSqlSafe(q.clone())
    )
    .bind(order)
    .fetch_optional(pool)
    .await?))
}

/// The payment with trade number `no` at `provider`.
pub async fn by_trade_no(
    store: &Store,
    provider: &str,
    no: &str,
) -> Result<Option<PaymentRow>, MoneyError> {
    let q = format!("{COLUMNS} WHERE out_trade_no = $1 AND provider = $2");
    Ok(with_pool!(store, |pool, d| sqlx::query_as(
        sqlx::AssertSqlSafe(q.clone())
    )
    .bind(no)
    .bind(provider)
    .fetch_optional(pool)
    .await?))
}

/// What a transition writes besides the state.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub provider_ref: Option<String>,
    pub capture_amount: Option<Money>,
    pub transaction_ref: Option<String>,
    /// `Some(n)`: set the attempt counter; `None`: reset it to 0.
    pub attempts: Option<i64>,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub dunning: Option<(String, i64, Option<Timestamp>)>,
}

/// Moves the payment from `version` to `to` with `change`. `false`: the row moved meanwhile.
pub async fn transition(
    store: &Store,
    row: &PaymentRow,
    to: CaptureState,
    change: Change,
    now: Timestamp,
) -> Result<bool, MoneyError> {
    let next = DbTime::from(change.next_attempt_at.unwrap_or(now));
    let (dunning, step, dunning_next) = match change.dunning {
        Some((d, s, at)) => (Some(d), s, at.map(DbTime::from)),
        None => (row.dunning.clone(), row.dunning_step, row.dunning_next_at),
    };
    let done = with_pool!(store, |pool, d| {
        sqlx::query(
            "UPDATE payments SET state = $1, provider_ref = COALESCE($2, provider_ref), capture_amount = COALESCE($3, capture_amount), \
             transaction_ref = COALESCE($4, transaction_ref), attempts = $5, next_attempt_at = $6, last_error = $7, \
             dunning = $8, dunning_step = $9, dunning_next_at = $10, version = version + 1, updated_at = $11 \
             WHERE order_id = $12 AND version = $13",
        )
        .bind(to.as_str())
        .bind(change.provider_ref)
        .bind(change.capture_amount.map(DbMoney))
        .bind(change.transaction_ref)
        .bind(change.attempts.unwrap_or(0))
        .bind(next)
        .bind(change.last_error)
        .bind(dunning)
        .bind(step)
        .bind(dunning_next)
        .bind(DbTime::from(now))
        .bind(&row.order_id)
        .bind(row.version)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Payments the resolver has work for at `now`: unknown outcomes and pending cancels or
/// captures whose next attempt is due, authorised ones whose hold settlement or a void closed,
/// and receivables whose next dunning step is due.
pub async fn due(store: &Store, now: Timestamp, limit: i64) -> Result<Vec<PaymentRow>, MoneyError> {
    let q = format!(
        "{COLUMNS} WHERE (state IN ('authorising', 'authorise_unknown', 'cancelling', 'capturing', 'capture_unknown') AND next_attempt_at <= $1) \
         OR (state = 'authorised' AND (EXISTS (SELECT 1 FROM ledger_pendings lp WHERE lp.id = payments.hold_id AND lp.state <> 'open') \
             OR EXISTS (SELECT 1 FROM orders o WHERE o.id = payments.order_id AND o.state = 'failed') \
             OR EXISTS (SELECT 1 FROM ledger_pendings lp JOIN orders o ON o.id = payments.order_id \
                 WHERE lp.id = payments.hold_id AND lp.state = 'open' AND lp.expires_at <= $1 AND o.state = 'pending') \
             OR (next_attempt_at <= $1 AND NOT EXISTS (SELECT 1 FROM ledger_pendings lp WHERE lp.id = payments.hold_id)))) \
         OR (state = 'capture_declined' AND dunning_next_at IS NOT NULL AND dunning_next_at <= $1) \
         ORDER BY next_attempt_at LIMIT $2"
    );
    let now = DbTime::from(now);
    Ok(with_pool!(store, |pool, d| sqlx::query_as(
        sqlx::AssertSqlSafe(q.clone())
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// A ledger hold as stored.
pub async fn pending(
    store: &Store,
    id: &TransferId,
) -> Result<Option<PendingTransfer>, MoneyError> {
    use crate::money::db;
    use crate::store::Backend;
    let ids = [id.to_string()];
    let found = match &store.backend {
        Backend::Sqlite(pool) => {
            db::sqlite::load_pendings(&mut *pool.acquire().await?, &ids).await?
        }
        Backend::Postgres(pool) => {
            db::postgres::load_pendings(&mut *pool.acquire().await?, &ids).await?
        }
    };
    Ok(found.into_iter().next())
}

/// Records a verified notification; `false` when it was seen before.
pub async fn first_notification(
    store: &Store,
    provider: &str,
    id: &str,
    out_trade_no: &str,
) -> Result<bool, MoneyError> {
    let now = DbTime::from(Timestamp::now());
    let n = with_pool!(store, |pool, d| {
        sqlx::query(
            "INSERT INTO payment_notifications (provider, notification_id, out_trade_no, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, notification_id) DO NOTHING",
        )
        .bind(provider)
        .bind(id)
        .bind(out_trade_no)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// A refund row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RefundRow {
    pub out_refund_no: String,
    pub order_id: String,
    pub request_id: String,
    pub amount: DbMoney,
    pub reason: String,
    pub state: String,
    pub attempts: i64,
}

const REFUND_COLUMNS: &str = "SELECT out_refund_no, order_id, request_id, amount, reason, state, attempts FROM payment_refunds";

/// Inserts a pending refund unless its number exists; returns the stored row either way.
pub async fn insert_refund(
    store: &Store,
    out_refund_no: &str,
    order: &str,
    request_id: &str,
    amount: Money,
    reason: &str,
) -> Result<RefundRow, MoneyError> {
    let now = DbTime::from(Timestamp::now());
    with_pool!(store, |pool, d| {
        sqlx::query(
            "INSERT INTO payment_refunds (out_refund_no, order_id, request_id, amount, reason, state, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6) ON CONFLICT (out_refund_no) DO NOTHING",
        )
        .bind(out_refund_no)
        .bind(order)
        .bind(request_id)
        .bind(DbMoney(amount))
        .bind(reason)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    let q = format!("{REFUND_COLUMNS} WHERE out_refund_no = $1");
    let row: Option<RefundRow> = with_pool!(store, |pool, d| sqlx::query_as(sqlx::AssertSqlSafe(
        q.clone()
    ))
    .bind(out_refund_no)
    .fetch_optional(pool)
    .await?);
    row.ok_or_else(|| {
        MoneyError::Corrupt(format!("refund {out_refund_no} vanished after its insert"))
    })
}

/// Refunds still pending whose next attempt is due.
pub async fn due_refunds(
    store: &Store,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<RefundRow>, MoneyError> {
    let q = format!("{REFUND_COLUMNS} WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2");
    let now = DbTime::from(now);
    Ok(with_pool!(store, |pool, d| sqlx::query_as(
        sqlx::AssertSqlSafe(q.clone())
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// Sets a refund's state (from `pending` only) and its next attempt.
pub async fn set_refund(
    store: &Store,
    out_refund_no: &str,
    state: &str,
    attempts: i64,
    next_attempt_at: Timestamp,
    error: Option<String>,
) -> Result<bool, MoneyError> {
    let now = DbTime::from(Timestamp::now());
    let n = with_pool!(store, |pool, d| {
        sqlx::query(
            "UPDATE payment_refunds SET state = $1, attempts = $2, next_attempt_at = $3, last_error = $4, updated_at = $5 \
             WHERE out_refund_no = $6 AND state = 'pending'",
        )
        .bind(state)
        .bind(attempts)
        .bind(DbTime::from(next_attempt_at))
        .bind(error)
        .bind(now)
        .bind(out_refund_no)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// What has been refunded (succeeded) and is being refunded (pending) of `order`.
pub async fn refund_totals(store: &Store, order: &str) -> Result<(Money, Money), MoneyError> {
    let rows: Vec<(String, DbMoney)> = with_pool!(store, |pool, d| {
        sqlx::query_as("SELECT state, amount FROM payment_refunds WHERE order_id = $1")
            .bind(order)
            .fetch_all(pool)
            .await?
    });
    let sum = |s: &str| {
        rows.iter()
            .filter(|(st, _)| st == s)
            .map(|(_, m)| m.0)
            .sum::<Money>()
    };
    Ok((sum("succeeded"), sum("pending")))
}

/// The refund with number `no`.
pub async fn by_refund_no(store: &Store, no: &str) -> Result<Option<RefundRow>, MoneyError> {
    let q = format!("{REFUND_COLUMNS} WHERE out_refund_no = $1");
    Ok(with_pool!(store, |pool, d| sqlx::query_as(
        sqlx::AssertSqlSafe(q.clone())
    )
    .bind(no)
    .fetch_optional(pool)
    .await?))
}

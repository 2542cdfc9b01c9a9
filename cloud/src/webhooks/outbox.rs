//! The webhook outbox and endpoints in SQL.
//!
//! An event row is inserted by the transaction that makes what it announces (the bill job's),
//! with a deterministic id, `ON CONFLICT DO NOTHING`: a replay never queues it twice. The
//! dispatcher claims a due row by moving its `next_attempt_at` forward with a conditional
//! update (only the claimer whose update matched sends), and records the outcome.
//!
//! It owns `webhook_outbox` and `webhook_endpoints`. It must never delete an event, and never
//! return an endpoint's secret to anything but the signer.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::OperatorId;

use super::limits;
use crate::bills::BillsError;
use crate::store::types::DbTime;
use crate::store::{with_pool, Store};

/// An event to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Deterministic: the same fact always has the same id.
    pub id: String,
    pub operator: OperatorId,
    /// `bill.issued`, `payout.created`.
    pub kind: String,
    /// The exact JSON bytes to sign and send.
    pub body: String,
}

/// An operator's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub operator: OperatorId,
    pub url: String,
    pub secret: String,
    pub updated_at: Timestamp,
}

/// A queued event as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: String,
    pub operator: String,
    pub kind: String,
    pub body: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
}

/// An event's delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventState {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

fn check_endpoint(url: &str, secret: &str) -> Result<(), BillsError> {
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.len() > limits::MAX_URL_BYTES
    {
        return Err(BillsError::invalid(
            "webhook url",
            format!(
                "'{url}' must be an http:// or https:// URL of at most {} bytes",
                limits::MAX_URL_BYTES
            ),
        ));
    }
    if secret.len() < limits::MIN_SECRET_BYTES || secret.len() > limits::MAX_SECRET_BYTES {
        return Err(BillsError::invalid(
            "webhook secret",
            format!(
                "a secret of {} bytes; use {} to {} bytes of random text",
                secret.len(),
                limits::MIN_SECRET_BYTES,
                limits::MAX_SECRET_BYTES
            ),
        ));
    }
    Ok(())
}

/// Sets (or replaces) `operator`'s endpoint.
pub async fn set_endpoint(
    store: &Store,
    operator: &OperatorId,
    url: &str,
    secret: &str,
) -> Result<Endpoint, BillsError> {
    check_endpoint(url, secret)?;
    let now = Timestamp::now();
    let _turn = store.write_turn().await;
    let done = with_pool!(store, |pool, d| {
        sqlx::query(
            "INSERT INTO webhook_endpoints (operator_id, url, secret, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (operator_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at",
        )
        .bind(operator.as_str())
        .bind(url)
        .bind(secret)
        .bind(DbTime::from(now))
        .execute(pool)
        .await
        .map(|_| ())
    });
    match done {
        Ok(_) => {}
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            return Err(BillsError::NotFound {
                what: "operator",
                id: operator.to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Endpoint {
        operator: operator.clone(),
        url: url.to_owned(),
        secret: secret.to_owned(),
        updated_at: now,
    })
}

/// `operator`'s endpoint, if configured.
pub async fn endpoint(store: &Store, operator: &str) -> Result<Option<Endpoint>, BillsError> {
    let row: Option<(String, String, DbTime)> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT url, secret, updated_at FROM webhook_endpoints WHERE operator_id = $1",
        )
        .bind(operator)
        .fetch_optional(pool)
        .await?
    });
    row.map(|(url, secret, at)| {
        Ok(Endpoint {
            operator: operator
                .parse()
                .map_err(|e| BillsError::Corrupt(format!("operator id '{operator}': {e}")))?,
            url,
            secret,
            updated_at: at.0,
        })
    })
    .transpose()
}

/// Pending events due at `now`, oldest first, at most `limit` (≤ [`limits::BATCH`]).
pub async fn due(
    store: &Store,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<QueuedEvent>, BillsError> {
    let limit = i64::try_from(limit.clamp(1, limits::BATCH)).unwrap_or(1);
    let rows: Vec<(String, String, String, String, i64, DbTime)> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT event_id, operator_id, kind, body, attempts, next_attempt_at FROM webhook_outbox \
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(DbTime::from(now))
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| QueuedEvent {
            id: r.0,
            operator: r.1,
            kind: r.2,
            body: r.3,
            attempts: u32::try_from(r.4).unwrap_or(u32::MAX),
            next_attempt_at: r.5 .0,
        })
        .collect())
}

/// Claims `e` until `until` (counting the attempt); `false` if another claimer got it first.
pub async fn claim(store: &Store, e: &QueuedEvent, until: Timestamp) -> Result<bool, BillsError> {
    let _turn = store.write_turn().await;
    let n = with_pool!(store, |pool, d| {
        sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE event_id = $2 AND state = 'pending' AND next_attempt_at = $3 AND attempts = $4",
        )
        .bind(DbTime::from(until))
        .bind(&e.id)
        .bind(DbTime::from(e.next_attempt_at))
        .bind(i64::from(e.attempts))
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Records a delivery.
pub async fn delivered(store: &Store, id: &str, now: Timestamp) -> Result<(), BillsError> {
    let _turn = store.write_turn().await;
    with_pool!(store, |pool, d| {
        sqlx::query("UPDATE webhook_outbox SET state = 'delivered', delivered_at = $1, last_error = NULL WHERE event_id = $2")
            .bind(DbTime::from(now))
            .bind(id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or parked as dead when `None`.
pub async fn failed(
    store: &Store,
    id: &str,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<(), BillsError> {
    let error: String = error.chars().take(limits::MAX_ERROR_CHARS).collect();
    let _turn = store.write_turn().await;
    with_pool!(store, |pool, d| {
        match retry_at {
            Some(at) => sqlx::query("UPDATE webhook_outbox SET next_attempt_at = $1, last_error = $2 WHERE event_id = $3 AND state = 'pending'")
                .bind(DbTime::from(at))
                .bind(&error)
                .bind(id)
                .execute(pool)
                .await?,
            None => sqlx::query("UPDATE webhook_outbox SET state = 'dead', last_error = $1 WHERE event_id = $2 AND state = 'pending'")
                .bind(&error)
                .bind(id)
                .execute(pool)
                .await?,
        };
    });
    Ok(())
}

/// Every event of `operator` with its state (tests and operations), oldest first, bounded.
pub async fn events_of(
    store: &Store,
    operator: &str,
    limit: usize,
) -> Result<Vec<EventState>, BillsError> {
    let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(1);
    let rows: Vec<(String, String, String, i64, Option<String>)> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT event_id, kind, state, attempts, last_error FROM webhook_outbox WHERE operator_id = $1 \
             ORDER BY created_at, event_id LIMIT $2",
        )
        .bind(operator)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| EventState {
            id: r.0,
            kind: r.1,
            state: r.2,
            attempts: u32::try_from(r.3).unwrap_or(u32::MAX),
            last_error: r.4,
        })
        .collect())
}

macro_rules! outbox_sql {
    ($conn:ty) => {
        use super::NewEvent;
        use crate::bills::BillsError;
        use crate::store::types::DbTime;

        /// Queues `events` in the caller's transaction (an id queued before is left as is),
        /// due at once.
        pub async fn insert_events(conn: &mut $conn, events: &[NewEvent]) -> Result<(), BillsError> {
            let now = DbTime::from(jiff::Timestamp::now());
            for e in events {
                sqlx::query(
                    "INSERT INTO webhook_outbox (event_id, operator_id, kind, body, state, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(&e.id)
                .bind(e.operator.as_str())
                .bind(&e.kind)
                .bind(&e.body)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// The endpoint of `operator`, read in the caller's transaction: whether to queue.
        pub async fn has_endpoint(conn: &mut $conn, operator: &str) -> Result<bool, BillsError> {
            let row: Option<(String,)> = sqlx::query_as("SELECT operator_id FROM webhook_endpoints WHERE operator_id = $1")
                .bind(operator)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.is_some())
        }
    };
}

/// The in-transaction statements on SQLite.
pub mod sqlite {
    outbox_sql!(sqlx::SqliteConnection);
}

/// The in-transaction statements on PostgreSQL.
pub mod postgres {
    outbox_sql!(sqlx::PgConnection);
}

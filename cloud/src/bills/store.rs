//! The bill statements: sessions not yet billed, issued bills, and which bill each session
//! is on. Statements that run inside the bill job's transaction are written once in
//! `bill_sql!` and expanded per backend (like `money/db.rs`); reads take the pool.
//!
//! It owns the bill tables' rows and nothing else. It must never update or delete a row of
//! `bills` or `bill_sessions`.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use voltline_protocol::domain::{Energy, Money, OperatorId};

use super::error::BillsError;
use super::limits;
use crate::sharing::bill::{DailyBill, SettledSession};
use crate::sharing::split::{PlatformFeeParts, Split};
use crate::store::types::{DbMoney, DbTime};
use crate::store::{with_pool, Store};

/// An issued bill as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBill {
    /// `bill-{operator}-{day}`.
    pub id: String,
    pub issued_at: Timestamp,
    /// The fencing token of the lease it was issued under.
    pub lease_token: i64,
    /// SHA-256 of the bill's JSON (hex).
    pub digest: String,
    pub bill: DailyBill,
}

impl StoredBill {
    /// The id of `operator`'s bill for `day`.
    pub fn id_for(operator: &OperatorId, day: Date) -> String {
        format!("bill-{operator}-{day}")
    }
}

/// The SHA-256 of `bill`'s JSON, hex.
pub fn digest(bill: &DailyBill) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(bill).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A settlement row as the bill reads it.
pub(crate) type SessionRow = (
    String,
    Option<String>,
    Option<String>,
    Option<DbTime>,
    DbTime,
    i64,
    i64,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
);

pub(crate) const SESSION_COLUMNS: &str =
    "s.idem_key, s.operator_id, s.site_id, s.ended_at, s.settled_at, s.energy_mwh, s.export_mwh, \
     s.cost, s.platform_fee, s.operator_share, s.v2g_driver_credit, s.v2g_operator_share";

pub(crate) fn session_from_row(r: SessionRow) -> Result<SettledSession, BillsError> {
    let bad =
        |what: &str, v: &str| BillsError::Corrupt(format!("settlement {}: {what} '{v}'", r.0));
    let operator = r.1.as_deref().unwrap_or("");
    let site = r.2.as_deref().unwrap_or("");
    Ok(SettledSession {
        operator: operator.parse().map_err(|_| bad("operator", operator))?,
        site: site.parse().map_err(|_| bad("site", site))?,
        ended_at: r.3.map_or(r.4 .0, |t| t.0),
        settled_at: r.4 .0,
        energy: Energy::from_mwh(r.5),
        export_energy: Energy::from_mwh(r.6),
        split: Split {
            gross: r.7 .0,
            platform_fee: r.8 .0,
            operator_payable: r.9 .0,
            parts: PlatformFeeParts::default(),
            v2g_driver_credit: r.10 .0,
            v2g_operator_share: r.11 .0,
        },
        id: r.0,
    })
}

type BillRow = (String, DbTime, i64, String, Json<DailyBill>);

fn bill_from_row(r: BillRow) -> StoredBill {
    StoredBill {
        id: r.0,
        issued_at: r.1 .0,
        lease_token: r.2,
        digest: r.3,
        bill: r.4 .0,
    }
}

const BILL_COLUMNS: &str = "SELECT id, issued_at, lease_token, digest, body FROM bills";

/// A bill by id.
pub async fn get_bill(store: &Store, id: &str) -> Result<Option<StoredBill>, BillsError> {
    let sql = format!("{BILL_COLUMNS} WHERE id = $1");
    let row: Option<BillRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(bill_from_row))
}

/// `operator`'s bill for `day`.
pub async fn bill_of_day(
    store: &Store,
    operator: &OperatorId,
    day: Date,
) -> Result<Option<StoredBill>, BillsError> {
    get_bill(store, &StoredBill::id_for(operator, day)).await
}

/// Which bills to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillFilter {
    /// `None`: every operator (admins).
    pub operator: Option<OperatorId>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub limit: usize,
}

/// Bills by day then operator, newest day first, at most [`limits::MAX_LIST`].
pub async fn list_bills(store: &Store, f: &BillFilter) -> Result<Vec<StoredBill>, BillsError> {
    let limit = i64::try_from(f.limit.clamp(1, limits::MAX_LIST)).unwrap_or(1);
    let sql = format!(
        "{BILL_COLUMNS} WHERE ($1 = '' OR operator_id = $1) AND day >= $2 AND day <= $3 \
         ORDER BY day DESC, operator_id LIMIT $4"
    );
    let op = f.operator.as_ref().map_or(String::new(), |o| o.to_string());
    let from = f.from.map_or("0000-00-00".to_owned(), |d| d.to_string());
    let to = f.to.map_or("9999-99-99".to_owned(), |d| d.to_string());
    let rows: Vec<BillRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&op)
            .bind(&from)
            .bind(&to)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(bill_from_row).collect())
}

/// The latest issued day of every operator that has a bill.
pub async fn last_issued_days(store: &Store) -> Result<Vec<(String, String)>, BillsError> {
    Ok(with_pool!(store, |pool, d| {
        sqlx::query_as("SELECT operator_id, MAX(day) FROM bills GROUP BY operator_id")
            .fetch_all(pool)
            .await?
    }))
}

/// The sessions of `operator` settled in `[from, end)` that are on no bill, at most
/// [`limits::MAX_SESSIONS_PER_BILL`] + 1 (the caller refuses a bill beyond the bound).
pub async fn unbilled_sessions(
    store: &Store,
    operator: &OperatorId,
    from: Timestamp,
    end: Timestamp,
) -> Result<Vec<SettledSession>, BillsError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM settlements s WHERE s.operator_id = $1 AND s.settled_at >= $2 AND s.settled_at < $3 \
         AND NOT EXISTS (SELECT 1 FROM bill_sessions b WHERE b.settlement_key = s.idem_key) LIMIT $4"
    );
    let limit = i64::try_from(limits::MAX_SESSIONS_PER_BILL + 1).unwrap_or(i64::MAX);
    // Planned afresh each time (not a cached generic plan): `bill_sessions` grows by a whole
    // day of sessions within one pass, and a plan made while it was empty (a nested loop over
    // a scan of it) turns quadratic once it is large.
    let rows: Vec<SessionRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .persistent(false)
            .bind(operator.as_str())
            .bind(DbTime::from(from))
            .bind(DbTime::from(end))
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(session_from_row).collect()
}

/// The sessions on bill `id`.
pub async fn sessions_of_bill(store: &Store, id: &str) -> Result<Vec<SettledSession>, BillsError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM bill_sessions b JOIN settlements s ON s.idem_key = b.settlement_key WHERE b.bill_id = $1"
    );
    let rows: Vec<SessionRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .persistent(false)
            .bind(id)
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(session_from_row).collect()
}

/// How many keys bill `id` holds.
pub async fn count_bill_sessions(store: &Store, id: &str) -> Result<u64, BillsError> {
    let (n,): (i64,) = with_pool!(store, |pool, d| {
        sqlx::query_as("SELECT COUNT(*) FROM bill_sessions WHERE bill_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?
    });
    Ok(u64::try_from(n).unwrap_or(0))
}

fn money_col(m: Money) -> DbMoney {
    DbMoney(m)
}

macro_rules! bill_sql {
    ($conn:ty, $db:ty, $backend:ident) => {
        use sqlx::types::Json;
        use sqlx::QueryBuilder;

        use super::super::error::BillsError;
        use super::super::limits::INSERT_CHUNK_ROWS;
        use super::{money_col, StoredBill};
        use crate::store::types::DbTime;
        use crate::webhooks::outbox::NewEvent;

        /// Whether `operator` has a bill for `day` already.
        pub async fn bill_exists(conn: &mut $conn, id: &str) -> Result<bool, BillsError> {
            let row: Option<(String,)> = sqlx::query_as("SELECT id FROM bills WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.is_some())
        }

        /// Writes the bill, its session keys and its events. A session already on a bill
        /// makes the insert fail (the caller rolls back: nothing is written).
        pub async fn insert_bill(
            conn: &mut $conn,
            b: &StoredBill,
            keys: &[&str],
            events: &[NewEvent],
        ) -> Result<(), BillsError> {
            let t = &b.bill.totals;
            sqlx::query(
                "INSERT INTO bills (id, operator_id, day, time_zone, period_start, period_end, sessions, adjustment_sessions, \
                 energy_in_mwh, energy_out_mwh, gross, platform_fees, operator_payable, v2g_payouts, v2g_operator_share, \
                 net_payable, body, digest, lease_token, issued_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(&b.id)
            .bind(b.bill.operator.as_str())
            .bind(b.bill.day.to_string())
            .bind(&b.bill.time_zone)
            .bind(DbTime::from(b.bill.bounds.start))
            .bind(DbTime::from(b.bill.bounds.end))
            .bind(i64::try_from(t.sessions).unwrap_or(i64::MAX))
            .bind(i64::try_from(b.bill.adjustment_sessions()).unwrap_or(i64::MAX))
            .bind(t.energy_in.mwh())
            .bind(t.energy_out.mwh())
            .bind(money_col(t.gross))
            .bind(money_col(t.platform_fees))
            .bind(money_col(t.operator_payable))
            .bind(money_col(t.v2g_driver_credits))
            .bind(money_col(t.v2g_operator_share))
            .bind(money_col(t.net_payable()))
            .bind(Json(&b.bill))
            .bind(&b.digest)
            .bind(b.lease_token)
            .bind(DbTime::from(b.issued_at))
            .execute(&mut *conn)
            .await?;
            for chunk in keys.chunks(INSERT_CHUNK_ROWS) {
                let mut qb =
                    QueryBuilder::<$db>::new("INSERT INTO bill_sessions (settlement_key, bill_id) ");
                qb.push_values(chunk.iter(), |mut row, k| {
                    row.push_bind(k.to_string()).push_bind(b.id.clone());
                });
                qb.build().execute(&mut *conn).await?;
            }
            crate::webhooks::outbox::$backend::insert_events(conn, events).await?;
            Ok(())
        }
    };
}

/// The in-transaction statements on SQLite.
pub mod sqlite {
    bill_sql!(sqlx::SqliteConnection, sqlx::Sqlite, sqlite);
}

/// The in-transaction statements on PostgreSQL.
pub mod postgres {
    bill_sql!(sqlx::PgConnection, sqlx::Postgres, postgres);
}

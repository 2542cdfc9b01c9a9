//! [`JobLease`]: one holder at a time for a scheduled job, across cloud instances, from a row
//! in the database (`job_leases`), with expiry and a fencing token.
//!
//! - **Acquire** is one statement: insert the row, or take it over if it has expired (or is
//!   already ours). Taking it over increments `token`. Whoever gets a row back holds the lease
//!   until `expires_at`.
//! - **Fence** runs inside each write transaction of the holder: `UPDATE ... SET expires_at =
//!   renewed WHERE token = ours AND expires_at > now`. If it changes no row, another instance
//!   has taken over (our lease expired while we were paused) and the transaction is rolled
//!   back with [`BillsError::LeaseLost`]. On PostgreSQL the update also locks the row until
//!   commit, so a taker waits and then sees the renewed expiry; on SQLite writers are
//!   serialised anyway. So a stale holder can never commit after a new holder got the lease.
//! - **Release** expires the row at once (only if the token is still ours).
//!
//! The lease only avoids duplicate work: exactly-once issuing is guaranteed by the bill
//! tables' unique keys even if two holders ever overlapped.
//!
//! It must never extend a lease whose token is not its own, and never trust a clock other than
//! the `now` it is given (all instants are compared in the database row's terms).

use jiff::{SignedDuration, Timestamp};

use super::error::BillsError;
use crate::store::types::DbTime;
use crate::store::{with_pool, Store};

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    pub name: String,
    pub holder: String,
    /// The fencing token: larger than every earlier holder's.
    pub token: i64,
    pub expires_at: Timestamp,
}

/// A named lease held for `ttl` at a time by `holder`.
#[derive(Debug, Clone)]
pub struct JobLease {
    store: Store,
    name: String,
    holder: String,
    ttl: SignedDuration,
}

impl JobLease {
    pub fn new(store: Store, name: &str, holder: &str, ttl: SignedDuration) -> JobLease {
        assert!(ttl > SignedDuration::ZERO, "a lease needs a positive ttl");
        JobLease {
            store,
            name: name.to_owned(),
            holder: holder.to_owned(),
            ttl,
        }
    }

    /// The holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> SignedDuration {
        self.ttl
    }

    /// Takes the lease if it is free, expired or already ours; `None` if another holds it.
    pub async fn try_acquire(&self, now: Timestamp) -> Result<Option<LeaseGrant>, BillsError> {
        let expires_at = now + self.ttl;
        let _turn = self.store.write_turn().await;
        let row: Option<(i64,)> = with_pool!(self.store, |pool, d| {
            sqlx::query_as(
                "INSERT INTO job_leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO UPDATE SET \
                   token = CASE WHEN job_leases.holder = excluded.holder AND job_leases.expires_at > $4 \
                                THEN job_leases.token ELSE job_leases.token + 1 END, \
                   holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE job_leases.expires_at <= $4 OR job_leases.holder = excluded.holder \
                 RETURNING token",
            )
            .bind(&self.name)
            .bind(&self.holder)
            .bind(DbTime::from(expires_at))
            .bind(DbTime::from(now))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(token,)| LeaseGrant {
            name: self.name.clone(),
            holder: self.holder.clone(),
            token,
            expires_at,
        }))
    }

    /// Who holds the lease now, if anyone: (holder, token, expiry).
    pub async fn current(
        &self,
        now: Timestamp,
    ) -> Result<Option<(String, i64, Timestamp)>, BillsError> {
        let row: Option<(String, i64, DbTime)> = with_pool!(self.store, |pool, d| {
            sqlx::query_as("SELECT holder, token, expires_at FROM job_leases WHERE name = $1 AND expires_at > $2")
                .bind(&self.name)
                .bind(DbTime::from(now))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(h, t, e)| (h, t, e.0)))
    }

    /// Gives the lease up (if still ours), so another instance need not wait for the expiry.
    pub async fn release(&self, grant: &LeaseGrant, now: Timestamp) -> Result<(), BillsError> {
        let _turn = self.store.write_turn().await;
        with_pool!(self.store, |pool, d| {
            sqlx::query("UPDATE job_leases SET expires_at = $1 WHERE name = $2 AND token = $3 AND holder = $4")
                .bind(DbTime::from(now))
                .bind(&grant.name)
                .bind(grant.token)
                .bind(&grant.holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

macro_rules! fence_sql {
    ($conn:ty) => {
        use super::super::error::BillsError;
        use super::super::lease::LeaseGrant;
        use crate::store::types::DbTime;

        /// Renews `grant` to `renew_until` inside the caller's transaction, or fails with
        /// [`BillsError::LeaseLost`] when the token is no longer current.
        pub async fn fence(
            conn: &mut $conn,
            grant: &LeaseGrant,
            now: jiff::Timestamp,
            renew_until: jiff::Timestamp,
        ) -> Result<(), BillsError> {
            let done = sqlx::query(
                "UPDATE job_leases SET expires_at = $1 WHERE name = $2 AND token = $3 AND expires_at > $4",
            )
            .bind(DbTime::from(renew_until))
            .bind(&grant.name)
            .bind(grant.token)
            .bind(DbTime::from(now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done == 1 {
                Ok(())
            } else {
                Err(BillsError::LeaseLost {
                    name: grant.name.clone(),
                    token: grant.token,
                })
            }
        }
    };
}

/// The fence on SQLite.
pub mod sqlite {
    fence_sql!(sqlx::SqliteConnection);
}

/// The fence on PostgreSQL.
pub mod postgres {
    fence_sql!(sqlx::PgConnection);
}

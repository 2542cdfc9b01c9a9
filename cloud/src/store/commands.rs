//! Commands to edges. They are stored before anything is published, so pending commands
//! survive a cloud restart: the publisher lists them with [`Store::pending_commands`] and
//! counts each publication with [`Store::record_dispatch_attempt`]. States change only as the
//! machine in [`crate::domain::command`] allows; a background task calls
//! [`Store::expire_overdue_commands`] to expire what was not answered in time (failing the
//! order of an expired start command).

use jiff::Timestamp;
use voltline_protocol::domain::{CommandId, SiteId};

use super::rows::{command_from_row, CommandRow};
use super::types::DbTime;
use super::{with_pool, CommandRecord, NewCommand, Store, StoreError, StoreResult};
use crate::domain::CommandState;

/// Most commands one call lists or expires (callers loop for more).
pub const MAX_COMMANDS_PER_CALL: u32 = 1_000;

#[cfg(test)]
const COMMAND_SELECT: &str = "SELECT id, site_id, order_id, kind, payload, state, reason, expires_at, created_at, updated_at, attempts FROM commands";

impl Store {
    /// Queues a command that belongs to no order (e.g. a reboot or a grid event).
    pub async fn enqueue_command(&self, new: &NewCommand) -> StoreResult<CommandRecord> {
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let cmd = ops::insert_command(&mut txn, new, now).await?;
            txn.commit().await?;
            Ok(cmd)
        })
    }

    /// A command by id.
    pub async fn get_command(&self, id: &CommandId) -> StoreResult<CommandRecord> {
        let cmd = with_pool!(self, |pool, d, ops| {
            let mut conn = pool.acquire().await?;
            ops::fetch_command(&mut conn, id.as_str()).await?
        });
        cmd.ok_or_else(|| StoreError::not_found("command", id))
    }

    /// Queued commands not yet expired at `now`, oldest first, for one site or all; at most
    /// `limit` (capped at [`MAX_COMMANDS_PER_CALL`]).
    pub async fn pending_commands(
        &self,
        site: Option<&SiteId>,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<CommandRecord>> {
        let limit = i64::from(limit.min(MAX_COMMANDS_PER_CALL));
        let now = DbTime::from(now);
        let rows: Vec<CommandRow> = with_pool!(self, |pool, d| match site {
            Some(site) => {
                sqlx::query_as(const_str::PENDING_FOR_SITE)
                    .bind(site.as_str())
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            None => {
                sqlx::query_as(const_str::PENDING_ALL)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        });
        rows.into_iter().map(command_from_row).collect()
    }

    /// Counts one publication of a queued command to its edge.
    pub async fn record_dispatch_attempt(
        &self,
        id: &CommandId,
        now: Timestamp,
    ) -> StoreResult<u32> {
        let attempts: Option<i64> = with_pool!(self, |pool, d| {
            sqlx::query_scalar(
                "UPDATE commands SET attempts = attempts + 1, last_attempt_at = $2, updated_at = $2 WHERE id = $1 RETURNING attempts",
            )
            .bind(id.as_str())
            .bind(DbTime::from(now))
            .fetch_optional(pool)
            .await?
        });
        let attempts = attempts.ok_or_else(|| StoreError::not_found("command", id))?;
        u32::try_from(attempts)
            .map_err(|_| StoreError::corrupt(format!("command {id}: attempts {attempts}")))
    }

    /// Moves a command to `to` if the state machine allows it from its current state, and
    /// applies the effect on its order (a start accepted → order charging; a start rejected,
    /// failed or expired → order failed). `reason` is kept for rejections and failures.
    pub async fn transition_command(
        &self,
        id: &CommandId,
        to: CommandState,
        reason: Option<&str>,
    ) -> StoreResult<CommandRecord> {
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let cmd = ops::fetch_command(&mut txn, id.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("command", id))?;
            let cmd = ops::change_command_state(&mut txn, cmd, to, reason, now)
                .await?
                .ok_or_else(|| {
                    StoreError::invalid(
                        "command transition",
                        format!("command {id} changed state concurrently: read it again and retry"),
                    )
                })?;
            txn.commit().await?;
            Ok(cmd)
        })
    }

    /// Expires every pending command whose expiry is at or before `now` (at most
    /// [`MAX_COMMANDS_PER_CALL`] per call), failing the orders of expired start commands, in
    /// one transaction. Returns the ids expired.
    pub async fn expire_overdue_commands(&self, now: Timestamp) -> StoreResult<Vec<CommandId>> {
        let now = DbTime::from(now);
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let rows: Vec<CommandRow> = sqlx::query_as(const_str::OVERDUE)
                .bind(now)
                .bind(i64::from(MAX_COMMANDS_PER_CALL))
                .fetch_all(&mut *txn)
                .await?;
            let mut expired = Vec::with_capacity(rows.len());
            for row in rows {
                let cmd = command_from_row(row)?;
                let id = cmd.id.clone();
                // Another instance's expiry job (or a result) may have got there first.
                if ops::change_command_state(&mut txn, cmd, CommandState::Expired, None, now)
                    .await?
                    .is_some()
                {
                    expired.push(id);
                }
            }
            txn.commit().await?;
            if !expired.is_empty() {
                tracing::info!(count = expired.len(), "expired overdue commands");
            }
            Ok(expired)
        })
    }
}

/// The listing statements (kept together so their column lists match [`CommandRow`]).
mod const_str {
    pub(super) const PENDING_FOR_SITE: &str = "SELECT id, site_id, order_id, kind, payload, state, reason, expires_at, created_at, updated_at, attempts \
         FROM commands WHERE site_id = $1 AND state = 'queued' AND expires_at > $2 ORDER BY created_at, id LIMIT $3";
    pub(super) const PENDING_ALL: &str = "SELECT id, site_id, order_id, kind, payload, state, reason, expires_at, created_at, updated_at, attempts \
         FROM commands WHERE state = 'queued' AND expires_at > $1 ORDER BY created_at, id LIMIT $2";
    pub(super) const OVERDUE: &str = "SELECT id, site_id, order_id, kind, payload, state, reason, expires_at, created_at, updated_at, attempts \
         FROM commands WHERE state IN ('queued', 'delivered') AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_select_the_command_columns() {
        for q in [
            const_str::PENDING_FOR_SITE,
            const_str::PENDING_ALL,
            const_str::OVERDUE,
        ] {
            assert!(q.starts_with(COMMAND_SELECT), "{q}");
        }
    }
}

//! Steps that run inside a caller's database transaction, written once and instantiated per
//! backend (`tx_fns!` below expands into [`sqlite`] and [`postgres`] with the concrete
//! connection type). The public methods in `orders.rs`, `commands.rs` and `ingest.rs` open the
//! transaction, call these, and commit: one transaction per request or per batch.

macro_rules! tx_fns {
    ($conn:ty) => {
        use sqlx::types::Json;

        use crate::domain::{CommandKind, CommandState, OrderEvent};
        use crate::store::rows::{
            command_from_row, order_from_row, CommandRow, OrderRow, COMMAND_BY_ID, ORDER_BY_ID,
        };
        use crate::store::types::{DbMoney, DbTime};
        use crate::store::{
            CommandRecord, NewCommand, NewOrder, Order, StoreError,
            StoreResult,
        };

        /// Inserts a new order in state `pending` (version 1). The caller checked the charger;
        /// a repeated id, idempotency key or serial is [`StoreError::Duplicate`].
        pub(crate) async fn insert_order(
            conn: &mut $conn,
            new: &NewOrder,
            now: DbTime,
        ) -> StoreResult<Order> {
            let pile = new.pile.to_string();
            sqlx::query(
                "INSERT INTO orders (id, account_id, site_id, pile_code, connector, kind, payment_method, limit_amount, \
                 limit_energy_mwh, state, hold_id, transaction_serial, idempotency_key, created_at, updated_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13, $13, 1)",
            )
            .bind(new.id.as_str())
            .bind(new.account.as_str())
            .bind(new.site.as_str())
            .bind(&pile)
            .bind(i64::from(new.connector.get()))
            .bind(new.kind.as_str())
            .bind(new.payment_method.to_text())
            .bind(new.limit.amount.map(DbMoney))
            .bind(new.limit.energy.map(|e| e.mwh()))
            .bind(new.hold_id.as_deref())
            .bind(new.transaction_serial.map(|s| s.to_string()))
            .bind(new.idempotency_key.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                let key = new.idempotency_key.as_deref().unwrap_or("-");
                StoreError::on_insert(e, "order (id, idempotency key or transaction serial)", &format!("{} / {key}", new.id))
            })?;
            Ok(crate::store::tx::stored_order(new, now))
        }

        /// An order by id.
        pub(crate) async fn fetch_order(conn: &mut $conn, id: &str) -> StoreResult<Option<Order>> {
            let row: Option<OrderRow> = sqlx::query_as(ORDER_BY_ID)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(order_from_row).transpose()
        }

        /// Applies `event` to the order when the state machine allows it. `Ok(None)` when it
        /// does not (the order stays as it is) or the order does not exist.
        pub(crate) async fn apply_order_event(
            conn: &mut $conn,
            id: &str,
            event: OrderEvent,
            now: DbTime,
        ) -> StoreResult<Option<Order>> {
            let Some(order) = fetch_order(conn, id).await? else {
                return Ok(None);
            };
            let Ok(next) = order.state.apply(order.kind, event) else {
                return Ok(None);
            };
            write_order_state(conn, order, next, now).await.map(Some)
        }

        /// Writes `next` over `order` if nobody changed it since it was read.
        pub(crate) async fn write_order_state(
            conn: &mut $conn,
            order: Order,
            next: crate::domain::OrderState,
            now: DbTime,
        ) -> StoreResult<Order> {
            let done = sqlx::query(
                "UPDATE orders SET state = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
            )
            .bind(next.as_str())
            .bind(now)
            .bind(order.id.as_str())
            .bind(order.version)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done == 0 {
                return Err(StoreError::VersionConflict {
                    what: "order",
                    id: order.id.to_string(),
                    expected: order.version,
                    found: order.version + 1,
                });
            }
            Ok(Order {
                state: next,
                version: order.version + 1,
                updated_at: now.0,
                ..order
            })
        }

        /// Stores a new command in state `queued`.
        pub(crate) async fn insert_command(
            conn: &mut $conn,
            new: &NewCommand,
            now: DbTime,
        ) -> StoreResult<CommandRecord> {
            let kind = CommandKind::of(&new.command);
            let expires_at = DbTime::from(new.expires_at);
            sqlx::query(
                "INSERT INTO commands (id, site_id, order_id, kind, payload, state, expires_at, created_at, updated_at, attempts) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $7, 0)",
            )
            .bind(new.id.as_str())
            .bind(new.site.as_str())
            .bind(new.order.as_ref().map(|o| o.as_str()))
            .bind(kind.as_str())
            .bind(Json(&new.command))
            .bind(expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| StoreError::on_insert(e, "command", new.id.as_str()))?;
            Ok(crate::store::tx::stored_command(new, now))
        }

        /// A command by id.
        pub(crate) async fn fetch_command(
            conn: &mut $conn,
            id: &str,
        ) -> StoreResult<Option<CommandRecord>> {
            let row: Option<CommandRow> = sqlx::query_as(COMMAND_BY_ID)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(command_from_row).transpose()
        }

        /// Moves `cmd` to `to` (checked by the state machine, written only if its state is
        /// still the one read) and applies what that means for its order. `Ok(None)` when
        /// another transaction changed the command first (the caller decides whether that is
        /// an error: it is for an API call, it is not for the expiry job or ingest).
        pub(crate) async fn change_command_state(
            conn: &mut $conn,
            cmd: CommandRecord,
            to: CommandState,
            reason: Option<&str>,
            now: DbTime,
        ) -> StoreResult<Option<CommandRecord>> {
            cmd.state.transition(to)?;
            let done = sqlx::query(
                "UPDATE commands SET state = $1, reason = COALESCE($2, reason), updated_at = $3 WHERE id = $4 AND state = $5",
            )
            .bind(to.as_str())
            .bind(reason)
            .bind(now)
            .bind(cmd.id.as_str())
            .bind(cmd.state.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if done == 0 {
                return Ok(None);
            }
            if let (Some(order), Some(event)) = (&cmd.order, cmd.kind.order_event(to)) {
                apply_order_event(conn, order.as_str(), event, now).await?;
            }
            Ok(Some(CommandRecord {
                state: to,
                reason: reason.map(str::to_owned).or(cmd.reason),
                updated_at: now.0,
                ..cmd
            }))
        }
    };
}

/// A new order as inserted at `now` (state `pending`, version 1): not read back.
pub(crate) fn stored_order(
    new: &crate::store::NewOrder,
    now: crate::store::types::DbTime,
) -> crate::store::Order {
    crate::store::Order {
        id: new.id.clone(),
        account: new.account.clone(),
        site: new.site.clone(),
        pile: new.pile,
        connector: new.connector,
        kind: new.kind,
        payment_method: new.payment_method.clone(),
        limit: new.limit,
        state: crate::domain::OrderState::Pending,
        hold_id: new.hold_id.clone(),
        transaction_serial: new.transaction_serial,
        idempotency_key: new.idempotency_key.clone(),
        created_at: now.0,
        updated_at: now.0,
        version: 1,
    }
}

/// A new command as inserted at `now` (state `queued`, no attempt yet): not read back.
pub(crate) fn stored_command(
    new: &crate::store::NewCommand,
    now: crate::store::types::DbTime,
) -> crate::store::CommandRecord {
    crate::store::CommandRecord {
        id: new.id.clone(),
        site: new.site.clone(),
        order: new.order.clone(),
        kind: crate::domain::CommandKind::of(&new.command),
        command: new.command.clone(),
        state: crate::domain::CommandState::Queued,
        reason: None,
        expires_at: crate::store::types::DbTime::from(new.expires_at).0,
        created_at: now.0,
        updated_at: now.0,
        attempts: 0,
    }
}

/// The order and start command as stored by a batch of session starts at `now`.
pub(crate) fn stored_start(
    new: &crate::store::NewOrder,
    cmd: &crate::store::NewCommand,
    now: crate::store::types::DbTime,
) -> (crate::store::Order, crate::store::CommandRecord) {
    (stored_order(new, now), stored_command(cmd, now))
}

/// The in-transaction steps on SQLite.
pub(crate) mod sqlite {
    tx_fns!(sqlx::SqliteConnection);
    crate::store::ingest_tx::ingest_fns!(sqlx::SqliteConnection, crate::store::ingest_sqlite);
}

/// The in-transaction steps on PostgreSQL.
pub(crate) mod postgres {
    tx_fns!(sqlx::PgConnection);
    crate::store::ingest_tx::ingest_fns!(sqlx::PgConnection, crate::store::ingest_postgres);
}

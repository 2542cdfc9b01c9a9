//! Commands from the cloud: stored before acknowledged, once.
//!
//! For each delivery, in this order: parse and check it (a malformed or foreign one is
//! counted and acknowledged, so the broker does not redeliver it forever); store it durably
//! with `Store::receive_command` (which deduplicates by id); only then acknowledge the MQTT
//! publish. A duplicate stops there. A new command that already expired is marked done and
//! reported `Expired`; any other new one is reported `Received` and handed to the site on the
//! bounded `commands` channel. If storing fails the delivery is not acknowledged: the broker
//! redelivers it on the next connection.
//!
//! It also acknowledges every other delivery the poll task handled, in its turn: MQTT
//! acknowledges QoS 1 deliveries in the order they arrived, and a broker may drop a client
//! that does not, so this task is the only one that acknowledges. Storing is retried a few
//! times before a delivery is left unacknowledged (the broker then cuts the link and
//! redelivers everything not acknowledged, in order).
//!
//! This task never waits on the poll task (acks are `try_ack`), so the poll task may wait on
//! this one.

use std::sync::Arc;

use jiff::Timestamp;
use rumqttc::{AsyncClient, Publish};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::sync::{CommandEnvelope, CommandOutcome, CommandResult, RecordBody};

use super::mqtt::{ack, Delivery};
use super::wire;
use super::Ctx;
use crate::store::{CommandStatus, GroupCommitter, NewRecord, Received};

/// How many times a command is offered to the store before it is left unacknowledged.
const STORE_ATTEMPTS: u32 = 3;
/// The wait before the first retry; the n-th retry waits n times as long.
const STORE_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// The command task.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    client: AsyncClient,
    committer: GroupCommitter,
    mut rx: mpsc::Receiver<Delivery>,
    commands: mpsc::Sender<CommandEnvelope>,
    shutdown: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            d = rx.recv() => match d {
                Some(d) => d,
                None => return,
            },
        };
        let p = match delivery {
            Delivery::Handled(p) => {
                ack(&ctx, &client, &p);
                continue;
            }
            Delivery::Command(p) => p,
        };
        let Some(env) = store_and_ack(&ctx, &client, &committer, &p, &shutdown).await else {
            continue;
        };
        if commands.is_closed() {
            // Stored and acknowledged: the site picks it up from the inbox when it starts.
            continue;
        }
        tokio::select! {
            r = commands.send(env) => if r.is_err() {
                tracing::warn!("uplink: the site stopped taking commands; it re-reads open commands at start");
            },
            () = shutdown.cancelled() => return,
        }
    }
}

/// Stores and acknowledges one delivery; returns the command if the site should act on it.
async fn store_and_ack(
    ctx: &Ctx,
    client: &AsyncClient,
    committer: &GroupCommitter,
    p: &Publish,
    shutdown: &CancellationToken,
) -> Option<CommandEnvelope> {
    let env = match wire::parse_command(&ctx.cfg.site, &p.payload) {
        Ok(env) => env,
        Err(reason) => {
            ctx.metrics.commands_malformed.inc();
            tracing::warn!(%reason, "uplink: command refused");
            ack(ctx, client, p);
            return None;
        }
    };
    let mut attempt = 0;
    let (now, received) = loop {
        let now = Timestamp::now();
        match ctx.store.receive_command(env.clone(), now).await {
            Err(e) if attempt + 1 < STORE_ATTEMPTS => {
                attempt += 1;
                ctx.metrics.internal_errors.inc();
                tracing::warn!(command = %env.id, error = %e, attempt, "uplink: command not stored; retrying");
                tokio::select! {
                    () = tokio::time::sleep(STORE_RETRY * attempt) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
            r => break (now, r),
        }
    };
    match received {
        Err(e) => {
            ctx.metrics.internal_errors.inc();
            tracing::error!(command = %env.id, error = %e, "uplink: command not stored, so not acknowledged; the cloud's broker redelivers it");
            None
        }
        Ok(Received::Duplicate(status)) => {
            ctx.metrics.commands_duplicate.inc();
            tracing::debug!(command = %env.id, ?status, "uplink: command delivered again; acknowledged, not acted on");
            ack(ctx, client, p);
            None
        }
        Ok(Received::New) => {
            ctx.metrics.commands_received.inc();
            ack(ctx, client, p);
            if env.is_expired(now) {
                ctx.metrics.commands_expired.inc();
                tracing::info!(command = %env.id, expires_at = %env.expires_at, "uplink: command expired before it arrived");
                if let Err(e) = ctx.store.set_command_status(&env.id, CommandStatus::Done) {
                    ctx.metrics.internal_errors.inc();
                    tracing::error!(command = %env.id, error = %e, "uplink: could not mark the command done");
                }
                report(ctx, committer, &env, CommandOutcome::Expired, now).await;
                return None;
            }
            report(ctx, committer, &env, CommandOutcome::Received, now).await;
            Some(env)
        }
    }
}

/// Appends the command's result record and waits until it is durable.
async fn report(
    ctx: &Ctx,
    committer: &GroupCommitter,
    env: &CommandEnvelope,
    outcome: CommandOutcome,
    now: Timestamp,
) {
    let record = NewRecord::new(
        now,
        RecordBody::CommandResult(CommandResult {
            command_id: env.id.clone(),
            outcome,
        }),
    );
    let appended = match committer.submit(vec![record]).await {
        Ok(ticket) => ticket.durable().await,
        Err(e) => Err(e),
    };
    match appended {
        Ok(_) => {
            ctx.metrics.records_appended.inc();
        }
        Err(e) => {
            ctx.metrics.internal_errors.inc();
            tracing::error!(command = %env.id, error = %e, "uplink: command result not stored");
        }
    }
}

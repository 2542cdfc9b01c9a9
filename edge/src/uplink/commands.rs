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
//! This task never waits on the poll task (acks are `try_ack`), so the poll task may wait on
//! this one.

use std::sync::Arc;

use jiff::Timestamp;
use rumqttc::{AsyncClient, Publish};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::sync::{CommandEnvelope, CommandOutcome, CommandResult, RecordBody};

use super::mqtt::ack;
use super::wire;
use super::Ctx;
use crate::store::{CommandStatus, GroupCommitter, NewRecord, Received};

/// The command task.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    client: AsyncClient,
    committer: GroupCommitter,
    mut rx: mpsc::Receiver<Publish>,
    commands: mpsc::Sender<CommandEnvelope>,
    shutdown: CancellationToken,
) {
    loop {
        let p = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            p = rx.recv() => match p {
                Some(p) => p,
                None => return,
            },
        };
        let Some(env) = store_and_ack(&ctx, &client, &committer, &p).await else {
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
    let now = Timestamp::now();
    match ctx.store.receive_command(env.clone(), now).await {
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

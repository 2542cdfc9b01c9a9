//! The command dispatcher: publishes queued commands to their edges and expires the overdue.
//!
//! Commands live in the store from the moment the API accepts them, so nothing is lost when
//! the cloud restarts: the dispatcher simply lists [`Store::pending_commands`] again. Each
//! tick (every `dispatch_interval_ms`, or at once when the API queues a command):
//!
//! 1. [`Store::expire_overdue_commands`] expires what its edge did not take in time; for each,
//!    watchers are told and the hold of an expired start is voided through
//!    [`Funds`](crate::funds::Funds) (via [`AppState::after_command_change`]).
//! 2. Every queued command not published within `redeliver_after_ms` is published (QoS 1) to
//!    its site's command topic through a [`CommandSink`] and counted with
//!    [`Store::record_dispatch_attempt`]. The edge deduplicates by command id, so publishing
//!    twice (after a restart, or a lost acknowledgement) is harmless. A command leaves the
//!    queue when the edge reports it received.
//!
//! [`Store::pending_commands`]: crate::Store::pending_commands
//! [`Store::expire_overdue_commands`]: crate::Store::expire_overdue_commands
//! [`Store::record_dispatch_attempt`]: crate::Store::record_dispatch_attempt

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jiff::Timestamp;
use voltline_protocol::domain::CommandId;
use voltline_protocol::sync::CommandEnvelope;

use crate::state::AppState;
use crate::store::commands::MAX_COMMANDS_PER_CALL;

/// Why a command could not be handed to the broker.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot publish command: {0}")]
pub struct PublishError(pub String);

/// Where commands go (the MQTT side implements it; tests may record).
pub trait CommandSink: Send + Sync + 'static {
    /// Hands `envelope` to the broker for its site's command topic, QoS 1.
    fn publish(&self, envelope: CommandEnvelope) -> BoxFuture<'_, Result<(), PublishError>>;
}

/// Runs until the state's shutdown. `sink` is `None` when MQTT is disabled: commands are then
/// only expired (an edge could poll them over HTTP in a later version).
pub async fn run(state: AppState, sink: Option<Arc<dyn CommandSink>>) {
    let interval = Duration::from_millis(state.config.sessions.dispatch_interval_ms);
    let redeliver = Duration::from_millis(state.config.sessions.redeliver_after_ms);
    let mut published: HashMap<CommandId, Instant> = HashMap::new();
    let mut last_expiry: Option<Instant> = None;
    loop {
        // Expiry is a write transaction: run it on the interval only, not on every wake-up
        // (under load the API wakes the dispatcher for each command it queues).
        if last_expiry.is_none_or(|at| at.elapsed() >= interval) {
            expire(&state, &mut published).await;
            last_expiry = Some(Instant::now());
        }
        publish(&state, sink.as_deref(), &mut published, redeliver).await;
        tokio::select! {
            () = state.shutdown.wait() => return,
            () = state.dispatch_now.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Expires overdue commands, then tells watchers and voids the holds of expired starts.
pub async fn expire(state: &AppState, published: &mut HashMap<CommandId, Instant>) {
    match state.store.expire_overdue_commands(Timestamp::now()).await {
        Ok(expired) => {
            for id in &expired {
                published.remove(id);
                state.after_command_change(id).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not expire overdue commands; retrying next tick")
        }
    }
}

/// Publishes every queued command not published within `redeliver`.
pub async fn publish(
    state: &AppState,
    sink: Option<&dyn CommandSink>,
    published: &mut HashMap<CommandId, Instant>,
    redeliver: Duration,
) {
    let Some(sink) = sink else { return };
    let pending = match state
        .store
        .pending_commands(None, Timestamp::now(), MAX_COMMANDS_PER_CALL)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not list pending commands; retrying next tick");
            return;
        }
    };
    // Forget commands no longer queued (a set: up to MAX_COMMANDS_PER_CALL of each).
    let queued: HashSet<&CommandId> = pending.iter().map(|c| &c.id).collect();
    published.retain(|id, _| queued.contains(id));
    for cmd in pending {
        if published
            .get(&cmd.id)
            .is_some_and(|at| at.elapsed() < redeliver)
        {
            continue;
        }
        if let Err(e) = sink.publish(cmd.envelope()).await {
            tracing::warn!(command = %cmd.id, error = %e, "publish failed; retrying next tick");
            return;
        }
        state.metrics.command_published();
        published.insert(cmd.id.clone(), Instant::now());
        if let Err(e) = state
            .store
            .record_dispatch_attempt(&cmd.id, Timestamp::now())
            .await
        {
            tracing::warn!(command = %cmd.id, error = %e, "could not count a dispatch attempt");
        }
    }
}

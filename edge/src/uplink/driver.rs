//! The driver: the task that sends records and reacts to the link, acks and the durable head.
//! It asks the pure [`Window`] what to do and does the I/O: reading the outbox, publishing
//! batches, trimming on acks, the status message, subscriptions, and the HTTP replay on a
//! connect with a large backlog.
//!
//! It publishes with `AsyncClient::publish`, which waits only while rumqttc's request queue
//! is full; the queue is sized above the window (see [`super::mqtt::client`]), and this task
//! never polls the event loop, so the wait cannot deadlock.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rumqttc::{AsyncClient, QoS, SubscribeFilter};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voltline_protocol::topics::{self, SiteChannel};

use super::replay::{self, ReplayEnd};
use super::window::{AckOutcome, Window, WindowConfig};
use super::wire;
use super::{Ctx, LinkState, UplinkState};

/// After a store read fails, wait this long before trying again.
const READ_RETRY: Duration = Duration::from_secs(1);

struct Driver {
    ctx: Arc<Ctx>,
    client: AsyncClient,
    window: Window,
    state: watch::Sender<UplinkState>,
    records_topic: String,
    /// The generation of the connection the subscriptions and status were made on.
    generation: u64,
    connected: bool,
    /// Retry a failed store read no earlier than this.
    read_retry_at: Option<Instant>,
    /// Connected and subscribed, waiting for the SUBACK until this instant before going live
    /// (so that "live" means commands can arrive too).
    live_pending: Option<Instant>,
}

/// The driver task.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    client: AsyncClient,
    mut link: watch::Receiver<LinkState>,
    mut acks: watch::Receiver<u64>,
    state: watch::Sender<UplinkState>,
    shutdown: CancellationToken,
) {
    let cfg = &ctx.cfg;
    let window = Window::new(
        WindowConfig {
            max_inflight: cfg.window_batches,
            max_records: cfg.batch_max_records,
            linger: Duration::from_millis(cfg.linger_ms),
            ack_timeout: Duration::from_millis(cfg.ack_timeout_ms.max(1)),
        },
        ctx.store.ledger().acked,
        ctx.store.durable_head(),
    );
    let mut durable = ctx.store.watch_durable();
    let mut d = Driver {
        records_topic: topics::site(&cfg.site, SiteChannel::Records),
        ctx: ctx.clone(),
        client,
        window,
        state,
        generation: 0,
        connected: false,
        read_retry_at: None,
        live_pending: None,
    };
    d.set_state(UplinkState::Down);
    loop {
        d.send_what_is_due().await;
        d.update_gauges();
        let deadline = [d.window.next_deadline(), d.read_retry_at, d.live_pending]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = link.changed() => {
                if r.is_err() {
                    break;
                }
                let l = *link.borrow_and_update();
                if !d.on_link(l, &shutdown).await {
                    break;
                }
            }
            r = acks.changed() => {
                if r.is_err() {
                    break;
                }
                let up_to = *acks.borrow_and_update();
                d.on_ack(up_to).await;
            }
            r = durable.changed() => {
                if r.is_err() {
                    break;
                }
                let head = *durable.borrow_and_update();
                d.window.on_durable(head);
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
        }
        if d.live_pending.is_some_and(|t| Instant::now() >= t) {
            tracing::warn!("uplink: the broker did not acknowledge the subscriptions in time; going live anyway");
            if !d.go_live(&shutdown).await {
                break;
            }
        }
    }
    d.stop();
}

impl Driver {
    fn set_state(&self, s: UplinkState) {
        self.ctx.metrics.set_uplink(s);
        self.state.send_if_modified(|cur| {
            let changed = *cur != s;
            if changed {
                tracing::info!(site = %self.ctx.cfg.site, state = ?s, "uplink state");
                *cur = s;
            }
            changed
        });
    }

    fn update_gauges(&self) {
        let l = self.ctx.store.ledger();
        let m = &self.ctx.metrics;
        m.outbox_depth
            .set(i64::try_from(l.head - l.acked).unwrap_or(i64::MAX));
        m.outbox_bytes
            .set(i64::try_from(l.bytes).unwrap_or(i64::MAX));
    }

    /// Reacts to the link. Returns false when the uplink is stopping.
    async fn on_link(&mut self, l: LinkState, shutdown: &CancellationToken) -> bool {
        if !l.connected {
            self.connected = false;
            self.live_pending = None;
            self.window.set_live(false);
            self.set_state(UplinkState::Down);
            return true;
        }
        if l.generation == self.generation && self.connected {
            if self.live_pending.is_some() && l.subscribed == self.generation {
                return self.go_live(shutdown).await;
            }
            return true;
        }
        self.generation = l.generation;
        self.connected = true;
        self.window.set_live(false);
        // Always (re)subscribe: a broker that kept the session ignores the repeat, one that
        // lost it (or a first connect) needs it.
        let site = &self.ctx.cfg.site;
        let filters = [
            SiteChannel::Acks,
            SiteChannel::Commands,
            SiteChannel::Config,
        ]
        .into_iter()
        .map(|c| SubscribeFilter::new(topics::site(site, c), QoS::AtLeastOnce));
        if let Err(e) = self.client.subscribe_many(filters).await {
            tracing::warn!(error = %e, "uplink: subscribe failed");
        }
        let online = wire::status(site, true, Some(Timestamp::now()));
        let status_topic = topics::site(site, SiteChannel::Status);
        if let Err(e) = self
            .client
            .publish(status_topic, QoS::AtLeastOnce, true, online)
            .await
        {
            tracing::warn!(error = %e, "uplink: online status not published");
        }
        // Live once the SUBACK arrives (a later link change), or at this deadline.
        self.live_pending =
            Some(Instant::now() + Duration::from_secs(self.ctx.cfg.connect_timeout_s.max(1)));
        true
    }

    /// Subscribed: replays the backlog over HTTP if it is large, then sends live. Returns
    /// false when the uplink is stopping.
    async fn go_live(&mut self, shutdown: &CancellationToken) -> bool {
        self.live_pending = None;
        self.window.on_durable(self.ctx.store.durable_head());
        if self.window.backlog() > self.ctx.cfg.replay_threshold_records {
            self.set_state(UplinkState::Replaying);
            match replay::run(&self.ctx, &mut self.window, shutdown).await {
                ReplayEnd::Done | ReplayEnd::Failed => {}
                ReplayEnd::Cancelled => return false,
            }
        }
        self.window.set_live(true);
        self.set_state(UplinkState::Live);
        true
    }

    async fn on_ack(&mut self, up_to: u64) {
        self.ctx.metrics.acks_received.inc();
        match self.window.on_ack(up_to) {
            AckOutcome::Advanced { up_to } => trim(&self.ctx, up_to).await,
            AckOutcome::Stale => {}
            AckOutcome::BeyondSent { up_to, durable } => {
                self.ctx.metrics.uplink_rejected.inc();
                tracing::error!(
                    up_to,
                    durable,
                    "uplink: the cloud acknowledged records this edge never sent; check that the site id and the store belong together"
                );
            }
        }
    }

    /// Sends every batch the window allows now.
    async fn send_what_is_due(&mut self) {
        let now = Instant::now();
        if self.read_retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.read_retry_at = None;
        if self.window.check_timeout(now) {
            self.ctx.metrics.uplink_resends.inc();
            tracing::warn!(
                acked = self.window.acked(),
                "uplink: no ack in time; sending again from the acknowledged mark"
            );
        }
        while let Some(plan) = self.window.next_send(now) {
            let limit = plan.after + plan.max_records as u64;
            let read = self
                .ctx
                .store
                .unacked_raw_after(plan.after, plan.max_records);
            let mut records = match read {
                Ok(r) => r,
                Err(e) => {
                    self.ctx.metrics.internal_errors.inc();
                    tracing::error!(error = %e, "uplink: could not read the outbox");
                    self.read_retry_at = Some(now + READ_RETRY);
                    return;
                }
            };
            records.retain(|(seq, _)| *seq <= limit);
            let Some(batch) = wire::encode_batch(
                &self.ctx.cfg.site,
                &records,
                Timestamp::now(),
                self.ctx.cfg.batch_max_bytes,
            ) else {
                // Acknowledged meanwhile (an HTTP replay or a late ack): nothing to send.
                self.window.skip_to(limit);
                continue;
            };
            let (first, last, n) = (batch.first, batch.last, batch.records);
            if let Err(e) = self
                .client
                .publish(
                    self.records_topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    batch.json,
                )
                .await
            {
                self.ctx.metrics.internal_errors.inc();
                tracing::error!(error = %e, "uplink: the MQTT client is gone");
                self.read_retry_at = Some(now + READ_RETRY);
                return;
            }
            self.window.on_sent(first, last, now);
            self.ctx.metrics.records_sent_mqtt.inc_by(n as u64);
            tracing::debug!(first, last, "uplink: batch sent");
        }
    }

    /// Graceful stop: the offline status (retained), then DISCONNECT (which cancels the will).
    fn stop(&mut self) {
        if self.connected {
            let site = &self.ctx.cfg.site;
            let offline = wire::status(site, false, Some(Timestamp::now()));
            let topic = topics::site(site, SiteChannel::Status);
            if let Err(e) = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, offline)
            {
                tracing::warn!(error = %e, "uplink: offline status not queued; the broker's last will reports it");
            }
            let _ = self.client.try_disconnect();
        }
        self.window.set_live(false);
        self.set_state(UplinkState::Down);
    }
}

/// Trims the outbox up to the cloud's ack (off the async threads: a large trim is many
/// writes).
pub(super) async fn trim(ctx: &Ctx, up_to: u64) {
    let store = ctx.store.clone();
    match tokio::task::spawn_blocking(move || store.ack_up_to(up_to)).await {
        Ok(Ok(removed)) => tracing::debug!(up_to, removed, "uplink: outbox trimmed"),
        Ok(Err(e)) => {
            ctx.metrics.internal_errors.inc();
            tracing::error!(error = %e, up_to, "uplink: trim failed");
        }
        Err(e) => {
            ctx.metrics.internal_errors.inc();
            tracing::error!(error = %e, "uplink: trim task failed");
        }
    }
}

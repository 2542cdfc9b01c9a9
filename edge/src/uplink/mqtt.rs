//! The MQTT connection: client options and the poll task.
//!
//! The poll task only drives `EventLoop::poll` and sorts what arrives: acks and config
//! notices go to watch channels (never blocking), command deliveries to the bounded command
//! queue (the command task stores them and never waits on this task, so waiting here is
//! backpressure, not a deadlock), and its only requests are non-blocking `try_ack`s. It never
//! publishes. On an error it reports the link down, drops the stale record publishes rumqttc
//! kept for retransmission (the driver re-sends from the acknowledged mark itself), and sleeps
//! a jittered backoff before polling again (which reconnects).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Request,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voltline_protocol::topics::{self, SiteChannel};

use super::backoff::Backoff;
use super::wire::{self, Inbound};
use super::{Ctx, LinkState, UplinkConfig};

/// How long shutdown waits for the offline status and DISCONNECT to go out.
const DRAIN: Duration = Duration::from_secs(2);

/// Requests other than record batches that can be queued at once: subscriptions, status,
/// disconnect and acks of acks/notices.
const SPARE_REQUESTS: usize = 64;

/// Builds the client and its event loop.
pub(super) fn client(cfg: &UplinkConfig) -> (AsyncClient, EventLoop) {
    let id = cfg.site.as_str();
    let mut o = MqttOptions::new(id, cfg.mqtt_host.clone(), cfg.mqtt_port);
    o.set_credentials(id, cfg.credential.clone());
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(1)));
    o.set_manual_acks(true);
    // Record batches in flight plus the status message.
    o.set_inflight(u16::try_from(cfg.window_batches + 8).unwrap_or(u16::MAX));
    let max_out = cfg.batch_max_bytes.saturating_add(4_096).max(1 << 20);
    o.set_max_packet_size(1 << 20, max_out);
    o.set_last_will(LastWill::new(
        topics::site(&cfg.site, SiteChannel::Status),
        wire::status(&cfg.site, false, None),
        QoS::AtLeastOnce,
        true,
    ));
    // Sized above what can be queued at once (the window, one ack per queued command, the
    // spare requests), so `publish` and `try_ack` never wait on or fail for the poll task.
    let cap = cfg.window_batches + cfg.command_queue + SPARE_REQUESTS;
    let (client, mut eventloop) = AsyncClient::new(o, cap);
    let mut net = eventloop.network_options();
    net.set_connection_timeout(cfg.connect_timeout_s.max(1));
    eventloop.set_network_options(net);
    (client, eventloop)
}

/// Where the poll task hands what arrives.
pub(super) struct Outlets {
    pub link: watch::Sender<LinkState>,
    /// The highest ack seen.
    pub acks: watch::Sender<u64>,
    /// The highest config version announced.
    pub notices: watch::Sender<u64>,
    /// Every delivery, in receive order, to the command task, which alone acknowledges them
    /// (MQTT acknowledges QoS 1 deliveries in the order they arrived; a broker may drop a
    /// client that acknowledges out of order).
    pub deliveries: mpsc::Sender<Delivery>,
}

/// A delivery on its way to be acknowledged.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A command: stored first, then acknowledged.
    Command(Publish),
    /// Anything else, already handled: acknowledged in its turn.
    Handled(Publish),
}

/// The poll task.
pub(super) async fn poll(
    ctx: Arc<Ctx>,
    mut eventloop: EventLoop,
    out: Outlets,
    shutdown: CancellationToken,
) {
    let cfg = &ctx.cfg;
    let records_topic = topics::site(&cfg.site, SiteChannel::Records);
    let mut backoff = Backoff::new(cfg.backoff_base_ms, cfg.backoff_cap_ms);
    let mut connected = false;
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() && shutdown.is_cancelled() {
            if !connected {
                return;
            }
            drain_until = Some(Instant::now() + DRAIN);
        }
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled(), if drain_until.is_none() => continue,
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(Instant::now)), if drain_until.is_some() => {
                tracing::warn!("uplink: the offline status did not go out before the drain deadline");
                return;
            }
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                backoff.reset();
                ctx.contact();
                tracing::info!(
                    site = %cfg.site,
                    broker = %format_args!("{}:{}", cfg.mqtt_host, cfg.mqtt_port),
                    session_present = ack.session_present,
                    "uplink connected"
                );
                out.link.send_modify(|l| {
                    l.generation += 1;
                    l.connected = true;
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                ctx.contact();
                if !dispatch(&ctx, &out, p, &shutdown).await {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                ctx.contact();
                out.link.send_modify(|l| l.subscribed = l.generation);
            }
            Ok(Event::Incoming(_)) => ctx.contact(),
            Ok(Event::Outgoing(Outgoing::Disconnect))
                if drain_until.is_some() || shutdown.is_cancelled() =>
            {
                return
            }
            Ok(Event::Outgoing(_)) => {}
            Err(e) => {
                if connected {
                    out.link.send_modify(|l| l.connected = false);
                }
                connected = false;
                ctx.metrics.uplink_failures.inc();
                // The driver re-sends from the acknowledged mark; rumqttc's own copies of
                // record batches would only be duplicates.
                eventloop
                    .pending
                    .retain(|r| !matches!(r, Request::Publish(p) if p.topic == records_topic));
                if drain_until.is_some() || shutdown.is_cancelled() {
                    return;
                }
                let delay = backoff.next_delay(&mut rand::rng());
                tracing::warn!(
                    error = %e,
                    failures = backoff.failures(),
                    retry_in_ms = delay.as_millis() as u64,
                    "uplink: MQTT connection to the cloud failed"
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Hands one incoming message on. Returns false when the uplink is stopping.
async fn dispatch(ctx: &Ctx, out: &Outlets, p: Publish, shutdown: &CancellationToken) -> bool {
    let raise = |w: &watch::Sender<u64>, v: u64| {
        w.send_if_modified(|cur| {
            let up = v > *cur;
            if up {
                *cur = v;
            }
            up
        });
    };
    let delivery = match wire::classify(&ctx.cfg.site, &p.topic, &p.payload) {
        Inbound::Command => Delivery::Command(p),
        Inbound::Ack(up_to) => {
            raise(&out.acks, up_to);
            Delivery::Handled(p)
        }
        Inbound::ConfigNotice(version) => {
            raise(&out.notices, version);
            Delivery::Handled(p)
        }
        Inbound::Rejected(reason) => {
            ctx.metrics.uplink_rejected.inc();
            tracing::warn!(topic = %p.topic, %reason, "uplink: cloud message refused");
            Delivery::Handled(p)
        }
    };
    if let Delivery::Handled(p) = &delivery {
        if p.qos == QoS::AtMostOnce {
            return true; // nothing to acknowledge
        }
    }
    // Acknowledged by the command task, after every earlier delivery.
    tokio::select! {
        r = out.deliveries.send(delivery) => r.is_ok(),
        () = shutdown.cancelled() => false,
    }
}

/// Acknowledges a delivery without waiting. A failure (queue full or closed) leaves the
/// message to be redelivered on the next connection, where it is handled idempotently.
pub(super) fn ack(ctx: &Ctx, client: &AsyncClient, p: &Publish) {
    if let Err(e) = client.try_ack(p) {
        ctx.metrics.internal_errors.inc();
        tracing::warn!(topic = %p.topic, error = %e, "uplink: could not acknowledge a delivery; it will be redelivered");
    }
}

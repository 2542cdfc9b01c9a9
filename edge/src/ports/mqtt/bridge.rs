//! The site's side of the embedded broker: one rumqttd local link subscribed to every pile's
//! up topic (each message is exactly one frame, decoded here and handed to the site with the
//! connection that sent it, and `Disconnected` after a closed connection's last frame), and one outbound thread that publishes the site's frames
//! to `pile_down(pile)`.
//!
//! The outbound side runs on its own thread because a local link's `publish` blocks while
//! the router's queue is full; the site never waits for it (its [`PileSender`]s only
//! `try_send` into the bounded queue this thread drains). Local links publish into the
//! router at QoS 0; the router delivers at the subscriber's QoS (1 for chargers).
//!
//! Must never: pass an undecodable message to the site, or send a frame meant for a
//! connection that has since closed or been superseded (both counted instead).
//!
//! [`PileSender`]: crate::ports::PileSender

use std::sync::Arc;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::Notification;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::topics::{self, PileChannel};
use voltline_protocol::{frame, PileCode};

use super::Sessions;
use crate::ops::metrics::{EdgeMetrics, Port, PortLabels, ReasonLabels};
use crate::ports::{EventSink, Outbound, PortEvent};

/// Subscribes the site's link to every pile's frames.
pub fn subscribe(link_tx: &mut LinkTx) -> Result<(), String> {
    link_tx
        .subscribe(topics::all_piles_up())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn dropped_in(metrics: &EdgeMetrics, reason: &'static str) {
    metrics
        .frames_in_dropped
        .get_or_create(&ReasonLabels {
            port: Port::Mqtt,
            reason,
        })
        .inc();
}

/// Receives every pile's messages until `shutdown` or the site's channel closes.
pub async fn inbound(
    mut link_rx: LinkRx,
    sessions: Arc<Sessions>,
    events: EventSink,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            n = link_rx.next() => n,
        };
        let forward = match next {
            Ok(Some(Notification::Forward(f))) => f,
            Ok(Some(Notification::Unschedule)) => {
                // The router paused us because our buffer filled: tell it we read it.
                if link_rx.wake().await.is_err() {
                    return;
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "MQTT bridge: the broker's router is gone");
                metrics.internal_errors.inc();
                return;
            }
        };
        let Some(pile) = up_topic_pile(&forward.publish.topic) else {
            metrics.decode_error(Port::Mqtt, "bad_topic");
            continue;
        };
        let Some((conn, last)) = sessions.deliver(&pile) else {
            dropped_in(&metrics, "not_connected");
            continue;
        };
        match frame::decode(&forward.publish.payload) {
            Ok(frame) => {
                metrics.frame_in(Port::Mqtt, frame.frame_type());
                let event = PortEvent::Frame {
                    pile,
                    conn,
                    port: Port::Mqtt,
                    frame,
                };
                if events.send(event).await.is_err() {
                    dropped_in(&metrics, "site_closed");
                    return;
                }
            }
            Err(e) => metrics.decode_error(Port::Mqtt, e.kind().as_str()),
        }
        if last {
            // The connection closed and this was its last message.
            let event = PortEvent::Disconnected {
                pile,
                conn,
                port: Port::Mqtt,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// Publishes the site's frames to piles, on the calling (dedicated) thread, until `shutdown`
/// or every sender is gone.
pub fn outbound(
    mut link_tx: LinkTx,
    mut rx: mpsc::Receiver<Outbound>,
    sessions: Arc<Sessions>,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
) {
    let labels = PortLabels { port: Port::Mqtt };
    futures::executor::block_on(async {
        loop {
            let out = tokio::select! {
                () = shutdown.cancelled() => return,
                o = rx.recv() => match o { Some(o) => o, None => return },
            };
            if sessions.current(&out.pile) != Some(out.conn) {
                // Closed or superseded since the site queued it.
                metrics.frames_out_dropped.get_or_create(&labels).inc();
                continue;
            }
            let bytes = match out.frame.to_bytes() {
                Ok(b) => b.freeze(),
                Err(e) => {
                    tracing::warn!(error = %e, pile = %out.pile, "frame for an MQTT pile cannot be encoded; dropped");
                    metrics.frames_out_dropped.get_or_create(&labels).inc();
                    continue;
                }
            };
            match link_tx.publish(topics::pile_down(&out.pile), bytes) {
                Ok(_) => {
                    metrics.frames_out.get_or_create(&labels).inc();
                }
                Err(e) => {
                    tracing::error!(error = %e, "MQTT bridge: cannot publish; the broker's router is gone");
                    metrics.internal_errors.inc();
                    return;
                }
            }
        }
    });
    drain(&mut rx, &metrics, &labels);
}

fn drain(rx: &mut mpsc::Receiver<Outbound>, metrics: &EdgeMetrics, labels: &PortLabels) {
    rx.close();
    let mut left = 0;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        metrics
            .frames_out_dropped
            .get_or_create(labels)
            .inc_by(left);
    }
}

/// The pile an up topic names (`None` for anything else).
pub fn up_topic_pile(topic: &[u8]) -> Option<PileCode> {
    match std::str::from_utf8(topic)
        .ok()
        .and_then(topics::parse_pile_topic)
    {
        Some((pile, PileChannel::Up)) => Some(pile),
        _ => None,
    }
}

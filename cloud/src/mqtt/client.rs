//! The cloud's MQTT client (`rumqttc`), for the embedded broker and for external ones.
//!
//! Three tasks, so that no task both polls the event loop and waits on it:
//! - the **poll** task drives the event loop: on each connection (ConnAck) it has the
//!   subscriptions renewed, hands incoming publishes to the ingest task over a bounded channel
//!   (backpressure: when ingest lags, polling waits, and the broker holds the edge's QoS 1
//!   messages), and on errors sleeps a jittered exponential backoff before polling again
//!   (which reconnects);
//! - the **ingest** task parses each message, applies record batches
//!   ([`crate::sync::apply_batch`]) and queues the ack;
//! - the **publish** task owns all outgoing traffic (acks, commands, config notices) from a
//!   bounded channel; `AsyncClient::publish` waits while rumqttc's request queue is full.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use voltline_protocol::sync::{CommandEnvelope, RecordBatch, SiteStatus, MAX_MQTT_BATCH_RECORDS};
use voltline_protocol::topics::{self, SiteChannel};

use crate::dispatch::{CommandSink, PublishError};
use crate::state::AppState;
use crate::sync::apply_batch;

/// Incoming messages waiting for ingest.
const INGEST_QUEUE: usize = 256;
/// Outgoing messages waiting for the client.
const PUBLISH_QUEUE: usize = 1_024;
/// rumqttc's own request queue.
const CLIENT_QUEUE: usize = 1_024;
/// Reconnect backoff bounds.
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 10_000;

/// Where and how the cloud connects.
#[derive(Debug, Clone)]
pub struct Link {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: String,
    pub password: String,
    /// Subscribe with `$share/voltline-cloud/...` (several cloud instances).
    pub shared: bool,
}

struct Outgoing {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    done: Option<oneshot::Sender<Result<(), PublishError>>>,
}

/// Publishes commands through the publish task.
struct Sink(mpsc::Sender<Outgoing>);

impl CommandSink for Sink {
    fn publish(&self, envelope: CommandEnvelope) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async move {
            let payload = serde_json::to_vec(&envelope).map_err(|e| PublishError(e.to_string()))?;
            let (done, answer) = oneshot::channel();
            self.0
                .send(Outgoing {
                    topic: topics::site(&envelope.site, SiteChannel::Commands),
                    payload,
                    retain: false,
                    done: Some(done),
                })
                .await
                .map_err(|_| PublishError("the MQTT client has stopped".into()))?;
            answer
                .await
                .map_err(|_| PublishError("the MQTT client has stopped".into()))?
        })
    }
}

/// Starts the client's tasks; returns the sink for commands.
pub fn start(state: AppState, link: Link) -> Arc<dyn CommandSink> {
    let mut options = MqttOptions::new(link.client_id.clone(), link.host.clone(), link.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    let max = state.config.mqtt.max_payload_bytes;
    options.set_max_packet_size(max, max);
    if !link.username.is_empty() {
        options.set_credentials(link.username.clone(), link.password.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(options, CLIENT_QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<(String, Vec<u8>)>(INGEST_QUEUE);
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(PUBLISH_QUEUE);

    let filters: Vec<String> = [SiteChannel::Records, SiteChannel::Status]
        .into_iter()
        .map(|c| {
            if link.shared {
                topics::shared_all_sites(c)
            } else {
                topics::all_sites(c)
            }
        })
        .collect();

    // Poll task.
    let shutdown = state.shutdown.clone();
    let sub_client = client.clone();
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                () = shutdown.wait() => return,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    tracing::info!(host = %link.host, port = link.port, "MQTT connected");
                    let c = sub_client.clone();
                    let filters = filters.clone();
                    tokio::spawn(async move {
                        for f in filters {
                            if let Err(e) = c.subscribe(f.clone(), QoS::AtLeastOnce).await {
                                tracing::warn!(filter = %f, error = %e, "MQTT subscribe failed");
                            }
                        }
                    });
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if in_tx
                        .send((p.topic.clone(), p.payload.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff_ms(failures);
                    tracing::warn!(error = %e, retry_in_ms = delay, "MQTT connection lost");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(delay)) => {}
                        () = shutdown.wait() => return,
                    }
                }
            }
        }
    });

    tokio::spawn(ingest_task(state.clone(), in_rx, out_tx.clone()));
    tokio::spawn(publish_task(state.clone(), client, out_rx));
    tokio::spawn(config_notice_task(state, out_tx.clone()));
    Arc::new(Sink(out_tx))
}

/// Exponential backoff with full jitter, from 100 ms to 10 s.
fn backoff_ms(failures: u32) -> u64 {
    let ceiling = BACKOFF_MIN_MS
        .saturating_mul(1u64 << failures.min(10))
        .min(BACKOFF_MAX_MS);
    rand::rng().random_range(BACKOFF_MIN_MS..=ceiling.max(BACKOFF_MIN_MS))
}

async fn ingest_task(
    state: AppState,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
    out: mpsc::Sender<Outgoing>,
) {
    while let Some((topic, payload)) = rx.recv().await {
        let Some((site, channel)) = topics::parse_site_topic(&topic) else {
            state.metrics.ingest_rejected("mqtt");
            tracing::warn!(%topic, "message on a topic that is not a site topic; dropped");
            continue;
        };
        match channel {
            SiteChannel::Records => {
                let batch: RecordBatch = match serde_json::from_slice(&payload) {
                    Ok(b) => b,
                    Err(e) => {
                        state.metrics.ingest_rejected("mqtt");
                        tracing::warn!(%site, error = %e, "malformed record batch; dropped");
                        continue;
                    }
                };
                match apply_batch(&state, &site, &batch, MAX_MQTT_BATCH_RECORDS, "mqtt").await {
                    Ok(ack) => {
                        let Ok(payload) = serde_json::to_vec(&ack) else {
                            continue;
                        };
                        let msg = Outgoing {
                            topic: topics::site(&site, SiteChannel::Acks),
                            payload,
                            retain: false,
                            done: None,
                        };
                        if out.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(%site, error = %e, "record batch not applied"),
                }
            }
            SiteChannel::Status => match serde_json::from_slice::<SiteStatus>(&payload) {
                Ok(s) if s.site == site => {
                    metrics::gauge!("voltline_edge_online", "site" => site.to_string())
                        .set(if s.online { 1.0 } else { 0.0 });
                    tracing::info!(%site, online = s.online, "edge status");
                }
                Ok(_) | Err(_) => {
                    state.metrics.ingest_rejected("mqtt");
                    tracing::warn!(%site, "malformed or foreign site status; dropped");
                }
            },
            _ => {}
        }
    }
}

async fn publish_task(state: AppState, client: AsyncClient, mut rx: mpsc::Receiver<Outgoing>) {
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => break },
            () = state.shutdown.wait() => break,
        };
        let result = client
            .publish(msg.topic, QoS::AtLeastOnce, msg.retain, msg.payload)
            .await
            .map_err(|e| PublishError(e.to_string()));
        if let Some(done) = msg.done {
            let _ = done.send(result);
        }
    }
    let _ = client.disconnect().await;
}

async fn config_notice_task(state: AppState, out: mpsc::Sender<Outgoing>) {
    let mut rx = state.config_notices.subscribe();
    loop {
        let notice = tokio::select! {
            n = rx.recv() => n,
            () = state.shutdown.wait() => return,
        };
        let notice = match notice {
            Ok(n) => n,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Ok(payload) = serde_json::to_vec(&notice) else {
            continue;
        };
        let msg = Outgoing {
            topic: topics::site(&notice.site, SiteChannel::Config),
            payload,
            retain: true,
            done: None,
        };
        if out.send(msg).await.is_err() {
            return;
        }
    }
}

//! The test "cloud": an MQTT client that collects record batches and acknowledges the highest
//! contiguous sequence (like the real cloud's ingest), publishes commands and config notices,
//! and watches the site's status; plus a small axum server for the HTTP replay and config
//! routes. Both paths commit into one [`CloudState`], deduplicating by sequence.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{
    Ack, Record, RecordBatch, SiteConfigDoc, SiteStatus, MAX_HTTP_BATCH_RECORDS,
    MAX_MQTT_BATCH_RECORDS,
};
use voltline_protocol::topics::{self, SiteChannel};

use super::SECRET;

/// Which way a batch came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Mqtt,
    Http,
}

/// What the cloud saw.
#[derive(Debug, Default)]
pub struct CloudState {
    /// First arrival of each sequence.
    pub records: BTreeMap<u64, Record>,
    /// Highest contiguous committed sequence.
    pub contiguous: u64,
    /// Every batch, in arrival order: (path, first, last).
    pub batches: Vec<(Via, u64, u64)>,
    /// Record deliveries including duplicates.
    pub deliveries: u64,
    /// Acknowledge batches (set false to hold acks back).
    pub hold_acks: bool,
    pub statuses: Vec<SiteStatus>,
    /// Content-Encoding of every HTTP replay request.
    pub http_encodings: Vec<String>,
    /// The document served at GET config.
    pub config: Option<SiteConfigDoc>,
    pub config_gets: u64,
    /// Answer every replay request with 503.
    pub http_down: bool,
}

impl CloudState {
    fn commit(&mut self, via: Via, batch: RecordBatch) -> u64 {
        if let (Some(f), Some(l)) = (batch.records.first(), batch.records.last()) {
            self.batches.push((via, f.seq, l.seq));
        }
        for r in batch.records {
            self.deliveries += 1;
            self.records.entry(r.seq).or_insert(r);
        }
        while self.records.contains_key(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        self.contiguous
    }
}

pub type Shared = Arc<Mutex<CloudState>>;

/// The test cloud.
pub struct Cloud {
    pub site: SiteId,
    pub state: Shared,
    pub http: SocketAddr,
    out: mpsc::UnboundedSender<(String, Vec<u8>, bool)>,
}

impl Cloud {
    /// Connects to `broker`, subscribes to the site's records and status, and serves HTTP.
    pub async fn start(broker: SocketAddr, site: &SiteId) -> Cloud {
        let state: Shared = Arc::default();
        let http = serve_http(state.clone(), site.clone()).await;
        let id = format!("test-cloud-{site}-{:08x}", rand::random::<u32>());
        let mut o = MqttOptions::new(id, broker.ip().to_string(), broker.port());
        o.set_credentials("test-cloud", "x");
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, 256);
        let (out, mut out_rx) = mpsc::unbounded_channel::<(String, Vec<u8>, bool)>();
        let (subscribed_tx, mut subscribed) = mpsc::channel::<()>(4);
        let records_topic = topics::site(site, SiteChannel::Records);
        let status_topic = topics::site(site, SiteChannel::Status);
        let acks_topic = topics::site(site, SiteChannel::Acks);
        let (st, s, ack_out) = (state.clone(), site.clone(), out.clone());
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == records_topic {
                            let batch: RecordBatch = serde_json::from_slice(&p.payload).unwrap();
                            batch.validate(&s, MAX_MQTT_BATCH_RECORDS).unwrap();
                            let mut g = st.lock().unwrap();
                            let up_to = g.commit(Via::Mqtt, batch);
                            if !g.hold_acks {
                                let ack = serde_json::to_vec(&Ack::new(s.clone(), up_to)).unwrap();
                                let _ = ack_out.send((acks_topic.clone(), ack, false));
                            }
                        } else if p.topic == status_topic {
                            // An empty retained message clears the status; skip it.
                            if let Ok(status) = serde_json::from_slice::<SiteStatus>(&p.payload) {
                                st.lock().unwrap().statuses.push(status);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let sub = client.clone();
        tokio::spawn(async move {
            while let Some((topic, payload, retain)) = out_rx.recv().await {
                if sub
                    .publish(topic, QoS::AtLeastOnce, retain, payload)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        for t in [SiteChannel::Records, SiteChannel::Status] {
            client
                .subscribe(topics::site(site, t), QoS::AtLeastOnce)
                .await
                .unwrap();
        }
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(5), subscribed.recv())
                .await
                .expect("the test cloud could not subscribe");
        }
        Cloud {
            site: site.clone(),
            state,
            http,
            out,
        }
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Publishes `payload` on the site's `channel`.
    pub fn publish(&self, channel: SiteChannel, payload: Vec<u8>) {
        self.out
            .send((topics::site(&self.site, channel), payload, false))
            .unwrap();
    }

    /// Holds acks back or lets them go (sending the current one at once).
    pub fn set_hold_acks(&self, hold: bool) {
        let up_to = {
            let mut g = self.state.lock().unwrap();
            g.hold_acks = hold;
            g.contiguous
        };
        if !hold && up_to > 0 {
            let ack = serde_json::to_vec(&Ack::new(self.site.clone(), up_to)).unwrap();
            self.publish(SiteChannel::Acks, ack);
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, CloudState> {
        self.state.lock().unwrap()
    }
}

async fn serve_http(state: Shared, site: SiteId) -> SocketAddr {
    let app = axum::Router::new()
        .route("/v1/edges/{site}/records", post(post_records))
        .route("/v1/edges/{site}/config", get(get_config))
        .with_state((state, site));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET}"))
}

async fn post_records(
    State((state, site)): State<(Shared, SiteId)>,
    Path(path_site): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Ack>, StatusCode> {
    if !authorised(&headers) || path_site != site.as_str() {
        return Err(StatusCode::FORBIDDEN);
    }
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut json = Vec::new();
    if encoding == "gzip" {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut json)
            .map_err(|_| StatusCode::BAD_REQUEST)?;
    } else {
        json = body.to_vec();
    }
    let batch: RecordBatch =
        serde_json::from_slice(&json).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    batch
        .validate(&site, MAX_HTTP_BATCH_RECORDS)
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    let mut g = state.lock().unwrap();
    if g.http_down {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    g.http_encodings.push(encoding);
    let up_to = g.commit(Via::Http, batch);
    Ok(axum::Json(Ack::new(site, up_to)))
}

async fn get_config(
    State((state, site)): State<(Shared, SiteId)>,
    Path(path_site): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<SiteConfigDoc>, StatusCode> {
    if !authorised(&headers) || path_site != site.as_str() {
        return Err(StatusCode::FORBIDDEN);
    }
    let mut g = state.lock().unwrap();
    g.config_gets += 1;
    g.config
        .clone()
        .map(axum::Json)
        .ok_or(StatusCode::NOT_FOUND)
}

//! The harness platform over MQTT: subscribes to every pile's uplink, publishes to downlinks.

use std::time::Duration;

use tokio::sync::mpsc;
use voltline_protocol::domain::PileCode;
use voltline_protocol::frame::Frame;
use voltline_protocol::message::Message;

use super::{auto_reply, HarnessConfig, HarnessError, FRAME_QUEUE};

/// The platform side over MQTT: subscribes to every pile's uplink, publishes to downlinks.
/// A background task polls the connection and answers automatically, as [`super::PileConn`] does.
pub struct MqttPlatform {
    client: rumqttc::AsyncClient,
    frames: mpsc::Receiver<(PileCode, Frame)>,
    poller: tokio::task::JoinHandle<()>,
    seq: u16,
}

impl MqttPlatform {
    /// Connects to `broker` (`host:port`) as `client_id` and subscribes to every pile's uplink.
    pub async fn connect(
        broker: &str,
        client_id: &str,
        config: HarnessConfig,
    ) -> Result<MqttPlatform, HarnessError> {
        use rumqttc::{Event, Packet, QoS};
        let (host, port) = broker
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
            .ok_or_else(|| HarnessError::Mqtt(format!("broker '{broker}' must be host:port")))?;
        let mut opts = rumqttc::MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 256);
        client
            .try_subscribe(voltline_protocol::topics::all_piles_up(), QoS::AtLeastOnce)
            .map_err(|e| HarnessError::Mqtt(e.to_string()))?;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(HarnessError::Mqtt(e.to_string())),
            }
        }
        let (tx, rx) = mpsc::channel(FRAME_QUEUE);
        let answerer = client.clone();
        let poller = tokio::spawn(async move {
            let mut serials = 0u16;
            loop {
                let Ok(event) = events.poll().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let Event::Incoming(Packet::Publish(p)) = event else {
                    continue;
                };
                let Some((pile, _)) = voltline_protocol::topics::parse_pile_topic(&p.topic) else {
                    continue;
                };
                let Ok(frame) = voltline_protocol::frame::decode(&p.payload) else {
                    continue;
                };
                serials = serials.wrapping_add(1) % 10_000;
                if let Some(m) = auto_reply(&config, &frame, serials) {
                    if let Ok(bytes) = Frame::new(frame.sequence, m).to_bytes() {
                        let _ = answerer.try_publish(
                            voltline_protocol::topics::pile_down(&pile),
                            QoS::AtLeastOnce,
                            false,
                            bytes.freeze(),
                        );
                    }
                }
                if tx.try_send((pile, frame)).is_err() && tx.is_closed() {
                    return;
                }
            }
        });
        Ok(MqttPlatform {
            client,
            frames: rx,
            poller,
            seq: 0,
        })
    }

    /// The next frame from any pile (already auto-answered).
    pub async fn next(&mut self) -> Result<(PileCode, Frame), HarnessError> {
        self.frames
            .recv()
            .await
            .ok_or_else(|| HarnessError::Mqtt("the connection task stopped".into()))
    }

    /// Reads frames until `pick` returns `Some`, for at most `timeout`.
    pub async fn expect<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&PileCode, &Frame) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let search = async {
            loop {
                let (pile, f) = self.next().await?;
                if let Some(t) = pick(&pile, &f) {
                    return Ok(t);
                }
            }
        };
        tokio::time::timeout(timeout, search)
            .await
            .map_err(|_| HarnessError::Timeout(timeout, what.to_string()))?
    }

    /// Publishes a frame to a pile's downlink; returns its sequence number.
    pub fn send(&mut self, pile: &PileCode, msg: impl Into<Message>) -> Result<u16, HarnessError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let bytes = Frame::new(seq, msg).to_bytes()?;
        self.client
            .try_publish(
                voltline_protocol::topics::pile_down(pile),
                rumqttc::QoS::AtLeastOnce,
                false,
                bytes.freeze(),
            )
            .map_err(|e| HarnessError::Mqtt(e.to_string()))?;
        Ok(seq)
    }
}

impl Drop for MqttPlatform {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

//! MQTT: one client per pile on the edge's broker, username = pile code, QoS 1; frames go up
//! on `topics::pile_up` and come down on `topics::pile_down`, one frame per message.
//!
//! rumqttc's event loop is polled only inside [`MqttLink::recv`], which the charger task
//! always has pending; publishes use `try_publish` on a bounded request queue so a slow
//! broker can never block the state machine (a frame lost that way is resent by the
//! protocol when it matters: records until confirmed, reports on schedule).

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use voltline_protocol::domain::PileCode;
use voltline_protocol::{frame, topics};

use super::Incoming;

/// Requests queued towards the broker.
const REQUEST_QUEUE: usize = 64;
/// MQTT keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

pub struct MqttLink {
    client: AsyncClient,
    events: EventLoop,
    up: String,
    down: String,
}

impl MqttLink {
    pub async fn connect(
        broker: &str,
        pile: &PileCode,
        password: &str,
    ) -> Result<MqttLink, String> {
        let (host, port) = broker
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
            .ok_or_else(|| format!("MQTT broker '{broker}' must be host:port"))?;
        let mut opts = MqttOptions::new(format!("pile-{pile}"), host, port);
        opts.set_credentials(pile.to_string(), password.to_string());
        opts.set_keep_alive(KEEP_ALIVE);
        opts.set_clean_session(true);
        opts.set_max_packet_size(4 * 1024, 4 * 1024);
        let (client, mut events) = AsyncClient::new(opts, REQUEST_QUEUE);
        let down = topics::pile_down(pile);
        let up = topics::pile_up(pile);
        // Connect, then subscribe, then wait for the subscription to be acknowledged.
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("MQTT connect to {broker}: {e}")),
            }
        }
        client
            .try_subscribe(&down, QoS::AtLeastOnce)
            .map_err(|e| format!("MQTT subscribe {down}: {e}"))?;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("MQTT subscribe {down}: {e}")),
            }
        }
        Ok(MqttLink {
            client,
            events,
            up,
            down,
        })
    }

    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == self.down => {
                    return match frame::decode(&p.payload) {
                        Ok(f) => Incoming::Frame(f),
                        Err(e) => Incoming::Bad(e),
                    };
                }
                Ok(Event::Incoming(Packet::Disconnect)) => {
                    return Incoming::Closed("broker sent DISCONNECT".into())
                }
                Ok(_) => {}
                Err(e) => return Incoming::Closed(format!("MQTT: {e}")),
            }
        }
    }

    pub fn write(&mut self, bytes: Bytes) -> Result<(), String> {
        self.client
            .try_publish(&self.up, QoS::AtLeastOnce, false, bytes)
            .map_err(|e| format!("MQTT publish queue: {e}"))
    }

    pub async fn close(self) {
        let _ = self.client.try_disconnect();
        let mut events = self.events;
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while events.poll().await.is_ok() {}
        })
        .await;
    }
}

//! The MQTT side: edges publish record batches and their status, the cloud answers with acks,
//! commands and configuration notices. Topics come from `voltline_protocol::topics` only.
//!
//! Two modes, one code path for the traffic ([`client`]):
//! - **embedded** (default): `rumqttd` runs in this process ([`broker`]); each edge logs in
//!   with client id = username = its site id and its site's edge credential or an edge
//!   bearer token of that site (both checked against the store's hashes); the cloud itself logs in with a random per-process internal
//!   credential. **Limitation:** rumqttd 0.20 has no per-client topic ACL, so an
//!   authenticated edge could *publish* to another site's topics. What the cloud enforces: it
//!   refuses a batch whose `site` field differs from the site in its topic, and commits and
//!   acknowledges records only for the topic's site — a rogue edge can at most publish
//!   records naming the other site on that site's topic, which needs that site's records
//!   to be well-formed and still only advances that site's sequence. An edge could also
//!   *subscribe* to another site's command topic. Deployments that need hard isolation use
//!   an external broker with ACLs (Mosquitto `acl_file` pattern `%u`), or HTTP sync, which
//!   checks the site of every route against the edge token.
//! - **external**: the cloud joins any MQTT broker as a client and subscribes with shared
//!   subscriptions (`$share/voltline-cloud/...`) so several cloud instances split the sites.

pub mod broker;
pub mod client;

use std::sync::Arc;

use crate::config::MqttMode;
use crate::dispatch::CommandSink;
use crate::state::AppState;

/// Why the MQTT side could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("embedded MQTT broker failed to start: {0}; check that mqtt.listen is free")]
    Broker(String),
    #[error("MQTT client: {0}")]
    Client(String),
}

/// Starts the MQTT side as configured; returns the command sink for the dispatcher (`None`
/// when MQTT is disabled). Its tasks stop at the state's shutdown (the embedded broker's
/// threads live until the process exits: rumqttd has no stop).
pub async fn start(state: &AppState) -> Result<Option<Arc<dyn CommandSink>>, MqttError> {
    let cfg = &state.config.mqtt;
    match cfg.mode {
        MqttMode::Disabled => Ok(None),
        MqttMode::Embedded => {
            let internal = broker::start_embedded(state)?;
            let link = client::Link {
                host: cfg.listen.ip().to_string(),
                port: cfg.listen.port(),
                client_id: internal.username.clone(),
                username: internal.username,
                password: internal.password,
                shared: false,
            };
            Ok(Some(client::start(state.clone(), link)))
        }
        MqttMode::External => {
            let link = client::Link {
                host: cfg.broker_host.clone(),
                port: cfg.broker_port,
                client_id: cfg.client_id.clone(),
                username: cfg.username.clone(),
                password: cfg.password.clone(),
                shared: true,
            };
            Ok(Some(client::start(state.clone(), link)))
        }
    }
}

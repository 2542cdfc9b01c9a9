//! The embedded `rumqttd` broker for edges, with per-site credentials.
//!
//! An edge logs in with client id = username = its site id, and as password either the
//! site's edge credential (answered once by `POST /v1/sites`) or an edge bearer token for
//! that site (`voltline-cloud token create --role edge --subject SITE`, `vlt_...`): the latter
//! lets an edge use one secret for MQTT and for its HTTP sync routes. A token of another
//! site, a revoked or expired one, or a token of another role is refused.
//!
//! rumqttd calls the auth hook on its own runtime thread; the store's pools belong to the
//! cloud's runtime, so the hook does not query the store itself: it asks a small task on the
//! cloud's runtime over a bounded channel and waits for the answer. The cloud's own client
//! logs in with a random credential made at start, known only to this process.

use std::collections::HashMap;
use std::time::Duration;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::sync::{mpsc, oneshot};
use voltline_protocol::domain::SiteId;

use super::MqttError;
use crate::domain::Actor;
use crate::state::AppState;

/// Logins waiting for the store.
const AUTH_QUEUE: usize = 1_024;
/// Most concurrent MQTT connections.
const MAX_CONNECTIONS: usize = 10_010;

/// The cloud's own login at the embedded broker.
pub struct InternalLogin {
    pub username: String,
    pub password: String,
}

struct AuthAsk {
    site: SiteId,
    secret: String,
    reply: oneshot::Sender<bool>,
}

/// Starts rumqttd on `mqtt.listen` in its own thread.
pub fn start_embedded(state: &AppState) -> Result<InternalLogin, MqttError> {
    let internal = InternalLogin {
        username: format!("voltline-cloud-{}", uuid::Uuid::new_v4().simple()),
        password: crate::store::tokens::new_secret(),
    };
    let (tx, mut rx) = mpsc::channel::<AuthAsk>(AUTH_QUEUE);
    let store = state.store.clone();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let ask = tokio::select! {
                ask = rx.recv() => match ask { Some(a) => a, None => return },
                () = shutdown.wait() => return,
            };
            let ok = if ask.secret.starts_with("vlt_") {
                store
                    .verify_token(&ask.secret, jiff::Timestamp::now())
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|actor| actor == Actor::Edge(ask.site.clone()))
            } else {
                store
                    .verify_edge_credential(&ask.site, &ask.secret)
                    .await
                    .unwrap_or(false)
            };
            let _ = ask.reply.send(ok);
        }
    });
    let (user, pass) = (internal.username.clone(), internal.password.clone());
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: state.config.mqtt.max_payload_bytes,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(
        move |client_id: String, username: String, password: String| {
            let tx = tx.clone();
            let internal = username == user && password == pass;
            async move {
                if internal {
                    return true;
                }
                // An edge logs in as its site, with client id = username = site id.
                let Ok(site) = SiteId::new(&username) else {
                    return false;
                };
                if client_id != username {
                    return false;
                }
                let (reply, answer) = oneshot::channel();
                if tx
                    .send(AuthAsk {
                        site,
                        secret: password,
                        reply,
                    })
                    .await
                    .is_err()
                {
                    return false;
                }
                tokio::time::timeout(Duration::from_secs(5), answer)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(false)
            }
        },
    );
    let server = ServerSettings {
        name: "edges".into(),
        listen: state.config.mqtt.listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: MAX_CONNECTIONS,
            max_outgoing_packet_count: 200,
            // rumqttd keeps an in-memory log per subscription filter; bound it (16 MiB for
            // the records filter) so memory stays flat under steady ingest. Nothing is lost
            // when a lagging cloud misses a rotated segment: the cloud acknowledges only
            // what it committed, and the edge resends everything above that.
            max_segment_size: 4 * 1024 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("edges".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("voltline-mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| MqttError::Broker(e.to_string()))?;
    Ok(internal)
}

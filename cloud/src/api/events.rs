//! Live changes: every order and command change goes to an in-process broadcast channel, and
//! `GET /v1/events` (WebSocket) forwards to each caller only the changes it may read — the
//! same `can(actor, Read, resource)` rule as the polling routes, with the owners carried on
//! the event so no lookup is needed per subscriber.
//!
//! The channel is bounded ([`EVENT_BUFFER`]); a subscriber that falls further behind is told
//! how many events it missed (a `lagged` message) and should poll to catch up.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tokio::sync::broadcast;
use voltline_protocol::domain::{AccountId, OperatorId};

use super::extract::Caller;
use super::views::{CommandView, OrderView};
use super::AppState;
use crate::domain::{can, Action, Actor, Resource};

/// Events buffered for slow subscribers.
pub const EVENT_BUFFER: usize = 4_096;

/// A change someone may watch.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    Order(OrderView),
    Command(CommandView),
}

/// A change with the owners that decide who sees it.
#[derive(Debug, Clone)]
pub struct Event {
    pub body: EventBody,
    pub account: Option<AccountId>,
    pub operator: OperatorId,
}

impl Event {
    /// True if `actor` may read what this event shows.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        let resource = match &self.body {
            EventBody::Order(_) => match &self.account {
                Some(account) => Resource::Order {
                    account: account.clone(),
                    operator: self.operator.clone(),
                },
                None => return matches!(actor, Actor::Admin),
            },
            EventBody::Command(_) => Resource::Command {
                account: self.account.clone(),
                operator: self.operator.clone(),
            },
        };
        can(actor, Action::Read, &resource)
    }
}

/// The broadcaster.
#[derive(Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Events(broadcast::channel(EVENT_BUFFER).0)
    }
}

impl Events {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, event: Event) {
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

/// `GET /v1/events`: upgrades to a WebSocket that streams the caller's events as JSON text.
pub async fn events(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ws: WebSocketUpgrade,
) -> Response {
    let rx = state.events.subscribe();
    let shutdown = state.shutdown.clone();
    ws.on_upgrade(move |socket| stream(socket, rx, actor, shutdown))
}

async fn stream(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Event>,
    actor: Actor,
    shutdown: crate::shutdown::Shutdown,
) {
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok(event) => {
                    if !event.visible_to(&actor) {
                        continue;
                    }
                    let Ok(text) = serde_json::to_string(&event.body) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let text = format!(r#"{{"type":"lagged","missed":{n}}}"#);
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = shutdown.wait() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}

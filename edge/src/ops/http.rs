//! The operations endpoint: `/metrics` (Prometheus text), `/healthz` (liveness, with the
//! figures an operator looks at first) and `/readyz` (503 while the site cannot take new
//! sessions: the store refuses them, or no charger port is up).
//!
//! It reads shared state only; it never changes the site.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::{render, UplinkState};
use crate::connector::Admission;
use crate::site::SiteView;
use crate::store::Store;

/// What the endpoint reads.
#[derive(Clone)]
pub struct OpsState {
    pub registry: Arc<Registry>,
    pub store: Store,
    pub site: watch::Receiver<SiteView>,
    pub uplink: watch::Receiver<UplinkState>,
    pub ports_up: bool,
}

/// The `/healthz` body.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub uplink: &'static str,
    pub piles_connected: usize,
    pub sessions: usize,
    pub outbox_unacked: u64,
    pub outbox_bytes: u64,
    pub outbox_bound_bytes: u64,
    pub accepting_sessions: bool,
}

fn uplink_name(s: UplinkState) -> &'static str {
    match s {
        UplinkState::Down => "down",
        UplinkState::Replaying => "replaying",
        UplinkState::Live => "live",
    }
}

fn health(state: &OpsState) -> Health {
    let view = *state.site.borrow();
    let ledger = state.store.ledger();
    let accepting = state.store.admission() == Admission::Open;
    let uplink = *state.uplink.borrow();
    Health {
        status: if accepting && state.ports_up {
            "ok"
        } else {
            "degraded"
        },
        uplink: uplink_name(uplink),
        piles_connected: view.piles_connected,
        sessions: view.sessions,
        outbox_unacked: ledger.head.saturating_sub(ledger.acked),
        outbox_bytes: ledger.bytes,
        outbox_bound_bytes: state.store.config().max_bytes,
        accepting_sessions: accepting,
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&state.registry),
    )
        .into_response()
}

async fn healthz(State(state): State<OpsState>) -> Json<Health> {
    Json(health(&state))
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let h = health(&state);
    let code = if h.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(h)).into_response()
}

/// The router.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: OpsState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds the endpoint.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

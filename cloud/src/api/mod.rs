//! The HTTP API (`axum`).
//!
//! One table, [`routes`], lists every route with its method, path, summary and handler; the
//! router is built from it and so is the OpenAPI document at `/openapi.json`, so the two cannot
//! drift apart (a test also walks the document against the running server).
//!
//! Every route except `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and the payment
//! providers' notify callbacks (verified by the providers' signatures instead) takes a bearer
//! token ([`extract::Caller`]) and asks `domain::can` before touching anything. Every error
//! is a problem-details document ([`error::ApiError`]), including axum's own rejections and
//! unknown routes. Layers: request decompression (gzip edge batches) under a body limit that
//! applies to the decompressed bytes, a request timeout (503), tracing, and an HTTP latency
//! histogram per route.

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub mod accounts;
pub mod cards;
pub mod discharges;
pub mod edge;
pub mod error;
pub mod events;
pub mod extract;
pub mod grid;
pub mod openapi;
pub mod registry;
pub mod sessions;
pub mod views;

pub use crate::state::AppState;
use error::ApiError;

/// One route of the API.
pub struct Route {
    pub method: Method,
    /// The axum path (`{param}` segments, as OpenAPI writes them too).
    pub path: &'static str,
    pub summary: &'static str,
    /// False for routes that take no token.
    pub authenticated: bool,
    pub handler: MethodRouter<AppState>,
}

fn route(
    method: Method,
    path: &'static str,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        summary,
        authenticated: true,
        handler,
    }
}

fn public(path: &'static str, summary: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method: Method::GET,
        path,
        summary,
        authenticated: false,
        handler,
    }
}

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        public("/healthz", "Liveness: the process answers", get(healthz)),
        public(
            "/readyz",
            "Readiness: the database answers and background tasks run",
            get(readyz),
        ),
        public("/metrics", "Prometheus metrics", get(metrics_text)),
        public(
            "/openapi.json",
            "This API's OpenAPI document",
            get(openapi::document),
        ),
        route(
            M::POST,
            "/v1/operators",
            "Create an operator (tenant); admin only",
            post(registry::create_operator),
        ),
        route(
            M::GET,
            "/v1/operators/{id}",
            "Read an operator",
            get(registry::get_operator),
        ),
        route(
            M::GET,
            "/v1/operators/{id}/sites",
            "List an operator's sites",
            get(registry::list_sites),
        ),
        route(
            M::POST,
            "/v1/sites",
            "Register a site; answers its edge credential once",
            post(registry::create_site),
        ),
        route(
            M::GET,
            "/v1/sites/{id}",
            "Read a site",
            get(registry::get_site),
        ),
        route(
            M::POST,
            "/v1/sites/{id}/tariffs",
            "Assign a tariff version to a site",
            post(registry::assign_tariff),
        ),
        route(
            M::POST,
            "/v1/chargers",
            "Register a charger; answers its credential once",
            post(registry::create_charger),
        ),
        route(
            M::GET,
            "/v1/chargers/{pile}",
            "Read a charger",
            get(registry::get_charger),
        ),
        route(
            M::POST,
            "/v1/accounts",
            "Create a driver account",
            post(registry::create_account),
        ),
        route(
            M::GET,
            "/v1/accounts/{id}",
            "Read a driver account",
            get(registry::get_account),
        ),
        route(
            M::POST,
            "/v1/accounts/{id}/top-ups",
            "Credit an account from a payment provider",
            post(accounts::top_up),
        ),
        route(
            M::POST,
            "/v1/accounts/{id}/refunds",
            "Refund available balance to a payment provider",
            post(accounts::refund),
        ),
        route(
            M::GET,
            "/v1/accounts/{id}/ledger",
            "An account's postings with running balance",
            get(accounts::ledger),
        ),
        route(
            M::POST,
            "/v1/accounts/{id}/cards",
            "Register a card (physical card number, offline limit) for an account",
            post(cards::create),
        ),
        route(
            M::GET,
            "/v1/accounts/{id}/cards",
            "List an account's cards",
            get(cards::list),
        ),
        route(
            M::DELETE,
            "/v1/accounts/{id}/cards/{card}",
            "Remove a card from an account",
            delete(cards::delete),
        ),
        route(
            M::POST,
            "/v1/tariffs",
            "Store a new version of an operator's tariff",
            post(registry::create_tariff),
        ),
        route(
            M::POST,
            "/v1/sessions",
            "Start a charging session: holds funds, queues the start command, answers 202",
            post(sessions::start),
        ),
        route(
            M::GET,
            "/v1/sessions/{id}",
            "Read a session (order)",
            get(sessions::get),
        ),
        route(
            M::POST,
            "/v1/sessions/{id}/stop",
            "Stop a charging session: queues the stop command, answers 202",
            post(sessions::stop),
        ),
        route(
            M::GET,
            "/v1/sessions/{id}/payment",
            "A session's payment: wallet hold or credit authorisation, capture state, dunning",
            get(crate::payment::http::get_payment),
        ),
        route(
            M::POST,
            "/v1/sessions/{id}/refunds",
            "Refund part or all of a captured credit payment (admin or the site's operator)",
            post(crate::payment::http::refund),
        ),
        Route {
            method: M::POST,
            path: "/v1/payments/wechat/notify",
            summary: "WeChat Pay notifications (verified by the platform signature, no token)",
            authenticated: false,
            handler: post(crate::payment::http::wechat_notify),
        },
        Route {
            method: M::POST,
            path: "/v1/payments/alipay/notify",
            summary: "Alipay asynchronous notifications (verified by Alipay's signature, no token)",
            authenticated: false,
            handler: post(crate::payment::http::alipay_notify),
        },
        route(
            M::POST,
            "/v1/discharges",
            "Opt a plugged-in vehicle into V2G discharge (SoC floor, departure): queues the start command, answers 202",
            post(discharges::start),
        ),
        route(
            M::GET,
            "/v1/discharges/{id}",
            "Read a discharge order: state, terms and, once settled, energy each way, credit and meter anomalies",
            get(discharges::get),
        ),
        route(
            M::POST,
            "/v1/discharges/{id}/stop",
            "Stop a discharge: queues the stop command, answers 202",
            post(discharges::stop),
        ),
        route(
            M::POST,
            "/v1/sites/{id}/grid-events",
            "Send a grid event (discharge N kW from T1 to T2) to the site's edge; answers 202 with the command to poll",
            post(grid::grid_event),
        ),
        route(
            M::PUT,
            "/v1/chargers/{pile}/v2g",
            "Mark a charger V2G-capable (bidirectional) or not",
            put(grid::put_v2g),
        ),
        route(
            M::GET,
            "/v1/commands/{id}",
            "Read a command and its state",
            get(sessions::get_command),
        ),
        route(
            M::POST,
            "/v1/edges/{site}/records",
            "Edge: commit a (gzip) record batch; answers the cumulative ack",
            post(edge::post_records),
        ),
        route(
            M::GET,
            "/v1/edges/{site}/config",
            "Edge: the site's configuration (SiteConfigDoc): chargers, cards, tariffs, limits",
            get(edge::get_config),
        ),
        route(
            M::GET,
            "/v1/events",
            "WebSocket of the order and command changes the caller may see",
            get(events::events),
        ),
        route(
            M::GET,
            "/v1/bills",
            "List daily settlement bills (?operator=&from=&to=&limit=): an operator's own, or all for admins",
            get(crate::bills::http::list),
        ),
        route(
            M::GET,
            "/v1/bills/{id}",
            "Read a daily bill as JSON, or as CSV with ?format=csv or an id ending in .csv",
            get(crate::bills::http::get),
        ),
        route(
            M::POST,
            "/v1/operators/{id}/sharing-rules",
            "Store a new version of an operator's (or one of its sites') revenue-sharing rule; admin only",
            post(crate::bills::http::create_rule),
        ),
        route(
            M::GET,
            "/v1/operators/{id}/sharing-rules",
            "List an operator's revenue-sharing rule versions",
            get(crate::bills::http::list_rules),
        ),
        route(
            M::PUT,
            "/v1/operators/{id}/billing",
            "Set the time zone an operator's days are cut in and its first billed day; admin only",
            put(crate::bills::http::put_billing),
        ),
        route(
            M::PUT,
            "/v1/operators/{id}/webhook",
            "Set the operator's webhook endpoint (URL and HMAC signing secret) for bill and payout events",
            put(crate::bills::http::put_webhook),
        ),
    ]
}

/// The router with every layer, ready to serve.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .layer(RequestDecompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `state`'s API on `listener` until the state's shutdown is triggered, then lets
/// requests in flight finish.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

async fn record_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.http(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "no such route: see /openapi.json for the API",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take this method: see /openapi.json",
    )
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let db = state
        .store
        .pending_commands(None, jiff::Timestamp::now(), 1)
        .await;
    match (state.is_ready(), db) {
        (true, Ok(_)) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        (false, _) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "starting or stopping: background tasks are not running",
        )
        .into_response(),
        (_, Err(e)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            format!("the database does not answer: {e}"),
        )
        .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

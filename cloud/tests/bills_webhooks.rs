//! Bill-issued and payout webhooks, on SQLite and PostgreSQL, against a loopback receiver
//! that checks every signature, fails the first tries of each event and applies each event
//! id once: events are queued with the bill (same transaction), signed with HMAC-SHA256,
//! retried with backoff across a dispatcher restart, delivered once in effect, and parked as
//! dead after the bounded attempts when an endpoint never answers 2xx.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use voltline_cloud::bills::rules::set_billing_settings;
use voltline_cloud::bills::seed::{seed_sessions, SeedSession};
use voltline_cloud::bills::{BillJob, BillJobConfig};
use voltline_cloud::store::NewSite;
use voltline_cloud::webhooks::outbox::{events_of, set_endpoint};
use voltline_cloud::webhooks::sign::{verify, EVENT_ID_HEADER, SIGNATURE_HEADER};
use voltline_cloud::webhooks::{WebhookConfig, WebhookDispatcher};
use voltline_cloud::Store;
use voltline_protocol::Money;

use common::{op, site, Ctx};

const SECRET: &str = "whsec-0123456789abcdef";

#[derive(Default)]
struct Seen {
    /// Requests per event id (any outcome).
    attempts: HashMap<String, u32>,
    /// Event ids applied (the receiver's own idempotency: applied once).
    applied: Vec<String>,
    bad_signatures: u32,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    fail_first: u32,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = Timestamp::now().as_second();
    let mut seen = r.seen.lock().unwrap();
    if verify(SECRET, sig, &body, now, 300).is_err() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers
        .get(EVENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["id"], id.as_str(), "the body names the same event id");
    let n = seen.attempts.entry(id.clone()).or_default();
    *n += 1;
    if *n <= r.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if !seen.applied.contains(&id) {
        seen.applied.push(id);
    }
    StatusCode::OK
}

async fn receiver(fail_first: u32) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Receiver {
            seen: seen.clone(),
            fail_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), seen)
}

fn fast(max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        enabled: true,
        interval_ms: 20,
        timeout_ms: 2_000,
        max_attempts,
        backoff_base_ms: 20,
        backoff_cap_ms: 80,
    }
}

async fn operator_with_a_bill(store: &Store, o: &str, url: &str) -> String {
    store.create_operator(&op(o), o).await.unwrap();
    let s = format!("{o}-site");
    store
        .create_site(&NewSite {
            id: site(&s),
            operator: op(o),
            name: s.clone(),
            time_zone: "Europe/Berlin".into(),
        })
        .await
        .unwrap();
    let d = date(2026, 10, 25);
    set_billing_settings(store, &op(o), "Europe/Berlin", d)
        .await
        .unwrap();
    set_endpoint(store, &op(o), url, SECRET).await.unwrap();
    let z = TimeZone::get("Europe/Berlin").unwrap();
    let ended = z.to_timestamp(d.at(9, 0, 0, 0)).unwrap();
    seed_sessions(
        store,
        &[SeedSession {
            key: format!("{o}-k1"),
            operator: op(o),
            site: site(&s),
            started_at: ended - SignedDuration::from_mins(30),
            ended_at: ended,
            settled_at: ended + SignedDuration::from_mins(1),
            energy_mwh: 5_000,
            gross: Money::from_cents(1_234),
            platform_fee: Money::from_cents(123),
            rule_version: None,
        }],
        true,
    )
    .await
    .unwrap();
    let job = BillJob::new(store.clone(), BillJobConfig::default(), "instance-a");
    job.issue_day(&op(o), d, Timestamp::now()).await.unwrap().id
}

async fn events_are_signed_retried_across_a_restart_and_applied_once(ctx: &Ctx) {
    let (url, seen) = receiver(2).await;
    let bill = operator_with_a_bill(&ctx.store, "op-w", &url).await;
    let queued = events_of(&ctx.store, "op-w", 10).await.unwrap();
    let ids: Vec<&str> = queued.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![format!("evt-{bill}-issued"), format!("evt-{bill}-payout")],
        "{}",
        ctx.backend()
    );
    // One pass: both fail once; then the dispatcher "restarts" on a new pool.
    let first = WebhookDispatcher::new(ctx.store.clone(), fast(6)).unwrap();
    let r = first.run_once(Timestamp::now()).await.unwrap();
    assert_eq!(r.retried, 2, "{r:?}");
    drop(first);
    let other = ctx.reopen().await;
    let second = WebhookDispatcher::new(other.clone(), fast(6)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        second.run_once(Timestamp::now()).await.unwrap();
        let states = events_of(&ctx.store, "op-w", 10).await.unwrap();
        if states.iter().all(|e| e.state == "delivered") {
            assert!(states.iter().all(|e| e.attempts == 3), "{states:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never delivered: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // More passes send nothing more.
    for _ in 0..3 {
        let r = second.run_once(Timestamp::now()).await.unwrap();
        assert_eq!(r.delivered + r.retried + r.dead, 0);
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.bad_signatures, 0);
        assert_eq!(
            seen.applied.len(),
            2,
            "each event applied once: {:?}",
            seen.applied
        );
        assert!(
            seen.attempts.values().all(|n| *n == 3),
            "{:?}",
            seen.attempts
        );
    }
    other.close().await;
}

async fn an_endpoint_that_never_accepts_parks_events_as_dead_after_the_bound(ctx: &Ctx) {
    let (url, seen) = receiver(u32::MAX).await;
    operator_with_a_bill(&ctx.store, "op-x", &url).await;
    let d = WebhookDispatcher::new(ctx.store.clone(), fast(3)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        d.run_once(Timestamp::now()).await.unwrap();
        let states = events_of(&ctx.store, "op-x", 10).await.unwrap();
        if states.iter().all(|e| e.state == "dead") {
            assert!(states.iter().all(|e| e.attempts == 3), "{states:?}");
            assert!(states[0]
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("500"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.run_once(Timestamp::now()).await.unwrap();
    assert!(seen.lock().unwrap().attempts.values().all(|n| *n == 3));
    assert!(
        WebhookDispatcher::new(ctx.store.clone(), fast(0)).is_err(),
        "attempts are bounded"
    );
}

on_both_backends!(
    events_are_signed_retried_across_a_restart_and_applied_once,
    an_endpoint_that_never_accepts_parks_events_as_dead_after_the_bound,
);

//! The simulated Pay Score service-order API (see `voltline_cloud::payment::wechat`): requests
//! must carry a valid `WECHATPAY2-SHA256-RSA2048` signature by the merchant key; answers and
//! notifications are signed with the platform key, resources encrypted with the API v3 key.
//! `complete` answers `DOING`/`MCH_COMPLETE` (as Pay Score does) and the collection is
//! reported by a `PAYSCORE.USER_PAID` notification and by query.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use voltline_cloud::payment::keys::nonce;
use voltline_cloud::payment::wechat::callback::{
    encrypt_resource, Collection, CollectionDetail, ServiceOrder, EVENT_USER_PAID,
};
use voltline_cloud::payment::wechat::sign::{
    Authorization, PlatformSignature, HEADER_NONCE, HEADER_SERIAL, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};

use super::{
    before, keys, Fault, Op, Provider, Shared, SimOrder, SimState, API_V3_KEY, MCHID,
    PLATFORM_SERIAL,
};

pub(crate) fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/v3/payscore/serviceorder", post(create).get(query))
        .route("/v3/payscore/serviceorder/{no}/complete", post(complete))
        .route("/v3/payscore/serviceorder/{no}/cancel", post(cancel))
        .route("/v3/refund/domestic/refunds", post(refund))
        .with_state(shared)
}

/// A signed answer.
fn answer(status: StatusCode, body: Value) -> Response {
    let text = body.to_string();
    let now = jiff::Timestamp::now().as_second();
    let sig = PlatformSignature::sign(
        &keys().provider.private,
        PLATFORM_SERIAL,
        now,
        &nonce(32),
        &text,
    );
    (
        status,
        [
            (HEADER_TIMESTAMP, sig.timestamp.to_string()),
            (HEADER_NONCE, sig.nonce),
            (HEADER_SIGNATURE, sig.signature),
            (HEADER_SERIAL, sig.serial),
            ("content-type", "application/json".to_owned()),
        ],
        text,
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, json!({"code": code, "message": message}))
}

/// Verifies the request's signature; `Some` is the 401 to answer instead.
fn refused(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> Option<Response> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(Authorization::parse)
        .is_some_and(|a| {
            a.mchid == MCHID
                && a.verify(&keys().merchant.public, method.as_str(), path, body)
                    .is_ok()
        });
    if ok {
        None
    } else {
        shared.bad_signature();
        Some(error(
            StatusCode::UNAUTHORIZED,
            "SIGN_ERROR",
            "signature verification failed",
        ))
    }
}

/// Runs `act` under the call's fault.
async fn faulted(shared: &Shared, op: Op, act: impl FnOnce() -> Response) -> Response {
    match before(shared.enter(Provider::Wechat, op)).await {
        Some(Fault::Fail) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SYSTEM_ERROR",
            "simulated failure",
        ),
        Some(Fault::Decline) => error(
            StatusCode::FORBIDDEN,
            "USER_ACCOUNT_ABNORMAL",
            "simulated decline",
        ),
        Some(Fault::LoseAnswer) => {
            let _ = act();
            tokio::time::sleep(super::HANG).await;
            error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "lost")
        }
        Some(Fault::Hang) => error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "hung"),
        _ => act(),
    }
}

fn service_order(o: &SimOrder) -> ServiceOrder {
    let paid = o.state == SimState::Paid;
    ServiceOrder {
        out_order_no: o.out_no.clone(),
        order_id: o.provider_ref.clone(),
        state: match o.state {
            SimState::Authorised => "DOING",
            SimState::Paid => "DONE",
            SimState::Cancelled => "REVOKED",
        }
        .into(),
        state_description: if paid {
            "USER_PAID".into()
        } else {
            String::new()
        },
        total_amount: o.captured_fen,
        collection: paid.then(|| Collection {
            state: "USER_PAID".into(),
            total_amount: o.captured_fen.unwrap_or(0),
            paid_amount: o.captured_fen.unwrap_or(0),
            details: vec![CollectionDetail {
                seq: 1,
                amount: o.captured_fen.unwrap_or(0),
                paid_type: "NEWTON".into(),
                paid_time: "20260101120000".into(),
                transaction_id: o.transaction_id.clone().unwrap_or_default(),
            }],
        }),
    }
}

async fn create(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(r) = refused(&s, &method, &uri, &headers, &text) {
        return r;
    }
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let (Some(no), Some(amount), Some(openid)) = (
        v["out_order_no"].as_str(),
        v["risk_fund"]["amount"].as_i64(),
        v["openid"].as_str(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "out_order_no, risk_fund.amount and openid are required",
        );
    };
    let (no, openid) = (no.to_owned(), openid.to_owned());
    let id = s.next_id("wxo");
    faulted(&s.clone(), Op::Authorise, move || {
        let order = s.with_orders(|orders, _| {
            orders
                .entry(no.clone())
                .or_insert_with(|| SimOrder {
                    provider: Provider::Wechat,
                    out_no: no.clone(),
                    provider_ref: id,
                    authorised_fen: amount,
                    state: SimState::Authorised,
                    captured_fen: None,
                    transaction_id: None,
                    collections: 0,
                    capture_calls: 0,
                    refunded_fen: 0,
                    user: openid,
                })
                .clone()
        });
        answer(StatusCode::OK, json!({"out_order_no": order.out_no, "order_id": order.provider_ref, "state": "DOING", "service_id": super::SERVICE_ID, "mchid": MCHID}))
    })
    .await
}

async fn complete(
    State(s): State<Shared>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(r) = refused(&s, &method, &uri, &headers, &text) {
        return r;
    }
    let total = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["total_amount"].as_i64());
    let Some(total) = total else {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "total_amount is required",
        );
    };
    let s2 = s.clone();
    faulted(&s, Op::Capture, move || {
        let tx = s2.next_id("4200");
        let result = s2.with_orders(|orders, _| {
            let o = orders.get_mut(&no).ok_or("ORDER_NOT_EXIST")?;
            o.capture_calls += 1;
            match o.state {
                SimState::Cancelled => Err("ORDER_CANCELED"),
                SimState::Paid if o.captured_fen == Some(total) => Ok((o.clone(), false)),
                SimState::Paid => Err("ORDER_STATE_ERROR"),
                SimState::Authorised if total > o.authorised_fen => Err("PARAM_ERROR"),
                SimState::Authorised => {
                    o.state = SimState::Paid;
                    o.captured_fen = Some(total);
                    o.transaction_id = Some(tx);
                    o.collections += 1;
                    Ok((o.clone(), true))
                }
            }
        });
        match result {
            Ok((order, fresh)) => {
                if fresh {
                    notify(&s2, &order);
                }
                answer(StatusCode::OK, json!({"out_order_no": order.out_no, "order_id": order.provider_ref, "state": "DOING", "state_description": "MCH_COMPLETE", "total_amount": total, "need_collection": true}))
            }
            Err(code @ "ORDER_NOT_EXIST") => error(StatusCode::NOT_FOUND, code, "no such order"),
            Err(code) => error(StatusCode::BAD_REQUEST, code, "the order cannot be completed so"),
        }
    })
    .await
}

/// Sends the USER_PAID notification of `order` (in the background, duplicated as set).
pub(crate) fn notify(s: &Shared, order: &SimOrder) {
    let Some((base, times)) = s.callbacks() else {
        return;
    };
    let plain = serde_json::to_vec(&service_order(order)).unwrap_or_default();
    let nonce12: String = nonce(12);
    let Ok(resource) = encrypt_resource(API_V3_KEY, &nonce12, "payscore", "payscore", &plain)
    else {
        return;
    };
    let body = json!({
        "id": s.next_id("EV-"),
        "create_time": "2026-01-01T12:00:00+08:00",
        "event_type": EVENT_USER_PAID,
        "resource_type": "encrypt-resource",
        "resource": resource,
        "summary": "payment collected",
    })
    .to_string();
    let s = s.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for _ in 0..times {
            let now = jiff::Timestamp::now().as_second();
            let sig = PlatformSignature::sign(
                &keys().provider.private,
                PLATFORM_SERIAL,
                now,
                &nonce(32),
                &body,
            );
            let _ = client
                .post(format!("{base}/v1/payments/wechat/notify"))
                .header(HEADER_TIMESTAMP, sig.timestamp.to_string())
                .header(HEADER_NONCE, sig.nonce)
                .header(HEADER_SIGNATURE, sig.signature)
                .header(HEADER_SERIAL, sig.serial)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            s.callback_sent();
        }
    });
}

async fn cancel(
    State(s): State<Shared>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(r) = refused(&s, &method, &uri, &headers, &text) {
        return r;
    }
    let s2 = s.clone();
    faulted(&s, Op::Cancel, move || {
        let r = s2.with_orders(|orders, _| match orders.get_mut(&no) {
            None => Err((StatusCode::NOT_FOUND, "ORDER_NOT_EXIST")),
            Some(o) if o.state == SimState::Paid => {
                Err((StatusCode::BAD_REQUEST, "ORDER_STATE_ERROR"))
            }
            Some(o) => {
                o.state = SimState::Cancelled;
                Ok(o.clone())
            }
        });
        match r {
            Ok(o) => answer(
                StatusCode::OK,
                json!({"out_order_no": o.out_no, "order_id": o.provider_ref, "state": "REVOKED"}),
            ),
            Err((status, code)) => error(status, code, "cannot cancel"),
        }
    })
    .await
}

async fn query(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&s, &method, &uri, &headers, "") {
        return r;
    }
    let no = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("out_order_no="))
        .unwrap_or("")
        .to_owned();
    let s2 = s.clone();
    faulted(&s, Op::Query, move || {
        match s2.with_orders(|o, _| o.get(&no).cloned()) {
            Some(o) => answer(
                StatusCode::OK,
                serde_json::to_value(service_order(&o)).unwrap_or(Value::Null),
            ),
            None => error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "no such order"),
        }
    })
    .await
}

async fn refund(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(r) = refused(&s, &method, &uri, &headers, &text) {
        return r;
    }
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let (tx, no, amount) = (
        v["transaction_id"].as_str().unwrap_or("").to_owned(),
        v["out_refund_no"].as_str().unwrap_or("").to_owned(),
        v["amount"]["refund"].as_i64().unwrap_or(0),
    );
    let s2 = s.clone();
    faulted(&s, Op::Refund, move || {
        let id = s2.next_id("50300");
        let r = s2.with_orders(|orders, refunds| {
            if refunds.contains_key(&no) {
                return Ok(());
            }
            let o = orders
                .values_mut()
                .find(|o| o.transaction_id.as_deref() == Some(tx.as_str()))
                .ok_or("RESOURCE_NOT_EXISTS")?;
            if amount <= 0 || o.refunded_fen + amount > o.captured_fen.unwrap_or(0) {
                return Err("INVALID_REQUEST");
            }
            o.refunded_fen += amount;
            refunds.insert(no.clone(), amount);
            Ok(())
        });
        match r {
            Ok(()) => answer(
                StatusCode::OK,
                json!({"refund_id": id, "out_refund_no": no, "status": "SUCCESS"}),
            ),
            Err(code) => error(StatusCode::BAD_REQUEST, code, "cannot refund"),
        }
    })
    .await
}

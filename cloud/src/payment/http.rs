//! The payment routes: the providers' notify callbacks (no bearer token: each is verified by
//! the provider's signature, and WeChat's resource decrypted, before anything is read from it;
//! a duplicate is answered success and changes nothing), a session's payment, and refunds.
//!
//! - `POST /v1/payments/wechat/notify`: answers 204, or 401 `{"code":"FAIL"}` when the
//!   signature does not verify (WeChat then resends).
//! - `POST /v1/payments/alipay/notify`: answers the text `success`, or `failure`.
//! - `GET /v1/sessions/{id}/payment`: the order's payment (driver, operator, admin).
//! - `POST /v1/sessions/{id}/refunds` `{"amount", "request_id", "reason"}`: admin or the site's
//!   operator.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use super::limits::MAX_CALLBACK_BYTES;
use super::outcome::Facts;
use super::service::{PaymentError, Payments};
use super::state::Event;
use super::store;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{Caller, Json, Path};
use crate::domain::{Action, Actor, Resource};
use crate::state::AppState;

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> ApiError {
        match e {
            PaymentError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not-found", m),
            PaymentError::Refused(m) => ApiError::unprocessable(m),
            PaymentError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            PaymentError::Provider(p) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider",
                format!("{p}; retry the request with the same request_id"),
            ),
            PaymentError::Money(m) => ApiError::from(crate::funds::FundsError::from(m)),
        }
    }
}

/// Applies a verified "paid" report of `out_trade_no`.
async fn paid(
    p: &Payments,
    provider: &str,
    out_trade_no: &str,
    transaction_ref: String,
    amount: Money,
) -> Result<(), PaymentError> {
    let Some(row) = store::by_trade_no(&p.store, provider, out_trade_no).await? else {
        tracing::warn!(
            provider,
            "a verified notification names no payment of ours; ignored"
        );
        return Ok(());
    };
    if row.capture_amount.map(|m| m.0) != Some(amount) {
        tracing::error!(order = %row.order_id, "a notification reports another amount than captured; left for an operator");
        return Ok(());
    }
    let facts = Facts {
        transaction_ref: Some(transaction_ref),
        amount: Some(amount),
        ..Facts::default()
    };
    p.event(row, Event::Paid, facts).await.map(drop)
}

fn wechat_fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"code": "FAIL", "message": message})),
    )
        .into_response()
}

/// `POST /v1/payments/wechat/notify`.
pub async fn wechat_notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(w) = state.payments.as_ref().and_then(|p| p.wechat.clone()) else {
        return wechat_fail(
            StatusCode::UNAUTHORIZED,
            "WeChat Pay is not configured here: nothing can verify this notification",
        );
    };
    let p = state.payments.as_ref().expect("checked above");
    if body.len() > MAX_CALLBACK_BYTES {
        return wechat_fail(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return wechat_fail(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let now = jiff::Timestamp::now().as_second();
    let (note, order) = match w.open_notification(
        |n| headers.get(n).and_then(|v| v.to_str().ok()),
        text,
        now,
    ) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "WeChat notification refused");
            metrics::counter!("voltline_payment_notifications_refused_total", "provider" => "wechat").increment(1);
            return wechat_fail(StatusCode::UNAUTHORIZED, "verification failed");
        }
    };
    match store::first_notification(&p.store, "wechat", &note.id, &order.out_order_no).await {
        Ok(false) => return StatusCode::NO_CONTENT.into_response(),
        Ok(true) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a notification; WeChat resends it");
            return wechat_fail(StatusCode::SERVICE_UNAVAILABLE, "retry");
        }
    }
    if let (Some(t), Some(c)) = (order.transaction_id(), order.collection.as_ref()) {
        if let Err(e) = paid(
            p,
            "wechat",
            &order.out_order_no,
            t.to_owned(),
            Money::from_cents(c.paid_amount),
        )
        .await
        {
            tracing::warn!(error = %e, "a WeChat payment notification was not applied; the resolver queries the order");
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v1/payments/alipay/notify`.
pub async fn alipay_notify(State(state): State<AppState>, body: Bytes) -> Response {
    let answer =
        |ok: bool| (StatusCode::OK, if ok { "success" } else { "failure" }).into_response();
    let Some(a) = state.payments.as_ref().and_then(|p| p.alipay.clone()) else {
        return answer(false);
    };
    let p = state.payments.as_ref().expect("checked above");
    if body.len() > MAX_CALLBACK_BYTES {
        return answer(false);
    }
    let params = super::alipay::client::parse_form(&String::from_utf8_lossy(&body));
    if let Err(e) = a.verify_notification(&params) {
        tracing::warn!(error = %e, "Alipay notification refused");
        metrics::counter!("voltline_payment_notifications_refused_total", "provider" => "alipay")
            .increment(1);
        return answer(false);
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let out_trade_no = get("out_trade_no");
    match store::first_notification(&p.store, "alipay", &get("notify_id"), &out_trade_no).await {
        Ok(false) => return answer(true),
        Ok(true) => {}
        Err(_) => return answer(false),
    }
    let amount = get("total_amount").parse().ok().map(Money::from_yuan);
    if matches!(
        get("trade_status").as_str(),
        "TRADE_SUCCESS" | "TRADE_FINISHED"
    ) {
        if let Some(amount) = amount {
            if let Err(e) = paid(p, "alipay", &out_trade_no, get("trade_no"), amount).await {
                tracing::warn!(error = %e, "an Alipay payment notification was not applied; the resolver queries the trade");
            }
        }
    }
    answer(true)
}

/// A session's payment.
#[derive(Debug, Serialize, Deserialize)]
pub struct PaymentView {
    pub order_id: String,
    /// `wallet` or the provider's name.
    pub method: String,
    pub state: Option<String>,
    pub authorised: Option<Money>,
    pub captured: Option<Money>,
    pub out_trade_no: Option<String>,
    pub transaction_ref: Option<String>,
    pub dunning: Option<String>,
    pub attempts: Option<i64>,
    pub last_error: Option<String>,
}

async fn order_access(
    state: &AppState,
    actor: &Actor,
    id: &OrderId,
    action: Action,
) -> ApiResult<crate::store::Order> {
    let order = state.store.get_order(id).await?;
    let operator = state.site_operator(&order.site).await?;
    state.authorize(
        actor,
        action,
        &Resource::Order {
            account: order.account.clone(),
            operator,
        },
    )?;
    Ok(order)
}

/// `GET /v1/sessions/{id}/payment`.
pub async fn get_payment(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
) -> ApiResult<Json<PaymentView>> {
    let order = order_access(&state, &actor, &id, Action::Read).await?;
    let row = match &state.payments {
        Some(p) => p.payment(&id).await.map_err(PaymentError::from)?,
        None => None,
    };
    Ok(Json(match row {
        Some(r) => PaymentView {
            order_id: r.order_id,
            method: r.provider,
            state: Some(r.state),
            authorised: Some(r.authorised_amount.0),
            captured: r.capture_amount.map(|m| m.0),
            out_trade_no: Some(r.out_trade_no),
            transaction_ref: r.transaction_ref,
            dunning: r.dunning,
            attempts: Some(r.attempts),
            last_error: r.last_error,
        },
        None => PaymentView {
            order_id: order.id.to_string(),
            method: order.payment_method.to_text(),
            state: None,
            authorised: order.limit.amount,
            captured: None,
            out_trade_no: None,
            transaction_ref: None,
            dunning: None,
            attempts: None,
            last_error: None,
        },
    }))
}

/// A refund request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub amount: Money,
    /// The caller's id of this refund: the same id is the same refund.
    pub request_id: String,
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/sessions/{id}/refunds`.
pub async fn refund(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
    Json(body): Json<RefundBody>,
) -> ApiResult<Json<super::refund::RefundView>> {
    order_access(&state, &actor, &id, Action::Update).await?;
    if !matches!(actor, Actor::Admin | Actor::Operator(_)) {
        return Err(ApiError::forbidden());
    }
    let p = state.payments.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "conflict", "this session was not paid by a credit provider; refund wallet sessions with POST /v1/accounts/{id}/top-ups")
    })?;
    let reason = if body.reason.is_empty() {
        "refund".to_owned()
    } else {
        body.reason.chars().take(80).collect()
    };
    Ok(Json(
        p.refund(&id, &body.request_id, body.amount, &reason)
            .await?,
    ))
}

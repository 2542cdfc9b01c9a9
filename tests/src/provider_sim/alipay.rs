//! The simulated Alipay gateway (`POST /gateway.do`, form parameters signed RSA2 by the
//! application key; answers `{"<method>_response": {...}, "sign": ...}` signed with Alipay's
//! key): fund-authorisation freeze, pay with the authorisation, cancel, refund, queries, and
//! `trade_status_sync` notifications after a payment.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use voltline_cloud::payment::alipay::client::{form, parse_form, yuan_text};
use voltline_cloud::payment::alipay::sign::{sign_notification, signed_answer, verify_request};
use voltline_protocol::Money;

use super::{before, keys, Fault, Op, Provider, Shared, SimOrder, SimState, ALIPAY_APP_ID};

pub(crate) fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/gateway.do", post(gateway))
        .with_state(shared)
}

fn reply(method: &str, body: Value) -> Response {
    let text = signed_answer(&keys().provider.private, method, &body.to_string());
    ([("content-type", "application/json;charset=utf-8")], text).into_response()
}

fn fen(text: &str) -> Option<i64> {
    text.parse::<rust_decimal::Decimal>()
        .ok()
        .and_then(|d| Money::from_yuan(d).to_scaled(2).ok())
}

fn yuan(fen: i64) -> String {
    yuan_text(Money::from_cents(fen))
}

fn op_of(method: &str) -> Op {
    match method {
        "alipay.fund.auth.order.freeze" => Op::Authorise,
        "alipay.trade.pay" => Op::Capture,
        "alipay.fund.auth.operation.cancel" => Op::Cancel,
        "alipay.trade.refund" => Op::Refund,
        _ => Op::Query,
    }
}

async fn gateway(State(s): State<Shared>, body: Bytes) -> Response {
    let params = parse_form(&String::from_utf8_lossy(&body));
    let method = params.get("method").cloned().unwrap_or_default();
    if params.get("app_id").map(String::as_str) != Some(ALIPAY_APP_ID)
        || verify_request(&keys().merchant.public, &params).is_err()
    {
        s.bad_signature();
        return reply(
            &method,
            json!({"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "bad signature"}),
        );
    }
    let biz: Value = params
        .get("biz_content")
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let fault = before(s.enter(Provider::Alipay, op_of(&method))).await;
    match fault {
        Some(Fault::Fail | Fault::Hang) => {
            return reply(
                &method,
                json!({"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}),
            )
        }
        Some(Fault::Decline) => {
            return reply(
                &method,
                json!({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH", "sub_msg": "simulated decline"}),
            )
        }
        _ => {}
    }
    let answer = act(&s, &method, &biz);
    if fault == Some(Fault::LoseAnswer) {
        tokio::time::sleep(super::HANG).await;
    }
    reply(&method, answer)
}

fn act(s: &Shared, method: &str, biz: &Value) -> Value {
    let text = |k: &str| biz[k].as_str().unwrap_or("").to_owned();
    let not_exist = |sub: &str| json!({"code": "40004", "msg": "Business Failed", "sub_code": sub});
    match method {
        "alipay.fund.auth.order.freeze" => {
            let (no, user) = (text("out_order_no"), text("auth_code"));
            let Some(amount) = fen(&text("amount")) else {
                return json!({"code": "40002", "sub_code": "isv.invalid-amount"});
            };
            let auth_no = s.next_id("2026AUTH");
            let o = s.with_orders(|orders, _| {
                orders
                    .entry(no.clone())
                    .or_insert_with(|| SimOrder {
                        provider: Provider::Alipay,
                        out_no: no.clone(),
                        provider_ref: auth_no,
                        authorised_fen: amount,
                        state: SimState::Authorised,
                        captured_fen: None,
                        transaction_id: None,
                        collections: 0,
                        capture_calls: 0,
                        refunded_fen: 0,
                        user,
                    })
                    .clone()
            });
            json!({"code": "10000", "msg": "Success", "auth_no": o.provider_ref, "out_order_no": o.out_no, "operation_id": o.provider_ref, "out_request_no": o.out_no, "amount": yuan(o.authorised_fen), "status": "SUCCESS"})
        }
        "alipay.trade.pay" => {
            let (no, auth_no) = (text("out_trade_no"), text("auth_no"));
            let Some(total) = fen(&text("total_amount")) else {
                return json!({"code": "40002", "sub_code": "isv.invalid-amount"});
            };
            let trade_no = s.next_id("2026TRADE");
            let r = s.with_orders(|orders, _| {
                let o = orders
                    .get_mut(&no)
                    .filter(|o| o.provider_ref == auth_no)
                    .ok_or("ACQ.TRADE_NOT_EXIST")?;
                o.capture_calls += 1;
                match o.state {
                    SimState::Paid if o.captured_fen == Some(total) => Ok((o.clone(), false)),
                    SimState::Authorised if total <= o.authorised_fen => {
                        o.state = SimState::Paid;
                        o.captured_fen = Some(total);
                        o.transaction_id = Some(trade_no);
                        o.collections += 1;
                        Ok((o.clone(), true))
                    }
                    _ => Err("ACQ.TRADE_STATUS_ERROR"),
                }
            });
            match r {
                Ok((o, fresh)) => {
                    if fresh {
                        notify(s, &o);
                    }
                    json!({"code": "10000", "msg": "Success", "trade_no": o.transaction_id, "out_trade_no": o.out_no, "total_amount": yuan(total)})
                }
                Err(sub) => not_exist(sub),
            }
        }
        "alipay.fund.auth.operation.cancel" => {
            let no = text("out_order_no");
            match s.with_orders(|orders, _| {
                orders.get_mut(&no).map(|o| {
                    if o.state == SimState::Authorised {
                        o.state = SimState::Cancelled;
                    }
                    o.state
                })
            }) {
                Some(SimState::Paid) => not_exist("ACQ.TRADE_HAS_SUCCESS"),
                Some(_) => json!({"code": "10000", "msg": "Success", "action": "unfreeze"}),
                None => not_exist("AUTH_ORDER_NOT_EXIST"),
            }
        }
        "alipay.trade.refund" => {
            let (no, request) = (text("out_trade_no"), text("out_request_no"));
            let Some(amount) = fen(&text("refund_amount")) else {
                return json!({"code": "40002", "sub_code": "isv.invalid-amount"});
            };
            let r = s.with_orders(|orders, refunds| {
                if refunds.contains_key(&request) {
                    return Ok(());
                }
                let o = orders
                    .get_mut(&no)
                    .filter(|o| o.state == SimState::Paid)
                    .ok_or("ACQ.TRADE_NOT_EXIST")?;
                if o.refunded_fen + amount > o.captured_fen.unwrap_or(0) {
                    return Err("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL");
                }
                o.refunded_fen += amount;
                refunds.insert(request.clone(), amount);
                Ok(())
            });
            match r {
                Ok(()) => {
                    json!({"code": "10000", "msg": "Success", "out_trade_no": no, "fund_change": "Y", "refund_fee": yuan(amount)})
                }
                Err(sub) => not_exist(sub),
            }
        }
        "alipay.trade.query" => match s.with_orders(|o, _| o.get(&text("out_trade_no")).cloned()) {
            Some(o) if o.state == SimState::Paid => {
                json!({"code": "10000", "msg": "Success", "trade_status": "TRADE_SUCCESS", "trade_no": o.transaction_id, "out_trade_no": o.out_no, "total_amount": yuan(o.captured_fen.unwrap_or(0))})
            }
            _ => not_exist("ACQ.TRADE_NOT_EXIST"),
        },
        "alipay.fund.auth.operation.detail.query" => {
            match s.with_orders(|o, _| o.get(&text("out_order_no")).cloned()) {
                Some(o) => {
                    json!({"code": "10000", "msg": "Success", "auth_no": o.provider_ref, "status": if o.state == SimState::Cancelled { "CLOSED" } else { "SUCCESS" }})
                }
                None => not_exist("AUTH_ORDER_NOT_EXIST"),
            }
        }
        _ => json!({"code": "40004", "sub_code": "isv.invalid-method"}),
    }
}

/// Sends `trade_status_sync` for a paid order (in the background, duplicated as set).
fn notify(s: &Shared, o: &SimOrder) {
    let Some((base, times)) = s.callbacks() else {
        return;
    };
    let mut p: BTreeMap<String, String> = [
        ("notify_time", "2026-01-01 12:00:00".to_owned()),
        ("notify_type", "trade_status_sync".to_owned()),
        ("notify_id", s.next_id("ntf")),
        ("app_id", ALIPAY_APP_ID.to_owned()),
        ("charset", "utf-8".to_owned()),
        ("version", "1.0".to_owned()),
        ("trade_no", o.transaction_id.clone().unwrap_or_default()),
        ("out_trade_no", o.out_no.clone()),
        ("trade_status", "TRADE_SUCCESS".to_owned()),
        ("total_amount", yuan(o.captured_fen.unwrap_or(0))),
        ("sign_type", "RSA2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let sign = sign_notification(&keys().provider.private, &p);
    p.insert("sign".into(), sign);
    let body = form(&p);
    let s = s.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for _ in 0..times {
            let _ = client
                .post(format!("{base}/v1/payments/alipay/notify"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            s.callback_sent();
        }
    });
}

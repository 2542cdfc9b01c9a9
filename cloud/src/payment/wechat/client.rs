//! [`WechatPayScore`]: the Pay Score service-order API over `reqwest`, every request signed,
//! every 2xx answer verified against the platform key (an answer that does not verify counts
//! as no answer: [`ProviderError::BadSignature`], resolved by querying).
//!
//! | operation | call |
//! |---|---|
//! | authorise | `POST /v3/payscore/serviceorder` (`need_user_confirm: false`, risk fund = limit) |
//! | capture | `POST /v3/payscore/serviceorder/{out_order_no}/complete` (the final amount) |
//! | cancel | `POST /v3/payscore/serviceorder/{out_order_no}/cancel` |
//! | query | `GET /v3/payscore/serviceorder?service_id=…&out_order_no=…&appid=…` |
//! | refund | `POST /v3/refund/domestic/refunds` (by the collection's `transaction_id`) |
//!
//! Status mapping: 2xx success; 403 a business refusal (declined: credit, risk, account);
//! 404 `ORDER_NOT_EXIST` not found; other 4xx a request refused as such; 429, 5xx, timeouts
//! and transport errors unknown. Amounts are integer fen.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};
use voltline_protocol::Money;

use super::callback::{decrypt_resource, Notification, ServiceOrder};
use super::sign::{Authorization, PlatformSignature};
use crate::payment::config::WechatConfig;
use crate::payment::keys::{nonce, PrivateKey, PublicKey};
use crate::payment::provider::{
    transport_error, AuthoriseRequest, Authorised, CaptureOutcome, CaptureRequest, PaymentProvider,
    PaymentStatus, ProviderError, RefundOutcome, RefundRequest,
};
use crate::payment::secret::Secret;

/// The connector.
pub struct WechatPayScore {
    cfg: WechatConfig,
    key: PrivateKey,
    platform: PublicKey,
    api_v3_key: Secret,
    http: reqwest::Client,
    tolerance_s: i64,
}

impl std::fmt::Debug for WechatPayScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayScore")
            .field("base_url", &self.cfg.base_url)
            .field("mchid", &self.cfg.mchid)
            .finish_non_exhaustive()
    }
}

/// Integer fen of an amount (amounts reaching a provider are whole fen).
pub fn fen(amount: Money) -> Result<i64, ProviderError> {
    amount
        .to_scaled(2)
        .map_err(|e| ProviderError::Config(format!("amount {amount}: {e}")))
}

fn error_of(status: u16, body: &str) -> ProviderError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v["code"].as_str().unwrap_or("UNKNOWN").to_owned();
    let message = v["message"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    match status {
        403 => ProviderError::Declined { code, message },
        429 | 500..=599 => ProviderError::Unknown(format!("HTTP {status} {code}")),
        _ => ProviderError::Rejected { code, message },
    }
}

impl WechatPayScore {
    /// A connector for `cfg`; every call times out after `timeout`.
    pub fn new(
        cfg: &WechatConfig,
        timeout: Duration,
        tolerance_s: i64,
    ) -> Result<WechatPayScore, ProviderError> {
        let key = PrivateKey::from_pem(cfg.merchant_private_key_pem.expose()).map_err(|e| {
            ProviderError::Config(format!("payments.wechat.merchant_private_key_pem: {e}"))
        })?;
        let platform = PublicKey::from_pem(&cfg.platform_public_key_pem).map_err(|e| {
            ProviderError::Config(format!("payments.wechat.platform_public_key_pem: {e}"))
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Config(format!("HTTP client: {e}")))?;
        Ok(WechatPayScore {
            cfg: cfg.clone(),
            key,
            platform,
            api_v3_key: cfg.api_v3_key.clone(),
            http,
            tolerance_s,
        })
    }

    /// A signed call; the answer's status and verified body.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), ProviderError> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let now = jiff::Timestamp::now().as_second();
        let auth = Authorization::sign(
            &self.key,
            &self.cfg.mchid,
            &self.cfg.merchant_serial_no,
            method.as_str(),
            path_and_query,
            now,
            &nonce(32),
            &text,
        );
        let url = format!(
            "{}{path_and_query}",
            self.cfg.base_url.trim_end_matches('/')
        );
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", auth.header())
            .header("accept", "application/json")
            .header("user-agent", "voltline-cloud");
        if body.is_some() {
            req = req.header("content-type", "application/json").body(text);
        }
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let answer = resp.text().await.map_err(|e| transport_error(&e))?;
        if (200..300).contains(&status) {
            let sig =
                PlatformSignature::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()))
                    .map_err(|e| ProviderError::BadSignature(e.to_string()))?;
            sig.verify(
                &self.platform,
                &self.cfg.platform_serial_no,
                &answer,
                now,
                self.tolerance_s,
            )
            .map_err(|e| ProviderError::BadSignature(e.to_string()))?;
        }
        Ok((status, answer))
    }

    fn order_of(text: &str) -> Result<ServiceOrder, ProviderError> {
        serde_json::from_str(text)
            .map_err(|e| ProviderError::Unknown(format!("unreadable answer: {e}")))
    }

    /// Verifies a notification's signature headers over `body` and decrypts its service order.
    pub fn open_notification<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &str,
        now: i64,
    ) -> Result<(Notification, ServiceOrder), String> {
        let sig = PlatformSignature::from_headers(header).map_err(|e| e.to_string())?;
        sig.verify(
            &self.platform,
            &self.cfg.platform_serial_no,
            body,
            now,
            self.tolerance_s,
        )
        .map_err(|e| e.to_string())?;
        let n: Notification =
            serde_json::from_str(body).map_err(|e| format!("not a notification: {e}"))?;
        let plain =
            decrypt_resource(self.api_v3_key.expose(), &n.resource).map_err(|e| e.to_string())?;
        let order: ServiceOrder =
            serde_json::from_slice(&plain).map_err(|e| format!("not a service order: {e}"))?;
        Ok((n, order))
    }

    async fn create(&self, req: &AuthoriseRequest) -> Result<Authorised, ProviderError> {
        let openid = req.user_ref.as_deref().ok_or_else(|| {
            ProviderError::Config(
                "a Pay Score order needs the driver's openid: send provider_user with the start"
                    .into(),
            )
        })?;
        let body = json!({
            "out_order_no": req.out_trade_no,
            "appid": self.cfg.appid,
            "service_id": self.cfg.service_id,
            "service_introduction": req.description,
            "time_range": {"start_time": "OnAccept"},
            "risk_fund": {"name": self.cfg.risk_fund_name, "amount": fen(req.amount)?, "description": "charging session limit"},
            "notify_url": self.cfg.notify_url,
            "openid": openid,
            "need_user_confirm": false,
        });
        let (status, text) = self
            .call(Method::POST, "/v3/payscore/serviceorder", Some(&body))
            .await?;
        if !(200..300).contains(&status) {
            return Err(error_of(status, &text));
        }
        let order = Self::order_of(&text)?;
        if order.out_order_no != req.out_trade_no {
            return Err(ProviderError::Unknown(
                "the answer is about another order".into(),
            ));
        }
        Ok(Authorised {
            provider_ref: order.order_id,
            amount: req.amount,
        })
    }

    async fn complete(&self, req: &CaptureRequest) -> Result<CaptureOutcome, ProviderError> {
        let amount = fen(req.amount)?;
        let end = jiff::tz::TimeZone::fixed(jiff::tz::offset(8))
            .to_datetime(jiff::Timestamp::now())
            .strftime("%Y%m%d%H%M%S")
            .to_string();
        let body = json!({
            "appid": self.cfg.appid,
            "service_id": self.cfg.service_id,
            "post_payments": [{"name": "charging", "amount": amount, "description": req.description}],
            "total_amount": amount,
            "time_range": {"end_time": end},
        });
        let path = format!("/v3/payscore/serviceorder/{}/complete", req.out_trade_no);
        let (status, text) = self.call(Method::POST, &path, Some(&body)).await?;
        if !(200..300).contains(&status) {
            return Err(error_of(status, &text));
        }
        let order = Self::order_of(&text)?;
        Ok(match order.transaction_id() {
            Some(t) => CaptureOutcome::Captured {
                transaction_ref: t.to_owned(),
            },
            None => CaptureOutcome::Processing,
        })
    }

    async fn revoke(&self, out_trade_no: &str, reason: &str) -> Result<(), ProviderError> {
        let body =
            json!({"appid": self.cfg.appid, "service_id": self.cfg.service_id, "reason": reason});
        let path = format!("/v3/payscore/serviceorder/{out_trade_no}/cancel");
        let (status, text) = self.call(Method::POST, &path, Some(&body)).await?;
        match status {
            200..=299 => Ok(()),
            _ => Err(error_of(status, &text)),
        }
    }

    async fn get(&self, out_trade_no: &str) -> Result<PaymentStatus, ProviderError> {
        let path = format!(
            "/v3/payscore/serviceorder?service_id={}&out_order_no={out_trade_no}&appid={}",
            self.cfg.service_id, self.cfg.appid
        );
        let (status, text) = self.call(Method::GET, &path, None).await?;
        if status == 404 {
            return Ok(PaymentStatus::NotFound);
        }
        if !(200..300).contains(&status) {
            return Err(error_of(status, &text));
        }
        let order = Self::order_of(&text)?;
        Ok(
            match (order.state.as_str(), order.state_description.as_str()) {
                ("REVOKED" | "EXPIRED", _) => PaymentStatus::Cancelled,
                ("DONE", _) | (_, "USER_PAID") => match (order.transaction_id(), &order.collection)
                {
                    (Some(t), Some(c)) => PaymentStatus::Captured {
                        transaction_ref: t.to_owned(),
                        amount: Money::from_cents(c.paid_amount),
                    },
                    _ => PaymentStatus::Processing,
                },
                (_, "MCH_COMPLETE") => PaymentStatus::Processing,
                _ => PaymentStatus::Authorised {
                    provider_ref: order.order_id,
                },
            },
        )
    }

    async fn refund_collection(&self, req: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let body = json!({
            "transaction_id": req.transaction_ref,
            "out_refund_no": req.out_refund_no,
            "reason": req.reason,
            "notify_url": self.cfg.notify_url,
            "amount": {"refund": fen(req.amount)?, "total": fen(req.total)?, "currency": "CNY"},
        });
        let (status, text) = self
            .call(Method::POST, "/v3/refund/domestic/refunds", Some(&body))
            .await?;
        if !(200..300).contains(&status) {
            return Err(error_of(status, &text));
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match v["status"].as_str() {
            Some("SUCCESS") => Ok(RefundOutcome::Succeeded),
            Some("PROCESSING") => Ok(RefundOutcome::Processing),
            other => Err(ProviderError::Declined {
                code: other.unwrap_or("UNKNOWN").to_owned(),
                message: "the refund was not accepted".into(),
            }),
        }
    }
}

impl PaymentProvider for WechatPayScore {
    fn name(&self) -> &str {
        "wechat"
    }

    fn authorise<'a>(
        &'a self,
        req: &'a AuthoriseRequest,
    ) -> BoxFuture<'a, Result<Authorised, ProviderError>> {
        Box::pin(self.create(req))
    }

    fn capture<'a>(
        &'a self,
        req: &'a CaptureRequest,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ProviderError>> {
        Box::pin(self.complete(req))
    }

    fn cancel<'a>(
        &'a self,
        out_trade_no: &'a str,
        _provider_ref: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.revoke(out_trade_no, reason))
    }

    fn refund<'a>(
        &'a self,
        req: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        Box::pin(self.refund_collection(req))
    }

    fn query<'a>(
        &'a self,
        out_trade_no: &'a str,
        _provider_ref: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(self.get(out_trade_no))
    }
}

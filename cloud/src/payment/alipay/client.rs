//! [`AlipayCredit`]: Alipay's open gateway over `reqwest` — form parameters signed RSA2, each
//! answer's `_response` verified against Alipay's public key.
//!
//! Result codes: `10000` success; `40004` a business refusal — declined, except
//! `ACQ.TRADE_NOT_EXIST` (not found) and the `ACQ.SYSTEM_ERROR` family (unknown); `10003`
//! (waiting) and `20000`+ (service unavailable) unknown; `40001`-`40003` a request refused as
//! such. Amounts are yuan strings with two decimals.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};
use voltline_protocol::Money;

use super::sign::{sign_request, verify_answer, verify_notification};
use crate::payment::config::AlipayConfig;
use crate::payment::keys::{PrivateKey, PublicKey};
use crate::payment::provider::{
    transport_error, AuthoriseRequest, Authorised, CaptureOutcome, CaptureRequest, PaymentProvider,
    PaymentStatus, ProviderError, RefundOutcome, RefundRequest,
};

/// The connector.
pub struct AlipayCredit {
    cfg: AlipayConfig,
    key: PrivateKey,
    alipay: PublicKey,
    http: reqwest::Client,
}

impl std::fmt::Debug for AlipayCredit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayCredit")
            .field("gateway_url", &self.cfg.gateway_url)
            .field("app_id", &self.cfg.app_id)
            .finish_non_exhaustive()
    }
}

/// An amount as Alipay writes it: yuan with two decimals.
pub fn yuan_text(amount: Money) -> String {
    format!("{:.2}", amount.round_cents().yuan())
}

/// One answer: code, sub code, the whole `_response` object.
struct Answer {
    code: String,
    sub_code: String,
    body: Value,
}

impl Answer {
    fn refusal(&self) -> ProviderError {
        let message = self.body["sub_msg"]
            .as_str()
            .or(self.body["msg"].as_str())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        let code = if self.sub_code.is_empty() {
            self.code.clone()
        } else {
            self.sub_code.clone()
        };
        match self.code.as_str() {
            "40004" if self.sub_code.contains("SYSTEM_ERROR") => ProviderError::Unknown(code),
            "40004" => ProviderError::Declined { code, message },
            "10003" => ProviderError::Unknown("waiting for the buyer".into()),
            c if c.starts_with('2') => ProviderError::Unknown(format!("gateway {c}")),
            _ => ProviderError::Rejected { code, message },
        }
    }
}

impl AlipayCredit {
    /// A connector for `cfg`; every call times out after `timeout`.
    pub fn new(cfg: &AlipayConfig, timeout: Duration) -> Result<AlipayCredit, ProviderError> {
        let key = PrivateKey::from_pem(cfg.app_private_key_pem.expose()).map_err(|e| {
            ProviderError::Config(format!("payments.alipay.app_private_key_pem: {e}"))
        })?;
        let alipay = PublicKey::from_pem(&cfg.alipay_public_key_pem).map_err(|e| {
            ProviderError::Config(format!("payments.alipay.alipay_public_key_pem: {e}"))
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Config(format!("HTTP client: {e}")))?;
        Ok(AlipayCredit {
            cfg: cfg.clone(),
            key,
            alipay,
            http,
        })
    }

    /// The signed parameters of a call (public so that tests can check the wire form).
    pub fn params(&self, method: &str, biz: &Value, notify: bool) -> BTreeMap<String, String> {
        let now =
            jiff::tz::TimeZone::fixed(jiff::tz::offset(8)).to_datetime(jiff::Timestamp::now());
        let mut p: BTreeMap<String, String> = [
            ("app_id", self.cfg.app_id.clone()),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", now.strftime("%Y-%m-%d %H:%M:%S").to_string()),
            ("version", "1.0".to_owned()),
            ("biz_content", biz.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if notify {
            p.insert("notify_url".into(), self.cfg.notify_url.clone());
        }
        let sign = sign_request(&self.key, &p);
        p.insert("sign".into(), sign);
        p
    }

    async fn call(&self, method: &str, biz: Value, notify: bool) -> Result<Answer, ProviderError> {
        let params = self.params(method, &biz, notify);
        let resp = self
            .http
            .post(&self.cfg.gateway_url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(form(&params))
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport_error(&e))?;
        if status != 200 {
            return Err(ProviderError::Unknown(format!("gateway HTTP {status}")));
        }
        let (raw, signed) = verify_answer(&self.alipay, &text, method)
            .map_err(|e| ProviderError::BadSignature(e.to_string()))?;
        let body: Value = serde_json::from_str(raw)
            .map_err(|e| ProviderError::Unknown(format!("unreadable answer: {e}")))?;
        let code = body["code"].as_str().unwrap_or("").to_owned();
        if !signed && !code.starts_with('2') {
            return Err(ProviderError::BadSignature("an unsigned answer".into()));
        }
        Ok(Answer {
            sub_code: body["sub_code"].as_str().unwrap_or("").to_owned(),
            code,
            body,
        })
    }

    /// Verifies an asynchronous notification's form parameters.
    pub fn verify_notification(&self, params: &BTreeMap<String, String>) -> Result<(), String> {
        if params.get("app_id") != Some(&self.cfg.app_id) {
            return Err("the notification is for another app_id".into());
        }
        verify_notification(&self.alipay, params).map_err(|e| e.to_string())
    }

    async fn freeze(&self, req: &AuthoriseRequest) -> Result<Authorised, ProviderError> {
        let auth_code = req.user_ref.as_deref().ok_or_else(|| {
            ProviderError::Config("an Alipay freeze needs the driver's authorisation code: send provider_user with the start".into())
        })?;
        let biz = json!({
            "auth_code": auth_code,
            "auth_code_type": "bar_code",
            "out_order_no": req.out_trade_no,
            "out_request_no": req.out_trade_no,
            "order_title": req.description,
            "amount": yuan_text(req.amount),
            "product_code": "PRE_AUTH",
        });
        let a = self
            .call("alipay.fund.auth.order.freeze", biz, true)
            .await?;
        match (a.code.as_str(), a.body["status"].as_str()) {
            ("10000", Some("SUCCESS")) => Ok(Authorised {
                provider_ref: a.body["auth_no"].as_str().unwrap_or_default().to_owned(),
                amount: req.amount,
            }),
            ("10000", _) => Err(ProviderError::Unknown("the freeze is not final yet".into())),
            _ => Err(a.refusal()),
        }
    }

    async fn pay(&self, req: &CaptureRequest) -> Result<CaptureOutcome, ProviderError> {
        let biz = json!({
            "out_trade_no": req.out_trade_no,
            "total_amount": yuan_text(req.amount),
            "subject": req.description,
            "product_code": "PREAUTH_PAY",
            "auth_no": req.provider_ref,
            "auth_confirm_mode": "COMPLETE",
        });
        let a = self.call("alipay.trade.pay", biz, true).await?;
        match a.code.as_str() {
            "10000" => Ok(CaptureOutcome::Captured {
                transaction_ref: a.body["trade_no"].as_str().unwrap_or_default().to_owned(),
            }),
            _ => Err(a.refusal()),
        }
    }

    async fn unfreeze(
        &self,
        out_trade_no: &str,
        auth_no: &str,
        reason: &str,
    ) -> Result<(), ProviderError> {
        let biz = json!({"auth_no": auth_no, "out_order_no": out_trade_no, "out_request_no": out_trade_no, "remark": reason});
        let a = self
            .call("alipay.fund.auth.operation.cancel", biz, false)
            .await?;
        match a.code.as_str() {
            "10000" => Ok(()),
            _ => Err(a.refusal()),
        }
    }

    async fn refund_trade(&self, req: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let biz = json!({
            "out_trade_no": req.out_trade_no,
            "refund_amount": yuan_text(req.amount),
            "out_request_no": req.out_refund_no,
            "refund_reason": req.reason,
        });
        let a = self.call("alipay.trade.refund", biz, false).await?;
        match (a.code.as_str(), a.body["fund_change"].as_str()) {
            ("10000", Some("Y")) => Ok(RefundOutcome::Succeeded),
            ("10000", _) => Ok(RefundOutcome::Processing),
            _ => Err(a.refusal()),
        }
    }

    async fn status(
        &self,
        out_trade_no: &str,
        auth_no: Option<&str>,
    ) -> Result<PaymentStatus, ProviderError> {
        if auth_no.is_none_or(str::is_empty) {
            let biz = json!({"out_order_no": out_trade_no, "out_request_no": out_trade_no});
            let a = self
                .call("alipay.fund.auth.operation.detail.query", biz, false)
                .await?;
            return match (a.code.as_str(), a.body["status"].as_str()) {
                ("10000", Some("SUCCESS")) => Ok(PaymentStatus::Authorised {
                    provider_ref: a.body["auth_no"].as_str().unwrap_or_default().to_owned(),
                }),
                ("10000", Some("CLOSED")) => Ok(PaymentStatus::Cancelled),
                ("10000", _) => Ok(PaymentStatus::Processing),
                ("40004", _) if a.sub_code.contains("NOT_EXIST") => Ok(PaymentStatus::NotFound),
                _ => Err(a.refusal()),
            };
        };
        let a = self
            .call(
                "alipay.trade.query",
                json!({"out_trade_no": out_trade_no}),
                false,
            )
            .await?;
        match (a.code.as_str(), a.body["trade_status"].as_str()) {
            ("10000", Some("TRADE_SUCCESS" | "TRADE_FINISHED")) => {
                let amount = a.body["total_amount"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .map(Money::from_yuan);
                Ok(PaymentStatus::Captured {
                    transaction_ref: a.body["trade_no"].as_str().unwrap_or_default().to_owned(),
                    amount: amount.ok_or_else(|| {
                        ProviderError::Unknown("a paid trade without an amount".into())
                    })?,
                })
            }
            ("10000", Some("WAIT_BUYER_PAY")) => Ok(PaymentStatus::Processing),
            ("10000", Some("TRADE_CLOSED")) => Ok(PaymentStatus::Declined {
                code: "TRADE_CLOSED".into(),
                message: "closed without payment".into(),
            }),
            ("40004", _) if a.sub_code == "ACQ.TRADE_NOT_EXIST" => Ok(PaymentStatus::NotFound),
            _ => Err(a.refusal()),
        }
    }
}

/// `application/x-www-form-urlencoded` of `params`.
pub fn form(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encoding of a form value (unreserved characters stay, everything else is `%XX`).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Parses an `application/x-www-form-urlencoded` body (`+` is a space).
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

impl PaymentProvider for AlipayCredit {
    fn name(&self) -> &str {
        "alipay"
    }

    fn authorise<'a>(
        &'a self,
        req: &'a AuthoriseRequest,
    ) -> BoxFuture<'a, Result<Authorised, ProviderError>> {
        Box::pin(self.freeze(req))
    }

    fn capture<'a>(
        &'a self,
        req: &'a CaptureRequest,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ProviderError>> {
        Box::pin(self.pay(req))
    }

    fn cancel<'a>(
        &'a self,
        out_trade_no: &'a str,
        provider_ref: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.unfreeze(out_trade_no, provider_ref, reason))
    }

    fn refund<'a>(
        &'a self,
        req: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        Box::pin(self.refund_trade(req))
    }

    fn query<'a>(
        &'a self,
        out_trade_no: &'a str,
        provider_ref: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(self.status(out_trade_no, provider_ref))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip_and_amounts_have_two_decimals() {
        let mut p = BTreeMap::new();
        p.insert("biz_content".to_owned(), r#"{"a":"b c&d=é"}"#.to_owned());
        p.insert("timestamp".to_owned(), "2026-01-01 10:00:00".to_owned());
        assert_eq!(parse_form(&form(&p)), p);
        assert_eq!(
            parse_form("a=1+2&b=%41%zz"),
            [
                ("a".to_owned(), "1 2".to_owned()),
                ("b".to_owned(), "A%zz".to_owned())
            ]
            .into_iter()
            .collect()
        );
        assert_eq!(yuan_text(Money::from_cents(1234)), "12.34");
        assert_eq!(yuan_text(Money::from_cents(5000)), "50.00");
    }
}

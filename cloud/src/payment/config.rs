//! The `[payments]` section of the cloud configuration: timeouts and retry bounds, and each
//! credit provider's endpoint, credentials and keys. A provider is enabled by giving its
//! section; private keys and the API v3 key are [`Secret`]s (never printed). Keys are PEM text
//! (PKCS#8 or PKCS#1 private keys, SPKI or PKCS#1 public keys).

use serde::{Deserialize, Serialize};

use super::secret::Secret;

/// Payments through providers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// How long a session start waits for a credit authorisation before answering 503.
    pub authorise_timeout_ms: u64,
    /// Timeout of every other provider call (capture, cancel, refund, query).
    pub call_timeout_ms: u64,
    /// How often the resolver looks for captures due and outcomes to resolve.
    pub resolver_interval_ms: u64,
    /// First wait before asking again about an unknown outcome; doubles per attempt.
    pub retry_base_ms: u64,
    /// Attempts on one payment before it is left for an operator (`attempts` in the row).
    pub max_attempts: u32,
    /// The largest spending limit a credit authorisation asks for, yuan.
    pub max_authorisation_yuan: rust_decimal::Decimal,
    /// How far a callback's timestamp may be from our clock, seconds.
    pub callback_tolerance_s: i64,
    pub wechat: Option<WechatConfig>,
    pub alipay: Option<AlipayConfig>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            authorise_timeout_ms: 5_000,
            call_timeout_ms: 10_000,
            resolver_interval_ms: 1_000,
            retry_base_ms: 2_000,
            max_attempts: 12,
            max_authorisation_yuan: rust_decimal::Decimal::new(500, 0),
            callback_tolerance_s: 300,
            wechat: None,
            alipay: None,
        }
    }
}

/// WeChat Pay Score (API v3 service orders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    /// `https://api.mch.weixin.qq.com` in production.
    pub base_url: String,
    pub mchid: String,
    pub appid: String,
    /// The Pay Score service id.
    pub service_id: String,
    /// Serial number of the merchant API certificate.
    pub merchant_serial_no: String,
    /// The merchant API private key, PEM.
    pub merchant_private_key_pem: Secret,
    /// Serial number of the WeChat Pay platform certificate (or public key id).
    pub platform_serial_no: String,
    /// The platform public key, PEM (verifies answers and callbacks).
    pub platform_public_key_pem: String,
    /// The API v3 key (32 bytes) that decrypts callback resources.
    pub api_v3_key: Secret,
    /// Where WeChat sends notifications (our `/v1/payments/wechat/notify`).
    pub notify_url: String,
    /// The risk fund name sent at creation (`ESTIMATE_ORDER_COST` for charging).
    #[serde(default = "risk_fund_name")]
    pub risk_fund_name: String,
}

fn risk_fund_name() -> String {
    "ESTIMATE_ORDER_COST".into()
}

/// Alipay fund authorisation (freeze, then pay with the authorisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayConfig {
    /// `https://openapi.alipay.com/gateway.do` in production.
    pub gateway_url: String,
    pub app_id: String,
    /// The application private key, PEM (RSA2 signs requests).
    pub app_private_key_pem: Secret,
    /// Alipay's public key, PEM (verifies answers and notifications).
    pub alipay_public_key_pem: String,
    /// Where Alipay sends notifications (our `/v1/payments/alipay/notify`).
    pub notify_url: String,
}

impl PaymentsConfig {
    /// Refuses values that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if !(100..=60_000).contains(&self.authorise_timeout_ms)
            || !(100..=120_000).contains(&self.call_timeout_ms)
        {
            return Err("payments.authorise_timeout_ms must be 100..=60000 and payments.call_timeout_ms 100..=120000".into());
        }
        if !(10..=3_600_000).contains(&self.resolver_interval_ms)
            || self.retry_base_ms == 0
            || !(1..=100).contains(&self.max_attempts)
        {
            return Err("payments.resolver_interval_ms must be 10..=3600000, payments.retry_base_ms above 0 and payments.max_attempts 1..=100".into());
        }
        if self.max_authorisation_yuan <= rust_decimal::Decimal::ZERO {
            return Err("payments.max_authorisation_yuan must be above 0".into());
        }
        if let Some(w) = &self.wechat {
            if w.api_v3_key.expose().len() != 32 {
                return Err("payments.wechat.api_v3_key must be the 32-byte API v3 key".into());
            }
            if w.mchid.is_empty() || w.appid.is_empty() || w.service_id.is_empty() {
                return Err("payments.wechat needs mchid, appid and service_id".into());
            }
        }
        if let Some(a) = &self.alipay {
            if a.app_id.is_empty() {
                return Err("payments.alipay needs app_id".into());
            }
        }
        Ok(())
    }
}

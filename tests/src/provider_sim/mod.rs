//! [`ProviderSim`]: WeChat Pay Score and Alipay fund authorisation served on 127.0.0.1 (axum),
//! close enough to their public APIs that the cloud's real connectors talk to it unchanged:
//! it verifies every request's signature with our side's public key, signs every answer and
//! notification with the provider's key, and encrypts WeChat resources with the API v3 key.
//!
//! Fault knobs, per provider and operation, consumed one per call ([`ProviderSim::fault`]):
//! a slow answer, a failure (5xx / gateway error), a hang before acting (no answer at all), a
//! lost answer (acts, then never answers) and a decline. Notifications after a collection go to
//! [`ProviderSim::set_callback_base`], each sent [`ProviderSim::duplicate_callbacks`] times.
//!
//! The simulator never collects one order twice: a repeated capture of a number returns the
//! first result, and [`SimOrder::collections`] counts real collections for the tests.
//!
//! It must never bind beyond 127.0.0.1, and a hang lasts at most [`HANG`].

mod alipay;
pub mod keys;
mod wechat;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use voltline_cloud::payment::{AlipayConfig, PaymentsConfig, Secret, WechatConfig};

pub use keys::{keys, SimKeys};

/// How long a hanging answer waits (far beyond any client timeout a test sets).
pub const HANG: Duration = Duration::from_secs(120);
/// The API v3 key the simulator encrypts with.
pub const API_V3_KEY: &str = "0123456789abcdefghijklmnopqrstuv";
pub const MCHID: &str = "1900000109";
pub const APPID: &str = "wxd678efh567hg6787";
pub const SERVICE_ID: &str = "500001";
pub const MERCHANT_SERIAL: &str = "MERCHANT-SERIAL-1";
pub const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0001";
pub const ALIPAY_APP_ID: &str = "2021000000000001";

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Wechat,
    Alipay,
}

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Authorise,
    Capture,
    Cancel,
    Query,
    Refund,
}

/// What one call does instead of answering normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers normally after this long.
    Slow(Duration),
    /// A provider-side failure (HTTP 500, Alipay `20000`); nothing happens.
    Fail,
    /// Never answers; nothing happens.
    Hang,
    /// Does what was asked, then never answers.
    LoseAnswer,
    /// A business refusal (HTTP 403, Alipay `40004`); nothing happens.
    Decline,
}

/// Where a simulated order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimState {
    Authorised,
    /// Completed and collected.
    Paid,
    Cancelled,
}

/// One order at the simulated provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub provider: Provider,
    pub out_no: String,
    /// WeChat `order_id` or Alipay `auth_no`.
    pub provider_ref: String,
    pub authorised_fen: i64,
    pub state: SimState,
    pub captured_fen: Option<i64>,
    pub transaction_id: Option<String>,
    /// Times money was actually collected (must never exceed 1).
    pub collections: u32,
    /// Capture requests received.
    pub capture_calls: u32,
    pub refunded_fen: i64,
    pub user: String,
}

#[derive(Default)]
struct Inner {
    faults: HashMap<(Provider, Op), VecDeque<Fault>>,
    orders: BTreeMap<String, SimOrder>,
    refunds: BTreeMap<String, i64>,
    calls: HashMap<(Provider, Op), u32>,
    bad_signatures: u32,
    callbacks_sent: u32,
    callback_base: Option<String>,
    duplicates: u32,
    next: u64,
}

/// Shared state of the simulator.
#[derive(Clone, Default)]
pub(crate) struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call and takes its fault, if any.
    pub(crate) fn enter(&self, p: Provider, op: Op) -> Option<Fault> {
        let mut g = self.lock();
        *g.calls.entry((p, op)).or_default() += 1;
        g.faults.get_mut(&(p, op)).and_then(VecDeque::pop_front)
    }

    pub(crate) fn bad_signature(&self) {
        self.lock().bad_signatures += 1;
    }

    pub(crate) fn next_id(&self, prefix: &str) -> String {
        let mut g = self.lock();
        g.next += 1;
        format!("{prefix}{:010}", g.next)
    }

    pub(crate) fn with_orders<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, SimOrder>, &mut BTreeMap<String, i64>) -> T,
    ) -> T {
        let mut g = self.lock();
        let g = &mut *g;
        f(&mut g.orders, &mut g.refunds)
    }

    pub(crate) fn callback_sent(&self) {
        self.lock().callbacks_sent += 1;
    }

    pub(crate) fn callbacks(&self) -> Option<(String, u32)> {
        let g = self.lock();
        g.callback_base.clone().map(|b| (b, g.duplicates.max(1)))
    }
}

/// Waits out a fault that delays (slow, hang); returns what is left to act on.
pub(crate) async fn before(fault: Option<Fault>) -> Option<Fault> {
    match fault {
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(HANG).await;
            Some(Fault::Hang)
        }
        other => other,
    }
}

/// The running simulator (stops when dropped).
pub struct ProviderSim {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for ProviderSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProviderSim {
    /// Starts both APIs on a free 127.0.0.1 port.
    pub async fn start() -> std::io::Result<ProviderSim> {
        let shared = Shared::default();
        let app = wechat::routes(shared.clone()).merge(alipay::routes(shared.clone()));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ProviderSim { addr, shared, task })
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `[payments]` configuration that points both connectors here, with the generated
    /// keys, short timeouts and a fast resolver.
    pub fn payments_config(&self) -> PaymentsConfig {
        let k = keys();
        PaymentsConfig {
            authorise_timeout_ms: 3_000,
            call_timeout_ms: 800,
            resolver_interval_ms: 100,
            retry_base_ms: 100,
            max_attempts: 20,
            wechat: Some(WechatConfig {
                base_url: self.base_url(),
                mchid: MCHID.into(),
                appid: APPID.into(),
                service_id: SERVICE_ID.into(),
                merchant_serial_no: MERCHANT_SERIAL.into(),
                merchant_private_key_pem: Secret::new(k.merchant.private_pem.clone()),
                platform_serial_no: PLATFORM_SERIAL.into(),
                platform_public_key_pem: k.provider.public_pem.clone(),
                api_v3_key: Secret::new(API_V3_KEY),
                notify_url: "http://127.0.0.1/v1/payments/wechat/notify".into(),
                risk_fund_name: "ESTIMATE_ORDER_COST".into(),
            }),
            alipay: Some(AlipayConfig {
                gateway_url: format!("{}/gateway.do", self.base_url()),
                app_id: ALIPAY_APP_ID.into(),
                app_private_key_pem: Secret::new(k.merchant.private_pem.clone()),
                alipay_public_key_pem: k.provider.public_pem.clone(),
                notify_url: "http://127.0.0.1/v1/payments/alipay/notify".into(),
            }),
            ..PaymentsConfig::default()
        }
    }

    /// Where notifications go (the cloud's base URL, known once it runs).
    pub fn set_callback_base(&self, base: impl Into<String>) {
        self.shared.lock().callback_base = Some(base.into());
    }

    /// Stops sending notifications.
    pub fn disable_callbacks(&self) {
        self.shared.lock().callback_base = None;
    }

    /// Sends each notification `times` times (same notification id).
    pub fn duplicate_callbacks(&self, times: u32) {
        self.shared.lock().duplicates = times.max(1);
    }

    /// The next `times` calls of `op` at `provider` meet `fault`.
    pub fn fault(&self, provider: Provider, op: Op, fault: Fault, times: usize) {
        let mut g = self.shared.lock();
        g.faults
            .entry((provider, op))
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// Calls of `op` at `provider` received (signature checked or not).
    pub fn calls(&self, provider: Provider, op: Op) -> u32 {
        self.shared
            .lock()
            .calls
            .get(&(provider, op))
            .copied()
            .unwrap_or(0)
    }

    /// Requests refused for a bad signature.
    pub fn bad_signatures(&self) -> u32 {
        self.shared.lock().bad_signatures
    }

    /// Notifications delivered (any answer), duplicates included.
    pub fn callbacks_sent(&self) -> u32 {
        self.shared.lock().callbacks_sent
    }

    /// The order with our number `out_no`.
    pub fn order(&self, out_no: &str) -> Option<SimOrder> {
        self.shared.lock().orders.get(out_no).cloned()
    }

    /// The provider collects a declined order later by itself (as Pay Score keeps trying) and
    /// notifies; `false` if there is no such WeChat order.
    pub fn collect_later(&self, out_no: &str, fen: i64) -> bool {
        let tx = self.shared.next_id("4200");
        let order = self.shared.with_orders(|orders, _| {
            let o = orders
                .get_mut(out_no)
                .filter(|o| o.provider == Provider::Wechat)?;
            o.state = SimState::Paid;
            o.captured_fen = Some(fen);
            o.transaction_id = Some(tx);
            o.collections += 1;
            Some(o.clone())
        });
        match order {
            Some(o) => {
                wechat::notify(&self.shared, &o);
                true
            }
            None => false,
        }
    }

    /// Every order.
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.lock().orders.values().cloned().collect()
    }
}

//! Credit payment (issue #10) against the simulated providers: the real cloud (SQLite, or
//! PostgreSQL when `VOLTLINE_TEST_PG` is set) with its WeChat Pay Score and Alipay connectors
//! pointed at [`ProviderSim`], sessions started through the HTTP API, transaction records
//! posted as an edge would, settlement and the payment resolver running as in production.
//!
//! Each test ends with the whole ledger audited (balanced, sums equal postings, limits, replay
//! through the reference model), exactly one outcome set per captured session, the provider's
//! "authorised" clearing account back at zero, and the simulator's count of real collections.

use std::time::Duration;

use jiff::civil::date;
use jiff::Timestamp;
use reqwest::Method;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use voltline_cloud::ledger::{LedgerAccountId, ProviderId};
use voltline_cloud::money::Audit;
use voltline_cloud::payment::plans;
use voltline_protocol::domain::OrderId;
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::sync::{Authorisation, Record, RecordBatch, RecordBody, TransactionUp};
use voltline_protocol::{Energy, Money};
use voltline_tests::fixtures::{tou_tariff, transaction_record, SessionSpec};
use voltline_tests::provider_sim::{Fault, Op, Provider, ProviderSim};
use voltline_tests::{eventually, CloudOptions, DriverSpec, SeededSite, SiteSpec, TestCloud};

const WAIT: Duration = Duration::from_secs(30);

struct World {
    cloud: TestCloud,
    sim: ProviderSim,
    site: SeededSite,
    seq: std::sync::atomic::AtomicU64,
}

async fn world(name: &str) -> World {
    let sim = ProviderSim::start().await.expect("the simulator starts");
    let mut opts = CloudOptions::from_env();
    opts.config.payments = sim.payments_config();
    let cloud = TestCloud::start(opts).await.expect("the cloud starts");
    sim.set_callback_base(format!("http://{}", cloud.http_addr()));
    let mut spec = SiteSpec::new(&format!("{name}-{}", rand::random::<u32>()), 1);
    spec.drivers.push(DriverSpec {
        account: "driver-credit".into(),
        top_up: Money::ZERO,
        cards: vec![],
    });
    spec.tariff = Some(tou_tariff(1, "Asia/Shanghai"));
    let site = cloud.seed_site(&spec).await.expect("the site seeds");
    World {
        cloud,
        sim,
        site,
        seq: std::sync::atomic::AtomicU64::new(1),
    }
}

fn yuan(d: rust_decimal::Decimal) -> Money {
    Money::from_yuan(d)
}

impl World {
    fn driver_token(&self) -> &str {
        &self.site.drivers[0].token
    }

    async fn start(&self, provider: &str, amount: &str) -> (u16, Value) {
        let body = json!({
            "charger": self.site.chargers[0].pile.to_string(),
            "connector": 1,
            "account": self.site.drivers[0].account.as_str(),
            "payment_method": {"method": "provider", "provider": provider},
            "provider_user": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "amount": amount,
        });
        self.cloud
            .call(
                Method::POST,
                "/v1/sessions",
                Some(self.driver_token()),
                Some(&body),
            )
            .await
            .unwrap()
    }

    /// Starts a session that must be accepted; its order id.
    async fn started(&self, provider: &str, amount: &str) -> OrderId {
        let (status, body) = self.start(provider, amount).await;
        assert_eq!(status, 202, "{body}");
        body["order_id"].as_str().unwrap().parse().unwrap()
    }

    /// Posts the charger's record of a 10 kWh peak session (1.00 + 0.60 per kWh = 16.00).
    async fn charge(&self, order: &OrderId) {
        let stored = self.cloud.store().get_order(order).await.unwrap();
        let pile = self.site.chargers[0].pile;
        let spec = SessionSpec {
            pile,
            connector: 1,
            serial: stored.transaction_serial.expect("a platform serial"),
            start: date(2026, 1, 5).at(10, 0, 0, 0),
            end: date(2026, 1, 5).at(11, 0, 0, 0),
            meter_start: Energy::from_wh(1_000_000),
            meter_end: Energy::from_wh(1_010_000),
            total: yuan(dec!(16)),
            card: PhysicalCardNo::NONE,
        };
        let record = Record {
            seq: self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            at: Timestamp::now(),
            body: RecordBody::Transaction(TransactionUp {
                pile,
                authorisation: Authorisation::Order {
                    order: order.clone(),
                },
                edge_cost: None,
                record: transaction_record(&spec),
            }),
        };
        let batch = RecordBatch::new(self.site.site.clone(), vec![record]);
        self.cloud
            .post_records_gzip(&self.cloud.edge_http_base(), &self.site.edge_token, &batch)
            .await
            .unwrap();
    }

    async fn payment(&self, order: &OrderId) -> Value {
        let path = format!("/v1/sessions/{order}/payment");
        self.cloud
            .expect(Method::GET, &path, self.driver_token(), None, 200)
            .await
            .unwrap()
    }

    /// Waits until the order's payment is in `state`.
    async fn wait_state(&self, order: &OrderId, state: &str) -> Value {
        let reached = eventually(WAIT, &format!("payment of {order} {state}"), || async {
            let p = self.payment(order).await;
            (p["state"] == state).then_some(p)
        })
        .await;
        match reached {
            Ok(p) => p,
            Err(e) => panic!("{e}; the payment stands at {}", self.payment(order).await),
        }
    }

    async fn audit(&self) -> Audit {
        self.cloud
            .assert_ledger_balanced()
            .await
            .expect("the ledger is balanced")
    }
}

fn posted(a: &Audit, id: &LedgerAccountId) -> Money {
    a.accounts
        .get(id)
        .map(|(acc, _)| acc.posted())
        .unwrap_or(Money::ZERO)
}

fn sets_with_key(a: &Audit, key: &str) -> usize {
    a.sets.iter().filter(|(_, s)| s.key.as_str() == key).count()
}

/// The money invariants of one finished credit session.
fn assert_one_outcome(a: &Audit, provider: &str, order: &OrderId) {
    let p = ProviderId::new(provider).unwrap();
    assert_eq!(
        sets_with_key(a, plans::outcome_key(&p, order).as_str()),
        1,
        "exactly one capture or decline"
    );
    assert_eq!(
        posted(a, &plans::authorised_account(&p)),
        Money::ZERO,
        "no authorised credit left over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_authorises_the_limit_captures_the_cost_once_and_refunds() {
    let w = world("credit-happy").await;
    w.sim.duplicate_callbacks(1);
    let order = w.started("wechat", "50.00").await;
    // The authorisation is the spending limit the edge enforces, as for a prepaid hold.
    let stored = w.cloud.store().get_order(&order).await.unwrap();
    assert_eq!(stored.limit.amount, Some(yuan(dec!(50))));
    assert!(stored
        .hold_id
        .as_deref()
        .unwrap()
        .starts_with("credit:wechat:"));
    let commands = w
        .cloud
        .store()
        .pending_commands(Some(&w.site.site), Timestamp::now(), 10)
        .await
        .unwrap();
    let start = commands
        .iter()
        .find(|c| c.order.as_ref() == Some(&order))
        .expect("the start command is queued");
    match &start.command {
        voltline_protocol::sync::Command::StartCharging { limit, .. } => {
            assert_eq!(limit.amount, Some(yuan(dec!(50))))
        }
        other => panic!("not a start: {other:?}"),
    }
    let out_no = voltline_cloud::payment::out_trade_no(&order);
    assert_eq!(w.sim.order(&out_no).unwrap().authorised_fen, 5_000);
    assert_eq!(w.payment(&order).await["state"], "authorised");

    w.charge(&order).await;
    let p = w.wait_state(&order, "captured").await;
    assert_eq!(p["captured"], "16.00");
    assert!(
        p["transaction_ref"].as_str().is_some_and(|t| !t.is_empty()),
        "{p}"
    );
    let sim_order = w.sim.order(&out_no).unwrap();
    assert_eq!(
        (sim_order.captured_fen, sim_order.collections),
        (Some(1_600), 1)
    );

    let a = w.audit().await;
    assert_one_outcome(&a, "wechat", &order);
    let driver = &w.site.drivers[0].account;
    assert_eq!(
        posted(&a, &LedgerAccountId::DriverWallet(driver.clone())),
        Money::ZERO,
        "the wallet is only passed through"
    );
    assert_eq!(
        posted(
            &a,
            &LedgerAccountId::ProviderClearing(ProviderId::new("wechat").unwrap())
        ),
        yuan(dec!(16))
    );
    let payable = posted(
        &a,
        &LedgerAccountId::OperatorPayable(w.site.operator.clone()),
    );
    assert_eq!(
        payable + posted(&a, &LedgerAccountId::PlatformRevenue),
        yuan(dec!(16))
    );

    // Refund: the operator, idempotent by request id, never beyond what was captured.
    let path = format!("/v1/sessions/{order}/refunds");
    let body = json!({"amount": "6.00", "request_id": "complaint-1", "reason": "short session"});
    let op = w.site.operator_token.clone();
    let r = w
        .cloud
        .expect(Method::POST, &path, &op, Some(&body), 200)
        .await
        .unwrap();
    assert_eq!(r["state"], "succeeded", "{r}");
    let again = w
        .cloud
        .expect(Method::POST, &path, &op, Some(&body), 200)
        .await
        .unwrap();
    assert_eq!(again, r, "the same request is the same refund");
    let (status, _) = w
        .cloud
        .call(Method::POST, &path, Some(w.driver_token()), Some(&body))
        .await
        .unwrap();
    assert_eq!(status, 403, "drivers do not refund");
    let too_much = json!({"amount": "10.01", "request_id": "complaint-2"});
    let (status, b) = w
        .cloud
        .call(Method::POST, &path, Some(&op), Some(&too_much))
        .await
        .unwrap();
    assert_eq!(status, 422, "{b}");
    assert_eq!(w.sim.order(&out_no).unwrap().refunded_fen, 600);
    let a = w.audit().await;
    assert_eq!(
        posted(
            &a,
            &LedgerAccountId::ProviderClearing(ProviderId::new("wechat").unwrap())
        ),
        yuan(dec!(10))
    );
    assert_eq!(
        posted(
            &a,
            &LedgerAccountId::OperatorPayable(w.site.operator.clone())
        ),
        payable - yuan(dec!(6))
    );
    assert_eq!(w.sim.bad_signatures(), 0, "every request was signed right");
    w.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_at_start_fails_the_start_clearly_and_sends_no_command() {
    let w = world("credit-decline").await;
    w.sim
        .fault(Provider::Wechat, Op::Authorise, Fault::Decline, 1);
    let (status, body) = w.start("wechat", "50.00").await;
    assert_eq!(status, 402, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/payment-declined"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("declined"),
        "{body}"
    );
    let commands = w
        .cloud
        .store()
        .pending_commands(Some(&w.site.site), Timestamp::now(), 10)
        .await
        .unwrap();
    assert!(commands.is_empty(), "no start command: {commands:?}");
    let a = w.audit().await;
    assert!(
        a.sets
            .iter()
            .all(|(_, s)| !s.key.as_str().starts_with("credit:")),
        "nothing held"
    );
    // A timeout at start is a 503 and leaves nothing behind either; the resolver finds the
    // authorisation the simulator did make and cancels it.
    w.sim
        .fault(Provider::Alipay, Op::Authorise, Fault::LoseAnswer, 1);
    let (status, body) = w.start("alipay", "30.00").await;
    assert_eq!(status, 503, "{body}");
    eventually(WAIT, "the orphan authorisation is cancelled", || async {
        w.sim
            .orders()
            .iter()
            .any(|o| {
                o.provider == Provider::Alipay
                    && o.state == voltline_tests::provider_sim::SimState::Cancelled
            })
            .then_some(())
    })
    .await
    .unwrap();
    let commands = w
        .cloud
        .store()
        .pending_commands(Some(&w.site.site), Timestamp::now(), 10)
        .await
        .unwrap();
    assert!(commands.is_empty(), "no start command: {commands:?}");
    w.audit().await;
    w.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_timeout_is_unknown_until_the_resolver_queries_and_is_collected_once() {
    let w = world("credit-timeout").await;
    w.sim.disable_callbacks();
    // Alipay: the capture is done but its answer lost; the query finds it paid.
    w.sim
        .fault(Provider::Alipay, Op::Capture, Fault::LoseAnswer, 1);
    let order = w.started("alipay", "40.00").await;
    w.charge(&order).await;
    let p = w.wait_state(&order, "captured").await;
    assert!(
        p["attempts"].as_i64().unwrap() >= 2,
        "a capture and a query at least: {p}"
    );
    let out_no = voltline_cloud::payment::out_trade_no(&order);
    let o = w.sim.order(&out_no).unwrap();
    assert_eq!(
        (o.collections, o.capture_calls, o.captured_fen),
        (1, 1, Some(1_600)),
        "resolved by query, not a second capture"
    );
    assert!(w.sim.calls(Provider::Alipay, Op::Query) >= 1);
    // WeChat: the capture fails twice before it reaches the provider; the same number is
    // captured again and collected once.
    w.sim.fault(Provider::Wechat, Op::Capture, Fault::Fail, 2);
    let second = w.started("wechat", "40.00").await;
    w.charge(&second).await;
    w.wait_state(&second, "captured").await;
    let o = w
        .sim
        .order(&voltline_cloud::payment::out_trade_no(&second))
        .unwrap();
    assert_eq!(o.collections, 1);
    assert!(o.capture_calls >= 1);
    let a = w.audit().await;
    assert_one_outcome(&a, "alipay", &order);
    assert_one_outcome(&a, "wechat", &second);
    w.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_forged_callbacks_change_nothing() {
    let w = world("credit-dup").await;
    w.sim.duplicate_callbacks(4);
    let order = w.started("wechat", "50.00").await;
    w.charge(&order).await;
    w.wait_state(&order, "captured").await;
    let alipay = w.started("alipay", "50.00").await;
    w.charge(&alipay).await;
    w.wait_state(&alipay, "captured").await;
    eventually(WAIT, "every duplicate delivered", || async {
        (w.sim.callbacks_sent() >= 8).then_some(())
    })
    .await
    .unwrap();
    // A notification signed by anyone else is refused.
    let forged = voltline_cloud::payment::wechat::sign::PlatformSignature::sign(
        &voltline_tests::provider_sim::keys().stranger.private,
        voltline_tests::provider_sim::PLATFORM_SERIAL,
        Timestamp::now().as_second(),
        "n",
        "{}",
    );
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/payments/wechat/notify",
            w.cloud.http_addr()
        ))
        .header("wechatpay-timestamp", forged.timestamp.to_string())
        .header("wechatpay-nonce", forged.nonce)
        .header("wechatpay-signature", forged.signature)
        .header("wechatpay-serial", forged.serial)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/payments/alipay/notify", w.cloud.http_addr()))
        .body("out_trade_no=x&trade_status=TRADE_SUCCESS&total_amount=1.00&sign=AAAA&app_id=2021000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "failure");
    let a = w.audit().await;
    assert_one_outcome(&a, "wechat", &order);
    assert_one_outcome(&a, "alipay", &alipay);
    for o in w.sim.orders() {
        assert_eq!(o.collections, 1, "{o:?}");
    }
    assert_eq!(w.payment(&order).await["captured"], "16.00");
    w.cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_capture_becomes_the_drivers_receivable_under_dunning() {
    let w = world("credit-receivable").await;
    w.sim
        .fault(Provider::Wechat, Op::Capture, Fault::Decline, 1);
    let order = w.started("wechat", "50.00").await;
    w.charge(&order).await;
    let p = w.wait_state(&order, "capture_declined").await;
    assert_eq!(p["dunning"], "open", "{p}");
    let a = w.audit().await;
    assert_one_outcome(&a, "wechat", &order);
    let driver = w.site.drivers[0].account.clone();
    assert_eq!(
        posted(&a, &LedgerAccountId::Receivable(driver)),
        yuan(dec!(16))
    );
    let out_no = voltline_cloud::payment::out_trade_no(&order);
    assert_eq!(w.sim.order(&out_no).unwrap().collections, 0);
    // The provider collects it later by itself: the receivable is cleared, once.
    w.sim.duplicate_callbacks(2);
    assert!(w.sim.collect_later(&out_no, 1_600));
    let p = w.wait_state(&order, "collected").await;
    assert_eq!(p["dunning"], "settled", "{p}");
    let a = w.audit().await;
    assert_eq!(
        posted(
            &a,
            &LedgerAccountId::Receivable(w.site.drivers[0].account.clone())
        ),
        Money::ZERO
    );
    let p_id = ProviderId::new("wechat").unwrap();
    assert_eq!(sets_with_key(&a, &format!("collect:wechat:{order}")), 1);
    assert_eq!(
        posted(&a, &LedgerAccountId::ProviderClearing(p_id)),
        yuan(dec!(16))
    );
    w.cloud.shutdown().await;
}

/// The connectors against the simulator directly: a request signed with a key the provider
/// does not know is refused (nothing happens), and an answer signed by anyone but the
/// provider is not believed (an unknown outcome, to be queried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_and_simulator_refuse_what_is_not_signed_by_the_right_key() {
    use voltline_cloud::payment::alipay::AlipayCredit;
    use voltline_cloud::payment::wechat::WechatPayScore;
    use voltline_cloud::payment::{AuthoriseRequest, PaymentProvider, ProviderError, Secret};
    let sim = ProviderSim::start().await.unwrap();
    let stranger = &voltline_tests::provider_sim::keys().stranger;
    let order: OrderId = "ord-connector-1".parse().unwrap();
    let ask = AuthoriseRequest {
        order: order.clone(),
        account: "driver-x".parse().unwrap(),
        out_trade_no: voltline_cloud::payment::out_trade_no(&order),
        amount: yuan(dec!(20)),
        user_ref: Some("openid-x".into()),
        description: "test".into(),
    };
    let timeout = Duration::from_secs(5);
    let good = sim.payments_config();

    let mut w = good.wechat.clone().unwrap();
    w.merchant_private_key_pem = Secret::new(stranger.private_pem.clone());
    let e = WechatPayScore::new(&w, timeout, 300)
        .unwrap()
        .authorise(&ask)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Rejected { code, .. } if code == "SIGN_ERROR"),
        "{e}"
    );
    let mut w = good.wechat.clone().unwrap();
    w.platform_public_key_pem = stranger.public_pem.clone();
    let e = WechatPayScore::new(&w, timeout, 300)
        .unwrap()
        .authorise(&ask)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::BadSignature(_)), "{e}");

    let mut a = good.alipay.clone().unwrap();
    a.app_private_key_pem = Secret::new(stranger.private_pem.clone());
    let e = AlipayCredit::new(&a, timeout)
        .unwrap()
        .authorise(&ask)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Rejected { .. }), "{e}");
    let mut a = good.alipay.clone().unwrap();
    a.alipay_public_key_pem = stranger.public_pem.clone();
    let e = AlipayCredit::new(&a, timeout)
        .unwrap()
        .authorise(&ask)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::BadSignature(_)), "{e}");

    assert_eq!(
        sim.bad_signatures(),
        2,
        "the simulator refused both forged requests"
    );
    // With the right keys both authorise, and asking again is the same authorisation.
    let wechat = WechatPayScore::new(good.wechat.as_ref().unwrap(), timeout, 300).unwrap();
    let first = wechat.authorise(&ask).await.unwrap();
    assert_eq!(wechat.authorise(&ask).await.unwrap(), first);
    let alipay = AlipayCredit::new(good.alipay.as_ref().unwrap(), timeout).unwrap();
    let mut ask2 = ask.clone();
    ask2.out_trade_no = voltline_cloud::payment::out_trade_no(&"ord-connector-2".parse().unwrap());
    let granted = alipay.authorise(&ask2).await.unwrap();
    assert_eq!(granted.amount, yuan(dec!(20)));
    assert_eq!(sim.orders().len(), 2);
}

/// Several resolvers (as on several cloud instances) racing over the same unknown capture,
/// with duplicate notifications arriving meanwhile: one collection, one outcome in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_resolvers_and_callbacks_capture_once() {
    use voltline_cloud::payment::resolver::Resolver;
    let w = world("credit-race").await;
    w.sim.duplicate_callbacks(3);
    w.sim
        .fault(Provider::Wechat, Op::Capture, Fault::LoseAnswer, 1);
    w.sim.fault(
        Provider::Wechat,
        Op::Query,
        Fault::Slow(Duration::from_millis(200)),
        4,
    );
    let payments = w
        .cloud
        .state()
        .payments
        .clone()
        .expect("payments are configured");
    let order = w.started("wechat", "50.00").await;
    w.charge(&order).await;
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let r = Resolver::new(payments.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    let _ = r.pass(Timestamp::now()).await;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect();
    w.wait_state(&order, "captured").await;
    for r in racers {
        r.await.unwrap();
    }
    let o = w
        .sim
        .order(&voltline_cloud::payment::out_trade_no(&order))
        .unwrap();
    assert_eq!(o.collections, 1, "{o:?}");
    let a = w.audit().await;
    assert_one_outcome(&a, "wechat", &order);
    w.cloud.shutdown().await;
}

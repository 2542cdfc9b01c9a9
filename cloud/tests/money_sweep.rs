//! The expired-hold sweeper (`voltline_cloud::money::HoldSweeper`) on SQLite and PostgreSQL:
//! holds past their expiry whose session never started (no order, order still pending, order
//! failed) are voided exactly once — also when two instances sweep at the same time — and
//! holds of sessions that charged, or not yet expired, are left alone.
//! PostgreSQL runs when VOLTLINE_TEST_PG is set (see tests/common).

mod common;

use jiff::Timestamp;
use voltline_cloud::domain::OrderEvent;
use voltline_cloud::funds::{Funds, HoldRequest, PaymentRequest};
use voltline_cloud::ledger::{IdempotencyKey, LedgerAccountId};
use voltline_cloud::money::funds::lookup;
use voltline_cloud::money::{
    audit, HoldSweeper, LedgerWriter, SqlFunds, SqlFundsConfig, SweepReport, WriterConfig,
};
use voltline_cloud::Store;
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use common::{acct, order_with_start, seed, Ctx};

async fn backends(test: &str) -> Vec<Ctx> {
    let mut out = vec![Ctx::sqlite().await];
    if let Some(pg) = Ctx::postgres(test).await {
        out.push(pg);
    }
    out
}

fn funds(store: &Store) -> SqlFunds {
    let writer = LedgerWriter::start(store.clone(), WriterConfig::default(), None);
    SqlFunds::new(
        writer,
        SqlFundsConfig {
            default_hold: Money::from_cents(1_000),
            minimum_hold: Money::from_cents(100),
        },
    )
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

const EXPIRED: i64 = 1_800_000_000;
const LATER: i64 = 1_900_000_000;
const NOW: i64 = 1_850_000_000;

/// Places a 10.00 hold for a new order expiring at `expires`; stores the order (with its
/// start command) unless `store_order` is false. Returns the order id and the hold id.
async fn started(
    ctx: &Ctx,
    f: &SqlFunds,
    counter: u16,
    expires: i64,
    store_order: bool,
) -> (OrderId, String) {
    let (mut order, start) = order_with_start("s-1", 1, counter, at(LATER));
    let hold = f
        .place_hold(HoldRequest {
            order: order.id.clone(),
            account: acct("d-1"),
            requested: None,
            expires_at: at(expires),
        })
        .await
        .unwrap();
    assert_eq!(hold.amount, Money::from_cents(1_000));
    order.hold_id = Some(hold.hold_id.clone());
    if store_order {
        ctx.store.create_order(&order, &start).await.unwrap();
    }
    (order.id, hold.hold_id)
}

async fn available(f: &SqlFunds) -> Money {
    f.available(&acct("d-1")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_holds_of_sessions_that_never_started_are_voided_exactly_once() {
    for ctx in backends("expired_holds_voided_once").await {
        let b = ctx.backend();
        seed(&ctx.store, "s-1", 1).await;
        let f = funds(&ctx.store);
        f.open_wallet(&acct("d-1"), Money::ZERO).await.unwrap();
        f.top_up(&PaymentRequest {
            account: acct("d-1"),
            amount: Money::from_cents(10_000),
            provider: "test".into(),
            reference: "seed".into(),
        })
        .await
        .unwrap();
        // Voided by the sweep: no order stored, order still pending, order failed.
        let (lost, _) = started(&ctx, &f, 1, EXPIRED, false).await;
        let (pending, _) = started(&ctx, &f, 2, EXPIRED, true).await;
        let (failed, _) = started(&ctx, &f, 3, EXPIRED, true).await;
        let o = ctx.store.get_order(&failed).await.unwrap();
        ctx.store
            .transition_order(&failed, o.version, OrderEvent::StartFailed)
            .await
            .unwrap();
        // Left alone: a session that charged, and a hold not expired yet.
        let (charging, _) = started(&ctx, &f, 4, EXPIRED, true).await;
        let o = ctx.store.get_order(&charging).await.unwrap();
        ctx.store
            .transition_order(&charging, o.version, OrderEvent::StartAccepted)
            .await
            .unwrap();
        let (fresh, _) = started(&ctx, &f, 5, LATER, true).await;
        // Already voided when its start failed: not listed again.
        let (done, done_hold) = started(&ctx, &f, 6, EXPIRED, true).await;
        f.void_hold(&done, &done_hold).await.unwrap();
        assert_eq!(available(&f).await, Money::from_cents(5_000), "{b}");

        // Two instances sweep at once: each hold is voided by exactly one of them.
        let one = HoldSweeper::new(f.writer().clone());
        let other = HoldSweeper::new(LedgerWriter::start(
            ctx.reopen().await,
            WriterConfig::default(),
            None,
        ));
        let (r1, r2) = tokio::join!(one.sweep(at(NOW), 100), other.sweep(at(NOW), 100));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert_eq!(r1.failed + r2.failed, 0, "{b}: {r1:?} {r2:?}");
        assert_eq!(r1.voided + r2.voided, 3, "{b}: {r1:?} {r2:?}");
        assert_eq!(
            available(&f).await,
            Money::from_cents(8_000),
            "{b}: the three stale holds came back, the charging and fresh ones did not"
        );
        for order in [&lost, &pending, &failed] {
            assert!(
                lookup(&ctx.store, &IdempotencyKey::void(order))
                    .await
                    .unwrap()
                    .is_some(),
                "{b}: {order} voided"
            );
        }
        for order in [&charging, &fresh] {
            assert!(
                lookup(&ctx.store, &IdempotencyKey::void(order))
                    .await
                    .unwrap()
                    .is_none(),
                "{b}: {order} left alone"
            );
        }
        // Idempotent: another pass finds nothing, and the ledger is whole.
        assert_eq!(
            one.sweep(at(NOW), 100).await.unwrap(),
            SweepReport::default(),
            "{b}"
        );
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap_or_else(|why| panic!("{b}: {why}"));
        assert_eq!(
            audit.available(&LedgerAccountId::DriverWallet(acct("d-1"))),
            Some(Money::from_cents(8_000)),
            "{b}"
        );
        // Once the fresh hold expires too, it goes the same way; the charging one never.
        let r = one.sweep(at(LATER + 1), 100).await.unwrap();
        assert_eq!(r.voided, 1, "{b}: {r:?}");
        assert_eq!(available(&f).await, Money::from_cents(9_000), "{b}");
    }
}

//! Session starts through the SQL ledger (`SqlFunds::start_session`, the path of
//! `POST /v1/sessions`) on SQLite and PostgreSQL: the hold, the order and its start command
//! are written in one database transaction shared by concurrent starts (group commit).
//! Concurrent starts of one account never hold more than its balance; every answered start
//! has its hold, its order (limit = hold) and its queued command, durably; a refused start
//! (no funds, a repeated idempotency key, a charger elsewhere) leaves neither hold nor order
//! nor command behind. PostgreSQL runs when VOLTLINE_TEST_PG is set (see tests/common).

mod common;

use jiff::{Timestamp, ToSpan};
use voltline_cloud::domain::CommandState;
use voltline_cloud::funds::{
    Funds, FundsError, HoldRequest, PaymentRequest, StartFailure, StartRequest,
};
use voltline_cloud::ledger::LedgerAccountId;
use voltline_cloud::money::{audit, LedgerWriter, SqlFunds, SqlFundsConfig, WriterConfig};
use voltline_cloud::Store;
use voltline_protocol::sync::Command;
use voltline_protocol::Money;

use common::{acct, order_with_start, seed, site, Ctx};

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

async fn deposit(f: &SqlFunds, cents: i64) {
    f.open_wallet(&acct("d-1"), Money::ZERO).await.unwrap();
    f.top_up(&PaymentRequest {
        account: acct("d-1"),
        amount: Money::from_cents(cents),
        provider: "test".into(),
        reference: "seed".into(),
    })
    .await
    .unwrap();
}

/// A start request for a new order on `s`/pile 1 (`counter` makes its serial and key).
fn start_req(s: &str, counter: u16, key: Option<&str>) -> StartRequest {
    let (mut order, start) = order_with_start(s, 1, counter, Timestamp::now() + 1.hours());
    order.idempotency_key = key.map(str::to_owned);
    order.limit.amount = None;
    StartRequest {
        hold: HoldRequest {
            order: order.id.clone(),
            account: acct("d-1"),
            requested: None,
            expires_at: Timestamp::now() + 24.hours(),
        },
        order,
        start,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_of_one_account_never_hold_more_than_its_balance() {
    for ctx in backends("concurrent_starts").await {
        let b = ctx.backend();
        seed(&ctx.store, "s-1", 1).await;
        let f = funds(&ctx.store);
        deposit(&f, 10_050).await;
        // 40 starts at once, 10.00 each by default, 100.50 available: ten get 10.00, one
        // gets the 0.50 left... which is below the 1.00 minimum, so exactly ten start.
        let reqs: Vec<StartRequest> = (0..40)
            .map(|i| start_req("s-1", i, Some(&format!("k-{i}"))))
            .collect();
        let results =
            futures::future::join_all(reqs.iter().cloned().map(|r| f.start_session(&ctx.store, r)))
                .await;
        let mut started = Vec::new();
        for (req, result) in reqs.iter().zip(results) {
            match result {
                Ok(s) => started.push((req.clone(), s)),
                Err(StartFailure::Funds(FundsError::InsufficientFunds { .. })) => {
                    let e = ctx.store.get_order(&req.order.id).await.unwrap_err();
                    assert!(e.to_string().contains("does not exist"), "{b}: {e}");
                }
                Err(e) => panic!("{b}: unexpected {e}"),
            }
        }
        assert_eq!(started.len(), 10, "{b}");
        assert_eq!(
            f.available(&acct("d-1")).await.unwrap(),
            Money::from_cents(50),
            "{b}"
        );
        // Every answered start is durable: hold, order (limit = hold) and queued command,
        // as read by another connection pool (a restart).
        let other = ctx.reopen().await;
        for (req, s) in &started {
            assert_eq!(s.hold.amount, Money::from_cents(1_000), "{b}");
            let order = other.get_order(&req.order.id).await.unwrap();
            assert_eq!(
                order.hold_id.as_deref(),
                Some(s.hold.hold_id.as_str()),
                "{b}"
            );
            assert_eq!(order.limit.amount, Some(Money::from_cents(1_000)), "{b}");
            assert_eq!(order, s.order, "{b}: the answer is what was stored");
            let cmd = other.get_command(&req.start.id).await.unwrap();
            assert_eq!(cmd.state, CommandState::Queued, "{b}");
            let Command::StartCharging { limit, .. } = cmd.command else {
                panic!("{b}: a start command");
            };
            assert_eq!(limit.amount, Some(Money::from_cents(1_000)), "{b}");
        }
        let queued = other
            .pending_commands(Some(&site("s-1")), Timestamp::now(), 1_000)
            .await
            .unwrap();
        assert_eq!(queued.len(), 10, "{b}: no command for a refused start");
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap_or_else(|why| panic!("{b}: {why}"));
        assert_eq!(
            audit.available(&LedgerAccountId::DriverWallet(acct("d-1"))),
            Some(Money::from_cents(50)),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_leaves_no_hold_no_order_and_no_command() {
    for ctx in backends("refused_start").await {
        let b = ctx.backend();
        seed(&ctx.store, "s-1", 1).await;
        seed(&ctx.store, "s-2", 2).await;
        let f = funds(&ctx.store);
        deposit(&f, 10_000).await;
        // The same idempotency key twice at once: one starts, the other is a conflict.
        let (x, y) = (
            start_req("s-1", 1, Some("same")),
            start_req("s-1", 2, Some("same")),
        );
        let (rx, ry) = tokio::join!(
            f.start_session(&ctx.store, x.clone()),
            f.start_session(&ctx.store, y.clone())
        );
        let refused: Vec<_> = [(&x, rx), (&y, ry)]
            .into_iter()
            .filter_map(|(r, out)| match out {
                Ok(_) => None,
                Err(StartFailure::Refused {
                    conflict: true,
                    reason,
                }) => Some((r, reason)),
                Err(e) => panic!("{b}: unexpected {e}"),
            })
            .collect();
        assert_eq!(refused.len(), 1, "{b}: exactly one of the two is refused");
        assert!(
            refused[0].1.contains("idempotency key"),
            "{b}: {}",
            refused[0].1
        );
        assert!(
            ctx.store.get_order(&refused[0].0.order.id).await.is_err(),
            "{b}"
        );
        // Again later: still a conflict.
        let again = f
            .start_session(&ctx.store, start_req("s-1", 3, Some("same")))
            .await
            .unwrap_err();
        assert!(
            matches!(again, StartFailure::Refused { conflict: true, .. }),
            "{b}: {again}"
        );
        // The charger of another site: refused as invalid, nothing held.
        let mut wrong = start_req("s-1", 4, None);
        wrong.order.pile = common::pile(2);
        let e = f.start_session(&ctx.store, wrong).await.unwrap_err();
        assert!(
            matches!(
                e,
                StartFailure::Refused {
                    conflict: false,
                    ..
                }
            ),
            "{b}: {e}"
        );
        assert_eq!(
            f.available(&acct("d-1")).await.unwrap(),
            Money::from_cents(9_000),
            "{b}: only the one started session holds funds"
        );
        let queued = ctx
            .store
            .pending_commands(None, Timestamp::now(), 1_000)
            .await
            .unwrap();
        assert_eq!(queued.len(), 1, "{b}");
        audit(&ctx.store)
            .await
            .unwrap()
            .check()
            .unwrap_or_else(|why| panic!("{b}: {why}"));
    }
}

/// Two cloud instances (two writers over one database) handed the same starts at once, as
/// when a client retries a start against another instance: each order starts exactly once,
/// with one hold and one command, and every other answer is a conflict. On PostgreSQL the
/// writers race for real (one's batch hits a unique key and is replayed, and its check then
/// refuses the start); on SQLite the second sees the first's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_starts_on_two_instances_start_each_order_once() {
    for ctx in backends("starts_two_instances").await {
        let b = ctx.backend();
        seed(&ctx.store, "s-1", 1).await;
        let (one, two) = (funds(&ctx.store), funds(&ctx.store));
        deposit(&one, 100_000).await;
        let reqs: Vec<StartRequest> = (0..24)
            .map(|i| start_req("s-1", i, Some(&format!("k-{i}"))))
            .collect();
        let (store, reqs_ref) = (&ctx.store, &reqs);
        let results = futures::future::join_all((0..reqs.len()).flat_map(|i| {
            // Alternate which instance goes first, so both win some races.
            let (x, y) = if i % 2 == 0 {
                (&one, &two)
            } else {
                (&two, &one)
            };
            [
                x.start_session(store, reqs_ref[i].clone()),
                y.start_session(store, reqs_ref[i].clone()),
            ]
        }))
        .await;
        for (i, pair) in results.chunks(2).enumerate() {
            let started: Vec<_> = pair.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(started.len(), 1, "{b}: order {i} starts once: {pair:?}");
            for r in pair {
                if let Err(e) = r {
                    assert!(
                        matches!(e, StartFailure::Refused { conflict: true, .. }),
                        "{b}: order {i}: the other answer is a conflict, not {e}"
                    );
                }
            }
            let stored = ctx.store.get_order(&reqs[i].order.id).await.unwrap();
            assert_eq!(&stored, &started[0].order, "{b}: order {i} as answered");
        }
        assert_eq!(
            one.available(&acct("d-1")).await.unwrap(),
            Money::from_cents(100_000 - 24 * 1_000),
            "{b}: one hold per order"
        );
        let queued = ctx
            .store
            .pending_commands(None, Timestamp::now(), 1_000)
            .await
            .unwrap();
        assert_eq!(queued.len(), 24, "{b}: one start command per order");
        audit(&ctx.store)
            .await
            .unwrap()
            .check()
            .unwrap_or_else(|why| panic!("{b}: {why}"));
    }
}

//! The SQL ledger (`voltline_cloud::money`) on SQLite and PostgreSQL: the `Funds` seam
//! behaves like `InMemoryFunds`; concurrent holds of one account never exceed its balance;
//! random concurrent operations (top-ups, holds, posts through settlements, voids, refunds,
//! replays, conflicting keys) keep every invariant, and a replay of the committed sets
//! through the in-memory reference `Ledger` ends with the same balances to the fen.
//! PostgreSQL runs when VOLTLINE_TEST_PG is set (see tests/common).

mod common;

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use voltline_cloud::funds::{Funds, HoldRequest, PaymentRequest};
use voltline_cloud::ledger::{
    plan_settlement, Hold, IdempotencyKey, LedgerAccountId, LedgerError, LedgerView, PendingStatus,
    PlatformFeeRule, RecordRef, SettlementInput,
};
use voltline_cloud::money::{
    audit, Job, LedgerWriter, MoneyError, Planned, SqlFunds, SqlFundsConfig, WriterConfig,
};
use voltline_cloud::Store;
use voltline_protocol::domain::{AccountId, OperatorId, OrderId, PileCode, TransactionSerial};
use voltline_protocol::tariff::{
    MeterReading, ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay,
};
use voltline_protocol::{Energy, Money};

use common::Ctx;

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
            default_hold: Money::from_cents(5_000),
            minimum_hold: Money::from_cents(100),
        },
    )
}

fn req(order: &str, account: &AccountId, requested: Option<i64>) -> HoldRequest {
    HoldRequest {
        order: OrderId::new(order).unwrap(),
        account: account.clone(),
        requested: requested.map(Money::from_cents),
        expires_at: Timestamp::from_second(1_800_000_000).unwrap(),
    }
}

fn pay(account: &AccountId, cents: i64, provider: &str, reference: &str) -> PaymentRequest {
    PaymentRequest {
        account: account.clone(),
        amount: Money::from_cents(cents),
        provider: provider.into(),
        reference: reference.into(),
    }
}

async fn deposit(f: &SqlFunds, account: &AccountId, cents: i64, reference: &str) {
    f.open_wallet(account, Money::ZERO).await.unwrap();
    f.top_up(&pay(account, cents, "test", reference))
        .await
        .unwrap();
}

#[tokio::test]
async fn sql_funds_hold_void_and_refuse_like_the_in_memory_funds() {
    for ctx in backends("sql_funds_hold_void").await {
        let f = funds(&ctx.store);
        let acc = AccountId::new("acc-1").unwrap();
        deposit(&f, &acc, 8_000, "pay-1").await;
        let a = f.place_hold(req("o-1", &acc, None)).await.unwrap();
        assert_eq!(a.amount, Money::from_cents(5_000), "{}", ctx.backend());
        assert_eq!(
            f.place_hold(req("o-1", &acc, None)).await.unwrap(),
            a,
            "same order, same hold"
        );
        let b = f.place_hold(req("o-2", &acc, Some(6_000))).await.unwrap();
        assert_eq!(
            b.amount,
            Money::from_cents(3_000),
            "lowered to what is available"
        );
        assert_eq!(f.available(&acc).await.unwrap(), Money::ZERO);
        let e = f.place_hold(req("o-3", &acc, None)).await.unwrap_err();
        assert_eq!(e.http_status(), 402, "{e}");
        f.void_hold(&OrderId::new("o-2").unwrap(), &b.hold_id)
            .await
            .unwrap();
        f.void_hold(&OrderId::new("o-2").unwrap(), &b.hold_id)
            .await
            .unwrap();
        assert_eq!(f.available(&acc).await.unwrap(), Money::from_cents(3_000));
        let e = f
            .place_hold(req("o-4", &AccountId::new("nobody").unwrap(), None))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 404, "{e}");
        audit(&ctx.store).await.unwrap().check().unwrap();
    }
}

#[tokio::test]
async fn sql_funds_top_ups_refunds_and_statement_like_the_in_memory_funds() {
    for ctx in backends("sql_funds_top_ups").await {
        let f = funds(&ctx.store);
        let acc = AccountId::new("acc-9").unwrap();
        deposit(&f, &acc, 1_000, "seed").await;
        assert_eq!(
            f.top_up(&pay(&acc, 2_000, "wechat", "w-1")).await.unwrap(),
            Money::from_cents(3_000)
        );
        assert_eq!(
            f.top_up(&pay(&acc, 2_000, "wechat", "w-1")).await.unwrap(),
            Money::from_cents(3_000),
            "idempotent"
        );
        let e = f
            .top_up(&pay(&acc, 2_100, "wechat", "w-1"))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 422, "same key, other content: {e}");
        f.place_hold(req("o-9", &acc, Some(2_500))).await.unwrap();
        let e = f
            .refund(&pay(&acc, 600, "wechat", "r-1"))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 422, "{e}");
        assert_eq!(
            f.refund(&pay(&acc, 500, "wechat", "r-2")).await.unwrap(),
            Money::ZERO
        );
        assert_eq!(
            f.refund(&pay(&acc, 500, "wechat", "r-2")).await.unwrap(),
            Money::ZERO,
            "idempotent"
        );
        let lines = f.statement(&acc, 0, 10).await.unwrap();
        let amounts: Vec<Money> = lines.iter().map(|l| l.amount).collect();
        assert_eq!(
            amounts,
            vec![
                Money::from_cents(1_000),
                Money::from_cents(2_000),
                Money::from_cents(-500)
            ]
        );
        assert_eq!(lines.last().unwrap().balance, Money::from_cents(2_500));
        assert_eq!(lines[0].reason, "topup");
        assert!(lines.iter().all(|l| l.at.is_some()));
        assert_eq!(
            f.statement(&acc, 2, 10).await.unwrap().len(),
            1,
            "paging by line"
        );
        audit(&ctx.store).await.unwrap().check().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_of_one_account_never_exceed_its_balance() {
    for ctx in backends("concurrent_holds").await {
        let f = Arc::new(funds(&ctx.store));
        let acc = AccountId::new("acc-hot").unwrap();
        deposit(&f, &acc, 10_000, "seed").await;
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (f, acc) = (f.clone(), acc.clone());
                tokio::spawn(
                    async move { f.place_hold(req(&format!("o-{i}"), &acc, Some(700))).await },
                )
            })
            .collect();
        let mut held = Money::ZERO;
        for t in tasks {
            match t.await.unwrap() {
                Ok(g) => held += g.amount,
                Err(e) => assert_eq!(e.http_status(), 402, "{e}"),
            }
        }
        assert_eq!(
            held,
            Money::from_cents(10_000),
            "{}: holds take exactly the balance, never more",
            ctx.backend()
        );
        assert_eq!(f.available(&acc).await.unwrap(), Money::ZERO);
        audit(&ctx.store).await.unwrap().check().unwrap();
    }
}

// ---- random concurrent operations ----

#[derive(Debug, Clone)]
enum Op {
    TopUp {
        acct: u8,
        cents: i64,
        reference: u8,
    },
    Hold {
        acct: u8,
        order: u8,
        cents: Option<i64>,
    },
    Void {
        order: u8,
    },
    Settle {
        order: u8,
        wh: i64,
    },
    Refund {
        acct: u8,
        cents: i64,
        reference: u8,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 1i64..20_000, 0u8..12).prop_map(|(acct, cents, reference)| Op::TopUp {
            acct,
            cents,
            reference
        }),
        (0u8..4, 0u8..24, proptest::option::of(100i64..8_000))
            .prop_map(|(acct, order, cents)| Op::Hold { acct, order, cents }),
        (0u8..24).prop_map(|order| Op::Void { order }),
        (0u8..24, 0i64..60_000).prop_map(|(order, wh)| Op::Settle { order, wh }),
        (0u8..4, 1i64..5_000, 0u8..12).prop_map(|(acct, cents, reference)| Op::Refund {
            acct,
            cents,
            reference
        }),
    ]
}

fn acct(n: u8) -> AccountId {
    AccountId::new(format!("acc-{n}")).unwrap()
}

fn order_id(n: u8) -> OrderId {
    OrderId::new(format!("ord-{n}")).unwrap()
}

fn flat_tariff() -> Tariff {
    Tariff::new(
        TariffVersion(1),
        TimeZone::get("Asia/Shanghai").unwrap(),
        vec![TariffPeriod::new(
            "flat",
            Money::from_cents(100),
            Money::from_cents(50),
        )],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .unwrap()
}

/// A settlement of `order` for `wh` of energy at the flat tariff, planned by the writer.
fn settle_job(order: u8, wh: i64) -> Job {
    let pile: PileCode = "32010600019236".parse().unwrap();
    let serial = TransactionSerial::compose(
        pile,
        voltline_protocol::domain::ConnectorNo::new(1).unwrap(),
        voltline_protocol::domain::SerialTime {
            year: 26,
            month: 11,
            day: 25,
            hour: 4,
            minute: 0,
            second: 0,
        },
        u16::from(order),
    )
    .unwrap();
    let record = RecordRef { pile, serial };
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let cost = flat_tariff()
        .cost(&[
            MeterReading::new(t0, Energy::from_wh(0)),
            MeterReading::new(t0 + 1.hour(), Energy::from_wh(wh)),
        ])
        .unwrap();
    let account = acct(order % 4);
    let wallet = LedgerAccountId::DriverWallet(account.clone());
    let hold_id = IdempotencyKey::hold(&order_id(order));
    let pending = voltline_cloud::ledger::TransferId::new(hold_id, 0);
    let operator = OperatorId::new("op-1").unwrap();
    let accounts = vec![
        wallet.clone(),
        LedgerAccountId::Receivable(account.clone()),
        LedgerAccountId::OperatorPayable(operator.clone()),
        LedgerAccountId::SessionClearing,
        LedgerAccountId::PlatformRevenue,
    ];
    Job::planned(
        IdempotencyKey::settlement(&record),
        accounts,
        vec![pending.clone()],
        move |view| {
            let w = view
                .account(&wallet)
                .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?;
            let hold = view
                .pending(&pending)
                .filter(|p| p.status == PendingStatus::Open && p.debit == wallet)
                .map(|p| Hold {
                    order: order_id(order),
                    account: account.clone(),
                    pending: p.id,
                    amount: p.amount,
                });
            let plan = plan_settlement(&SettlementInput {
                record,
                order: order_id(order),
                account: account.clone(),
                operator: operator.clone(),
                hold,
                tariff_version_at_start: TariffVersion(1),
                cost: &cost,
                charger_reported_total: cost.total,
                platform_fee: PlatformFeeRule::new(rust_decimal::Decimal::new(10, 0)).unwrap(),
                wallet_available: w.available(),
                credit_limit: w.policy.credit_limit().unwrap_or(Money::ZERO),
            })?;
            Ok(Planned {
                set: plan.set,
                settlement: None,
            })
        },
    )
}

async fn run_op(f: &SqlFunds, op: Op) -> Result<(), MoneyError> {
    let fe = |e: voltline_cloud::funds::FundsError| MoneyError::Invalid(e.to_string());
    match op {
        Op::TopUp {
            acct: a,
            cents,
            reference,
        } => f
            .top_up(&pay(&acct(a), cents, "alipay", &format!("t-{reference}")))
            .await
            .map(|_| ())
            .map_err(fe),
        Op::Refund {
            acct: a,
            cents,
            reference,
        } => f
            .refund(&pay(&acct(a), cents, "alipay", &format!("r-{reference}")))
            .await
            .map(|_| ())
            .map_err(fe),
        Op::Hold {
            acct: a,
            order,
            cents,
        } => f
            .place_hold(req(&format!("ord-{order}"), &acct(a), cents))
            .await
            .map(|_| ())
            .map_err(fe),
        Op::Void { order } => f
            .void_hold(&order_id(order), &format!("hold:ord-{order}#0"))
            .await
            .map_err(fe),
        Op::Settle { order, wh } => f.writer().submit(settle_job(order, wh)).await.map(|_| ()),
    }
}

async fn random_run(ctx: &Ctx, ops: Vec<Op>) {
    let f = Arc::new(funds(&ctx.store));
    let op1 = OperatorId::new("op-1").unwrap();
    for a in 0..4u8 {
        // Two wallets with a credit line, two without: overruns go to credit, then receivable.
        let credit = if a % 2 == 0 {
            Money::ZERO
        } else {
            Money::from_cents(2_000)
        };
        f.open_wallet(&acct(a), credit).await.unwrap();
        f.top_up(&pay(&acct(a), 5_000, "test", &format!("seed-{a}")))
            .await
            .unwrap();
    }
    let payable = LedgerAccountId::OperatorPayable(op1);
    voltline_cloud::money::funds::open_account(
        &ctx.store,
        &payable,
        voltline_cloud::ledger::AccountPolicy::default_for(&payable),
    )
    .await
    .unwrap();
    // Three waves, each fully concurrent: money in; holds, refunds, replays; settlements, voids.
    let wave = |pick: fn(&Op) -> bool| ops.iter().filter(|o| pick(o)).cloned().collect::<Vec<_>>();
    let waves = [
        wave(|o| matches!(o, Op::TopUp { .. })),
        wave(|o| matches!(o, Op::Hold { .. } | Op::Refund { .. } | Op::TopUp { .. })),
        wave(|o| matches!(o, Op::Settle { .. } | Op::Void { .. } | Op::Hold { .. })),
    ];
    for ops in waves {
        let tasks: Vec<_> = ops
            .into_iter()
            .map(|op| {
                let f = f.clone();
                tokio::spawn(async move {
                    match run_op(&f, op.clone()).await {
                        Ok(()) | Err(MoneyError::Ledger(_)) | Err(MoneyError::Invalid(_)) => {}
                        Err(e) => panic!("{op:?}: infrastructure error {e}"),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let audit = audit(&ctx.store).await.unwrap();
    if let Err(why) = audit.check() {
        panic!("{}: {why}", ctx.backend());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn random_concurrent_operations_keep_every_invariant_on_both_backends(ops in proptest::collection::vec(op_strategy(), 20..120)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async {
            for ctx in backends("random_concurrent_operations").await {
                random_run(&ctx, ops.clone()).await;
            }
        });
    }
}

/// SQLite numbers sets from the writer's note of the last sequence it committed. A set
/// inserted behind its back (a seed, another tool) makes that note stale: the next batch hits
/// the primary key, is replayed on a fresh maximum, and still applies exactly once.
#[tokio::test]
async fn a_set_inserted_behind_the_writer_costs_a_replay_not_a_failure() {
    use sqlx::Connection;
    use voltline_cloud::ledger::{Memo, Reason, TransferSet};
    let ctx = Ctx::sqlite().await;
    let writer = LedgerWriter::start(ctx.store.clone(), WriterConfig::default(), None);
    let f = SqlFunds::new(
        writer.clone(),
        SqlFundsConfig {
            default_hold: Money::from_cents(5_000),
            minimum_hold: Money::from_cents(100),
        },
    );
    let acc = AccountId::new("acc-seq").unwrap();
    deposit(&f, &acc, 1_000, "seed").await;
    let common::Target::Sqlite { dir } = &ctx.target else {
        unreachable!("a SQLite context")
    };
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join(voltline_cloud::store::SQLITE_FILE));
    let mut other = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let empty = TransferSet {
        key: IdempotencyKey::new("test:behind-the-writer").unwrap(),
        legs: vec![],
        memo: Memo::new(Reason::Adjustment),
    };
    sqlx::query(
        "INSERT INTO ledger_sets (idem_key, reason, content, created_at) VALUES ($1, 'adjustment', $2, 0)",
    )
    .bind(empty.key.to_string())
    .bind(serde_json::to_string(&empty).unwrap())
    .execute(&mut other)
    .await
    .unwrap();
    other.close().await.unwrap();
    let retries = writer
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        f.top_up(&pay(&acc, 500, "test", "after")).await.unwrap(),
        Money::from_cents(1_500)
    );
    assert!(
        writer
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            > retries,
        "the stale note was hit and the batch replayed"
    );
    let a = audit(&ctx.store).await.unwrap();
    a.check().unwrap();
    let sequences: Vec<i64> = a.sets.iter().map(|(s, _)| *s).collect();
    let mut unique = sequences.clone();
    unique.dedup();
    assert_eq!(unique, sequences, "every set has its own sequence");
}

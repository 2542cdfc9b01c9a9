//! Migration 0008 (journal lines) on a ledger written in the earlier schema: every posting of
//! `ledger_postings` becomes a line of `ledger_journal`, exactly; the audit still holds, the
//! statement reads the same, and the ledger goes on from there. On SQLite and PostgreSQL
//! (when VOLTLINE_TEST_PG is set, see tests/common).

mod common;

use std::str::FromStr;

use jiff::Timestamp;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, SqliteConnection};
use voltline_cloud::funds::{Funds, PaymentRequest};
use voltline_cloud::ledger::{
    place_hold, plan_settlement, top_up, AccountPolicy, BalanceField, ExternalRef, HoldRequest,
    Ledger, LedgerAccountId, PendingStatus, PlatformFeeRule, ProviderId, RecordRef,
    SettlementInput, TransferSet,
};
use voltline_cloud::money::{audit, LedgerWriter, SqlFunds, SqlFundsConfig, WriterConfig};
use voltline_cloud::store::types::{DbMoney, DbTime};
use voltline_protocol::domain::{AccountId, OperatorId, OrderId};
use voltline_protocol::tariff::{CostBreakdown, TariffVersion};
use voltline_protocol::{Energy, Money};

use common::{Ctx, Target};

/// The last migration before the journal became lines.
const BEFORE: i64 = 7;

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

/// The reference ledger after a top-up of 100.00, a hold of 50.00 and its settlement for
/// 40.00, with the sets in the order applied.
fn history() -> (Ledger, Vec<TransferSet>) {
    let acc = AccountId::new("acc-1").unwrap();
    let op = OperatorId::new("op-1").unwrap();
    let provider = ProviderId::new("alipay").unwrap();
    let wallet = LedgerAccountId::DriverWallet(acc.clone());
    let mut l = Ledger::new();
    for id in [
        wallet.clone(),
        LedgerAccountId::ProviderClearing(provider.clone()),
        LedgerAccountId::OperatorPayable(op.clone()),
        LedgerAccountId::Receivable(acc.clone()),
    ] {
        let policy = AccountPolicy::default_for(&id);
        l.open_account(id, policy).unwrap();
    }
    let mut sets = Vec::new();
    let topped = top_up(
        &provider,
        &ExternalRef::new("seed").unwrap(),
        &acc,
        cents(10_000),
    )
    .unwrap();
    sets.push(topped);
    let order = OrderId::new("o-1").unwrap();
    let (held, hold) = place_hold(&HoldRequest {
        order: order.clone(),
        account: acc.clone(),
        requested: Some(cents(5_000)),
        default_hold: cents(5_000),
        minimum_hold: cents(1),
        available: cents(10_000),
        expires_at: Timestamp::from_second(1_900_000_000).ok(),
    })
    .unwrap();
    sets.push(held);
    let cost = CostBreakdown {
        tariff_version: TariffVersion(1),
        lines: vec![],
        total_energy: Energy::ZERO,
        energy_fee_exact: cents(3_000),
        service_fee_exact: cents(1_000),
        energy_fee: cents(3_000),
        service_fee: cents(1_000),
        total: cents(4_000),
    };
    let plan = plan_settlement(&SettlementInput {
        record: RecordRef {
            pile: "32010600019236".parse().unwrap(),
            serial: "32010600019236012001061803423060".parse().unwrap(),
        },
        order,
        account: acc,
        operator: op,
        hold: Some(hold),
        tariff_version_at_start: TariffVersion(1),
        cost: &cost,
        charger_reported_total: cost.total,
        platform_fee: PlatformFeeRule::new(rust_decimal::Decimal::new(10, 0)).unwrap(),
        wallet_available: cents(5_000),
        credit_limit: Money::ZERO,
    })
    .unwrap();
    sets.push(plan.set);
    for set in &sets {
        l.apply(set.clone()).unwrap();
    }
    (l, sets)
}

/// Writes `l` as the schema before migration 0008 stored it: accounts, sets, holds and one
/// `ledger_postings` row per posting (through a connection of the test's own).
async fn seed_old_schema(ctx: &Ctx, l: &Ledger, sets: &[TransferSet]) {
    for a in l.accounts() {
        voltline_cloud::money::funds::open_account(&ctx.store, &a.id, a.policy)
            .await
            .unwrap();
    }
    let now = DbTime(Timestamp::from_second(1_800_000_000).unwrap());
    macro_rules! seed {
        ($conn:expr) => {{
            let conn = $conn;
            for a in l.accounts() {
                let b = a.balance;
                sqlx::query(
                    "UPDATE ledger_accounts SET debits_pending = $1, debits_posted = $2, \
                     credits_pending = $3, credits_posted = $4, version = 3 WHERE id = $5",
                )
                .bind(DbMoney(b.debits_pending))
                .bind(DbMoney(b.debits_posted))
                .bind(DbMoney(b.credits_pending))
                .bind(DbMoney(b.credits_posted))
                .bind(a.id.to_string())
                .execute(&mut *conn)
                .await
                .unwrap();
            }
            for set in sets {
                sqlx::query(
                    "INSERT INTO ledger_sets (idem_key, reason, order_id, content, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(set.key.to_string())
                .bind(format!("{:?}", set.memo.reason).to_lowercase())
                .bind(set.memo.order.as_ref().map(|o| o.to_string()))
                .bind(Json(set.clone()))
                .bind(now)
                .execute(&mut *conn)
                .await
                .unwrap();
                for leg in 0..set.legs.len() {
                    let Some(p) = l.pending(&set.transfer_id(leg)) else {
                        continue;
                    };
                    let (state, posted) = match p.status {
                        PendingStatus::Open => ("open", None),
                        PendingStatus::Voided => ("voided", None),
                        PendingStatus::Posted { amount } => ("posted", Some(DbMoney(amount))),
                    };
                    sqlx::query(
                        "INSERT INTO ledger_pendings (id, set_key, debit, credit, amount, \
                         expires_at, state, posted_amount, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(p.id.to_string())
                    .bind(p.id.key.to_string())
                    .bind(p.debit.to_string())
                    .bind(p.credit.to_string())
                    .bind(DbMoney(p.amount))
                    .bind(p.expires_at.map(DbTime))
                    .bind(state)
                    .bind(posted)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                }
            }
            for p in l.journal() {
                let field = match p.field {
                    BalanceField::DebitsPending => "debits_pending",
                    BalanceField::DebitsPosted => "debits_posted",
                    BalanceField::CreditsPending => "credits_pending",
                    BalanceField::CreditsPosted => "credits_posted",
                };
                sqlx::query(
                    "INSERT INTO ledger_postings (transfer_id, set_key, account, field, delta, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(p.transfer.to_string())
                .bind(p.transfer.key.to_string())
                .bind(p.account.to_string())
                .bind(field)
                .bind(DbMoney(p.delta))
                .bind(now)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
        }};
    }
    match &ctx.target {
        Target::Sqlite { dir } => {
            let options = SqliteConnectOptions::new()
                .filename(dir.path().join(voltline_cloud::store::SQLITE_FILE));
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            seed!(&mut conn);
        }
        Target::Postgres { url, schema } => {
            let options = PgConnectOptions::from_str(url)
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let mut conn = PgConnection::connect_with(&options).await.unwrap();
            seed!(&mut conn);
        }
    }
}

async fn upgrade(ctx: &Ctx) {
    let (l, sets) = history();
    seed_old_schema(ctx, &l, &sets).await;
    ctx.store
        .migrate()
        .await
        .expect("migrate to the journal lines");

    let a = audit(&ctx.store).await.unwrap();
    a.check()
        .unwrap_or_else(|why| panic!("{}: {why}", ctx.backend()));
    // One line per old posting, in order, with the same deltas.
    let moved: Vec<_> = a
        .postings
        .iter()
        .map(|(acc, field, delta, key)| (acc.clone(), *field, *delta, key.clone()))
        .collect();
    let old: Vec<_> = l
        .journal()
        .iter()
        .map(|p| {
            (
                p.account.clone(),
                p.field,
                p.delta,
                p.transfer.key.to_string(),
            )
        })
        .collect();
    assert_eq!(moved, old, "{}", ctx.backend());
    for account in l.accounts() {
        let (stored, _) = &a.accounts[&account.id];
        assert_eq!(stored.balance, account.balance, "{}", account.id);
    }

    // The statement reads as before, and the ledger goes on in the new form.
    let writer = LedgerWriter::start(ctx.store.clone(), WriterConfig::default(), None);
    let funds = SqlFunds::new(
        writer,
        SqlFundsConfig {
            default_hold: cents(5_000),
            minimum_hold: cents(100),
        },
    );
    let acc = AccountId::new("acc-1").unwrap();
    funds
        .top_up(&PaymentRequest {
            account: acc.clone(),
            amount: cents(2_500),
            provider: "alipay".into(),
            reference: "after-upgrade".into(),
        })
        .await
        .unwrap();
    let lines = funds.statement(&acc, 0, 10).await.unwrap();
    let figures: Vec<(Money, Money)> = lines.iter().map(|l| (l.amount, l.balance)).collect();
    assert_eq!(
        figures,
        vec![
            (cents(10_000), cents(10_000)),
            (cents(-4_000), cents(6_000)),
            (cents(2_500), cents(8_500)),
        ],
        "{}",
        ctx.backend()
    );
    assert_eq!(lines[1].reason, "settlement");
    assert!(
        lines[1].transfer.starts_with("settle:"),
        "{}",
        lines[1].transfer
    );
    audit(&ctx.store).await.unwrap().check().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_old_journal_moves_to_lines_exactly() {
    upgrade(&Ctx::sqlite_at(BEFORE).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_old_journal_moves_to_lines_exactly() {
    if let Some(ctx) = Ctx::postgres_at("an_old_journal_moves_to_lines_exactly", BEFORE).await {
        upgrade(&ctx).await;
    }
}

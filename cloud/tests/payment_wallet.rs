//! The prepaid wallet behind the `PaymentProvider` trait (issue #10), over the SQL ledger on
//! SQLite and PostgreSQL (when VOLTLINE_TEST_PG is set): authorise places the order's hold
//! (declined without funds), query and capture report what the ledger holds or posted, cancel
//! voids the hold, refund credits the wallet back from the operator's payable exactly once.

mod common;

use jiff::{Timestamp, ToSpan};
use voltline_cloud::funds::{Funds, PaymentRequest};
use voltline_cloud::ledger::{
    AccountPolicy, IdempotencyKey, LedgerAccountId, Memo, Reason, Transfer, TransferId,
    TransferKind, TransferSet,
};
use voltline_cloud::money::funds::open_account;
use voltline_cloud::money::{audit, LedgerWriter, SqlFunds, SqlFundsConfig, WriterConfig};
use voltline_cloud::payment::wallet::WalletProvider;
use voltline_cloud::payment::{
    AuthoriseRequest, CaptureOutcome, CaptureRequest, PaymentProvider, PaymentStatus,
    ProviderError, RefundOutcome, RefundRequest,
};
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use common::{acct, op, order_with_start, seed, Ctx};

fn m(c: i64) -> Money {
    Money::from_cents(c)
}

fn authorise(order: &OrderId, cents: i64) -> AuthoriseRequest {
    AuthoriseRequest {
        order: order.clone(),
        account: acct("d-1"),
        out_trade_no: order.to_string(),
        amount: m(cents),
        user_ref: None,
        description: "test".into(),
    }
}

async fn wallet_provider_follows_the_ledger(ctx: Ctx) {
    let store = ctx.store.clone();
    seed(&store, "s-w", 1).await;
    let writer = LedgerWriter::start(store.clone(), WriterConfig::default(), None);
    let funds = SqlFunds::new(
        writer.clone(),
        SqlFundsConfig {
            default_hold: m(1_000),
            minimum_hold: m(100),
        },
    );
    funds.open_wallet(&acct("d-1"), Money::ZERO).await.unwrap();
    let wallet = WalletProvider::new(funds.clone());
    assert_eq!(wallet.name(), "wallet");

    // No funds: declined.
    let (order, start) = order_with_start("s-w", 1, 1, Timestamp::now() + 1.hours());
    let e = wallet
        .authorise(&authorise(&order.id, 5_000))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Declined { .. }), "{e}");

    funds
        .top_up(&PaymentRequest {
            account: acct("d-1"),
            amount: m(8_000),
            provider: "test".into(),
            reference: "seed".into(),
        })
        .await
        .unwrap();
    let granted = wallet
        .authorise(&authorise(&order.id, 5_000))
        .await
        .unwrap();
    assert_eq!(granted.amount, m(5_000));
    let no = order.id.to_string();
    assert_eq!(
        wallet.query(&no, None).await.unwrap(),
        PaymentStatus::Authorised {
            provider_ref: no.clone()
        }
    );
    let capture = CaptureRequest {
        out_trade_no: no.clone(),
        provider_ref: no.clone(),
        amount: m(1_600),
        authorised: m(5_000),
        description: "test".into(),
    };
    assert_eq!(
        wallet.capture(&capture).await.unwrap(),
        CaptureOutcome::Processing,
        "settlement captures a wallet hold"
    );

    // Settlement posts the hold (here by hand: 16.00 to the operator).
    store.create_order(&order, &start).await.unwrap();
    let payable = LedgerAccountId::OperatorPayable(op("op-1"));
    open_account(&store, &payable, AccountPolicy::default_for(&payable))
        .await
        .unwrap();
    let hold = TransferId::new(IdempotencyKey::hold(&order.id), 0);
    writer
        .apply(TransferSet {
            key: IdempotencyKey::new(format!("settle:test:{}", order.id)).unwrap(),
            legs: vec![
                Transfer {
                    kind: TransferKind::Post { pending: hold },
                    ..Transfer::single(
                        LedgerAccountId::DriverWallet(acct("d-1")),
                        LedgerAccountId::SessionClearing,
                        m(1_600),
                    )
                },
                Transfer::single(LedgerAccountId::SessionClearing, payable.clone(), m(1_600)),
            ],
            memo: Memo::new(Reason::Settlement),
        })
        .await
        .unwrap();
    assert!(
        matches!(wallet.query(&no, None).await.unwrap(), PaymentStatus::Captured { amount, .. } if amount == m(1_600))
    );
    assert!(matches!(
        wallet.capture(&capture).await.unwrap(),
        CaptureOutcome::Captured { .. }
    ));
    assert_eq!(
        funds.wallet_available(&acct("d-1")).await.unwrap(),
        m(6_400)
    );

    // A refund goes back to the wallet from the operator's payable, once per refund number.
    let refund = RefundRequest {
        out_trade_no: no.clone(),
        out_refund_no: "vr-test-1".into(),
        transaction_ref: String::new(),
        amount: m(600),
        total: m(1_600),
        reason: "test".into(),
    };
    assert_eq!(
        wallet.refund(&refund).await.unwrap(),
        RefundOutcome::Succeeded
    );
    assert_eq!(
        wallet.refund(&refund).await.unwrap(),
        RefundOutcome::Succeeded
    );
    assert_eq!(
        funds.wallet_available(&acct("d-1")).await.unwrap(),
        m(7_000)
    );
    let too_much = RefundRequest {
        out_refund_no: "vr-test-2".into(),
        amount: m(1_100),
        ..refund
    };
    assert!(matches!(
        wallet.refund(&too_much).await,
        Err(ProviderError::Declined { .. })
    ));

    // Cancel voids an open hold; the money is available again.
    let second = OrderId::new(format!("{}-2", order.id)).unwrap();
    wallet.authorise(&authorise(&second, 2_000)).await.unwrap();
    assert_eq!(
        funds.wallet_available(&acct("d-1")).await.unwrap(),
        m(5_000)
    );
    wallet
        .cancel(second.as_str(), second.as_str(), "test")
        .await
        .unwrap();
    assert_eq!(
        wallet.query(second.as_str(), None).await.unwrap(),
        PaymentStatus::Cancelled
    );
    assert_eq!(
        funds.wallet_available(&acct("d-1")).await.unwrap(),
        m(7_000)
    );
    assert_eq!(
        wallet.query("ord-none", None).await.unwrap(),
        PaymentStatus::NotFound
    );

    audit(&store).await.unwrap().check().unwrap();
}

#[tokio::test]
async fn wallet_provider_on_sqlite() {
    wallet_provider_follows_the_ledger(Ctx::sqlite().await).await;
}

#[tokio::test]
async fn wallet_provider_on_postgres() {
    if let Some(ctx) = Ctx::postgres("wallet_provider_on_postgres").await {
        wallet_provider_follows_the_ledger(ctx).await;
    }
}

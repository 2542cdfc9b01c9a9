//! The seam between orders and money: what the session API asks of the ledger when a session
//! starts or fails, without knowing how money is stored.
//!
//! The order/command side (HTTP API, command dispatch) holds an `Arc<dyn Funds>`; the money
//! side (the SQL-backed ledger) implements it. Tests can use [`InMemoryFunds`], backed by the
//! pure in-memory [`crate::ledger::memory::Ledger`], so neither side waits for the other.
//!
//! Rules every implementation keeps: a hold never exceeds what the account has available
//! (concurrent holds of one account cannot together exceed it); placing or voiding the same
//! order's hold twice returns the first result (idempotent by order id); a hold of an order
//! that never started is voided, never posted.

use futures::future::BoxFuture;
use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, Money, OrderId};

use crate::store::{CommandRecord, NewCommand, NewOrder, Order, Store, StoreError};

/// Funds to reserve for a session that is starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub order: OrderId,
    pub account: AccountId,
    /// The amount the driver asked for; `None` means the configured default.
    pub requested: Option<Money>,
    /// When the hold lapses if the session never settles (the sweeper voids it).
    pub expires_at: Timestamp,
}

/// A hold that was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldGranted {
    /// The ledger's id of the pending transfer (stored on the order as `hold_id`).
    pub hold_id: String,
    /// The amount held: the session's spending limit, which the edge enforces.
    pub amount: Money,
}

/// Why funds could not be reserved or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FundsError {
    /// Not enough available balance (HTTP 402).
    #[error("account {account} has {available} yuan available but the session needs at least {requested}; top up the account or ask for a smaller amount")]
    InsufficientFunds {
        account: AccountId,
        available: Money,
        requested: Money,
    },
    /// The account has no wallet in the ledger (HTTP 404).
    #[error("account {0} has no wallet; create the account before starting sessions for it")]
    UnknownAccount(AccountId),
    /// The request itself is wrong (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    /// The ledger could not be reached or gave up after its retries (HTTP 503; safe to retry).
    #[error("the ledger is unavailable: {0}; retry the request")]
    Unavailable(String),
}

impl FundsError {
    /// The HTTP status this error maps to.
    pub fn http_status(&self) -> u16 {
        match self {
            FundsError::InsufficientFunds { .. } => 402,
            FundsError::UnknownAccount(_) => 404,
            FundsError::Invalid(_) => 422,
            FundsError::Unavailable(_) => 503,
        }
    }
}

/// What the session API needs from money.
pub trait Funds: Send + Sync + 'static {
    /// Reserves funds for a starting session. Idempotent by `order`.
    fn place_hold(&self, req: HoldRequest) -> BoxFuture<'_, Result<HoldGranted, FundsError>>;

    /// Releases the hold of a session that failed, expired or was cancelled before charging.
    /// Idempotent by `order`; voiding a hold that is already closed is not an error.
    fn void_hold<'a>(
        &'a self,
        order: &'a OrderId,
        hold_id: &'a str,
    ) -> BoxFuture<'a, Result<(), FundsError>>;

    /// The account's available balance (posted balance less holds).
    fn available<'a>(&'a self, account: &'a AccountId) -> BoxFuture<'a, Result<Money, FundsError>>;

    /// Credits `amount` to the account from a payment provider's clearing account.
    /// Idempotent by (provider, reference). Returns the available balance after it.
    fn top_up<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>>;

    /// Returns `amount` of the account's available balance to the provider. Never more than
    /// is available (held funds and credit are not refundable). Idempotent by (provider,
    /// reference). Returns the available balance after it.
    fn refund<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>>;

    /// The account's posted movements, oldest first, with the running balance, starting after
    /// line `after` (0 for the start), at most `limit` lines.
    fn statement<'a>(
        &'a self,
        account: &'a AccountId,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StatementLine>, FundsError>>;

    /// Starts a session: holds the funds, then stores the order and its start command (their
    /// amount limit set to the hold, the order's `hold_id` to the hold's id). On success the
    /// hold is placed and the command durably queued; on failure neither stays behind.
    ///
    /// This default takes two steps (the hold, then [`Store::create_order`], voiding the hold
    /// if the order cannot be stored). The SQL ledger overrides it with one database
    /// transaction shared by many concurrent starts (see [`crate::money::writer`]).
    fn start_session<'a>(
        &'a self,
        store: &'a Store,
        req: StartRequest,
    ) -> BoxFuture<'a, Result<Started, StartFailure>> {
        Box::pin(async move {
            let order_id = req.hold.order.clone();
            let hold = self.place_hold(req.hold).await?;
            let (mut order, mut start) = (req.order, req.start);
            order.hold_id = Some(hold.hold_id.clone());
            limit_to_hold(&mut order, &mut start, hold.amount);
            match store.create_order(&order, &start).await {
                Ok((order, command)) => Ok(Started {
                    hold,
                    order,
                    command,
                }),
                Err(e) => {
                    if let Err(void) = self.void_hold(&order_id, &hold.hold_id).await {
                        tracing::warn!(order = %order_id, error = %void, "could not void the hold of an order that was not stored; the sweeper voids it after its expiry");
                    }
                    Err(StartFailure::Store(e))
                }
            }
        })
    }
}

/// A session start: the hold to place and the order and start command to store with it.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub hold: HoldRequest,
    /// Its `hold_id` and amount limit are set from the hold.
    pub order: NewOrder,
    /// Its amount limit is set from the hold.
    pub start: NewCommand,
}

/// A started session: the hold placed, the order and start command stored.
#[derive(Debug, Clone)]
pub struct Started {
    pub hold: HoldGranted,
    pub order: Order,
    pub command: CommandRecord,
}

/// Why a session did not start (nothing stays behind).
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    #[error(transparent)]
    Funds(#[from] FundsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A credit provider declined to authorise the session (HTTP 402); nothing was started.
    #[error("{0}")]
    Declined(String),
    /// The order was refused (HTTP 409 when `conflict`, else 422): a repeated idempotency
    /// key, a charger gone or elsewhere.
    #[error("{reason}")]
    Refused { conflict: bool, reason: String },
}

/// Sets the session's amount limit (on the order and in its start command) to the hold.
pub fn limit_to_hold(order: &mut NewOrder, start: &mut NewCommand, held: Money) {
    order.limit.amount = Some(held);
    if let voltline_protocol::sync::Command::StartCharging { limit, .. } = &mut start.command {
        limit.amount = Some(held);
    }
}

/// A top-up or refund through a payment provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub account: AccountId,
    pub amount: Money,
    /// The payment provider, e.g. `wechat`, `alipay`, `test`.
    pub provider: String,
    /// The provider's reference for this payment (the idempotency key).
    pub reference: String,
}

/// One line of an account's statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatementLine {
    /// Position in the account's statement, from 1.
    pub line: u64,
    /// When it was posted, where the ledger records time.
    pub at: Option<Timestamp>,
    /// Signed: positive credits the account.
    pub amount: Money,
    /// The posted balance after this line.
    pub balance: Money,
    /// top_up, refund, settlement, ...
    pub reason: String,
    pub order: Option<OrderId>,
    /// The ledger transfer, `key#leg`: the set's first leg that moved the posted balance
    /// (a line is one set's net change).
    pub transfer: String,
}

/// [`Funds`] over the pure in-memory ledger: for tests and for anything that must run without
/// a database. Same rules as the SQL-backed implementation; state is lost on drop.
pub struct InMemoryFunds {
    ledger: std::sync::Mutex<crate::ledger::Ledger>,
    default_hold: Money,
    minimum_hold: Money,
}

impl InMemoryFunds {
    /// An empty ledger that holds `default_hold` when a driver asks for no amount and refuses
    /// sessions whose hold would be below `minimum_hold`.
    pub fn new(default_hold: Money, minimum_hold: Money) -> Self {
        InMemoryFunds {
            ledger: std::sync::Mutex::new(crate::ledger::Ledger::new()),
            default_hold,
            minimum_hold,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, crate::ledger::Ledger> {
        // A panic while holding the lock cannot leave the ledger half-applied (`apply` checks
        // everything before it changes anything), so a poisoned lock is still consistent.
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens `account`'s wallet (no credit) and credits it `amount` from a test payment
    /// provider, idempotently by `reference`.
    pub fn deposit(
        &self,
        account: &AccountId,
        amount: Money,
        reference: &str,
    ) -> Result<(), FundsError> {
        use crate::ledger::{session, AccountPolicy, ExternalRef, LedgerAccountId, ProviderId};
        let provider = ProviderId::new("test").map_err(|e| FundsError::Invalid(e.to_string()))?;
        let reference =
            ExternalRef::new(reference).map_err(|e| FundsError::Invalid(e.to_string()))?;
        let mut ledger = self.lock();
        let ledger_err = |e: crate::ledger::LedgerError| FundsError::Invalid(e.to_string());
        for id in [
            LedgerAccountId::DriverWallet(account.clone()),
            LedgerAccountId::ProviderClearing(provider.clone()),
        ] {
            let policy = AccountPolicy::default_for(&id);
            ledger.open_account(id, policy).map_err(ledger_err)?;
        }
        let set = session::top_up(&provider, &reference, account, amount).map_err(ledger_err)?;
        ledger.apply(set).map_err(ledger_err)?;
        Ok(())
    }

    fn wallet_available(
        ledger: &crate::ledger::Ledger,
        account: &AccountId,
    ) -> Result<Money, FundsError> {
        ledger
            .account(&crate::ledger::LedgerAccountId::DriverWallet(
                account.clone(),
            ))
            .map(|a| a.available())
            .ok_or_else(|| FundsError::UnknownAccount(account.clone()))
    }

    fn place(&self, req: HoldRequest) -> Result<HoldGranted, FundsError> {
        use crate::ledger::{session, IdempotencyKey, LedgerError};
        let mut ledger = self.lock();
        if let Some(first) = ledger.lookup(&IdempotencyKey::hold(&req.order)) {
            let leg = first
                .set
                .legs
                .first()
                .ok_or_else(|| FundsError::Unavailable("a stored hold has no legs".into()))?;
            return Ok(HoldGranted {
                hold_id: first.transfer_ids[0].to_string(),
                amount: leg.amount,
            });
        }
        let available = Self::wallet_available(&ledger, &req.account)?;
        let plan = session::place_hold(&session::HoldRequest {
            order: req.order.clone(),
            account: req.account.clone(),
            requested: req.requested,
            default_hold: self.default_hold,
            minimum_hold: self.minimum_hold,
            available,
            expires_at: Some(req.expires_at),
        });
        let (set, hold) = plan.map_err(|e| match e {
            LedgerError::InsufficientFunds {
                available,
                requested,
                ..
            } => FundsError::InsufficientFunds {
                account: req.account.clone(),
                available,
                requested,
            },
            other => FundsError::Invalid(other.to_string()),
        })?;
        ledger
            .apply(set)
            .map_err(|e| FundsError::Invalid(e.to_string()))?;
        Ok(HoldGranted {
            hold_id: hold.pending.to_string(),
            amount: hold.amount,
        })
    }

    fn void(&self, order: &OrderId, hold_id: &str) -> Result<(), FundsError> {
        use crate::ledger::{session, Hold, IdempotencyKey, LedgerError, TransferId};
        let mut ledger = self.lock();
        let pending: TransferId = hold_id
            .parse()
            .map_err(|e: LedgerError| FundsError::Invalid(e.to_string()))?;
        let Some(first) = ledger.lookup(&IdempotencyKey::hold(order)) else {
            return Err(FundsError::Invalid(format!(
                "order {order} has no hold to void"
            )));
        };
        let leg = &first.set.legs[0];
        let crate::ledger::LedgerAccountId::DriverWallet(account) = &leg.debit else {
            return Err(FundsError::Invalid(format!(
                "hold {hold_id} is not on a wallet"
            )));
        };
        let hold = Hold {
            order: order.clone(),
            account: account.clone(),
            pending,
            amount: leg.amount,
        };
        match ledger.apply(session::void_hold(&hold)) {
            Ok(_) | Err(LedgerError::PendingClosed { .. }) => Ok(()),
            Err(e) => Err(FundsError::Invalid(e.to_string())),
        }
    }
}

impl InMemoryFunds {
    fn pay(&self, req: &PaymentRequest, refund: bool) -> Result<Money, FundsError> {
        use crate::ledger::{
            session, AccountPolicy, ExternalRef, LedgerAccountId, LedgerError, ProviderId,
        };
        let invalid = |e: LedgerError| FundsError::Invalid(e.to_string());
        let provider = ProviderId::new(req.provider.as_str()).map_err(invalid)?;
        let reference = ExternalRef::new(req.reference.as_str()).map_err(invalid)?;
        let mut ledger = self.lock();
        let clearing = LedgerAccountId::ProviderClearing(provider.clone());
        let policy = AccountPolicy::default_for(&clearing);
        ledger.open_account(clearing, policy).map_err(invalid)?;
        let available = Self::wallet_available(&ledger, &req.account)?;
        let set = if refund {
            session::refund(&provider, &reference, &req.account, req.amount, available)
        } else {
            session::top_up(&provider, &reference, &req.account, req.amount)
        }
        .map_err(invalid)?;
        ledger.apply(set).map_err(|e| match e {
            LedgerError::InsufficientFunds {
                available,
                requested,
                ..
            } => FundsError::InsufficientFunds {
                account: req.account.clone(),
                available,
                requested,
            },
            other => FundsError::Invalid(other.to_string()),
        })?;
        Self::wallet_available(&ledger, &req.account)
    }

    fn lines(
        &self,
        account: &AccountId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StatementLine>, FundsError> {
        use crate::ledger::{journal_lines, LedgerAccountId};
        let ledger = self.lock();
        let wallet = LedgerAccountId::DriverWallet(account.clone());
        if ledger.account(&wallet).is_none() {
            return Err(FundsError::UnknownAccount(account.clone()));
        }
        // One line per set that moved the posted balance, as the SQL ledger's journal.
        let mut balance = Money::ZERO;
        let mut out = Vec::new();
        let mut line = 0u64;
        let lines = journal_lines(ledger.journal());
        for l in lines
            .iter()
            .filter(|l| l.account == wallet && l.touches_posted())
        {
            let amount = l.posted_change();
            balance += amount;
            line += 1;
            if line <= after {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            let set = ledger.lookup(&l.key).map(|a| a.set);
            let memo = set.as_ref().map(|s| s.memo.clone());
            out.push(StatementLine {
                line,
                at: None,
                amount,
                balance,
                reason: memo
                    .as_ref()
                    .map(|m| format!("{:?}", m.reason).to_lowercase())
                    .unwrap_or_default(),
                order: memo.and_then(|m| m.order),
                transfer: set
                    .and_then(|s| s.first_posting_leg(&wallet))
                    .map_or_else(|| l.key.to_string(), |t| t.to_string()),
            });
        }
        Ok(out)
    }
}

impl Funds for InMemoryFunds {
    fn place_hold(&self, req: HoldRequest) -> BoxFuture<'_, Result<HoldGranted, FundsError>> {
        Box::pin(async move { self.place(req) })
    }

    fn void_hold<'a>(
        &'a self,
        order: &'a OrderId,
        hold_id: &'a str,
    ) -> BoxFuture<'a, Result<(), FundsError>> {
        Box::pin(async move { self.void(order, hold_id) })
    }

    fn available<'a>(&'a self, account: &'a AccountId) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { Self::wallet_available(&self.lock(), account) })
    }

    fn top_up<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { self.pay(req, false) })
    }

    fn refund<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { self.pay(req, true) })
    }

    fn statement<'a>(
        &'a self,
        account: &'a AccountId,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StatementLine>, FundsError>> {
        Box::pin(async move { self.lines(account, after, limit) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(order: &str, account: &AccountId, requested: Option<i64>) -> HoldRequest {
        HoldRequest {
            order: OrderId::new(order).unwrap(),
            account: account.clone(),
            requested: requested.map(Money::from_cents),
            expires_at: Timestamp::from_second(1_800_000_000).unwrap(),
        }
    }

    #[tokio::test]
    async fn holds_never_exceed_the_balance_and_are_idempotent_by_order() {
        let funds = InMemoryFunds::new(Money::from_cents(5_000), Money::from_cents(100));
        let acc = AccountId::new("acc-1").unwrap();
        funds
            .deposit(&acc, Money::from_cents(8_000), "pay-1")
            .unwrap();
        let a = funds.place_hold(req("o-1", &acc, None)).await.unwrap();
        assert_eq!(a.amount, Money::from_cents(5_000));
        assert_eq!(
            funds.place_hold(req("o-1", &acc, None)).await.unwrap(),
            a,
            "same order, same hold"
        );
        // Only 30.00 left: a second session gets what is available, never more.
        let b = funds
            .place_hold(req("o-2", &acc, Some(6_000)))
            .await
            .unwrap();
        assert_eq!(b.amount, Money::from_cents(3_000));
        assert_eq!(funds.available(&acc).await.unwrap(), Money::ZERO);
        let e = funds.place_hold(req("o-3", &acc, None)).await.unwrap_err();
        assert_eq!(e.http_status(), 402, "{e}");
        // Voiding releases the hold, twice is harmless.
        funds
            .void_hold(&OrderId::new("o-2").unwrap(), &b.hold_id)
            .await
            .unwrap();
        funds
            .void_hold(&OrderId::new("o-2").unwrap(), &b.hold_id)
            .await
            .unwrap();
        assert_eq!(
            funds.available(&acc).await.unwrap(),
            Money::from_cents(3_000)
        );
    }

    #[tokio::test]
    async fn top_ups_refunds_and_the_statement() {
        let funds = InMemoryFunds::new(Money::from_cents(5_000), Money::from_cents(100));
        let acc = AccountId::new("acc-9").unwrap();
        funds
            .deposit(&acc, Money::from_cents(1_000), "seed")
            .unwrap();
        let pay = |amount: i64, reference: &str| PaymentRequest {
            account: acc.clone(),
            amount: Money::from_cents(amount),
            provider: "wechat".into(),
            reference: reference.into(),
        };
        assert_eq!(
            funds.top_up(&pay(2_000, "w-1")).await.unwrap(),
            Money::from_cents(3_000)
        );
        assert_eq!(
            funds.top_up(&pay(2_000, "w-1")).await.unwrap(),
            Money::from_cents(3_000),
            "idempotent"
        );
        // Hold 25.00: only 5.00 is refundable.
        funds
            .place_hold(req("o-9", &acc, Some(2_500)))
            .await
            .unwrap();
        let e = funds.refund(&pay(600, "r-1")).await.unwrap_err();
        assert_eq!(e.http_status(), 422, "{e}");
        assert_eq!(funds.refund(&pay(500, "r-2")).await.unwrap(), Money::ZERO);
        let lines = funds.statement(&acc, 0, 10).await.unwrap();
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
        assert_eq!(
            funds.statement(&acc, 2, 10).await.unwrap().len(),
            1,
            "paging by line"
        );
    }

    #[tokio::test]
    async fn unknown_accounts_are_404() {
        let funds = InMemoryFunds::new(Money::from_cents(5_000), Money::from_cents(100));
        let e = funds
            .place_hold(req("o-1", &AccountId::new("nobody").unwrap(), None))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 404);
    }
}

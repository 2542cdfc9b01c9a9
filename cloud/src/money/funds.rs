//! [`SqlFunds`]: the [`Funds`] seam over the SQL ledger, with the observable behaviour of
//! [`InMemoryFunds`](crate::funds::InMemoryFunds): a hold is `min(requested or default,
//! available)` planned by the writer against the batch's balances (so concurrent holds of one
//! account never exceed it), idempotent by order; a void of a closed hold is not an error;
//! top-ups and refunds are idempotent by (provider, reference); the statement is the wallet's
//! posted journal with a running balance.

use futures::future::BoxFuture;
use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, OrderId};
use voltline_protocol::Money;

use super::writer::{Job, LedgerWriter, Planned, StartRows};
use super::MoneyError;
use crate::funds::{
    Funds, FundsError, HoldGranted, HoldRequest, PaymentRequest, StartFailure, StartRequest,
    Started, StatementLine,
};
use crate::ledger::{
    session, Account, AccountPolicy, ExternalRef, Hold, IdempotencyKey, LedgerAccountId,
    LedgerError, LedgerView, ProviderId, TransferId, TransferSet,
};
use crate::store::types::DbTime;
use crate::store::{Backend, Store};

/// Most statement lines read in one call (`after + limit`).
const MAX_STATEMENT_SCAN: u64 = 100_000;

/// Hold amounts.
#[derive(Debug, Clone, Copy)]
pub struct SqlFundsConfig {
    pub default_hold: Money,
    pub minimum_hold: Money,
}

/// [`Funds`] over the SQL ledger.
#[derive(Clone)]
pub struct SqlFunds {
    writer: LedgerWriter,
    config: SqlFundsConfig,
}

macro_rules! on_backend {
    ($store:expr, |$conn:ident, $ops:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(pool) => {
                use super::db::sqlite as $ops;
                let mut c = pool.acquire().await?;
                let $conn = &mut *c;
                $body
            }
            Backend::Postgres(pool) => {
                use super::db::postgres as $ops;
                let mut c = pool.acquire().await?;
                let $conn = &mut *c;
                $body
            }
        }
    };
}
pub(crate) use on_backend as on_backend_pub;

/// Opens `id` with `policy` (idempotent; another policy is an error).
pub async fn open_account(
    store: &Store,
    id: &LedgerAccountId,
    policy: AccountPolicy,
) -> Result<(), MoneyError> {
    let now = DbTime::from(Timestamp::now());
    let found = on_backend!(store, |conn, ops| ops::open_account(conn, id, policy, now)
        .await?);
    match found {
        Some(p) if p == policy => Ok(()),
        _ => Err(LedgerError::AccountPolicyConflict {
            account: id.clone(),
        }
        .into()),
    }
}

/// One account as stored now.
pub async fn read_account(
    store: &Store,
    id: &LedgerAccountId,
) -> Result<Option<Account>, MoneyError> {
    let ids = [id.to_string()];
    let rows = on_backend!(store, |conn, ops| ops::load_accounts(conn, &ids).await?);
    Ok(rows.into_iter().next().map(|(a, _)| a))
}

/// The first set applied under `key`, if any.
pub async fn lookup(
    store: &Store,
    key: &IdempotencyKey,
) -> Result<Option<TransferSet>, MoneyError> {
    let keys = [key.to_string()];
    let rows = on_backend!(store, |conn, ops| ops::load_sets(conn, &keys).await?);
    Ok(rows.into_iter().next().map(|(_, _, s)| s))
}

impl SqlFunds {
    pub fn new(writer: LedgerWriter, config: SqlFundsConfig) -> SqlFunds {
        SqlFunds { writer, config }
    }

    /// The writer underneath.
    pub fn writer(&self) -> &LedgerWriter {
        &self.writer
    }

    /// Opens `account`'s wallet with a credit line of `credit_limit` (0 for prepaid only) and
    /// its receivable. Idempotent.
    pub async fn open_wallet(
        &self,
        account: &AccountId,
        credit_limit: Money,
    ) -> Result<(), MoneyError> {
        let store = self.writer.store();
        open_account(
            store,
            &LedgerAccountId::DriverWallet(account.clone()),
            AccountPolicy::wallet(credit_limit)?,
        )
        .await?;
        let receivable = LedgerAccountId::Receivable(account.clone());
        open_account(store, &receivable, AccountPolicy::default_for(&receivable)).await?;
        for id in [
            LedgerAccountId::SessionClearing,
            LedgerAccountId::PlatformRevenue,
            LedgerAccountId::V2gPayout,
        ] {
            let policy = AccountPolicy::default_for(&id);
            open_account(store, &id, policy).await?;
        }
        Ok(())
    }

    async fn place(&self, req: HoldRequest) -> Result<HoldGranted, MoneyError> {
        let key = IdempotencyKey::hold(&req.order);
        if let Some(first) = lookup(self.writer.store(), &key).await? {
            return granted(&first);
        }
        let applied = self.writer.submit(self.hold_job(req)).await?;
        granted(&applied.set)
    }

    /// A session start in one writer job: the hold is planned against the batch's balances
    /// (so concurrent starts of one account never hold more than it has) and the order and
    /// start command are inserted in the same database transaction, shared with the other
    /// jobs of the batch (group commit). Answered only after that transaction committed: a
    /// 202 means the hold is placed and the command durably queued.
    async fn start(&self, req: StartRequest) -> Result<Started, StartFailure> {
        crate::store::orders::check_new_order(&req.order, &req.start)?;
        if req.order.id != req.hold.order || req.order.account != req.hold.account {
            return Err(StartFailure::Refused {
                conflict: false,
                reason: "the hold and the order must be for the same order and account".into(),
            });
        }
        let key = IdempotencyKey::hold(&req.hold.order);
        let mut order = req.order;
        order.hold_id = Some(TransferId::new(key, 0).to_string());
        let job = self.hold_job(req.hold).with_start(StartRows {
            order,
            start: req.start,
        });
        match self.writer.submit(job).await {
            Ok(applied) => {
                let hold = granted(&applied.set).map_err(FundsError::from)?;
                let (order, command) = *applied.started.ok_or_else(|| {
                    FundsError::Unavailable("the ledger applied a start without its order".into())
                })?;
                Ok(Started {
                    hold,
                    order,
                    command,
                })
            }
            Err(MoneyError::OrderRefused { conflict, reason }) => {
                Err(StartFailure::Refused { conflict, reason })
            }
            Err(e) => Err(StartFailure::Funds(e.into())),
        }
    }

    /// The writer job that places `req`'s hold: `min(requested or default, available)`.
    fn hold_job(&self, req: HoldRequest) -> Job {
        let key = IdempotencyKey::hold(&req.order);
        let wallet = LedgerAccountId::DriverWallet(req.account.clone());
        let cfg = self.config;
        Job::planned(
            key,
            vec![wallet.clone(), LedgerAccountId::SessionClearing],
            vec![],
            move |view| {
                let available = view
                    .account(&wallet)
                    .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?
                    .available();
                let (set, _) = session::place_hold(&session::HoldRequest {
                    order: req.order.clone(),
                    account: req.account.clone(),
                    requested: req.requested,
                    default_hold: cfg.default_hold,
                    minimum_hold: cfg.minimum_hold,
                    available,
                    expires_at: Some(req.expires_at),
                })?;
                Ok(Planned {
                    set,
                    settlement: None,
                })
            },
        )
    }

    async fn void(&self, order: &OrderId, hold_id: &str) -> Result<(), MoneyError> {
        let pending: TransferId = hold_id.parse()?;
        let Some(first) = lookup(self.writer.store(), &IdempotencyKey::hold(order)).await? else {
            return Err(MoneyError::Invalid(format!(
                "order {order} has no hold to void"
            )));
        };
        let leg = first
            .legs
            .first()
            .ok_or_else(|| MoneyError::Corrupt("a stored hold has no legs".into()))?;
        let LedgerAccountId::DriverWallet(account) = &leg.debit else {
            return Err(MoneyError::Invalid(format!(
                "hold {hold_id} is not on a wallet"
            )));
        };
        let hold = Hold {
            order: order.clone(),
            account: account.clone(),
            pending,
            amount: leg.amount,
        };
        match self.writer.apply(session::void_hold(&hold)).await {
            Ok(_) | Err(MoneyError::Ledger(LedgerError::PendingClosed { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The wallet's available balance.
    pub async fn wallet_available(&self, account: &AccountId) -> Result<Money, MoneyError> {
        let wallet = LedgerAccountId::DriverWallet(account.clone());
        read_account(self.writer.store(), &wallet)
            .await?
            .map(|a| a.available())
            .ok_or(MoneyError::Ledger(LedgerError::UnknownAccount(wallet)))
    }

    async fn pay(&self, req: &PaymentRequest, refund: bool) -> Result<Money, MoneyError> {
        let provider = ProviderId::new(req.provider.as_str())?;
        let reference = ExternalRef::new(req.reference.as_str())?;
        let clearing = LedgerAccountId::ProviderClearing(provider.clone());
        open_account(
            self.writer.store(),
            &clearing,
            AccountPolicy::default_for(&clearing),
        )
        .await?;
        let wallet = LedgerAccountId::DriverWallet(req.account.clone());
        if refund {
            let key =
                session::refund(&provider, &reference, &req.account, req.amount, req.amount)?.key;
            let req2 = req.clone();
            let job = Job::planned(key, vec![wallet.clone(), clearing], vec![], move |view| {
                let available = view
                    .account(&wallet)
                    .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?
                    .available();
                let set = session::refund(
                    &provider,
                    &reference,
                    &req2.account,
                    req2.amount,
                    available.max(Money::ZERO),
                )?;
                Ok(Planned {
                    set,
                    settlement: None,
                })
            });
            let applied = self.writer.submit(job).await?;
            if applied.replay && applied.set.legs.first().map(|l| l.amount) != Some(req.amount) {
                return Err(LedgerError::IdempotencyConflict {
                    key: applied.set.key,
                }
                .into());
            }
        } else {
            self.writer
                .apply(session::top_up(
                    &provider,
                    &reference,
                    &req.account,
                    req.amount,
                )?)
                .await?;
        }
        self.wallet_available(&req.account).await
    }

    async fn lines(
        &self,
        account: &AccountId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StatementLine>, MoneyError> {
        let wallet = LedgerAccountId::DriverWallet(account.clone());
        let store = self.writer.store();
        if read_account(store, &wallet).await?.is_none() {
            return Err(LedgerError::UnknownAccount(wallet).into());
        }
        let scan = after.saturating_add(limit as u64).min(MAX_STATEMENT_SCAN);
        let scan = i64::try_from(scan).unwrap_or(i64::MAX);
        let id = wallet.to_string();
        let rows = on_backend!(store, |conn, ops| ops::journal_of(conn, &id, scan).await?);
        let keys: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        let sets: std::collections::BTreeMap<String, TransferSet> =
            on_backend!(store, |conn, ops| ops::load_sets(conn, &keys).await?)
                .into_iter()
                .map(|(k, _, s)| (k, s))
                .collect();
        let mut balance = Money::ZERO;
        let mut out = Vec::new();
        for (n, (_, key, at, debited, credited)) in rows.into_iter().enumerate() {
            // One line per set: its net change to the posted balance.
            let amount =
                credited.map_or(Money::ZERO, |m| m.0) - debited.map_or(Money::ZERO, |m| m.0);
            balance += amount;
            let line = n as u64 + 1;
            if line <= after || out.len() >= limit {
                continue;
            }
            let set = sets.get(&key);
            let memo = set.map(|s| &s.memo);
            out.push(StatementLine {
                line,
                at: Some(at.0),
                amount,
                balance,
                reason: memo
                    .map(|m| format!("{:?}", m.reason).to_lowercase())
                    .unwrap_or_default(),
                order: memo.and_then(|m| m.order.clone()),
                transfer: set
                    .and_then(|s| s.first_posting_leg(&wallet))
                    .map_or_else(|| key.clone(), |t| t.to_string()),
            });
        }
        Ok(out)
    }
}

fn granted(set: &TransferSet) -> Result<HoldGranted, MoneyError> {
    let leg = set
        .legs
        .first()
        .ok_or_else(|| MoneyError::Corrupt("a stored hold has no legs".into()))?;
    Ok(HoldGranted {
        hold_id: set.transfer_id(0).to_string(),
        amount: leg.amount,
    })
}

impl Funds for SqlFunds {
    fn start_session<'a>(
        &'a self,
        _store: &'a Store,
        req: StartRequest,
    ) -> BoxFuture<'a, Result<Started, StartFailure>> {
        Box::pin(self.start(req))
    }

    fn place_hold(&self, req: HoldRequest) -> BoxFuture<'_, Result<HoldGranted, FundsError>> {
        Box::pin(async move { Ok(self.place(req).await?) })
    }

    fn void_hold<'a>(
        &'a self,
        order: &'a OrderId,
        hold_id: &'a str,
    ) -> BoxFuture<'a, Result<(), FundsError>> {
        Box::pin(async move { Ok(self.void(order, hold_id).await?) })
    }

    fn available<'a>(&'a self, account: &'a AccountId) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { Ok(self.wallet_available(account).await?) })
    }

    fn top_up<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { Ok(self.pay(req, false).await?) })
    }

    fn refund<'a>(&'a self, req: &'a PaymentRequest) -> BoxFuture<'a, Result<Money, FundsError>> {
        Box::pin(async move { Ok(self.pay(req, true).await?) })
    }

    fn statement<'a>(
        &'a self,
        account: &'a AccountId,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<StatementLine>, FundsError>> {
        Box::pin(async move { Ok(self.lines(account, after, limit).await?) })
    }
}

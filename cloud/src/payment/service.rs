//! [`Payments`]: credit payments end to end — a session start authorised at the provider
//! (awaited, bounded by `payments.authorise_timeout_ms`), the void of a session that never
//! started, callbacks, refunds — on top of the pure state machine ([`super::state`]), the
//! plans ([`super::plans`]), the ledger writer and the payments table. The outcome machinery
//! (effects, retries) is in [`super::outcome`].
//!
//! **Why a start waits for the provider.** A decline must fail the start with no command sent,
//! and the authorised amount is the spending limit the start command carries, so the
//! authorisation is awaited before the order is stored, bounded by its timeout; the start still
//! never waits for hardware. Order of steps: insert the payment row (`authorising`, due for the
//! resolver only after twice the timeout) → authorise → claim the row (`authorised`) → one
//! writer job stores the authorisation set, the order and its start command. A timeout leaves
//! `authorise_unknown` (answered 503: retry); a store failure after the authorisation cancels it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::{OperatorId, OrderId};
use voltline_protocol::Money;

use super::config::PaymentsConfig;
use super::provider::{AuthoriseRequest, PaymentProvider, ProviderError};
use super::state::{CaptureState, Event};
use super::store::{self, Change, NewPayment, PaymentRow};
use super::{alipay::AlipayCredit, plans, wechat::WechatPayScore};
use crate::funds::{FundsError, HoldGranted, StartFailure, StartRequest, Started};
use crate::ledger::{LedgerAccountId, LedgerError, ProviderId};
use crate::money::funds::open_account;
use crate::money::{Job, LedgerWriter, MoneyError, Planned, StartRows};
use crate::store::Store;

/// How long an authorised session may take to be stored before the resolver treats it as
/// never started.
pub(crate) const STORE_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// What a credit start needs besides the session itself.
#[derive(Debug, Clone)]
pub struct CreditStart {
    pub provider: String,
    /// The driver at the provider (openid, authorisation code).
    pub user_ref: Option<String>,
    pub operator: OperatorId,
    /// The spending limit to authorise (the driver's amount or the default hold).
    pub amount: Money,
}

/// Why a payment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Conflict(String),
}

/// Credit payments.
#[derive(Clone)]
pub struct Payments {
    pub(crate) store: Store,
    pub(crate) writer: LedgerWriter,
    pub(crate) config: Arc<PaymentsConfig>,
    pub(crate) providers: Arc<BTreeMap<String, Arc<dyn PaymentProvider>>>,
    pub(crate) wechat: Option<Arc<WechatPayScore>>,
    pub(crate) alipay: Option<Arc<AlipayCredit>>,
}

impl Payments {
    /// The configured credit providers over `writer`, or `None` when none is configured.
    pub fn from_config(
        writer: LedgerWriter,
        config: &PaymentsConfig,
    ) -> Result<Option<Payments>, ProviderError> {
        let call = Duration::from_millis(config.call_timeout_ms);
        let wechat = match &config.wechat {
            Some(c) => Some(Arc::new(WechatPayScore::new(
                c,
                call,
                config.callback_tolerance_s,
            )?)),
            None => None,
        };
        let alipay = match &config.alipay {
            Some(c) => Some(Arc::new(AlipayCredit::new(c, call)?)),
            None => None,
        };
        let mut providers: BTreeMap<String, Arc<dyn PaymentProvider>> = BTreeMap::new();
        if let Some(w) = &wechat {
            providers.insert("wechat".into(), w.clone());
        }
        if let Some(a) = &alipay {
            providers.insert("alipay".into(), a.clone());
        }
        if providers.is_empty() {
            return Ok(None);
        }
        Ok(Some(Payments {
            store: writer.store().clone(),
            writer,
            config: Arc::new(config.clone()),
            providers: Arc::new(providers),
            wechat,
            alipay,
        }))
    }

    /// Opens each provider's two clearing accounts (idempotent; call before serving).
    pub async fn open_accounts(&self) -> Result<(), MoneyError> {
        for name in self.providers.keys() {
            let p = ProviderId::new(name.as_str())?;
            for id in [plans::authorised_account(&p), plans::collected_account(&p)] {
                open_account(
                    &self.store,
                    &id,
                    crate::ledger::AccountPolicy::default_for(&id),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The connector of `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn PaymentProvider>> {
        self.providers.get(name)
    }

    /// The payment of `order`, if it is a credit payment.
    pub async fn payment(&self, order: &OrderId) -> Result<Option<PaymentRow>, MoneyError> {
        store::by_order(&self.store, order.as_str()).await
    }

    /// Starts a credit session (see the module doc). Nothing stays behind on failure except
    /// the payment row the resolver finishes (cancelling an authorisation that was granted).
    pub async fn start_session(
        &self,
        req: StartRequest,
        credit: CreditStart,
    ) -> Result<Started, StartFailure> {
        let refused = |reason: String| StartFailure::Refused {
            conflict: false,
            reason,
        };
        let provider = self
            .providers
            .get(&credit.provider)
            .cloned()
            .ok_or_else(|| {
                refused(format!(
                    "credit provider '{}' is not configured here: use one of {:?} or the wallet",
                    credit.provider,
                    self.providers.keys().collect::<Vec<_>>()
                ))
            })?;
        let max = Money::from_yuan(self.config.max_authorisation_yuan);
        if credit.amount > max
            || credit.amount <= Money::ZERO
            || credit.amount.round_cents() != credit.amount
        {
            return Err(refused(format!("a credit session may authorise 0.01 to {max} yuan in whole fen; ask for a smaller amount")));
        }
        if credit
            .user_ref
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.len() > super::limits::MAX_USER_REF_BYTES)
        {
            return Err(refused("provider_user must be 1-128 characters".into()));
        }
        crate::store::orders::check_new_order(&req.order, &req.start)?;
        if req.order.id != req.hold.order || req.order.account != req.hold.account {
            return Err(refused(
                "the hold and the order must be for the same order and account".into(),
            ));
        }
        let pid = ProviderId::new(credit.provider.as_str()).map_err(|e| refused(e.to_string()))?;
        let order = req.order.id.clone();
        let hold_id = plans::credit_hold_id(&pid, &order);
        let out_trade_no = super::out_trade_no(&order);
        let now = Timestamp::now();
        let timeout = Duration::from_millis(self.config.authorise_timeout_ms);
        store::insert(
            &self.store,
            &NewPayment {
                order: &order,
                account: req.order.account.as_str(),
                operator: credit.operator.as_str(),
                provider: &credit.provider,
                out_trade_no: &out_trade_no,
                hold_id: &hold_id,
                amount: credit.amount,
            },
            now + SignedDuration::try_from(timeout * 2).unwrap_or(SignedDuration::from_secs(10)),
        )
        .await
        .map_err(|e| StartFailure::Funds(e.into()))?;
        let ask = AuthoriseRequest {
            order: order.clone(),
            account: req.order.account.clone(),
            out_trade_no: out_trade_no.clone(),
            amount: credit.amount,
            user_ref: credit.user_ref.clone(),
            description: format!("EV charging at {}", req.order.site),
        };
        let answer = match tokio::time::timeout(timeout, provider.authorise(&ask)).await {
            Ok(a) => a,
            Err(_) => Err(ProviderError::Unknown(
                "no answer within payments.authorise_timeout_ms".into(),
            )),
        };
        let row = self
            .row(&order)
            .await
            .map_err(|e| StartFailure::Funds(e.into()))?;
        let authorised = match answer {
            Ok(a) => a,
            Err(e) => return Err(self.authorise_failed(&row, e).await),
        };
        let granted = authorised.amount.min(credit.amount);
        let claim = Change {
            provider_ref: Some(authorised.provider_ref),
            next_attempt_at: Some(Timestamp::now() + STORE_GRACE),
            ..Change::default()
        };
        let claimed = store::transition(
            &self.store,
            &row,
            CaptureState::Authorised,
            claim,
            Timestamp::now(),
        )
        .await
        .map_err(|e| StartFailure::Funds(e.into()))?;
        if !claimed {
            return Err(StartFailure::Funds(FundsError::Unavailable(
                "the credit authorisation was taken over by the payment resolver; start again"
                    .into(),
            )));
        }
        let set = plans::authorisation(
            &pid,
            &order,
            &req.order.account,
            granted,
            req.hold.expires_at,
        );
        let mut order_row = req.order;
        order_row.hold_id = Some(hold_id.to_string());
        let accounts = vec![
            plans::authorised_account(&pid),
            LedgerAccountId::DriverWallet(order_row.account.clone()),
            LedgerAccountId::SessionClearing,
        ];
        let key = set.key.clone();
        let job = Job::planned(key, accounts, vec![], move |_| {
            Ok(Planned {
                set: set.clone(),
                settlement: None,
            })
        })
        .with_start(StartRows {
            order: order_row,
            start: req.start,
        });
        match self.writer.submit(job).await {
            Ok(applied) => {
                let (order, command) = *applied.started.ok_or_else(|| {
                    FundsError::Unavailable("the ledger applied a start without its order".into())
                })?;
                Ok(Started {
                    hold: HoldGranted {
                        hold_id: hold_id.to_string(),
                        amount: granted,
                    },
                    order,
                    command,
                })
            }
            Err(e) => {
                if let Ok(row) = self.row(&order).await {
                    if let Err(c) = self.event(row, Event::NotStarted, Default::default()).await {
                        tracing::warn!(order = %order, error = %c, "could not cancel the authorisation of a start that was not stored; the resolver retries");
                    }
                }
                Err(match e {
                    MoneyError::OrderRefused { conflict, reason } => StartFailure::Refused { conflict, reason },
                    MoneyError::Ledger(LedgerError::UnknownAccount(a)) => {
                        StartFailure::Funds(FundsError::Invalid(format!("ledger account {a} is not open; create the account before starting sessions")))
                    }
                    other => StartFailure::Funds(other.into()),
                })
            }
        }
    }

    async fn authorise_failed(&self, row: &PaymentRow, e: ProviderError) -> StartFailure {
        let (event, failure) = match &e {
            ProviderError::Declined { code, message } => (
                Event::AuthoriseDeclined,
                StartFailure::Declined(format!(
                    "{} declined the credit authorisation ({code}: {message}); choose another payment method or top up the wallet",
                    row.provider
                )),
            ),
            ProviderError::Rejected { .. } | ProviderError::Config(_) => (
                Event::AuthoriseDeclined,
                StartFailure::Refused { conflict: false, reason: format!("the credit authorisation was refused: {e}") },
            ),
            ProviderError::Unknown(_) | ProviderError::BadSignature(_) => (
                Event::AuthoriseTimedOut,
                StartFailure::Funds(FundsError::Unavailable(format!(
                    "{} did not confirm the credit authorisation in time ({e}); no session was started, retry the start",
                    row.provider
                ))),
            ),
        };
        let change = Change {
            last_error: Some(e.to_string()),
            next_attempt_at: Some(
                Timestamp::now() + SignedDuration::from_millis(self.config.retry_base_ms as i64),
            ),
            ..Change::default()
        };
        if let Ok(step) = super::state::next(CaptureState::Authorising, event) {
            if let Err(err) =
                store::transition(&self.store, row, step.to, change, Timestamp::now()).await
            {
                tracing::warn!(order = %row.order_id, error = %err, "could not record the failed authorisation; the resolver queries it");
            }
        }
        failure
    }

    pub(crate) async fn row(&self, order: &OrderId) -> Result<PaymentRow, MoneyError> {
        store::by_order(&self.store, order.as_str())
            .await?
            .ok_or_else(|| MoneyError::Invalid(format!("order {order} has no credit payment")))
    }

    /// Releases the credit hold `hold_id` of `order` if it is one (a start that failed):
    /// voids it and gives the credit back in one set, then cancels at the provider. `false`
    /// for any other hold.
    pub async fn void_hold(&self, order: &OrderId, hold_id: &str) -> Result<bool, PaymentError> {
        let Some((pid, held_order)) = hold_id
            .parse()
            .ok()
            .as_ref()
            .and_then(plans::parse_credit_hold)
        else {
            return Ok(false);
        };
        if &held_order != order {
            return Err(PaymentError::Refused(format!(
                "hold {hold_id} is not order {order}'s"
            )));
        }
        let row = self.row(order).await?;
        self.release(&pid, &row).await?;
        // Settlement may have posted the hold first (a record that proves the start did take
        // effect): then the resolver captures it, and there is nothing to cancel.
        let hold = store::pending(&self.store, &plans::credit_hold_id(&pid, order)).await?;
        if hold.is_some_and(|h| h.status == crate::ledger::PendingStatus::Voided) {
            let row = self.row(order).await?;
            self.event(row, Event::HoldVoided, Default::default())
                .await?;
        }
        Ok(true)
    }

    /// Applies the void set of `row`'s credit hold; a hold settlement already closed is fine.
    pub(crate) async fn release(
        &self,
        pid: &ProviderId,
        row: &PaymentRow,
    ) -> Result<(), MoneyError> {
        let order: OrderId = crate::money::db::parse(&row.order_id, "order id")?;
        let account = crate::money::db::parse(&row.account_id, "account id")?;
        let Some(hold) = store::pending(&self.store, &plans::credit_hold_id(pid, &order)).await?
        else {
            return Ok(());
        };
        match self
            .writer
            .apply(plans::void(pid, &order, &account, hold.amount))
            .await
        {
            Ok(_) | Err(MoneyError::Ledger(LedgerError::PendingClosed { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

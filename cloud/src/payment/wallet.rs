//! The prepaid wallet as a [`PaymentProvider`], over the SQL ledger's holds: authorise places
//! the order's hold (`hold:{order}`), capture reports what settlement posted from it (the
//! settlement of the transaction record is the wallet's capture, exactly once by its key),
//! cancel voids it, refund credits the wallet back from the operator's payable, query reads
//! the hold. For the wallet the trade number and the provider reference are the order id.

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::OrderId;

use super::provider::{
    AuthoriseRequest, Authorised, CaptureOutcome, CaptureRequest, PaymentProvider, PaymentStatus,
    ProviderError, RefundOutcome, RefundRequest,
};
use crate::funds::{Funds, FundsError, HoldRequest};
use crate::ledger::{
    IdempotencyKey, LedgerAccountId, Memo, PendingStatus, Reason, Transfer, TransferId, TransferSet,
};
use crate::money::SqlFunds;

/// How long a wallet authorisation lives if never settled (as a session's hold).
const HOLD_LIFETIME: SignedDuration = SignedDuration::from_hours(24);

/// The wallet provider.
#[derive(Clone)]
pub struct WalletProvider {
    funds: SqlFunds,
}

fn order_of(text: &str) -> Result<OrderId, ProviderError> {
    text.parse().map_err(|e| ProviderError::Rejected {
        code: "BAD_ORDER".into(),
        message: format!("'{text}' is not an order id: {e}"),
    })
}

fn unavailable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unknown(format!("the ledger: {e}"))
}

impl WalletProvider {
    pub fn new(funds: SqlFunds) -> WalletProvider {
        WalletProvider { funds }
    }

    async fn hold(
        &self,
        order: &OrderId,
    ) -> Result<Option<crate::ledger::PendingTransfer>, ProviderError> {
        let id = TransferId::new(IdempotencyKey::hold(order), 0);
        super::store::pending(self.funds.writer().store(), &id)
            .await
            .map_err(unavailable)
    }

    async fn place(&self, req: &AuthoriseRequest) -> Result<Authorised, ProviderError> {
        let granted = self
            .funds
            .place_hold(HoldRequest {
                order: req.order.clone(),
                account: req.account.clone(),
                requested: Some(req.amount),
                expires_at: Timestamp::now() + HOLD_LIFETIME,
            })
            .await
            .map_err(|e| match e {
                FundsError::InsufficientFunds { .. } => ProviderError::Declined {
                    code: "INSUFFICIENT_FUNDS".into(),
                    message: e.to_string(),
                },
                FundsError::Unavailable(_) => unavailable(e),
                other => ProviderError::Rejected {
                    code: "INVALID".into(),
                    message: other.to_string(),
                },
            })?;
        Ok(Authorised {
            provider_ref: req.order.to_string(),
            amount: granted.amount,
        })
    }

    async fn posted(&self, out_trade_no: &str) -> Result<PaymentStatus, ProviderError> {
        let order = order_of(out_trade_no)?;
        Ok(match self.hold(&order).await?.map(|p| p.status) {
            None => PaymentStatus::NotFound,
            Some(PendingStatus::Open) => PaymentStatus::Authorised {
                provider_ref: order.to_string(),
            },
            Some(PendingStatus::Posted { amount }) => PaymentStatus::Captured {
                transaction_ref: TransferId::new(IdempotencyKey::hold(&order), 0).to_string(),
                amount,
            },
            Some(PendingStatus::Voided) => PaymentStatus::Cancelled,
        })
    }

    async fn captured(&self, req: &CaptureRequest) -> Result<CaptureOutcome, ProviderError> {
        match self.posted(&req.out_trade_no).await? {
            PaymentStatus::Captured { transaction_ref, amount } if amount == req.amount => Ok(CaptureOutcome::Captured { transaction_ref }),
            PaymentStatus::Authorised { .. } => Ok(CaptureOutcome::Processing),
            other => Err(ProviderError::Rejected {
                code: "NOT_CAPTURABLE".into(),
                message: format!("the hold stands at {other:?}; a wallet hold is captured by settling its transaction record"),
            }),
        }
    }

    async fn void(&self, out_trade_no: &str) -> Result<(), ProviderError> {
        let order = order_of(out_trade_no)?;
        let hold = TransferId::new(IdempotencyKey::hold(&order), 0).to_string();
        self.funds
            .void_hold(&order, &hold)
            .await
            .map_err(unavailable)
    }

    async fn give_back(&self, req: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let order = order_of(&req.out_trade_no)?;
        let store = self.funds.writer().store();
        let o = store.get_order(&order).await.map_err(unavailable)?;
        let operator = store.get_site(&o.site).await.map_err(unavailable)?.operator;
        let key = IdempotencyKey::new(format!("wallet-refund:{}", req.out_refund_no))
            .map_err(unavailable)?;
        let set = TransferSet {
            key,
            legs: vec![Transfer::single(
                LedgerAccountId::OperatorPayable(operator),
                LedgerAccountId::DriverWallet(o.account),
                req.amount,
            )],
            memo: Memo {
                order: Some(order),
                external_ref: Some(req.out_refund_no.clone()),
                ..Memo::new(Reason::Refund)
            },
        };
        match self.funds.writer().apply(set).await {
            Ok(_) => Ok(RefundOutcome::Succeeded),
            Err(crate::money::MoneyError::Ledger(e)) => Err(ProviderError::Declined {
                code: "LEDGER".into(),
                message: e.to_string(),
            }),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl PaymentProvider for WalletProvider {
    fn name(&self) -> &str {
        "wallet"
    }

    fn authorise<'a>(
        &'a self,
        req: &'a AuthoriseRequest,
    ) -> BoxFuture<'a, Result<Authorised, ProviderError>> {
        Box::pin(self.place(req))
    }

    fn capture<'a>(
        &'a self,
        req: &'a CaptureRequest,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ProviderError>> {
        Box::pin(self.captured(req))
    }

    fn cancel<'a>(
        &'a self,
        out_trade_no: &'a str,
        _provider_ref: &'a str,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(self.void(out_trade_no))
    }

    fn refund<'a>(
        &'a self,
        req: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>> {
        Box::pin(self.give_back(req))
    }

    fn query<'a>(
        &'a self,
        out_trade_no: &'a str,
        _provider_ref: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>> {
        Box::pin(self.posted(out_trade_no))
    }
}

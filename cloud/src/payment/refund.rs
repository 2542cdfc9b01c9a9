//! Refunds of captured credit payments (admin or the site's operator): at most what was
//! captured less what was refunded or is being refunded; the provider first (by a refund
//! number derived from the order and the caller's request id, so a retry is the same refund),
//! then the ledger (`credit-refund:{p}:{number}`: the operator's payable back to the provider's
//! clearing). A refund whose outcome is unknown stays `pending` and the resolver retries it.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use super::plans;
use super::provider::{ProviderError, RefundOutcome, RefundRequest};
use super::service::{PaymentError, Payments};
use super::state::CaptureState;
use super::store::{self, RefundRow};
use crate::ledger::{LedgerError, ProviderId};
use crate::money::MoneyError;

/// A refund's outcome as answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefundView {
    pub refund_no: String,
    pub order_id: String,
    pub amount: Money,
    /// pending, succeeded or failed.
    pub state: String,
}

impl Payments {
    /// Refunds `amount` of `order`'s captured payment under the caller's `request_id`.
    pub async fn refund(
        &self,
        order: &OrderId,
        request_id: &str,
        amount: Money,
        reason: &str,
    ) -> Result<RefundView, PaymentError> {
        let row = store::by_order(&self.store, order.as_str())
            .await?
            .ok_or_else(|| PaymentError::Conflict(format!("order {order} was not paid by a credit provider; refund wallet sessions to the wallet instead")))?;
        if !matches!(
            row.capture_state()?,
            CaptureState::Captured | CaptureState::Collected
        ) {
            return Err(PaymentError::Conflict(format!(
                "the payment of order {order} is {}: only a captured payment can be refunded",
                row.state
            )));
        }
        if request_id.is_empty()
            || request_id.len() > 64
            || !request_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(PaymentError::Refused(
                "request_id must be 1-64 characters from A-Z a-z 0-9 - _".into(),
            ));
        }
        let number = super::out_refund_no(order, request_id);
        let captured = row.capture_amount.map(|m| m.0).unwrap_or(Money::ZERO);
        let (done, pending) = store::refund_totals(&self.store, order.as_str()).await?;
        let existing = store::by_refund_no(&self.store, &number).await?;
        if existing.is_none() && amount > captured - done - pending {
            return Err(PaymentError::Refused(format!(
                "at most {} of order {order} can still be refunded",
                (captured - done - pending).max(Money::ZERO)
            )));
        }
        let stored = store::insert_refund(
            &self.store,
            &number,
            order.as_str(),
            request_id,
            amount,
            reason,
        )
        .await?;
        if stored.amount.0 != amount {
            return Err(PaymentError::Conflict(format!(
                "refund request {request_id} was made before for {}; use a new request_id",
                stored.amount.0
            )));
        }
        if stored.state == "pending" {
            self.retry_refund(stored).await?;
        }
        let stored = store::by_refund_no(&self.store, &number)
            .await?
            .ok_or_else(|| MoneyError::Corrupt(format!("refund {number} vanished")))?;
        Ok(view(&stored))
    }

    /// Asks the provider for a pending refund (again) and books it when it succeeded.
    pub(crate) async fn retry_refund(&self, refund: RefundRow) -> Result<(), PaymentError> {
        let order: OrderId = crate::money::db::parse(&refund.order_id, "order id")?;
        let row = self.row(&order).await?;
        let provider = self.provider(&row.provider).cloned().ok_or_else(|| {
            PaymentError::Refused(format!("provider {} is no longer configured", row.provider))
        })?;
        let req = RefundRequest {
            out_trade_no: row.out_trade_no.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            transaction_ref: row.transaction_ref.clone().unwrap_or_default(),
            amount: refund.amount.0,
            total: row.capture_amount.map(|m| m.0).unwrap_or(Money::ZERO),
            reason: refund.reason.clone(),
        };
        let call = Duration::from_millis(self.config.call_timeout_ms);
        let answer = tokio::time::timeout(call, provider.refund(&req))
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Unknown(
                    "no answer within payments.call_timeout_ms".into(),
                ))
            });
        let attempts = refund.attempts + 1;
        let later = Timestamp::now()
            + SignedDuration::from_millis(
                i64::try_from(super::outcome::backoff_ms(
                    self.config.retry_base_ms,
                    attempts,
                ))
                .unwrap_or(i64::MAX),
            );
        match answer {
            Ok(RefundOutcome::Succeeded) => {
                let pid = ProviderId::new(row.provider.as_str()).map_err(MoneyError::from)?;
                let operator = crate::money::db::parse(&row.operator_id, "operator id")?;
                let set = plans::refund(
                    &pid,
                    &order,
                    &operator,
                    &refund.out_refund_no,
                    refund.amount.0,
                )
                .map_err(MoneyError::from)?;
                match self.writer.apply(set).await {
                    Ok(_) => {}
                    Err(MoneyError::Ledger(e @ LedgerError::LimitExceeded { .. })) => {
                        tracing::error!(order = %order, error = %e, "refunded at the provider but the operator's payable is short; left for an operator");
                        store::set_refund(
                            &self.store,
                            &refund.out_refund_no,
                            "pending",
                            attempts,
                            Timestamp::now() + SignedDuration::from_hours(24),
                            Some(e.to_string()),
                        )
                        .await?;
                        return Err(MoneyError::from(e).into());
                    }
                    Err(e) => return Err(e.into()),
                }
                store::set_refund(
                    &self.store,
                    &refund.out_refund_no,
                    "succeeded",
                    attempts,
                    Timestamp::now(),
                    None,
                )
                .await?;
            }
            Ok(RefundOutcome::Processing) => {
                store::set_refund(
                    &self.store,
                    &refund.out_refund_no,
                    "pending",
                    attempts,
                    later,
                    None,
                )
                .await?;
            }
            Err(e @ (ProviderError::Declined { .. } | ProviderError::Rejected { .. })) => {
                store::set_refund(
                    &self.store,
                    &refund.out_refund_no,
                    "failed",
                    attempts,
                    Timestamp::now(),
                    Some(e.to_string()),
                )
                .await?;
            }
            Err(e) => {
                let next = if attempts >= i64::from(self.config.max_attempts) {
                    Timestamp::from_second(253_402_300_799).unwrap_or(later)
                } else {
                    later
                };
                store::set_refund(
                    &self.store,
                    &refund.out_refund_no,
                    "pending",
                    attempts,
                    next,
                    Some(e.to_string()),
                )
                .await?;
            }
        }
        Ok(())
    }
}

fn view(r: &RefundRow) -> RefundView {
    RefundView {
        refund_no: r.out_refund_no.clone(),
        order_id: r.order_id.clone(),
        amount: r.amount.0,
        state: r.state.clone(),
    }
}

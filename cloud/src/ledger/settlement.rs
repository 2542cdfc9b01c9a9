//! Settlement of one charging transaction: the tariff's cost → one atomic transfer set.
//!
//! **Exactly once.** The set's key is `settle:{pile}:{serial}`
//! ([`IdempotencyKey::settlement`]), so a record the pile or the edge sends again replays the
//! first result. A caller that cannot rebuild identical input (the hold has since changed)
//! looks the key up first ([`Ledger::lookup`](super::Ledger::lookup)) rather than replanning.
//!
//! **The cost** is the [`CostBreakdown`] of the tariff version in force at session start
//! (checked against the version recorded with the order), as computed by the protocol crate:
//! its energy fee and service fee are each already rounded once to the fen. The charger's own
//! total is only compared: a difference of more than one fen is reported as a [`Mismatch`]
//! for the order, and the ledger bills the tariff's figure.
//!
//! **The split** ([`split_cost`]). `platform_fee = round_cents(service_fee × percent / 100)`,
//! half away from zero — the only rounding in settlement; the operator gets the remainder,
//! `energy_fee + service_fee − platform_fee`, so the two parts always sum exactly to the
//! cost. (Later issues extend these rules; they must keep that property.)
//!
//! **The legs**, in order (legs of zero are left out):
//! 1. the hold: posted for `min(cost, hold)`, which releases the rest; voided if the cost is
//!    zero;
//! 2. an overrun beyond the hold (possible after offline charging), debited from the wallet,
//!    which may draw on its credit line;
//! 3. whatever exceeds the credit line, recorded as the driver's receivable;
//! 4. session clearing → the operator's payable: the operator's part;
//! 5. session clearing → platform revenue: the platform fee.
//!
//! Legs 1-3 credit session clearing with exactly the cost and legs 4-5 debit exactly the cost,
//! so session clearing's posted balance is unchanged by every settlement.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OperatorId, OrderId};
use voltline_protocol::tariff::{CostBreakdown, TariffVersion};
use voltline_protocol::Money;

use super::account::{check_credit_limit, LedgerAccountId};
use super::error::LedgerError;
use super::session::Hold;
use super::transfer::{
    check_amount, IdempotencyKey, Memo, Reason, RecordRef, Transfer, TransferKind, TransferSet,
};

/// The platform's fee: a percentage of the service fee (0 to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformFeeRule {
    service_fee_percent: Decimal,
}

impl PlatformFeeRule {
    /// A fee of `percent` % of the service fee; refused outside 0..=100.
    pub fn new(percent: Decimal) -> Result<PlatformFeeRule, LedgerError> {
        if percent < Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
            return Err(LedgerError::BadPercentage { percent });
        }
        Ok(PlatformFeeRule {
            service_fee_percent: percent,
        })
    }

    /// The percentage.
    pub fn percent(&self) -> Decimal {
        self.service_fee_percent
    }
}

/// A cost divided between the operator and the platform. `operator + platform_fee` is the
/// cost, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostSplit {
    pub operator: Money,
    pub platform_fee: Money,
}

/// Splits a cost (see the module doc for the rounding and remainder rule). Refuses a cost
/// whose fees are not whole, non-negative fen or whose total is not their sum.
pub fn split_cost(cost: &CostBreakdown, rule: &PlatformFeeRule) -> Result<CostSplit, LedgerError> {
    check_cost(cost)?;
    let share = rule.service_fee_percent / Decimal::ONE_HUNDRED;
    // The one rounding point of settlement: half away from zero, to the fen.
    let platform_fee = cost.service_fee.times(share).round_cents();
    let operator = cost.energy_fee + cost.service_fee - platform_fee;
    assert!(!platform_fee.is_negative() && platform_fee <= cost.service_fee);
    assert_eq!(
        operator + platform_fee,
        cost.total,
        "the split must sum to the cost"
    );
    Ok(CostSplit {
        operator,
        platform_fee,
    })
}

/// The charger's total differs from the tariff's by more than one fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The tariff's total, which is billed.
    pub ours: Money,
    /// The total in the charger's transaction record.
    pub charger: Money,
    /// `charger − ours`.
    pub difference: Money,
}

/// Everything settlement needs, as read by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementInput<'a> {
    pub record: RecordRef,
    pub order: OrderId,
    pub account: AccountId,
    pub operator: OperatorId,
    /// The session's open hold, or `None` when there is none (an offline start, or a hold
    /// already voided because the start seemed to fail).
    pub hold: Option<Hold>,
    /// The tariff version recorded with the order at session start.
    pub tariff_version_at_start: TariffVersion,
    /// The session priced by [`Tariff::cost`](voltline_protocol::tariff::Tariff::cost).
    pub cost: &'a CostBreakdown,
    /// The charger's own total ("消费金额", 0.0001 yuan).
    pub charger_reported_total: Money,
    pub platform_fee: PlatformFeeRule,
    /// The wallet's available balance as read, this session's hold still pending.
    pub wallet_available: Money,
    /// The wallet's credit line (its lower limit is minus this).
    pub credit_limit: Money,
}

/// A planned settlement: the set to apply and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementPlan {
    pub set: TransferSet,
    /// The amount billed: the tariff's total.
    pub cost: Money,
    pub split: CostSplit,
    /// Taken from the hold.
    pub from_hold: Money,
    /// Released from the hold.
    pub released: Money,
    /// Overrun debited from the wallet (possibly on credit).
    pub from_wallet: Money,
    /// Overrun beyond the credit line, recorded as owed.
    pub receivable: Money,
    pub mismatch: Option<Mismatch>,
}

fn check_cost(cost: &CostBreakdown) -> Result<(), LedgerError> {
    for (what, fee) in [
        ("energy fee", cost.energy_fee),
        ("service fee", cost.service_fee),
    ] {
        if fee.is_negative() || fee.round_cents() != fee {
            return Err(LedgerError::BadInput {
                what,
                amount: fee,
                why: "a billed fee is whole fen and not negative; price the session with Tariff::cost",
            });
        }
    }
    if cost.total != cost.energy_fee + cost.service_fee {
        return Err(LedgerError::BadInput {
            what: "cost total",
            amount: cost.total,
            why: "the total must be the energy fee plus the service fee",
        });
    }
    Ok(())
}

/// Plans the settlement of one transaction record (see the module doc).
pub fn plan_settlement(input: &SettlementInput<'_>) -> Result<SettlementPlan, LedgerError> {
    let split = split_cost(input.cost, &input.platform_fee)?;
    plan_settlement_with_split(input, split)
}

/// Plans the settlement with a split made elsewhere (the operator's revenue-sharing rule,
/// `crate::sharing::split`) instead of `input.platform_fee`. The split must be whole fen,
/// not negative, and sum exactly to the cost; anything else is refused.
pub fn plan_settlement_with_split(
    input: &SettlementInput<'_>,
    split: CostSplit,
) -> Result<SettlementPlan, LedgerError> {
    check_cost(input.cost)?;
    for (what, part) in [
        ("operator share", split.operator),
        ("platform fee", split.platform_fee),
    ] {
        if part.is_negative() || part.round_cents() != part {
            return Err(LedgerError::BadInput {
                what,
                amount: part,
                why: "a split part is whole fen and not negative; split with sharing::split",
            });
        }
    }
    if split.operator + split.platform_fee != input.cost.total {
        return Err(LedgerError::BadInput {
            what: "split",
            amount: split.operator + split.platform_fee,
            why: "the operator share and the platform fee must sum to the cost",
        });
    }
    if input.cost.tariff_version != input.tariff_version_at_start {
        return Err(LedgerError::WrongTariffVersion {
            at_start: input.tariff_version_at_start,
            priced: input.cost.tariff_version,
        });
    }
    check_credit_limit(input.credit_limit)?;
    if input.wallet_available.round_cents() != input.wallet_available {
        return Err(LedgerError::BadInput {
            what: "available balance",
            amount: input.wallet_available,
            why: "balances are whole fen",
        });
    }
    let wallet = LedgerAccountId::DriverWallet(input.account.clone());
    if let Some(hold) = &input.hold {
        if hold.account != input.account {
            return Err(LedgerError::HoldMismatch {
                hold: hold.pending.clone(),
                account: wallet,
            });
        }
        check_amount(hold.amount).map_err(|why| LedgerError::BadInput {
            what: "hold",
            amount: hold.amount,
            why,
        })?;
    }
    let cost = input.cost.total;
    let held = input.hold.as_ref().map_or(Money::ZERO, |h| h.amount);
    let from_hold = cost.min(held);
    let released = held - from_hold;
    let overrun = cost - from_hold;
    let headroom = (input.wallet_available + input.credit_limit).max(Money::ZERO);
    let from_wallet = overrun.min(headroom);
    let receivable = overrun - from_wallet;
    assert_eq!(from_hold + from_wallet + receivable, cost);

    let clearing = LedgerAccountId::SessionClearing;
    let mut legs = Vec::new();
    if let Some(hold) = &input.hold {
        let pending = hold.pending.clone();
        let (amount, kind) = if from_hold.is_zero() {
            (hold.amount, TransferKind::Void { pending })
        } else {
            (from_hold, TransferKind::Post { pending })
        };
        legs.push(Transfer {
            kind,
            ..Transfer::single(wallet.clone(), clearing.clone(), amount)
        });
    }
    if !from_wallet.is_zero() {
        legs.push(Transfer {
            credit_allowed: true,
            ..Transfer::single(wallet.clone(), clearing.clone(), from_wallet)
        });
    }
    if !receivable.is_zero() {
        let owed = LedgerAccountId::Receivable(input.account.clone());
        legs.push(Transfer::single(owed, clearing.clone(), receivable));
    }
    if !split.operator.is_zero() {
        let payable = LedgerAccountId::OperatorPayable(input.operator.clone());
        legs.push(Transfer::single(clearing.clone(), payable, split.operator));
    }
    if !split.platform_fee.is_zero() {
        let revenue = LedgerAccountId::PlatformRevenue;
        legs.push(Transfer::single(clearing, revenue, split.platform_fee));
    }

    let difference = input.charger_reported_total - cost;
    let mismatch = (difference.yuan().abs() > Decimal::new(1, 2)).then_some(Mismatch {
        ours: cost,
        charger: input.charger_reported_total,
        difference,
    });
    let set = TransferSet {
        key: IdempotencyKey::settlement(&input.record),
        legs,
        memo: Memo {
            order: Some(input.order.clone()),
            record: Some(input.record),
            ..Memo::new(Reason::Settlement)
        },
    };
    Ok(SettlementPlan {
        set,
        cost,
        split,
        from_hold,
        released,
        from_wallet,
        receivable,
        mismatch,
    })
}

#[cfg(test)]
#[path = "settlement_tests.rs"]
mod tests;

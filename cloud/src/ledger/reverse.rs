//! Reverse settlement of one V2G session: exported energy priced by the discharge tariff →
//! a credit to the driver's wallet paid from the V2G payout account, in one atomic set that
//! also carries the session's import line when the vehicle charged too.
//!
//! **Exactly once.** The set's key is `v2g:{pile}:{serial}` ([`reverse_key`]): one per
//! session, whichever directions it had, so a record the pile or the edge resends replays the
//! first result, and a session that both charged and discharged settles both lines together
//! (never one without the other). Charging sessions keep their `settle:{pile}:{serial}` key;
//! the two prefixes cannot collide.
//!
//! **The export line.** The value is the [`CostBreakdown`] of the discharge tariff version in
//! force at the session's start (checked against it), as the protocol crate computes it
//! (`Tariff::cost` over the export register: its fees rounded once each, to the fen). The
//! driver is credited exactly its total. The operator's host share (`v2g_operator_pct` of the
//! value, rounded once in `crate::sharing::split`) is paid by the platform *on top*, never
//! taken from the driver; the platform's V2G cost is the sum of the two.
//!
//! **The import line** (mixed sessions) is planned by the charging rules
//! ([`plan_settlement_with_split`], no hold: a discharge order holds nothing) against the
//! wallet as it stands *after* the export credit, so the credit pays for the charge first; an
//! overrun draws on the credit line and then becomes a receivable, as for charging. Import
//! and export stay two numbers: nothing is netted before pricing, and both lines are legs of
//! their own.
//!
//! **The legs**, in order (legs of zero are left out):
//! 1. V2G payout → the driver's wallet: the export value;
//! 2. V2G payout → the operator's payable: the host share;
//! 3. then the import legs of [`plan_settlement_with_split`] (wallet → session clearing,
//!    receivable → session clearing, session clearing → operator payable and platform
//!    revenue), which leave session clearing's balance unchanged.
//!
//! It must never do I/O, read a clock or round anything itself: every amount arrives rounded
//! at its documented point, and whatever is not whole fen is refused.

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OperatorId, OrderId};
use voltline_protocol::tariff::{CostBreakdown, TariffVersion};
use voltline_protocol::Money;

use super::account::LedgerAccountId;
use super::error::LedgerError;
use super::settlement::{plan_settlement_with_split, CostSplit, SettlementInput, SettlementPlan};
use super::transfer::{IdempotencyKey, Memo, Reason, RecordRef, Transfer, TransferSet};

/// The key of a V2G session's reverse settlement: `v2g:{pile}:{serial}`.
pub fn reverse_key(record: &RecordRef) -> IdempotencyKey {
    IdempotencyKey::new(format!("v2g:{}:{}", record.pile, record.serial))
        .unwrap_or_else(|e| unreachable!("a pile code and a serial make a valid key: {e}"))
}

/// The exported energy's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLine<'a> {
    /// The export register priced by the discharge tariff.
    pub value: &'a CostBreakdown,
    /// The discharge tariff version in force at the session's start.
    pub tariff_version_at_start: TariffVersion,
    /// The operator's host share, paid by the platform on top of the driver's credit.
    pub operator_share: Money,
}

/// The imported energy's line of a mixed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine<'a> {
    /// The import register priced by the charge tariff.
    pub cost: &'a CostBreakdown,
    /// The charge tariff version in force at the session's start.
    pub tariff_version_at_start: TariffVersion,
    /// The import cost split between operator and platform (sharing rule or default fee).
    pub split: CostSplit,
}

/// Everything reverse settlement needs, as read by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseInput<'a> {
    pub record: RecordRef,
    pub order: OrderId,
    pub account: AccountId,
    pub operator: OperatorId,
    pub export: ExportLine<'a>,
    pub import: Option<ImportLine<'a>>,
    /// The wallet's available balance as read.
    pub wallet_available: Money,
    /// The wallet's credit line.
    pub credit_limit: Money,
}

/// A planned reverse settlement: the set to apply and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversePlan {
    pub set: TransferSet,
    /// Credited to the driver: the export value.
    pub driver_credit: Money,
    /// Paid to the operator for hosting the export.
    pub operator_share: Money,
    /// What the export cost the platform: credit + share.
    pub platform_cost: Money,
    /// The import line's plan, for a mixed session.
    pub import: Option<SettlementPlan>,
}

fn whole_fen(what: &'static str, amount: Money) -> Result<(), LedgerError> {
    if amount.is_negative() || amount.round_cents() != amount {
        return Err(LedgerError::BadInput {
            what,
            amount,
            why: "V2G amounts are whole fen and not negative; price the export with Tariff::cost and split it with sharing::split",
        });
    }
    Ok(())
}

fn check_export(export: &ExportLine<'_>) -> Result<(), LedgerError> {
    let v = export.value;
    whole_fen("export energy fee", v.energy_fee)?;
    whole_fen("export service fee", v.service_fee)?;
    whole_fen("operator host share", export.operator_share)?;
    if v.total != v.energy_fee + v.service_fee {
        return Err(LedgerError::BadInput {
            what: "export value",
            amount: v.total,
            why: "the total must be the energy fee plus the service fee",
        });
    }
    if export.operator_share > v.total {
        return Err(LedgerError::BadInput {
            what: "operator host share",
            amount: export.operator_share,
            why: "the host share is a percentage (at most 100) of the export value",
        });
    }
    if v.tariff_version != export.tariff_version_at_start {
        return Err(LedgerError::WrongTariffVersion {
            at_start: export.tariff_version_at_start,
            priced: v.tariff_version,
        });
    }
    Ok(())
}

/// Plans the reverse settlement of one V2G session (see the module doc).
pub fn plan_reverse(input: &ReverseInput<'_>) -> Result<ReversePlan, LedgerError> {
    check_export(&input.export)?;
    if input.wallet_available.round_cents() != input.wallet_available {
        return Err(LedgerError::BadInput {
            what: "available balance",
            amount: input.wallet_available,
            why: "balances are whole fen",
        });
    }
    let driver_credit = input.export.value.total;
    let operator_share = input.export.operator_share;
    let wallet = LedgerAccountId::DriverWallet(input.account.clone());
    let payout = LedgerAccountId::V2gPayout;
    let mut legs = Vec::new();
    if !driver_credit.is_zero() {
        legs.push(Transfer::single(payout.clone(), wallet, driver_credit));
    }
    if !operator_share.is_zero() {
        let payable = LedgerAccountId::OperatorPayable(input.operator.clone());
        legs.push(Transfer::single(payout, payable, operator_share));
    }
    let import = match &input.import {
        None => None,
        Some(line) => {
            let plan = plan_settlement_with_split(
                &SettlementInput {
                    record: input.record,
                    order: input.order.clone(),
                    account: input.account.clone(),
                    operator: input.operator.clone(),
                    hold: None,
                    tariff_version_at_start: line.tariff_version_at_start,
                    cost: line.cost,
                    // A V2G session has no charger total for its import: nothing to compare.
                    charger_reported_total: line.cost.total,
                    platform_fee: super::PlatformFeeRule::new(rust_decimal::Decimal::ZERO)?,
                    // The export credit comes first in the set, so the import sees it.
                    wallet_available: input.wallet_available + driver_credit,
                    credit_limit: input.credit_limit,
                },
                line.split,
            )?;
            legs.extend(plan.set.legs.iter().cloned());
            Some(plan)
        }
    };
    let set = TransferSet {
        key: reverse_key(&input.record),
        legs,
        memo: Memo {
            order: Some(input.order.clone()),
            record: Some(input.record),
            ..Memo::new(Reason::Settlement)
        },
    };
    set.validate()?;
    Ok(ReversePlan {
        set,
        driver_credit,
        operator_share,
        platform_cost: driver_credit + operator_share,
        import,
    })
}

/// What one session's reverse settlement moved, for the order's view (also stored with the
/// settlement row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReverseFigures {
    pub driver_credit: Money,
    pub operator_share: Money,
    pub import_cost: Money,
    pub from_wallet: Money,
    pub receivable: Money,
}

impl ReversePlan {
    /// The plan's figures.
    pub fn figures(&self) -> ReverseFigures {
        let (import_cost, from_wallet, receivable) = self
            .import
            .as_ref()
            .map_or((Money::ZERO, Money::ZERO, Money::ZERO), |p| {
                (p.cost, p.from_wallet, p.receivable)
            });
        ReverseFigures {
            driver_credit: self.driver_credit,
            operator_share: self.operator_share,
            import_cost,
            from_wallet,
            receivable,
        }
    }
}

#[cfg(test)]
#[path = "reverse_tests.rs"]
mod tests;

//! The reconciliation check: does an issued bill match the ledger, to the cent?
//!
//! [`check_day`] recomputes `operator`'s `day` three ways and reports every difference:
//! 1. the bill as stored (its totals and lines);
//! 2. the bill recomputed from the settlement rows of its sessions ([`super::job::rerun`]);
//! 3. the ledger: the transfer set of each session on the bill, read by its idempotency key
//!    (`ledger_sets`, the ledger's own record of what moved), summed leg by leg — session
//!    clearing → the operator's payable is the operator's part, session clearing → platform
//!    revenue is the fee, both together the gross; for V2G sessions, V2G payout → a driver's
//!    wallet is the driver's credit and V2G payout → the operator's payable the host share —
//!    and counted.
//!
//! The bill's session count must equal the number of keys it holds and the number of
//! settlement sets found; gross, platform fees and operator payable must equal the ledger's
//! sums exactly. Sessions settled within the day that are on no bill are reported (they go
//! to the next bill's adjustment lines), not counted as a difference.
//!
//! It never writes.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use voltline_protocol::domain::{Money, OperatorId};

use super::error::BillsError;
use super::store::{self as bill_store, StoredBill};
use crate::ledger::{LedgerAccountId, Reason, TransferSet};
use crate::sharing::Totals;
use crate::store::{with_pool, Store};

/// Keys read per `IN (...)` query.
const KEY_CHUNK: usize = 500;

/// Sums of the ledger's settlement sets for the sessions on a bill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    pub sets: u64,
    pub gross: Money,
    pub platform_fees: Money,
    pub operator_payable: Money,
    /// V2G payout → drivers' wallets.
    #[serde(default)]
    pub v2g_driver_credits: Money,
    /// V2G payout → the operator's payable.
    #[serde(default)]
    pub v2g_operator_share: Money,
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub bill_id: String,
    pub bill: Totals,
    pub ledger: LedgerTotals,
    /// Every difference found; empty when the bill matches.
    pub differences: Vec<String>,
    /// Sessions settled in the day that are on no bill yet.
    pub unbilled_in_day: u64,
}

impl CheckReport {
    /// True when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Checks `operator`'s bill for `day` (see the module doc).
pub async fn check_day(
    store: &Store,
    operator: &OperatorId,
    day: Date,
) -> Result<CheckReport, BillsError> {
    let id = StoredBill::id_for(operator, day);
    let stored = bill_store::get_bill(store, &id)
        .await?
        .ok_or_else(|| BillsError::NotFound {
            what: "bill",
            id: id.clone(),
        })?;
    let rerun = super::job::rerun(store, operator, day).await?;
    let mut differences = rerun.differences.clone();
    if rerun.recomputed_digest != stored.digest && differences.is_empty() {
        differences.push(format!(
            "the stored bill's digest {} differs from its recomputation {}",
            stored.digest, rerun.recomputed_digest
        ));
    }
    let keys: Vec<String> = with_pool!(store, |pool, d| {
        sqlx::query_scalar("SELECT settlement_key FROM bill_sessions WHERE bill_id = $1")
            .bind(&id)
            .fetch_all(pool)
            .await?
    });
    let payable = LedgerAccountId::OperatorPayable(operator.clone());
    let mut ledger = LedgerTotals::default();
    for chunk in keys.chunks(KEY_CHUNK) {
        let sets: Vec<(String, Json<TransferSet>)> = with_pool!(store, |pool, d| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT idem_key, content FROM ledger_sets WHERE idem_key IN (",
            );
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind(k.clone());
            }
            qb.push(")");
            qb.build_query_as().fetch_all(pool).await?
        });
        for (key, set) in sets {
            let set = set.0;
            if set.memo.reason != Reason::Settlement {
                differences.push(format!(
                    "ledger set {key} is a {:?}, not a settlement",
                    set.memo.reason
                ));
                continue;
            }
            ledger.sets += 1;
            for leg in &set.legs {
                if leg.debit == LedgerAccountId::V2gPayout {
                    match &leg.credit {
                        LedgerAccountId::DriverWallet(_) => ledger.v2g_driver_credits += leg.amount,
                        c if *c == payable => ledger.v2g_operator_share += leg.amount,
                        other => differences.push(format!(
                            "ledger set {key} pays a V2G {} to {other}, not to a wallet or {payable}",
                            leg.amount
                        )),
                    }
                    continue;
                }
                if leg.debit != LedgerAccountId::SessionClearing {
                    continue;
                }
                match &leg.credit {
                    LedgerAccountId::PlatformRevenue => ledger.platform_fees += leg.amount,
                    c if *c == payable => ledger.operator_payable += leg.amount,
                    other => differences.push(format!(
                        "ledger set {key} pays {} to {other}, not to {payable}",
                        leg.amount
                    )),
                }
            }
        }
    }
    ledger.gross = ledger.platform_fees + ledger.operator_payable;
    let t = stored.bill.totals;
    let n_keys = keys.len() as u64;
    for (what, bill, found) in [
        (
            "sessions (keys on the bill)",
            t.sessions.to_string(),
            n_keys.to_string(),
        ),
        (
            "sessions (settlement sets in the ledger)",
            t.sessions.to_string(),
            ledger.sets.to_string(),
        ),
        ("gross", t.gross.to_string(), ledger.gross.to_string()),
        (
            "platform fees",
            t.platform_fees.to_string(),
            ledger.platform_fees.to_string(),
        ),
        (
            "operator payable",
            t.operator_payable.to_string(),
            ledger.operator_payable.to_string(),
        ),
        (
            "V2G driver credits",
            t.v2g_driver_credits.to_string(),
            ledger.v2g_driver_credits.to_string(),
        ),
        (
            "V2G operator share",
            t.v2g_operator_share.to_string(),
            ledger.v2g_operator_share.to_string(),
        ),
    ] {
        let same = match (
            bill.parse::<rust_decimal::Decimal>(),
            found.parse::<rust_decimal::Decimal>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => bill == found,
        };
        if !same {
            differences.push(format!("{what}: bill {bill}, ledger {found}"));
        }
    }
    Ok(CheckReport {
        bill_id: id,
        bill: t,
        ledger,
        differences,
        unbilled_in_day: rerun.unbilled_in_day,
    })
}

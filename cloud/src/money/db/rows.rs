//! Rows as the ledger tables hold them, and their conversion to and from the ledger's types.

use std::str::FromStr;

use crate::ledger::{
    Account, AccountPolicy, Balance, LedgerAccountId, PendingStatus, PendingTransfer, Side,
};
use crate::money::writer::SettlementRow;
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// An account row as read: id, side, lower limit, the four sums, version.
pub type AccountRow = (
    String,
    String,
    Option<DbMoney>,
    DbMoney,
    DbMoney,
    DbMoney,
    DbMoney,
    i64,
);

/// A hold row as read: id, debit, credit, amount, expiry, state, posted amount.
pub type PendingRowDb = (
    String,
    String,
    String,
    DbMoney,
    Option<crate::store::types::DbTime>,
    String,
    Option<DbMoney>,
);

pub(crate) fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, MoneyError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| MoneyError::Corrupt(format!("{what} '{text}': {e}")))
}

/// The stored text of a side.
pub fn side_text(side: Side) -> &'static str {
    match side {
        Side::Debit => "debit",
        Side::Credit => "credit",
    }
}

/// An account from its row, with the version it was read at.
pub fn account_from_row(r: AccountRow) -> Result<(Account, i64), MoneyError> {
    let normal = match r.1.as_str() {
        "debit" => Side::Debit,
        "credit" => Side::Credit,
        other => return Err(MoneyError::Corrupt(format!("normal side '{other}'"))),
    };
    let account = Account {
        id: parse(&r.0, "ledger account id")?,
        policy: AccountPolicy {
            normal,
            lower_limit: r.2.map(|m| m.0),
        },
        balance: Balance {
            debits_pending: r.3 .0,
            debits_posted: r.4 .0,
            credits_pending: r.5 .0,
            credits_posted: r.6 .0,
        },
    };
    Ok((account, r.7))
}

/// A hold from its row.
pub fn pending_from_row(r: PendingRowDb) -> Result<PendingTransfer, MoneyError> {
    let status = match (r.5.as_str(), r.6) {
        ("open", _) => PendingStatus::Open,
        ("voided", _) => PendingStatus::Voided,
        ("posted", Some(amount)) => PendingStatus::Posted { amount: amount.0 },
        (other, _) => return Err(MoneyError::Corrupt(format!("hold state '{other}'"))),
    };
    Ok(PendingTransfer {
        id: parse(&r.0, "transfer id")?,
        debit: parse(&r.1, "ledger account id")?,
        credit: parse(&r.2, "ledger account id")?,
        amount: r.3 .0,
        expires_at: r.4.map(|t| t.0),
        status,
    })
}

/// A hold's state text and posted amount.
pub fn pending_state(p: &PendingTransfer) -> (&'static str, Option<DbMoney>) {
    match p.status {
        PendingStatus::Open => ("open", None),
        PendingStatus::Voided => ("voided", None),
        PendingStatus::Posted { amount } => ("posted", Some(DbMoney(amount))),
    }
}

/// The owner part of an account id (`wallet:acc-1` → `acc-1`).
pub fn owner_of(id: &LedgerAccountId) -> Option<String> {
    id.to_string().split_once(':').map(|(_, o)| o.to_owned())
}

/// Whether a database error is a lost race that a replay of the batch resolves (a unique
/// key inserted by another instance, a serialisation failure or a deadlock).
pub fn is_race(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("40001") | Some("40P01"))
        }
        _ => false,
    }
}

/// An order's payer as settlement reads it: (order id, account id, hold id).
pub type PayerRow = (String, String, Option<String>);

/// A stored meter reading as settlement reads it: (pile, serial, measured at, import mWh).
pub type ReadingRow = (String, String, DbTime, i64);

/// What a batch's settlements write on their orders: (order, cost, mismatch), one entry per
/// order. A pile may send two records for one order; both settle, and the order carries the
/// one later in the batch, as if they had been written in turn.
pub(super) fn order_costs<'a>(
    rows: &[&'a SettlementRow],
) -> Vec<(&'a str, voltline_protocol::Money, bool)> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<_> = rows
        .iter()
        .rev()
        .filter_map(|r| r.order.as_deref().map(|o| (o, r.cost, r.mismatch)))
        .filter(|(o, _, _)| seen.insert(*o))
        .collect();
    out.reverse();
    out
}

/// Checks what writing `settled` settlement rows changed: a settlement and a record each,
/// and `orders` orders. Anything else means the store lacks a record or an order it read.
pub(super) fn check_settled(
    settled: usize,
    (inserted, records, orders): (u64, u64, u64),
    with_order: usize,
) -> Result<(), MoneyError> {
    let settled = settled as u64;
    if (inserted, records, orders) != (settled, settled, with_order as u64) {
        return Err(MoneyError::Corrupt(format!(
            "settling {settled} records wrote {inserted} settlements, {records} records and {orders} of {with_order} orders"
        )));
    }
    Ok(())
}

//! [`BillsError`]: everything the bill job, the rule store, the reconciliation check and the
//! webhook outbox can fail with. Each message says what to do.

use voltline_protocol::domain::OperatorId;

use crate::sharing::bill::BillError;
use crate::sharing::rule::{RuleBookError, TermsError};
use crate::store::StoreError;

/// Why a sharing or billing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BillsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bill(#[from] BillError),
    #[error(transparent)]
    Terms(#[from] TermsError),
    #[error(transparent)]
    RuleBook(#[from] RuleBookError),
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("{what} '{id}' does not exist: check the id")]
    NotFound { what: &'static str, id: String },
    #[error("the '{name}' job lease was lost (token {token} is no longer current): another instance took over; this pass stops and nothing it had not committed is written")]
    LeaseLost { name: String, token: i64 },
    #[error("the bill of operator {operator} for {day} is issued already; issued bills never change — re-run it to compare, or look at the next bill's adjustment lines")]
    AlreadyIssued { operator: OperatorId, day: String },
    #[error("{0}; another writer got there first: retry")]
    Conflict(String),
    #[error("stored billing data is corrupt: {0}; the row was written by another program or by hand: fix or remove it")]
    Corrupt(String),
}

impl From<sqlx::Error> for BillsError {
    fn from(e: sqlx::Error) -> BillsError {
        BillsError::Store(StoreError::from(e))
    }
}

impl BillsError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> BillsError {
        BillsError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

//! Why a money operation failed. Each message says what to do.

use crate::funds::FundsError;
use crate::ledger::LedgerError;
use crate::store::StoreError;

/// A failed money operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MoneyError {
    /// The ledger's rules refused the operation; nothing changed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database failed; the operation did not commit and may be retried.
    #[error("the ledger database failed: {0}; the operation did not commit, retry it")]
    Database(String),
    /// Version conflicts or key races persisted through every retry.
    #[error("ledger rows stayed contended after {attempts} attempts; retry later (or enable the Redis lease for hot accounts)")]
    Contended { attempts: u32 },
    /// The writer task is gone (shut down or crashed).
    #[error("the ledger writer has stopped; restart the service")]
    WriterStopped,
    /// Stored ledger data does not parse.
    #[error("stored ledger data is corrupt: {0}; stop writing and inspect the database")]
    Corrupt(String),
    /// Input that settlement or pricing cannot use.
    #[error("{0}")]
    Invalid(String),
    /// A session start's order was refused (a repeated id, idempotency key or serial, a
    /// charger that is gone or elsewhere); its hold was not placed.
    #[error("{reason}")]
    OrderRefused { conflict: bool, reason: String },
    /// The Redis lease could not be used.
    #[error("redis lease: {0}; check VOLTLINE redis settings, or run without the lease (correctness does not depend on it)")]
    Lease(String),
}

impl From<sqlx::Error> for MoneyError {
    /// A lost race (a unique key another instance inserted first, a serialisation failure,
    /// a deadlock) becomes [`MoneyError::Contended`], which the writer resolves by replaying
    /// its batch on fresh rows; anything else is a database failure.
    fn from(e: sqlx::Error) -> Self {
        if super::db::is_race(&e) {
            MoneyError::Contended { attempts: 0 }
        } else {
            MoneyError::Database(e.to_string())
        }
    }
}

impl From<StoreError> for MoneyError {
    fn from(e: StoreError) -> Self {
        MoneyError::Database(e.to_string())
    }
}

impl From<MoneyError> for FundsError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::Ledger(LedgerError::UnknownAccount(id)) => match id {
                crate::ledger::LedgerAccountId::DriverWallet(a) => FundsError::UnknownAccount(a),
                other => FundsError::Invalid(format!("ledger account {other} is not open")),
            },
            MoneyError::Ledger(LedgerError::InsufficientFunds {
                account: crate::ledger::LedgerAccountId::DriverWallet(account),
                available,
                requested,
            }) => FundsError::InsufficientFunds {
                account,
                available,
                requested,
            },
            MoneyError::Ledger(other) => FundsError::Invalid(other.to_string()),
            MoneyError::Invalid(text) | MoneyError::OrderRefused { reason: text, .. } => {
                FundsError::Invalid(text)
            }
            other => FundsError::Unavailable(other.to_string()),
        }
    }
}

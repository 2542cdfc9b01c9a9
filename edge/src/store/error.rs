//! The store's typed errors. Every message says what happened and what to do.

use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk or sled failed; the operation did not happen (or, for a flush, durability is
    /// unknown: treat the records as not acknowledged).
    #[error("the edge store failed: {0}; check the disk (space, permissions, health) and restart the edge")]
    Sled(Arc<sled::Error>),
    /// A stored value could not be read back.
    #[error("stored {what} at key {key} is unreadable ({reason}); the store is damaged: keep a copy of it for analysis and restore from the cloud")]
    Corrupt {
        what: &'static str,
        key: String,
        reason: String,
    },
    /// A value could not be encoded.
    #[error("could not encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    /// The cloud acknowledged a sequence the edge never wrote.
    #[error("the cloud acknowledged sequence {acked}, but the edge has written only up to {head}; the cloud's ledger belongs to another store: check the site id")]
    AckBeyondHead { acked: u64, head: u64 },
    /// A batch was larger than the configured limit.
    #[error("a batch of {len} records is larger than the limit of {max}; split it")]
    BatchTooLarge { len: usize, max: usize },
    /// The inbox holds its maximum of commands.
    #[error("the command inbox is full ({max} commands); the edge refuses more until commands complete or expire")]
    InboxFull { max: usize },
    /// The cached site config has too many entries.
    #[error("the site config has {len} {what}, more than the limit of {max}")]
    ConfigTooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The group committer is gone (the edge is shutting down).
    #[error("the group committer has stopped; the edge is shutting down")]
    CommitterStopped,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(Arc::new(e))
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

pub(super) fn corrupt(what: &'static str, key: &[u8], reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        key: hex_of(key),
        reason: reason.to_string(),
    }
}

pub(super) fn encode(what: &'static str, e: impl ToString) -> StoreError {
    StoreError::Encode {
        what,
        reason: e.to_string(),
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

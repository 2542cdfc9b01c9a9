//! The store's errors. Each message says what the caller (or the person reading a log) should
//! do next; the HTTP layer maps them to status codes (404, 409, 422, 503).

use crate::domain::command::BadCommandTransition;
use crate::domain::order::BadOrderTransition;

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist.
    #[error("{what} '{id}' does not exist: check the id, or create the {what} first")]
    NotFound { what: &'static str, id: String },
    /// A row with this identity exists already.
    #[error("{what} '{id}' already exists: use another id, or read the existing {what}")]
    Duplicate { what: &'static str, id: String },
    /// An optimistic update lost a race.
    #[error("{what} '{id}' was changed concurrently (expected version {expected}, found {found}): read it again and retry on the current version")]
    VersionConflict {
        what: &'static str,
        id: String,
        expected: i64,
        found: i64,
    },
    /// The input breaks a rule the store enforces.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// An order transition the state machine refuses.
    #[error(transparent)]
    OrderTransition(#[from] BadOrderTransition),
    /// A command transition the state machine refuses.
    #[error(transparent)]
    CommandTransition(#[from] BadCommandTransition),
    /// The database URL names no supported backend.
    #[error("database URL '{0}' is not supported: use sqlite://PATH (the embedded default) or postgres://USER:PASSWORD@HOST/DB")]
    UnsupportedUrl(String),
    /// A stored value cannot be read back.
    #[error("stored data is corrupt: {0}; the row was written by another program or by hand: fix or remove it")]
    Corrupt(String),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}; check the database user may create tables, and that no newer Voltline has migrated this database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed or is unreachable.
    #[error("database error: {0}; check that the database is reachable and has space, then retry")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// Maps a failed insert: a unique violation means `what` `id` exists, a foreign-key
    /// violation means something it refers to does not.
    pub(crate) fn on_insert(e: sqlx::Error, what: &'static str, id: &str) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Duplicate {
                    what,
                    id: id.to_owned(),
                };
            }
            if db.is_foreign_key_violation() {
                return StoreError::Invalid {
                    what,
                    reason: format!(
                        "'{id}' refers to an operator, site, charger, account or tariff that does not exist: create that first"
                    ),
                };
            }
        }
        StoreError::from(e)
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

//! [`PassReads`]: what a settlement pass reads for its records before pricing them, a
//! statement per list (`money::db::{load_payers, load_readings}`) instead of two per record:
//! the orders that say who pays and the meter readings stored during each session.

use std::collections::HashMap;

use super::MoneyError;
use crate::store::types::DbTime;
use crate::store::{Backend, Store};

/// Records per read statement: bounds one statement's list and what one read holds.
const READ_CHUNK: usize = 1_024;

/// The payers and stored readings of one pass's records.
#[derive(Debug, Default)]
pub(crate) struct PassReads {
    /// Order id → (account, hold).
    orders: HashMap<String, (String, Option<String>)>,
    /// (pile, serial) → stored readings (instant, import register mWh), oldest first.
    readings: HashMap<(String, String), Vec<(DbTime, i64)>>,
}

impl PassReads {
    /// Reads the orders among `orders` and the readings of the sessions `sessions` (pile,
    /// serial).
    pub(crate) async fn load(
        store: &Store,
        orders: &[&str],
        sessions: &[(&str, &str)],
    ) -> Result<PassReads, MoneyError> {
        let mut reads = PassReads::default();
        let mut serials: Vec<&str> = sessions.iter().map(|(_, s)| *s).collect();
        serials.sort_unstable();
        serials.dedup();
        macro_rules! load {
            ($pool:expr, $ops:ident) => {{
                use super::db::$ops as ops;
                let mut conn = $pool.acquire().await?;
                for chunk in orders.chunks(READ_CHUNK) {
                    for (id, account, hold) in ops::load_payers(&mut conn, chunk).await? {
                        reads.orders.insert(id, (account, hold));
                    }
                }
                for chunk in serials.chunks(READ_CHUNK) {
                    for (pile, serial, at, mwh) in ops::load_readings(&mut conn, chunk).await? {
                        reads
                            .readings
                            .entry((pile, serial))
                            .or_default()
                            .push((at, mwh));
                    }
                }
            }};
        }
        match &store.backend {
            Backend::Sqlite(pool) => load!(pool, sqlite),
            Backend::Postgres(pool) => load!(pool, postgres),
        }
        for readings in reads.readings.values_mut() {
            readings.sort_unstable_by_key(|(at, _)| at.0);
        }
        Ok(reads)
    }

    /// The account and hold of `order`, if it exists.
    pub(crate) fn payer(&self, order: &str) -> Option<&(String, Option<String>)> {
        self.orders.get(order)
    }

    /// The stored readings of the session (pile, serial), oldest first.
    pub(crate) fn readings(&self, pile: &str, serial: &str) -> &[(DbTime, i64)] {
        self.readings
            .get(&(pile.to_owned(), serial.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

//! The checks of a batch's session starts against the database, apart from how each backend
//! reads the facts: which keys to look up ([`StartKeys`]), what was found ([`StartFacts`]),
//! and which starts that refuses ([`StartFacts::refusals`]). Checked before anything is
//! written, so a refused start leaves no trace.

use std::collections::{BTreeMap, BTreeSet};

use crate::money::writer::StartRows;
use crate::money::MoneyError;

/// What a batch's starts look up: their chargers, and the order ids, (account, idempotency
/// key) pairs and transaction serials that must not be stored already.
#[derive(Debug, Default)]
pub struct StartKeys {
    pub piles: Vec<String>,
    pub ids: Vec<String>,
    /// (account, idempotency key): the key is unique per account, and looked up with it so
    /// that the unique index serves the lookup.
    pub keys: Vec<(String, String)>,
    pub serials: Vec<String>,
}

impl StartKeys {
    /// The lookups of `starts` (each charger once).
    pub fn of(starts: &[(usize, &StartRows)]) -> StartKeys {
        let piles: BTreeSet<String> = starts
            .iter()
            .map(|(_, s)| s.order.pile.to_string())
            .collect();
        StartKeys {
            piles: piles.into_iter().collect(),
            ids: starts.iter().map(|(_, s)| s.order.id.to_string()).collect(),
            keys: starts
                .iter()
                .filter_map(|(_, s)| {
                    s.order
                        .idempotency_key
                        .clone()
                        .map(|k| (s.order.account.to_string(), k))
                })
                .collect(),
            serials: starts
                .iter()
                .filter_map(|(_, s)| s.order.transaction_serial.map(|t| t.to_string()))
                .collect(),
        }
    }
}

/// What the database holds of a batch's lookups.
#[derive(Debug, Default)]
pub struct StartFacts {
    /// Pile code → (site, connector count).
    pub chargers: BTreeMap<String, (String, i64)>,
    pub ids: BTreeSet<String>,
    /// (account, idempotency key).
    pub keys: BTreeSet<(String, String)>,
    pub serials: BTreeSet<String>,
}

impl StartFacts {
    /// Takes one row of a backend's lookup, tagged by what it answers: `charger` (pile code,
    /// site, connector count), `id` (order id), `key` (idempotency key, account) or
    /// `serial` (transaction serial).
    pub fn record(
        &mut self,
        tag: &str,
        value: String,
        text: Option<String>,
        count: Option<i64>,
    ) -> Result<(), MoneyError> {
        match tag {
            "charger" => {
                self.chargers
                    .insert(value, (text.unwrap_or_default(), count.unwrap_or(0)));
            }
            "id" => {
                self.ids.insert(value);
            }
            "key" => {
                self.keys.insert((text.unwrap_or_default(), value));
            }
            "serial" => {
                self.serials.insert(value);
            }
            other => {
                return Err(MoneyError::Corrupt(format!(
                    "the start checks read a row tagged '{other}', which no lookup asks for"
                )))
            }
        }
        Ok(())
    }

    /// Which starts (by job index) to refuse: the charger gone, at another site or without
    /// the connector; an order id, idempotency key (per account) or transaction serial stored
    /// already or repeated within the batch.
    pub fn refusals(mut self, starts: &[(usize, &StartRows)]) -> Vec<(usize, MoneyError)> {
        let mut refused = Vec::new();
        for (i, rows) in starts {
            let o = &rows.order;
            let pile = o.pile.to_string();
            let conflict = |reason: String| MoneyError::OrderRefused {
                conflict: true,
                reason,
            };
            let invalid = |reason: String| MoneyError::OrderRefused {
                conflict: false,
                reason,
            };
            let why = match self.chargers.get(&pile) {
                None => Some(invalid(format!(
                    "charger {pile} does not exist (any more): start the session at a registered charger"
                ))),
                Some((site, _)) if site != o.site.as_str() => Some(invalid(format!(
                    "charger {pile} is at site {site}, not {}: start the session at the charger's site",
                    o.site
                ))),
                Some((_, count)) if i64::from(o.connector.get()) > *count => Some(invalid(
                    format!("charger {pile} has {count} connectors; choose connector 1-{count}"),
                )),
                Some(_) => None,
            };
            let why = why.or_else(|| {
                (!self.ids.insert(o.id.to_string()))
                    .then(|| conflict(format!("order {} exists already", o.id)))
            });
            let why = why.or_else(|| {
                o.idempotency_key.as_ref().and_then(|k| {
                    (!self.keys.insert((o.account.to_string(), k.clone()))).then(|| {
                        conflict(format!(
                            "account {} already started a session with idempotency key '{k}': use a new key for a new session",
                            o.account
                        ))
                    })
                })
            });
            let why = why.or_else(|| {
                o.transaction_serial.and_then(|t| {
                    (!self.serials.insert(t.to_string())).then(|| {
                        conflict(format!("transaction serial {t} is in use; retry the start"))
                    })
                })
            });
            if let Some(e) = why {
                refused.push((*i, e));
            }
        }
        refused
    }
}

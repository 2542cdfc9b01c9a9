//! Which chargers may connect to this site, and with which credential.
//!
//! Entries come from the edge's config file and from the site configuration the cloud sends
//! (the cloud's registry stores each charger's credential as a SHA-256 hash; so does the edge:
//! a stolen edge disk gives no charger passwords). Lookups are lock-light: the table is an
//! `Arc` swapped whole when the configuration changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use voltline_protocol::domain::PileCode;

/// One registered charger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargerEntry {
    pub pile: PileCode,
    /// Lower-case hex SHA-256 of the MQTT password; `None` allows TCP only.
    pub credential_sha256: Option<String>,
}

/// The answer to a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Not on this site's list.
    UnknownPile,
    /// On the list, wrong password (or no MQTT credential registered).
    BadCredential,
}

impl Verdict {
    /// The metric label of a refusal.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::UnknownPile => "unknown_pile",
            Verdict::BadCredential => "bad_credential",
        }
    }
}

/// The table of chargers. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ChargerDirectory {
    table: Arc<RwLock<Arc<HashMap<PileCode, ChargerEntry>>>>,
}

/// Hex SHA-256 of a secret, as stored.
pub fn hash_credential(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl ChargerDirectory {
    /// A directory holding `entries`.
    pub fn new(entries: impl IntoIterator<Item = ChargerEntry>) -> Self {
        let d = ChargerDirectory::default();
        d.replace(entries);
        d
    }

    /// Replaces the whole table.
    pub fn replace(&self, entries: impl IntoIterator<Item = ChargerEntry>) {
        let map: HashMap<_, _> = entries.into_iter().map(|e| (e.pile, e)).collect();
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
    }

    /// Adds or replaces entries, keeping the others.
    pub fn merge(&self, entries: impl IntoIterator<Item = ChargerEntry>) {
        let mut w = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut map = HashMap::clone(&w);
        for e in entries {
            map.insert(e.pile, e);
        }
        *w = Arc::new(map);
    }

    fn snapshot(&self) -> Arc<HashMap<PileCode, ChargerEntry>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Number of registered chargers.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// True when no charger is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A TCP login: the pile must be registered.
    pub fn verify_tcp(&self, pile: &PileCode) -> Verdict {
        if self.snapshot().contains_key(pile) {
            Verdict::Accepted
        } else {
            Verdict::UnknownPile
        }
    }

    /// An MQTT login: username = pile code, password checked against the stored hash in
    /// constant time.
    pub fn verify_mqtt(&self, username: &str, password: &str) -> Verdict {
        let Ok(pile) = username.parse::<PileCode>() else {
            return Verdict::UnknownPile;
        };
        if username.len() != 14 {
            return Verdict::UnknownPile;
        }
        let table = self.snapshot();
        let Some(entry) = table.get(&pile) else {
            return Verdict::UnknownPile;
        };
        let Some(expected) = &entry.credential_sha256 else {
            return Verdict::BadCredential;
        };
        let got = hash_credential(password);
        if constant_time_eq(got.as_bytes(), expected.to_ascii_lowercase().as_bytes()) {
            Verdict::Accepted
        } else {
            Verdict::BadCredential
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pile(s: &str) -> PileCode {
        s.parse().unwrap()
    }

    #[test]
    fn logins_are_checked() {
        let d = ChargerDirectory::new([
            ChargerEntry {
                pile: pile("32010600019236"),
                credential_sha256: Some(hash_credential("s3cret")),
            },
            ChargerEntry {
                pile: pile("32010600019237"),
                credential_sha256: None,
            },
        ]);
        assert_eq!(d.verify_tcp(&pile("32010600019236")), Verdict::Accepted);
        assert_eq!(d.verify_tcp(&pile("32010600019299")), Verdict::UnknownPile);
        assert_eq!(d.verify_mqtt("32010600019236", "s3cret"), Verdict::Accepted);
        assert_eq!(
            d.verify_mqtt("32010600019236", "wrong"),
            Verdict::BadCredential
        );
        assert_eq!(
            d.verify_mqtt("32010600019237", "anything"),
            Verdict::BadCredential
        );
        assert_eq!(d.verify_mqtt("not-a-pile", "x"), Verdict::UnknownPile);
        assert_eq!(d.verify_mqtt("3201060001923", "x"), Verdict::UnknownPile);
        d.merge([ChargerEntry {
            pile: pile("32010600019299"),
            credential_sha256: None,
        }]);
        assert_eq!(d.verify_tcp(&pile("32010600019299")), Verdict::Accepted);
        assert_eq!(d.len(), 3);
    }
}

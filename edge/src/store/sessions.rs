//! Active sessions by pile and connector, so that a restarted edge resumes pricing and limit
//! enforcement where it stopped; in place of a session, an answered card start that has not
//! started yet (see `connector::Saved`).

use voltline_protocol::domain::{ConnectorNo, PileCode};

use super::codec::connector_key;
use super::error::{corrupt, encode, StoreError};
use super::Store;
use crate::connector::{ConnectorId, Direction, PendingStart, Saved, Session};

/// Most active sessions the store holds (a site has far fewer connectors).
pub const MAX_SESSIONS: usize = 100_000;

impl Store {
    /// Saves the active session of a connector (not flushed: written with the next flush).
    pub fn put_session(&self, id: ConnectorId, session: &Session) -> Result<(), StoreError> {
        let value = serde_json::to_vec(session).map_err(|e| encode("session", e))?;
        self.inner
            .sessions
            .insert(connector_key(&id.pile, id.connector), value)?;
        Ok(())
    }

    /// Saves an answered card start of a connector in place of a session (not flushed).
    pub fn put_card_start(&self, id: ConnectorId, start: &PendingStart) -> Result<(), StoreError> {
        let value = serde_json::to_vec(start).map_err(|e| encode("card start", e))?;
        self.inner
            .sessions
            .insert(connector_key(&id.pile, id.connector), value)?;
        Ok(())
    }

    /// Forgets the active session (or card start) of a connector.
    pub fn clear_session(&self, id: ConnectorId) -> Result<(), StoreError> {
        self.inner
            .sessions
            .remove(connector_key(&id.pile, id.connector))?;
        Ok(())
    }

    /// Whether the billing record of what a connector saved is already stored: its session
    /// was over when it was saved last (a crash can lose the clearing of a session whose
    /// record was just flushed), so it must not be resumed — least of all a card start, whose
    /// serial a repeated 0x31 would otherwise be given again for a new session.
    pub fn saved_record_stored(&self, saved: &Saved) -> Result<bool, StoreError> {
        let (serial, direction) = match saved {
            Saved::Session(s) => (&s.serial, s.direction),
            Saved::CardStart(p) => (&p.serial, p.direction),
        };
        let seq = match direction {
            Direction::Charge => self.transaction_seq(serial)?,
            Direction::Discharge => self.discharge_seq(serial)?,
        };
        Ok(seq.is_some())
    }

    /// Every saved session and card start (at most [`MAX_SESSIONS`]), to restore the
    /// connector machines.
    pub fn sessions(&self) -> Result<Vec<(ConnectorId, Saved)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.sessions.iter().take(MAX_SESSIONS) {
            let (k, v) = item?;
            let id = connector_of(&k)?;
            let session = serde_json::from_slice(&v).map_err(|e| corrupt("session", &k, e))?;
            out.push((id, session));
        }
        Ok(out)
    }
}

fn connector_of(key: &[u8]) -> Result<ConnectorId, StoreError> {
    let bad = |why: &str| corrupt("session key", key, why);
    if key.len() != 8 {
        return Err(bad("not 8 bytes"));
    }
    let mut pile = [0u8; 7];
    pile.copy_from_slice(&key[..7]);
    let pile = voltline_protocol::wire::bcd::Bcd::from_bytes(pile)
        .map(PileCode::from_bcd)
        .map_err(|_| bad("pile code is not BCD"))?;
    let connector = ConnectorNo::new(key[7]).ok_or_else(|| bad("connector out of range"))?;
    Ok(ConnectorId { pile, connector })
}

//! The platform's upkeep commands: the offline card list (0x44/0x46/0x48 → 0x43/0x45/0x47),
//! parking locks (0x62 → 0x63) and remote update (0x94 → 0x93).
//!
//! The simulated pile keeps an offline card list (bounded by [`MAX_OFFLINE_CARDS`]; a sync
//! that would overflow it fails with "storage full"), has a parking lock on every connector
//! that always reaches its position, and cannot download firmware: a remote update is
//! answered "download timed out", which is what a pile without a reachable FTP server says.

use voltline_protocol::message::cards::{
    CardClear, CardClearReply, CardClearResult, CardPresence, CardQuery, CardQueryReply,
    CardQueryResult, CardSync, CardSyncReply, ClearFailure, SyncFailure,
};
use voltline_protocol::message::maintenance::{Update, UpdateReply, UpdateStatus};
use voltline_protocol::message::settings::{Outcome, ParkingLockCommand, ParkingLockReply};

use super::{Charger, Output};

/// Most cards on a pile's offline list.
pub const MAX_OFFLINE_CARDS: usize = 1_000;

impl Charger {
    pub(super) fn on_card_sync(&mut self, seq: u16, s: &CardSync, out: &mut Vec<Output>) {
        let pile = self.spec.pile;
        let new: Vec<_> = s
            .cards
            .iter()
            .map(|c| c.physical_card_no)
            .filter(|c| !self.offline_cards.contains(c))
            .collect();
        let (result, failure) = if s.pile_code != pile {
            (Outcome::Failed, SyncFailure::BadCardNumber)
        } else if self.offline_cards.len() + new.len() > MAX_OFFLINE_CARDS {
            (Outcome::Failed, SyncFailure::StorageFull)
        } else {
            self.offline_cards.extend(new);
            (Outcome::Succeeded, SyncFailure::NoError)
        };
        let reply = CardSyncReply {
            pile_code: pile,
            result,
            failure,
        };
        self.reply(seq, reply, out);
        self.answered(0x44, 0x43, result == Outcome::Succeeded, out);
    }

    pub(super) fn on_card_clear(&mut self, seq: u16, c: &CardClear, out: &mut Vec<Output>) {
        let ok = c.pile_code == self.spec.pile;
        let results = c
            .cards
            .iter()
            .map(|card| {
                if ok {
                    self.offline_cards.retain(|x| x != card);
                }
                CardClearResult {
                    physical_card_no: *card,
                    result: if ok {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed
                    },
                    failure: if ok {
                        ClearFailure::NoError
                    } else {
                        ClearFailure::BadCardNumber
                    },
                }
            })
            .collect();
        let reply = CardClearReply {
            pile_code: self.spec.pile,
            results,
        };
        self.reply(seq, reply, out);
        self.answered(0x46, 0x45, ok, out);
    }

    pub(super) fn on_card_query(&mut self, seq: u16, q: &CardQuery, out: &mut Vec<Output>) {
        let results = q
            .cards
            .iter()
            .map(|card| CardQueryResult {
                physical_card_no: *card,
                presence: if self.offline_cards.contains(card) {
                    CardPresence::Present
                } else {
                    CardPresence::Absent
                },
            })
            .collect();
        let reply = CardQueryReply {
            pile_code: self.spec.pile,
            results,
        };
        self.reply(seq, reply, out);
        self.answered(0x48, 0x47, true, out);
    }

    pub(super) fn on_parking_lock(
        &mut self,
        seq: u16,
        l: &ParkingLockCommand,
        out: &mut Vec<Output>,
    ) {
        let ok = l.pile_code == self.spec.pile && self.connector_index(l.connector.get()).is_some();
        let reply = ParkingLockReply {
            pile_code: self.spec.pile,
            connector: l.connector,
            result: if ok {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            reserved: [0; 4],
        };
        self.reply(seq, reply, out);
        self.answered(0x62, 0x63, ok, out);
    }

    pub(super) fn on_update(&mut self, seq: u16, u: &Update, out: &mut Vec<Output>) {
        let status = if u.pile_code == self.spec.pile {
            UpdateStatus::DownloadTimeout
        } else {
            UpdateStatus::WrongPileCode
        };
        let reply = UpdateReply {
            pile_code: self.spec.pile,
            status,
        };
        self.reply(seq, reply, out);
        self.answered(0x94, 0x93, false, out);
    }
}

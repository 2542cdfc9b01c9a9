//! The queue of records awaiting confirmation, and when each is (re)sent.
//!
//! Schedule (reference 8.7/8.8, made endless because a pile never forgets a bill): first send
//! at once (or at login, if offline when the record was made), then every `record_resend_s`
//! for three resends, then every `record_resend_slow_s` until confirmed. Attempts are counted
//! only while online. The queue is bounded by `max_pending_records`; when full the pile keeps
//! every record and refuses new sessions (see `Charger::can_start`).

use voltline_protocol::domain::TransactionSerial;

use crate::charger::durable::StoredRecord;
use crate::clock::SimTime;
use crate::events::PendingRecordInfo;

/// A record and its resend state.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record: StoredRecord,
    pub attempts: u32,
    pub next_send: SimTime,
}

/// Fast resends before slowing down.
const FAST_RESENDS: u32 = 3;
/// Most records sent in one step (after a reconnect with a full store).
pub const SEND_BURST: usize = 16;

/// The pending records, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RecordQueue {
    items: Vec<Pending>,
}

impl RecordQueue {
    pub fn from_stored(records: Vec<StoredRecord>) -> RecordQueue {
        RecordQueue {
            items: records
                .into_iter()
                .map(|record| Pending {
                    record,
                    attempts: 0,
                    next_send: SimTime::ZERO,
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, record: StoredRecord, now: SimTime) {
        self.items.push(Pending {
            record,
            attempts: 0,
            next_send: now,
        });
    }

    /// Removes the record with this serial and frame type; true if it was there.
    pub fn confirm(&mut self, serial: &TransactionSerial, frame_type: u8) -> bool {
        let before = self.items.len();
        self.items
            .retain(|p| !(p.record.serial() == *serial && p.record.frame_type() == frame_type));
        self.items.len() != before
    }

    /// Makes every record due now (after login).
    pub fn all_due(&mut self, now: SimTime) {
        for p in &mut self.items {
            p.next_send = now;
        }
    }

    /// The records due at `now` (at most [`SEND_BURST`]), marked as sent.
    pub fn take_due(&mut self, now: SimTime, fast_s: u32, slow_s: u32) -> Vec<(StoredRecord, u32)> {
        let mut out = Vec::new();
        for p in self.items.iter_mut().filter(|p| p.next_send <= now) {
            if out.len() >= SEND_BURST {
                break;
            }
            p.attempts += 1;
            let wait_s = if p.attempts <= FAST_RESENDS {
                fast_s
            } else {
                slow_s
            };
            p.next_send = now.plus_secs(wait_s as u64);
            out.push((p.record.clone(), p.attempts));
        }
        out
    }

    /// The earliest resend.
    pub fn next_due(&self) -> Option<SimTime> {
        self.items.iter().map(|p| p.next_send).min()
    }

    pub fn stored(&self) -> Vec<StoredRecord> {
        self.items.iter().map(|p| p.record.clone()).collect()
    }

    pub fn info(&self) -> Vec<PendingRecordInfo> {
        self.items
            .iter()
            .map(|p| PendingRecordInfo {
                serial: p.record.serial(),
                frame_type: p.record.frame_type(),
                attempts: p.attempts,
            })
            .collect()
    }
}

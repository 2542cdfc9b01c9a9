//! The inbox: commands from the cloud, stored (and flushed) before the edge acknowledges
//! them, deduplicated by command id, with their expiry.

use std::sync::atomic::Ordering;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::CommandId;
use voltline_protocol::sync::CommandEnvelope;

use super::error::{corrupt, encode, StoreError};
use super::Store;

/// How far a command got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Stored, not yet handed to its connector.
    Pending,
    /// Handed to its connector (a frame may have gone to the pile).
    Delivered,
    /// Its result is in the outbox. Kept until after its expiry so a redelivery is
    /// recognised.
    Done,
}

/// A stored command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub envelope: CommandEnvelope,
    pub status: CommandStatus,
    pub received_at: Timestamp,
}

/// The answer to a delivery from the cloud.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// First delivery: stored durably; acknowledge it and act on it.
    New,
    /// Already stored: acknowledge it again, do not act on it again.
    Duplicate(CommandStatus),
}

impl Store {
    /// Stores a command from the cloud durably (flushed) unless its id is already held.
    /// Acknowledge the delivery only after this returns `Ok`.
    pub async fn receive_command(
        &self,
        envelope: CommandEnvelope,
        now: Timestamp,
    ) -> Result<Received, StoreError> {
        let received = self.insert_command(envelope, now)?;
        self.flush().await?;
        Ok(received)
    }

    fn insert_command(
        &self,
        envelope: CommandEnvelope,
        now: Timestamp,
    ) -> Result<Received, StoreError> {
        let max = self.inner.config.max_inbox_commands;
        let key = envelope.id.as_str().as_bytes().to_vec();
        if let Some(existing) = self.inner.inbox.get(&key)? {
            return Ok(Received::Duplicate(decode(&key, &existing)?.status));
        }
        if self.inner.inbox_len.load(Ordering::Relaxed) >= max {
            return Err(StoreError::InboxFull { max });
        }
        let entry = InboxEntry {
            envelope,
            status: CommandStatus::Pending,
            received_at: now,
        };
        let value = serde_json::to_vec(&entry).map_err(|e| encode("command", e))?;
        match self
            .inner
            .inbox
            .compare_and_swap(&key, None::<&[u8]>, Some(value))?
        {
            Ok(()) => {
                self.inner.inbox_len.fetch_add(1, Ordering::Relaxed);
                Ok(Received::New)
            }
            Err(cas) => {
                let current = cas
                    .current
                    .ok_or_else(|| corrupt("command", &key, "vanished"))?;
                Ok(Received::Duplicate(decode(&key, &current)?.status))
            }
        }
    }

    /// The stored command with `id`.
    pub fn command(&self, id: &CommandId) -> Result<Option<InboxEntry>, StoreError> {
        let key = id.as_str().as_bytes();
        self.inner
            .inbox
            .get(key)?
            .map(|v| decode(key, &v))
            .transpose()
    }

    /// Moves a command on (not flushed: the result record that follows is).
    pub fn set_command_status(
        &self,
        id: &CommandId,
        status: CommandStatus,
    ) -> Result<(), StoreError> {
        let key = id.as_str().as_bytes();
        let Some(mut entry) = self.command(id)? else {
            return Ok(());
        };
        entry.status = status;
        let value = serde_json::to_vec(&entry).map_err(|e| encode("command", e))?;
        self.inner.inbox.insert(key, value)?;
        Ok(())
    }

    /// Up to `max` commands not yet done (pending or delivered), e.g. to resume after a
    /// restart or to expire them.
    pub fn open_commands(&self, max: usize) -> Result<Vec<InboxEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.inbox.iter() {
            let (k, v) = item?;
            let entry = decode(&k, &v)?;
            if entry.status != CommandStatus::Done {
                out.push(entry);
                if out.len() == max {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Removes done commands whose expiry is more than `keep_after_expiry` before `now`
    /// (a redelivery after that is expired anyway). Returns how many were removed.
    pub fn purge_commands(
        &self,
        now: Timestamp,
        keep_after_expiry: SignedDuration,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for item in self.inner.inbox.iter() {
            let (k, v) = item?;
            let entry = decode(&k, &v)?;
            if entry.status == CommandStatus::Done
                && entry.envelope.expires_at + keep_after_expiry < now
                && self.inner.inbox.remove(&k)?.is_some()
            {
                self.inner.inbox_len.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Commands held.
    pub fn inbox_len(&self) -> usize {
        self.inner.inbox_len.load(Ordering::Relaxed)
    }
}

fn decode(key: &[u8], v: &[u8]) -> Result<InboxEntry, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt("command", key, e))
}

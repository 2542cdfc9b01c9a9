//! Records serialised before they reach the single writer.
//!
//! Encoding JSON is the costliest part of an append that does not need the sequence number,
//! so it happens in the caller's task (in parallel, outside the writer's lock): the record is
//! encoded without its sequence, and the writer only splices `{"seq":N,` in front. The
//! stored bytes are exactly `serde_json::to_vec(&Record)`'s (tested), the bytes that go up.

use jiff::Timestamp;
use serde::Serialize;
use voltline_protocol::sync::RecordBody;

use super::codec::{serial_key, SerialKind};
use super::error::{encode, StoreError};
use super::outbox::NewRecord;

/// A record encoded except for its sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecord {
    pub(super) billing: bool,
    pub(super) serial: Option<[u8; 17]>,
    /// The JSON object of the record without `seq`, from its first field on (the opening
    /// brace removed).
    tail: Vec<u8>,
}

#[derive(Serialize)]
struct WithoutSeq<'a> {
    at: &'a Timestamp,
    #[serde(flatten)]
    body: &'a RecordBody,
}

impl PreparedRecord {
    /// Encodes `record`.
    pub fn new(record: &NewRecord) -> Result<PreparedRecord, StoreError> {
        let json = serde_json::to_vec(&WithoutSeq {
            at: &record.at,
            body: &record.body,
        })
        .map_err(|e| encode("record", e))?;
        debug_assert!(json.first() == Some(&b'{') && json.len() > 2);
        let serial = match &record.body {
            RecordBody::Transaction(t) => {
                Some(serial_key(SerialKind::Transaction, &t.record.serial))
            }
            RecordBody::Discharge(d) => Some(serial_key(SerialKind::Discharge, &d.record.serial)),
            _ => None,
        };
        Ok(PreparedRecord {
            billing: record.body.is_billing_critical(),
            serial,
            tail: json[1..].to_vec(),
        })
    }

    /// The stored value: the record's JSON with `seq` first.
    pub(super) fn value(&self, seq: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.tail.len() + 28);
        v.extend_from_slice(b"{\"seq\":");
        v.extend_from_slice(seq.to_string().as_bytes());
        v.push(b',');
        v.extend_from_slice(&self.tail);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests_outbox::{meter, tx};
    use voltline_protocol::sync::Record;

    #[test]
    fn spliced_value_is_exactly_the_record_json() {
        for r in [meter(1, 5, 10), tx(3)] {
            let expected = serde_json::to_vec(&Record {
                seq: 12_345,
                at: r.at,
                body: r.body.clone(),
            })
            .unwrap();
            assert_eq!(PreparedRecord::new(&r).unwrap().value(12_345), expected);
        }
    }
}

//! Records serialised before they reach the single writer.
//!
//! Encoding JSON is the costliest part of an append that does not need the sequence number,
//! so it happens in the caller's task (in parallel, outside the writer's lock): the record is
//! encoded without its sequence, and the writer only splices `{"seq":N,` in front, straight
//! into the block it is building (no copy per record). The stored bytes are exactly
//! `serde_json::to_vec(&Record)`'s (tested), the bytes that go up. The record is serialised
//! once, into a buffer sized for a typical record, and kept as it came out of serde.

use voltline_protocol::sync::RecordBody;

use super::codec::{serial_key, SerialKind};
use super::error::{encode, StoreError};
use super::outbox::NewRecord;

/// A record encoded except for its sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecord {
    pub(super) billing: bool,
    pub(super) serial: Option<[u8; 17]>,
    /// The JSON object of the record without `seq` (opening brace included; it is skipped
    /// when the sequence is spliced in).
    json: Vec<u8>,
}

impl PreparedRecord {
    /// Encodes `record`.
    pub fn new(record: &NewRecord) -> Result<PreparedRecord, StoreError> {
        // `{"at":…,` then the body's own object without its brace: the same bytes serde
        // writes for the flattened body, without serde's slower flatten path.
        let mut json = Vec::with_capacity(TYPICAL_RECORD_BYTES);
        json.extend_from_slice(b"{\"at\":");
        serde_json::to_writer(&mut json, &record.at).map_err(|e| encode("record", e))?;
        let body_at = json.len();
        serde_json::to_writer(&mut json, &record.body).map_err(|e| encode("record", e))?;
        if json.get(body_at) != Some(&b'{') || json.len() < body_at + 2 {
            return Err(encode("record", "the body is not a JSON object"));
        }
        json[body_at] = b',';
        if json[body_at + 1] == b'}' {
            // A body with no fields at all (not one of ours: each has its tag).
            json.remove(body_at);
        }
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
            json,
        })
    }

    /// The length of the stored JSON with sequence `seq`.
    pub(super) fn len_with(&self, seq: u64) -> usize {
        SEQ_PREFIX.len() + decimal_digits(seq) + 1 + self.json.len() - 1
    }

    /// Appends the stored JSON of the record with sequence `seq` to `out`.
    pub(super) fn write_with(&self, seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(SEQ_PREFIX);
        let mut digits = [0u8; 20];
        let mut n = seq;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[i..]);
        out.push(b',');
        out.extend_from_slice(&self.json[1..]);
    }

    /// The stored value: the record's JSON with `seq` first.
    #[cfg(test)]
    pub(super) fn value(&self, seq: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len_with(seq));
        self.write_with(seq, &mut v);
        v
    }
}

/// A meter reading is about 270 bytes of JSON; most records fit without a reallocation.
const TYPICAL_RECORD_BYTES: usize = 384;

const SEQ_PREFIX: &[u8] = b"{\"seq\":";

fn decimal_digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests_outbox::{meter, tx};
    use voltline_protocol::sync::Record;

    #[test]
    fn spliced_value_is_exactly_the_record_json() {
        let alarm = NewRecord::new(
            jiff::Timestamp::from_second(1_790_000_000).unwrap(),
            RecordBody::Alarm(voltline_protocol::sync::Alarm {
                severity: voltline_protocol::sync::Severity::Warning,
                code: "quote\"and\\slash".into(),
                message: "ünïcode \n line".into(),
                pile: None,
            }),
        );
        let thinned = NewRecord::new(jiff::Timestamp::UNIX_EPOCH, RecordBody::Thinned);
        for r in [meter(1, 5, 10), tx(3), alarm, thinned] {
            let expected = serde_json::to_vec(&Record {
                seq: 12_345,
                at: r.at,
                body: r.body.clone(),
            })
            .unwrap();
            let p = PreparedRecord::new(&r).unwrap();
            assert_eq!(p.value(12_345), expected);
            assert_eq!(p.len_with(12_345), expected.len());
        }
        for seq in [1u64, 9, 10, 99, 100, 1_000_000, u64::MAX - 1] {
            let r = meter(1, 5, 10);
            let p = PreparedRecord::new(&r).unwrap();
            let expected = serde_json::to_vec(&Record {
                seq,
                at: r.at,
                body: r.body,
            })
            .unwrap();
            assert_eq!(p.value(seq), expected, "seq {seq}");
            assert_eq!(p.len_with(seq), expected.len(), "seq {seq}");
        }
    }
}

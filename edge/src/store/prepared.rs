//! Records serialised before they reach the single writer.
//!
//! Encoding JSON is the costliest part of an append that does not need the sequence number,
//! so it happens in the caller's task (in parallel, outside the writer's lock): the record is
//! encoded without its sequence, and the writer only splices `{"seq":N,` in front, straight
//! into the block it is building (no copy per record). The stored bytes are exactly
//! `serde_json::to_vec(&Record)`'s (tested), the bytes that go up. The record is serialised
//! once, into a buffer sized for a typical record, and kept as it came out of serde.

use voltline_protocol::sync::{MeterReading, RecordBody};

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
        json.extend_from_slice(AT_PREFIX);
        serde_json::to_writer(&mut json, &record.at).map_err(|e| encode("record", e))?;
        let body_at = json.len();
        if let RecordBody::MeterReading(m) = &record.body {
            // Nine in ten records: written field by field (see `meter_reading_fields`).
            meter_reading_fields(m, AT_PREFIX.len()..body_at, &record.at, &mut json)?;
        } else {
            serde_json::to_writer(&mut json, &record.body).map_err(|e| encode("record", e))?;
            if json.get(body_at) != Some(&b'{') || json.len() < body_at + 2 {
                return Err(encode("record", "the body is not a JSON object"));
            }
            json[body_at] = b',';
            if json[body_at + 1] == b'}' {
                // A body with no fields at all (not one of ours: each has its tag).
                json.remove(body_at);
            }
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

/// Appends `,"type":"meter_reading",…}` for `m`: the bytes serde writes for the flattened
/// body, with the keys written out here and each value still serialised by serde (so a
/// value's format cannot drift from the contract's). `at_json` is where `out` already holds
/// the record's own `at`, encoded: a reading measured when it was recorded reuses it. The destructuring is
/// exhaustive, so a new field does not compile until it is written here too; a test holds
/// the output to `serde_json` for every kind of value.
fn meter_reading_fields(
    m: &MeterReading,
    at_json: std::ops::Range<usize>,
    at: &jiff::Timestamp,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let MeterReading {
        pile,
        connector,
        serial,
        measured_at,
        import_register,
        export_register,
        power,
        soc,
        amount,
    } = m;
    let value = |out: &mut Vec<u8>, v: &dyn erased::Value| v.write(out);
    out.extend_from_slice(b",\"type\":\"meter_reading\",\"pile\":");
    value(out, pile)?;
    out.extend_from_slice(b",\"connector\":");
    value(out, connector)?;
    out.extend_from_slice(b",\"serial\":");
    value(out, serial)?;
    out.extend_from_slice(b",\"measured_at\":");
    if measured_at == at {
        out.extend_from_within(at_json);
    } else {
        value(out, measured_at)?;
    }
    out.extend_from_slice(b",\"import_register\":");
    value(out, import_register)?;
    out.extend_from_slice(b",\"export_register\":");
    value(out, export_register)?;
    out.extend_from_slice(b",\"power\":");
    value(out, power)?;
    out.extend_from_slice(b",\"soc\":");
    value(out, soc)?;
    out.extend_from_slice(b",\"amount\":");
    value(out, amount)?;
    out.push(b'}');
    Ok(())
}

/// One JSON value written by serde, behind a trait object so the field writer above stays
/// one small function.
mod erased {
    use super::{encode, StoreError};

    pub(super) trait Value {
        fn write(&self, out: &mut Vec<u8>) -> Result<(), StoreError>;
    }

    impl<T: serde::Serialize> Value for T {
        fn write(&self, out: &mut Vec<u8>) -> Result<(), StoreError> {
            serde_json::to_writer(out, self).map_err(|e| encode("record", e))
        }
    }
}

/// A meter reading is about 270 bytes of JSON; most records fit without a reallocation.
const TYPICAL_RECORD_BYTES: usize = 384;

const SEQ_PREFIX: &[u8] = b"{\"seq\":";
const AT_PREFIX: &[u8] = b"{\"at\":";

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

    proptest::proptest! {
        /// The field-by-field meter reading writer against serde, over every kind of value:
        /// absent and present options, negative power, fractional seconds, `measured_at`
        /// equal to or apart from `at`.
        #[test]
        fn meter_reading_json_is_exactly_serdes(
            pile_no in 0u64..99_999_999_999_999,
            connector in 1u8..=99,
            counter in 0u16..10_000,
            at_s in 0i64..4_000_000_000,
            at_ns in proptest::prop_oneof![proptest::strategy::Just(0i32), 0i32..1_000_000_000],
            apart in proptest::option::of(-100_000i64..100_000),
            import_mwh in 0i64..i64::MAX / 4,
            export_mwh in proptest::option::of(0i64..i64::MAX / 4),
            watts in proptest::option::of(-1_000_000i64..1_000_000),
            soc in proptest::option::of(0u8..=100),
            cents in proptest::option::of(-1_000_000_000i64..1_000_000_000),
            seq in 1u64..u64::MAX,
        ) {
            use voltline_protocol::domain::{ConnectorNo, Energy, Money, PileCode, Power, Soc};
            let at = jiff::Timestamp::new(at_s, at_ns).unwrap();
            let measured_at = match apart {
                Some(s) => at + jiff::SignedDuration::from_millis(s),
                None => at,
            };
            let pile = PileCode::from_number(pile_no).unwrap();
            let time = voltline_protocol::domain::SerialTime {
                year: 26, month: 12, day: 1, hour: 23, minute: 59, second: 58,
            };
            let serial = voltline_protocol::TransactionSerial::compose(
                pile,
                ConnectorNo::new(connector).unwrap(),
                time,
                counter,
            )
            .unwrap();
            let body = RecordBody::MeterReading(MeterReading {
                pile,
                connector: ConnectorNo::new(connector).unwrap(),
                serial,
                measured_at,
                import_register: Energy::from_mwh(import_mwh),
                export_register: export_mwh.map(Energy::from_mwh),
                power: watts.map(Power::from_watts),
                soc: soc.and_then(Soc::new),
                amount: cents.map(Money::from_cents),
            });
            let r = NewRecord::new(at, body);
            let expected = serde_json::to_vec(&Record { seq, at, body: r.body.clone() }).unwrap();
            let p = PreparedRecord::new(&r).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8(p.value(seq)).unwrap(),
                String::from_utf8(expected.clone()).unwrap()
            );
            proptest::prop_assert_eq!(p.len_with(seq), expected.len());
        }
    }

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

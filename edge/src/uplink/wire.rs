//! The uplink's payloads, pure: record batches built from the stored JSON without decoding
//! it, the site status (online message and last will), and the checks on what the cloud
//! sends (an ack, a command, a config notice must be version 1 and name this site).
//!
//! What this module must never do: re-encode a stored record (the bytes that go up are the
//! bytes the store flushed), or accept a cloud message for another site.

use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;
use jiff::Timestamp;
use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{
    Ack, CommandEnvelope, ConfigNotice, Record, RecordBody, SiteStatus, V1,
};
use voltline_protocol::topics::{self, SiteChannel};

/// A batch payload ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// `RecordBatch` JSON.
    pub json: Vec<u8>,
    pub first: u64,
    pub last: u64,
    pub records: usize,
}

/// Builds `{"v":1,"site":..,"records":[..]}` from stored records (sequence, stored JSON; an
/// empty value is a thinned record and goes up as `Thinned` dated `now`), taking records in
/// order while the payload stays within `max_bytes` — always at least one, so a single large
/// record still moves. `None` when `records` is empty.
pub fn encode_batch(
    site: &SiteId,
    records: &[(u64, impl AsRef<[u8]>)],
    now: Timestamp,
    max_bytes: usize,
) -> Option<EncodedBatch> {
    let mut b = BatchBuilder::new(site, max_bytes, now);
    for (seq, value) in records {
        if !b.push(*seq, value.as_ref()) {
            break;
        }
    }
    b.finish()
}

/// A batch payload built record by record (so a large replay batch is read from the store
/// in chunks instead of all at once).
#[derive(Debug)]
pub struct BatchBuilder {
    json: Vec<u8>,
    max_bytes: usize,
    now: Timestamp,
    first: u64,
    last: u64,
    records: usize,
}

impl BatchBuilder {
    /// An empty batch for `site` of at most `max_bytes` (or one record).
    pub fn new(site: &SiteId, max_bytes: usize, now: Timestamp) -> BatchBuilder {
        let site_json = serde_json::to_string(site.as_str()).unwrap_or_default();
        let mut json = Vec::with_capacity(max_bytes.min(1 << 20));
        json.extend_from_slice(b"{\"v\":1,\"site\":");
        json.extend_from_slice(site_json.as_bytes());
        json.extend_from_slice(b",\"records\":[");
        BatchBuilder {
            json,
            max_bytes,
            now,
            first: 0,
            last: 0,
            records: 0,
        }
    }

    /// Adds the stored record `seq` unless the batch is full; returns whether it was added.
    pub fn push(&mut self, seq: u64, value: &[u8]) -> bool {
        let thinned;
        let body: &[u8] = if value.is_empty() {
            // A unit variant and a timestamp always encode.
            thinned = serde_json::to_vec(&Record {
                seq,
                at: self.now,
                body: RecordBody::Thinned,
            })
            .unwrap_or_default();
            &thinned
        } else {
            value
        };
        let extra = body.len() + usize::from(self.records > 0) + 2;
        if self.records > 0 && self.json.len() + extra > self.max_bytes {
            return false;
        }
        if self.records > 0 {
            self.json.push(b',');
        } else {
            self.first = seq;
        }
        self.json.extend_from_slice(body);
        self.last = seq;
        self.records += 1;
        true
    }

    /// Records added so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The finished payload, or `None` when empty.
    pub fn finish(mut self) -> Option<EncodedBatch> {
        if self.records == 0 {
            return None;
        }
        self.json.extend_from_slice(b"]}");
        Some(EncodedBatch {
            json: self.json,
            first: self.first,
            last: self.last,
            records: self.records,
        })
    }
}

/// Gzip of `body` (fast level: the replay is bound by the link and the cloud, not the ratio).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// The retained status: online (with the time) or, as the last will, offline (no time: it is
/// written in advance).
pub fn status(site: &SiteId, online: bool, at: Option<Timestamp>) -> Vec<u8> {
    serde_json::to_vec(&SiteStatus {
        v: V1,
        site: site.clone(),
        online,
        at,
    })
    .unwrap_or_default()
}

/// What a message from the cloud is.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The cloud's cumulative ack.
    Ack(u64),
    /// A config notice naming a version.
    ConfigNotice(u64),
    /// A command delivery (parsed and checked by [`parse_command`]).
    Command,
    /// Refused: wrong site, wrong version, malformed, or an unexpected topic.
    Rejected(String),
}

/// Sorts out a message that arrived on `topic`.
pub fn classify(site: &SiteId, topic: &str, payload: &[u8]) -> Inbound {
    let Some((topic_site, channel)) = topics::parse_site_topic(topic) else {
        return Inbound::Rejected(format!("topic {topic:?} is not a site topic"));
    };
    if &topic_site != site {
        return Inbound::Rejected(format!("topic {topic:?} is for another site"));
    }
    match channel {
        SiteChannel::Acks => match serde_json::from_slice::<Ack>(payload) {
            Ok(a) if &a.site == site => Inbound::Ack(a.up_to_seq),
            Ok(a) => Inbound::Rejected(format!("ack for site {} on our topic", a.site)),
            Err(e) => Inbound::Rejected(format!("malformed ack: {e}")),
        },
        SiteChannel::Config => match serde_json::from_slice::<ConfigNotice>(payload) {
            Ok(n) if &n.site == site => Inbound::ConfigNotice(n.config_version),
            Ok(n) => Inbound::Rejected(format!("config notice for site {} on our topic", n.site)),
            Err(e) => Inbound::Rejected(format!("malformed config notice: {e}")),
        },
        SiteChannel::Commands => Inbound::Command,
        SiteChannel::Records | SiteChannel::Status => {
            Inbound::Rejected(format!("the edge does not subscribe to {topic:?}"))
        }
    }
}

/// Parses and checks a command delivery.
pub fn parse_command(site: &SiteId, payload: &[u8]) -> Result<CommandEnvelope, String> {
    let env: CommandEnvelope =
        serde_json::from_slice(payload).map_err(|e| format!("malformed command: {e}"))?;
    if &env.site != site {
        return Err(format!(
            "command {} is for site {}, not this site",
            env.id, env.site
        ));
    }
    Ok(env)
}

/// Parses the cloud's answer to a replayed batch.
pub fn parse_ack(site: &SiteId, body: &[u8]) -> Result<u64, String> {
    let ack: Ack = serde_json::from_slice(body).map_err(|e| format!("malformed ack: {e}"))?;
    if &ack.site != site {
        return Err(format!("ack for site {}, not this site", ack.site));
    }
    Ok(ack.up_to_seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltline_protocol::sync::{Alarm, RecordBatch, Severity};

    fn site() -> SiteId {
        SiteId::new("site-1").unwrap()
    }

    fn t() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn alarm(seq: u64) -> Vec<u8> {
        serde_json::to_vec(&Record {
            seq,
            at: t(),
            body: RecordBody::Alarm(Alarm {
                severity: Severity::Info,
                code: "x".into(),
                message: "m".repeat(50),
                pile: None,
            }),
        })
        .unwrap()
    }

    #[test]
    fn batch_from_stored_json_is_a_valid_record_batch() {
        let stored: Vec<(u64, Vec<u8>)> = vec![(4, alarm(4)), (5, Vec::new()), (6, alarm(6))];
        let b = encode_batch(&site(), &stored, t(), 1 << 20).unwrap();
        assert_eq!((b.first, b.last, b.records), (4, 6, 3));
        let batch: RecordBatch = serde_json::from_slice(&b.json).unwrap();
        batch.validate(&site(), 10).unwrap();
        assert_eq!(batch.records[1].body, RecordBody::Thinned);
        assert_eq!(serde_json::to_vec(&batch.records[0]).unwrap(), alarm(4));
        assert!(encode_batch(&site(), &Vec::<(u64, Vec<u8>)>::new(), t(), 10).is_none());
    }

    #[test]
    fn batch_is_cut_at_the_byte_bound_but_carries_at_least_one_record() {
        let stored: Vec<(u64, Vec<u8>)> = (1..=10).map(|s| (s, alarm(s))).collect();
        let one = alarm(1).len();
        let b = encode_batch(&site(), &stored, t(), 40 + 3 * (one + 1)).unwrap();
        assert_eq!(b.records, 3, "{}", b.json.len());
        assert!(b.json.len() <= 40 + 3 * (one + 1));
        let tiny = encode_batch(&site(), &stored, t(), 10).unwrap();
        assert_eq!((tiny.first, tiny.last), (1, 1));
        let batch: RecordBatch = serde_json::from_slice(&tiny.json).unwrap();
        assert_eq!(batch.records.len(), 1);
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = alarm(1).repeat(100);
        let z = gzip(&body);
        assert!(z.len() < body.len() / 5);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn cloud_messages_must_name_this_site_and_version() {
        let s = site();
        let acks = topics::site(&s, SiteChannel::Acks);
        assert_eq!(
            classify(&s, &acks, br#"{"v":1,"site":"site-1","up_to_seq":9}"#),
            Inbound::Ack(9)
        );
        for bad in [
            &br#"{"v":2,"site":"site-1","up_to_seq":9}"#[..],
            br#"{"v":1,"site":"site-2","up_to_seq":9}"#,
            b"garbage",
        ] {
            assert!(matches!(classify(&s, &acks, bad), Inbound::Rejected(_)));
        }
        let other = topics::site(&SiteId::new("site-2").unwrap(), SiteChannel::Acks);
        assert!(matches!(
            classify(&s, &other, br#"{"v":1,"site":"site-2","up_to_seq":9}"#),
            Inbound::Rejected(_)
        ));
        let notice = topics::site(&s, SiteChannel::Config);
        assert_eq!(
            classify(
                &s,
                &notice,
                br#"{"v":1,"site":"site-1","config_version":4}"#
            ),
            Inbound::ConfigNotice(4)
        );
        assert_eq!(
            classify(&s, &topics::site(&s, SiteChannel::Commands), b"x"),
            Inbound::Command
        );
        assert!(parse_command(&s, b"{}").is_err());
        assert_eq!(
            parse_ack(&s, br#"{"v":1,"site":"site-1","up_to_seq":3}"#),
            Ok(3)
        );
        assert!(parse_ack(&s, br#"{"v":1,"site":"site-9","up_to_seq":3}"#).is_err());
    }

    #[test]
    fn status_payloads() {
        let online: SiteStatus = serde_json::from_slice(&status(&site(), true, Some(t()))).unwrap();
        assert!(online.online && online.at == Some(t()));
        let will: SiteStatus = serde_json::from_slice(&status(&site(), false, None)).unwrap();
        assert!(!will.online && will.at.is_none());
    }
}

//! The little of MQTT 3.1.1 the front end must understand itself, pure and bounded: framing
//! (fixed header), the topic of a PUBLISH, the charger's ACL, and the few replies the front
//! end sends on its own (CONNACK refusals, PUBACK for a dropped publish, SUBACK failure).
//!
//! CONNECT and SUBSCRIBE (rare packets) are parsed with `rumqttc`'s `mqttbytes` v4 reader;
//! PUBLISH (the hot path, one per frame) is looked at here without allocating. Nothing here
//! touches a socket.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet, Subscribe};
use voltline_protocol::domain::PileCode;
use voltline_protocol::topics;

/// MQTT control packet types (the high nibble of the first byte).
pub mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
}

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
pub mod connack {
    pub const ACCEPTED: u8 = 0;
    pub const UNACCEPTABLE_PROTOCOL: u8 = 1;
    pub const IDENTIFIER_REJECTED: u8 = 2;
    pub const SERVER_UNAVAILABLE: u8 = 3;
    pub const BAD_USERNAME_OR_PASSWORD: u8 = 4;
    pub const NOT_AUTHORIZED: u8 = 5;
}

/// A packet that cannot be framed or read; the label is the metric reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("malformed MQTT remaining length")]
    BadLength,
    #[error("MQTT packet larger than the port's limit")]
    TooLarge,
    #[error("malformed MQTT packet")]
    Malformed,
}

impl PacketError {
    /// The `decode_errors` label.
    pub fn label(self) -> &'static str {
        match self {
            PacketError::BadLength => "mqtt_bad_length",
            PacketError::TooLarge => "mqtt_too_large",
            PacketError::Malformed => "mqtt_malformed",
        }
    }
}

/// The fixed header of one complete packet at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub byte1: u8,
    /// Bytes of the fixed header (2..=5).
    pub header_len: usize,
    /// Bytes of the whole packet.
    pub total_len: usize,
}

impl Header {
    /// The packet type.
    pub fn kind(&self) -> u8 {
        self.byte1 >> 4
    }
}

/// Frames the packet at the front of `buf`: `Ok(None)` until it is complete. A remaining
/// length above `max_remaining` is refused before any of it is buffered.
pub fn frame(buf: &[u8], max_remaining: usize) -> Result<Option<Header>, PacketError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let mut remaining = 0usize;
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else {
            return Ok(None);
        };
        remaining |= ((b & 0x7F) as usize) << (7 * (at - 1));
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at == 5 {
            return Err(PacketError::BadLength);
        }
    }
    if remaining > max_remaining {
        return Err(PacketError::TooLarge);
    }
    let total = at + remaining;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Header {
        byte1: buf[0],
        header_len: at,
        total_len: total,
    }))
}

/// A PUBLISH's topic, QoS and packet id, read without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishInfo<'a> {
    pub topic: &'a [u8],
    pub qos: u8,
    pub pkid: u16,
}

/// Reads a complete PUBLISH packet's topic, QoS and packet id.
pub fn publish_info<'a>(raw: &'a [u8], h: &Header) -> Result<PublishInfo<'a>, PacketError> {
    let qos = (h.byte1 >> 1) & 0x03;
    if qos == 3 {
        return Err(PacketError::Malformed);
    }
    let body = raw
        .get(h.header_len..h.total_len)
        .ok_or(PacketError::Malformed)?;
    let len = u16::from_be_bytes([
        *body.first().ok_or(PacketError::Malformed)?,
        *body.get(1).ok_or(PacketError::Malformed)?,
    ]) as usize;
    let topic = body.get(2..2 + len).ok_or(PacketError::Malformed)?;
    let pkid = if qos > 0 {
        let p = body
            .get(2 + len..2 + len + 2)
            .ok_or(PacketError::Malformed)?;
        u16::from_be_bytes([p[0], p[1]])
    } else {
        0
    };
    Ok(PublishInfo { topic, qos, pkid })
}

/// Parses a complete CONNECT packet.
pub fn read_connect(raw: &[u8], max: usize) -> Result<Connect, PacketError> {
    match Packet::read(&mut BytesMut::from(raw), max) {
        Ok(Packet::Connect(c)) => Ok(c),
        _ => Err(PacketError::Malformed),
    }
}

/// Parses a complete SUBSCRIBE packet.
pub fn read_subscribe(raw: &[u8], max: usize) -> Result<Subscribe, PacketError> {
    match Packet::read(&mut BytesMut::from(raw), max) {
        Ok(Packet::Subscribe(s)) => Ok(s),
        _ => Err(PacketError::Malformed),
    }
}

/// What one charger may do: publish to its own up topic, subscribe to its own down topic,
/// exactly (no wildcard, no other pile, no `$SYS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    up: String,
    down: String,
}

impl Acl {
    /// The ACL of `pile`.
    pub fn of(pile: &PileCode) -> Acl {
        Acl {
            up: topics::pile_up(pile),
            down: topics::pile_down(pile),
        }
    }

    /// May the charger publish to `topic`?
    pub fn may_publish(&self, topic: &[u8]) -> bool {
        topic == self.up.as_bytes()
    }

    /// May the charger subscribe to `filter`?
    pub fn may_subscribe(&self, filter: &str) -> bool {
        filter == self.down
    }

    /// Every filter of `sub` allowed?
    pub fn may_subscribe_all(&self, sub: &Subscribe) -> bool {
        !sub.filters.is_empty() && sub.filters.iter().all(|f| self.may_subscribe(&f.path))
    }
}

/// The client id a charger may use: its pile code, or `pile-{pile code}` (the simulator's
/// form). Anything else would let one charger take over another's broker session.
pub fn client_id_allowed(client_id: &str, username: &str) -> bool {
    client_id == username || client_id.strip_prefix("pile-") == Some(username)
}

/// A CONNACK with `code`.
pub fn connack_packet(code: u8) -> [u8; 4] {
    [kind::CONNACK << 4, 2, 0, code]
}

/// A PUBACK for `pkid`.
pub fn puback_packet(pkid: u16) -> [u8; 4] {
    let p = pkid.to_be_bytes();
    [kind::PUBACK << 4, 2, p[0], p[1]]
}

/// A SUBACK refusing each of `filters` filters (return code 0x80).
pub fn suback_failure_packet(pkid: u16, filters: usize) -> Vec<u8> {
    let remaining = 2 + filters;
    let mut out = Vec::with_capacity(remaining + 5);
    out.push(kind::SUBACK << 4);
    let mut r = remaining;
    loop {
        let mut b = (r & 0x7F) as u8;
        r >>= 7;
        if r > 0 {
            b |= 0x80;
        }
        out.push(b);
        if r == 0 {
            break;
        }
    }
    out.extend_from_slice(&pkid.to_be_bytes());
    out.extend(std::iter::repeat_n(0x80, filters));
    out
}

/// Is the CONNACK in `raw` an acceptance?
pub fn connack_accepted(raw: &[u8], h: &Header) -> bool {
    h.kind() == kind::CONNACK && raw.get(h.header_len + 1) == Some(&connack::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::Publish;
    use rumqttc::mqttbytes::QoS;

    fn encoded(p: Packet) -> BytesMut {
        let mut b = BytesMut::new();
        p.write(&mut b, 1 << 20).unwrap();
        b
    }

    #[test]
    fn framing_waits_for_whole_packets_and_bounds_the_length() {
        let mut p = Publish::new(
            "voltline/v1/piles/32010600019236/up",
            QoS::AtLeastOnce,
            vec![7; 300],
        );
        p.pkid = 9;
        let b = encoded(Packet::Publish(p));
        for cut in 0..b.len() {
            assert_eq!(frame(&b[..cut], 4096), Ok(None), "cut at {cut}");
        }
        let h = frame(&b, 4096).unwrap().unwrap();
        assert_eq!(
            (h.kind(), h.header_len, h.total_len),
            (kind::PUBLISH, 3, b.len())
        );
        assert_eq!(frame(&b, 100), Err(PacketError::TooLarge));
        assert_eq!(
            frame(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 1 << 30),
            Err(PacketError::BadLength)
        );
        let info = publish_info(&b, &h).unwrap();
        assert_eq!(info.topic, b"voltline/v1/piles/32010600019236/up");
        assert_eq!((info.qos, info.pkid), (1, 9));
    }

    #[test]
    fn truncated_publish_bodies_are_malformed_not_panics() {
        for raw in [
            &[0x32u8, 1, 0][..],
            &[0x32, 3, 0, 5, b'a'],
            &[0x32, 3, 0, 1, b'a'],
            &[0x36, 2, 0, 0],
        ] {
            let h = frame(raw, 4096).unwrap().unwrap();
            assert_eq!(
                publish_info(raw, &h),
                Err(PacketError::Malformed),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn acl_allows_only_the_chargers_own_topics() {
        let me: PileCode = "32010600019236".parse().unwrap();
        let other: PileCode = "32010600019237".parse().unwrap();
        let acl = Acl::of(&me);
        assert!(acl.may_publish(topics::pile_up(&me).as_bytes()));
        assert!(!acl.may_publish(topics::pile_up(&other).as_bytes()));
        assert!(!acl.may_publish(topics::pile_down(&me).as_bytes()));
        assert!(acl.may_subscribe(&topics::pile_down(&me)));
        for f in [
            "#",
            "+/+/+/+/+",
            "voltline/v1/piles/+/down",
            "voltline/v1/piles/+/up",
            "$SYS/#",
        ] {
            assert!(!acl.may_subscribe(f), "{f}");
        }
        assert!(!acl.may_subscribe(&topics::pile_down(&other)));
        let mixed = Subscribe::new_many([
            rumqttc::mqttbytes::v4::SubscribeFilter::new(topics::pile_down(&me), QoS::AtLeastOnce),
            rumqttc::mqttbytes::v4::SubscribeFilter::new("#".into(), QoS::AtLeastOnce),
        ]);
        assert!(!acl.may_subscribe_all(&mixed));
    }

    #[test]
    fn client_ids_must_name_the_logged_in_pile() {
        assert!(client_id_allowed("32010600019236", "32010600019236"));
        assert!(client_id_allowed("pile-32010600019236", "32010600019236"));
        assert!(!client_id_allowed("32010600019237", "32010600019236"));
        assert!(!client_id_allowed("", "32010600019236"));
    }

    #[test]
    fn replies_are_well_formed() {
        let suback = suback_failure_packet(0x0102, 3);
        match Packet::read(&mut BytesMut::from(&suback[..]), 1024).unwrap() {
            Packet::SubAck(s) => {
                assert_eq!(s.pkid, 0x0102);
                assert_eq!(s.return_codes.len(), 3);
                assert!(s
                    .return_codes
                    .iter()
                    .all(|c| *c == rumqttc::mqttbytes::v4::SubscribeReasonCode::Failure));
            }
            p => panic!("not a SUBACK: {p:?}"),
        }
        match Packet::read(&mut BytesMut::from(&puback_packet(77)[..]), 1024).unwrap() {
            Packet::PubAck(a) => assert_eq!(a.pkid, 77),
            p => panic!("not a PUBACK: {p:?}"),
        }
        let c = connack_packet(connack::NOT_AUTHORIZED);
        let h = frame(&c, 16).unwrap().unwrap();
        assert!(!connack_accepted(&c, &h));
        let ok = connack_packet(connack::ACCEPTED);
        assert!(connack_accepted(&ok, &frame(&ok, 16).unwrap().unwrap()));
    }
}

//! The frame envelope: `0x68 | length | sequence (u16 LE) | encryption | type | body | CRC`.
//!
//! Decoding is split as in a classic protocol service: [`check`] looks at the front of a
//! buffer and says how long the frame is (or that more bytes are needed, or that the front is
//! not a frame); [`decode`] turns exactly one complete frame into a typed [`Frame`]. The
//! streaming codec builds on both. Encoding writes the same layout back, byte for byte.

use bytes::{BufMut, BytesMut};

use crate::error::{FrameError, HEADER_LEN};
use crate::message::Message;
use crate::wire::crc;
use crate::wire::write::{BodyWriter, EncodeError};

/// The start byte of every frame.
pub const START: u8 = 0x68;
/// The smallest length field: sequence (2) + encryption flag (1) + type (1), empty body.
pub const MIN_LENGTH_FIELD: u8 = 4;
/// The largest length field the protocol allows.
pub const MAX_LENGTH_FIELD: u8 = 200;
/// The largest body: the largest length field less sequence, flag and type.
pub const MAX_BODY_LEN: usize = MAX_LENGTH_FIELD as usize - 4;
/// The largest whole frame: start + length + 200 + checksum.
pub const MAX_FRAME_LEN: usize = 2 + MAX_LENGTH_FIELD as usize + 2;

/// The encryption flag of a frame.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// 0x00: the body is plain.
    #[default]
    Plain,
    /// 0x01: the body is 3DES-encrypted.
    TripleDes,
}

impl Encryption {
    /// The wire byte.
    pub fn to_wire(self) -> u8 {
        match self {
            Encryption::Plain => 0x00,
            Encryption::TripleDes => 0x01,
        }
    }
}

/// One decoded frame: envelope fields and the typed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The sequence number; a reply carries its request's.
    pub sequence: u16,
    /// Always `Plain` for a decoded frame (encrypted frames are refused, see [`FrameError::Encrypted`]).
    pub encryption: Encryption,
    /// The message.
    pub message: Message,
}

impl Frame {
    /// A plain frame.
    pub fn new(sequence: u16, message: impl Into<Message>) -> Frame {
        Frame {
            sequence,
            encryption: Encryption::Plain,
            message: message.into(),
        }
    }

    /// The frame type byte.
    pub fn frame_type(&self) -> u8 {
        self.message.frame_type()
    }

    /// Encodes the frame and appends it to `out`. Nothing is appended on error.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if self.encryption != Encryption::Plain {
            return Err(EncodeError::Field {
                frame: self.message.name(),
                field: "encryption",
                reason: "3DES bodies are not supported; send plain frames".into(),
            });
        }
        let start = out.len();
        out.reserve(MAX_FRAME_LEN);
        out.put_u8(START);
        out.put_u8(0); // length, patched below
        out.put_u16_le(self.sequence);
        out.put_u8(self.encryption.to_wire());
        out.put_u8(self.message.frame_type());
        let body_start = out.len();
        let written = self
            .message
            .write_body(&mut BodyWriter::new(out, self.message.name()));
        if let Err(e) = written {
            out.truncate(start);
            return Err(e);
        }
        let body_len = out.len() - body_start;
        if body_len > MAX_BODY_LEN {
            out.truncate(start);
            return Err(EncodeError::TooLong {
                frame: self.message.name(),
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        out[start + 1] = (body_len + 4) as u8;
        let crc = crc::checksum(&out[start + 2..]);
        out.put_u16_le(crc);
        Ok(())
    }

    /// Encodes the frame into a new buffer.
    pub fn to_bytes(&self) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::with_capacity(MAX_FRAME_LEN);
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A whole frame of this many bytes (checksum not yet verified).
    Complete(usize),
    /// The start of a frame that needs this many bytes in total.
    Incomplete(usize),
}

/// Looks at the front of `buf`: is there a whole frame, the start of one, or not a frame?
#[inline]
pub fn check(buf: &[u8]) -> Result<Check, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(Check::Incomplete(2));
    };
    if first != START {
        return Err(FrameError::BadStart { found: first });
    }
    let Some(&declared) = buf.get(1) else {
        return Ok(Check::Incomplete(2));
    };
    if !(MIN_LENGTH_FIELD..=MAX_LENGTH_FIELD).contains(&declared) {
        return Err(FrameError::BadLength { declared });
    }
    let need = 2 + declared as usize + 2;
    if buf.len() < need {
        Ok(Check::Incomplete(need))
    } else {
        Ok(Check::Complete(need))
    }
}

/// Decodes exactly one frame: `bytes` must hold the whole frame and nothing else.
#[inline]
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let len = match check(bytes)? {
        Check::Complete(len) => len,
        Check::Incomplete(need) => {
            return Err(FrameError::Truncated {
                have: bytes.len(),
                need,
            })
        }
    };
    let frame_type = bytes[5];
    if bytes.len() > len {
        return Err(FrameError::ExtraBytes {
            frame_type,
            offset: len,
            extra: bytes.len() - len,
        });
    }
    decode_checked_len(&bytes[..len])
}

/// Decodes a frame whose length [`check`] has confirmed.
#[inline]
pub(crate) fn decode_checked_len(frame: &[u8]) -> Result<Frame, FrameError> {
    debug_assert!(frame.len() >= HEADER_LEN + 2 && frame.len() <= MAX_FRAME_LEN);
    let crc_at = frame.len() - 2;
    let frame_type = frame[5];
    let found = u16::from_le_bytes([frame[crc_at], frame[crc_at + 1]]);
    let computed = crc::checksum(&frame[2..crc_at]);
    if found != computed {
        return Err(FrameError::Checksum {
            frame_type,
            offset: crc_at,
            found,
            computed,
        });
    }
    let sequence = u16::from_le_bytes([frame[2], frame[3]]);
    match frame[4] {
        0x00 => {}
        0x01 => return Err(FrameError::Encrypted { frame_type }),
        flag => return Err(FrameError::BadEncryptionFlag { frame_type, flag }),
    }
    let body = &frame[HEADER_LEN..crc_at];
    let message = Message::decode_body(frame_type, body)?;
    Ok(Frame {
        sequence,
        encryption: Encryption::Plain,
        message,
    })
}

/// Computes and writes the checksum of a frame in place (for tests and tools that build
/// frames by hand, e.g. from the reference's samples, whose checksums are placeholders).
pub fn fix_checksum(frame: &mut [u8]) {
    assert!(
        frame.len() >= HEADER_LEN + 2,
        "a frame has at least 8 bytes"
    );
    let crc_at = frame.len() - 2;
    let crc = crc::checksum(&frame[2..crc_at]);
    frame[crc_at..].copy_from_slice(&crc.to_le_bytes());
}

/// The JSON form of a frame: `{"type": "0x13", "name": "real_time_data", "sequence": 794,
/// "encryption": "plain", "body": {...}}`. `type` is informative on input: when present it
/// must agree with `name`.
#[derive(serde::Serialize, serde::Deserialize)]
struct FrameJson {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    type_code: Option<String>,
    sequence: u16,
    #[serde(default)]
    encryption: Encryption,
    #[serde(flatten)]
    message: Message,
}

impl serde::Serialize for Frame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FrameJson {
            type_code: Some(format!("0x{:02X}", self.frame_type())),
            sequence: self.sequence,
            encryption: self.encryption,
            message: self.message.clone(),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let j = FrameJson::deserialize(d)?;
        if let Some(t) = &j.type_code {
            let code = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    D::Error::custom(format!("type '{t}' is not a hex byte like 0x13"))
                })?;
            if code != j.message.frame_type() {
                return Err(D::Error::custom(format!(
                    "type {t} does not match name '{}' (type 0x{:02X}); drop one or make them agree",
                    j.message.name(),
                    j.message.frame_type()
                )));
            }
        }
        Ok(Frame {
            sequence: j.sequence,
            encryption: j.encryption,
            message: j.message,
        })
    }
}

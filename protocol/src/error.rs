//! `FrameError`: every way a frame can be wrong. Each variant names the frame type (when it is
//! known) and the byte offset within the frame (0 is the start byte), so a log line or a
//! `voltline frame decode` run points at the exact byte.

use crate::message::type_name;
use crate::wire::parse::{FieldError, FieldErrorKind};

/// Bytes before the body: start, length, sequence (2), encryption flag, type.
pub const HEADER_LEN: usize = 6;

fn name_of(t: &u8) -> &'static str {
    type_name(*t).unwrap_or("unknown")
}

/// A frame that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not 0x68.
    #[error("byte 0: expected start byte 0x68, found 0x{found:02X}")]
    BadStart { found: u8 },
    /// The length field is outside 4..=200.
    #[error("byte 1: length field {declared} is outside 4..=200")]
    BadLength { declared: u8 },
    /// Bytes were skipped to find the next start byte.
    #[error("skipped {skipped} bytes of garbage before the next start byte 0x68")]
    Garbage { skipped: usize },
    /// The input ends before the frame does.
    #[error("frame ends after {have} bytes but its length field needs {need}")]
    Truncated { have: usize, need: usize },
    /// More bytes than the length field covers were given as one frame.
    #[error(
        "frame 0x{frame_type:02X} ({}) has {extra} bytes after its checksum at byte {offset}",
        name_of(frame_type)
    )]
    ExtraBytes {
        frame_type: u8,
        offset: usize,
        extra: usize,
    },
    /// The checksum does not match.
    #[error("frame 0x{frame_type:02X} ({}) at byte {offset}: checksum 0x{found:04X} but CRC-16/MODBUS of the frame is 0x{computed:04X}", name_of(frame_type))]
    Checksum {
        frame_type: u8,
        offset: usize,
        found: u16,
        computed: u16,
    },
    /// The encryption flag is neither 0x00 nor 0x01.
    #[error("frame 0x{frame_type:02X} ({}) at byte 4: encryption flag 0x{flag:02X} is neither 0x00 (plain) nor 0x01 (3DES)", name_of(frame_type))]
    BadEncryptionFlag { frame_type: u8, flag: u8 },
    /// A 3DES-encrypted body and no key configured.
    #[error("frame 0x{frame_type:02X} ({}) at byte 4: body is 3DES-encrypted and no key is configured; configure the pile's 3DES key or set the pile to plain frames", name_of(frame_type))]
    Encrypted { frame_type: u8 },
    /// A frame type this protocol does not define.
    #[error("frame 0x{frame_type:02X} at byte 5: unknown frame type")]
    UnknownType { frame_type: u8 },
    /// The body ends inside a field.
    #[error("frame 0x{frame_type:02X} ({}) at byte {offset}: body ends inside field '{field}' ({needed} more bytes needed)", name_of(frame_type))]
    TruncatedBody {
        frame_type: u8,
        field: &'static str,
        offset: usize,
        needed: usize,
    },
    /// A BCD field with a nibble above 9.
    #[error("frame 0x{frame_type:02X} ({}) at byte {offset}: field '{field}' byte 0x{byte:02X} is not packed BCD", name_of(frame_type))]
    BadBcd {
        frame_type: u8,
        field: &'static str,
        offset: usize,
        byte: u8,
    },
    /// A value outside its field's range or table.
    #[error("frame 0x{frame_type:02X} ({}) at byte {offset}: field '{field}' is {value}, allowed {allowed}", name_of(frame_type))]
    OutOfRange {
        frame_type: u8,
        field: &'static str,
        offset: usize,
        value: i64,
        allowed: &'static str,
    },
    /// A structural rule of the body is broken.
    #[error(
        "frame 0x{frame_type:02X} ({}) at byte {offset}: field '{field}': {reason}",
        name_of(frame_type)
    )]
    Invalid {
        frame_type: u8,
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// The body is longer than the message it carries.
    #[error(
        "frame 0x{frame_type:02X} ({}) at byte {offset}: {extra} bytes after the last field",
        name_of(frame_type)
    )]
    TrailingBody {
        frame_type: u8,
        offset: usize,
        extra: usize,
    },
}

/// A short, stable label per error kind, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameErrorKind {
    BadStart,
    BadLength,
    Garbage,
    Truncated,
    ExtraBytes,
    Checksum,
    BadEncryptionFlag,
    Encrypted,
    UnknownType,
    TruncatedBody,
    BadBcd,
    OutOfRange,
    Invalid,
    TrailingBody,
}

impl FrameErrorKind {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameErrorKind::BadStart => "bad_start",
            FrameErrorKind::BadLength => "bad_length",
            FrameErrorKind::Garbage => "garbage",
            FrameErrorKind::Truncated => "truncated",
            FrameErrorKind::ExtraBytes => "extra_bytes",
            FrameErrorKind::Checksum => "checksum",
            FrameErrorKind::BadEncryptionFlag => "bad_encryption_flag",
            FrameErrorKind::Encrypted => "encrypted",
            FrameErrorKind::UnknownType => "unknown_type",
            FrameErrorKind::TruncatedBody => "truncated_body",
            FrameErrorKind::BadBcd => "bad_bcd",
            FrameErrorKind::OutOfRange => "out_of_range",
            FrameErrorKind::Invalid => "invalid",
            FrameErrorKind::TrailingBody => "trailing_body",
        }
    }
}

impl FrameError {
    /// The kind, for metrics.
    pub fn kind(&self) -> FrameErrorKind {
        match self {
            FrameError::BadStart { .. } => FrameErrorKind::BadStart,
            FrameError::BadLength { .. } => FrameErrorKind::BadLength,
            FrameError::Garbage { .. } => FrameErrorKind::Garbage,
            FrameError::Truncated { .. } => FrameErrorKind::Truncated,
            FrameError::ExtraBytes { .. } => FrameErrorKind::ExtraBytes,
            FrameError::Checksum { .. } => FrameErrorKind::Checksum,
            FrameError::BadEncryptionFlag { .. } => FrameErrorKind::BadEncryptionFlag,
            FrameError::Encrypted { .. } => FrameErrorKind::Encrypted,
            FrameError::UnknownType { .. } => FrameErrorKind::UnknownType,
            FrameError::TruncatedBody { .. } => FrameErrorKind::TruncatedBody,
            FrameError::BadBcd { .. } => FrameErrorKind::BadBcd,
            FrameError::OutOfRange { .. } => FrameErrorKind::OutOfRange,
            FrameError::Invalid { .. } => FrameErrorKind::Invalid,
            FrameError::TrailingBody { .. } => FrameErrorKind::TrailingBody,
        }
    }

    /// The frame type, when the error happened after it was read.
    pub fn frame_type(&self) -> Option<u8> {
        match self {
            FrameError::BadStart { .. }
            | FrameError::BadLength { .. }
            | FrameError::Garbage { .. }
            | FrameError::Truncated { .. } => None,
            FrameError::ExtraBytes { frame_type, .. }
            | FrameError::Checksum { frame_type, .. }
            | FrameError::BadEncryptionFlag { frame_type, .. }
            | FrameError::Encrypted { frame_type }
            | FrameError::UnknownType { frame_type }
            | FrameError::TruncatedBody { frame_type, .. }
            | FrameError::BadBcd { frame_type, .. }
            | FrameError::OutOfRange { frame_type, .. }
            | FrameError::Invalid { frame_type, .. }
            | FrameError::TrailingBody { frame_type, .. } => Some(*frame_type),
        }
    }

    /// The byte offset within the frame where the fault is.
    pub fn offset(&self) -> usize {
        match self {
            FrameError::BadStart { .. } | FrameError::Garbage { .. } => 0,
            FrameError::BadLength { .. } => 1,
            FrameError::Truncated { have, .. } => *have,
            FrameError::BadEncryptionFlag { .. } | FrameError::Encrypted { .. } => 4,
            FrameError::UnknownType { .. } => 5,
            FrameError::ExtraBytes { offset, .. }
            | FrameError::Checksum { offset, .. }
            | FrameError::TruncatedBody { offset, .. }
            | FrameError::BadBcd { offset, .. }
            | FrameError::OutOfRange { offset, .. }
            | FrameError::Invalid { offset, .. }
            | FrameError::TrailingBody { offset, .. } => *offset,
        }
    }

    /// Converts a body field error into a frame error with an absolute offset.
    pub(crate) fn from_field(frame_type: u8, body: &[u8], e: FieldError<'_>) -> FrameError {
        let offset = HEADER_LEN + (body.len() - e.rest.len()) + e.fault_at;
        let field = e.field;
        match e.kind {
            FieldErrorKind::Truncated { needed } => FrameError::TruncatedBody {
                frame_type,
                field,
                offset,
                needed,
            },
            FieldErrorKind::BadBcd { byte } => FrameError::BadBcd {
                frame_type,
                field,
                offset,
                byte,
            },
            FieldErrorKind::OutOfRange { value, allowed } => FrameError::OutOfRange {
                frame_type,
                field,
                offset,
                value,
                allowed,
            },
            FieldErrorKind::Invalid { reason } => FrameError::Invalid {
                frame_type,
                field,
                offset,
                reason,
            },
        }
    }
}

//! Key layouts and the outbox meta value.

use voltline_protocol::domain::{ConnectorNo, PileCode};
use voltline_protocol::TransactionSerial;

use super::error::{corrupt, StoreError};
use super::Ledger;

/// The outbox's reserved meta key. Every block key (the block's first sequence) is 8 bytes
/// below `u64::MAX`, so the meta key (the `u64::MAX` prefix plus a suffix) sorts after all
/// of them.
pub(super) const META_KEY: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffmeta";

/// The exclusive upper end of the block keys.
pub(super) const SEQ_END: [u8; 8] = u64::MAX.to_be_bytes();

/// The outbox key of the block starting at `seq`.
pub(super) fn seq_key(seq: u64) -> [u8; 8] {
    debug_assert!(seq < u64::MAX);
    seq.to_be_bytes()
}

/// The sequence of an outbox key.
pub(super) fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = key
        .try_into()
        .map_err(|_| corrupt("outbox key", key, "not 8 bytes"))?;
    Ok(u64::from_be_bytes(b))
}

/// The bytes a block with a value of `value_len` bytes occupies in the outbox ledger (its
/// key and its value).
pub(super) fn block_bytes(value_len: usize) -> u64 {
    8 + value_len as u64
}

pub(super) fn encode_meta(l: &Ledger) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&l.head.to_be_bytes());
    out[8..16].copy_from_slice(&l.acked.to_be_bytes());
    out[16..].copy_from_slice(&l.bytes.to_be_bytes());
    out
}

pub(super) fn decode_meta(v: &[u8]) -> Result<Ledger, StoreError> {
    if v.len() != 24 {
        return Err(corrupt("outbox meta", META_KEY, "not 24 bytes"));
    }
    let at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().unwrap_or([0; 8]));
    Ok(Ledger {
        head: at(0),
        acked: at(8),
        bytes: at(16),
    })
}

/// Which kind of record a serial belongs to (a charge and a discharge may share a serial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SerialKind {
    Transaction = b'T' as isize,
    Discharge = b'D' as isize,
}

pub(super) fn serial_key(kind: SerialKind, serial: &TransactionSerial) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = kind as u8;
    k[1..].copy_from_slice(serial.as_bytes());
    k
}

pub(super) fn connector_key(pile: &PileCode, connector: ConnectorNo) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..7].copy_from_slice(pile.as_bytes());
    k[7] = connector.get();
    k
}

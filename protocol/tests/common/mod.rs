//! Helpers for tests built from the reference's sample frames.
#![allow(dead_code)]

use voltline_protocol::frame::{self, fix_checksum};
use voltline_protocol::Frame;

/// Bytes of a sample frame written as hex (spaces allowed). The reference's sample checksums
/// are placeholders that match no CRC, so the last two bytes are recomputed here.
pub fn sample(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.split_whitespace().collect();
    let mut bytes = hex::decode(clean).expect("sample is hex");
    fix_checksum(&mut bytes);
    bytes
}

/// Decodes a sample, checks that encoding gives back the same bytes, and that the JSON form
/// round-trips too; returns the frame.
pub fn round_trip(bytes: &[u8]) -> Frame {
    let f = frame::decode(bytes).unwrap_or_else(|e| panic!("sample does not decode: {e}"));
    let again = f.to_bytes().expect("decoded frame encodes");
    assert_eq!(
        hex::encode_upper(&again),
        hex::encode_upper(bytes),
        "encode(decode(x)) != x"
    );
    let json = serde_json::to_value(&f.message).expect("message serialises");
    let back: voltline_protocol::Message = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("JSON does not deserialise: {e}\n{json:#}"));
    assert_eq!(back, f.message, "JSON round trip changed the message");
    f
}

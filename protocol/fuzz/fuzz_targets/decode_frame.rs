//! Arbitrary bytes into the frame decoder and the streaming codec: nothing may panic, the
//! codec must never buffer more than a frame beyond its input, and any frame that decodes must
//! re-encode to exactly the bytes it came from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use voltline_protocol::codec::FrameCodec;
use voltline_protocol::frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = frame::decode(data) {
        let again = f.to_bytes().expect("a decoded frame encodes");
        assert_eq!(&again[..], data, "encode(decode(x)) != x");
    }

    // The first byte picks a chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            if let Ok(f) = item {
                f.to_bytes().expect("a decoded frame encodes");
            }
        }
        assert!(buf.len() <= frame::MAX_FRAME_LEN + chunk);
    }
    while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
});

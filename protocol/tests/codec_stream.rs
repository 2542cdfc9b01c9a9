//! The streaming codec: any chunking, many frames per read, resync after garbage, bounded
//! buffering, and a real `FramedRead` over an in-memory duplex pipe.

mod common;

use bytes::BytesMut;
use futures::StreamExt;
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, FramedRead};
use voltline_protocol::codec::FrameCodec;
use voltline_protocol::frame::MAX_FRAME_LEN;
use voltline_protocol::message::register::{GunHealth, Heartbeat, Login};
use voltline_protocol::{Frame, FrameError, Message};

fn heartbeat(seq: u16, connector: u8) -> Frame {
    Frame::new(
        seq,
        Heartbeat {
            pile_code: "32010200000001".parse().unwrap(),
            connector: voltline_protocol::domain::ConnectorNo::new(connector).unwrap(),
            health: GunHealth::Normal,
        },
    )
}

fn login_bytes() -> Vec<u8> {
    common::sample(
        "68 22 0000 00 01 55031412782305 00 02 0F 56342E312E353000 01 01010101010101010101 04 0000",
    )
}

fn stream_of(n: usize) -> (Vec<Frame>, Vec<u8>) {
    let mut frames = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..n {
        let f = if i % 3 == 0 {
            voltline_protocol::frame::decode(&login_bytes()).unwrap()
        } else {
            heartbeat(i as u16, (i % 2 + 1) as u8)
        };
        bytes.extend_from_slice(&f.to_bytes().unwrap());
        frames.push(f);
    }
    (frames, bytes)
}

/// Feeds `bytes` to a codec in the given chunk sizes; returns everything it yielded.
fn feed(bytes: &[u8], chunks: &[usize]) -> (Vec<Result<Frame, FrameError>>, FrameCodec) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = chunks[i % chunks.len()].max(1).min(bytes.len() - at);
        buf.extend_from_slice(&bytes[at..at + n]);
        at += n;
        i += 1;
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            out.push(item);
        }
        assert!(
            buf.capacity() <= 8 * 1024 + MAX_FRAME_LEN,
            "buffer grew unbounded"
        );
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        out.push(item);
    }
    (out, codec)
}

#[test]
fn one_byte_at_a_time() {
    let (frames, bytes) = stream_of(10);
    let (out, codec) = feed(&bytes, &[1]);
    let got: Vec<Frame> = out.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, frames);
    assert_eq!(codec.stats().frames, 10);
    assert_eq!(codec.stats().skipped_bytes, 0);
}

#[test]
fn many_frames_in_one_read() {
    let (frames, bytes) = stream_of(50);
    let (out, _) = feed(&bytes, &[bytes.len()]);
    let got: Vec<Frame> = out.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, frames);
}

#[test]
fn garbage_between_frames_is_skipped_counted_and_reported_once_per_run() {
    let (frames, _) = stream_of(3);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF, 0x00]);
    bytes.extend_from_slice(&frames[0].to_bytes().unwrap());
    bytes.extend_from_slice(&[0x01, 0x02, 0x03]);
    bytes.extend_from_slice(&frames[1].to_bytes().unwrap());
    bytes.extend_from_slice(&frames[2].to_bytes().unwrap());
    let (out, codec) = feed(&bytes, &[7]);
    let oks: Vec<&Frame> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(oks, frames.iter().collect::<Vec<_>>());
    let garbage: Vec<usize> = out
        .iter()
        .filter_map(|r| match r {
            Err(FrameError::Garbage { skipped }) => Some(*skipped),
            _ => None,
        })
        .collect();
    assert_eq!(garbage, vec![5, 3]);
    assert_eq!(codec.stats().skipped_bytes, 8);
    assert_eq!(codec.stats().errors, 2);
}

#[test]
fn a_fake_start_byte_with_a_long_length_does_not_hold_back_a_real_frame() {
    // 0x68 0xC8 claims a 204-byte frame; the real heartbeat right behind it must still come
    // out without waiting for 204 bytes.
    let hb = heartbeat(9, 1);
    let mut bytes = vec![0x68, 0xC8, 0x00];
    bytes.extend_from_slice(&hb.to_bytes().unwrap());
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while let Some(item) = codec.decode(&mut buf).unwrap() {
        out.push(item);
    }
    assert!(matches!(out[0], Err(FrameError::Garbage { skipped: 3 })));
    assert_eq!(out[1].as_ref().unwrap(), &hb);
}

#[test]
fn a_corrupted_frame_is_reported_and_the_next_one_still_decodes() {
    let a = heartbeat(1, 1).to_bytes().unwrap();
    let b = heartbeat(2, 2).to_bytes().unwrap();
    let mut bytes = a.to_vec();
    bytes[8] ^= 0x01; // flip a body bit: checksum fails
    bytes.extend_from_slice(&b);
    let (out, _) = feed(&bytes, &[3, 5]);
    assert!(matches!(
        out[0],
        Err(FrameError::Checksum {
            frame_type: 0x03,
            ..
        })
    ));
    assert_eq!(out.last().unwrap().as_ref().unwrap(), &heartbeat(2, 2));
}

#[test]
fn a_valid_frame_with_a_bad_field_is_consumed_whole() {
    let mut bad = heartbeat(1, 1).to_bytes().unwrap().to_vec();
    bad[14] = 0x07; // health byte: neither 0 nor 1
    voltline_protocol::frame::fix_checksum(&mut bad);
    bad.extend_from_slice(&heartbeat(2, 1).to_bytes().unwrap());
    let (out, codec) = feed(&bad, &[bad.len()]);
    assert_eq!(out.len(), 2);
    assert!(matches!(
        out[0],
        Err(FrameError::OutOfRange {
            field: "health",
            offset: 14,
            value: 7,
            ..
        })
    ));
    assert!(out[1].is_ok());
    assert_eq!(codec.stats().skipped_bytes, 0);
}

#[test]
fn truncated_stream_end_is_reported() {
    let bytes = heartbeat(1, 1).to_bytes().unwrap();
    let (out, _) = feed(&bytes[..bytes.len() - 3], &[4]);
    assert_eq!(
        out,
        vec![Err(FrameError::Truncated {
            have: bytes.len() - 3,
            need: bytes.len()
        })]
    );
}

#[tokio::test]
async fn framed_read_over_a_pipe() {
    let (frames, bytes) = stream_of(20);
    let (mut tx, rx) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        for chunk in bytes.chunks(13) {
            tx.write_all(chunk).await.unwrap();
        }
    });
    let got: Vec<Frame> = FramedRead::new(rx, FrameCodec::new())
        .map(|item| item.unwrap().unwrap())
        .collect()
        .await;
    writer.await.unwrap();
    assert_eq!(got, frames);
    assert!(matches!(got[0].message, Message::Login(Login { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever the chunking, the same frames come out in the same order.
    #[test]
    fn any_chunking_yields_the_same_frames(chunks in proptest::collection::vec(1usize..64, 1..20)) {
        let (frames, bytes) = stream_of(12);
        let (out, _) = feed(&bytes, &chunks);
        let got: Vec<Frame> = out.into_iter().map(|r| r.unwrap()).collect();
        prop_assert_eq!(got, frames);
    }

    /// Garbage anywhere between frames never loses a frame whose bytes are intact.
    #[test]
    fn garbage_runs_never_lose_intact_frames(
        runs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 6),
        chunks in proptest::collection::vec(1usize..50, 1..8),
    ) {
        let frames: Vec<Frame> = (0..5).map(|i| heartbeat(i, 1)).collect();
        let mut bytes = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            bytes.extend_from_slice(&runs[i]);
            bytes.extend_from_slice(&f.to_bytes().unwrap());
        }
        bytes.extend_from_slice(&runs[5]);
        let (out, _) = feed(&bytes, &chunks);
        let got: Vec<Frame> = out.into_iter().filter_map(|r| r.ok()).collect();
        // Garbage could by chance contain a valid frame; every real frame must be there in order.
        let mut it = got.iter();
        for f in &frames {
            prop_assert!(it.any(|g| g == f), "lost frame {:?}", f);
        }
    }

    /// Arbitrary bytes never panic the codec and never make it buffer more than a frame.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                   chunks in proptest::collection::vec(1usize..300, 1..8)) {
        let _ = feed(&bytes, &chunks);
    }
}

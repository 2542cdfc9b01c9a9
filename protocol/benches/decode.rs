//! Decode throughput on a realistic frame mix, beside a bare CRC pass over the same bytes,
//! measured in the same run.
//!
//! Mix (what a busy site's link carries): 90 % real-time data (0x13) from charging
//! connectors, 5 % heartbeats (0x03), 5 % transaction records (0x3B). Three passes over the
//! same frames, each repeated and timed, best and median reported:
//!
//! - `crc`: for each frame, CRC-16/MODBUS over sequence..body compared with its trailer — the
//!   floor any decoder must pay;
//! - `decode`: `frame::decode` on each frame slice (length check, CRC, every field validated
//!   into typed values);
//! - `codec`: the streaming `FrameCodec` over the whole byte stream (framing from scratch,
//!   then the same full decode) — what a connection actually runs.
//!
//! Goals (issue #2): full decode ≤ 2× the CRC pass, and ≥ 5 million frames/s on one core.
//! Run: `cargo bench -p voltline-protocol --bench decode` (single-threaded).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use voltline_protocol::codec::FrameCodec;
use voltline_protocol::frame::{self, fix_checksum};
use voltline_protocol::wire::crc;

const FRAMES: usize = 200_000;
const ROUNDS: usize = 9;

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.split_whitespace().collect();
    ::hex::decode(clean).expect("hex")
}

fn finish(mut f: Vec<u8>) -> Vec<u8> {
    f.extend_from_slice(&[0, 0]);
    fix_checksum(&mut f);
    f
}

/// A charging connector's real-time data frame with values that vary with `i`.
fn real_time(i: usize) -> Vec<u8> {
    let mut f = hex("68 40");
    f.extend_from_slice(&(i as u16).to_le_bytes());
    f.extend_from_slice(&hex("00 13"));
    f.extend_from_slice(&hex("55031412782305 01 200316171447 0001")); // serial
    f.extend_from_slice(&hex("55031412782305 01")); // pile, connector
    f.extend_from_slice(&hex("03 00 01")); // charging, not returned, plugged
    f.extend_from_slice(&(3_800 + (i % 400) as u16).to_le_bytes()); // 380.0.. V
    f.extend_from_slice(&(1_200 + (i % 900) as u16).to_le_bytes()); // 120.0.. A
    f.push(75); // 25 °C
    f.extend_from_slice(&[0; 8]); // gun wire code
    f.push((i % 100) as u8); // SoC
    f.push(80); // 30 °C
    f.extend_from_slice(&((i % 600) as u16).to_le_bytes()); // minutes charged
    f.extend_from_slice(&((i % 300) as u16).to_le_bytes()); // minutes left
    let e = (i as u32 % 1_000_000) * 7;
    f.extend_from_slice(&e.to_le_bytes()); // energy
    f.extend_from_slice(&e.to_le_bytes()); // loss-adjusted energy
    f.extend_from_slice(&(e * 13 / 10).to_le_bytes()); // amount
    f.extend_from_slice(&[0, 0]); // faults
    assert_eq!(f.len(), 2 + 0x40);
    finish(f)
}

fn heartbeat(i: usize) -> Vec<u8> {
    let mut f = hex("68 0D");
    f.extend_from_slice(&(i as u16).to_le_bytes());
    f.extend_from_slice(&hex("00 03 55031412782305 01 00"));
    finish(f)
}

/// The reference's 0x3B sample with non-zero energies and amounts.
fn transaction(i: usize) -> Vec<u8> {
    let mut f = hex("68 A2");
    f.extend_from_slice(&(i as u16).to_le_bytes());
    f.extend_from_slice(&hex(
        "00 3B 55031412782305012018061910262392 55031412782305 01 98B70E11100314 98B70E11100314",
    ));
    let kwh = 12_345u32 + i as u32 % 1000;
    for _ in 0..4 {
        f.extend_from_slice(&hex("D0FB0100"));
        f.extend_from_slice(&kwh.to_le_bytes());
        f.extend_from_slice(&kwh.to_le_bytes());
        f.extend_from_slice(&(kwh * 13).to_le_bytes());
    }
    f.extend_from_slice(&hex("1027000000"));
    f.extend_from_slice(&(10_000u64 + 4 * kwh as u64).to_le_bytes()[..5]);
    f.extend_from_slice(&(4 * kwh).to_le_bytes());
    f.extend_from_slice(&(4 * kwh).to_le_bytes());
    f.extend_from_slice(&(4 * kwh * 13).to_le_bytes());
    f.extend_from_slice(b"LSVAU2180N2183294");
    f.extend_from_slice(&hex("01 98B70E11100314 40 00000000D14B0A54"));
    assert_eq!(f.len(), 2 + 0xA2);
    finish(f)
}

struct Sample {
    name: &'static str,
    best: Duration,
    median: Duration,
}

fn time<F: FnMut() -> usize>(name: &'static str, expect: usize, mut pass: F) -> Sample {
    let mut runs = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let n = pass();
        runs.push(t.elapsed());
        assert_eq!(n, expect, "{name}: every frame must pass");
    }
    runs.sort();
    Sample {
        name,
        best: runs[0],
        median: runs[ROUNDS / 2],
    }
}

fn main() {
    let mut slices: Vec<Vec<u8>> = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        slices.push(match i % 20 {
            0 => transaction(i),
            1 => heartbeat(i),
            _ => real_time(i),
        });
    }
    for s in slices.iter().take(40) {
        frame::decode(s).unwrap_or_else(|e| panic!("bench frame does not decode: {e}"));
    }
    let stream: Vec<u8> = slices.concat();
    let bytes = stream.len();

    let crc_pass = time("crc", FRAMES, || {
        let mut ok = 0;
        for f in &slices {
            let n = f.len();
            let found = u16::from_le_bytes([f[n - 2], f[n - 1]]);
            ok += (crc::checksum(black_box(&f[2..n - 2])) == found) as usize;
        }
        ok
    });
    let decode_pass = time("decode", FRAMES, || {
        let mut ok = 0;
        for f in &slices {
            ok += black_box(frame::decode(black_box(f))).is_ok() as usize;
        }
        ok
    });
    let mut buffers: Vec<BytesMut> = (0..ROUNDS).map(|_| BytesMut::from(&stream[..])).collect();
    let codec_pass = time("codec", FRAMES, || {
        let mut buf = buffers.pop().expect("one buffer per round");
        let mut codec = FrameCodec::new();
        let mut ok = 0;
        while let Some(item) = codec.decode(&mut buf).expect("in-memory decode") {
            ok += black_box(item).is_ok() as usize;
        }
        ok
    });

    println!(
        "voltline-protocol decode: {FRAMES} frames, {bytes} bytes ({:.1} B/frame); mix 90 % 0x13 real-time data, 5 % 0x03 heartbeat, 5 % 0x3B transaction record; best and median of {ROUNDS} rounds, one core",
        bytes as f64 / FRAMES as f64
    );
    let report = |s: &Sample| {
        let secs = s.best.as_secs_f64();
        println!(
            "  {:<7} {:>9.1} MB/s  {:>12.0} frames/s  (best {:>7.2} ms, median {:>7.2} ms)  ratio to crc: {:.2}x",
            s.name,
            bytes as f64 / secs / 1e6,
            FRAMES as f64 / secs,
            s.best.as_secs_f64() * 1e3,
            s.median.as_secs_f64() * 1e3,
            s.best.as_secs_f64() / crc_pass.best.as_secs_f64(),
        );
    };
    report(&crc_pass);
    report(&decode_pass);
    report(&codec_pass);

    let ratio = codec_pass.best.as_secs_f64() / crc_pass.best.as_secs_f64();
    let fps = FRAMES as f64 / codec_pass.best.as_secs_f64();
    println!(
        "goal: full decode (codec) <= 2.0x the CRC pass: {} ({ratio:.2}x)",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
    println!(
        "goal: >= 5,000,000 frames/s on one core: {} ({fps:.0} frames/s)",
        if fps >= 5e6 { "met" } else { "NOT met" }
    );
}

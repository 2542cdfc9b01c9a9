//! Fault injection: what a test (or a scenario, at random) can do to a charger.
//!
//! Pile-level faults are carried out by the state machine ([`ChargerFault`]); wire-level ones
//! by the transport ([`WireShaper`]), because they are about bytes, not protocol.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::charger::ChargerFault;
use crate::rng::SplitMix64;

/// A fault to inject into one charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Something the pile itself does wrong (clock, meter, reboot, connector fault).
    Pile(ChargerFault),
    /// The connection drops now; the pile reconnects with backoff and resends what is
    /// unconfirmed.
    DropConnection,
    /// This many random bytes go on the wire before the next frame (never the start byte
    /// 0x68, so the receiver resynchronises on the next real frame).
    Garbage { bytes: u16 },
    /// The next `frames` frames are each sent twice.
    DuplicateNext { frames: u16 },
    /// The next `frames` frames are each held back and sent after the frame that follows.
    ReorderNext { frames: u16 },
    /// Power is cut for `off_s` simulated seconds: everything not in flash is lost; when
    /// power returns the pile bills interrupted sessions and resends unconfirmed records.
    PowerLoss { off_s: u32 },
}

impl From<ChargerFault> for Fault {
    fn from(f: ChargerFault) -> Fault {
        Fault::Pile(f)
    }
}

/// Most garbage bytes in one injection.
pub const MAX_GARBAGE_BYTES: u16 = 4_096;

/// The longest a reordered frame is held back waiting for a frame to overtake it.
pub const MAX_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

/// Applies the wire faults to encoded frames on their way out.
#[derive(Debug, Default)]
pub struct WireShaper {
    duplicate_left: u16,
    reorder_left: u16,
    held: Option<(Bytes, tokio::time::Instant)>,
}

impl WireShaper {
    /// Arms duplication of the next `n` frames.
    pub fn duplicate(&mut self, n: u16) {
        self.duplicate_left = self.duplicate_left.saturating_add(n);
    }

    /// Arms reordering of the next `n` frames.
    pub fn reorder(&mut self, n: u16) {
        self.reorder_left = self.reorder_left.saturating_add(n);
    }

    /// What actually goes on the wire for `frame`, in order.
    pub fn shape(&mut self, frame: Bytes) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(3);
        if self.held.is_none() && self.reorder_left > 0 {
            self.reorder_left -= 1;
            self.held = Some((frame, tokio::time::Instant::now() + MAX_HOLD));
            return out;
        }
        out.push(frame.clone());
        if self.duplicate_left > 0 {
            self.duplicate_left -= 1;
            out.push(frame);
        }
        if let Some((h, _)) = self.held.take() {
            out.push(h);
        }
        out
    }

    /// When a held frame must go out even if nothing overtook it.
    pub fn release_at(&self) -> Option<tokio::time::Instant> {
        self.held.as_ref().map(|(_, at)| *at)
    }

    /// The held frame, if its time is up.
    pub fn take_due(&mut self, now: tokio::time::Instant) -> Option<Bytes> {
        if self.held.as_ref().is_some_and(|(_, at)| *at <= now) {
            return self.held.take().map(|(b, _)| b);
        }
        None
    }

    /// Forgets a held frame (the link dropped; the protocol resends what matters).
    pub fn reset(&mut self) {
        self.held = None;
    }
}

/// `n` random bytes without the start byte 0x68.
pub fn garbage(rng: &mut SplitMix64, n: u16) -> Bytes {
    use rand::RngCore;
    let mut b = vec![0u8; n.min(MAX_GARBAGE_BYTES) as usize];
    rng.fill_bytes(&mut b);
    for x in &mut b {
        if *x == voltline_protocol::frame::START {
            *x = 0x00;
        }
    }
    Bytes::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaper_duplicates_and_reorders() {
        let mut s = WireShaper::default();
        s.duplicate(1);
        assert_eq!(s.shape(Bytes::from_static(b"a")).len(), 2);
        assert_eq!(s.shape(Bytes::from_static(b"b")).len(), 1);
        s.reorder(1);
        assert!(s.shape(Bytes::from_static(b"c")).is_empty());
        let out = s.shape(Bytes::from_static(b"d"));
        assert_eq!(
            out,
            vec![Bytes::from_static(b"d"), Bytes::from_static(b"c")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_frame_goes_out_after_max_hold_if_nothing_overtakes_it() {
        let mut s = WireShaper::default();
        s.reorder(1);
        assert!(s.shape(Bytes::from_static(b"login")).is_empty());
        let at = s.release_at().unwrap();
        assert!(s.take_due(tokio::time::Instant::now()).is_none());
        tokio::time::advance(MAX_HOLD).await;
        assert_eq!(s.take_due(at), Some(Bytes::from_static(b"login")));
        assert!(s.release_at().is_none());
    }

    #[test]
    fn garbage_never_holds_a_start_byte() {
        let mut rng = SplitMix64::new(1);
        assert!(!garbage(&mut rng, 4_000).contains(&0x68));
    }
}

//! The uplink's protocol state, without sockets or a clock (time comes in as an argument):
//! which records to send next, which batches are in flight, what the cloud acknowledged.
//! rumqttc's `state.rs` / `eventloop.rs` split is the model: [`Window`] decides, the driver
//! in [`super::driver`] does the I/O.
//!
//! Rules (each has a test below):
//! - only records at or below the durable head are sent (`nothing_above_the_durable_head_is_sent`);
//! - at most `max_inflight` unacknowledged batches of at most `max_records` records
//!   (`window_bounds_the_batches_in_flight`);
//! - a batch shorter than `max_records` waits up to `linger` for company
//!   (`short_batches_linger_full_ones_go_at_once`);
//! - a cumulative ack retires every batch it covers; an older one changes nothing; one above
//!   the durable head is refused (`acks_retire_batches_and_only_move_forward`);
//! - a reconnect, or no ack for `ack_timeout` while batches are in flight, rewinds to the
//!   acknowledged mark: everything unacknowledged is sent again (at-least-once; the cloud
//!   deduplicates by (site, seq)) (`reconnect_and_ack_timeout_resend_from_the_mark`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A batch sent and not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inflight {
    first: u64,
    last: u64,
    sent_at: Instant,
}

/// What to read and send next: records with a sequence above `after`, at most `max_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPlan {
    pub after: u64,
    pub max_records: usize,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The mark moved: trim the outbox up to `up_to`.
    Advanced { up_to: u64 },
    /// At or below the mark already: nothing to do.
    Stale,
    /// Above anything the edge could have sent: refused (the cloud's ledger belongs to
    /// another store, or the message is forged).
    BeyondSent { up_to: u64, durable: u64 },
}

/// Bounds of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    pub max_inflight: usize,
    pub max_records: usize,
    pub linger: Duration,
    pub ack_timeout: Duration,
}

/// The send window.
#[derive(Debug, Clone)]
pub struct Window {
    cfg: WindowConfig,
    /// The cloud's cumulative acknowledgement.
    acked: u64,
    /// The highest sequence handed out for sending on this connection.
    sent: u64,
    /// The durable head: nothing above it is sent.
    durable: u64,
    inflight: VecDeque<Inflight>,
    /// When records first waited for a short batch to fill.
    waiting_since: Option<Instant>,
    /// False while the link is down or the backlog goes over HTTP.
    live: bool,
}

impl Window {
    /// A window resuming after `acked` (the store's mark), with `durable` records on disk.
    pub fn new(cfg: WindowConfig, acked: u64, durable: u64) -> Window {
        assert!(cfg.max_inflight > 0 && cfg.max_records > 0);
        Window {
            cfg,
            acked,
            sent: acked,
            durable: durable.max(acked),
            inflight: VecDeque::with_capacity(cfg.max_inflight),
            waiting_since: None,
            live: false,
        }
    }

    /// The cloud's cumulative acknowledgement.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Durable records not yet acknowledged.
    pub fn backlog(&self) -> u64 {
        self.durable - self.acked
    }

    /// Batches in flight.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Whether live sending is on.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Starts live sending from the acknowledged mark (after a connect or a replay), or stops
    /// it (link down, replay starting).
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
        self.rewind();
    }

    /// Forgets what is in flight; the next send starts after the acknowledged mark.
    pub fn rewind(&mut self) {
        self.inflight.clear();
        self.sent = self.acked;
        self.waiting_since = None;
    }

    /// The durable head moved to `head`.
    pub fn on_durable(&mut self, head: u64) {
        self.durable = self.durable.max(head);
    }

    /// The cloud acknowledged everything up to `up_to`.
    pub fn on_ack(&mut self, up_to: u64) -> AckOutcome {
        if up_to <= self.acked {
            return AckOutcome::Stale;
        }
        if up_to > self.durable {
            return AckOutcome::BeyondSent {
                up_to,
                durable: self.durable,
            };
        }
        self.acked = up_to;
        self.sent = self.sent.max(up_to);
        while self.inflight.front().is_some_and(|b| b.last <= up_to) {
            self.inflight.pop_front();
        }
        AckOutcome::Advanced { up_to }
    }

    /// What to send now, if anything.
    pub fn next_send(&mut self, now: Instant) -> Option<SendPlan> {
        if !self.live || self.inflight.len() >= self.cfg.max_inflight {
            return None;
        }
        let unsent = self.durable.saturating_sub(self.sent);
        if unsent == 0 {
            self.waiting_since = None;
            return None;
        }
        let full = unsent >= self.cfg.max_records as u64;
        let since = *self.waiting_since.get_or_insert(now);
        if !full && now < since + self.cfg.linger {
            return None;
        }
        Some(SendPlan {
            after: self.sent,
            max_records: (unsent.min(self.cfg.max_records as u64)) as usize,
        })
    }

    /// A batch `first..=last` went out.
    pub fn on_sent(&mut self, first: u64, last: u64, now: Instant) {
        debug_assert!(last >= first);
        debug_assert!(
            last <= self.durable,
            "sent {last} above the durable {}",
            self.durable
        );
        self.sent = self.sent.max(last);
        self.inflight.push_back(Inflight {
            first,
            last,
            sent_at: now,
        });
        self.waiting_since = None;
    }

    /// Nothing to send after `after` (the records were acknowledged meanwhile): skip to it.
    pub fn skip_to(&mut self, seq: u64) {
        self.sent = self.sent.max(seq.min(self.durable));
    }

    /// True (and rewound) when the oldest batch in flight waited longer than the ack timeout.
    pub fn check_timeout(&mut self, now: Instant) -> bool {
        let expired = self
            .inflight
            .front()
            .is_some_and(|b| now >= b.sent_at + self.cfg.ack_timeout);
        if expired {
            self.rewind();
        }
        expired
    }

    /// When the driver must look again even if nothing happens: the end of a linger or the
    /// ack timeout of the oldest batch.
    pub fn next_deadline(&self) -> Option<Instant> {
        let linger = self
            .waiting_since
            .filter(|_| self.live && self.inflight.len() < self.cfg.max_inflight)
            .map(|s| s + self.cfg.linger);
        let timeout = self
            .inflight
            .front()
            .map(|b| b.sent_at + self.cfg.ack_timeout);
        match (linger, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first and last sequence of each batch in flight (for logs and tests).
    pub fn inflight_ranges(&self) -> Vec<(u64, u64)> {
        self.inflight.iter().map(|b| (b.first, b.last)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WindowConfig {
        WindowConfig {
            max_inflight: 2,
            max_records: 10,
            linger: Duration::from_millis(5),
            ack_timeout: Duration::from_secs(1),
        }
    }

    fn live(acked: u64, durable: u64) -> Window {
        let mut w = Window::new(cfg(), acked, durable);
        w.set_live(true);
        w
    }

    /// Sends what the window asks for, as if every planned record were read.
    fn send(w: &mut Window, now: Instant) -> Option<(u64, u64)> {
        let p = w.next_send(now)?;
        let (first, last) = (p.after + 1, p.after + p.max_records as u64);
        w.on_sent(first, last, now);
        Some((first, last))
    }

    #[test]
    fn nothing_above_the_durable_head_is_sent() {
        let t = Instant::now();
        let mut w = live(0, 0);
        assert_eq!(w.next_send(t), None);
        w.on_durable(25);
        assert_eq!(send(&mut w, t), Some((1, 10)));
        assert_eq!(send(&mut w, t), Some((11, 20)));
        w.on_ack(20);
        // 5 left: short, so it lingers, and never goes beyond 25.
        let later = t + Duration::from_millis(5);
        assert_eq!(send(&mut w, later), None);
        assert_eq!(
            send(&mut w, later + Duration::from_millis(5)),
            Some((21, 25))
        );
        assert_eq!(send(&mut w, later + Duration::from_secs(1)), None);
    }

    #[test]
    fn window_bounds_the_batches_in_flight() {
        let t = Instant::now();
        let mut w = live(0, 100);
        assert!(send(&mut w, t).is_some());
        assert!(send(&mut w, t).is_some());
        assert_eq!(w.next_send(t), None, "two batches in flight is the bound");
        assert_eq!(w.inflight(), 2);
        assert_eq!(w.on_ack(10), AckOutcome::Advanced { up_to: 10 });
        assert_eq!(send(&mut w, t), Some((21, 30)));
    }

    #[test]
    fn short_batches_linger_full_ones_go_at_once() {
        let t = Instant::now();
        let mut w = live(0, 3);
        assert_eq!(w.next_send(t), None);
        assert_eq!(w.next_deadline(), Some(t + Duration::from_millis(5)));
        w.on_durable(12);
        assert_eq!(send(&mut w, t + Duration::from_millis(1)), Some((1, 10)));
        // Two left, a new linger starts.
        let t2 = t + Duration::from_millis(2);
        assert_eq!(w.next_send(t2), None);
        assert_eq!(send(&mut w, t2 + Duration::from_millis(5)), Some((11, 12)));
    }

    #[test]
    fn acks_retire_batches_and_only_move_forward() {
        let t = Instant::now();
        let mut w = live(0, 30);
        send(&mut w, t);
        send(&mut w, t);
        assert_eq!(w.on_ack(5), AckOutcome::Advanced { up_to: 5 });
        assert_eq!(
            w.inflight_ranges(),
            vec![(1, 10), (11, 20)],
            "partly acked stays"
        );
        assert_eq!(w.on_ack(15), AckOutcome::Advanced { up_to: 15 });
        assert_eq!(w.inflight_ranges(), vec![(11, 20)]);
        assert_eq!(w.on_ack(15), AckOutcome::Stale);
        assert_eq!(w.on_ack(3), AckOutcome::Stale);
        assert_eq!(
            w.on_ack(31),
            AckOutcome::BeyondSent {
                up_to: 31,
                durable: 30
            }
        );
        assert_eq!(w.acked(), 15);
        assert_eq!(w.backlog(), 15);
        // An ack above what was sent (the cloud had them from an earlier connection) skips.
        assert_eq!(w.on_ack(25), AckOutcome::Advanced { up_to: 25 });
        assert_eq!(w.inflight(), 0);
        let t1 = t + Duration::from_secs(1);
        assert_eq!(w.next_send(t1), None, "five records linger");
        assert_eq!(send(&mut w, t1 + Duration::from_millis(5)), Some((26, 30)));
    }

    #[test]
    fn reconnect_and_ack_timeout_resend_from_the_mark() {
        let t = Instant::now();
        let mut w = live(0, 40);
        send(&mut w, t);
        send(&mut w, t);
        w.on_ack(10);
        w.set_live(false);
        assert_eq!(w.next_send(t), None, "nothing goes while down");
        w.set_live(true);
        assert_eq!(send(&mut w, t), Some((11, 20)), "resent from the mark");
        assert!(!w.check_timeout(t + Duration::from_millis(999)));
        assert_eq!(w.next_deadline(), Some(t + Duration::from_secs(1)));
        send(&mut w, t);
        assert!(w.check_timeout(t + Duration::from_secs(1)));
        assert_eq!(w.inflight(), 0);
        assert_eq!(send(&mut w, t + Duration::from_secs(1)), Some((11, 20)));
    }

    #[test]
    fn skip_never_passes_the_durable_head() {
        let mut w = live(0, 5);
        w.skip_to(9);
        assert_eq!(w.next_send(Instant::now() + Duration::from_secs(1)), None);
    }
}

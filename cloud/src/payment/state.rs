//! The capture state machine of one credit payment, pure: a stored state and an event in, the
//! next state and at most one [`Effect`] out. The service applies the effect (a provider call
//! or a ledger set keyed by the order) and stores the state with a version-conditioned update,
//! so two instances racing on one payment cannot both act.
//!
//! ```text
//! authorising ──granted──▶ authorised ──settled(>0)──▶ capturing ──ok──▶ captured
//!   │  │                      │   └─settled(0)/voided─▶ cancelling ─▶ cancelled
//!   │  └─timeout─▶ authorise_unknown ──(query)──▶ cancelling | cancelled | declined
//!   └─declined─▶ declined            capturing ──timeout/processing─▶ capture_unknown
//!                                    capturing | capture_unknown ──declined─▶ capture_declined
//!                                    capture_declined ──paid later─▶ collected
//! ```
//!
//! Guarantees (property-tested below): whatever events arrive, in whatever order and however
//! often, [`Effect::PostCapture`] is emitted at most once, [`Effect::PostDecline`] at most once
//! and never together with a capture, [`Effect::PostCollection`] only after a decline; terminal
//! states absorb duplicates without effect.

use serde::{Deserialize, Serialize};

/// Where a credit payment stands (stored as its snake_case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureState {
    /// The authorisation request is out; no answer yet.
    Authorising,
    /// It timed out: the provider may have authorised. The resolver queries.
    AuthoriseUnknown,
    /// Declined at start. Final.
    Declined,
    /// Authorised and the session stored; waiting for settlement.
    Authorised,
    /// To be cancelled at the provider (never started, voided, or nothing to collect).
    Cancelling,
    /// Final.
    Cancelled,
    /// Settled; the capture is being (or is to be) requested.
    Capturing,
    /// The capture's outcome is unknown (timeout, accepted without result). The resolver queries.
    CaptureUnknown,
    /// Collected. Final (refunds are separate).
    Captured,
    /// The provider refused to collect: the amount is the driver's receivable, under dunning.
    CaptureDeclined,
    /// Collected after a decline: the receivable is cleared. Final.
    Collected,
}

impl CaptureState {
    /// Every state.
    pub const ALL: [CaptureState; 11] = [
        CaptureState::Authorising,
        CaptureState::AuthoriseUnknown,
        CaptureState::Declined,
        CaptureState::Authorised,
        CaptureState::Cancelling,
        CaptureState::Cancelled,
        CaptureState::Capturing,
        CaptureState::CaptureUnknown,
        CaptureState::Captured,
        CaptureState::CaptureDeclined,
        CaptureState::Collected,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            CaptureState::Authorising => "authorising",
            CaptureState::AuthoriseUnknown => "authorise_unknown",
            CaptureState::Declined => "declined",
            CaptureState::Authorised => "authorised",
            CaptureState::Cancelling => "cancelling",
            CaptureState::Cancelled => "cancelled",
            CaptureState::Capturing => "capturing",
            CaptureState::CaptureUnknown => "capture_unknown",
            CaptureState::Captured => "captured",
            CaptureState::CaptureDeclined => "capture_declined",
            CaptureState::Collected => "collected",
        }
    }

    /// Parses the stored text.
    pub fn parse(text: &str) -> Option<CaptureState> {
        CaptureState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// No event moves it on except a late payment after a decline.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            CaptureState::Declined
                | CaptureState::Cancelled
                | CaptureState::Captured
                | CaptureState::Collected
        )
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The provider authorised and the session (order, hold, start command) is stored.
    Authorised,
    /// The provider declined the authorisation.
    AuthoriseDeclined,
    /// The authorisation timed out (or its answer did not verify).
    AuthoriseTimedOut,
    /// The session was not stored after all, or a query found an authorisation of a session
    /// that never started.
    NotStarted,
    /// A query found nothing at the provider.
    NotFound,
    /// The session's hold was voided (the start failed) before settlement.
    HoldVoided,
    /// Settlement posted the hold; `nonzero` when there is something to collect.
    Settled { nonzero: bool },
    /// The provider confirmed the cancellation.
    CancelConfirmed,
    /// The provider collected (capture answer, query or verified callback).
    Paid,
    /// The capture was accepted without a result yet.
    CaptureProcessing,
    /// The capture timed out.
    CaptureTimedOut,
    /// The provider refused to collect.
    CaptureRefused,
    /// The resolver found a claim that lapsed: do the pending call again (same number).
    Retry,
}

/// What the caller must do for a transition (at most one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Request the capture (keyed by the order's trade number).
    Capture,
    /// Cancel the authorisation at the provider.
    Cancel,
    /// Post `capture:{p}:{order}`: the collected amount to `provider:p`.
    PostCapture,
    /// Post `decline:{p}:{order}`: the amount becomes the driver's receivable.
    PostDecline,
    /// Post `collect:{p}:{order}`: a late payment clears the receivable.
    PostCollection,
}

/// An event that cannot happen in a state (a bug or a forged input); nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payment in state {} cannot take {event:?}", state.as_str())]
pub struct Refused {
    pub state: CaptureState,
    pub event: Event,
}

/// A transition's result: the next state and its effect (`None` for a duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub to: CaptureState,
    pub effect: Option<Effect>,
}

/// The transition table.
pub fn next(state: CaptureState, event: Event) -> Result<Step, Refused> {
    use CaptureState as S;
    use Effect as F;
    use Event as E;
    let step = |to, effect| Ok(Step { to, effect });
    match (state, event) {
        (S::Authorising, E::Authorised) => step(S::Authorised, None),
        (S::Authorising | S::AuthoriseUnknown, E::AuthoriseDeclined) => step(S::Declined, None),
        (S::Authorising, E::AuthoriseTimedOut) => step(S::AuthoriseUnknown, None),
        (S::AuthoriseUnknown, E::AuthoriseTimedOut) => step(S::AuthoriseUnknown, None),
        (S::Authorising | S::AuthoriseUnknown, E::NotStarted) => {
            step(S::Cancelling, Some(F::Cancel))
        }
        (S::Authorising | S::AuthoriseUnknown, E::NotFound) => step(S::Cancelled, None),
        (S::Authorised, E::HoldVoided | E::NotStarted | E::Settled { nonzero: false }) => {
            step(S::Cancelling, Some(F::Cancel))
        }
        (S::Authorised, E::Settled { nonzero: true }) => step(S::Capturing, Some(F::Capture)),
        (S::Cancelling, E::CancelConfirmed | E::NotFound) => step(S::Cancelled, None),
        (S::Cancelling, E::HoldVoided | E::NotStarted) => step(S::Cancelling, None),
        (S::Cancelling, E::Retry) => step(S::Cancelling, Some(F::Cancel)),
        (S::Capturing, E::Retry) => step(S::Capturing, Some(F::Capture)),
        (S::Capturing | S::CaptureUnknown, E::Paid) => step(S::Captured, Some(F::PostCapture)),
        (S::Capturing | S::CaptureUnknown, E::CaptureProcessing | E::CaptureTimedOut) => {
            step(S::CaptureUnknown, None)
        }
        // Nothing under the number: the capture never arrived; request it again (same number).
        (S::Capturing | S::CaptureUnknown, E::NotFound) => step(S::Capturing, Some(F::Capture)),
        (S::Capturing | S::CaptureUnknown, E::CaptureRefused) => {
            step(S::CaptureDeclined, Some(F::PostDecline))
        }
        (S::CaptureDeclined, E::Paid) => step(S::Collected, Some(F::PostCollection)),
        // Duplicates (a resent callback, a query after the answer): no effect.
        (S::Captured | S::Collected, E::Paid | E::CaptureProcessing | E::CaptureTimedOut) => {
            step(state, None)
        }
        (S::CaptureDeclined, E::CaptureRefused | E::CaptureTimedOut | E::CaptureProcessing) => {
            step(state, None)
        }
        (S::Authorised, E::Authorised)
        | (S::Declined, E::AuthoriseDeclined)
        | (S::Cancelled, E::CancelConfirmed | E::NotFound | E::HoldVoided | E::NotStarted) => {
            step(state, None)
        }
        _ => Err(Refused { state, event }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use CaptureState as S;

    const EVENTS: [Event; 14] = [
        Event::Retry,
        Event::Authorised,
        Event::AuthoriseDeclined,
        Event::AuthoriseTimedOut,
        Event::NotStarted,
        Event::NotFound,
        Event::HoldVoided,
        Event::Settled { nonzero: true },
        Event::Settled { nonzero: false },
        Event::CancelConfirmed,
        Event::Paid,
        Event::CaptureProcessing,
        Event::CaptureTimedOut,
        Event::CaptureRefused,
    ];

    #[test]
    fn the_happy_path_captures_once() {
        let mut s = S::Authorising;
        let mut effects = Vec::new();
        for e in [
            Event::Authorised,
            Event::Settled { nonzero: true },
            Event::CaptureTimedOut,
            Event::Paid,
            Event::Paid,
        ] {
            let step = next(s, e).unwrap();
            s = step.to;
            effects.extend(step.effect);
        }
        assert_eq!(s, S::Captured);
        assert_eq!(effects, vec![Effect::Capture, Effect::PostCapture]);
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(CaptureState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CaptureState::parse("nope"), None);
    }

    #[test]
    fn a_decline_at_start_is_final_and_nothing_is_captured() {
        let s = next(S::Authorising, Event::AuthoriseDeclined).unwrap().to;
        assert_eq!(s, S::Declined);
        assert!(s.is_final());
        assert!(next(s, Event::Settled { nonzero: true }).is_err());
        assert!(next(s, Event::Paid).is_err());
    }

    #[test]
    fn a_declined_capture_becomes_a_receivable_then_a_late_payment_clears_it() {
        let s = next(S::CaptureUnknown, Event::CaptureRefused).unwrap();
        assert_eq!(
            s,
            Step {
                to: S::CaptureDeclined,
                effect: Some(Effect::PostDecline)
            }
        );
        let s = next(s.to, Event::Paid).unwrap();
        assert_eq!(
            s,
            Step {
                to: S::Collected,
                effect: Some(Effect::PostCollection)
            }
        );
        assert_eq!(next(s.to, Event::Paid).unwrap().effect, None);
    }

    proptest! {
        #[test]
        fn any_event_sequence_posts_a_capture_at_most_once(
            start in 0usize..S::ALL.len(),
            events in proptest::collection::vec(0usize..EVENTS.len(), 0..40),
        ) {
            let mut s = S::ALL[start];
            let (mut captures, mut declines, mut collections) = (0, 0, 0);
            for i in events {
                let before = s;
                match next(s, EVENTS[i]) {
                    Ok(step) => {
                        match step.effect {
                            Some(Effect::PostCapture) => captures += 1,
                            Some(Effect::PostDecline) => declines += 1,
                            Some(Effect::PostCollection) => {
                                prop_assert!(declines > 0 || before == S::CaptureDeclined);
                                collections += 1;
                            }
                            _ => {}
                        }
                        if before.is_final() {
                            prop_assert_eq!(step.to, before, "a final state absorbs");
                            prop_assert_eq!(step.effect, None);
                        }
                        s = step.to;
                    }
                    Err(r) => prop_assert_eq!(r.state, before),
                }
            }
            prop_assert!(captures <= 1);
            prop_assert!(declines <= 1);
            prop_assert!(collections <= 1);
            prop_assert!(captures + declines <= 1, "never both captured and declined");
        }

        #[test]
        fn the_capture_effect_leads_only_to_capturing(s in 0usize..S::ALL.len(), e in 0usize..EVENTS.len()) {
            if let Ok(step) = next(S::ALL[s], EVENTS[e]) {
                match step.effect {
                    Some(Effect::Capture) => prop_assert_eq!(step.to, S::Capturing),
                    Some(Effect::Cancel) => prop_assert_eq!(step.to, S::Cancelling),
                    Some(Effect::PostCapture) => prop_assert_eq!(step.to, S::Captured),
                    Some(Effect::PostDecline) => prop_assert_eq!(step.to, S::CaptureDeclined),
                    Some(Effect::PostCollection) => prop_assert_eq!(step.to, S::Collected),
                    None => {}
                }
            }
        }
    }
}

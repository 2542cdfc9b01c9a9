//! Dunning of a declined capture, pure: the receivable's reminder schedule. A decline opens
//! it; at each due step the resolver asks the provider whether the driver paid meanwhile,
//! records the step (stored and logged, for the reminder to go out) and schedules the next;
//! after the final notice it goes to collections and the schedule ends. A late payment
//! through the provider settles it at any step ([`settle`]).
//!
//! | state | after | next |
//! |---|---|---|
//! | open | decline | reminded, 1 day later |
//! | reminded | | final_notice, 3 days later |
//! | final_notice | | collections, 7 days later |
//! | collections | | (none: an operator takes over) |

use jiff::SignedDuration;

/// A receivable's dunning state (stored as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dunning {
    Open,
    Reminded,
    FinalNotice,
    Collections,
    Settled,
}

impl Dunning {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dunning::Open => "open",
            Dunning::Reminded => "reminded",
            Dunning::FinalNotice => "final_notice",
            Dunning::Collections => "collections",
            Dunning::Settled => "settled",
        }
    }

    pub fn parse(text: &str) -> Option<Dunning> {
        [
            Dunning::Open,
            Dunning::Reminded,
            Dunning::FinalNotice,
            Dunning::Collections,
            Dunning::Settled,
        ]
        .into_iter()
        .find(|d| d.as_str() == text)
    }
}

/// The wait after entering each state before its next step, or `None` at the end.
pub fn wait_after(state: Dunning) -> Option<SignedDuration> {
    match state {
        Dunning::Open => Some(SignedDuration::from_hours(24)),
        Dunning::Reminded => Some(SignedDuration::from_hours(72)),
        Dunning::FinalNotice => Some(SignedDuration::from_hours(168)),
        Dunning::Collections | Dunning::Settled => None,
    }
}

/// The state a due step moves to.
pub fn step(state: Dunning) -> Dunning {
    match state {
        Dunning::Open => Dunning::Reminded,
        Dunning::Reminded => Dunning::FinalNotice,
        Dunning::FinalNotice | Dunning::Collections => Dunning::Collections,
        Dunning::Settled => Dunning::Settled,
    }
}

/// A late payment settles the receivable from any state.
pub fn settle(_state: Dunning) -> Dunning {
    Dunning::Settled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_ends_in_collections_after_three_steps() {
        let mut s = Dunning::Open;
        let mut waited = SignedDuration::ZERO;
        let mut steps = 0;
        while let Some(w) = wait_after(s) {
            waited += w;
            s = step(s);
            steps += 1;
            assert!(steps <= 3, "the schedule is bounded");
        }
        assert_eq!(s, Dunning::Collections);
        assert_eq!(waited, SignedDuration::from_hours(24 + 72 + 168));
        assert_eq!(settle(Dunning::FinalNotice), Dunning::Settled);
        assert_eq!(wait_after(Dunning::Settled), None);
        for d in [
            Dunning::Open,
            Dunning::Reminded,
            Dunning::FinalNotice,
            Dunning::Collections,
            Dunning::Settled,
        ] {
            assert_eq!(Dunning::parse(d.as_str()), Some(d));
        }
    }
}

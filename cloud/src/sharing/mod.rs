//! Multi-operator revenue sharing, pure: the rules (per operator, optionally per site,
//! versioned by effective instant), the exact split of one session between platform and
//! operator (rounded once; the operator takes the remainder), and the daily bill cut at the
//! operator's local midnight with late records as adjustment lines.
//!
//! No I/O and no clock reads: the bill job, the store and the webhooks drive it.

pub mod bill;
pub mod record;
pub mod rule;
pub mod split;

pub use bill::{
    cut_bill, cut_open_bill, day_bounds, local_day, DailyBill, DayBounds, SettledSession, Totals,
};
pub use record::SettlementShare;
pub use rule::{Percent, RuleBook, SharingRule, SharingTerms, VolumeTier};
pub use split::{split, PlatformFeeParts, SessionMoney, Split, SplitError};

//! Daily settlement bills: one per operator per local day, cut at the operator's local
//! midnight with a real time-zone database (a DST day has 23 or 25 hours; where a zone skips
//! midnight, the day starts at the first instant that exists).
//!
//! A bill holds the sessions *settled* during its day. A session whose service ended on an
//! earlier local day — a record that reached the cloud after that day's bill was issued, e.g.
//! from an edge that was offline — appears on the bill of the day it settled as an
//! **adjustment line** naming its service day; an issued bill is never edited. Totals are
//! plain sums of the sessions' splits, so a bill matches the ledger postings to the cent.
//!
//! [`cut_bill`] takes the sessions settled within the day. [`cut_open_bill`] is what the bill
//! job uses: it is given every session *not yet on any bill* settled before the day's end, so
//! a session whose settlement committed just after the previous bill was cut (its settled_at
//! falls before this day's start) is carried into this bill's adjustment lines instead of
//! being lost. Amounts on a bill are written with exactly two decimals, so the same bill
//! always serialises to the same bytes (its digest is stable).

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Money, OperatorId, SiteId};

use super::split::Split;

/// The instants a local day covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayBounds {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A day that cannot be cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("cannot find the start of {day} in {zone}: {reason}")]
    Day {
        day: Date,
        zone: String,
        reason: String,
    },
    #[error("session {session} belongs to operator {found}, not {expected}")]
    WrongOperator {
        session: String,
        expected: OperatorId,
        found: OperatorId,
    },
}

/// The instants of local `day` in `tz`.
pub fn day_bounds(tz: &TimeZone, day: Date) -> Result<DayBounds, BillError> {
    let err = |e: jiff::Error| BillError::Day {
        day,
        zone: tz.iana_name().unwrap_or("the zone").to_owned(),
        reason: e.to_string(),
    };
    let next = day.tomorrow().map_err(err)?;
    let start = day
        .to_zoned_datetime(tz.clone())
        .map_err(err)?
        .start_of_day()
        .map_err(err)?;
    let end = next
        .to_zoned_datetime(tz.clone())
        .map_err(err)?
        .start_of_day()
        .map_err(err)?;
    Ok(DayBounds {
        start: start.timestamp(),
        end: end.timestamp(),
    })
}

/// The local day `at` falls on in `tz`.
pub fn local_day(tz: &TimeZone, at: Timestamp) -> Date {
    at.to_zoned_datetime(tz.clone()).date()
}

/// A session as settled in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledSession {
    /// The order or settlement id.
    pub id: String,
    pub operator: OperatorId,
    pub site: SiteId,
    /// When the session ended (its service day follows from this).
    pub ended_at: Timestamp,
    /// When the ledger settled it.
    pub settled_at: Timestamp,
    pub energy: Energy,
    pub export_energy: Energy,
    pub split: Split,
}

/// Sums of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub sessions: u64,
    pub energy_in: Energy,
    pub energy_out: Energy,
    pub gross: Money,
    pub platform_fees: Money,
    pub operator_payable: Money,
    pub v2g_driver_credits: Money,
    pub v2g_operator_share: Money,
}

impl Totals {
    /// Adds one session.
    pub fn add(&mut self, s: &SettledSession) {
        self.sessions += 1;
        self.energy_in += s.energy;
        self.energy_out += s.export_energy;
        self.gross += s.split.gross;
        self.platform_fees += s.split.platform_fee;
        self.operator_payable += s.split.operator_payable;
        self.v2g_driver_credits += s.split.v2g_driver_credit;
        self.v2g_operator_share += s.split.v2g_operator_share;
    }

    /// What the platform pays the operator: charging payable plus V2G host share.
    pub fn net_payable(&self) -> Money {
        self.operator_payable + self.v2g_operator_share
    }

    /// The same totals with every amount written with two decimals (amounts are whole fen).
    pub fn canonical(mut self) -> Totals {
        for m in [
            &mut self.gross,
            &mut self.platform_fees,
            &mut self.operator_payable,
            &mut self.v2g_driver_credits,
            &mut self.v2g_operator_share,
        ] {
            *m = cents(*m);
        }
        self
    }
}

/// `m` with scale 2 (exact for whole fen; finer amounts are rounded half away from zero).
fn cents(m: Money) -> Money {
    let mut d = m.round_cents().yuan();
    d.rescale(2);
    Money::from_yuan(d)
}

/// Sessions of one site on the bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLine {
    pub site: SiteId,
    pub totals: Totals,
}

/// Late sessions of an earlier service day, settled on this bill's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentLine {
    pub service_day: Date,
    pub site: SiteId,
    pub totals: Totals,
}

/// One operator's bill for one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyBill {
    pub operator: OperatorId,
    pub day: Date,
    pub time_zone: String,
    pub bounds: DayBounds,
    /// Sessions that ended and settled on this day, per site.
    pub sites: Vec<SiteLine>,
    /// Sessions that ended on an earlier day and settled on this one.
    pub adjustments: Vec<AdjustmentLine>,
    /// Everything on the bill: sites plus adjustments.
    pub totals: Totals,
}

impl DailyBill {
    /// Sessions on adjustment lines.
    pub fn adjustment_sessions(&self) -> u64 {
        self.adjustments.iter().map(|a| a.totals.sessions).sum()
    }
}

/// Cuts `operator`'s bill for `day`: takes the sessions settled within the day's bounds
/// (others are ignored), in any order.
pub fn cut_bill<'a>(
    operator: &OperatorId,
    tz: &TimeZone,
    day: Date,
    sessions: impl IntoIterator<Item = &'a SettledSession>,
) -> Result<DailyBill, BillError> {
    let bounds = day_bounds(tz, day)?;
    let mut sites: BTreeMap<SiteId, Totals> = BTreeMap::new();
    let mut adjustments: BTreeMap<(Date, SiteId), Totals> = BTreeMap::new();
    let mut totals = Totals::default();
    for s in sessions {
        if s.settled_at < bounds.start || s.settled_at >= bounds.end {
            continue;
        }
        if &s.operator != operator {
            return Err(BillError::WrongOperator {
                session: s.id.clone(),
                expected: operator.clone(),
                found: s.operator.clone(),
            });
        }
        let service_day = local_day(tz, s.ended_at);
        if service_day < day {
            adjustments
                .entry((service_day, s.site.clone()))
                .or_default()
                .add(s);
        } else {
            sites.entry(s.site.clone()).or_default().add(s);
        }
        totals.add(s);
    }
    Ok(DailyBill {
        operator: operator.clone(),
        day,
        time_zone: tz.iana_name().unwrap_or("UTC").to_owned(),
        bounds,
        sites: sites
            .into_iter()
            .map(|(site, totals)| SiteLine { site, totals })
            .collect(),
        adjustments: adjustments
            .into_iter()
            .map(|((service_day, site), totals)| AdjustmentLine {
                service_day,
                site,
                totals,
            })
            .collect(),
        totals,
    })
}

/// Cuts `operator`'s bill for `day` from sessions that are on no bill yet: those settled
/// before the day's end are on it (later ones are ignored), in any order. A session goes to an
/// adjustment line when its service day (the local day it ended) is before `day`, or when it
/// settled before the day's start (it missed the bill of its own day); the line names the
/// earlier of the two days.
pub fn cut_open_bill<'a>(
    operator: &OperatorId,
    tz: &TimeZone,
    day: Date,
    unbilled: impl IntoIterator<Item = &'a SettledSession>,
) -> Result<DailyBill, BillError> {
    let bounds = day_bounds(tz, day)?;
    let mut sites: BTreeMap<SiteId, Totals> = BTreeMap::new();
    let mut adjustments: BTreeMap<(Date, SiteId), Totals> = BTreeMap::new();
    let mut totals = Totals::default();
    for s in unbilled {
        if s.settled_at >= bounds.end {
            continue;
        }
        if &s.operator != operator {
            return Err(BillError::WrongOperator {
                session: s.id.clone(),
                expected: operator.clone(),
                found: s.operator.clone(),
            });
        }
        let mut service_day = local_day(tz, s.ended_at);
        if s.settled_at < bounds.start {
            service_day = service_day.min(local_day(tz, s.settled_at));
        }
        if service_day < day {
            adjustments
                .entry((service_day, s.site.clone()))
                .or_default()
                .add(s);
        } else {
            sites.entry(s.site.clone()).or_default().add(s);
        }
        totals.add(s);
    }
    Ok(DailyBill {
        operator: operator.clone(),
        day,
        time_zone: tz.iana_name().unwrap_or("UTC").to_owned(),
        bounds,
        sites: sites
            .into_iter()
            .map(|(site, totals)| SiteLine {
                site,
                totals: totals.canonical(),
            })
            .collect(),
        adjustments: adjustments
            .into_iter()
            .map(|((service_day, site), totals)| AdjustmentLine {
                service_day,
                site,
                totals: totals.canonical(),
            })
            .collect(),
        totals: totals.canonical(),
    })
}

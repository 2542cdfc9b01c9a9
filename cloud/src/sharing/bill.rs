//! Daily settlement bills: one per operator per local day, cut at the operator's local
//! midnight with a real time-zone database (a DST day has 23 or 25 hours; where a zone skips
//! midnight, the day starts at the first instant that exists).
//!
//! A bill holds the sessions *settled* during its day. A session whose service ended on an
//! earlier local day — a record that reached the cloud after that day's bill was issued, e.g.
//! from an edge that was offline — appears on the bill of the day it settled as an
//! **adjustment line** naming its service day; an issued bill is never edited. Totals are
//! plain sums of the sessions' splits, so a bill matches the ledger postings to the cent.

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
    fn add(&mut self, s: &SettledSession) {
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

//! [`SettlementShare`]: what settlement records about a session's split, beside its postings,
//! so that daily bills and the reconciliation check can be made from the settlement rows
//! alone (one indexed read per operator-day, no JSON to parse).
//!
//! It owns only the shape of that record. It must never compute a split (that is
//! [`super::split`]) nor be written anywhere but in the settlement's own database
//! transaction (`money::db::insert_settlements`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::Money;

/// The sharing columns of one settlement row.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SettlementShare {
    /// The operator whose payable the session credits.
    pub operator: String,
    /// The site where the session ran.
    pub site: String,
    /// Session start (the rule in force then split it).
    pub started_at: Option<Timestamp>,
    /// Session end (its service day follows from this).
    pub ended_at: Option<Timestamp>,
    /// Energy delivered to the vehicle, mWh.
    pub energy_mwh: i64,
    /// Energy exported by the vehicle (V2G), mWh.
    pub export_mwh: i64,
    /// V2G: credited to the driver (zero until V2G settlement lands).
    pub v2g_driver_credit: Money,
    /// V2G: the operator's host share (zero until V2G settlement lands).
    pub v2g_operator_share: Money,
    /// The sharing rule version that split it; `None`: the configured default platform fee.
    pub rule_version: Option<u32>,
}

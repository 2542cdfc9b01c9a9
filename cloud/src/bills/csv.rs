//! The CSV export of a bill: one row per site line, one per adjustment line, and a total row,
//! with the same columns as the JSON. Energy in kWh (exact decimals), money in yuan with two
//! decimals. Fields are quoted when they contain a comma, quote or line break (RFC 4180).
//!
//! Pure: it formats a [`StoredBill`] and touches nothing else.

use std::fmt::Write;

use super::store::StoredBill;
use crate::sharing::Totals;

/// The header row.
pub const HEADER: &str = "bill_id,operator,day,time_zone,line,site,service_day,sessions,energy_in_kwh,energy_out_kwh,gross,platform_fees,operator_payable,v2g_payouts,v2g_operator_share,net_payable";

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn row(out: &mut String, b: &StoredBill, line: &str, site: &str, service_day: &str, t: &Totals) {
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        field(&b.id),
        field(b.bill.operator.as_str()),
        b.bill.day,
        field(&b.bill.time_zone),
        line,
        field(site),
        service_day,
        t.sessions,
        t.energy_in.kwh().normalize(),
        t.energy_out.kwh().normalize(),
        t.gross,
        t.platform_fees,
        t.operator_payable,
        t.v2g_driver_credits,
        t.v2g_operator_share,
        t.net_payable(),
    );
}

/// The bill as CSV.
pub fn to_csv(b: &StoredBill) -> String {
    let mut out = String::with_capacity(256 * (b.bill.sites.len() + b.bill.adjustments.len() + 2));
    out.push_str(HEADER);
    out.push('\n');
    let day = b.bill.day.to_string();
    for l in &b.bill.sites {
        row(&mut out, b, "site", l.site.as_str(), &day, &l.totals);
    }
    for l in &b.bill.adjustments {
        row(
            &mut out,
            b,
            "adjustment",
            l.site.as_str(),
            &l.service_day.to_string(),
            &l.totals,
        );
    }
    row(&mut out, b, "total", "", "", &b.bill.totals);
    out
}

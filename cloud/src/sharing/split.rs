//! Splitting one settled session's money between the platform and the operator.
//!
//! # Rounding (the only place)
//!
//! The tariff has already rounded the session's electricity fee and service fee to cents. The
//! platform fee is then computed exactly (`rust_decimal`, no rounding) as the sum of its
//! components, raised to the rule's minimum, capped at the session's gross (the platform never
//! keeps more than the driver paid), and rounded ONCE to cents, half away from zero. The
//! operator's payable is the gross minus that fee: **the operator is the remainder party**, so
//! platform fee + operator payable = gross, exactly, always.
//!
//! For V2G exports the driver is credited the export value (priced and rounded by the
//! discharge tariff); the operator's host share is `v2g_operator_pct` of that value, rounded
//! once to cents half away from zero, paid by the platform; the platform's V2G cost is the sum
//! of the two.

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::money::scale;
use voltline_protocol::domain::{Energy, Money};

use super::rule::SharingTerms;

/// The money of one settled session, as the tariffs priced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMoney {
    /// Energy delivered to the vehicle.
    pub energy: Energy,
    /// Electricity fee paid by the driver (cents).
    pub energy_fee: Money,
    /// Service fee paid by the driver (cents).
    pub service_fee: Money,
    /// Energy exported by the vehicle (V2G).
    pub export_energy: Energy,
    /// What the platform pays the driver for the export (cents).
    pub export_value: Money,
}

/// Session money that cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A negative or sub-cent amount.
    #[error("{field} is {value} yuan; session amounts are whole cents and never negative")]
    BadAmount { field: &'static str, value: Money },
    /// Negative energy.
    #[error("{field} is {value}; energy cannot be negative")]
    NegativeEnergy { field: &'static str, value: Energy },
}

impl SessionMoney {
    /// The driver's payment: electricity fee + service fee.
    pub fn gross(&self) -> Money {
        self.energy_fee + self.service_fee
    }

    fn validate(&self) -> Result<(), SplitError> {
        for (field, value) in [
            ("energy_fee", self.energy_fee),
            ("service_fee", self.service_fee),
            ("export_value", self.export_value),
        ] {
            if value.is_negative() || value.to_scaled(scale::CENT).is_err() {
                return Err(SplitError::BadAmount { field, value });
            }
        }
        for (field, value) in [
            ("energy", self.energy),
            ("export_energy", self.export_energy),
        ] {
            if value < Energy::ZERO {
                return Err(SplitError::NegativeEnergy { field, value });
            }
        }
        Ok(())
    }
}

/// The exact (unrounded) parts of the platform fee, for the bill's explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlatformFeeParts {
    pub of_energy_fee: Money,
    pub of_service_fee: Money,
    pub per_kwh: Money,
    pub per_session: Money,
    /// Added to reach the minimum fee (zero when the parts already reach it).
    pub minimum_top_up: Money,
    /// Removed so the fee does not exceed the gross (zero normally).
    pub capped_by_gross: Money,
}

/// How one session's money is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// What the driver paid.
    pub gross: Money,
    /// What the platform keeps (cents, rounded once).
    pub platform_fee: Money,
    /// What the platform owes the operator for the session: `gross - platform_fee`.
    pub operator_payable: Money,
    /// The exact parts of the platform fee.
    pub parts: PlatformFeeParts,
    /// V2G: credited to the driver.
    pub v2g_driver_credit: Money,
    /// V2G: the operator's host share (cents, rounded once), paid by the platform.
    pub v2g_operator_share: Money,
}

impl Split {
    /// What the operator is owed for the session in all: charging payable + V2G host share.
    pub fn operator_total(&self) -> Money {
        self.operator_payable + self.v2g_operator_share
    }
}

/// Splits a session by `terms`, with `month_volume` the operator's energy delivered earlier in
/// the month (for volume tiers).
pub fn split(
    terms: &SharingTerms,
    money: &SessionMoney,
    month_volume: Energy,
) -> Result<Split, SplitError> {
    money.validate()?;
    let gross = money.gross();
    let mut parts = PlatformFeeParts {
        of_energy_fee: terms.energy_fee_pct.of(money.energy_fee),
        of_service_fee: terms.service_fee_pct_at(month_volume).of(money.service_fee),
        per_kwh: terms.per_kwh.times(money.energy.kwh()),
        per_session: terms.per_session,
        ..PlatformFeeParts::default()
    };
    let mut exact = parts.of_energy_fee + parts.of_service_fee + parts.per_kwh + parts.per_session;
    if exact < terms.min_platform_fee {
        parts.minimum_top_up = terms.min_platform_fee - exact;
        exact = terms.min_platform_fee;
    }
    if exact > gross {
        parts.capped_by_gross = exact - gross;
        exact = gross;
    }
    let platform_fee = exact.round_cents();
    let operator_payable = gross - platform_fee;
    let v2g_operator_share = terms.v2g_operator_pct.of(money.export_value).round_cents();
    let s = Split {
        gross,
        platform_fee,
        operator_payable,
        parts,
        v2g_driver_credit: money.export_value,
        v2g_operator_share,
    };
    debug_assert_eq!(s.platform_fee + s.operator_payable, s.gross);
    debug_assert!(!s.platform_fee.is_negative() && !s.operator_payable.is_negative());
    Ok(s)
}

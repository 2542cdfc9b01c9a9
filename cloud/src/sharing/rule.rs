//! Revenue-sharing rules: what the platform keeps of a session's money, per operator and
//! optionally per site, versioned with an effective instant.
//!
//! A rule's terms add up the platform's fee from any of: a percentage of the electricity fee,
//! a percentage of the service fee (optionally by monthly-volume tier), a fixed amount per kWh
//! and a fixed amount per session, with a minimum platform fee per session. For V2G, the terms
//! give the operator's share of the value of exported energy (the platform pays the driver and
//! passes the operator its share as a site-host fee).

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Money, OperatorId, SiteId};

/// A percentage, 0..=100, exact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Percent(Decimal);

/// A percentage outside 0..=100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} % is not a percentage between 0 and 100")]
pub struct BadPercent(pub Decimal);

impl Percent {
    /// Zero percent.
    pub const ZERO: Percent = Percent(Decimal::ZERO);

    /// A percentage, or an error outside 0..=100.
    pub fn new(p: Decimal) -> Result<Percent, BadPercent> {
        if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED {
            Err(BadPercent(p))
        } else {
            Ok(Percent(p))
        }
    }

    /// The percentage.
    pub fn get(self) -> Decimal {
        self.0
    }

    /// `amount × self / 100`, exact.
    pub fn of(self, amount: Money) -> Money {
        amount.times(self.0 / Decimal::ONE_HUNDRED)
    }
}

impl TryFrom<Decimal> for Percent {
    type Error = BadPercent;
    fn try_from(d: Decimal) -> Result<Self, Self::Error> {
        Percent::new(d)
    }
}

impl From<Percent> for Decimal {
    fn from(p: Percent) -> Decimal {
        p.0
    }
}

/// A band of an operator's monthly volume with its own service-fee share: from `from_kwh` of
/// energy delivered in the month so far, the platform keeps `service_fee_pct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeTier {
    pub from: Energy,
    pub service_fee_pct: Percent,
}

/// What the platform keeps of a session.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SharingTerms {
    /// Platform's share of the electricity fee.
    #[serde(default)]
    pub energy_fee_pct: Percent,
    /// Platform's share of the service fee (below the first tier, or when there are no tiers).
    #[serde(default)]
    pub service_fee_pct: Percent,
    /// Service-fee shares by the operator's volume in the month, ascending by `from`.
    #[serde(default)]
    pub tiers: Vec<VolumeTier>,
    /// A fixed platform fee per kWh delivered.
    #[serde(default)]
    pub per_kwh: Money,
    /// A fixed platform fee per session.
    #[serde(default)]
    pub per_session: Money,
    /// The least the platform keeps of a session (never more than the session's gross).
    #[serde(default)]
    pub min_platform_fee: Money,
    /// The operator's share of the value of energy exported by vehicles (V2G).
    #[serde(default)]
    pub v2g_operator_pct: Percent,
}

/// Terms that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// A negative fixed amount.
    #[error("{field} is {value} yuan; fixed fees cannot be negative")]
    NegativeFee { field: &'static str, value: Money },
    /// Tiers out of order or repeated.
    #[error("volume tiers must start at strictly increasing volumes; tier {index} starts at {from} after {previous}")]
    TiersOutOfOrder {
        index: usize,
        from: Energy,
        previous: Energy,
    },
    /// Too many tiers.
    #[error("{count} volume tiers; at most {max}")]
    TooManyTiers { count: usize, max: usize },
}

/// Most tiers in one rule.
pub const MAX_TIERS: usize = 16;

impl SharingTerms {
    /// Checks the terms.
    pub fn validate(&self) -> Result<(), TermsError> {
        for (field, value) in [
            ("per_kwh", self.per_kwh),
            ("per_session", self.per_session),
            ("min_platform_fee", self.min_platform_fee),
        ] {
            if value.is_negative() {
                return Err(TermsError::NegativeFee { field, value });
            }
        }
        if self.tiers.len() > MAX_TIERS {
            return Err(TermsError::TooManyTiers {
                count: self.tiers.len(),
                max: MAX_TIERS,
            });
        }
        for (index, pair) in self.tiers.windows(2).enumerate() {
            if pair[1].from <= pair[0].from {
                return Err(TermsError::TiersOutOfOrder {
                    index: index + 1,
                    from: pair[1].from,
                    previous: pair[0].from,
                });
            }
        }
        Ok(())
    }

    /// The service-fee share for an operator that has delivered `month_volume` this month
    /// before the session started.
    pub fn service_fee_pct_at(&self, month_volume: Energy) -> Percent {
        self.tiers
            .iter()
            .rev()
            .find(|t| month_volume >= t.from)
            .map_or(self.service_fee_pct, |t| t.service_fee_pct)
    }
}

/// A version of an operator's (or one of its sites') sharing terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingRule {
    pub operator: OperatorId,
    /// `None`: the operator's default for all its sites.
    pub site: Option<SiteId>,
    /// In force for sessions that start at or after this instant (until a later version).
    pub effective_from: Timestamp,
    pub version: u32,
    pub terms: SharingTerms,
}

/// Every rule version, to find the one in force for a session.
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    rules: Vec<SharingRule>,
}

/// A rule that cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleBookError {
    #[error(transparent)]
    Terms(#[from] TermsError),
    /// Two versions for the same scope and instant.
    #[error("operator {operator} {scope} already has a rule effective at {at}; give the new one another effective instant")]
    Duplicate {
        operator: OperatorId,
        scope: String,
        at: Timestamp,
    },
}

impl RuleBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule version after validating its terms.
    pub fn add(&mut self, rule: SharingRule) -> Result<(), RuleBookError> {
        rule.terms.validate()?;
        if self.rules.iter().any(|r| {
            r.operator == rule.operator
                && r.site == rule.site
                && r.effective_from == rule.effective_from
        }) {
            return Err(RuleBookError::Duplicate {
                scope: rule
                    .site
                    .as_ref()
                    .map_or_else(|| "(all sites)".to_owned(), |s| format!("site {s}")),
                operator: rule.operator,
                at: rule.effective_from,
            });
        }
        self.rules.push(rule);
        Ok(())
    }

    /// The rule in force for a session of `operator` at `site` that started at `started_at`:
    /// the latest site-specific version effective by then, else the latest operator-wide one.
    pub fn in_force(
        &self,
        operator: &OperatorId,
        site: &SiteId,
        started_at: Timestamp,
    ) -> Option<&SharingRule> {
        let latest = |for_site: bool| {
            self.rules
                .iter()
                .filter(|r| &r.operator == operator && r.effective_from <= started_at)
                .filter(|r| match &r.site {
                    Some(s) => for_site && s == site,
                    None => !for_site,
                })
                .max_by_key(|r| (r.effective_from, r.version))
        };
        latest(true).or_else(|| latest(false))
    }
}

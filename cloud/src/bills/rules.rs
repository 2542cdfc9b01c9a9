//! Revenue-sharing rules and billing settings in SQL, and [`RuleCache`], the in-memory copy
//! settlement splits by.
//!
//! **Versions.** A rule is never updated: each `create_rule` stores the next version for its
//! scope (the operator, or one of its sites) with an effective instant. A session is split by
//! the rule in force when it *started* ([`RuleBook::in_force`]: the site's latest version
//! effective by then, else the operator's).
//!
//! **Why a lead time.** Settlement reads rules from [`RuleCache`], refreshed at most
//! [`RULE_CACHE_TTL`] after a change. The API therefore only accepts rules that take effect at
//! least [`RULE_LEAD`] from now (longer than the cache's life): by the time a session can
//! start under a new rule, every instance's cache holds it, so no session is ever split by a
//! stale rule set. ([`create_rule`] itself takes any instant, for back-office loads and tests
//! made before any session starts.)
//!
//! **Volume tiers.** The operator's monthly volume before a session is the energy on its
//! issued bills of the same local month for the days before the session's start day. Issued
//! bills never change, so the figure is stable, and it costs no read per session.
//!
//! It must never change a stored rule, and never read the database per session while
//! settling (only on a cache miss, once per operator per [`RULE_CACHE_TTL`]).

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use voltline_protocol::domain::{Energy, OperatorId, SiteId};

use super::error::BillsError;
use super::limits;
use crate::sharing::rule::{RuleBook, SharingRule, SharingTerms};
use crate::sharing::split::{split, SessionMoney, Split};
use crate::store::types::DbTime;
use crate::store::{with_pool, Store};

/// How long a cached operator's rules are used before they are read again.
pub const RULE_CACHE_TTL: Duration = Duration::from_secs(30);
/// The least time between creating a rule through the API and its effective instant.
pub const RULE_LEAD: SignedDuration = SignedDuration::from_secs(60);
/// Operators cached.
const RULE_CACHE_CAPACITY: u64 = 100_000;

/// A rule to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRule {
    pub operator: OperatorId,
    pub site: Option<SiteId>,
    pub effective_from: Timestamp,
    pub terms: SharingTerms,
}

type RuleRow = (String, Option<String>, i64, DbTime, Json<SharingTerms>);

fn rule_from_row(r: RuleRow) -> Result<SharingRule, BillsError> {
    let operator =
        r.0.parse()
            .map_err(|e| BillsError::Corrupt(format!("operator id '{}': {e}", r.0)))?;
    let site =
        r.1.map(|s| {
            s.parse::<SiteId>()
                .map_err(|e| BillsError::Corrupt(format!("site id '{s}': {e}")))
        })
        .transpose()?;
    Ok(SharingRule {
        operator,
        site,
        effective_from: r.3 .0,
        version: u32::try_from(r.2)
            .map_err(|_| BillsError::Corrupt(format!("rule version {}", r.2)))?,
        terms: r.4 .0,
    })
}

/// Stores the next version of the rule for `rule`'s scope, after validating its terms and
/// that the site (if any) is the operator's.
pub async fn create_rule(store: &Store, rule: &NewRule) -> Result<SharingRule, BillsError> {
    rule.terms.validate()?;
    let scope = rule.site.as_ref().map_or(String::new(), |s| s.to_string());
    if let Some(site) = &rule.site {
        let s = store.get_site(site).await?;
        if s.operator != rule.operator {
            return Err(BillsError::invalid(
                "sharing rule",
                format!(
                    "site {site} belongs to operator {}, not {}: give one of the operator's own sites",
                    s.operator, rule.operator
                ),
            ));
        }
    }
    let _turn = store.write_turn().await;
    let now = DbTime::from(Timestamp::now());
    let version: i64 = with_pool!(store, |pool, d| {
        let mut tx = pool.begin_with(d.begin_write()).await?;
        let (max,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(version) FROM sharing_rules WHERE operator_id = $1 AND scope = $2",
        )
        .bind(rule.operator.as_str())
        .bind(&scope)
        .fetch_one(&mut *tx)
        .await?;
        let version = max.unwrap_or(0) + 1;
        let inserted = sqlx::query(
            "INSERT INTO sharing_rules (operator_id, scope, site_id, version, effective_from, terms, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(rule.operator.as_str())
        .bind(&scope)
        .bind(rule.site.as_ref().map(|s| s.to_string()))
        .bind(version)
        .bind(DbTime::from(rule.effective_from))
        .bind(Json(&rule.terms))
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(BillsError::Conflict(format!(
                    "operator {} already has a rule for this scope effective at {} (or a version was added concurrently)",
                    rule.operator, rule.effective_from
                )));
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(BillsError::NotFound {
                    what: "operator",
                    id: rule.operator.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        version
    });
    Ok(SharingRule {
        operator: rule.operator.clone(),
        site: rule.site.clone(),
        effective_from: rule.effective_from,
        version: u32::try_from(version).unwrap_or(u32::MAX),
        terms: rule.terms.clone(),
    })
}

/// Every rule version of `operator` (at most [`limits::MAX_RULES_PER_OPERATOR`]), oldest
/// effective first.
pub async fn list_rules(
    store: &Store,
    operator: &OperatorId,
) -> Result<Vec<SharingRule>, BillsError> {
    let limit = i64::try_from(limits::MAX_RULES_PER_OPERATOR).unwrap_or(i64::MAX);
    let rows: Vec<RuleRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(
            "SELECT operator_id, site_id, version, effective_from, terms FROM sharing_rules \
             WHERE operator_id = $1 ORDER BY effective_from, scope, version LIMIT $2",
        )
        .bind(operator.as_str())
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(rule_from_row).collect()
}

/// Where and from when an operator is billed.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingSettings {
    pub operator: OperatorId,
    pub time_zone: TimeZone,
    /// The first local day billed.
    pub first_day: Date,
}

/// Parses an IANA zone name.
pub fn parse_zone(name: &str) -> Result<TimeZone, BillsError> {
    TimeZone::get(name).map_err(|e| {
        BillsError::invalid(
            "time zone",
            format!("'{name}' is not an IANA time zone ({e}); write e.g. Europe/Berlin"),
        )
    })
}

fn parse_day(text: &str) -> Result<Date, BillsError> {
    text.parse::<Date>()
        .map_err(|e| BillsError::Corrupt(format!("day '{text}': {e}")))
}

type SettingsRow = (
    String,
    DbTime,
    Option<String>,
    Option<String>,
    Option<String>,
);

const SETTINGS_SELECT: &str = "SELECT o.id, o.created_at, b.time_zone, b.first_day, \
     (SELECT s.time_zone FROM sites s WHERE s.operator_id = o.id ORDER BY s.created_at, s.id LIMIT 1) \
     FROM operators o LEFT JOIN operator_billing b ON b.operator_id = o.id";

fn settings_from_row(r: SettingsRow) -> Result<BillingSettings, BillsError> {
    let operator: OperatorId =
        r.0.parse()
            .map_err(|e| BillsError::Corrupt(format!("operator id '{}': {e}", r.0)))?;
    let zone_name = r.2.clone().or(r.4).unwrap_or_else(|| "UTC".to_owned());
    let time_zone = TimeZone::get(&zone_name)
        .map_err(|e| BillsError::Corrupt(format!("time zone '{zone_name}': {e}")))?;
    let first_day = match r.3 {
        Some(d) => parse_day(&d)?,
        None => crate::sharing::local_day(&time_zone, r.1 .0),
    };
    Ok(BillingSettings {
        operator,
        time_zone,
        first_day,
    })
}

/// The billing settings of `operator` (see the migration for the defaults).
pub async fn billing_settings(
    store: &Store,
    operator: &OperatorId,
) -> Result<BillingSettings, BillsError> {
    let sql = format!("{SETTINGS_SELECT} WHERE o.id = $1");
    let row: Option<SettingsRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(operator.as_str())
            .fetch_optional(pool)
            .await?
    });
    let row = row.ok_or_else(|| BillsError::NotFound {
        what: "operator",
        id: operator.to_string(),
    })?;
    settings_from_row(row)
}

/// The billing settings of operators with ids after `after`, in id order, at most `limit`.
pub async fn billing_settings_page(
    store: &Store,
    after: &str,
    limit: usize,
) -> Result<Vec<BillingSettings>, BillsError> {
    let sql = format!("{SETTINGS_SELECT} WHERE o.id > $1 ORDER BY o.id LIMIT $2");
    let limit = i64::try_from(limit.min(limits::OPERATOR_PAGE)).unwrap_or(1);
    let rows: Vec<SettingsRow> = with_pool!(store, |pool, d| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(settings_from_row).collect()
}

/// Sets where `operator`'s days are cut and the first day billed. Days already billed keep
/// their bills; the anti-join on billed sessions keeps every session on exactly one bill
/// across a change of zone.
pub async fn set_billing_settings(
    store: &Store,
    operator: &OperatorId,
    time_zone: &str,
    first_day: Date,
) -> Result<BillingSettings, BillsError> {
    let tz = parse_zone(time_zone)?;
    let now = DbTime::from(Timestamp::now());
    let _turn = store.write_turn().await;
    let done = with_pool!(store, |pool, d| {
        sqlx::query(
            "INSERT INTO operator_billing (operator_id, time_zone, first_day, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (operator_id) DO UPDATE SET time_zone = excluded.time_zone, first_day = excluded.first_day, updated_at = excluded.updated_at",
        )
        .bind(operator.as_str())
        .bind(time_zone)
        .bind(first_day.to_string())
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    });
    match done {
        Ok(_) => {}
        Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            return Err(BillsError::NotFound {
                what: "operator",
                id: operator.to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    Ok(BillingSettings {
        operator: operator.clone(),
        time_zone: tz,
        first_day,
    })
}

/// One operator's rules, zone and recent bill volumes, as cached.
#[derive(Debug)]
pub struct OperatorRules {
    pub book: RuleBook,
    pub time_zone: TimeZone,
    /// (day, energy in) of issued bills from the first day of last month on.
    month_bills: Vec<(Date, Energy)>,
}

impl OperatorRules {
    /// The operator's volume in the local month of `started_at`, on days before that one.
    pub fn month_volume(&self, started_at: Timestamp) -> Energy {
        let day = crate::sharing::local_day(&self.time_zone, started_at);
        let first = day.first_of_month();
        self.month_bills
            .iter()
            .filter(|(d, _)| *d >= first && *d < day)
            .fold(Energy::ZERO, |acc, (_, e)| acc + *e)
    }

    /// The split of a session at `site` that started at `started_at`, with the rule version,
    /// or `None` when no rule is in force (settlement then uses its default fee).
    pub fn split(
        &self,
        operator: &OperatorId,
        site: &SiteId,
        started_at: Timestamp,
        money: &SessionMoney,
    ) -> Result<Option<(Split, u32)>, BillsError> {
        let Some(rule) = self.book.in_force(operator, site, started_at) else {
            return Ok(None);
        };
        let s = split(&rule.terms, money, self.month_volume(started_at))
            .map_err(|e| BillsError::invalid("session money", e.to_string()))?;
        Ok(Some((s, rule.version)))
    }
}

/// Operators' sharing rules in memory (see the module doc for why it may be stale).
#[derive(Clone)]
pub struct RuleCache {
    store: Store,
    entries: moka::future::Cache<OperatorId, Arc<OperatorRules>>,
}

impl RuleCache {
    pub fn new(store: Store) -> RuleCache {
        RuleCache {
            store,
            entries: moka::future::Cache::builder()
                .max_capacity(RULE_CACHE_CAPACITY)
                .time_to_live(RULE_CACHE_TTL)
                .build(),
        }
    }

    /// Forgets `operator`'s entry (after a rule was stored by this instance).
    pub async fn invalidate(&self, operator: &OperatorId) {
        self.entries.invalidate(operator).await;
    }

    /// `operator`'s rules, read once per [`RULE_CACHE_TTL`].
    pub async fn for_operator(
        &self,
        operator: &OperatorId,
    ) -> Result<Arc<OperatorRules>, BillsError> {
        if let Some(e) = self.entries.get(operator).await {
            return Ok(e);
        }
        let settings = billing_settings(&self.store, operator).await?;
        let mut book = RuleBook::new();
        for r in list_rules(&self.store, operator).await? {
            book.add(r)?;
        }
        let today = crate::sharing::local_day(&settings.time_zone, Timestamp::now());
        let from = today
            .first_of_month()
            .checked_sub(jiff::Span::new().months(1))
            .unwrap_or(today);
        let rows: Vec<(String, i64)> = with_pool!(self.store, |pool, d| {
            sqlx::query_as(
                "SELECT day, energy_in_mwh FROM bills WHERE operator_id = $1 AND day >= $2 ORDER BY day LIMIT 100",
            )
            .bind(operator.as_str())
            .bind(from.to_string())
            .fetch_all(pool)
            .await?
        });
        let month_bills = rows
            .into_iter()
            .map(|(d, e)| Ok((parse_day(&d)?, Energy::from_mwh(e))))
            .collect::<Result<Vec<_>, BillsError>>()?;
        let entry = Arc::new(OperatorRules {
            book,
            time_zone: settings.time_zone,
            month_bills,
        });
        self.entries.insert(operator.clone(), entry.clone()).await;
        Ok(entry)
    }
}

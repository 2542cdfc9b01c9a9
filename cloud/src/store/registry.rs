//! The registry: operators (tenants), sites and driver accounts.
//!
//! Sites get a credential at registration (for the edge's MQTT login); only its SHA-256 is
//! stored and the secret is returned once. Chargers are in `chargers.rs`, cards in
//! `cards.rs`, tariffs in `tariffs.rs`.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, OperatorId, Power, SiteId};

use super::tokens::{hash_secret, new_secret, verify_hash};
use super::types::DbTime;
use super::{parse_stored, to_u64, with_pool, Store, StoreError, StoreResult};
use super::{Account, NewSite, Operator, Secret, Site};

/// Longest display name.
const MAX_NAME_CHARS: usize = 200;

type SiteRow = (String, String, String, String, i64, DbTime, DbTime);

const SITE_BY_ID: &str =
    "SELECT id, operator_id, name, time_zone, config_version, created_at, updated_at \
     FROM sites WHERE id = $1";
const SITES_OF_OPERATOR: &str =
    "SELECT id, operator_id, name, time_zone, config_version, created_at, updated_at \
     FROM sites WHERE operator_id = $1 ORDER BY id";

fn check_name(name: &str, what: &'static str) -> StoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::invalid(
            what,
            format!("the name must be 1-{MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// An IANA time-zone name the bundled database knows.
fn check_time_zone(name: &str) -> StoreResult<()> {
    TimeZone::get(name).map(|_| ()).map_err(|e| {
        StoreError::invalid(
            "site time zone",
            format!("'{name}' is not an IANA time zone name ({e}); use e.g. Asia/Shanghai"),
        )
    })
}

fn site_from_row(r: SiteRow) -> StoreResult<Site> {
    Ok(Site {
        id: parse_stored(&r.0, "site id")?,
        operator: parse_stored(&r.1, "operator id")?,
        name: r.2,
        time_zone: r.3,
        config_version: to_u64(r.4, "config version")?,
        created_at: r.5 .0,
        updated_at: r.6 .0,
    })
}

impl Store {
    /// Registers an operator.
    pub async fn create_operator(&self, id: &OperatorId, name: &str) -> StoreResult<Operator> {
        check_name(name, "operator name")?;
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d| {
            sqlx::query("INSERT INTO operators (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id.as_str())
                .bind(name)
                .bind(now)
                .execute(pool)
                .await
                .map_err(|e| StoreError::on_insert(e, "operator", id.as_str()))?;
        });
        Ok(Operator {
            id: id.clone(),
            name: name.to_owned(),
            created_at: now.0,
        })
    }

    /// An operator by id.
    pub async fn get_operator(&self, id: &OperatorId) -> StoreResult<Operator> {
        let row: Option<(String, DbTime)> = with_pool!(self, |pool, d| {
            sqlx::query_as("SELECT name, created_at FROM operators WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
        });
        let (name, created_at) = row.ok_or_else(|| StoreError::not_found("operator", id))?;
        Ok(Operator {
            id: id.clone(),
            name,
            created_at: created_at.0,
        })
    }

    /// Registers a site and returns it with its edge credential (shown this once).
    pub async fn create_site(&self, new: &NewSite) -> StoreResult<(Site, Secret)> {
        check_name(&new.name, "site name")?;
        check_time_zone(&new.time_zone)?;
        let secret = new_secret();
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d| {
            sqlx::query(
                "INSERT INTO sites (id, operator_id, name, time_zone, edge_credential_hash, config_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
            )
            .bind(new.id.as_str())
            .bind(new.operator.as_str())
            .bind(&new.name)
            .bind(&new.time_zone)
            .bind(hash_secret(&secret))
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| StoreError::on_insert(e, "site", new.id.as_str()))?;
        });
        let site = Site {
            id: new.id.clone(),
            operator: new.operator.clone(),
            name: new.name.clone(),
            time_zone: new.time_zone.clone(),
            config_version: 1,
            created_at: now.0,
            updated_at: now.0,
        };
        Ok((site, Secret(secret)))
    }

    /// A site by id.
    pub async fn get_site(&self, id: &SiteId) -> StoreResult<Site> {
        let row: Option<SiteRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(SITE_BY_ID)
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
        });
        site_from_row(row.ok_or_else(|| StoreError::not_found("site", id))?)
    }

    /// The sites of an operator, by id.
    pub async fn list_sites(&self, operator: &OperatorId) -> StoreResult<Vec<Site>> {
        let rows: Vec<SiteRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(SITES_OF_OPERATOR)
                .bind(operator.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(site_from_row).collect()
    }

    /// True if `secret` is the site's edge credential (constant-time comparison).
    pub async fn verify_edge_credential(&self, site: &SiteId, secret: &str) -> StoreResult<bool> {
        let hash: Option<String> = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT edge_credential_hash FROM sites WHERE id = $1")
                .bind(site.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(hash.is_some_and(|h| verify_hash(secret, &h)))
    }

    /// Bumps the site's configuration version (the edge then fetches its configuration) and
    /// returns the new version.
    pub async fn bump_config_version(&self, site: &SiteId) -> StoreResult<u64> {
        let now = DbTime::from(Timestamp::now());
        let v: Option<i64> = with_pool!(self, |pool, d| {
            sqlx::query_scalar(
                "UPDATE sites SET config_version = config_version + 1, updated_at = $2 WHERE id = $1 RETURNING config_version",
            )
            .bind(site.as_str())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        to_u64(
            v.ok_or_else(|| StoreError::not_found("site", site))?,
            "config version",
        )
    }

    /// The site's grid connection limit, if one is set.
    pub async fn site_power_limit(&self, site: &SiteId) -> StoreResult<Option<Power>> {
        let row: Option<Option<i64>> = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT max_power_w FROM sites WHERE id = $1")
                .bind(site.as_str())
                .fetch_optional(pool)
                .await?
        });
        let watts = row.ok_or_else(|| StoreError::not_found("site", site))?;
        Ok(watts.map(Power::from_watts))
    }

    /// Sets (or clears, with `None`) the site's grid connection limit and bumps its
    /// configuration version; returns the new version.
    pub async fn set_site_power_limit(
        &self,
        site: &SiteId,
        limit: Option<Power>,
    ) -> StoreResult<u64> {
        if limit.is_some_and(|p| p.watts() <= 0) {
            return Err(StoreError::invalid(
                "site power limit",
                "the limit must be above 0 W: clear it instead of setting 0",
            ));
        }
        let now = DbTime::from(Timestamp::now());
        let v: Option<i64> = with_pool!(self, |pool, d| {
            sqlx::query_scalar(
                "UPDATE sites SET max_power_w = $2, config_version = config_version + 1, updated_at = $3 \
                 WHERE id = $1 RETURNING config_version",
            )
            .bind(site.as_str())
            .bind(limit.map(Power::watts))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        to_u64(
            v.ok_or_else(|| StoreError::not_found("site", site))?,
            "config version",
        )
    }

    /// Registers a driver account, scoped to `operator` or platform-wide.
    pub async fn create_account(
        &self,
        id: &AccountId,
        operator: Option<&OperatorId>,
        name: &str,
    ) -> StoreResult<Account> {
        check_name(name, "account name")?;
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d| {
            sqlx::query(
                "INSERT INTO accounts (id, operator_id, name, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id.as_str())
            .bind(operator.map(|o| o.as_str()))
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map_err(|e| StoreError::on_insert(e, "account", id.as_str()))?;
        });
        Ok(Account {
            id: id.clone(),
            operator: operator.cloned(),
            name: name.to_owned(),
            created_at: now.0,
        })
    }

    /// An account by id.
    pub async fn get_account(&self, id: &AccountId) -> StoreResult<Account> {
        let row: Option<(Option<String>, String, DbTime)> = with_pool!(self, |pool, d| {
            sqlx::query_as("SELECT operator_id, name, created_at FROM accounts WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?
        });
        let (operator, name, created_at) =
            row.ok_or_else(|| StoreError::not_found("account", id))?;
        Ok(Account {
            id: id.clone(),
            operator: operator
                .map(|o| parse_stored(&o, "operator id"))
                .transpose()?,
            name,
            created_at: created_at.0,
        })
    }

    /// Renames a site or moves it to another time zone; bumps its configuration version (the
    /// edge evaluates tariffs in the site's zone, so it must fetch the change).
    pub async fn update_site(&self, id: &SiteId, name: &str, time_zone: &str) -> StoreResult<Site> {
        check_name(name, "site name")?;
        check_time_zone(time_zone)?;
        let now = DbTime::from(Timestamp::now());
        let done = with_pool!(self, |pool, d| {
            sqlx::query(
                "UPDATE sites SET name = $2, time_zone = $3, config_version = config_version + 1, updated_at = $4 \
                 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(name)
            .bind(time_zone)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::not_found("site", id));
        }
        self.get_site(id).await
    }

    /// The accounts an operator scopes, by id.
    pub async fn list_accounts(&self, operator: &OperatorId) -> StoreResult<Vec<Account>> {
        let rows: Vec<(String, String, DbTime)> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT id, name, created_at FROM accounts WHERE operator_id = $1 ORDER BY id",
            )
            .bind(operator.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, name, created_at)| {
                Ok(Account {
                    id: parse_stored(&id, "account id")?,
                    operator: Some(operator.clone()),
                    name,
                    created_at: created_at.0,
                })
            })
            .collect()
    }
}

//! Versioned tariffs and their assignment to sites.
//!
//! A tariff version is an immutable row holding the serialised
//! [`Tariff`] (its own version number is the row's); a new
//! price is a new version. Assigning a version to a site from an instant on bumps the site's
//! `config_version` in the same transaction, which is what tells the edge to fetch its
//! configuration again. Settlement prices a session with the version in force at its start
//! ([`Store::tariff_for_site`]).

use jiff::Timestamp;
use sqlx::types::Json;
use voltline_protocol::domain::{OperatorId, SiteId};
use voltline_protocol::tariff::{Tariff, TariffVersion};

use super::types::DbTime;
use super::{parse_stored, to_u64, with_pool, Store, StoreError, StoreResult};
use super::{TariffAssignment, TariffRecord};
use crate::domain::OrderKind;

type TariffRow = (String, String, Json<Tariff>, DbTime, DbTime);

fn tariff_from_row(r: TariffRow) -> StoreResult<TariffRecord> {
    Ok(TariffRecord {
        tariff_id: r.0,
        operator: parse_stored(&r.1, "operator id")?,
        tariff: r.2 .0,
        effective_from: r.3 .0,
        created_at: r.4 .0,
    })
}

/// A tariff id: like the platform ids, 1-64 of `A-Z a-z 0-9 - _ .`.
fn check_tariff_id(id: &str) -> StoreResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "tariff id",
            format!("'{id}': use 1-64 characters from A-Z a-z 0-9 - _ ."),
        ))
    }
}

impl Store {
    /// Stores a new version of an operator's tariff. The version is the tariff's own and must
    /// be above every stored version of `tariff_id`; a tariff id belongs to one operator.
    pub async fn create_tariff_version(
        &self,
        tariff_id: &str,
        operator: &OperatorId,
        tariff: &Tariff,
        effective_from: Timestamp,
    ) -> StoreResult<TariffRecord> {
        check_tariff_id(tariff_id)?;
        let version = i64::from(tariff.version().0);
        let now = DbTime::from(Timestamp::now());
        let effective = DbTime::from(effective_from);
        with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let latest: Option<(i64, String)> = sqlx::query_as(
                "SELECT version, operator_id FROM tariffs WHERE tariff_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(tariff_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((latest, owner)) = latest {
                if owner != operator.as_str() {
                    return Err(StoreError::invalid(
                        "tariff",
                        format!("tariff '{tariff_id}' belongs to another operator: choose another tariff id"),
                    ));
                }
                if version == latest {
                    // A repeat of the version stored last (a retried or re-run seeding):
                    // it exists, whatever its content, and is never edited.
                    return Err(StoreError::Duplicate {
                        what: "tariff version",
                        id: format!("{tariff_id} {}", tariff.version()),
                    });
                }
                if version < latest {
                    return Err(StoreError::invalid(
                        "tariff version",
                        format!("tariff '{tariff_id}' has version v{latest}; a new version must be above it (versions are never edited)"),
                    ));
                }
            }
            sqlx::query(
                "INSERT INTO tariffs (tariff_id, version, operator_id, tariff, effective_from, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tariff_id)
            .bind(version)
            .bind(operator.as_str())
            .bind(Json(tariff))
            .bind(effective)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_insert(e, "tariff version", &format!("{tariff_id} {}", tariff.version())))?;
            tx.commit().await?;
        });
        Ok(TariffRecord {
            tariff_id: tariff_id.to_owned(),
            operator: operator.clone(),
            tariff: tariff.clone(),
            effective_from: effective.0,
            created_at: now.0,
        })
    }

    /// One version of a tariff.
    pub async fn get_tariff(
        &self,
        tariff_id: &str,
        version: TariffVersion,
    ) -> StoreResult<TariffRecord> {
        let row: Option<TariffRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT tariff_id, operator_id, tariff, effective_from, created_at FROM tariffs WHERE tariff_id = $1 AND version = $2",
            )
            .bind(tariff_id)
            .bind(i64::from(version.0))
            .fetch_optional(pool)
            .await?
        });
        tariff_from_row(row.ok_or_else(|| {
            StoreError::not_found("tariff version", format!("{tariff_id} {version}"))
        })?)
    }

    /// Assigns a tariff version to a site from `effective_from` on (replacing an assignment
    /// at the same instant) and bumps the site's configuration version. The tariff must
    /// belong to the site's operator.
    pub async fn assign_tariff(&self, a: &TariffAssignment) -> StoreResult<u64> {
        let now = DbTime::from(Timestamp::now());
        let version = i64::from(a.version.0);
        with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let owners: Option<(String, String)> = sqlx::query_as(
                "SELECT t.operator_id, s.operator_id FROM tariffs t, sites s \
                 WHERE t.tariff_id = $1 AND t.version = $2 AND s.id = $3",
            )
            .bind(&a.tariff_id)
            .bind(version)
            .bind(a.site.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((tariff_owner, site_owner)) = owners else {
                return Err(StoreError::not_found(
                    "site or tariff version",
                    format!("{} / {} {}", a.site, a.tariff_id, a.version),
                ));
            };
            if tariff_owner != site_owner {
                return Err(StoreError::invalid(
                    "tariff assignment",
                    format!("tariff '{}' belongs to operator {tariff_owner}, site {} to {site_owner}: assign one of the site operator's tariffs", a.tariff_id, a.site),
                ));
            }
            sqlx::query(
                "INSERT INTO site_tariffs (site_id, kind, effective_from, tariff_id, version, assigned_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (site_id, kind, effective_from) DO UPDATE \
                 SET tariff_id = excluded.tariff_id, version = excluded.version, assigned_at = excluded.assigned_at",
            )
            .bind(a.site.as_str())
            .bind(a.kind.as_str())
            .bind(DbTime::from(a.effective_from))
            .bind(&a.tariff_id)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let config: i64 = sqlx::query_scalar(
                "UPDATE sites SET config_version = config_version + 1, updated_at = $2 WHERE id = $1 RETURNING config_version",
            )
            .bind(a.site.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            to_u64(config, "config version")
        })
    }

    /// The tariff in force at a site for `kind` at instant `at`, if one is assigned.
    pub async fn tariff_for_site(
        &self,
        site: &SiteId,
        kind: OrderKind,
        at: Timestamp,
    ) -> StoreResult<Option<TariffRecord>> {
        let row: Option<TariffRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT t.tariff_id, t.operator_id, t.tariff, t.effective_from, t.created_at \
                 FROM site_tariffs a JOIN tariffs t ON t.tariff_id = a.tariff_id AND t.version = a.version \
                 WHERE a.site_id = $1 AND a.kind = $2 AND a.effective_from <= $3 \
                 ORDER BY a.effective_from DESC LIMIT 1",
            )
            .bind(site.as_str())
            .bind(kind.as_str())
            .bind(DbTime::from(at))
            .fetch_optional(pool)
            .await?
        });
        row.map(tariff_from_row).transpose()
    }
}

//! Chargers of the registry: registration (with a credential), reads, removal, and the
//! charger list an edge caches ([`Store::charger_grants`]).
//!
//! A charger's credential is its MQTT password at the site's edge. Only its lower-case hex
//! SHA-256 is stored (`chargers.credential_hash`, the same hash as every other secret here,
//! see `tokens.rs`), and that hash is what the edge receives in its site configuration: the
//! edge's `ChargerDirectory::verify_mqtt` hashes the password a charger logs in with and
//! compares. The secret itself is returned once, at registration.
//!
//! Registering or removing a charger bumps its site's `config_version` in the same database
//! transaction, so the edge learns that its charger list moved.

use jiff::Timestamp;
use voltline_protocol::domain::{PileCode, SiteId};
use voltline_protocol::sync::ChargerGrant;

use super::tokens::{hash_secret, new_secret, verify_hash};
use super::types::DbTime;
use super::{parse_stored, to_u64, with_pool, Store, StoreError, StoreResult};
use super::{Charger, NewCharger, Secret};

type ChargerRow = (String, String, i64, DbTime);

const BUMP_SITE: &str = "UPDATE sites SET config_version = config_version + 1, updated_at = $2 \
     WHERE id = $1 RETURNING config_version";

fn charger_from_row(r: ChargerRow) -> StoreResult<Charger> {
    Ok(Charger {
        pile: parse_stored(&r.0, "pile code")?,
        site: parse_stored(&r.1, "site id")?,
        connectors: u8::try_from(r.2)
            .map_err(|_| StoreError::corrupt(format!("connector count {}", r.2)))?,
        created_at: r.3 .0,
    })
}

impl Store {
    /// Registers a charger and returns it with its credential (shown this once). Bumps the
    /// site's configuration version.
    pub async fn create_charger(&self, new: &NewCharger) -> StoreResult<(Charger, Secret)> {
        if !(1..=99).contains(&new.connectors) {
            return Err(StoreError::invalid(
                "charger",
                format!("{} connectors: a pile has 1-99", new.connectors),
            ));
        }
        let secret = new_secret();
        let now = DbTime::from(Timestamp::now());
        let pile = new.pile.to_string();
        with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(
                "INSERT INTO chargers (pile_code, site_id, connector_count, credential_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&pile)
            .bind(new.site.as_str())
            .bind(i64::from(new.connectors))
            .bind(hash_secret(&secret))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_insert(e, "charger", &pile))?;
            let _: i64 = sqlx::query_scalar(BUMP_SITE)
                .bind(new.site.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        let charger = Charger {
            pile: new.pile,
            site: new.site.clone(),
            connectors: new.connectors,
            created_at: now.0,
        };
        Ok((charger, Secret(secret)))
    }

    /// A charger by pile code.
    pub async fn get_charger(&self, pile: &PileCode) -> StoreResult<Charger> {
        let row: Option<ChargerRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT pile_code, site_id, connector_count, created_at FROM chargers WHERE pile_code = $1",
            )
            .bind(pile.to_string())
            .fetch_optional(pool)
            .await?
        });
        charger_from_row(row.ok_or_else(|| StoreError::not_found("charger", pile))?)
    }

    /// The chargers of a site, by pile code.
    pub async fn list_chargers(&self, site: &SiteId) -> StoreResult<Vec<Charger>> {
        let rows: Vec<ChargerRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT pile_code, site_id, connector_count, created_at FROM chargers WHERE site_id = $1 ORDER BY pile_code",
            )
            .bind(site.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(charger_from_row).collect()
    }

    /// The chargers of a site as its edge caches them: pile, connectors and the lower-case
    /// hex SHA-256 of the charger's credential, by pile code, at most `max`.
    pub async fn charger_grants(
        &self,
        site: &SiteId,
        max: usize,
    ) -> StoreResult<Vec<ChargerGrant>> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows: Vec<(String, i64, String)> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT pile_code, connector_count, credential_hash FROM chargers WHERE site_id = $1 \
                 ORDER BY pile_code LIMIT $2",
            )
            .bind(site.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(pile, connectors, hash)| {
                Ok(ChargerGrant {
                    pile: parse_stored(&pile, "pile code")?,
                    connectors: u8::try_from(connectors).map_err(|_| {
                        StoreError::corrupt(format!("charger {pile}: connector count {connectors}"))
                    })?,
                    credential_sha256: hash.to_ascii_lowercase(),
                })
            })
            .collect()
    }

    /// True if `secret` is the charger's credential (constant-time comparison).
    pub async fn verify_charger_credential(
        &self,
        pile: &PileCode,
        secret: &str,
    ) -> StoreResult<bool> {
        let hash: Option<String> = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT credential_hash FROM chargers WHERE pile_code = $1")
                .bind(pile.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(hash.is_some_and(|h| verify_hash(secret, &h)))
    }

    /// Removes a charger that no order refers to (a charger with history is kept for
    /// settlement and audit: re-register it at its new site instead). Bumps its site's
    /// configuration version and returns the new one.
    pub async fn delete_charger(&self, pile: &PileCode) -> StoreResult<u64> {
        let pile = pile.to_string();
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let site: Option<String> =
                sqlx::query_scalar("DELETE FROM chargers WHERE pile_code = $1 RETURNING site_id")
                    .bind(&pile)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::on_insert(e, "charger", &pile) {
                        StoreError::Invalid { what, .. } => StoreError::Invalid {
                            what,
                            reason: format!(
                                "charger {pile} has orders and is kept for settlement and audit"
                            ),
                        },
                        other => other,
                    })?;
            let Some(site) = site else {
                return Err(StoreError::not_found("charger", pile));
            };
            let version: i64 = sqlx::query_scalar(BUMP_SITE)
                .bind(&site)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            to_u64(version, "config version")
        })
    }
}

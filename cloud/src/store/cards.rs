//! Cards: a YKC physical card number belongs to one driver account and carries the most one
//! session it starts at a pile without the cloud (offline) may cost.
//!
//! A site's edge caches the cards of every account the site's operator scopes
//! ([`Store::site_cards`]); cards of platform-wide accounts are not sent to any edge (they
//! start sessions through the cloud only). Registering or removing a card bumps the
//! `config_version` of every site of the account's operator in the same database
//! transaction, and returns those sites so the caller can tell their edges.
//!
//! A card number is unique across the platform: registering a card another account holds
//! is a duplicate (409), never a silent move.

use jiff::Timestamp;
use voltline_protocol::domain::{AccountId, SiteId};
use voltline_protocol::message::common::PhysicalCardNo;

use super::types::{DbMoney, DbTime};
use super::{parse_stored, to_u64, with_pool, Store, StoreError, StoreResult};
use super::{Card, ConfigBump, NewCard};

type CardRow = (String, String, DbMoney, DbTime);

/// Bumps every site of the operator that scopes account `$1`.
const BUMP_OPERATOR_SITES: &str =
    "UPDATE sites SET config_version = config_version + 1, updated_at = $2 \
     WHERE operator_id = (SELECT operator_id FROM accounts WHERE id = $1) \
     RETURNING id, config_version";

fn card_from_row(r: CardRow) -> StoreResult<Card> {
    Ok(Card {
        card: parse_stored(&r.0, "card number")?,
        account: parse_stored(&r.1, "account id")?,
        offline_limit: r.2 .0,
        created_at: r.3 .0,
    })
}

fn bumps(rows: Vec<(String, i64)>) -> StoreResult<Vec<ConfigBump>> {
    rows.into_iter()
        .map(|(site, v)| {
            Ok(ConfigBump {
                site: parse_stored(&site, "site id")?,
                config_version: to_u64(v, "config version")?,
            })
        })
        .collect()
}

impl Store {
    /// Registers a card for an account; returns it and the sites whose configuration moved.
    pub async fn create_card(&self, new: &NewCard) -> StoreResult<(Card, Vec<ConfigBump>)> {
        if new.card.is_none() {
            return Err(StoreError::invalid(
                "card",
                "card number 0000000000000000 means 'no card': give the number the reader reports",
            ));
        }
        if new.offline_limit.is_negative() {
            return Err(StoreError::invalid(
                "card",
                format!(
                    "offline limit {} is negative: give 0 (no offline sessions) or more",
                    new.offline_limit
                ),
            ));
        }
        let now = DbTime::from(Timestamp::now());
        let card_no = new.card.to_string();
        let rows: Vec<(String, i64)> = with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1")
                    .bind(new.account.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(StoreError::not_found("account", &new.account));
            }
            sqlx::query(
                "INSERT INTO cards (card_no, account_id, offline_limit, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&card_no)
            .bind(new.account.as_str())
            .bind(DbMoney(new.offline_limit))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::on_insert(e, "card", &card_no))?;
            let rows = sqlx::query_as(BUMP_OPERATOR_SITES)
                .bind(new.account.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        });
        let card = Card {
            card: new.card,
            account: new.account.clone(),
            offline_limit: new.offline_limit,
            created_at: now.0,
        };
        Ok((card, bumps(rows)?))
    }

    /// The cards of an account, by card number.
    pub async fn list_cards(&self, account: &AccountId) -> StoreResult<Vec<Card>> {
        let rows: Vec<CardRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT card_no, account_id, offline_limit, created_at FROM cards \
                 WHERE account_id = $1 ORDER BY card_no",
            )
            .bind(account.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(card_from_row).collect()
    }

    /// A card by number.
    pub async fn get_card(&self, card: &PhysicalCardNo) -> StoreResult<Card> {
        let row: Option<CardRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT card_no, account_id, offline_limit, created_at FROM cards WHERE card_no = $1",
            )
            .bind(card.to_string())
            .fetch_optional(pool)
            .await?
        });
        card_from_row(row.ok_or_else(|| StoreError::not_found("card", card))?)
    }

    /// Removes `account`'s card (not found when the account does not hold it); returns the
    /// sites whose configuration moved.
    pub async fn delete_card(
        &self,
        account: &AccountId,
        card: &PhysicalCardNo,
    ) -> StoreResult<Vec<ConfigBump>> {
        let now = DbTime::from(Timestamp::now());
        let card_no = card.to_string();
        let rows: Vec<(String, i64)> = with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query("DELETE FROM cards WHERE card_no = $1 AND account_id = $2")
                .bind(&card_no)
                .bind(account.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::not_found(
                    "card",
                    format!("{card_no} of account {account}"),
                ));
            }
            let rows = sqlx::query_as(BUMP_OPERATOR_SITES)
                .bind(account.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        });
        bumps(rows)
    }

    /// The cards a site's edge may accept: those of every account the site's operator
    /// scopes, by card number, at most `max`.
    pub async fn site_cards(&self, site: &SiteId, max: usize) -> StoreResult<Vec<Card>> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows: Vec<CardRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT c.card_no, c.account_id, c.offline_limit, c.created_at FROM cards c \
                 JOIN accounts a ON a.id = c.account_id \
                 JOIN sites s ON s.operator_id = a.operator_id \
                 WHERE s.id = $1 ORDER BY c.card_no LIMIT $2",
            )
            .bind(site.as_str())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(card_from_row).collect()
    }
}

//! Bearer tokens, stored hashed.
//!
//! A token reads `vlt_<id>.<secret>`: `id` finds the row, `secret` is 32 random bytes
//! (base64url). Only SHA-256(secret) is stored, and it is compared in constant time, so the
//! database never holds a usable token and a lookup never leaks how much of a guess matched.
//! The same hashing serves the edge and charger credentials of the registry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jiff::Timestamp;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::types::DbTime;
use super::{
    parse_stored, with_pool, IssuedToken, NewToken, Secret, Store, StoreError, StoreResult,
    TokenInfo,
};
use crate::domain::{Actor, Role};

/// Random bytes in a secret.
const SECRET_BYTES: usize = 32;
/// The prefix of every bearer token (lets secret scanners find leaked ones).
const TOKEN_PREFIX: &str = "vlt_";
/// Longest label.
const MAX_LABEL_CHARS: usize = 200;

/// A fresh random secret, base64url without padding.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `secret`, lowercase hex.
pub(crate) fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// True if `secret` hashes to `stored_hash`.
pub(crate) fn verify_hash(secret: &str, stored_hash: &str) -> bool {
    constant_time_eq(hash_secret(secret).as_bytes(), stored_hash.as_bytes())
}

/// Splits `vlt_<id>.<secret>`.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (id_ok && !secret.is_empty()).then_some((id, secret))
}

type TokenRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    DbTime,
    Option<DbTime>,
    Option<DbTime>,
);

fn token_from_row(r: TokenRow) -> StoreResult<(TokenInfo, String)> {
    let (id, hash, role, subject, label, created_at, expires_at, revoked_at) = r;
    let role: Role = parse_stored(&role, "token role")?;
    let actor = Actor::from_parts(role, subject.as_deref())
        .map_err(|e| StoreError::corrupt(format!("token {id}: {e}")))?;
    let info = TokenInfo {
        id,
        actor,
        label,
        created_at: created_at.0,
        expires_at: expires_at.map(|t| t.0),
        revoked_at: revoked_at.map(|t| t.0),
    };
    Ok((info, hash))
}

impl Store {
    /// Issues a token. The bearer text is returned once and never stored.
    pub async fn create_token(&self, new: &NewToken) -> StoreResult<IssuedToken> {
        if new.label.chars().count() > MAX_LABEL_CHARS {
            return Err(StoreError::invalid(
                "token label",
                format!("at most {MAX_LABEL_CHARS} characters"),
            ));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let secret = new_secret();
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d| {
            sqlx::query(
                "INSERT INTO tokens (id, secret_hash, role, subject, label, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(hash_secret(&secret))
            .bind(new.actor.role().as_str())
            .bind(new.actor.subject())
            .bind(&new.label)
            .bind(now)
            .bind(new.expires_at.map(DbTime::from))
            .execute(pool)
            .await
            .map_err(|e| StoreError::on_insert(e, "token", &id))?;
        });
        Ok(IssuedToken {
            secret: Secret(format!("{TOKEN_PREFIX}{id}.{secret}")),
            id,
        })
    }

    /// The actor a bearer token stands for, or `None` when the token is unknown, malformed,
    /// revoked or expired at `now` (the caller answers 401 alike for all of them).
    pub async fn verify_token(&self, token: &str, now: Timestamp) -> StoreResult<Option<Actor>> {
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        let Some(info) = self.token_row(id).await? else {
            // Hash anyway so an unknown id costs what a known one does.
            let _ = verify_hash(secret, "");
            return Ok(None);
        };
        let (info, hash) = info;
        let matches = verify_hash(secret, &hash);
        let live = info.revoked_at.is_none() && info.expires_at.is_none_or(|e| now < e);
        Ok((matches && live).then_some(info.actor))
    }

    /// What the store knows about a token.
    pub async fn get_token(&self, id: &str) -> StoreResult<TokenInfo> {
        self.token_row(id)
            .await?
            .map(|(info, _)| info)
            .ok_or_else(|| StoreError::not_found("token", id))
    }

    async fn token_row(&self, id: &str) -> StoreResult<Option<(TokenInfo, String)>> {
        let row: Option<TokenRow> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT id, secret_hash, role, subject, label, created_at, expires_at, revoked_at FROM tokens WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(token_from_row).transpose()
    }

    /// Revokes a token from now on. Revoking twice keeps the first instant.
    pub async fn revoke_token(&self, id: &str) -> StoreResult<()> {
        let now = DbTime::from(Timestamp::now());
        let done = with_pool!(self, |pool, d| {
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::not_found("token", id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_to_sha256_hex() {
        let a = new_secret();
        assert_ne!(a, new_secret());
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), SECRET_BYTES);
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify_hash("abc", &hash_secret("abc")));
        assert!(!verify_hash("abd", &hash_secret("abc")));
        assert!(!verify_hash("abc", ""));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn tokens_split_into_id_and_secret() {
        assert_eq!(split_token("vlt_abc.s3cr3t"), Some(("abc", "s3cr3t")));
        assert_eq!(split_token("vlt_abc"), None);
        assert_eq!(split_token("abc.def"), None);
        assert_eq!(split_token("vlt_.x"), None);
        assert_eq!(split_token("vlt_a'b.x"), None);
    }
}

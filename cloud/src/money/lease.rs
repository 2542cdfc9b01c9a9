//! The optional Redis lease per hot account (`SET key token NX PX ttl`).
//!
//! It only cuts retries between cloud instances: an instance that holds an account's lease
//! writes it without racing the others, and the others wait (bounded) instead of losing
//! version races. Correctness never depends on it: the lease's random token is written with
//! the account row, and a write made after the lease was lost (expired during a pause) is
//! still fenced by the `version` condition — it conflicts and replays on fresh rows.

use std::time::Duration;

use rand::RngCore;
use redis::aio::MultiplexedConnection;

use super::MoneyError;

/// Most attempts to take a held lease before writing without it.
const MAX_WAIT_ROUNDS: u32 = 20;
/// Pause between attempts.
const WAIT_STEP: Duration = Duration::from_millis(2);

/// Leases taken for one batch: one token, the keys it holds.
#[derive(Debug, Clone)]
pub struct Lease {
    token: String,
    keys: Vec<String>,
}

impl Lease {
    /// The fencing token written with the account rows.
    pub fn token(&self) -> &str {
        &self.token
    }
    /// The Redis keys held.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Takes and releases account leases in Redis.
#[derive(Clone)]
pub struct LeaseManager {
    conn: MultiplexedConnection,
    ttl_ms: u64,
    prefix: String,
}

impl LeaseManager {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); leases expire after `ttl`.
    pub async fn connect(
        url: &str,
        ttl: Duration,
        prefix: &str,
    ) -> Result<LeaseManager, MoneyError> {
        let client = redis::Client::open(url).map_err(|e| MoneyError::Lease(e.to_string()))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| MoneyError::Lease(e.to_string()))?;
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(10, 60_000);
        Ok(LeaseManager {
            conn,
            ttl_ms,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, account: &str) -> String {
        format!("{}lease:{account}", self.prefix)
    }

    /// Tries once to take `account`'s lease under `token`.
    pub async fn try_acquire(&self, account: &str, token: &str) -> Result<bool, MoneyError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(account))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| MoneyError::Lease(e.to_string()))?;
        Ok(set.is_some())
    }

    /// The token holding `account`'s lease now, if any.
    pub async fn holder(&self, account: &str) -> Result<Option<String>, MoneyError> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.key(account))
            .query_async(&mut conn)
            .await
            .map_err(|e| MoneyError::Lease(e.to_string()))
    }

    /// Releases `account`'s lease if `token` still holds it (compare-and-delete).
    pub async fn release(&self, account_key: &str, token: &str) -> Result<bool, MoneyError> {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
        );
        let n: i64 = script
            .key(account_key)
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| MoneyError::Lease(e.to_string()))?;
        Ok(n == 1)
    }

    /// Takes the leases of `accounts` under one fresh token, waiting a bounded time for each
    /// held one. Accounts whose lease stays held (or Redis errors) are written without it:
    /// the version check still decides. `None` when there is nothing to lease.
    pub async fn acquire_all(&self, accounts: &[String]) -> Option<Lease> {
        if accounts.is_empty() {
            return None;
        }
        let token = new_token();
        let mut keys = Vec::new();
        for account in accounts {
            for _ in 0..MAX_WAIT_ROUNDS {
                match self.try_acquire(account, &token).await {
                    Ok(true) => {
                        keys.push(self.key(account));
                        break;
                    }
                    Ok(false) => tokio::time::sleep(WAIT_STEP).await,
                    Err(e) => {
                        // The SET may have taken effect before the reply was lost (a response
                        // timeout): release by token anyway; compare-and-delete is harmless if
                        // we never held it.
                        tracing::warn!(%e, "redis lease unavailable; writing under the version check only");
                        keys.push(self.key(account));
                        break;
                    }
                }
            }
        }
        Some(Lease { token, keys })
    }

    /// Releases what `acquire_all` took.
    pub async fn release_all(&self, lease: Lease) {
        for key in &lease.keys {
            let r = self.release(key, &lease.token).await;
            if let Err(e) = r {
                tracing::warn!(%e, "could not release a redis lease; it expires on its own");
            }
        }
    }
}

/// A random 128-bit token, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

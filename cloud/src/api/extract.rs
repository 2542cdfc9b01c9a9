//! Extractors: the authenticated [`Caller`] and JSON, path and query extractors whose
//! rejections are problem details.
//!
//! Authentication: `Authorization: Bearer vlt_<id>.<secret>` is checked against the store's
//! hashed tokens. Verified tokens are cached for [`TOKEN_CACHE_TTL`] so a busy client does not
//! cost a database read and a hash per request; a revoked token therefore works for at most
//! that long after revocation. Every authenticated request also takes one unit from the
//! token's bucket in the [`RateLimiter`] (429 when empty).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use jiff::Timestamp;

use super::error::ApiError;
use super::AppState;
use crate::domain::Actor;

/// How long a verified token is trusted without asking the store again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most tokens cached.
pub const TOKEN_CACHE_CAPACITY: u64 = 100_000;

/// A JSON body; a malformed one is a 400/415/422 problem.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters; malformed ones are a 400 problem.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters; malformed ones are a 400 problem.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

/// Verified tokens: bearer text → actor.
pub type TokenCache = moka::future::Cache<String, Actor>;

/// A new token cache.
pub fn token_cache() -> TokenCache {
    moka::future::Cache::builder()
        .max_capacity(TOKEN_CACHE_CAPACITY)
        .time_to_live(TOKEN_CACHE_TTL)
        .build()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let actor = match state.tokens.get(token).await {
            Some(actor) => actor,
            None => {
                let actor = state
                    .store
                    .verify_token(token, Timestamp::now())
                    .await?
                    .ok_or_else(ApiError::unauthorized)?;
                state.tokens.insert(token.to_owned(), actor.clone()).await;
                actor
            }
        };
        if !state.limiter.take(token) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "too many requests for this token: slow down and retry in a second",
            ));
        }
        Ok(Caller(actor))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A token bucket per key: `rate_per_s` sustained, `burst` at once. Buckets live in a
/// bounded cache (idle ones are dropped after a minute), so the limiter's memory is bounded.
#[derive(Clone)]
pub struct RateLimiter {
    buckets: moka::sync::Cache<String, Arc<std::sync::Mutex<Bucket>>>,
    rate_per_s: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_s: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            buckets: moka::sync::Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            rate_per_s: f64::from(rate_per_s.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Takes one unit for `key`; false when its bucket is empty.
    pub fn take(&self, key: &str) -> bool {
        let burst = self.burst;
        let bucket = self.buckets.get_with_by_ref(key, || {
            Arc::new(std::sync::Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }))
        });
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate_per_s;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refuses() {
        let l = RateLimiter::new(1, 3);
        assert!(l.take("a") && l.take("a") && l.take("a"));
        assert!(!l.take("a"));
        assert!(l.take("b"), "buckets are per key");
    }
}

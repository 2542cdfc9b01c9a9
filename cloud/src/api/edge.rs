//! The edge's HTTP sync routes: bulk record replay after an outage (gzip-compressed batches,
//! `Content-Encoding: gzip`, decompressed by the server's decompression layer within the body
//! limit) and the site configuration the edge caches for offline operation.
//!
//! Only the site's own edge token (or an admin) passes: a token for site A posting to
//! `/v1/edges/B/...` is 403, and a batch whose `site` field differs from the path is 422.

use axum::extract::State;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, SiteId};
use voltline_protocol::sync::{Ack, RecordBatch, MAX_HTTP_BATCH_RECORDS, V1};
use voltline_protocol::tariff::Tariff;

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use crate::domain::{Action, OrderKind, Resource};
use crate::state::AppState;
use crate::sync::{apply_batch, BatchRejected};

/// Most accounts listed in one site configuration.
const MAX_AUTHORISED_ACCOUNTS: usize = 100_000;

/// `POST /v1/edges/{site}/records`: commits the batch, answers the cumulative ack.
pub async fn post_records(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(site): Path<SiteId>,
    Json(batch): Json<RecordBatch>,
) -> ApiResult<Json<Ack>> {
    state.authorize(&actor, Action::Sync, &Resource::SiteSync(site.clone()))?;
    state.site_operator(&site).await?;
    match apply_batch(&state, &site, &batch, MAX_HTTP_BATCH_RECORDS, "http").await {
        Ok(ack) => Ok(Json(ack)),
        Err(BatchRejected::Contract(e)) => Err(ApiError::unprocessable(e.to_string())),
        Err(BatchRejected::Store(e)) => Err(e.into()),
    }
}

/// What an edge caches to run offline.
#[derive(Debug, Serialize, Deserialize)]
pub struct EdgeConfig {
    pub v: V1,
    pub site: SiteId,
    /// Bumped by the cloud whenever anything below changes.
    pub config_version: u64,
    pub time_zone: String,
    /// The charge tariff in force now, if one is assigned.
    pub charge_tariff: Option<Tariff>,
    /// The discharge (feed-in) tariff in force now, if one is assigned.
    pub discharge_tariff: Option<Tariff>,
    /// Accounts the edge may start sessions for while offline: every account the site's
    /// operator scopes.
    pub authorised_accounts: Vec<AccountId>,
    pub limits: EdgeLimits,
}

/// Limits the edge applies to sessions it starts on its own (offline).
#[derive(Debug, Serialize, Deserialize)]
pub struct EdgeLimits {
    /// Yuan an offline session may spend.
    pub default_session_amount_yuan: Decimal,
    /// Seconds a command stays valid.
    pub command_expiry_s: u64,
}

/// `GET /v1/edges/{site}/config`.
pub async fn get_config(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(site): Path<SiteId>,
) -> ApiResult<Json<EdgeConfig>> {
    state.authorize(&actor, Action::Read, &Resource::SiteSync(site.clone()))?;
    let record = state.store.get_site(&site).await?;
    let now = Timestamp::now();
    let charge = state
        .store
        .tariff_for_site(&site, OrderKind::Charge, now)
        .await?;
    let discharge = state
        .store
        .tariff_for_site(&site, OrderKind::Discharge, now)
        .await?;
    let mut accounts = state.store.list_accounts(&record.operator).await?;
    accounts.truncate(MAX_AUTHORISED_ACCOUNTS);
    Ok(Json(EdgeConfig {
        v: V1,
        site,
        config_version: record.config_version,
        time_zone: record.time_zone,
        charge_tariff: charge.map(|t| t.tariff),
        discharge_tariff: discharge.map(|t| t.tariff),
        authorised_accounts: accounts.into_iter().map(|a| a.id).collect(),
        limits: EdgeLimits {
            default_session_amount_yuan: state.config.sessions.default_hold_yuan,
            command_expiry_s: state.config.sessions.command_expiry_s,
        },
    }))
}

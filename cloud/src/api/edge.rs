//! The edge's HTTP sync routes: bulk record replay after an outage (gzip-compressed batches,
//! `Content-Encoding: gzip`, decompressed by the server's decompression layer within the body
//! limit) and the site configuration the edge caches for offline operation.
//!
//! Only the site's own edge token (or an admin) passes: a token for site A posting to
//! `/v1/edges/B/...` is 403, and a batch whose `site` field differs from the path is 422.

use axum::extract::State;
use jiff::Timestamp;
use voltline_protocol::domain::{Money, SiteId};
use voltline_protocol::sync::{
    Ack, CardGrant, RecordBatch, SiteConfigDoc, SiteLimitsDoc, MAX_HTTP_BATCH_RECORDS,
    MAX_SITE_CARDS, MAX_SITE_CHARGERS, V1,
};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use crate::domain::{Action, OrderKind, Resource};
use crate::state::AppState;
use crate::sync::{apply_batch, BatchRejected};

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

/// `GET /v1/edges/{site}/config`: the site's [`SiteConfigDoc`] — its chargers with their
/// credential hashes, the cards of every account the site's operator scopes, the charge and
/// discharge tariffs in force now, its time zone and limits. `config_version` is the site's
/// (bumped by every change to any of these in the store).
pub async fn get_config(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(site): Path<SiteId>,
) -> ApiResult<Json<SiteConfigDoc>> {
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
    let mut chargers = state
        .store
        .charger_grants(&site, MAX_SITE_CHARGERS + 1)
        .await?;
    let mut cards = state.store.site_cards(&site, MAX_SITE_CARDS + 1).await?;
    if chargers.len() > MAX_SITE_CHARGERS || cards.len() > MAX_SITE_CARDS {
        tracing::warn!(%site, max_chargers = MAX_SITE_CHARGERS, max_cards = MAX_SITE_CARDS,
            "the site has more chargers or cards than one configuration carries; the edge gets the first ones by number: split the site or its operator's cards");
        chargers.truncate(MAX_SITE_CHARGERS);
        cards.truncate(MAX_SITE_CARDS);
    }
    let max_site_power = state.store.site_power_limit(&site).await?;
    let sessions = &state.config.sessions;
    let doc = SiteConfigDoc {
        v: V1,
        site,
        config_version: record.config_version,
        time_zone: record.time_zone,
        charge_tariff: charge.map(|t| t.tariff),
        discharge_tariff: discharge.map(|t| t.tariff),
        chargers,
        cards: cards
            .into_iter()
            .map(|c| CardGrant {
                card: c.card,
                account: c.account,
                offline_limit: c.offline_limit,
            })
            .collect(),
        limits: SiteLimitsDoc {
            offline_session_limit: Money::from_yuan(sessions.offline_session_limit_yuan),
            default_session_amount: Money::from_yuan(sessions.default_hold_yuan),
            command_expiry_s: sessions.command_expiry_s,
            max_site_power,
        },
    };
    Ok(Json(doc))
}

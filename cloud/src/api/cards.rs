//! An account's cards: register (`POST /v1/accounts/{id}/cards`), list, and remove
//! (`DELETE /v1/accounts/{id}/cards/{card}`).
//!
//! Who: like the account's other routes — an admin, the operator that scopes the account, and
//! the account's own driver. Registering and removing a card are updates of the account (a
//! driver may block a lost card at once); listing is a read.
//!
//! Every change moves the configuration version of each site of the account's operator, and
//! those sites' edges are told (config notice over MQTT) so they fetch the new card list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, Money};
use voltline_protocol::message::common::PhysicalCardNo;

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::registry::account_resource;
use crate::domain::Action;
use crate::state::AppState;
use crate::store::{Card, ConfigBump, NewCard};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCardBody {
    /// The physical card number as the pile's reader reports it: 16 hex digits.
    pub card: PhysicalCardNo,
    /// The most one offline session of this card may cost (yuan); the configured
    /// `sessions.card_offline_limit_yuan` when absent.
    pub offline_limit: Option<Money>,
}

/// A card as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardView {
    pub card: PhysicalCardNo,
    pub account: AccountId,
    pub offline_limit: Money,
    pub created_at: Timestamp,
}

impl From<&Card> for CardView {
    fn from(c: &Card) -> CardView {
        CardView {
            card: c.card,
            account: c.account.clone(),
            offline_limit: c.offline_limit,
            created_at: c.created_at,
        }
    }
}

async fn authorize_account(
    state: &AppState,
    actor: &crate::domain::Actor,
    id: &AccountId,
    action: Action,
) -> ApiResult<()> {
    let account = state.store.get_account(id).await?;
    state.authorize(actor, action, &account_resource(&account))
}

fn tell_edges(state: &AppState, bumps: &[ConfigBump]) {
    for b in bumps {
        state.config_changed(&b.site, b.config_version);
    }
}

/// `POST /v1/accounts/{id}/cards`.
pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
    Json(body): Json<NewCardBody>,
) -> ApiResult<impl IntoResponse> {
    authorize_account(&state, &actor, &id, Action::Update).await?;
    let offline_limit = body
        .offline_limit
        .unwrap_or_else(|| Money::from_yuan(state.config.sessions.card_offline_limit_yuan));
    if offline_limit.is_negative() {
        return Err(ApiError::unprocessable(
            "offline_limit must be at least 0 (0: the card starts sessions only through the cloud)",
        ));
    }
    let (card, bumps) = state
        .store
        .create_card(&NewCard {
            card: body.card,
            account: id,
            offline_limit,
        })
        .await?;
    tell_edges(&state, &bumps);
    Ok((StatusCode::CREATED, Json(CardView::from(&card))))
}

/// `GET /v1/accounts/{id}/cards`.
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
) -> ApiResult<Json<Vec<CardView>>> {
    authorize_account(&state, &actor, &id, Action::Read).await?;
    let cards = state.store.list_cards(&id).await?;
    Ok(Json(cards.iter().map(CardView::from).collect()))
}

/// `DELETE /v1/accounts/{id}/cards/{card}`.
pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((id, card)): Path<(AccountId, PhysicalCardNo)>,
) -> ApiResult<StatusCode> {
    authorize_account(&state, &actor, &id, Action::Update).await?;
    let bumps = state.store.delete_card(&id, &card).await?;
    tell_edges(&state, &bumps);
    Ok(StatusCode::NO_CONTENT)
}

//! The registry for operators and admins: operators (tenants), sites (with time zone),
//! chargers (pile code, connectors, credential), driver accounts, and versioned tariffs
//! assigned to sites. Each handler reads the resource's owners from the store, then asks
//! `can` before it reads or writes anything else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::tariff::{Tariff, TariffVersion};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::views::{AccountView, ChargerView, OperatorView, SiteView};
use crate::domain::{Action, OrderKind, Resource};
use crate::state::AppState;
use crate::store::{NewCharger, NewSite, TariffAssignment};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOperatorBody {
    pub id: OperatorId,
    pub name: String,
}

/// `POST /v1/operators` (admin).
pub async fn create_operator(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NewOperatorBody>,
) -> ApiResult<impl IntoResponse> {
    state.authorize(&actor, Action::Create, &Resource::Operator(body.id.clone()))?;
    let op = state.store.create_operator(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(OperatorView::from(&op))))
}

/// `GET /v1/operators/{id}`.
pub async fn get_operator(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OperatorId>,
) -> ApiResult<Json<OperatorView>> {
    state.authorize(&actor, Action::Read, &Resource::Operator(id.clone()))?;
    Ok(Json(OperatorView::from(
        &state.store.get_operator(&id).await?,
    )))
}

/// `GET /v1/operators/{id}/sites`.
pub async fn list_sites(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OperatorId>,
) -> ApiResult<Json<Vec<SiteView>>> {
    state.authorize(
        &actor,
        Action::Read,
        &Resource::Site {
            operator: id.clone(),
        },
    )?;
    let sites = state.store.list_sites(&id).await?;
    Ok(Json(sites.iter().map(|s| SiteView::new(s, None)).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSiteBody {
    pub id: SiteId,
    pub operator: OperatorId,
    pub name: String,
    /// IANA zone, e.g. `Asia/Shanghai`.
    pub time_zone: String,
}

/// `POST /v1/sites`: answers the edge credential once.
pub async fn create_site(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NewSiteBody>,
) -> ApiResult<impl IntoResponse> {
    state.authorize(
        &actor,
        Action::Create,
        &Resource::Site {
            operator: body.operator.clone(),
        },
    )?;
    let (site, secret) = state
        .store
        .create_site(&NewSite {
            id: body.id,
            operator: body.operator,
            name: body.name,
            time_zone: body.time_zone,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SiteView::new(&site, Some(secret.expose().to_owned()))),
    ))
}

/// `GET /v1/sites/{id}`.
pub async fn get_site(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<SiteId>,
) -> ApiResult<Json<SiteView>> {
    let site = state.store.get_site(&id).await?;
    state.authorize(
        &actor,
        Action::Read,
        &Resource::Site {
            operator: site.operator.clone(),
        },
    )?;
    Ok(Json(SiteView::new(&site, None)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChargerBody {
    pub pile: PileCode,
    pub site: SiteId,
    pub connectors: u8,
}

/// `POST /v1/chargers`: answers the charger credential once.
pub async fn create_charger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NewChargerBody>,
) -> ApiResult<impl IntoResponse> {
    let operator = state.site_operator(&body.site).await?;
    state.authorize(&actor, Action::Create, &Resource::Charger { operator })?;
    let (charger, secret) = state
        .store
        .create_charger(&NewCharger {
            pile: body.pile,
            site: body.site,
            connectors: body.connectors,
        })
        .await?;
    // The store bumped the site's configuration version with the charger: tell its edge.
    if let Ok(site) = state.store.get_site(&charger.site).await {
        state.config_changed(&site.id, site.config_version);
    }
    Ok((
        StatusCode::CREATED,
        Json(ChargerView::new(&charger, Some(secret.expose().to_owned()))),
    ))
}

/// `GET /v1/chargers/{pile}`.
pub async fn get_charger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(pile): Path<PileCode>,
) -> ApiResult<Json<ChargerView>> {
    let charger = state.store.get_charger(&pile).await?;
    let operator = state.site_operator(&charger.site).await?;
    state.authorize(&actor, Action::Read, &Resource::Charger { operator })?;
    Ok(Json(ChargerView::new(&charger, None)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountBody {
    pub id: AccountId,
    /// The operator that scopes the account; absent for a platform-wide account (admin only).
    pub operator: Option<OperatorId>,
    pub name: String,
}

/// `POST /v1/accounts`.
pub async fn create_account(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NewAccountBody>,
) -> ApiResult<impl IntoResponse> {
    let resource = Resource::Account {
        account: body.id.clone(),
        operator: body.operator.clone(),
    };
    state.authorize(&actor, Action::Create, &resource)?;
    let account = state
        .store
        .create_account(&body.id, body.operator.as_ref(), &body.name)
        .await?;
    if let Some(open) = &state.wallet_opener {
        open(account.id.clone()).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "account {} was created but its wallet could not be opened: {e}; retry",
                    account.id
                ),
            )
        })?;
    }
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// `GET /v1/accounts/{id}`.
pub async fn get_account(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
) -> ApiResult<Json<AccountView>> {
    let account = state.store.get_account(&id).await?;
    state.authorize(&actor, Action::Read, &account_resource(&account))?;
    Ok(Json(AccountView::from(&account)))
}

/// The authorisation resource of an account.
pub fn account_resource(a: &crate::store::Account) -> Resource {
    Resource::Account {
        account: a.id.clone(),
        operator: a.operator.clone(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTariffBody {
    pub tariff_id: String,
    pub operator: OperatorId,
    /// The tariff; its own `version` must be above every stored version of `tariff_id`.
    pub tariff: Tariff,
    pub effective_from: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
pub struct TariffCreated {
    pub tariff_id: String,
    pub operator: OperatorId,
    pub version: TariffVersion,
    pub effective_from: Timestamp,
}

/// `POST /v1/tariffs`: stores a new version of an operator's tariff.
pub async fn create_tariff(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(body): Json<NewTariffBody>,
) -> ApiResult<impl IntoResponse> {
    state.authorize(
        &actor,
        Action::Create,
        &Resource::Tariff {
            operator: body.operator.clone(),
        },
    )?;
    let from = body.effective_from.unwrap_or_else(Timestamp::now);
    let rec = state
        .store
        .create_tariff_version(&body.tariff_id, &body.operator, &body.tariff, from)
        .await?;
    let created = TariffCreated {
        version: rec.version(),
        tariff_id: rec.tariff_id,
        operator: rec.operator,
        effective_from: rec.effective_from,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignTariffBody {
    pub tariff_id: String,
    pub version: TariffVersion,
    #[serde(default = "charge")]
    pub kind: OrderKind,
    pub effective_from: Option<Timestamp>,
}

fn charge() -> OrderKind {
    OrderKind::Charge
}

#[derive(Debug, Serialize)]
pub struct Assigned {
    pub site: SiteId,
    pub config_version: u64,
}

/// `POST /v1/sites/{id}/tariffs`: assigns a tariff version to a site and bumps the site's
/// configuration version (the edge is told on its config topic).
pub async fn assign_tariff(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(site): Path<SiteId>,
    Json(body): Json<AssignTariffBody>,
) -> ApiResult<Json<Assigned>> {
    let operator = state.site_operator(&site).await?;
    state.authorize(
        &actor,
        Action::Update,
        &Resource::Site {
            operator: operator.clone(),
        },
    )?;
    let tariff = state
        .store
        .get_tariff(&body.tariff_id, body.version)
        .await?;
    if tariff.operator != operator {
        return Err(ApiError::unprocessable(format!(
            "tariff {} belongs to another operator than site {site}",
            body.tariff_id
        )));
    }
    let config_version = state
        .store
        .assign_tariff(&TariffAssignment {
            site: site.clone(),
            kind: body.kind,
            tariff_id: body.tariff_id,
            version: body.version,
            effective_from: body.effective_from.unwrap_or_else(Timestamp::now),
        })
        .await?;
    state.config_changed(&site, config_version);
    Ok(Json(Assigned {
        site,
        config_version,
    }))
}

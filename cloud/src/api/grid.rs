//! V2G at the site level over HTTP: grid events sent to a site's edge (discharge N kW from
//! T1 to T2, shared among the opted-in vehicles by the edge), and marking a charger
//! V2G-capable. A grid event is a `GridEvent` command stored with its event row in one
//! transaction and polled at `/v1/commands/{id}` like any other; it never waits on the edge.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{CommandId, PileCode, SiteId};
use voltline_protocol::sync::Command;

use super::discharges::power_of_kw;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use crate::domain::{Action, Resource};
use crate::state::AppState;
use crate::store::discharges::NewGridEvent;
use crate::store::{new_command_id, NewCommand};

/// The longest grid event.
const MAX_GRID_EVENT: SignedDuration = SignedDuration::from_hours(24);
/// How far ahead a grid event may start.
const MAX_GRID_EVENT_LEAD: SignedDuration = SignedDuration::from_hours(7 * 24);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridEventBody {
    /// The power the site should discharge, kW (above 0, 0.1 kW steps).
    pub power_kw: Decimal,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The 202 answer to a grid event.
#[derive(Debug, Serialize, Deserialize)]
pub struct GridEventQueued {
    pub event_id: String,
    pub command_id: CommandId,
    pub status: String,
}

/// `POST /v1/sites/{site}/grid-events`: a `GridEvent` command to the site's edge, polled at
/// `/v1/commands/{id}` like any other.
pub async fn grid_event(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(site): Path<SiteId>,
    Json(body): Json<GridEventBody>,
) -> ApiResult<impl IntoResponse> {
    let operator = state.site_operator(&site).await?;
    state.authorize(&actor, Action::Update, &Resource::Site { operator })?;
    let power = power_of_kw(body.power_kw)
        .ok()
        .filter(|p| p.watts() > 0 && p.watts() % 100 == 0)
        .ok_or_else(|| ApiError::unprocessable("power_kw must be above 0, in steps of 0.1 kW"))?;
    let now = Timestamp::now();
    if body.to <= body.from || body.to - body.from > MAX_GRID_EVENT {
        return Err(ApiError::unprocessable(format!(
            "a grid event runs from `from` to a later `to`, at most {MAX_GRID_EVENT}: fix the span"
        )));
    }
    if body.to <= now || body.from > now + MAX_GRID_EVENT_LEAD {
        return Err(ApiError::unprocessable(
            "a grid event must end in the future and start within a week: fix `from` and `to`",
        ));
    }
    let event_id = format!("grid-{}", uuid::Uuid::now_v7());
    let command = NewCommand {
        id: new_command_id(),
        site: site.clone(),
        order: None,
        command: Command::GridEvent {
            event_id: event_id.clone(),
            power,
            from: body.from,
            to: body.to,
        },
        // Useless once the event is over; until then the edge may still take it.
        expires_at: body.to,
    };
    let event = NewGridEvent {
        event_id: event_id.clone(),
        site,
        power,
        from: body.from,
        to: body.to,
    };
    let record = state.store.create_grid_event(&event, &command).await?;
    state.dispatch_now.notify_one();
    state.command_changed(&record, None).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(GridEventQueued {
            event_id,
            command_id: record.id,
            status: "dispatching".to_owned(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V2gBody {
    pub v2g: bool,
}

#[derive(Debug, Serialize)]
pub struct V2gCapability {
    pub pile: PileCode,
    pub v2g: bool,
}

/// `PUT /v1/chargers/{pile}/v2g`: marks a charger V2G-capable (or not).
pub async fn put_v2g(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(pile): Path<PileCode>,
    Json(body): Json<V2gBody>,
) -> ApiResult<Json<V2gCapability>> {
    let charger = state.charger(&pile).await?;
    let operator = state.site_operator(&charger.site).await?;
    state.authorize(&actor, Action::Update, &Resource::Charger { operator })?;
    state.store.set_charger_v2g(&pile, body.v2g).await?;
    Ok(Json(V2gCapability {
        pile,
        v2g: body.v2g,
    }))
}

//! V2G over HTTP: discharge orders (start, read, stop). Grid events and a charger's V2G
//! capability are in [`super::grid`].
//!
//! Like a charging start, a discharge start never waits on hardware: it checks the request
//! and the connector (pure rules in [`crate::domain::discharge`]), stores the order, its terms
//! and its `StartDischarge` command in one transaction, wakes the dispatcher and answers 202
//! with both ids and `dispatching`. It holds no money (the platform pays the driver; reverse
//! settlement credits the wallet when the pile's discharge record arrives). Order and command
//! changes go out on `/v1/events` like a session's.
//!
//! Refusals say what to do: 422 for a charger that is not V2G-capable or bad terms, 409 for
//! a connector without a vehicle, a busy connector or one with an active discharge order.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, ConnectorNo, OrderId, PileCode, Power};
use voltline_protocol::sync::{Command, SessionLimit};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::sessions::{command_expiry, dispatching, serial_for};
use super::views::OrderView;
use crate::domain::discharge::{
    check_connector, may_start, DischargeRefusal, DischargeState, DischargeTerms, StopAction,
};
use crate::domain::{Action, OrderEvent, OrderKind, PaymentMethod, Resource};
use crate::money::reverse_lines::V2gBreakdown;
use crate::state::AppState;
use crate::store::{new_command_id, new_order_id, NewCommand, NewOrder, Order, StoreError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartDischarge {
    pub charger: PileCode,
    pub connector: ConnectorNo,
    pub account: AccountId,
    /// The state of charge (%) the vehicle keeps.
    pub soc_floor_pct: u16,
    /// When the driver leaves (UTC); discharging stops then at the latest.
    pub departure: Timestamp,
    /// A cap on the discharge power, kW (0.1 kW steps); the pile's own limit when absent.
    pub max_power_kw: Option<Decimal>,
    pub idempotency_key: Option<String>,
}

fn refusal(e: DischargeRefusal) -> ApiError {
    if e.conflict() {
        ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
    } else {
        ApiError::unprocessable(e.to_string())
    }
}

pub(crate) fn power_of_kw(kw: Decimal) -> Result<Power, DischargeRefusal> {
    let w = kw * Decimal::ONE_THOUSAND;
    let whole = i64::try_from(w.trunc()).unwrap_or(0);
    if w.fract() != Decimal::ZERO {
        return Err(DischargeRefusal::BadPower { got_w: whole });
    }
    Ok(Power::from_watts(whole))
}

/// `POST /v1/discharges`.
pub async fn start(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(req): Json<StartDischarge>,
) -> ApiResult<impl IntoResponse> {
    let charger = state.charger(&req.charger).await?;
    let operator = state.site_operator(&charger.site).await?;
    let account = state.account(&req.account).await?;
    if !may_start(&actor, &account.id, account.operator.as_ref(), &operator) {
        return Err(ApiError::forbidden());
    }
    if account.operator.as_ref().is_some_and(|op| op != &operator) {
        return Err(ApiError::unprocessable(format!(
            "account {} belongs to another operator than site {}: use a platform-wide account or one of this operator",
            account.id, charger.site
        )));
    }
    if req.connector.get() == 0 || req.connector.get() > charger.connectors {
        return Err(ApiError::unprocessable(format!(
            "charger {} has connectors 1-{}",
            charger.pile, charger.connectors
        )));
    }
    let now = Timestamp::now();
    let max_power = req
        .max_power_kw
        .map(power_of_kw)
        .transpose()
        .map_err(refusal)?;
    let terms =
        DischargeTerms::new(req.soc_floor_pct, req.departure, max_power, now).map_err(refusal)?;
    let v2g = state.store.charger_v2g(&req.charger).await?;
    let connector_state = state
        .store
        .connector_state(&req.charger, req.connector)
        .await?;
    check_connector(
        &req.charger.to_string(),
        req.connector.get(),
        v2g,
        connector_state,
    )
    .map_err(refusal)?;
    if let Some(other) = state
        .store
        .active_discharge(&req.charger, req.connector)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("connector {} of charger {} already has discharge order {other}: stop it (POST /v1/discharges/{other}/stop) or wait for it to end", req.connector, req.charger),
        ));
    }
    let order_id = new_order_id();
    let serial = serial_for(&state, req.charger, req.connector, now)?;
    let order = NewOrder {
        id: order_id.clone(),
        account: account.id.clone(),
        site: charger.site.clone(),
        pile: req.charger,
        connector: req.connector,
        kind: OrderKind::Discharge,
        payment_method: PaymentMethod::Wallet,
        limit: SessionLimit::default(),
        hold_id: None,
        transaction_serial: Some(serial),
        idempotency_key: req.idempotency_key,
    };
    let command = NewCommand {
        id: new_command_id(),
        site: charger.site.clone(),
        order: Some(order_id.clone()),
        command: Command::StartDischarge {
            pile: req.charger,
            connector: req.connector,
            order: order_id,
            serial,
            soc_floor: terms.soc_floor,
            max_power: terms.max_power,
            until: terms.departure,
        },
        expires_at: now + command_expiry(&state),
    };
    let (order, command) = state
        .store
        .create_discharge_order(&order, &terms, &command)
        .await
        .map_err(|e| match e {
            StoreError::Duplicate { what, id } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} '{id}' exists: read it, stop it, or use another idempotency key"),
            ),
            other => ApiError::from(other),
        })?;
    state.dispatch_now.notify_one();
    state.order_changed(&order).await;
    state
        .command_changed(&command, Some(order.account.clone()))
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(dispatching(order.id, command.id)),
    ))
}

/// A discharge order as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DischargeView {
    #[serde(flatten)]
    pub order: OrderView,
    pub discharge_state: DischargeState,
    pub terms: DischargeTerms,
    /// The reverse settlement, once settled: energy each way, prices, credit, anomalies.
    pub settlement: Option<V2gBreakdown>,
}

/// The discharge order `id` after the caller is allowed `action` on it (404 for a charging
/// order: it is read at `/v1/sessions/{id}`).
async fn discharge_order(
    state: &AppState,
    actor: &crate::domain::Actor,
    id: &OrderId,
    action: Action,
) -> ApiResult<(Order, DischargeTerms, DischargeState)> {
    let order = state.store.get_order(id).await?;
    let operator = state.site_operator(&order.site).await?;
    state.authorize(
        actor,
        action,
        &Resource::Order {
            account: order.account.clone(),
            operator,
        },
    )?;
    let terms = state.store.discharge_terms(id).await?;
    let phase = DischargeState::from_order(order.state);
    match (order.kind, terms, phase) {
        (OrderKind::Discharge, Some(terms), Some(phase)) => Ok((order, terms, phase)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "order {id} is not a discharge order: read a charging session at /v1/sessions/{id}"
            ),
        )),
    }
}

/// `GET /v1/discharges/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
) -> ApiResult<Json<DischargeView>> {
    let (order, terms, phase) = discharge_order(&state, &actor, &id, Action::Read).await?;
    let settlement = crate::money::reverse::order_breakdown(&state.store, &id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(DischargeView {
        order: OrderView::from(&order),
        discharge_state: phase,
        terms,
        settlement,
    }))
}

/// `POST /v1/discharges/{id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
) -> ApiResult<impl IntoResponse> {
    let (order, _, phase) = discharge_order(&state, &actor, &id, Action::Update).await?;
    let order = match phase.stop_action() {
        StopAction::Repeat => order,
        StopAction::Stop => {
            state
                .store
                .transition_order(&order.id, order.version, OrderEvent::StopRequested)
                .await?
        }
        StopAction::Refuse => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("discharge order {id} is {}: nothing runs at the pile any more; read it for its settlement", order.state),
            ))
        }
    };
    let command = state
        .store
        .enqueue_command(&NewCommand {
            id: new_command_id(),
            site: order.site.clone(),
            order: Some(order.id.clone()),
            command: Command::StopDischarge {
                pile: order.pile,
                connector: order.connector,
                order: order.id.clone(),
            },
            expires_at: Timestamp::now() + command_expiry(&state),
        })
        .await?;
    state.dispatch_now.notify_one();
    state.order_changed(&order).await;
    state
        .command_changed(&command, Some(order.account.clone()))
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(dispatching(order.id, command.id)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kilowatts_become_whole_watts_or_are_refused() {
        assert_eq!(
            power_of_kw(Decimal::new(74, 1)),
            Ok(Power::from_watts(7_400))
        );
        assert_eq!(
            power_of_kw(Decimal::new(11, 0)),
            Ok(Power::from_watts(11_000))
        );
        assert!(power_of_kw(Decimal::new(12_345, 4)).is_err());
    }
}

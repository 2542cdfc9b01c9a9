//! Sessions (orders) and commands: start, stop, poll. Never waits on hardware: a start places
//! the hold, stores the order and its start command in one transaction (with the SQL ledger,
//! one transaction shared by the concurrent starts of a writer batch), wakes the dispatcher
//! and answers 202; the edge's answer arrives later as a record and changes the command.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{
    AccountId, CommandId, ConnectorNo, Energy, Money, OrderId, PileCode, SerialTime,
    TransactionSerial,
};
use voltline_protocol::sync::{Command, SessionLimit};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path};
use super::views::{CommandView, OrderView};
use crate::domain::{Action, OrderEvent, OrderKind, OrderState, PaymentMethod, Resource};
use crate::funds::{HoldRequest, StartFailure, StartRequest};
use crate::state::AppState;
use crate::store::{new_command_id, new_order_id, NewCommand, NewOrder};

/// How much longer than the start command a hold lives (it covers the whole session).
const HOLD_LIFETIME: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    pub charger: PileCode,
    pub connector: ConnectorNo,
    pub account: AccountId,
    #[serde(default = "wallet")]
    pub payment_method: PaymentMethod,
    /// Yuan to hold; the configured default when absent.
    pub amount: Option<Money>,
    /// An energy cap in kWh.
    pub energy_kwh: Option<Decimal>,
    pub idempotency_key: Option<String>,
    /// With a credit provider: the driver at the provider (WeChat openid, Alipay
    /// authorisation code), as the driver's app got it when the driver authorised it.
    #[serde(default)]
    pub provider_user: Option<String>,
}

fn wallet() -> PaymentMethod {
    PaymentMethod::Wallet
}

/// The 202 answer to a start or stop.
#[derive(Debug, Serialize, Deserialize)]
pub struct Dispatching {
    pub order_id: OrderId,
    pub command_id: CommandId,
    pub status: String,
}

/// `POST /v1/sessions`.
pub async fn start(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(req): Json<StartSession>,
) -> ApiResult<impl IntoResponse> {
    let charger = state.charger(&req.charger).await?;
    let operator = state.site_operator(&charger.site).await?;
    let account = state.account(&req.account).await?;
    state.authorize(
        &actor,
        Action::Create,
        &Resource::Order {
            account: account.id.clone(),
            operator: operator.clone(),
        },
    )?;
    if account.operator.as_ref().is_some_and(|op| op != &operator) {
        return Err(ApiError::unprocessable(format!(
            "account {} belongs to another operator than site {}: use a platform-wide account or one of this operator",
            account.id, charger.site
        )));
    }
    let credit = match &req.payment_method {
        PaymentMethod::Wallet => None,
        PaymentMethod::Provider { provider } => {
            if state.payments.is_none() {
                return Err(ApiError::unprocessable(
                    "no credit provider is configured here: send \"payment_method\": {\"method\": \"wallet\"}",
                ));
            }
            let default = Money::from_yuan(state.config.sessions.default_hold_yuan);
            Some(crate::payment::CreditStart {
                provider: provider.clone(),
                user_ref: req.provider_user.clone(),
                operator: operator.clone(),
                amount: req.amount.unwrap_or(default),
            })
        }
    };
    if req.connector.get() == 0 || req.connector.get() > charger.connectors {
        return Err(ApiError::unprocessable(format!(
            "charger {} has connectors 1-{}",
            charger.pile, charger.connectors
        )));
    }
    let energy = req
        .energy_kwh
        .map(Energy::from_kwh)
        .transpose()
        .map_err(|e| ApiError::unprocessable(format!("energy_kwh: {e}")))?;
    if let Some(amount) = req.amount {
        if amount.is_negative() || amount.is_zero() {
            return Err(ApiError::unprocessable("amount must be above zero"));
        }
    }
    let now = Timestamp::now();
    let order_id = new_order_id();
    let serial = serial_for(&state, req.charger, req.connector, now)?;
    // The amount limit is set to the hold when it is placed.
    let limit = SessionLimit {
        amount: req.amount,
        energy,
    };
    let order = NewOrder {
        id: order_id.clone(),
        account: account.id.clone(),
        site: charger.site.clone(),
        pile: req.charger,
        connector: req.connector,
        kind: OrderKind::Charge,
        payment_method: req.payment_method,
        limit,
        hold_id: None,
        transaction_serial: Some(serial),
        idempotency_key: req.idempotency_key,
    };
    let command = NewCommand {
        id: new_command_id(),
        site: charger.site.clone(),
        order: Some(order_id.clone()),
        command: Command::StartCharging {
            pile: req.charger,
            connector: req.connector,
            order: order_id.clone(),
            account: account.id.clone(),
            serial,
            limit,
        },
        expires_at: now + command_expiry(&state),
    };
    let hold = HoldRequest {
        order: order_id,
        account: account.id.clone(),
        requested: req.amount,
        expires_at: now + HOLD_LIFETIME,
    };
    let start = StartRequest {
        hold,
        order,
        start: command,
    };
    let started = match (credit, &state.payments) {
        (Some(credit), Some(payments)) => payments.start_session(start, credit).await,
        _ => state.funds.start_session(&state.store, start).await,
    };
    let started = started.map_err(|e| match e {
        StartFailure::Declined(reason) => {
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment-declined", reason)
        }
        StartFailure::Funds(e) => ApiError::from(e),
        StartFailure::Store(e) => ApiError::from(e),
        StartFailure::Refused {
            conflict: true,
            reason,
        } => ApiError::new(StatusCode::CONFLICT, "conflict", reason),
        StartFailure::Refused { reason, .. } => ApiError::unprocessable(reason),
    })?;
    let (order, command) = (started.order, started.command);
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

/// `POST /v1/sessions/{id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
) -> ApiResult<impl IntoResponse> {
    let order = state.store.get_order(&id).await?;
    let operator = state.site_operator(&order.site).await?;
    state.authorize(
        &actor,
        Action::Update,
        &Resource::Order {
            account: order.account.clone(),
            operator,
        },
    )?;
    let order = match order.state {
        OrderState::Stopping => order,
        OrderState::Charging => {
            state
                .store
                .transition_order(&order.id, order.version, OrderEvent::StopRequested)
                .await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "session {id} is {}: only a charging session can be stopped",
                    other.as_str()
                ),
            ))
        }
    };
    let command = state
        .store
        .enqueue_command(&NewCommand {
            id: new_command_id(),
            site: order.site.clone(),
            order: Some(order.id.clone()),
            command: Command::StopCharging {
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

/// `GET /v1/sessions/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<OrderId>,
) -> ApiResult<Json<OrderView>> {
    let order = state.store.get_order(&id).await?;
    let operator = state.site_operator(&order.site).await?;
    state.authorize(
        &actor,
        Action::Read,
        &Resource::Order {
            account: order.account.clone(),
            operator,
        },
    )?;
    Ok(Json(OrderView::from(&order)))
}

/// `GET /v1/commands/{id}`.
pub async fn get_command(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<CommandId>,
) -> ApiResult<Json<CommandView>> {
    let cmd = state.store.get_command(&id).await?;
    let operator = state.site_operator(&cmd.site).await?;
    let account = match &cmd.order {
        Some(o) => Some(state.store.get_order(o).await?.account),
        None => None,
    };
    state.authorize(
        &actor,
        Action::Read,
        &Resource::Command { account, operator },
    )?;
    Ok(Json(CommandView::from(&cmd)))
}

pub(crate) fn dispatching(order_id: OrderId, command_id: CommandId) -> Dispatching {
    Dispatching {
        order_id,
        command_id,
        status: "dispatching".to_owned(),
    }
}

pub(crate) fn command_expiry(state: &AppState) -> SignedDuration {
    let secs = i64::try_from(state.config.sessions.command_expiry_s).unwrap_or(60);
    SignedDuration::from_secs(secs)
}

/// A platform-generated transaction serial: pile, connector, the UTC start time and a
/// process-wide counter (unique per pile for 10,000 starts a second).
pub(crate) fn serial_for(
    state: &AppState,
    pile: PileCode,
    connector: ConnectorNo,
    now: Timestamp,
) -> ApiResult<TransactionSerial> {
    let t = jiff::tz::TimeZone::UTC.to_datetime(now);
    let part = |v: i16| u8::try_from(v).unwrap_or(0);
    let at = SerialTime {
        year: part(t.year() - 2000),
        month: part(t.month().into()),
        day: part(t.day().into()),
        hour: part(t.hour().into()),
        minute: part(t.minute().into()),
        second: part(t.second().into()),
    };
    TransactionSerial::compose(pile, connector, at, state.next_serial_counter())
        .ok_or_else(|| ApiError::internal("transaction serial out of range"))
}

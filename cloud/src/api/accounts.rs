//! Money routes of an account, through the [`Funds`](crate::funds::Funds) seam: top-ups,
//! refunds and the statement (postings with running balance).
//!
//! Who: a top-up is an update of the account (its driver, its operator, an admin); a refund
//! takes money out of the account and is as strong as deleting it (its operator or an admin,
//! never the driver alone); the statement is a read.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, Money};

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, Json, Path, Query};
use super::registry::account_resource;
use crate::domain::Action;
use crate::funds::{PaymentRequest, StatementLine};
use crate::state::AppState;

/// Most statement lines in one page.
pub const MAX_STATEMENT_PAGE: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    pub amount: Money,
    /// The payment provider, e.g. `wechat`, `alipay`.
    pub provider: String,
    /// The provider's reference: the idempotency key (a repeat returns the first result).
    pub reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Balance {
    pub account: AccountId,
    pub available: Money,
}

async fn payment(
    state: &AppState,
    actor: &crate::domain::Actor,
    id: AccountId,
    body: PaymentBody,
    action: Action,
) -> ApiResult<PaymentRequest> {
    let account = state.store.get_account(&id).await?;
    state.authorize(actor, action, &account_resource(&account))?;
    if body.amount.is_negative() || body.amount.is_zero() {
        return Err(ApiError::unprocessable("amount must be above zero"));
    }
    Ok(PaymentRequest {
        account: id,
        amount: body.amount,
        provider: body.provider,
        reference: body.reference,
    })
}

/// `POST /v1/accounts/{id}/top-ups`.
pub async fn top_up(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
    Json(body): Json<PaymentBody>,
) -> ApiResult<Json<Balance>> {
    let req = payment(&state, &actor, id, body, Action::Update).await?;
    let available = state.funds.top_up(&req).await?;
    Ok(Json(Balance {
        account: req.account,
        available,
    }))
}

/// `POST /v1/accounts/{id}/refunds`.
pub async fn refund(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
    Json(body): Json<PaymentBody>,
) -> ApiResult<Json<Balance>> {
    let req = payment(&state, &actor, id, body, Action::Delete).await?;
    let available = state.funds.refund(&req).await?;
    Ok(Json(Balance {
        account: req.account,
        available,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Lines after this one (0 for the start).
    #[serde(default)]
    pub after: u64,
    /// At most this many lines (default 100, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Statement {
    pub account: AccountId,
    pub lines: Vec<StatementLine>,
}

/// `GET /v1/accounts/{id}/ledger?after=N&limit=M`.
pub async fn ledger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<AccountId>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Statement>> {
    let account = state.store.get_account(&id).await?;
    state.authorize(&actor, Action::Read, &account_resource(&account))?;
    let limit = page.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_STATEMENT_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be 1-{MAX_STATEMENT_PAGE}"
        )));
    }
    let lines = state.funds.statement(&id, page.after, limit).await?;
    Ok(Json(Statement { account: id, lines }))
}

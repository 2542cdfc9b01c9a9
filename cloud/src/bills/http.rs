//! The API handlers for bills, sharing rules, billing settings and webhook endpoints. Each
//! reads the resource's owner, then asks `can` before it reads or writes anything else: an
//! operator sees only its own bills and rules, admins see all.
//!
//! Routes (listed in `api::routes`):
//! - `GET /v1/bills` — `?operator=&from=&to=&limit=`; an operator's own (or, for admins,
//!   everyone's unless `operator` is given);
//! - `GET /v1/bills/{id}` — JSON, or CSV with `?format=csv` or an id ending in `.csv`;
//! - `POST|GET /v1/operators/{id}/sharing-rules` — create (admins) or list a rule version;
//! - `PUT /v1/operators/{id}/billing` — the operator's bill time zone and first day (admins);
//! - `PUT /v1/operators/{id}/webhook` — the operator's endpoint URL and signing secret.
//!
//! It must never answer another tenant's bill, and never echo a webhook secret.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{OperatorId, SiteId};

use super::error::BillsError;
use super::rules::{self, NewRule, RULE_LEAD};
use super::store::{self as bill_store, BillFilter, StoredBill};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{Caller, Json, Path, Query};
use crate::domain::{Action, Actor, Resource};
use crate::sharing::rule::{SharingRule, SharingTerms};
use crate::state::AppState;

impl From<BillsError> for ApiError {
    fn from(e: BillsError) -> ApiError {
        match e {
            BillsError::Store(s) => ApiError::from(s),
            BillsError::NotFound { what, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found: {e}"),
            ),
            e @ (BillsError::Conflict(_)
            | BillsError::AlreadyIssued { .. }
            | BillsError::LeaseLost { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            e @ (BillsError::Invalid { .. }
            | BillsError::Terms(_)
            | BillsError::RuleBook(_)
            | BillsError::Bill(_)) => ApiError::unprocessable(e.to_string()),
            e @ BillsError::Corrupt(_) => ApiError::internal(e),
        }
    }
}

/// A bill in an answer.
#[derive(Debug, Serialize)]
pub struct BillView<'a> {
    pub id: &'a str,
    pub issued_at: Timestamp,
    pub digest: &'a str,
    pub net_payable: voltline_protocol::Money,
    pub adjustment_sessions: u64,
    #[serde(flatten)]
    pub bill: &'a crate::sharing::DailyBill,
}

impl<'a> From<&'a StoredBill> for BillView<'a> {
    fn from(b: &'a StoredBill) -> Self {
        BillView {
            id: &b.id,
            issued_at: b.issued_at,
            digest: &b.digest,
            net_payable: b.bill.totals.net_payable(),
            adjustment_sessions: b.bill.adjustment_sessions(),
            bill: &b.bill,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub operator: Option<OperatorId>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub limit: Option<usize>,
}

/// `GET /v1/bills`.
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let operator = match (&actor, q.operator) {
        (Actor::Admin, o) => o,
        (Actor::Operator(me), None) => Some(me.clone()),
        (_, Some(o)) => Some(o),
        (_, None) => return Err(ApiError::forbidden()),
    };
    if let Some(o) = &operator {
        state.authorize(
            &actor,
            Action::Read,
            &Resource::Bill {
                operator: o.clone(),
            },
        )?;
    }
    let bills = bill_store::list_bills(
        &state.store,
        &BillFilter {
            operator,
            from: q.from,
            to: q.to,
            limit: q.limit.unwrap_or(100),
        },
    )
    .await?;
    let views: Vec<BillView<'_>> = bills.iter().map(BillView::from).collect();
    Ok(Json(serde_json::json!({ "bills": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// `GET /v1/bills/{id}` (and `{id}.csv`).
pub async fn get(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> ApiResult<Response> {
    let (id, csv_suffix) = match id.strip_suffix(".csv") {
        Some(base) => (base.to_owned(), true),
        None => (id, false),
    };
    let csv = match q.format.as_deref() {
        None | Some("json") => csv_suffix,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format '{other}' is not offered: use json or csv"
            )))
        }
    };
    let bill = bill_store::get_bill(&state.store, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("bill"))?;
    state.authorize(
        &actor,
        Action::Read,
        &Resource::Bill {
            operator: bill.bill.operator.clone(),
        },
    )?;
    if csv {
        let disposition = format!("attachment; filename=\"{}.csv\"", bill.id);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            super::csv::to_csv(&bill),
        )
            .into_response());
    }
    Ok(Json(BillView::from(&bill)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRuleBody {
    /// One of the operator's sites, or absent for all of them.
    pub site: Option<SiteId>,
    /// At least a minute from now (default: a minute from now).
    pub effective_from: Option<Timestamp>,
    pub terms: SharingTerms,
}

/// `POST /v1/operators/{id}/sharing-rules` (admins).
pub async fn create_rule(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(operator): Path<OperatorId>,
    Json(body): Json<NewRuleBody>,
) -> ApiResult<impl IntoResponse> {
    state.authorize(
        &actor,
        Action::Create,
        &Resource::SharingRule {
            operator: operator.clone(),
        },
    )?;
    state.store.get_operator(&operator).await?;
    let earliest = Timestamp::now() + RULE_LEAD;
    let effective_from = body.effective_from.unwrap_or(earliest);
    if effective_from < earliest - jiff::SignedDuration::from_secs(1) {
        return Err(ApiError::unprocessable(format!(
            "effective_from {effective_from} is too soon: a rule takes effect at least {} s after it is created, so every instance applies it; use {earliest} or later",
            RULE_LEAD.as_secs()
        )));
    }
    let rule = rules::create_rule(
        &state.store,
        &NewRule {
            operator,
            site: body.site,
            effective_from,
            terms: body.terms,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// `GET /v1/operators/{id}/sharing-rules`.
pub async fn list_rules(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(operator): Path<OperatorId>,
) -> ApiResult<Json<Vec<SharingRule>>> {
    state.authorize(
        &actor,
        Action::Read,
        &Resource::SharingRule {
            operator: operator.clone(),
        },
    )?;
    state.store.get_operator(&operator).await?;
    Ok(Json(rules::list_rules(&state.store, &operator).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingBody {
    /// IANA zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The first local day billed (default: today in that zone).
    pub first_day: Option<Date>,
}

/// `PUT /v1/operators/{id}/billing` (admins).
pub async fn put_billing(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(operator): Path<OperatorId>,
    Json(body): Json<BillingBody>,
) -> ApiResult<Json<serde_json::Value>> {
    state.authorize(
        &actor,
        Action::Update,
        &Resource::Operator(operator.clone()),
    )?;
    let tz = rules::parse_zone(&body.time_zone)?;
    let first_day = body
        .first_day
        .unwrap_or_else(|| crate::sharing::local_day(&tz, Timestamp::now()));
    rules::set_billing_settings(&state.store, &operator, &body.time_zone, first_day).await?;
    Ok(Json(serde_json::json!({
        "operator": operator,
        "time_zone": body.time_zone,
        "first_day": first_day,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    pub url: String,
    /// 16 to 256 bytes; signs every body (HMAC-SHA256). Never shown again.
    pub secret: String,
}

/// `PUT /v1/operators/{id}/webhook`.
pub async fn put_webhook(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(operator): Path<OperatorId>,
    Json(body): Json<WebhookBody>,
) -> ApiResult<Json<serde_json::Value>> {
    state.authorize(
        &actor,
        Action::Update,
        &Resource::Webhook {
            operator: operator.clone(),
        },
    )?;
    state.store.get_operator(&operator).await?;
    let ep =
        crate::webhooks::outbox::set_endpoint(&state.store, &operator, &body.url, &body.secret)
            .await?;
    Ok(Json(serde_json::json!({
        "operator": ep.operator,
        "url": ep.url,
        "updated_at": ep.updated_at,
    })))
}

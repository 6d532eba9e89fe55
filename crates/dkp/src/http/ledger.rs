//! `/api/v1/guilds/{slug}/pools` and entries: the ledger over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auction::answered;
use super::extract::{Command, JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::model::{Answer, Entry, Recorded};
use crate::service::Caller;
use crate::service::ledger::{AdjustmentInput, AwardInput, NewPoolInput, ReversalInput, TransferInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/pools", post(create_pool).get(pools))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/standings", get(standings))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/entries", get(entries))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/awards", post(award))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/adjustments", post(adjust))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/transfers", post(transfer))
        .route("/api/v1/guilds/{slug}/entries/{entry_id}/reverse", post(reverse))
}

async fn create_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewPoolInput>,
) -> Result<Response, ApiError> {
    let pool = state.service.create_pool(&caller, &slug, body.value).await?;
    Ok((StatusCode::CREATED, Json(json!({ "pool": pool }))).into_response())
}

async fn pools(State(state): State<AppState>, caller: Caller, Path(slug): Path<String>) -> Result<Response, ApiError> {
    let pools = state.service.pools(&caller, &slug).await?;
    Ok(Json(json!({ "pools": pools })).into_response())
}

async fn standings(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let standings = state.service.standings(&caller, &slug, &pool_id, query.flag("include_inactive")?).await?;
    Ok(Json(json!({ "standings": standings })).into_response())
}

async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.entries(&caller, &slug, &pool_id, query.get("member_id"), query.page()?).await?;
    Ok(Json(json!({ "entries": page.items, "next_cursor": page.next })).into_response())
}

/// A new entry as 201 `{entry}`, or the answer kept under the idempotency key.
fn recorded(state: &AppState, result: Recorded<Entry>) -> Response {
    match result {
        Recorded::Fresh(entry, _) => answered(state, &Answer::Entry(entry)),
        Recorded::Replay(answer) => answered(state, &answer),
    }
}

async fn award(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    command: Command<AwardInput>,
) -> Result<Response, ApiError> {
    let result = state.service.award(&caller, &slug, &pool_id, command.value, command.idempotency).await?;
    Ok(recorded(&state, result))
}

async fn adjust(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    command: Command<AdjustmentInput>,
) -> Result<Response, ApiError> {
    let result = state.service.adjust(&caller, &slug, &pool_id, command.value, command.idempotency).await?;
    Ok(recorded(&state, result))
}

async fn transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    command: Command<TransferInput>,
) -> Result<Response, ApiError> {
    let result = state.service.transfer(&caller, &slug, &pool_id, command.value, command.idempotency).await?;
    Ok(recorded(&state, result))
}

async fn reverse(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, entry_id)): Path<(String, String)>,
    command: Command<ReversalInput>,
) -> Result<Response, ApiError> {
    let result = state.service.reverse(&caller, &slug, &entry_id, command.value, command.idempotency).await?;
    Ok(recorded(&state, result))
}

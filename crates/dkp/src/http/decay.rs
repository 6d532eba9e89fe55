//! A pool's decay over HTTP: asking for one now (202 with the job), the
//! schedule that runs it by itself, and the preview that writes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{Command, JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::decay::DecayInput;
use crate::service::schedule::ScheduleInput;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/decay", post(decay))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/decay/schedule", get(schedule).put(set_schedule))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/decay/preview", get(preview))
}

async fn decay(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    command: Command<DecayInput>,
) -> Result<Response, ApiError> {
    let (job, _) = state.service.request_decay(&caller, &slug, &pool_id, command.value, command.idempotency).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": state.wire.job(&job) }))).into_response())
}

async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let schedule = state.service.decay_schedule(&caller, &slug, &pool_id).await?;
    Ok(Json(json!({ "schedule": schedule })).into_response())
}

async fn set_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    body: JsonBody<Option<ScheduleInput>>,
) -> Result<Response, ApiError> {
    let schedule = state.service.set_decay_schedule(&caller, &slug, &pool_id, body.value).await?;
    Ok(Json(json!({ "schedule": schedule })).into_response())
}

async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let changes = state.service.decay_preview(&caller, &slug, &pool_id, query.get("percent")).await?;
    let changes: Vec<_> =
        changes.iter().map(|c| json!({"member_id": c.member_id, "amount": c.amount.to_string()})).collect();
    Ok(Json(json!({ "changes": changes })).into_response())
}

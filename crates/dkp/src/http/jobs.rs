//! Work done in the background over HTTP: asking for a pool's decay (202
//! with the job) and following a job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{Command, Path};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::decay::DecayInput;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/decay", post(decay))
        .route("/api/v1/guilds/{slug}/jobs/{job_id}", get(job))
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

async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, job_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = state.service.job(&caller, &slug, &job_id).await?;
    Ok(Json(json!({ "job": state.wire.job(&job) })).into_response())
}

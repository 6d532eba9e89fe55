//! Work done in the background over HTTP: asking for a pool's decay (202
//! with the job) and following a job.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::extract::{JsonBody, idempotency};
use crate::error::ApiError;
use crate::service::Caller;
use crate::service::decay::{DecayInput, job_json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/decay", post(decay))
        .route("/api/v1/guilds/{slug}/jobs/{job_id}", get(job))
}

async fn decay(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody<DecayInput>,
) -> Result<Response, ApiError> {
    let idem = idempotency(&headers, &format!("decay {slug} {pool_id}"), &body.document)?;
    let (job, _) = state.service.request_decay(&caller, &slug, &pool_id, body.value, idem).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job_json(&job) }))).into_response())
}

async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, job_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = state.service.job(&caller, &slug, &job_id).await?;
    Ok(Json(json!({ "job": job_json(&job) })).into_response())
}

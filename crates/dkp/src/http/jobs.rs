//! Following a job done in the background (a decay asked for, a lot's
//! closing, a scheduled decay's run).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::extract::Path;
use super::{ApiError, AppState};
use crate::service::Caller;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/guilds/{slug}/jobs/{job_id}", get(job))
}

async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, job_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = state.service.job(&caller, &slug, &job_id).await?;
    Ok(Json(json!({ "job": state.wire.job(&job) })).into_response())
}

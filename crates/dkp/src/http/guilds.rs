//! `/api/v1/guilds`: guilds and the audit log (the roster is `members`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::guilds::NewGuildInput;
use dkp_core::Action;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds", post(create))
        .route("/api/v1/guilds/{slug}", get(show))
        .route("/api/v1/guilds/{slug}/audit", get(audit))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<NewGuildInput>,
) -> Result<Response, ApiError> {
    let membership = state.service.create_guild(&caller, body.value).await?;
    let guild = state.wire.guild(&membership.guild);
    Ok((StatusCode::CREATED, Json(json!({ "guild": guild }))).into_response())
}

async fn show(State(state): State<AppState>, caller: Caller, Path(slug): Path<String>) -> Result<Response, ApiError> {
    let membership = state.service.guild_access(&caller, &slug, Action::Read).await?;
    Ok(Json(json!({ "guild": state.wire.guild(&membership.guild) })).into_response())
}

async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.audit(&caller, &slug, query.page()?).await?;
    Ok(Json(json!({ "entries": page.items, "next_cursor": page.next })).into_response())
}

//! `/api/v1/guilds/{slug}/members`: the roster over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::members::{MemberPatch, NewMemberInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/members", post(add).get(list))
        .route("/api/v1/guilds/{slug}/members/{member_id}", patch(change).delete(remove))
}

async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewMemberInput>,
) -> Result<Response, ApiError> {
    let member = state.service.add_member(&caller, &slug, body.value).await?;
    Ok((StatusCode::CREATED, Json(json!({ "member": member }))).into_response())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let members = state.service.members(&caller, &slug, query.flag("include_inactive")?).await?;
    Ok(Json(json!({ "members": members })).into_response())
}

async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, member_id)): Path<(String, String)>,
    body: JsonBody<MemberPatch>,
) -> Result<Response, ApiError> {
    let member = state.service.change_member(&caller, &slug, &member_id, body.value).await?;
    Ok(Json(json!({ "member": member })).into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let member = state.service.remove_member(&caller, &slug, &member_id).await?;
    Ok(Json(json!({ "member": member })).into_response())
}

//! `/api/v1/guilds/{slug}/characters`: members' characters over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::characters::{CharacterPatch, NewCharacterInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/characters", post(add).get(list))
        .route("/api/v1/guilds/{slug}/characters/{character_id}", patch(change))
}

async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewCharacterInput>,
) -> Result<Response, ApiError> {
    let character = state.service.add_character(&caller, &slug, body.value).await?;
    Ok((StatusCode::CREATED, Json(json!({ "character": character }))).into_response())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let characters = state.service.characters(&caller, &slug, query.get("member_id")).await?;
    Ok(Json(json!({ "characters": characters })).into_response())
}

async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, character_id)): Path<(String, String)>,
    body: JsonBody<CharacterPatch>,
) -> Result<Response, ApiError> {
    let character = state.service.change_character(&caller, &slug, &character_id, body.value).await?;
    Ok(Json(json!({ "character": character })).into_response())
}

//! `/api/v1/auth/*` and `/api/v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{ClientAddress, JsonBody, RequestId, SESSION_COOKIE};
use super::{ApiError, AppState};
use crate::service::Caller;
use crate::service::accounts::{Login, Registration};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
}

async fn register(
    State(state): State<AppState>,
    RequestId(id): RequestId,
    body: JsonBody<Registration>,
) -> Result<Response, ApiError> {
    let user = state.service.register(body.value, &id).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))).into_response())
}

pub(super) fn session_cookie(state: &AppState, token: &str, max_age_s: i64) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}")
}

async fn login(
    State(state): State<AppState>,
    RequestId(id): RequestId,
    ClientAddress(address): ClientAddress,
    body: JsonBody<Login>,
) -> Result<Response, ApiError> {
    let (token, user) = state.service.login_from(body.value, &address, &id).await?;
    let cookie = session_cookie(&state, &token, i64::from(state.service.session_ttl_hours()) * 3600);
    Ok(([(SET_COOKIE, cookie)], Json(json!({ "token": token, "user": user }))).into_response())
}

async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.service.logout(&caller).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, session_cookie(&state, "", 0))]).into_response())
}

async fn me(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let guilds: Vec<_> = state.service.me(&caller).await?.iter().map(|m| state.wire.membership(m)).collect();
    Ok(Json(json!({ "user": caller.user, "guilds": guilds })).into_response())
}

//! Images over HTTP: officers upload a guild logo or a lot icon as the raw
//! body (`PUT`), and anyone fetches stored images from `/blobs/{key}`. A key
//! names the same bytes forever, so answers are cacheable for a year and
//! the ETag is the digest the key already carries; a CDN may front the route.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;

use super::extract::Path;
use super::{ApiError, AppState};
use crate::blobs::{BlobKey, IMMUTABLE};
use crate::service::Caller;
use crate::service::images::Upload;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/logo", put(put_logo))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/icon", put(put_icon))
        .route("/blobs/{*key}", get(serve))
}

async fn put_logo(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let upload = upload(&state, &headers, body).await?;
    let guild = state.service.set_guild_logo(&caller, &slug, upload).await?;
    Ok(Json(json!({ "guild": state.wire.guild(&guild) })).into_response())
}

async fn put_icon(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let upload = upload(&state, &headers, body).await?;
    let lot = state.service.set_lot_icon(&caller, &slug, &lot_id, upload).await?;
    Ok(Json(json!({ "lot": state.wire.lot(&lot) })).into_response())
}

/// Reads the raw body up to the configured limit: 413 past it, refused on
/// its declared length before a byte of it is read.
async fn upload(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Upload, ApiError> {
    let limit = state.service.image_limit();
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(Upload { content_type, bytes })
}

/// Streams a stored image with its type and cache headers; 304 when the
/// client holds it already, 404 for any key we did not hand out.
async fn serve(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = BlobKey::parse(&key).ok_or(ApiError::NotFound)?;
    let etag = format!("\"{}\"", key.digest());
    if holds(&headers, &etag) {
        if !state.service.image_exists(&key).await? {
            return Err(ApiError::NotFound);
        }
        return Ok((StatusCode::NOT_MODIFIED, cache_headers(&etag)).into_response());
    }
    let object = state.service.image(&key).await?.ok_or(ApiError::NotFound)?;
    let mut response_headers = cache_headers(&etag);
    response_headers.insert(CONTENT_TYPE, HeaderValue::from_static(key.kind().mime()));
    response_headers.insert(CONTENT_LENGTH, HeaderValue::from(object.meta.size));
    // The type is ours, from the key; a browser must not guess another.
    response_headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok((response_headers, Body::from_stream(object.into_stream())).into_response())
}

fn cache_headers(etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, value);
    }
    headers
}

/// Whether `If-None-Match` names `etag` (weakly compared, as RFC 9110 asks) or is `*`.
fn holds(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

//! `/api/v1/guilds/{slug}/lots`: lots and bids over HTTP.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::extract::{JsonBody, ListQuery, idempotency};
use crate::error::ApiError;
use crate::service::Caller;
use crate::service::auction::{BidAnswer, BidInput, CancelInput, NewLotInput};
use crate::store::Ending;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/lots", post(create).get(list))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}", get(show))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/bids", post(bid))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/close", post(close))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/cancel", post(cancel))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewLotInput>,
) -> Result<Response, ApiError> {
    let lot = state.service.create_lot(&caller, &slug, body.value).await?;
    Ok((StatusCode::CREATED, Json(json!({ "lot": lot.to_json(state.service.blobs.urls()) }))).into_response())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.lots(&caller, &slug, query.get("status"), query.page()?).await?;
    let lots: Vec<_> = page.items.iter().map(|lot| lot.to_json(state.service.blobs.urls())).collect();
    Ok(Json(json!({ "lots": lots, "next_cursor": page.next })).into_response())
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lot = state.service.lot(&caller, &slug, &lot_id).await?;
    Ok(Json(json!({ "lot": lot.to_json(state.service.blobs.urls()) })).into_response())
}

async fn bid(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody<BidInput>,
) -> Result<Response, ApiError> {
    let idem = idempotency(&headers, &format!("bid {slug} {lot_id}"), &body.document)?;
    Ok(match state.service.bid(&caller, &slug, &lot_id, body.value, idem).await? {
        BidAnswer::Accepted { bid, lot } => {
            (StatusCode::CREATED, Json(json!({ "bid": bid, "lot": lot.to_json(state.service.blobs.urls()) })))
                .into_response()
        }
        BidAnswer::Replay { status, body } => {
            (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), [(header::CONTENT_TYPE, "application/json")], body)
                .into_response()
        }
    })
}

async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let lot = state.service.end_lot(&caller, &slug, &lot_id, Ending::Now, None).await?;
    Ok(Json(json!({ "lot": lot.to_json(state.service.blobs.urls()) })).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
    body: JsonBody<CancelInput>,
) -> Result<Response, ApiError> {
    let lot = state.service.end_lot(&caller, &slug, &lot_id, Ending::Cancel, Some(body.value.reason)).await?;
    Ok(Json(json!({ "lot": lot.to_json(state.service.blobs.urls()) })).into_response())
}

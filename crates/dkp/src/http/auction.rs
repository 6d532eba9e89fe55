//! `/api/v1/guilds/{slug}/lots`: lots and bids over HTTP.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::extract::{Command, JsonBody, ListQuery, Path};
use super::{ApiError, AppState};
use crate::model::{Answer, Ending, LotView};
use crate::service::Caller;
use crate::service::auction::{BidAnswer, BidInput, CancelInput, NewLotInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/lots", post(create).get(list))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}", get(show))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/bids", post(bid))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/close", post(close))
        .route("/api/v1/guilds/{slug}/lots/{lot_id}/cancel", post(cancel))
}

/// `{"lot": …}` with `status`.
fn lot(state: &AppState, status: StatusCode, lot: &LotView) -> Response {
    (status, Json(json!({ "lot": state.wire.lot(lot) }))).into_response()
}

/// The first answer to a point-moving request, or its replay: the same bytes either way.
pub fn answered(state: &AppState, answer: &Answer) -> Response {
    let (status, body) = state.wire.answer(answer);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewLotInput>,
) -> Result<Response, ApiError> {
    let created = state.service.create_lot(&caller, &slug, body.value).await?;
    Ok(lot(&state, StatusCode::CREATED, &created))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.lots(&caller, &slug, query.get("status"), query.page()?).await?;
    let lots: Vec<_> = page.items.iter().map(|lot| state.wire.lot(lot)).collect();
    Ok(Json(json!({ "lots": lots, "next_cursor": page.next })).into_response())
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = state.service.lot(&caller, &slug, &lot_id).await?;
    Ok(lot(&state, StatusCode::OK, &found))
}

async fn bid(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
    command: Command<BidInput>,
) -> Result<Response, ApiError> {
    let answer = match state.service.bid(&caller, &slug, &lot_id, command.value, command.idempotency).await? {
        BidAnswer::Accepted { bid, lot } => Answer::Bid { bid, lot },
        BidAnswer::Replay(answer) => answer,
    };
    Ok(answered(&state, &answer))
}

async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let closed = state.service.end_lot(&caller, &slug, &lot_id, Ending::Now, None).await?;
    Ok(lot(&state, StatusCode::OK, &closed))
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, lot_id)): Path<(String, String)>,
    body: JsonBody<CancelInput>,
) -> Result<Response, ApiError> {
    let cancelled = state.service.end_lot(&caller, &slug, &lot_id, Ending::Cancel, Some(body.value.reason)).await?;
    Ok(lot(&state, StatusCode::OK, &cancelled))
}

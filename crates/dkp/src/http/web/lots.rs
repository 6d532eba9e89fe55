//! A guild's lots: the list by status, the officers' "Open lot" form, and
//! the live auction room of one lot, whose script (`assets/room.js`) follows
//! the lot over the WebSocket and bids through the API. The room's forms
//! also work without the script: a bid posted here is the same bid.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use dkp_core::Action;
use serde_json::{Value, json};

use super::super::extract::{ListQuery, Path};
use super::super::{ApiError, AppState};
use super::guild::guild_context;
use super::visit::{Form, Visit};
use super::{Outcome, finish, render, settle};
use crate::model::{Ending, LotView};
use crate::service::auction::{BidInput, ItemInput, NewLotInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}/lots", get(lots).post(open_lot))
        .route("/g/{slug}/lots/{lot_id}", get(room))
        .route("/g/{slug}/lots/{lot_id}/bids", post(bid))
        .route("/g/{slug}/lots/{lot_id}/close", post(close))
        .route("/g/{slug}/lots/{lot_id}/cancel", post(cancel))
}

const STATUSES: [&str; 4] = ["open", "closed", "cancelled", "all"];

async fn lots(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>, query: ListQuery) -> Response {
    let status = query.get("status").filter(|s| STATUSES.contains(s)).unwrap_or("open").to_owned();
    let outcome = lots_page(&state, &visit, &slug, &status, query.get("cursor"), json!({})).await;
    finish(&state, &visit, outcome)
}

async fn lots_page(
    state: &AppState,
    visit: &Visit,
    slug: &str,
    status: &str,
    cursor: Option<&str>,
    said: Value,
) -> Outcome {
    let (_, mut context) = guild_context(state, visit, slug, "lots").await?;
    let caller = visit.caller()?;
    let filter = (status != "all").then_some(status);
    let page = state.service.lots(caller, slug, filter, crate::service::page(None, cursor)?).await?;
    let lots: Vec<Value> = page.items.iter().map(|lot| state.wire.lot(lot)).collect();
    context["lots"] = json!(lots);
    context["status"] = json!(status);
    context["statuses"] = json!(STATUSES);
    context["next_cursor"] = json!(page.next);
    context["pools"] = json!(state.service.pools(caller, slug).await?);
    context["said"] = said;
    render(state, visit, "lots.html", StatusCode::OK, context)
}

/// A number typed in a form, or `None` when left empty (the API's default).
fn optional_number(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!(text))
}

/// Whole seconds typed as minutes or seconds; a value that is no number is
/// passed on as -1, which the service refuses with its own words.
fn seconds(text: &str, per_unit: i64) -> i64 {
    text.parse::<i64>().ok().and_then(|n| n.checked_mul(per_unit)).unwrap_or(-1)
}

async fn open_lot(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Response {
    let outcome = async {
        let input = NewLotInput {
            pool_id: form.get("pool_id").to_owned(),
            item: ItemInput { name: form.get("item").to_owned(), game_item_id: None },
            mode: form.get("mode").to_owned(),
            min_bid: json!(form.get("min_bid")),
            increment: optional_number(form.get("increment")),
            duration_s: seconds(form.get("duration_min"), 60),
            anti_snipe_s: Some(form.get("anti_snipe_s")).filter(|s| !s.is_empty()).map(|s| seconds(s, 1)),
            extend_s: None,
            raid_id: None,
        };
        let done = state.service.create_lot(form.visit.caller()?, &slug, input).await;
        let location = |lot: LotView| format!("/g/{slug}/lots/{}", lot.id);
        settle(&state, &form, done, location, |said| lots_page(&state, &form.visit, &slug, "open", None, said)).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

async fn room(State(state): State<AppState>, visit: Visit, Path((slug, lot_id)): Path<(String, String)>) -> Response {
    let outcome = room_page(&state, &visit, &slug, &lot_id, json!({})).await;
    finish(&state, &visit, outcome)
}

/// The names of the lot's leader and winner, and the caller's wallet in its pool.
async fn room_facts(
    state: &AppState,
    visit: &Visit,
    slug: &str,
    lot: &LotView,
    member_id: uuid::Uuid,
) -> Result<Value, ApiError> {
    let caller = visit.caller()?;
    let name = async |id: Option<uuid::Uuid>| -> Result<Option<String>, ApiError> {
        Ok(match id {
            Some(id) => state.service.member(caller, slug, id).await?.map(|m| m.name),
            None => None,
        })
    };
    let mine = state.service.standing(caller, slug, &lot.pool_id.to_string(), member_id).await?;
    Ok(json!({
        "leader": name(lot.leader_member_id.filter(|_| !lot.is_secret())).await?,
        "winner": name(lot.winner_member_id).await?,
        "available": mine.map(|s| s.available.to_string()),
    }))
}

async fn room_page(state: &AppState, visit: &Visit, slug: &str, lot_id: &str, said: Value) -> Outcome {
    let (membership, mut context) = guild_context(state, visit, slug, "lots").await?;
    let lot = state.service.lot(visit.caller()?, slug, lot_id).await?;
    context["facts"] = room_facts(state, visit, slug, &lot, membership.member_id).await?;
    context["lot"] = state.wire.lot(&lot);
    context["sealed"] = json!(lot.is_secret());
    context["runs_lots"] = json!(membership.role.may(Action::RunLots));
    context["now"] = json!(state.service.now());
    context["said"] = said;
    context["once"] = json!(uuid::Uuid::now_v7().to_string());
    render(state, visit, "lot.html", StatusCode::OK, context)
}

async fn bid(State(state): State<AppState>, Path((slug, lot_id)): Path<(String, String)>, form: Form) -> Response {
    let outcome = async {
        let key = form.idempotency(&format!("/g/{slug}/lots/{lot_id}/bids"))?;
        let input = BidInput { amount: json!(form.get("amount")) };
        let done = state.service.bid(form.visit.caller()?, &slug, &lot_id, input, key).await;
        let location = |_| format!("/g/{slug}/lots/{lot_id}");
        settle(&state, &form, done, location, |said| room_page(&state, &form.visit, &slug, &lot_id, said)).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

/// Closes now or cancels, then shows the room with the result.
async fn end(
    state: &AppState,
    form: &Form,
    slug: &str,
    lot_id: &str,
    ending: Ending,
    reason: Option<String>,
) -> Outcome {
    let done = state.service.end_lot(form.visit.caller()?, slug, lot_id, ending, reason).await;
    let location = |_| format!("/g/{slug}/lots/{lot_id}");
    settle(state, form, done, location, |said| room_page(state, &form.visit, slug, lot_id, said)).await
}

async fn close(State(state): State<AppState>, Path((slug, lot_id)): Path<(String, String)>, form: Form) -> Response {
    let outcome = end(&state, &form, &slug, &lot_id, Ending::Now, None).await;
    finish(&state, &form.visit, outcome)
}

async fn cancel(State(state): State<AppState>, Path((slug, lot_id)): Path<(String, String)>, form: Form) -> Response {
    let reason = Some(form.get("reason").to_owned());
    let outcome = end(&state, &form, &slug, &lot_id, Ending::Cancel, reason).await;
    finish(&state, &form.visit, outcome)
}

//! Raids over HTTP: a pool's earning rules, raids with their attendance and
//! kills, a raid's award, attendance rates and the loot history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

use super::auction::answered;
use super::extract::{JsonBody, Keyed, ListQuery, Path};
use super::{ApiError, AppState};
use crate::model::{Answer, RaidPage, Recorded, RulesForm};
use crate::service::Caller;
use crate::service::raids::{AttendanceInput, KillInput, NewRaidInput, RaidChangeInput, RulesInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/rules", put(set_rules).get(rules))
        .route("/api/v1/guilds/{slug}/pools/{pool_id}/attendance", get(attendance_rates))
        .route("/api/v1/guilds/{slug}/raids", post(create).get(list))
        .route("/api/v1/guilds/{slug}/raids/{raid_id}", get(show).patch(change))
        .route("/api/v1/guilds/{slug}/raids/{raid_id}/attendance", put(set_attendance))
        .route("/api/v1/guilds/{slug}/raids/{raid_id}/kills", post(add_kill))
        .route("/api/v1/guilds/{slug}/raids/{raid_id}/kills/{kill_id}", delete(remove_kill))
        .route("/api/v1/guilds/{slug}/raids/{raid_id}/award", post(award))
        .route("/api/v1/guilds/{slug}/loot", get(loot))
}

/// `{"raid": …}`, the raid's page, with `status`.
fn raid(state: &AppState, status: StatusCode, page: &RaidPage) -> Response {
    (status, Json(json!({ "raid": state.wire.raid_page(page) }))).into_response()
}

async fn set_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    body: JsonBody<RulesInput>,
) -> Result<Response, ApiError> {
    let pool = state.service.set_rules(&caller, &slug, &pool_id, body.value).await?;
    Ok(Json(json!({ "rules": RulesForm(&pool.rules) })).into_response())
}

async fn rules(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let pool = state.service.pool(&caller, &slug, &pool_id).await?;
    Ok(Json(json!({ "rules": RulesForm(&pool.rules) })).into_response())
}

async fn attendance_rates(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, pool_id)): Path<(String, String)>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let (last, include_inactive) = (query.get("last"), query.flag("include_inactive")?);
    let rates = state.service.attendance_rates(&caller, &slug, &pool_id, last, include_inactive).await?;
    let attendance: Vec<_> = rates.iter().map(|rate| state.wire.attendance_rate(rate)).collect();
    Ok(Json(json!({ "attendance": attendance })).into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    body: JsonBody<NewRaidInput>,
) -> Result<Response, ApiError> {
    let created = state.service.create_raid(&caller, &slug, body.value).await?;
    Ok(raid(&state, StatusCode::CREATED, &RaidPage::new(created)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.raids(&caller, &slug, query.get("pool_id"), query.page()?).await?;
    Ok(Json(json!({ "raids": page.items, "next_cursor": page.next })).into_response())
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let page = state.service.raid(&caller, &slug, &raid_id).await?;
    Ok(raid(&state, StatusCode::OK, &page))
}

async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id)): Path<(String, String)>,
    body: JsonBody<RaidChangeInput>,
) -> Result<Response, ApiError> {
    let page = state.service.change_raid(&caller, &slug, &raid_id, body.value).await?;
    Ok(raid(&state, StatusCode::OK, &page))
}

async fn set_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id)): Path<(String, String)>,
    body: JsonBody<AttendanceInput>,
) -> Result<Response, ApiError> {
    let page = state.service.set_attendance(&caller, &slug, &raid_id, body.value).await?;
    Ok(raid(&state, StatusCode::OK, &page))
}

async fn add_kill(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id)): Path<(String, String)>,
    body: JsonBody<KillInput>,
) -> Result<Response, ApiError> {
    let page = state.service.add_kill(&caller, &slug, &raid_id, body.value).await?;
    Ok(raid(&state, StatusCode::CREATED, &page))
}

async fn remove_kill(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id, kill_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let page = state.service.remove_kill(&caller, &slug, &raid_id, &kill_id).await?;
    Ok(raid(&state, StatusCode::OK, &page))
}

/// 201 `{entry}` with what the award wrote, 200 `{"entry": null}` when the
/// raid had nothing to pay or take back, or the answer kept under the key.
async fn award(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, raid_id)): Path<(String, String)>,
    keyed: Keyed,
) -> Result<Response, ApiError> {
    let answer = match state.service.award_raid(&caller, &slug, &raid_id, keyed.idempotency).await? {
        Recorded::Fresh(Some(entry), _) => Answer::Entry(entry),
        Recorded::Fresh(None, _) => Answer::NothingToAward,
        Recorded::Replay(answer) => answer,
    };
    Ok(answered(&state, &answer))
}

async fn loot(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Result<Response, ApiError> {
    let page = state.service.loot(&caller, &slug, query.get("member_id"), query.get("pool_id"), query.page()?).await?;
    let loot: Vec<_> = page.items.iter().map(|item| state.wire.loot(item)).collect();
    Ok(Json(json!({ "loot": loot, "next_cursor": page.next })).into_response())
}

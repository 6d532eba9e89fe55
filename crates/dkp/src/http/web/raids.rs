//! A guild's raids: the list and a new raid, and a raid's page with its
//! attendance, kills, lots and what it paid; officers record attendance and
//! kills and award the raid there. Times typed in the forms are UTC.

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
use crate::model::Raid;
use crate::service::raids::{AttendanceInput, AttendeeInput, KillInput, NewRaidInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}/raids", get(raids).post(create_raid))
        .route("/g/{slug}/raids/{raid_id}", get(raid))
        .route("/g/{slug}/raids/{raid_id}/{action}", post(record))
}

/// A time typed in a `datetime-local` field (`2026-11-30T20:00`), as UTC.
fn typed_time(text: &str) -> String {
    match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_owned(),
    }
}

async fn raids(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>, query: ListQuery) -> Response {
    let cursor = query.get("cursor").map(str::to_owned);
    let outcome = raids_page(&state, &visit, &slug, cursor.as_deref(), json!({})).await;
    finish(&state, &visit, outcome)
}

async fn raids_page(state: &AppState, visit: &Visit, slug: &str, cursor: Option<&str>, said: Value) -> Outcome {
    let (membership, mut context) = guild_context(state, visit, slug, "raids").await?;
    let caller = visit.caller()?;
    let page = state.service.raids(caller, slug, None, crate::service::page(None, cursor)?).await?;
    let pools = state.service.pools(caller, slug).await?;
    context["raids"] = json!(page.items);
    context["next_cursor"] = json!(page.next);
    context["pools"] = json!(pools);
    context["runs_raids"] = json!(membership.role.may(Action::RunRaids));
    context["today"] = json!(state.service.now().0.date().to_string());
    context["said"] = said;
    render(state, visit, "raids.html", StatusCode::OK, context)
}

async fn create_raid(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Response {
    let outcome = async {
        let input = NewRaidInput {
            pool_id: form.get("pool_id").to_owned(),
            name: form.get("name").to_owned(),
            zone: Some(form.get("zone").to_owned()).filter(|z| !z.is_empty()),
            started_at: typed_time(form.get("started_at")),
            ended_at: None,
        };
        let done = state.service.create_raid(form.visit.caller()?, &slug, input).await;
        let location = |raid: Raid| format!("/g/{slug}/raids/{}", raid.id);
        settle(&state, &form, done, location, |said| raids_page(&state, &form.visit, &slug, None, said)).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

async fn raid(State(state): State<AppState>, visit: Visit, Path((slug, raid_id)): Path<(String, String)>) -> Response {
    let outcome = raid_page(&state, &visit, &slug, &raid_id, json!({})).await;
    finish(&state, &visit, outcome)
}

async fn raid_page(state: &AppState, visit: &Visit, slug: &str, raid_id: &str, said: Value) -> Outcome {
    let (membership, mut context) = guild_context(state, visit, slug, "raids").await?;
    let caller = visit.caller()?;
    let page = state.service.raid(caller, slug, raid_id).await?;
    let members = state.service.members(caller, slug, true).await?;
    let shown = state.wire.raid_page(&page);
    // One row per member on the roster (and any past attendee no longer on
    // it), with what the raid recorded and paid for them.
    let rows: Vec<Value> = members
        .iter()
        .filter(|m| m.active || page.attendance.iter().any(|a| a.member_id == m.id))
        .map(|m| {
            let attended = page.attendance.iter().find(|a| a.member_id == m.id);
            json!({
                "member_id": m.id,
                "name": m.name,
                "attendance": attended,
                "paid": page.awarded.get(&m.id).map(ToString::to_string),
            })
        })
        .collect();
    context["raid"] = shown;
    context["rows"] = json!(rows);
    context["runs_raids"] = json!(membership.role.may(Action::RunRaids));
    context["now"] = json!(state.service.now());
    context["once"] = json!(uuid::Uuid::now_v7().to_string());
    context["said"] = said;
    render(state, visit, "raid.html", StatusCode::OK, context)
}

/// The attendance the form lists: the members ticked present, each with
/// the minutes typed for them and whether they were on time or on standby.
fn attendance(form: &Form) -> AttendanceInput {
    let on_time = form.all("on_time");
    let standby = form.all("standby");
    let attendees = form
        .all("present")
        .into_iter()
        .map(|member_id| AttendeeInput {
            minutes: form.get(&format!("minutes:{member_id}")).parse().unwrap_or(-1),
            on_time: on_time.contains(&member_id),
            standby: standby.contains(&member_id),
            member_id,
        })
        .collect();
    AttendanceInput { attendees }
}

async fn perform(state: &AppState, form: &Form, slug: &str, raid_id: &str, action: &str) -> Result<(), ApiError> {
    let caller = form.visit.caller()?;
    match action {
        "attendance" => drop(state.service.set_attendance(caller, slug, raid_id, attendance(form)).await?),
        "kills" => {
            let input = KillInput { boss: form.get("boss").to_owned(), killed_at: typed_time(form.get("killed_at")) };
            drop(state.service.add_kill(caller, slug, raid_id, input).await?);
        }
        "award" => {
            let idem = form.idempotency(&format!("/g/{slug}/raids/{raid_id}/award"))?;
            drop(state.service.award_raid(caller, slug, raid_id, idem).await?);
        }
        _ => return Err(ApiError::NotFound),
    }
    Ok(())
}

async fn record(
    State(state): State<AppState>,
    Path((slug, raid_id, action)): Path<(String, String, String)>,
    form: Form,
) -> Response {
    let outcome = async {
        let done = perform(&state, &form, &slug, &raid_id, &action).await;
        let location = |()| format!("/g/{slug}/raids/{raid_id}");
        settle(&state, &form, done, location, |said| raid_page(&state, &form.visit, &slug, &raid_id, said)).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

//! A guild's pages for every member: standings (`/g/{slug}`), a member's
//! page with history, characters and balance chart, pools, the audit log.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use dkp_core::ledger::AccountRef;
use dkp_core::{Action, Points, Role};
use serde_json::{Value, json};

use super::super::extract::{ListQuery, Path};
use super::super::{ApiError, AppState};
use super::visit::{Form, Visit};
use super::{Outcome, chart, finish, render, settle};
use crate::model::{Membership, Pool, Standing};
use crate::service::ledger::NewPoolInput;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}", get(standings))
        .route("/g/{slug}/members/{member_id}", get(member))
        .route("/g/{slug}/pools", get(pools).post(create_pool))
        .route("/g/{slug}/audit", get(audit))
}

/// The caller's place in the guild, and what every page of it shows: the
/// guild, the section, and what the caller's role lets them do.
pub(super) async fn guild_context(
    state: &AppState,
    visit: &Visit,
    slug: &str,
    section: &str,
) -> Result<(Membership, Value), ApiError> {
    let membership = state.service.guild_access(visit.caller()?, slug, Action::Read).await?;
    let role = membership.role;
    let context = json!({
        "guild": state.wire.guild(&membership.guild),
        "section": section,
        "officer": role.may(Action::MovePoints),
        "owner": role == Role::Owner,
        "member_id": membership.member_id,
    });
    Ok((membership, context))
}

/// The pool the query names (`?pool=`), else the guild's first.
pub(super) fn chosen_pool<'p>(pools: &'p [Pool], query: &ListQuery) -> Option<&'p Pool> {
    let named = query.get("pool").and_then(|id| pools.iter().find(|p| p.id.to_string() == id));
    named.or_else(|| pools.first())
}

/// The standings' columns: what each sorts by, and how.
const COLUMNS: [(&str, bool); 5] =
    [("name", false), ("balance", true), ("available", true), ("earned", true), ("spent", true)];

fn sort_standings(standings: &mut [Standing], column: &str, descending: bool) {
    let points = |s: &Standing| match column {
        "available" => s.available,
        "earned" => s.earned,
        "spent" => s.spent,
        _ => s.balance,
    };
    if column == "name" {
        standings.sort_by_cached_key(|s| s.name.to_lowercase());
    } else {
        standings.sort_by_key(points);
    }
    if descending {
        standings.reverse();
    }
}

async fn standings(
    State(state): State<AppState>,
    visit: Visit,
    Path(slug): Path<String>,
    query: ListQuery,
) -> Response {
    let outcome = standings_page(&state, &visit, &slug, &query).await;
    finish(&state, &visit, outcome)
}

async fn standings_page(state: &AppState, visit: &Visit, slug: &str, query: &ListQuery) -> Outcome {
    let (_, mut context) = guild_context(state, visit, slug, "standings").await?;
    let caller = visit.caller()?;
    let pools = state.service.pools(caller, slug).await?;
    context["pools"] = json!(pools);
    let Some(pool) = chosen_pool(&pools, query) else {
        return render(state, visit, "guild.html", StatusCode::OK, context);
    };
    let mut rows = state.service.standings(caller, slug, &pool.id.to_string(), false).await?;
    let column = query.get("sort").filter(|c| COLUMNS.iter().any(|(name, _)| name == c)).unwrap_or("balance");
    let numeric = COLUMNS.iter().any(|(name, numeric)| *name == column && *numeric);
    // Points read best largest first, names from A.
    let descending = query.get("dir").map_or(numeric, |dir| dir == "desc");
    sort_standings(&mut rows, column, descending);
    let columns: Vec<Value> = COLUMNS
        .iter()
        .map(|(name, numeric)| {
            let current = *name == column;
            let next = if current { !descending } else { *numeric };
            let dir = if next { "desc" } else { "asc" };
            let aria = match (current, descending) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            };
            json!({"name": name, "numeric": numeric, "aria": aria, "href": format!("?pool={}&sort={name}&dir={dir}", pool.id)})
        })
        .collect();
    context["pool"] = json!(pool);
    context["standings"] = json!(rows);
    context["columns"] = json!(columns);
    render(state, visit, "guild.html", StatusCode::OK, context)
}

async fn member(
    State(state): State<AppState>,
    visit: Visit,
    Path((slug, member_id)): Path<(String, String)>,
    query: ListQuery,
) -> Response {
    let outcome = member_page(&state, &visit, &slug, &member_id, &query).await;
    finish(&state, &visit, outcome)
}

async fn member_page(state: &AppState, visit: &Visit, slug: &str, member_id: &str, query: &ListQuery) -> Outcome {
    let (_, mut context) = guild_context(state, visit, slug, "standings").await?;
    let caller = visit.caller()?;
    let id = crate::service::id(member_id).map_err(|_| ApiError::NotFound)?;
    let member = state.service.member(caller, slug, id).await?.ok_or(ApiError::NotFound)?;
    context["member"] = json!(member);
    context["characters"] = json!(state.service.characters(caller, slug, Some(member_id)).await?);
    let pools = state.service.pools(caller, slug).await?;
    if let Some(pool) = chosen_pool(&pools, query) {
        let pool_id = pool.id.to_string();
        let standing = state.service.standing(caller, slug, &pool_id, member.id).await?;
        let page = crate::service::page(Some("500"), None)?;
        let entries = state.service.entries(caller, slug, &pool_id, Some(member_id), page).await?.items;
        let changes: Vec<Points> = entries
            .iter()
            .map(|entry| {
                let mine = entry.postings.iter().filter(|p| p.account == AccountRef::Member(member.id));
                mine.fold(Points::ZERO, |sum, p| sum.checked_add(p.amount).unwrap_or(sum))
            })
            .collect();
        let history: Vec<Value> = entries
            .iter()
            .zip(&changes)
            .map(|(e, change)| json!({"created_at": e.created_at, "kind": e.kind.as_str(), "reason": e.reason, "amount": change.to_string()}))
            .collect();
        if let Some(standing) = &standing {
            context["chart"] = json!(chart::chart(&chart::balances(standing.balance, &changes)));
        }
        context["standing"] = json!(standing);
        context["history"] = json!(history);
        context["pool"] = json!(pool);
    }
    render(state, visit, "member.html", StatusCode::OK, context)
}

async fn pools(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>) -> Response {
    let outcome = pools_page(&state, &visit, &slug, json!({})).await;
    finish(&state, &visit, outcome)
}

async fn pools_page(state: &AppState, visit: &Visit, slug: &str, said: Value) -> Outcome {
    let (_, mut context) = guild_context(state, visit, slug, "pools").await?;
    context["pools"] = json!(state.service.pools(visit.caller()?, slug).await?);
    context["said"] = said;
    render(state, visit, "pools.html", StatusCode::OK, context)
}

async fn create_pool(State(state): State<AppState>, Path(slug): Path<String>, form: Form) -> Response {
    let outcome = async {
        let input = NewPoolInput {
            name: form.get("name").to_owned(),
            allow_negative: form.get("allow_negative") == "on",
            zero_sum: form.get("zero_sum") == "on",
        };
        let done = state.service.create_pool(form.visit.caller()?, &slug, input).await;
        let location = |pool: Pool| format!("/g/{slug}?pool={}", pool.id);
        settle(&state, &form, done, location, |said| pools_page(&state, &form.visit, &slug, said)).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

/// `?action=` and `?target=` narrow the log to one kind of change or target.
async fn audit(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>, query: ListQuery) -> Response {
    let outcome = async {
        let (_, mut context) = guild_context(&state, &visit, &slug, "audit").await?;
        let caller = visit.caller()?;
        let page = state.service.audit(caller, &slug, query.page()?).await?;
        let members = state.service.members(caller, &slug, true).await?;
        let actor = |id: &Option<uuid::Uuid>| members.iter().find(|m| m.user_id.is_some() && m.user_id == *id).map(|m| m.name.clone());
        let action = query.get("action").unwrap_or_default();
        let target = query.get("target").unwrap_or_default();
        let rows: Vec<Value> = page
            .items
            .iter()
            .filter(|r| (action.is_empty() || r.action == action) && (target.is_empty() || r.target_type == target))
            .map(|r| json!({"created_at": r.created_at, "action": r.action, "target_type": r.target_type, "target_id": r.target_id, "request_id": r.request_id, "actor": actor(&r.actor_id)}))
            .collect();
        context["rows"] = json!(rows);
        context["filter"] = json!({"action": action, "target": target});
        context["next_cursor"] = json!(page.next);
        render(&state, &visit, "audit.html", StatusCode::OK, context)
    }
    .await;
    finish(&state, &visit, outcome)
}

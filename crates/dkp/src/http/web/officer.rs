//! The officers' console (`/g/{slug}/console`): award many members at once,
//! adjust, transfer, reverse an entry (after a confirmation), add members
//! and, for owners, change roles. Every form that moves points carries an
//! idempotency key written into it when shown, so a form sent twice (a
//! double click, a resend after a timeout) moves points once.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use dkp_core::Action;
use serde_json::{Value, json};

use super::super::extract::{ListQuery, Path};
use super::super::{ApiError, AppState};
use super::guild::{chosen_pool, guild_context};
use super::visit::{Form, Visit};
use super::{Outcome, at, finish, refusal, render, see_other};
use crate::service::ledger::{AdjustmentInput, AwardInput, ReversalInput, TransferInput};
use crate::service::members::{MemberPatch, NewMemberInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}/console", get(console))
        .route("/g/{slug}/console/{action}", post(act))
        .route("/g/{slug}/import", get(import))
}

/// The import page: the file goes to the import API from the page's script,
/// first as a dry run whose report the officer reads before importing.
async fn import(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>) -> Response {
    let outcome = async {
        let (membership, mut context) = guild_context(&state, &visit, &slug, "console").await?;
        if !membership.role.may(Action::MovePoints) {
            return Err(crate::service::Error::Forbidden.into());
        }
        context["pools"] = json!(state.service.pools(visit.caller()?, &slug).await?);
        context["formats"] = json!(dkp_import::Format::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>());
        render(&state, &visit, "import.html", StatusCode::OK, context)
    }
    .await;
    finish(&state, &visit, outcome)
}

async fn console(State(state): State<AppState>, visit: Visit, Path(slug): Path<String>, query: ListQuery) -> Response {
    let pool = query.get("pool").unwrap_or_default().to_owned();
    let said = query.get("done").map_or_else(|| json!({}), |done| json!({"done": done}));
    let outcome = console_page(&state, &visit, &slug, &pool, said).await;
    finish(&state, &visit, outcome)
}

/// The console for the pool `pool_id` (the first when empty), with `said`:
/// the problem of a refused form and what was typed, or a confirmation asked.
async fn console_page(state: &AppState, visit: &Visit, slug: &str, pool_id: &str, said: Value) -> Outcome {
    let (membership, mut context) = guild_context(state, visit, slug, "console").await?;
    if !membership.role.may(Action::MovePoints) {
        return Err(crate::service::Error::Forbidden.into());
    }
    let caller = visit.caller()?;
    let pools = state.service.pools(caller, slug).await?;
    let query = ListQuery([("pool".to_owned(), pool_id.to_owned())].into_iter().collect());
    if let Some(pool) = chosen_pool(&pools, &query) {
        let id = pool.id.to_string();
        context["standings"] = json!(state.service.standings(caller, slug, &id, false).await?);
        let recent = state.service.entries(caller, slug, &id, None, crate::service::page(Some("20"), None)?).await?;
        context["entries"] = json!(recent.items);
        context["pool"] = json!(pool);
    }
    context["pools"] = json!(pools);
    context["members"] = json!(state.service.members(caller, slug, false).await?);
    context["manages_roles"] = json!(membership.role.may(Action::ManageRoles));
    context["said"] = said;
    context["once"] = json!(uuid::Uuid::now_v7().to_string());
    render(state, visit, "console.html", StatusCode::OK, context)
}

/// Does what the form asks; `Ok(None)` when a reversal waits for its confirmation.
async fn perform(state: &AppState, form: &Form, slug: &str, action: &str) -> Result<Option<()>, ApiError> {
    let caller = form.visit.caller()?;
    let service = &state.service;
    let pool = form.get("pool_id");
    let reason = || form.get("reason").to_owned();
    let amount = || json!(form.get("amount"));
    let idem = form.idempotency(&format!("/g/{slug}/console/{action}"))?;
    match action {
        "award" => {
            let input = AwardInput { member_ids: form.all("member_ids"), amount: amount(), reason: reason() };
            service.award(caller, slug, pool, input, idem).await?;
        }
        "adjust" => {
            let input =
                AdjustmentInput { member_id: form.get("member_id").to_owned(), amount: amount(), reason: reason() };
            service.adjust(caller, slug, pool, input, idem).await?;
        }
        "transfer" => {
            let input = TransferInput {
                from_member_id: form.get("from_member_id").to_owned(),
                to_member_id: form.get("to_member_id").to_owned(),
                amount: amount(),
                reason: reason(),
            };
            service.transfer(caller, slug, pool, input, idem).await?;
        }
        "reverse" if form.get("confirm") != "yes" => return Ok(None),
        "reverse" => {
            service.reverse(caller, slug, form.get("entry_id"), ReversalInput { reason: reason() }, idem).await?;
        }
        "add-member" => {
            let (username, name) = (form.get("username"), form.get("name"));
            let input = NewMemberInput {
                username: Some(username.to_owned()).filter(|u| !u.is_empty()),
                name: Some(name.to_owned()).filter(|n| !n.is_empty()),
                role: Some(form.get("role").to_owned()).filter(|r| !r.is_empty()),
            };
            service.add_member(caller, slug, input).await?;
        }
        "role" => {
            let patch = MemberPatch { role: Some(form.get("role").to_owned()), username: None, active: None };
            service.change_member(caller, slug, form.get("member_id"), patch).await?;
        }
        _ => return Err(ApiError::NotFound),
    }
    Ok(Some(()))
}

async fn act(State(state): State<AppState>, Path((slug, action)): Path<(String, String)>, form: Form) -> Response {
    let outcome = async {
        let pool = form.get("pool_id").to_owned();
        let said = match perform(&state, &form, &slug, &action).await {
            Ok(Some(())) => {
                let done = form_urlencoded::Serializer::new(String::new())
                    .append_pair("pool", &pool)
                    .append_pair("done", &action)
                    .finish();
                return see_other(&form.visit, &format!("/g/{slug}/console?{done}"));
            }
            Ok(None) => json!({"confirm": {"entry_id": form.get("entry_id"), "reason": form.get("reason")}}),
            Err(error) => {
                let (status, problem) = refusal(&state, &form.visit, error)?;
                let said = json!({"problem": problem, "action": action, "typed": form.document()});
                return at(status, console_page(&state, &form.visit, &slug, &pool, said).await);
            }
        };
        console_page(&state, &form.visit, &slug, &pool, said).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

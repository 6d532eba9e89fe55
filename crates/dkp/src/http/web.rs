//! The web UI: pages rendered by the service from templates compiled into
//! the binary, forms that post back to it, and one small script of our own
//! for the live auction room. Handlers here call the service as the API's
//! do and show its answers as HTML; a refused form is shown again with the
//! reason, a successful one redirects (so a reload never posts twice).
//!
//! Every answer carries a strict Content-Security-Policy: scripts, styles and
//! connections only from this origin, no inline script or style, no frames.

mod assets;
mod chart;
mod guild;
mod home;
mod lots;
mod officer;
pub mod pages;
mod raids;
mod visit;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;

use super::{ApiError, AppState};
use crate::service::Error;
pub use pages::Pages;
use visit::{Form, Visit};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(home::router())
        .merge(guild::router())
        .merge(officer::router())
        .merge(lots::router())
        .merge(raids::router())
        .merge(assets::router())
        // Pages are text that shrinks several times over (a standings table
        // of a thousand rows is about 100 KB as HTML and a fifth of it sent).
        .layer(CompressionLayer::new())
}

/// What a page handler comes to: the page, a redirect, or an error shown as a page.
type Outcome = Result<Response, ApiError>;

/// The current path with `?lang=` set to `lang`.
fn with_lang(path: &str, lang: pages::Lang) -> String {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let kept = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "lang");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(kept);
    query.append_pair("lang", lang.as_str());
    format!("{route}?{}", query.finish())
}

/// Renders `template` with `context` plus what every page shows (the
/// language, the signed-in user, the CSRF token).
fn render(state: &AppState, visit: &Visit, template: &str, status: StatusCode, mut context: Value) -> Outcome {
    let user = visit.caller.as_ref().map(|c| json!({"username": c.user.username, "display_name": c.user.display_name}));
    let languages: Vec<Value> = pages::Lang::ALL
        .iter()
        .map(|lang| json!({"code": lang.as_str(), "href": with_lang(&visit.path, *lang), "current": *lang == visit.lang}))
        .collect();
    context["lang"] = json!(visit.lang.as_str());
    context["languages"] = json!(languages);
    context["user"] = json!(user);
    context["csrf"] = json!(visit.csrf);
    if context.get("said").is_none() {
        context["said"] = json!({});
    }
    let html = state
        .pages
        .render(template, minijinja::Value::from_serialize(&context))
        .map_err(|e| Error::internal(anyhow::anyhow!("the page {template} did not render: {e:#}")))?;
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(policy) = state.pages.policy() {
        headers.insert(HeaderName::from_static("content-security-policy"), policy.clone());
    }
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("same-origin"));
    for (name, value) in visit.cookie_headers() {
        headers.append(name, value);
    }
    Ok(response)
}

/// 303 to `location`, with the visit's cookies.
fn see_other(visit: &Visit, location: &str) -> Outcome {
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response();
    for (name, value) in visit.cookie_headers() {
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

/// The page of an error: sign in for a visitor the page needs to know, the
/// error's status and words otherwise. Faults of the server are logged with
/// the request id and shown without their cause.
fn finish(state: &AppState, visit: &Visit, outcome: Outcome) -> Response {
    let error = match outcome {
        Ok(response) => return response,
        Err(error) => error,
    };
    if matches!(error, ApiError::Unauthenticated | ApiError::Service(Error::Unauthenticated)) {
        let next = form_urlencoded::Serializer::new(String::new()).append_pair("next", &visit.path).finish();
        return see_other(visit, &format!("/?{next}")).unwrap_or_else(IntoResponse::into_response);
    }
    error.log_cause();
    let (status, body) = error.status_and_body();
    let code = body["error"]["code"].as_str().unwrap_or("internal").to_owned();
    let problem = problem(state, visit, &code, body["error"]["message"].as_str().unwrap_or_default(), status);
    render(state, visit, "problem.html", status, json!({"problem": problem}))
        .unwrap_or_else(|_| (status, code).into_response())
}

/// What a page says of a refusal: a sentence in the page's language for
/// the code, and the service's own words (which name amounts and fields).
fn problem(state: &AppState, visit: &Visit, code: &str, message: &str, status: StatusCode) -> Value {
    let key = format!("error.{code}");
    let key = if state.pages.has(&key) { key } else { format!("error.status_{}", status.as_u16() / 100) };
    let detail = if status.is_server_error() { "" } else { message };
    json!({"code": code, "title": state.pages.text(visit.lang, &key), "detail": detail})
}

/// A refused form's problem and status, when it is a refusal the form
/// shows again with the reason (a 409 or 422, a 429); the error itself
/// otherwise, for the error page.
fn refusal(state: &AppState, visit: &Visit, error: ApiError) -> Result<(StatusCode, Value), ApiError> {
    let (status, body) = error.status_and_body();
    if !status.is_client_error() || matches!(status.as_u16(), 401 | 403 | 404) {
        return Err(error);
    }
    let code = body["error"]["code"].as_str().unwrap_or_default();
    Ok((status, problem(state, visit, code, body["error"]["message"].as_str().unwrap_or_default(), status)))
}

/// What a form comes to: on success the browser is sent to where
/// `location` says; refused, the form's page is shown again by `again`
/// with `said` (the problem and what was typed) at the refusal's status.
async fn settle<T, E, Fut>(
    state: &AppState,
    form: &Form,
    done: Result<T, E>,
    location: impl FnOnce(T) -> String,
    again: impl FnOnce(Value) -> Fut,
) -> Outcome
where
    E: Into<ApiError>,
    Fut: Future<Output = Outcome>,
{
    match done {
        Ok(value) => see_other(&form.visit, &location(value)),
        Err(error) => {
            let (status, problem) = refusal(state, &form.visit, error.into())?;
            at(status, again(json!({"problem": problem, "typed": form.document()})).await)
        }
    }
}

/// The page of `outcome` answered with `status`.
fn at(status: StatusCode, outcome: Outcome) -> Outcome {
    let mut response = outcome?;
    *response.status_mut() = status;
    Ok(response)
}

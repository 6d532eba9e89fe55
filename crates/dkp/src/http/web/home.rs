//! `/`: signing up, in and out, the caller's guilds and a new guild.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::super::accounts::session_cookie;
use super::super::extract::ClientAddress;
use super::super::{ApiError, AppState};
use super::visit::{Form, Visit};
use super::{Outcome, at, finish, refusal, render, see_other, settle};
use crate::model::Membership;
use crate::service::Error;
use crate::service::accounts::{Login, Registration};
use crate::service::guilds::NewGuildInput;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup).post(create_account))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/guilds", post(create_guild))
}

/// Where to go after signing in: a path of this site only.
fn next_of(path: &str) -> String {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let next = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "next").map(|(_, v)| v.into_owned());
    // Only visible ASCII: browsers drop tabs and line breaks, so "/\t/evil.example"
    // would otherwise become "//evil.example", another site.
    let own = |n: &String| {
        n.starts_with('/') && !n.starts_with("//") && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    };
    next.filter(own).unwrap_or_else(|| "/".to_owned())
}

async fn home(State(state): State<AppState>, visit: Visit) -> Response {
    let outcome = home_page(&state, &visit, json!({})).await;
    finish(&state, &visit, outcome)
}

async fn home_page(state: &AppState, visit: &Visit, mut context: Value) -> Outcome {
    if let Some(caller) = &visit.caller {
        let guilds: Vec<_> = state.service.me(caller).await?.iter().map(|m| state.wire.membership(m)).collect();
        context["guilds"] = json!(guilds);
    } else if context.get("next").is_none() {
        context["next"] = json!(next_of(&visit.path));
    }
    render(state, visit, "home.html", StatusCode::OK, context)
}

async fn signup(State(state): State<AppState>, visit: Visit) -> Response {
    let outcome = render(&state, &visit, "signup.html", StatusCode::OK, json!({}));
    finish(&state, &visit, outcome)
}

/// Signs the form's user in and sends the browser to `next` with the session cookie.
async fn start_session(state: &AppState, form: &Form, address: &str, next: &str) -> Outcome {
    let login = Login { username: form.get("username").to_owned(), password: form.get("password").to_owned() };
    let (token, _) = state.service.login_from(login, address, &form.visit.request_id).await?;
    let cookie = session_cookie(state, &token, i64::from(state.service.session_ttl_hours()) * 3600);
    let mut response = see_other(&form.visit, next)?;
    response.headers_mut().append(SET_COOKIE, cookie.parse().map_err(|_| ApiError::Unauthenticated)?);
    Ok(response)
}

async fn create_account(State(state): State<AppState>, ClientAddress(address): ClientAddress, form: Form) -> Response {
    let outcome = async {
        let display_name = Some(form.get("display_name").to_owned()).filter(|n| !n.is_empty());
        let username = form.get("username").to_owned();
        let registration = Registration { username, password: form.get("password").to_owned(), display_name };
        match state.service.register(registration, &form.visit.request_id).await {
            Ok(_) => start_session(&state, &form, &address, "/").await,
            Err(error) => {
                let again = |said: Value| {
                    std::future::ready(render(
                        &state,
                        &form.visit,
                        "signup.html",
                        StatusCode::OK,
                        json!({"said": said}),
                    ))
                };
                settle(&state, &form, Err::<(), _>(error), |()| String::new(), again).await
            }
        }
    }
    .await;
    finish(&state, &form.visit, outcome)
}

async fn sign_in(State(state): State<AppState>, ClientAddress(address): ClientAddress, form: Form) -> Response {
    let outcome = async {
        let next = next_of(&format!("?next={}", urlencode(form.get("next"))));
        let (status, problem) = match start_session(&state, &form, &address, &next).await {
            Ok(response) => return Ok(response),
            // Wrong credentials are this form's own refusal, not a page that needs a session.
            Err(ApiError::Service(Error::Unauthenticated)) => {
                let title = state.pages.text(form.visit.lang, "error.bad_credentials");
                (StatusCode::UNAUTHORIZED, json!({"code": "unauthenticated", "title": title, "detail": ""}))
            }
            Err(error) => refusal(&state, &form.visit, error)?,
        };
        let context = json!({"problem": problem, "typed": {"username": form.get("username")}, "next": next});
        at(status, home_page(&state, &form.visit, context).await)
    }
    .await;
    finish(&state, &form.visit, outcome)
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn sign_out(State(state): State<AppState>, form: Form) -> Response {
    let outcome = async {
        if let Some(caller) = &form.visit.caller {
            state.service.logout(caller).await?;
        }
        let mut response = see_other(&form.visit, "/")?;
        let cleared = session_cookie(&state, "", 0);
        response.headers_mut().append(SET_COOKIE, cleared.parse().map_err(|_| ApiError::Unauthenticated)?);
        Ok(response)
    }
    .await;
    finish(&state, &form.visit, outcome)
}

async fn create_guild(State(state): State<AppState>, form: Form) -> Response {
    let outcome = async {
        let caller = form.visit.caller()?;
        let input = NewGuildInput { name: form.get("name").to_owned(), slug: form.get("slug").to_owned() };
        let done = state.service.create_guild(caller, input).await;
        let location = |membership: Membership| format!("/g/{}", membership.guild.slug);
        settle(&state, &form, done, location, |said| home_page(&state, &form.visit, json!({"said": said}))).await
    }
    .await;
    finish(&state, &form.visit, outcome)
}

#[cfg(test)]
mod tests {
    use super::next_of;

    #[test]
    fn after_signing_in_a_browser_goes_only_to_a_page_of_this_site() {
        assert_eq!(next_of("/?next=%2Fg%2Fowls%3Fpool%3D1"), "/g/owls?pool=1");
        for elsewhere in
            ["//evil.example", "/%09/evil.example", "/%0a/evil.example", "/\\evil.example", "https://evil.example", ""]
        {
            let path = format!("/?next={}", elsewhere.replace('\\', "%5C"));
            assert_eq!(next_of(&path), "/", "{elsewhere}");
        }
    }
}

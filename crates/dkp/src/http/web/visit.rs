//! What every page knows of its request (`Visit`): who is signed in, by the
//! session cookie alone; the language; the CSRF token. And what every form
//! sends (`Form`): its fields, accepted only with the token of this browser
//! and from this service's own origin.
//!
//! The CSRF token is a random value kept in a cookie of its own (`dkp_csrf`,
//! HttpOnly, `SameSite=Strict`) and written into every form; a post is
//! taken only when the two agree, which another site cannot arrange since it
//! can neither read the cookie nor set it. The `Origin` check of the API
//! (`origin`) applies too.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{ACCEPT_LANGUAGE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use serde_json::{Map, Value};

use super::super::extract::{RequestId, SESSION_COOKIE, cookie};
use super::super::{ApiError, AppState};
use super::pages::Lang;
use crate::service::idempotency::Request as Idempotency;
use crate::service::{self, Caller};

const CSRF_COOKIE: &str = "dkp_csrf";
const LANG_COOKIE: &str = "dkp_lang";

/// The largest form accepted (an award to a few hundred members fits).
const FORM_LIMIT: usize = 256 * 1024;

/// One request for a page.
pub struct Visit {
    /// The signed-in user, if the session cookie names a live session.
    pub caller: Option<Caller>,
    /// The id of the request, as logged and audited.
    pub request_id: String,
    pub lang: Lang,
    /// The path and query of the request, for links that switch language.
    pub path: String,
    pub csrf: String,
    /// Cookies to set with the answer: a new CSRF token, a chosen language.
    pub cookies: Vec<String>,
    pub secure: bool,
}

impl Visit {
    /// The signed-in caller, or 401 (which a page answers by sending the
    /// browser to sign in).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller.as_ref().ok_or(ApiError::Unauthenticated)
    }

    /// The `Set-Cookie` values the answer carries.
    pub fn cookie_headers(&self) -> impl Iterator<Item = (axum::http::HeaderName, HeaderValue)> + '_ {
        self.cookies.iter().filter_map(|c| HeaderValue::from_str(c).ok()).map(|value| (SET_COOKIE, value))
    }

    fn cookie(&self, name: &str, value: &str, attributes: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; {attributes}{secure}")
    }
}

fn query_lang(parts: &Parts) -> Option<Lang> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::parse(&v))
}

fn fresh_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| service::Error::internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Visit, ApiError> {
        let RequestId(request_id) = RequestId::from_request_parts(parts, state).await?;
        let headers = &parts.headers;
        let chosen = query_lang(parts);
        let lang = chosen
            .or_else(|| cookie(headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(Lang::preferred))
            .unwrap_or(Lang::En);
        let known = cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 48 && t.bytes().all(|b| b.is_ascii_hexdigit()));
        let csrf = match known {
            Some(token) => token.to_owned(),
            None => fresh_token()?,
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let secure = state.secure_cookies;
        let mut visit = Visit { caller: None, request_id, lang, path, csrf, cookies: Vec::new(), secure };
        if known.is_none() {
            visit.cookies.push(visit.cookie(CSRF_COOKIE, &visit.csrf, "HttpOnly; SameSite=Strict"));
        }
        if let Some(lang) = chosen {
            visit.cookies.push(visit.cookie(LANG_COOKIE, lang.as_str(), "SameSite=Lax; Max-Age=31536000"));
        }
        if let Some(token) = cookie(headers, SESSION_COOKIE) {
            if let Some(user) = state.service.authenticate(token).await? {
                let reads = super::super::read_after::reads(&parts.headers);
                let token_hash = service::accounts::token_hash(token);
                visit.caller = Some(Caller { user, token_hash, request_id: visit.request_id.clone(), reads });
            }
        }
        Ok(visit)
    }
}

/// A submitted form: its fields in order (a field may repeat, as the
/// members of an award do), with the visit it came in.
pub struct Form {
    pub visit: Visit,
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of `name`, trimmed; empty when not sent.
    pub fn get(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).collect()
    }

    /// The form's `Idempotency-Key` (written into the form when shown, as
    /// `idempotency_key`), bound to `path` and the form's fields: a form sent
    /// twice moves points once. `None` when the form carries no key.
    pub fn idempotency(&self, path: &str) -> Result<Option<Idempotency>, ApiError> {
        let key = self.get("idempotency_key");
        if key.is_empty() {
            return Ok(None);
        }
        Ok(Some(Idempotency::new(&format!("web:{key}"), "POST", path, &self.document())?))
    }

    /// The fields as a JSON object, the form's identity for idempotency
    /// (the token and the key itself left out).
    pub fn document(&self) -> Value {
        let mut map = Map::new();
        for (name, value) in self.fields.iter().filter(|(k, _)| k != "csrf" && k != "idempotency_key") {
            match map.get_mut(name) {
                Some(Value::Array(values)) => values.push(Value::String(value.clone())),
                Some(one) => *one = Value::Array(vec![one.clone(), Value::String(value.clone())]),
                None => {
                    map.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        Value::Object(map)
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, state: &AppState) -> Result<Form, ApiError> {
        let (mut parts, body) = request.into_parts();
        state.origin.check(&Method::POST, false, &parts.headers)?;
        let visit = Visit::from_request_parts(&mut parts, state).await?;
        let bytes = to_bytes(body, FORM_LIMIT).await.map_err(|_| ApiError::PayloadTooLarge { limit: FORM_LIMIT })?;
        let fields: Vec<(String, String)> =
            form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        // A browser without the cookie yet has had a new token made for this
        // very request, which no form can carry.
        let fresh = visit.cookies.iter().any(|c| c.starts_with(CSRF_COOKIE));
        if fresh || sent != Some(visit.csrf.as_str()) {
            return Err(ApiError::CrossOrigin);
        }
        Ok(Form { visit, fields })
    }
}

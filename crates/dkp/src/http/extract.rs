//! Extractors: who is calling, the path, the JSON body, the idempotency key,
//! the query string. Each failure is an `ApiError` with the contract's code,
//! in the contract's envelope (never the framework's plain-text rejections).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, AppState, BODY_LIMIT};
use crate::model::PageRequest;
use crate::service::idempotency::Request as Idempotency;
use crate::service::{self, Caller};

/// The name of the session cookie the web UI logs in with.
pub const SESSION_COOKIE: &str = "dkp_session";

/// The id of the request being served, as logged and audited.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string())))
    }
}

/// The address of the client: the peer, or behind a trusted balancer the
/// last `X-Forwarded-For` entry (the one the balancer itself added).
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|entry| entry.parse::<std::net::IpAddr>().is_ok());
            if let Some(address) = forwarded {
                return Ok(ClientAddress(address.to_owned()));
            }
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
        Ok(ClientAddress(peer.unwrap_or_else(|| "unknown".to_owned())))
    }
}

/// The credentials a request carries: its bearer token, or else its session
/// cookie, which a browser attaches to requests any site makes (so those are
/// checked for where they come from, see `origin`).
pub struct Credentials {
    pub token: String,
    pub by_cookie: bool,
}

impl Credentials {
    pub fn of(headers: &HeaderMap) -> Option<Credentials> {
        if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            let (scheme, token) = value.split_once(' ')?;
            let token = scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())?;
            return Some(Credentials { token: token.to_owned(), by_cookie: false });
        }
        cookie(headers, SESSION_COOKIE).map(|token| Credentials { token: token.to_owned(), by_cookie: true })
    }
}

/// The value of the cookie `name`, if the request sends a non-empty one.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Credentials { token, by_cookie } = Credentials::of(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        if by_cookie {
            state.origin.check(&parts.method, false, &parts.headers)?;
        }
        let user = state.service.authenticate(&token).await?.ok_or(ApiError::Unauthenticated)?;
        let RequestId(request_id) = RequestId::from_request_parts(parts, state).await?;
        let reads = super::read_after::reads(&parts.headers);
        Ok(Caller { user, token_hash: service::accounts::token_hash(&token), request_id, reads })
    }
}

/// The parameters of the path. A segment that does not decode (`%ff`) names
/// nothing: 404 `not_found`, like any id the service never gave out.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::NotFound),
            Err(other) => {
                Err(service::Error::internal(anyhow::anyhow!("path parameters: {}", other.body_text())).into())
            }
        }
    }
}

/// A JSON body: 415 unless sent as JSON, 413 past the size limit, 400
/// `invalid_json` when it does not parse or has the wrong shape.
pub struct JsonBody<T> {
    pub value: T,
    /// The parsed document, for the idempotency fingerprint.
    document: Value,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit: BODY_LIMIT })?;
        let document: Value = serde_json::from_slice(&bytes)
            .or_else(|e| serde_json::from_slice(&quote_huge_numbers(&bytes)).map_err(|_| e))
            .map_err(|e| ApiError::invalid_json(format!("the body is not JSON: {e}")))?;
        let value =
            T::deserialize(&document).map_err(|e| ApiError::invalid_json(format!("the body does not fit: {e}")))?;
        Ok(JsonBody { value, document })
    }
}

/// The body with every number too large for a float (`1e400`, a 400-digit
/// integer), which JSON allows but no parser holds, written as a string
/// instead: the field it is in then refuses it in its own terms (an amount
/// with 422 `invalid_amount`) rather than the whole body failing to parse.
/// Strings are copied as they are.
fn quote_huge_numbers(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut at = 0;
    while at < body.len() {
        let start = at;
        match body[at] {
            b'"' => {
                at += 1;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                at = (at + 1).min(body.len());
                out.extend_from_slice(&body[start..at]);
            }
            b'-' | b'0'..=b'9' => {
                while at < body.len() && matches!(body[at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    at += 1;
                }
                let number = &body[start..at];
                let huge =
                    std::str::from_utf8(number).ok().and_then(|n| n.parse::<f64>().ok()).is_some_and(f64::is_infinite);
                if huge {
                    out.push(b'"');
                    out.extend_from_slice(number);
                    out.push(b'"');
                } else {
                    out.extend_from_slice(number);
                }
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// A point-moving request: its JSON body, and its `Idempotency-Key` (if
/// any) bound to the method, the path and the body it came with.
pub struct Command<T> {
    pub value: T,
    pub idempotency: Option<Idempotency>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Command<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, state: &S) -> Result<Self, ApiError> {
        let key = request.headers().get("idempotency-key").cloned();
        let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
        let body = JsonBody::<T>::from_request(request, state).await?;
        let idempotency = idempotency(key.as_ref(), &method, &path, &body.document)?;
        Ok(Command { value: body.value, idempotency })
    }
}

/// The `Idempotency-Key` sent, if any, bound to the request it came with.
fn idempotency(
    key: Option<&axum::http::HeaderValue>,
    method: &str,
    path: &str,
    document: &Value,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let key = key.to_str().map_err(|_| ApiError::invalid_field("Idempotency-Key: 1-255 visible ASCII characters"))?;
    Ok(Some(Idempotency::new(key, method, path, document)?))
}

/// A point-moving request that takes no body (a raid's award): its
/// `Idempotency-Key`, if any, bound to the method and the path. A body sent
/// all the same is not read.
pub struct Keyed {
    pub idempotency: Option<Idempotency>,
}

impl<S: Send + Sync> FromRequestParts<S> for Keyed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let key = parts.headers.get("idempotency-key");
        Ok(Keyed { idempotency: idempotency(key, parts.method.as_str(), parts.uri.path(), &Value::Null)? })
    }
}

/// The query string: a list's `limit`, `cursor` and filters, or the feed's
/// `token`; 422 `invalid_field` when it does not decode.
pub struct ListQuery(pub HashMap<String, String>);

impl ListQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(service::page(self.get("limit"), self.get("cursor"))?)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A yes-or-no parameter: `true` or `false`, false when left out.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid_field(format!("{name}: true or false"))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_field(e.body_text()))?;
        Ok(ListQuery(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_beyond_a_float_are_quoted_and_strings_never() {
        let body = br#"{"a": 1e400, "b": [-99.5e-2, 12], "c": "1e400 \" 9e999", "d": -1e999, "e": true}"#;
        let quoted = String::from_utf8(quote_huge_numbers(body)).unwrap();
        assert_eq!(quoted, r#"{"a": "1e400", "b": [-99.5e-2, 12], "c": "1e400 \" 9e999", "d": "-1e999", "e": true}"#);
        let long = format!("[{}]", "9".repeat(400));
        assert_eq!(
            String::from_utf8(quote_huge_numbers(long.as_bytes())).unwrap(),
            format!("[\"{}\"]", "9".repeat(400))
        );
    }
}

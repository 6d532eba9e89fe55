//! The HTTP transport: one router for the API and operations, one middleware
//! stack (request id, logging span, metrics, panic guard), JSON errors for
//! every failure including unknown routes and bodies over the limit.

mod accounts;
mod auction;
mod blobs;
mod characters;
mod decay;
mod error;
mod extract;
mod guilds;
mod imports;
mod jobs;
mod ledger;
mod members;
mod ops;
mod origin;
mod raids;
mod read_after;
pub mod web;
pub mod wire;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::config::ServeRole;
use crate::service::Service;
use crate::telemetry::spans::{self, Span, TraceContext};

pub use error::ApiError;
pub use extract::RequestId;
pub use origin::{Origin, OwnOrigin};
use wire::Wire;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// How answers and events look to clients.
    pub wire: Arc<Wire>,
    /// The web UI's templates and words.
    pub pages: Arc<web::Pages>,
    pub metrics: PrometheusHandle,
    pub secure_cookies: bool,
    /// Whether `X-Forwarded-For` names the client (a balancer in front).
    pub trust_forwarded_for: bool,
    /// Where the service's own pages are, for requests that ride on the cookie.
    pub origin: origin::OwnOrigin,
    /// What this process serves.
    pub role: ServeRole,
}

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The routes of what this process serves: every role has the WebSocket
/// (an `auction` one carries `lot:` channels only) and the operations'.
fn routes(role: ServeRole) -> Router<AppState> {
    let mut router = Router::new().merge(ws::router()).merge(ops::router());
    if role != ServeRole::Api {
        router = router.merge(auction::router());
    }
    if role != ServeRole::Auction {
        router = router
            .merge(accounts::router())
            .merge(guilds::router())
            .merge(members::router())
            .merge(characters::router())
            .merge(ledger::router())
            .merge(decay::router())
            .merge(imports::router())
            .merge(raids::router())
            .merge(jobs::router())
            .merge(blobs::router())
            .merge(web::router());
    }
    router
}

pub fn router(state: AppState) -> Router {
    routes(state.role)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::from(crate::service::Error::internal(anyhow::anyhow!("a handler panicked"))).into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), read_after::mark_writes))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A request's place in a distributed trace (W3C Trace Context): the
/// caller's `traceparent` when it sends a valid one, so the service's log
/// lines join the caller's trace; a new trace id otherwise.
struct Trace {
    trace_id: String,
    parent_span_id: Option<String>,
}

impl Trace {
    fn of(request: &Request) -> Trace {
        let header = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
        header.and_then(Trace::parse).unwrap_or_else(|| {
            let mut id = [0u8; 16];
            // Without randomness the id of the request's v7 uuid still tells traces apart.
            if getrandom::fill(&mut id).is_err() {
                id = uuid::Uuid::now_v7().into_bytes();
            }
            Trace { trace_id: uuid::Uuid::from_bytes(id).simple().to_string(), parent_span_id: None }
        })
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; ids of all zeros are invalid.
    fn parse(header: &str) -> Option<Trace> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| {
            text.len() == len
                && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && text.bytes().any(|b| b != b'0')
        };
        let valid = version.len() == 2 && version != "ff" && hex(trace, 32) && hex(parent, 16) && flags.len() == 2;
        // Version 00 has exactly four parts; later versions may add more.
        (valid && (version != "00" || parts.next().is_none()))
            .then(|| Trace { trace_id: trace.to_owned(), parent_span_id: Some(parent.to_owned()) })
    }
}

/// Gives each request an id (the client's `X-Request-Id` if it is sane), runs
/// it inside a span that carries the id, and records its count and latency.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
        %method,
        %route
    );
    // Read (or made) only when the span is logged or exported: a bid pays nothing for it otherwise.
    let exported = state.service.spans();
    let trace = (!span.is_disabled() || exported.is_some()).then(|| {
        let trace = Trace::of(&request);
        let context = TraceContext { trace_id: trace.trace_id, span_id: spans::new_span_id() };
        span.record("trace_id", context.trace_id.as_str());
        span.record("span_id", context.span_id.as_str());
        span.record("parent_span_id", trace.parent_span_id.as_deref().unwrap_or(""));
        (context, trace.parent_span_id)
    });
    let started = Instant::now();
    let work = next.run(request).instrument(span.clone());
    let mut response = match (exported, &trace) {
        (Some(_), Some((context, _))) => spans::within(context.clone(), work).await,
        _ => work.await,
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("dkp_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("dkp_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone(), "status" => status.clone())
        .record(elapsed.as_secs_f64());
    span.in_scope(|| tracing::info!(status = %status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request"));
    if let (Some(spans), Some((context, parent))) = (exported, trace) {
        spans.record(
            Span::request(context, parent, format!("{method} {route}"), started, started + elapsed)
                .with("http.request.method", method)
                .with("http.route", route)
                .with("http.response.status_code", response.status().as_u16())
                .with("dkp.request_id", id.clone()),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::Trace;

    #[test]
    fn a_valid_traceparent_joins_the_callers_trace_and_a_bad_one_starts_a_new_one() {
        let good = Trace::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
        assert_eq!(good.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(good.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6-00f067aa0ba902b7-01",
        ] {
            assert!(Trace::parse(bad).is_none(), "{bad}");
        }
        assert!(Trace::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later").is_some());
    }
}

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

/// Gives each request an id (the client's `X-Request-Id` if it is sane), runs
/// it inside a span that carries the id, and records its count and latency.
async fn observe(State(_): State<AppState>, mut request: Request, next: Next) -> Response {
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
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("dkp_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!("dkp_http_request_duration_seconds", "method" => method, "route" => route, "status" => status.clone())
        .record(elapsed.as_secs_f64());
    span.in_scope(|| tracing::info!(status = %status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

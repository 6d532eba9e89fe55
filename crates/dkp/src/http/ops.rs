//! Operations: liveness, readiness (each backing service named when it
//! fails), Prometheus metrics, and the OpenAPI document of the API.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

/// The OpenAPI 3 document, written by hand beside the routes it describes.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(|| async { Json(json!({"status": "live"})) }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
}

async fn ready(State(state): State<AppState>) -> Response {
    let service = &state.service;
    match tokio::time::timeout(Duration::from_secs(2), service.store.ping()).await {
        Ok(Ok(())) => backend_up("database", true),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: the database does not answer");
            return not_ready("database");
        }
        Err(_) => return not_ready("database"),
    }
    let mut checks = json!({"database": "ok"});
    if let Some(shared) = &service.shared {
        // Without Redis this instance would miss the others' events.
        if let Err(error) = shared.ping().await {
            tracing::warn!(error = %error, "readiness: Redis does not answer");
            return not_ready("redis");
        }
        if !service.hub.healthy() {
            return not_ready("redis");
        }
        checks["redis"] = json!("ok");
        backend_up("redis", true);
    }
    if service.blobs.is_remote() {
        // A local folder fails with its own requests; a remote store may be away.
        match tokio::time::timeout(Duration::from_secs(2), service.blobs.ping()).await {
            Ok(Ok(())) => {
                checks["blobs"] = json!("ok");
                backend_up("blobs", true);
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "readiness: the blob store does not answer");
                return not_ready("blobs");
            }
            Err(_) => return not_ready("blobs"),
        }
    }
    // Reads fall back to the primary while the replica is away, but readiness says so.
    match tokio::time::timeout(Duration::from_secs(2), service.store.ping_replica()).await {
        Ok(None) => {}
        Ok(Some(Ok(()))) => {
            checks["database_read"] = json!("ok");
            backend_up("database_read", true);
        }
        Ok(Some(Err(error))) => {
            tracing::warn!(error = %error, "readiness: the read replica does not answer");
            return not_ready("database_read");
        }
        Err(_) => return not_ready("database_read"),
    }
    Json(json!({"status": "ready", "checks": checks})).into_response()
}

fn not_ready(part: &'static str) -> Response {
    backend_up(part, false);
    let body = json!({"status": "not_ready", "failing": part, "error": {"code": "unavailable", "message": format!("{part} does not answer")}});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `dkp_backend_up{backend}`: 1 when the part answered its last readiness
/// check, else 0 (a check stops at the first part that fails; the parts
/// after it keep their last value).
fn backend_up(part: &'static str, up: bool) {
    metrics::gauge!("dkp_backend_up", "backend" => part).set(if up { 1.0 } else { 0.0 });
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Readiness, replica lag and the job backlog are sampled at each scrape, so
    // they are current where no balancer asks /health/ready and no job runs in
    // this process; within a bound, so a backend that hangs cannot hold up the rest.
    let sample = async {
        let _ = ready(State(state.clone())).await;
        crate::jobs::observe(&state.service, state.service.clock.now()).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), sample).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

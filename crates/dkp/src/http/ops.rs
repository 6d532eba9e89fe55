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
    match state.service.readiness().await {
        Ok(ready) => {
            let checks: serde_json::Map<String, serde_json::Value> =
                ready.into_iter().map(|part| (part.to_owned(), json!("ok"))).collect();
            Json(json!({"status": "ready", "checks": checks})).into_response()
        }
        Err(part) => not_ready(part),
    }
}

fn not_ready(part: &'static str) -> Response {
    let body = json!({"status": "not_ready", "failing": part, "error": {"code": "unavailable", "message": format!("{part} does not answer")}});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Readiness, replica lag and the job backlog are sampled at each scrape, so
    // they are current where no balancer asks /health/ready and no job runs in
    // this process; within a bound, so a backend that hangs cannot hold up the rest.
    let sample = async {
        let _ = state.service.readiness().await;
        state.service.observe_jobs().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), sample).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

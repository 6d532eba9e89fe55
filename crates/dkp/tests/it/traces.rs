//! Spans exported over OTLP/HTTP (`OTEL_EXPORTER_OTLP_ENDPOINT`): a bid's
//! request joins the caller's trace, and its commit and broadcast are spans
//! under it. The collector here is an HTTP server of the test's that keeps
//! every body posted to `/v1/traces`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Kind, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    a_bids_request_commit_and_broadcast_are_spans_of_the_callers_trace(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    a_bids_request_commit_and_broadcast_are_spans_of_the_callers_trace(Kind::Postgres).await;
}

/// Starts a collector; its address and the bodies it was sent.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = bodies.clone();
    let router = Router::new().route(
        "/v1/traces",
        post(move |body: String| async move {
            kept.lock().unwrap().push(serde_json::from_str(&body).expect("the body is JSON"));
            "{}"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), bodies)
}

/// Every span posted so far in `trace`.
fn spans_of(bodies: &Mutex<Vec<Value>>, trace: &str) -> Vec<Value> {
    let bodies = bodies.lock().unwrap();
    let mut found = Vec::new();
    for body in bodies.iter() {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            assert_eq!(resource["resource"]["attributes"][0]["value"]["stringValue"], "dkp-test");
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                let spans = scope["spans"].as_array().into_iter().flatten();
                found.extend(spans.filter(|span| span["traceId"] == trace).cloned());
            }
        }
    }
    found
}

fn nanos(span: &Value, field: &str) -> u128 {
    span[field].as_str().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{field} of {span}"))
}

async fn a_bids_request_commit_and_broadcast_are_spans_of_the_callers_trace(kind: Kind) {
    let (endpoint, bodies) = collector().await;
    let app = spawn_app_with(kind, |config| config.otlp = Some((endpoint, "dkp-test".into()))).await;
    let guild = app.guild("owls").await;
    let (ana, _) = app.funded_member(&guild, "ana", 1000).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let lot_id = lot["id"].as_str().unwrap();
    let (trace, caller) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    app.post(&format!("/api/v1/guilds/{}/lots/{lot_id}/bids", guild.slug))
        .token(&ana.token)
        .header("traceparent", &format!("00-{trace}-{caller}-01"))
        .json(json!({"amount": 25}))
        .send()
        .await
        .expect(201);

    let waited = Instant::now();
    let spans = loop {
        let spans = spans_of(&bodies, trace);
        if spans.len() >= 3 || waited.elapsed() > Duration::from_secs(10) {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let named = |name: &str| {
        spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name} in {spans:?}")).clone()
    };
    let request = named("POST /api/v1/guilds/{slug}/lots/{lot_id}/bids");
    assert_eq!(request["parentSpanId"], caller, "the request is a child of the caller's span");
    assert_eq!(request["kind"], 2);
    let status = request["attributes"].as_array().unwrap().iter().find(|a| a["key"] == "http.response.status_code");
    assert_eq!(status.map(|a| a["value"]["intValue"].clone()), Some(json!("201")));
    let (commit, broadcast) = (named("bid.commit"), named("bid.broadcast"));
    for span in [&commit, &broadcast] {
        assert_eq!(span["parentSpanId"], request["spanId"], "{span}");
        assert_ne!(span["spanId"], request["spanId"]);
        assert!(nanos(span, "startTimeUnixNano") >= nanos(&request, "startTimeUnixNano"), "{span} {request}");
        assert!(nanos(span, "endTimeUnixNano") <= nanos(&request, "endTimeUnixNano"), "{span} {request}");
    }
    assert!(nanos(&commit, "endTimeUnixNano") <= nanos(&broadcast, "startTimeUnixNano"), "commit, then broadcast");
    let lot_attribute = commit["attributes"].as_array().unwrap().iter().find(|a| a["key"] == "dkp.lot_id").cloned();
    assert_eq!(lot_attribute.map(|a| a["value"]["stringValue"].clone()), Some(json!(lot_id)));
}

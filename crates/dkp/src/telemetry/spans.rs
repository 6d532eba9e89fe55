//! Spans of a request's work, exported over OTLP/HTTP with JSON bodies
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, as the OpenTelemetry exporters read it:
//! the spans go to `<endpoint>/v1/traces`). Every request is a server span
//! in the caller's trace (W3C `traceparent`) or a new one; a bid adds the
//! time it waited for and rode in its batch's commit (`bid.commit`) and the
//! publishing of its events after the commit (`bid.broadcast`), both
//! children of the request's span.
//!
//! Spans queue for one exporter task, which sends what waits at least once
//! a second; a full queue or a collector that does not answer loses spans
//! (counted), never a request's time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Spans waiting for the exporter at most.
const QUEUE: usize = 8 * 1024;
/// Spans sent in one request at most.
const BATCH: usize = 512;
/// How long spans may wait before they are sent.
const EVERY: Duration = Duration::from_secs(1);
/// How long the collector may take to answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// Where a piece of work sits in its trace: the trace, and the span of the
/// request it belongs to (lowercase hex, as `traceparent` writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
}

tokio::task_local! {
    /// The trace of the request being served, while spans are exported.
    static CURRENT: TraceContext;
}

/// The trace of the request this task serves, when spans are exported.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` as the request of `trace`.
pub async fn within<F: Future>(trace: TraceContext, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// A new span id: 8 random bytes in hex (never all zeros).
pub fn new_span_id() -> String {
    let mut id = [0u8; 8];
    if getrandom::fill(&mut id).is_err() || id == [0; 8] {
        id = uuid::Uuid::now_v7().as_u64_pair().1.to_be_bytes();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// This machine's clock at one instant, to date other instants by.
#[derive(Clone, Copy)]
struct Anchor {
    wall: SystemTime,
    at: Instant,
}

impl Anchor {
    fn now() -> Anchor {
        Anchor { wall: SystemTime::now(), at: Instant::now() }
    }

    /// Nanoseconds since the epoch at `at`.
    fn unix_nanos(self, at: Instant) -> u64 {
        let wall = match at.checked_duration_since(self.at) {
            Some(after) => self.wall + after,
            None => self.wall.checked_sub(self.at - at).unwrap_or(UNIX_EPOCH),
        };
        wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    name: String,
    /// A request served (`true`), or work inside one.
    server: bool,
    start: Instant,
    end: Instant,
    attributes: Vec<(&'static str, Value)>,
}

impl Span {
    /// The span of a request served, `trace` its own place, under the
    /// caller's span when it named one.
    pub fn request(trace: TraceContext, parent: Option<String>, name: String, start: Instant, end: Instant) -> Span {
        let TraceContext { trace_id, span_id } = trace;
        Span { trace_id, span_id, parent_span_id: parent, name, server: true, start, end, attributes: Vec::new() }
    }

    /// A span of work inside the request of `trace`.
    pub fn child(trace: &TraceContext, name: &str, start: Instant, end: Instant) -> Span {
        Span {
            trace_id: trace.trace_id.clone(),
            span_id: new_span_id(),
            parent_span_id: Some(trace.span_id.clone()),
            name: name.to_owned(),
            server: false,
            start,
            end,
            attributes: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Span {
        self.attributes.push((key, value.into()));
        self
    }

    /// The span as OTLP's JSON writes one (ids in hex, times as strings of nanoseconds).
    fn to_otlp(&self, anchor: Anchor) -> Value {
        let attributes: Vec<Value> = self.attributes.iter().map(|(key, value)| attribute(key, value)).collect();
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            // SPAN_KIND_SERVER, SPAN_KIND_INTERNAL
            "kind": if self.server { 2 } else { 1 },
            "startTimeUnixNano": anchor.unix_nanos(self.start).to_string(),
            "endTimeUnixNano": anchor.unix_nanos(self.end).to_string(),
            "attributes": attributes,
        });
        if let Some(parent) = &self.parent_span_id {
            span["parentSpanId"] = json!(parent);
        }
        span
    }
}

/// An attribute in OTLP's JSON: its value wrapped by its type.
fn attribute(key: &str, value: &Value) -> Value {
    let value = match value {
        Value::Bool(b) => json!({"boolValue": b}),
        // Integers are strings in OTLP's JSON (they are 64-bit).
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::String(s) => json!({"stringValue": s}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

/// The body of one export: the spans of this service.
fn export_body(service_name: &str, spans: &[Span]) -> Value {
    let anchor = Anchor::now();
    json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", &json!(service_name))]},
        "scopeSpans": [{
            "scope": {"name": "dkp", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans.iter().map(|span| span.to_otlp(anchor)).collect::<Vec<_>>(),
        }],
    }]})
}

/// Where finished spans go: the exporter's queue.
#[derive(Clone)]
pub struct Spans {
    queue: mpsc::Sender<Span>,
}

impl Spans {
    /// Starts the exporter sending to `<endpoint>/v1/traces` under `service_name`.
    pub fn start(endpoint: &str, service_name: String) -> anyhow::Result<Spans> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let parsed = reqwest::Url::parse(&url).map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        anyhow::ensure!(
            parsed.scheme() == "http",
            "OTEL_EXPORTER_OTLP_ENDPOINT: only http:// collectors are supported"
        );
        let client = reqwest::Client::builder().timeout(ANSWER_LIMIT).build()?;
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(export(client, parsed, service_name, waiting));
        Ok(Spans { queue })
    }

    pub fn record(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            metrics::counter!("dkp_otlp_spans_dropped_total").increment(1);
        }
    }
}

/// Sends what waits, a batch at a time, until every sender is gone.
async fn export(client: reqwest::Client, url: reqwest::Url, service_name: String, mut waiting: mpsc::Receiver<Span>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if waiting.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        // Let a second's spans gather, unless a batch is full already.
        let until = tokio::time::Instant::now() + EVERY;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(until, waiting.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let body = export_body(&service_name, &batch).to_string();
        let sent = client.post(url.clone()).header("content-type", "application/json").body(body).send().await;
        match sent {
            Ok(answer) if answer.status().is_success() => {
                metrics::counter!("dkp_otlp_spans_exported_total").increment(batch.len() as u64);
            }
            Ok(answer) => {
                tracing::debug!(status = %answer.status(), "the trace collector refused spans");
                metrics::counter!("dkp_otlp_spans_dropped_total").increment(batch.len() as u64);
            }
            Err(error) => {
                tracing::debug!(error = %error, "cannot reach the trace collector");
                metrics::counter!("dkp_otlp_spans_dropped_total").increment(batch.len() as u64);
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_written_as_otlp_json_writes_it() {
        let trace =
            TraceContext { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(), span_id: "00f067aa0ba902b7".into() };
        let start = Instant::now();
        let span =
            Span::child(&trace, "bid.commit", start, start + Duration::from_millis(3)).with("dkp.batch.bids", 32);
        let body = export_body("dkp", &[span]);
        let written = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(written["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(written["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(written["spanId"].as_str().map(str::len), Some(16));
        assert_eq!(written["kind"], 1);
        let (from, to) = (written["startTimeUnixNano"].as_str().unwrap(), written["endTimeUnixNano"].as_str().unwrap());
        assert_eq!(to.parse::<u64>().unwrap() - from.parse::<u64>().unwrap(), 3_000_000);
        assert_eq!(written["attributes"][0], json!({"key": "dkp.batch.bids", "value": {"intValue": "32"}}));
        assert_eq!(
            body["resourceSpans"][0]["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "dkp"}})
        );
    }
}

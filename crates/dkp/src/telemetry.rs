//! Logs and metrics. Logs are JSON lines by default (pretty for people at a
//! terminal), each carrying the request id of the request it belongs to.
//! Metrics are kept by one Prometheus recorder per process.
//!
//! The metrics that count what rarely happens are registered with the
//! recorder, at zero, so that `/metrics` names them from the start: a
//! dashboard or an alert finds every name, and a counter's first count is a
//! rise from zero that `rate()` sees. A counter with labels gets a series
//! without labels for its name to be there; its labelled series still appear
//! on their first count (the alert rules in deploy/monitoring allow for that).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogArgs, LogFormat};

pub mod spans;

/// Starts logging to standard error. Safe to call more than once.
pub fn init_logging(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match args.format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}

/// Buckets of the sizes of what one commit carries (bids, lots).
const BATCH: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// Buckets of how long a live frame waits in this process before its write:
/// finer than the other durations' where the fan-out's goal (25 ms) lies.
const FRAME_WAIT: [f64; 14] =
    [0.0005, 0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.1, 0.25];

/// How often histograms' samples are folded into their buckets: until then
/// the recorder keeps each sample, so a process nobody scrapes would grow.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("dkp_sequencer_batch_size".into()), &BATCH))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_per_commit".into()), &BATCH))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("dkp_ws_frames_per_flush".into()), &BATCH))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("dkp_ws_frame_wait_seconds".into()), &FRAME_WAIT))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    register_at_zero();
                    let upkeep = handle.clone();
                    let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP_EVERY);
                            upkeep.run_upkeep();
                        }
                    });
                    handle
                }
                // Another recorder is installed already: keep a private one so /metrics still answers.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Counters, by name, whose events may not happen for a long while.
const RARE_COUNTERS: [&str; 20] = [
    "dkp_bids_accepted_total",
    "dkp_bids_rejected_total",
    "dkp_tx_retries_total",
    "dkp_tx_failures_total",
    "dkp_jobs_total",
    "dkp_ws_messages_sent_total",
    "dkp_ws_slow_consumers_dropped_total",
    "dkp_hub_redis_published_total",
    "dkp_hub_redis_received_total",
    "dkp_hub_redis_dropped_total",
    "dkp_hub_nats_published_total",
    "dkp_hub_nats_received_total",
    "dkp_hub_nats_dropped_total",
    "dkp_redis_failures_total",
    "dkp_redis_skipped_total",
    "dkp_rate_limited_total",
    "dkp_db_replica_fallbacks_total",
    "dkp_blobs_written_total",
    "dkp_write_turn_timeouts_total",
    "dkp_writer_queue_full_total",
];

/// Histograms with no labels, shown with empty buckets until their first sample.
const HISTOGRAMS: [&str; 6] = [
    "dkp_bid_latency_seconds",
    "dkp_bid_queue_seconds",
    "dkp_sequencer_batch_size",
    "dkp_writer_lots_per_commit",
    "dkp_ws_frame_wait_seconds",
    "dkp_ws_frames_per_flush",
];

/// Registers the rare counters and the histograms at zero, and the
/// connection gauge at what it is when the process starts.
fn register_at_zero() {
    for name in RARE_COUNTERS {
        metrics::counter!(name).increment(0);
    }
    for name in HISTOGRAMS {
        let _ = metrics::histogram!(name);
    }
    metrics::gauge!("dkp_ws_connections").increment(0.0);
}

/// Counts frames written to WebSocket clients. Called for every flush of
/// every connection (hundreds of thousands a second in a busy fan-out), so
/// the counter is looked up once.
pub fn ws_sent(frames: u64) {
    static SENT: OnceLock<metrics::Counter> = OnceLock::new();
    SENT.get_or_init(|| metrics::counter!("dkp_ws_messages_sent_total")).increment(frames);
}

/// Records how long a live frame waited in this process, from its publish
/// (or its arrival from another instance) to the flush that wrote it, and
/// how many frames that flush wrote.
pub fn ws_frame_waited(waited: Duration, frames: u64) {
    static WAITED: OnceLock<metrics::Histogram> = OnceLock::new();
    static FRAMES: OnceLock<metrics::Histogram> = OnceLock::new();
    WAITED.get_or_init(|| metrics::histogram!("dkp_ws_frame_wait_seconds")).record(waited.as_secs_f64());
    FRAMES.get_or_init(|| metrics::histogram!("dkp_ws_frames_per_flush")).record(frames as f64);
}

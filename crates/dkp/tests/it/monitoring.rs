//! The monitoring pack in deploy/monitoring/: promtool accepts the Prometheus
//! configuration and the rules, every alert has unit tests where it fires and
//! where it stays quiet, and they pass; every dkp metric the Grafana dashboard
//! and the rules name is one a running instance shows on its /metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use dkp::config::Secret;
use serde_json::json;

use crate::support::{Kind, fresh_database, spawn_app_on};

/// Names the rules use that this test's instance does not export: only a
/// process with a part it has not shows them. They stay off the dashboard.
const AWAITED: [&str; 1] = [
    // Relaying the outbox to NATS, with NATS_URL set (rules: the dkp-outbox group).
    "dkp_outbox_lag_seconds",
];

fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(pack().join(relative)).unwrap_or_else(|e| panic!("deploy/monitoring/{relative}: {e}"))
}

/// The files of `folder` in the pack ending in `.yml`, by name.
fn yaml_files(folder: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(pack().join(folder))
        .unwrap_or_else(|e| panic!("deploy/monitoring/{folder}: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yml"))
        .map(|name| format!("{folder}/{name}"))
        .collect();
    files.sort();
    files
}

/// Runs promtool in the pack's folder; what it printed, when it succeeded.
fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(pack())
        .output()
        .unwrap_or_else(|e| panic!("promtool cannot run ({e}); .ci/run installs it (Debian package `prometheus`)"));
    let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "promtool {}:\n{said}", args.join(" "));
    said
}

#[test]
fn promtool_accepts_the_configuration_and_the_rules_and_passes_their_tests() {
    promtool(&["check", "config", "prometheus.yml"]);
    let rules = yaml_files("rules");
    assert_eq!(rules, ["rules/dkp-alerts.yml", "rules/dkp-recording.yml"]);
    promtool(&[&["check", "rules"][..], &rules.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    let tests = yaml_files("tests");
    assert!(!tests.is_empty(), "deploy/monitoring/tests has no unit tests");
    let said = promtool(&[&["test", "rules"][..], &tests.iter().map(String::as_str).collect::<Vec<_>>()].concat());
    assert_eq!(said.matches("SUCCESS").count(), tests.len(), "{said}");
}

#[test]
fn every_alert_waits_has_a_severity_and_advice_and_is_tested_firing_and_quiet() {
    let alerts = read("rules/dkp-alerts.yml");
    let tests: String = yaml_files("tests").iter().map(|file| read(file)).collect();
    let cases = test_cases(&tests);
    let rules: Vec<&str> = alerts.split("- alert: ").skip(1).collect();
    assert!(rules.len() >= 10, "the alerts file names {} alerts", rules.len());
    for rule in rules {
        let name = rule.lines().next().unwrap_or("").trim();
        for part in ["for: ", "severity: ", "summary: ", "description: "] {
            assert!(rule.contains(part), "{name} has no `{}`", part.trim());
        }
        let (fires, quiet) = cases.get(name).copied().unwrap_or_default();
        assert!(fires, "no unit test shows {name} firing");
        assert!(quiet, "no unit test shows {name} quiet");
    }
}

/// Per alert name in promtool tests: whether some case expects it to fire,
/// and whether some case expects it quiet (`exp_alerts: []`).
fn test_cases(tests: &str) -> BTreeMap<String, (bool, bool)> {
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut lines = tests.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'));
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("alertname: ") else { continue };
        let case = cases.entry(name.to_owned()).or_default();
        match lines.next() {
            Some("exp_alerts: []") => case.1 = true,
            Some("exp_alerts:") if lines.next().is_some_and(|next| next.starts_with("- exp_labels:")) => case.0 = true,
            _ => {}
        }
    }
    cases
}

/// The dkp metric names in a text: whole PromQL names (`job:dkp_x:rate5m`,
/// a recording rule's own, is not one).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("dkp_"))
        .map(str::to_owned)
        .collect()
}

/// The metric families of a Prometheus text exposition, with their types.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Whether `name` is a series of one of `families`: a family itself, or the
/// `_bucket`, `_sum` or `_count` of a histogram.
fn exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(|family| families.get(family))
                .is_some_and(|kind| kind == "histogram" || kind == "summary")
        })
}

#[test]
fn a_name_missing_from_metrics_is_found_missing() {
    let exposition = "# TYPE dkp_bids_accepted_total counter\ndkp_bids_accepted_total 0\n\
                      # TYPE dkp_bid_latency_seconds histogram\ndkp_bid_latency_seconds_bucket{le=\"+Inf\"} 0\n";
    let families = families(exposition);
    assert!(exported("dkp_bids_accepted_total", &families));
    assert!(exported("dkp_bid_latency_seconds_bucket", &families));
    assert!(exported("dkp_bid_latency_seconds_count", &families));
    assert!(!exported("dkp_nonexistent_total", &families));
    assert!(!exported("dkp_bids_accepted_total_bucket", &families), "a counter has no buckets");
    let named = metric_names(r#"sum(rate(dkp_nonexistent_total{a="b"}[5m])) / job:dkp_bids_accepted:rate5m"#);
    assert_eq!(named, BTreeSet::from(["dkp_nonexistent_total".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_rules_name_is_on_metrics() {
    // Arrange: an instance whose read replica is its own database, and some
    // traffic: a guild, an award, a lot and a bid.
    // (A PostgreSQL database takes no folder of its own.)
    let (_, url) = fresh_database(Kind::Postgres, &std::env::temp_dir()).await;
    let app = spawn_app_on(&url, |config| config.read_replica = Some(Secret::new(&url))).await;
    let guild = app.guild("watchers").await;
    let (bidder, _) = app.funded_member(&guild, "wren", 50).await;
    let lot = app.open_lot(&guild, json!({})).await;
    app.bid(&guild, lot["id"].as_str().expect("lot id"), &bidder.token, json!(20)).await.expect(201);
    let dashboard = read("grafana/dkp-dashboard.json");
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let on_dashboard = metric_names(&dashboard);
    let in_rules: BTreeSet<String> = yaml_files("rules").iter().flat_map(|file| metric_names(&read(file))).collect();

    // Act
    let exposition = app.get("/metrics").send().await.expect(200).text;

    // Assert
    let families = families(&exposition);
    for expected in ["dkp_http_requests_total", "dkp_bid_latency_seconds_bucket", "dkp_backend_up"] {
        assert!(on_dashboard.contains(expected), "the dashboard names {expected}");
    }
    for awaited in AWAITED {
        assert!(in_rules.contains(awaited), "{awaited} is awaited but no rule names it");
        assert!(
            !on_dashboard.contains(awaited),
            "{awaited} is not exported by every instance: keep it off the dashboard"
        );
        assert!(
            !exported(awaited, &families),
            "{awaited} is exported by an instance without the part it belongs to: take it off AWAITED"
        );
    }
    let named = on_dashboard.union(&in_rules).filter(|name| !AWAITED.contains(&name.as_str()));
    let missing: Vec<&String> = named.filter(|name| !exported(name, &families)).collect();
    assert!(missing.is_empty(), "named in deploy/monitoring but not on /metrics: {missing:?}\n{exposition}");
}

//! Health, metrics, the OpenAPI document, request ids, the 5xx path for real
//! server faults, and the binary itself: start-up errors, one SQLite
//! instance only, JSON logs, graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_stores;
use crate::services::free_port;
use crate::support::{TestApp, temp_dir};

both_stores!(
    health_and_readiness_answer,
    metrics_count_requests_by_route_and_status,
    the_openapi_document_describes_every_route,
    a_broken_schema_is_a_500_that_leaks_nothing,
    readiness_fails_when_the_database_is_gone,
);

async fn health_and_readiness_answer(app: TestApp) {
    app.get("/health/live").send().await.expect(200);
    let ready = app.get("/health/ready").send().await.expect(200);
    assert_eq!(ready.json["checks"]["database"], "ok");
    let reply = app.get("/health/live").header("x-request-id", "abc-123").send().await;
    assert_eq!(reply.headers["x-request-id"], "abc-123");
    let generated = app.get("/health/live").send().await;
    assert!(!generated.headers["x-request-id"].is_empty());
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    let guild = app.guild("owls").await;
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect(201);
    let metrics = app.get("/metrics").send().await.expect(200).text;
    assert!(
        metrics.contains(r#"dkp_http_requests_total{method="POST",route="/api/v1/guilds/{slug}/pools/{pool_id}/awards",status="201"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("dkp_http_request_duration_seconds_bucket"), "latency histograms");
    assert!(metrics.contains(r#"dkp_tx_commits_total{op="award"}"#), "transaction counters");
}

async fn the_openapi_document_describes_every_route(app: TestApp) {
    let doc = app.get("/api/v1/openapi.json").send().await.expect(200).json;
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    let routes = [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/guilds"),
        ("get", "/api/v1/guilds/{slug}"),
        ("post", "/api/v1/guilds/{slug}/members"),
        ("get", "/api/v1/guilds/{slug}/members"),
        ("patch", "/api/v1/guilds/{slug}/members/{member_id}"),
        ("delete", "/api/v1/guilds/{slug}/members/{member_id}"),
        ("post", "/api/v1/guilds/{slug}/characters"),
        ("get", "/api/v1/guilds/{slug}/characters"),
        ("patch", "/api/v1/guilds/{slug}/characters/{character_id}"),
        ("get", "/api/v1/guilds/{slug}/audit"),
        ("post", "/api/v1/guilds/{slug}/pools"),
        ("get", "/api/v1/guilds/{slug}/pools"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/standings"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/entries"),
        ("post", "/api/v1/guilds/{slug}/pools/{pool_id}/awards"),
        ("post", "/api/v1/guilds/{slug}/pools/{pool_id}/adjustments"),
        ("post", "/api/v1/guilds/{slug}/pools/{pool_id}/transfers"),
        ("post", "/api/v1/guilds/{slug}/entries/{entry_id}/reverse"),
        ("post", "/api/v1/guilds/{slug}/lots"),
        ("get", "/api/v1/guilds/{slug}/lots"),
        ("get", "/api/v1/guilds/{slug}/lots/{lot_id}"),
        ("post", "/api/v1/guilds/{slug}/lots/{lot_id}/bids"),
        ("post", "/api/v1/guilds/{slug}/lots/{lot_id}/close"),
        ("post", "/api/v1/guilds/{slug}/lots/{lot_id}/cancel"),
        ("put", "/api/v1/guilds/{slug}/pools/{pool_id}/rules"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/rules"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/attendance"),
        ("post", "/api/v1/guilds/{slug}/raids"),
        ("get", "/api/v1/guilds/{slug}/raids"),
        ("get", "/api/v1/guilds/{slug}/raids/{raid_id}"),
        ("patch", "/api/v1/guilds/{slug}/raids/{raid_id}"),
        ("put", "/api/v1/guilds/{slug}/raids/{raid_id}/attendance"),
        ("post", "/api/v1/guilds/{slug}/raids/{raid_id}/kills"),
        ("delete", "/api/v1/guilds/{slug}/raids/{raid_id}/kills/{kill_id}"),
        ("post", "/api/v1/guilds/{slug}/raids/{raid_id}/award"),
        ("get", "/api/v1/guilds/{slug}/loot"),
        ("put", "/api/v1/guilds/{slug}/logo"),
        ("put", "/api/v1/guilds/{slug}/lots/{lot_id}/icon"),
        ("post", "/api/v1/guilds/{slug}/pools/{pool_id}/decay"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/decay/schedule"),
        ("put", "/api/v1/guilds/{slug}/pools/{pool_id}/decay/schedule"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/decay/preview"),
        ("post", "/api/v1/guilds/{slug}/imports"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/export"),
        ("get", "/api/v1/guilds/{slug}/pools/{pool_id}/entries/export"),
        ("get", "/blobs/{key}"),
        ("get", "/api/v1/ws"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
    ];
    for (method, path) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    // And every documented operation is served (anything but a 404 from the fallback or a 405).
    let documented = doc["paths"].as_object().unwrap();
    for (path, ops) in documented {
        for method in
            ops.as_object().unwrap().keys().filter(|m| ["get", "post", "patch", "put", "delete"].contains(&m.as_str()))
        {
            let concrete = path
                .replace("{slug}", "nowhere")
                .replace("{pool_id}", "p")
                .replace("{member_id}", "m")
                .replace("{entry_id}", "e")
                .replace("{lot_id}", "l")
                .replace("{character_id}", "c")
                .replace("{raid_id}", "r")
                .replace("{kill_id}", "k");
            let reply = app.call(method.to_uppercase().parse().unwrap(), &concrete).send().await;
            assert_ne!(reply.status.as_u16(), 405, "{method} {path}");
            assert!(
                !(reply.status.as_u16() == 404 && reply.code() == "not_found" && !path.contains('{')),
                "{method} {path}"
            );
        }
    }
}

async fn a_broken_schema_is_a_500_that_leaks_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    app.execute("DROP TABLE idempotency_keys").await.expect("drop");
    let reply = app
        .post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .header("idempotency-key", "k")
        .json(json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(500, "internal");
    assert!(!reply.text.contains("idempotency_keys"), "no internals in the answer: {}", reply.text);
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "0.00", "the failed write left nothing behind");
}

async fn readiness_fails_when_the_database_is_gone(app: TestApp) {
    app.store.close().await;
    let reply = app.get("/health/ready").send().await.expect(503);
    assert_eq!(reply.json["failing"], "database");
    app.get("/health/live").send().await.expect(200);
}

fn dkp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dkp"));
    command.env_remove("DATABASE_URL").env("DKP_LOG", "info").stdin(Stdio::null());
    command
}

#[test]
fn an_unreachable_or_wrong_database_url_stops_start_up_with_one_line() {
    for url in ["postgres://postgres@127.0.0.1:1/nothing", "mysql://localhost/db", "postgres://%zz"] {
        let output = dkp().args(["migrate"]).env("DATABASE_URL", url).output().expect("run dkp");
        assert!(!output.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("dkp:")).collect();
        assert_eq!(lines.len(), 1, "{url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("%zz") || !url.contains("@"), "{stderr}");
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    http_get_with(port, path, "")
}

/// A GET with `headers` (lines ending in CRLF) added.
fn http_get_with(port: u16, path: &str, headers: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

#[test]
fn serve_runs_on_sqlite_alone_refuses_a_second_instance_logs_json_and_stops_cleanly() {
    let dir = temp_dir();
    let port = free_port();
    let mut server = dkp()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dkp serve");
    let started = Instant::now();
    let live = loop {
        if let Some(reply) = http_get(port, "/health/ready") {
            break reply;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "dkp serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    assert!(dir.join("data/dkp.sqlite3").exists());
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = format!("traceparent: 00-{trace}-00f067aa0ba902b7-01\r\n");
    assert!(http_get_with(port, "/health/live", &traced).is_some_and(|r| r.starts_with("HTTP/1.1 200")));

    let second = dkp()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .expect("run a second dkp serve");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another dkp instance"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = server.wait().expect("wait");
    assert!(exit.success(), "a stop signal ends the server with status 0: {exit:?}");
    let mut logs = String::new();
    server.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let request_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no JSON request log line in {logs}"));
    assert!(request_line["span"]["request_id"].is_string(), "{request_line}");
    assert!(request_line["span"]["trace_id"].as_str().is_some_and(|t| t.len() == 32), "{request_line}");
    let traced =
        logs.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|l| l["span"]["trace_id"] == trace);
    let traced = traced.unwrap_or_else(|| panic!("the caller's trace id is not in the log: {logs}"));
    assert_eq!(traced["span"]["parent_span_id"], "00f067aa0ba902b7", "{traced}");
    let _ = std::fs::remove_dir_all(dir);
}

//! Guild logos and lot icons: uploads through the API into the default local
//! folder, served back from `/blobs` with cache headers, on both stores; every
//! refusal leaves the database and the folder as they were. `blobs/s3.rs`
//! runs the same round trip against a real S3-compatible server.

mod s3;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::both_stores;
use crate::support::{Feed, Guild, Kind, Reply, TestApp, spawn_app_with};

both_stores!(
    a_logo_round_trips_through_the_local_folder,
    a_lot_icon_shows_in_every_answer_that_carries_the_lot,
    every_refused_upload_changes_nothing,
    only_keys_of_our_shape_are_served,
);

/// A PNG signature followed by `tag`, so that each image has its own bytes.
pub fn png(tag: &str) -> Vec<u8> {
    [b"\x89PNG\r\n\x1a\n".as_slice(), tag.as_bytes()].concat()
}

fn jpeg(tag: &str) -> Vec<u8> {
    [[0xff, 0xd8, 0xff, 0xe0].as_slice(), tag.as_bytes()].concat()
}

pub async fn upload(app: &TestApp, path: &str, token: &str, content_type: Option<&str>, bytes: Vec<u8>) -> Reply {
    let mut call = app.call(Method::PUT, path).token(token);
    if let Some(content_type) = content_type {
        call = call.header("content-type", content_type);
    }
    call.bare(bytes).send().await
}

/// A raw answer: `Reply` keeps text, and images are not text.
pub struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub async fn fetch(app: &TestApp, method: Method, path: &str, if_none_match: Option<&str>) -> Fetched {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = app.router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body").to_vec();
    Fetched { status, headers, bytes }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every file under the test's blob folder, relative to it.
fn stored_files(app: &TestApp) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).expect("under the root").to_path_buf());
            }
        }
    }
    let root = app.dir.join("blobs");
    let mut found = Vec::new();
    walk(&root, &root, &mut found);
    found.sort();
    found
}

async fn guild_id(app: &TestApp, guild: &Guild) -> String {
    let reply = app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(&guild.owner.token).send().await;
    reply.expect(200).json["guild"]["id"].as_str().expect("guild id").to_owned()
}

async fn audit_actions(app: &TestApp, guild: &Guild, action: &str) -> usize {
    let reply = app.get(&format!("/api/v1/guilds/{}/audit", guild.slug)).token(&guild.owner.token).send().await;
    reply.expect(200).json["entries"].as_array().expect("entries").iter().filter(|e| e["action"] == action).count()
}

async fn a_logo_round_trips_through_the_local_folder(app: TestApp) {
    let guild = app.guild("owls").await;
    let id = guild_id(&app, &guild).await;
    let image = png("logo");
    let digest = sha256(&image);

    let logo = format!("/api/v1/guilds/{}/logo", guild.slug);
    let reply = upload(&app, &logo, &guild.owner.token, Some("image/png"), image.clone()).await.expect(200);

    let url = format!("/blobs/g/{id}/{digest}.png");
    assert_eq!(reply.json["guild"]["logo_url"], url.as_str());
    assert_eq!(reply.json["guild"]["slug"], guild.slug.as_str());
    let shown = app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(&guild.owner.token).send().await;
    assert_eq!(shown.expect(200).json["guild"]["logo_url"], url.as_str());
    let me = app.get("/api/v1/me").token(&guild.owner.token).send().await.expect(200);
    assert_eq!(me.json["guilds"][0]["logo_url"], url.as_str());
    assert_eq!(stored_files(&app), vec![PathBuf::from(format!("g/{id}/{digest}.png"))]);
    assert_eq!(audit_actions(&app, &guild, "guild.logo").await, 1);

    // Anyone may fetch it (a CDN in front has no session), with headers that let it cache for good.
    let served = fetch(&app, Method::GET, &url, None).await;
    assert_eq!((served.status, served.bytes.as_slice()), (200, image.as_slice()));
    assert_eq!(served.header("content-type"), "image/png");
    assert_eq!(served.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(served.header("etag"), format!("\"{digest}\""));
    assert_eq!(served.header("x-content-type-options"), "nosniff");
    assert_eq!(served.header("content-length"), image.len().to_string());
    let etag = served.header("etag");
    let again = fetch(&app, Method::GET, &url, Some(&format!("\"other\", W/{etag}"))).await;
    assert_eq!((again.status, again.bytes.len(), again.header("etag")), (304, 0, etag));
    assert_eq!(again.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(fetch(&app, Method::GET, &url, Some("\"other\"")).await.status, 200);

    // A new logo is a new URL; the old one still serves what it always served.
    let second = upload(&app, &logo, &guild.owner.token, Some("image/png"), png("logo 2")).await.expect(200);
    assert_ne!(second.json["guild"]["logo_url"], url.as_str());
    assert_eq!(fetch(&app, Method::GET, &url, None).await.bytes, image);
    assert_eq!(audit_actions(&app, &guild, "guild.logo").await, 2);
}

async fn a_lot_icon_shows_in_every_answer_that_carries_the_lot(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    let (bidder, _) = app.funded_member(&guild, "bea", 100).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let lot_id = lot["id"].as_str().expect("lot id");
    assert_eq!(lot["icon_url"], Value::Null);

    let image = jpeg("thunderfury");
    let icon = format!("/api/v1/guilds/{}/lots/{lot_id}/icon", guild.slug);
    let reply = upload(&app, &icon, &officer.token, Some("image/jpeg"), image.clone()).await.expect(200);
    let url = reply.json["lot"]["icon_url"].as_str().expect("icon_url").to_owned();
    assert!(url.starts_with("/blobs/g/") && url.ends_with(&format!("/{}.jpg", sha256(&image))), "{url}");
    assert_eq!(reply.json["lot"]["status"], "open");
    assert_eq!(audit_actions(&app, &guild, "lot.icon").await, 1);

    let lots = format!("/api/v1/guilds/{}/lots", guild.slug);
    let shown = app.get(&format!("{lots}/{lot_id}")).token(&bidder.token).send().await.expect(200);
    assert_eq!(shown.json["lot"]["icon_url"], url.as_str());
    let listed = app.get(&lots).token(&bidder.token).send().await.expect(200);
    assert_eq!(listed.json["lots"][0]["icon_url"], url.as_str());

    // A bid's answer carries the lot, and its replay is the very same answer.
    let bid = |key: &str| {
        app.post(&format!("{lots}/{lot_id}/bids"))
            .token(&bidder.token)
            .header("idempotency-key", key)
            .json(json!({"amount": 20}))
    };
    let first = bid("k1").send().await.expect(201);
    assert_eq!(first.json["lot"]["icon_url"], url.as_str());
    assert_eq!(bid("k1").send().await.expect(201).text, first.text);

    let closed = app.post(&format!("{lots}/{lot_id}/close")).token(&officer.token).send().await.expect(200);
    assert_eq!(closed.json["lot"]["icon_url"], url.as_str());
    // The logged event, replayed to a subscriber, shows the icon as every answer does.
    let mut feed = Feed::connect(app.serve().await, &officer.token).await;
    feed.subscribe(&format!("lot:{lot_id}"), Some(0)).await;
    let closing = loop {
        let message = feed.next().await;
        if message["event"] == "lot_closed" {
            break message;
        }
    };
    assert_eq!(closing["data"]["lot"]["icon_url"], url.as_str());

    let served = fetch(&app, Method::GET, &url, None).await;
    assert_eq!(
        (served.status, served.header("content-type"), served.bytes.as_slice()),
        (200, "image/jpeg", image.as_slice())
    );
}

async fn every_refused_upload_changes_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    let (member, _) = app.member(&guild, "mia", "member").await;
    let outsider = app.guild("crows").await.owner;
    let lot = app.open_lot(&guild, json!({})).await;
    let lot_id = lot["id"].as_str().expect("lot id");
    let logo = format!("/api/v1/guilds/{}/logo", guild.slug);
    let icon = format!("/api/v1/guilds/{}/lots/{lot_id}/icon", guild.slug);
    let before = upload(&app, &logo, &guild.owner.token, Some("image/png"), png("kept")).await.expect(200);
    let files = stored_files(&app);
    let (owner, member, outsider) = (guild.owner.token.as_str(), member.token.as_str(), outsider.token.as_str());
    let (logo, icon) = (logo.as_str(), icon.as_str());
    let limit = dkp::blobs::DEFAULT_MAX_BYTES;

    let refusals: Vec<(&str, &str, Option<&str>, Vec<u8>, u16, &str)> = vec![
        (logo, owner, Some("text/plain"), png("a"), 415, "unsupported_media_type"),
        (logo, owner, Some("image/svg+xml"), b"<svg/>".to_vec(), 415, "unsupported_media_type"),
        (logo, owner, None, png("b"), 415, "unsupported_media_type"),
        (logo, owner, Some("image/jpeg"), png("c"), 422, "image_mismatch"),
        (logo, owner, Some("image/gif"), b"<html>".to_vec(), 422, "image_mismatch"),
        (logo, owner, Some("image/png"), Vec::new(), 422, "empty_image"),
        (logo, owner, Some("image/png"), png(&"x".repeat(limit)), 413, "payload_too_large"),
        (logo, member, Some("image/png"), png("d"), 403, "forbidden"),
        (logo, outsider, Some("image/png"), png("e"), 404, "not_found"),
        (icon, owner, Some("image/webp"), png("f"), 422, "image_mismatch"),
        (icon, member, Some("image/png"), png("g"), 403, "forbidden"),
        (icon, outsider, Some("image/png"), png("h"), 404, "not_found"),
    ];
    for (path, token, content_type, bytes, status, code) in refusals {
        upload(&app, path, token, content_type, bytes).await.expect_error(status, code);
    }
    let unknown_lot = format!("/api/v1/guilds/{}/lots/{}/icon", guild.slug, uuid::Uuid::now_v7());
    upload(&app, &unknown_lot, owner, Some("image/png"), png("i")).await.expect_error(404, "not_found");
    let malformed_lot = format!("/api/v1/guilds/{}/lots/nope/icon", guild.slug);
    upload(&app, &malformed_lot, owner, Some("image/png"), png("j")).await.expect_error(404, "not_found");
    app.call(Method::PUT, logo).bare(png("k")).send().await.expect_error(401, "unauthenticated");
    // A declared length past the limit is refused before the body is read.
    let declared = app.call(Method::PUT, logo).token(owner).header("content-type", "image/png");
    let declared = declared.header("content-length", &(limit + 1).to_string()).bare(png("l"));
    declared.send().await.expect_error(413, "payload_too_large");

    assert_eq!(stored_files(&app), files, "no object was written");
    let shown = app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(owner).send().await.expect(200);
    assert_eq!(shown.json["guild"]["logo_url"], before.json["guild"]["logo_url"]);
    let lot = app.get(&format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug)).token(owner).send().await.expect(200);
    assert_eq!(lot.json["lot"]["icon_url"], Value::Null);
    assert_eq!(audit_actions(&app, &guild, "guild.logo").await, 1);
    assert_eq!(audit_actions(&app, &guild, "lot.icon").await, 0);
}

async fn only_keys_of_our_shape_are_served(app: TestApp) {
    let guild = app.guild("owls").await;
    let id = guild_id(&app, &guild).await;
    let logo = format!("/api/v1/guilds/{}/logo", guild.slug);
    let reply = upload(&app, &logo, &guild.owner.token, Some("image/png"), png("logo")).await.expect(200);
    let url = reply.json["guild"]["logo_url"].as_str().expect("logo_url").to_owned();
    // A file beside the objects that no key may name.
    std::fs::write(app.dir.join("blobs").join("secret.png"), png("secret")).expect("write");
    let digest = "0".repeat(64);
    let missing = [
        format!("/blobs/g/{id}/{digest}.png"),
        "/blobs/secret.png".to_owned(),
        format!("/blobs/g/{id}/../../secret.png"),
        format!("/blobs/g/{id}/%2e%2e/%2e%2e/secret.png"),
        "/blobs/..%2fdkp.sqlite3".to_owned(),
        url.replace(".png", ".gif"),
        url.to_uppercase().replace("/BLOBS/", "/blobs/"),
        "/blobs/".to_owned(),
    ];
    for path in missing {
        app.get(&path).send().await.expect_error(404, "not_found");
    }
    app.get(&format!("/blobs/g/{id}/{digest}.png")).header("if-none-match", "*").send().await.expect(404);
    let head = fetch(&app, Method::HEAD, &url, None).await;
    assert_eq!((head.status, head.bytes.len(), head.header("content-type")), (200, 0, "image/png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_and_the_public_base_are_configurable() {
    let app = spawn_app_with(Kind::Sqlite, |config| {
        config.blobs.max_bytes = 100;
        config.blobs.public_url = dkp::blobs::PublicUrls::parse("https://cdn.example/img/").expect("a base");
    })
    .await;
    let guild = app.guild("owls").await;
    let logo = format!("/api/v1/guilds/{}/logo", guild.slug);
    let at_limit = png(&"x".repeat(100 - 8));
    upload(&app, &logo, &guild.owner.token, Some("image/png"), png(&"x".repeat(100 - 7)))
        .await
        .expect_error(413, "payload_too_large");
    let reply = upload(&app, &logo, &guild.owner.token, Some("image/png"), at_limit.clone()).await.expect(200);
    let url = reply.json["guild"]["logo_url"].as_str().expect("logo_url");
    let key = url.strip_prefix("https://cdn.example/img/").unwrap_or_else(|| panic!("the CDN base: {url}"));
    // The CDN's origin is this route (or the bucket behind it).
    assert_eq!(fetch(&app, Method::GET, &format!("/blobs/{key}"), None).await.bytes, at_limit);
}

//! Images in a real S3-compatible store: a `moto_server` of the test's own
//! (`pip install "moto[server]"`) on a free port, its bucket made with a
//! plain HTTP PUT. Uploads go through the API; what is stored is read back
//! through `/blobs` and straight from the bucket. The server is killed when
//! the test ends, and on purpose in the middle to see readiness name it.

use std::process::{Child, Command, Stdio};

use axum::http::Method;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{fetch, png, upload};
use crate::services::{free_port, wait_for_port};
use crate::support::{Kind, config, fresh_database, spawn_app_with, temp_dir};
use dkp::blobs::{BlobConfig, BlobLocation, S3Settings};
use dkp::config::Secret;

const KEY_ID: &str = "dkp-test-key";
const SECRET: &str = "dkp-test-secret-hunter2";

/// A `moto_server` on 127.0.0.1, killed when dropped.
struct MotoServer {
    port: u16,
    child: Option<Child>,
}

impl MotoServer {
    async fn start() -> MotoServer {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed for the tests (pip install \"moto[server]\")");
        let server = MotoServer { port, child: Some(child) };
        wait_for_port(port, "moto_server").await;
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes a bucket with a plain, unsigned HTTP PUT, as moto allows.
    async fn create_bucket(&self, bucket: &str) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to moto");
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.expect("read");
        assert!(reply.starts_with("HTTP/1.1 200"), "creating the bucket: {reply}");
    }

    fn settings(&self) -> S3Settings {
        S3Settings {
            access_key_id: Some(Secret::new(KEY_ID)),
            secret_access_key: Some(Secret::new(SECRET)),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint()),
        }
    }

    fn config(&self, bucket: &str) -> BlobConfig {
        BlobConfig {
            location: BlobLocation::S3 { bucket: bucket.into() },
            s3: self.settings(),
            ..BlobConfig::in_folder("unused".into())
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_round_trip_through_a_real_s3_server() {
    let mut moto = MotoServer::start().await;
    moto.create_bucket("guild-images").await;
    let app = spawn_app_with(Kind::Postgres, |config| config.blobs = moto.config("guild-images")).await;
    let ready = app.get("/health/ready").send().await.expect(200);
    assert_eq!(ready.json["checks"]["blobs"], "ok");

    let guild = app.guild("owls").await;
    let image = png("logo in s3");
    let logo = format!("/api/v1/guilds/{}/logo", guild.slug);
    let reply = upload(&app, &logo, &guild.owner.token, Some("image/png"), image.clone()).await.expect(200);
    let url = reply.json["guild"]["logo_url"].as_str().expect("logo_url").to_owned();
    let key = url.strip_prefix("/blobs/").expect("served here").to_owned();

    let served = fetch(&app, Method::GET, &url, None).await;
    assert_eq!(
        (served.status, served.header("content-type"), served.bytes.as_slice()),
        (200, "image/png", image.as_slice())
    );
    assert_eq!(fetch(&app, Method::GET, &url, Some(served.header("etag"))).await.status, 304);
    assert!(!app.dir.join("blobs").exists(), "nothing was kept in the local folder");

    // Straight from the bucket, with our own client: the bytes, and the
    // headers a CDN fronting the bucket would pass on.
    let bucket = AmazonS3Builder::new()
        .with_bucket_name("guild-images")
        .with_endpoint(moto.endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(KEY_ID)
        .with_secret_access_key(SECRET)
        .build()
        .expect("a client of the bucket");
    let object = bucket.get(&ObjectPath::from(key.as_str())).await.expect("the object is in the bucket");
    let attributes = object.attributes.clone();
    assert_eq!(object.bytes().await.expect("bytes").as_ref(), image.as_slice());
    assert_eq!(attributes.get(&object_store::Attribute::ContentType).map(|v| v.as_ref()), Some("image/png"));
    assert_eq!(
        attributes.get(&object_store::Attribute::CacheControl).map(|v| v.as_ref()),
        Some("public, max-age=31536000, immutable")
    );

    // The store goes away: readiness names it, and an upload changes nothing.
    moto.kill();
    let ready = app.get("/health/ready").send().await.expect(503);
    assert_eq!(ready.json["failing"], "blobs");
    upload(&app, &logo, &guild.owner.token, Some("image/png"), png("other")).await.expect_error(503, "unavailable");
    let shown = app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(&guild.owner.token).send().await;
    assert_eq!(shown.expect(200).json["guild"]["logo_url"], url.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_stops_on_a_missing_bucket_or_an_absent_store() {
    let mut moto = MotoServer::start().await;
    let dir = temp_dir();
    let (location, _) = fresh_database(Kind::Sqlite, &dir).await;
    let mut missing = config(location.clone(), &dir);
    missing.blobs = moto.config("no-such-bucket");
    let error = dkp::app::Application::build(missing).await.err().expect("a missing bucket is refused");
    assert!(format!("{error:#}").contains("blob store s3://no-such-bucket"), "{error:#}");

    let mut absent = config(location, &dir);
    absent.blobs = moto.config("guild-images");
    moto.kill();
    let error = dkp::app::Application::build(absent).await.err().expect("an absent store is refused");
    let text = format!("{error:#}");
    assert!(text.contains("blob store s3://guild-images") && !text.contains(SECRET), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_wrong_or_unreachable_blob_url_stops_the_binary_with_one_line() {
    let dir = temp_dir();
    let closed = format!("http://127.0.0.1:{}", free_port());
    for (url, expected) in [("ftp://x", "BLOB_URL"), ("s3://Bad_Name", "BLOB_URL"), ("s3://guild-images", "blob store")]
    {
        let output = Command::new(env!("CARGO_BIN_EXE_dkp"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env_remove("DATABASE_URL")
            .env("BLOB_URL", url)
            .env("AWS_ENDPOINT_URL", &closed)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .output()
            .expect("run dkp");
        assert!(!output.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("dkp:")).collect();
        assert_eq!(lines.len(), 1, "{url}: {stderr}");
        assert!(lines[0].contains(expected), "{url}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains(SECRET), "{url}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

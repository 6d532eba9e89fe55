//! What the HTTP and WebSocket benchmarks share: `dkp serve` child processes
//! (so that load generator and server are separate processes, and the
//! server's memory can be read alone), a small HTTP client, and the setup of
//! a guild with funded bidders and a lot. The balancer tests start and kill
//! their instances with the same `Server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::config::{DatabaseArgs, Secret};

/// How to start one `dkp serve`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `dkp` executable.
    pub exe: PathBuf,
    pub database: DatabaseArgs,
    /// Redis shared with the other instances, if any.
    pub redis_url: Option<Secret>,
    /// Whether a balancer in front sets `X-Forwarded-For`.
    pub behind_balancer: bool,
    /// Where its log goes (warnings and errors); unset: this process's stderr.
    pub log_file: Option<PathBuf>,
}

impl Launch {
    /// `dkp serve` from this very executable (the `dkp bench` command).
    pub fn this_exe(database: &DatabaseArgs) -> anyhow::Result<Launch> {
        Ok(Launch {
            exe: std::env::current_exe()?,
            database: database.clone(),
            redis_url: None,
            behind_balancer: false,
            log_file: None,
        })
    }
}

/// A `dkp serve` started for a benchmark or a test, stopped when dropped.
pub struct Server {
    pub address: SocketAddr,
    child: Child,
}

impl Server {
    pub async fn start(database: &DatabaseArgs) -> anyhow::Result<Server> {
        Server::launch(&Launch::this_exe(database)?).await
    }

    /// Starts `dkp serve` on a free port and waits until it is ready.
    pub async fn launch(launch: &Launch) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut command = Command::new(&launch.exe);
        command.args(["serve", "--listen", &address.to_string(), "--data-dir"]).arg(&launch.database.data_dir);
        // The load comes from a few members and one address, far past what a person sends.
        command.args(["--bid-rate", "0", "--ws-connect-rate", "0"]);
        if launch.behind_balancer {
            command.arg("--trust-forwarded-for");
        }
        if let Some(url) = &launch.database.database_url {
            command.env("DATABASE_URL", url.expose());
        }
        if let Some(url) = &launch.redis_url {
            command.env("REDIS_URL", url.expose());
        }
        command.env("DKP_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(path) = &launch.log_file {
            let log = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            command.stderr(log);
        }
        let child = command.spawn().context("cannot start dkp serve")?;
        let mut server = Server { address, child };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Waits until `/health/ready` answers 200: the database, and Redis when
    /// configured, answer.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = Http::new(self.address, 1);
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http.send("GET", "/health/ready", None, None).await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("dkp serve exited at start-up ({status})");
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("dkp serve was not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL), as a crash or a lost host would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Asks a child to stop (SIGTERM: dkp and nginx both finish what is in
/// flight and exit), and kills it when it has not within 10 s.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A pooled HTTP/1.1 client for JSON requests.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(address: SocketAddr, connections: usize) -> Http {
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build_http();
        Http { client, base: format!("http://{address}") }
    }

    /// Sends a JSON request; the status and the parsed body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_with(method, path, token, body, &[]).await
    }

    /// Like `send`, with extra request headers.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = hyper::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.client.request(request.body(body)?).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// The body of a GET, as text.
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let request = hyper::Request::builder().uri(format!("{}{path}", self.base)).body(Full::new(Bytes::new()))?;
        let response = self.client.request(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
        status: u16,
    ) -> anyhow::Result<Value> {
        let (got, reply) = self.send(method, path, token, Some(&body)).await?;
        if got != status {
            bail!("{method} {path}: expected {status}, got {got}: {reply}");
        }
        Ok(reply)
    }
}

/// A guild with funded bidders and one lot.
pub struct Stage {
    pub slug: String,
    pub owner: String,
    pub bidders: Vec<String>,
    pub lot_id: String,
}

/// Registers `bidders` users (and an owner), funds each with a billion
/// points, and opens one lot with the given terms.
pub async fn stage(http: &Http, bidders: usize, lot_terms: Value) -> anyhow::Result<Stage> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let tag = &run[20..];
    let login = |name: String| {
        let http = http.clone();
        async move {
            let credentials = json!({"username": name, "password": "bench-password"});
            http.expect("POST", "/api/v1/auth/register", None, credentials.clone(), 201).await?;
            let reply = http.expect("POST", "/api/v1/auth/login", None, credentials, 200).await?;
            anyhow::Ok(reply["token"].as_str().unwrap_or_default().to_owned())
        }
    };
    let owner = login(format!("own{tag}")).await?;
    let slug = format!("b{tag}");
    http.expect("POST", "/api/v1/guilds", Some(&owner), json!({"name": "Bench", "slug": slug}), 201).await?;
    let pool = http
        .expect("POST", &format!("/api/v1/guilds/{slug}/pools"), Some(&owner), json!({"name": "Main"}), 201)
        .await?;
    let pool_id = pool["pool"]["id"].as_str().unwrap_or_default().to_owned();
    let mut tokens = Vec::new();
    let mut member_ids = Vec::new();
    let mut logins = Vec::new();
    for n in 0..bidders {
        logins.push(login(format!("u{n}x{tag}")));
    }
    // A few registrations at a time: each costs the server a password hash.
    let logins: Vec<anyhow::Result<String>> = futures_util::stream::iter(logins).buffered(4).collect().await;
    for (n, token) in logins.into_iter().enumerate() {
        tokens.push(token?);
        let member = json!({"username": format!("u{n}x{tag}"), "role": "member"});
        let reply = http.expect("POST", &format!("/api/v1/guilds/{slug}/members"), Some(&owner), member, 201).await?;
        member_ids.push(reply["member"]["id"].clone());
    }
    for chunk in member_ids.chunks(500) {
        let award = json!({"member_ids": chunk, "amount": "1000000000", "reason": "bench"});
        http.expect("POST", &format!("/api/v1/guilds/{slug}/pools/{pool_id}/awards"), Some(&owner), award, 201).await?;
    }
    let mut lot = json!({"pool_id": pool_id, "item": {"name": "Bench item"}, "mode": "open", "min_bid": "0.01", "increment": "0.01", "duration_s": 3600});
    for (key, value) in lot_terms.as_object().cloned().unwrap_or_default() {
        lot[key] = value;
    }
    let lot = http.expect("POST", &format!("/api/v1/guilds/{slug}/lots"), Some(&owner), lot, 201).await?;
    let lot_id = lot["lot"]["id"].as_str().unwrap_or_default().to_owned();
    Ok(Stage { slug, owner, bidders: tokens, lot_id })
}

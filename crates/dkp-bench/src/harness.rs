//! `dkp serve` child processes and a small HTTP client for them: load
//! generator and server are separate processes (the server's memory can be
//! read alone), and the server is reached only as its users reach it. The
//! balancer tests start and kill their instances with the same `Server`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Where the `dkp serve` children keep their data: passed on to each as
/// `DATABASE_URL` and `--data-dir`. The URL may hold a password, so it never
/// prints.
#[derive(Clone, Args)]
pub struct Database {
    /// `postgres://…` for PostgreSQL, `sqlite://PATH`, or unset for SQLite in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the embedded database and files of the servers live.
    #[arg(long, env = "DKP_DATA_DIR", default_value = "./dkp-data")]
    pub data_dir: PathBuf,
}

impl Database {
    /// The store the servers run on, as the figures name it. A URL of
    /// another scheme is `unknown` here; the server refuses it at start.
    pub fn store(&self) -> &'static str {
        match self.database_url.as_deref() {
            None | Some("") => "sqlite",
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => "postgres",
            Some(url) if url.starts_with("sqlite://") => "sqlite",
            Some(_) => "unknown",
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("database_url", &self.database_url.as_ref().map(|_| "[redacted]"))
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// How to start one `dkp serve`.
#[derive(Clone)]
pub struct Launch {
    /// The `dkp` executable.
    pub exe: PathBuf,
    pub database: Database,
    /// Redis shared with the other instances, if any.
    pub redis_url: Option<String>,
    /// Whether a balancer in front sets `X-Forwarded-For`.
    pub behind_balancer: bool,
    /// Where its log goes (warnings and errors); unset: this process's stderr.
    pub log_file: Option<PathBuf>,
    /// `--role` (`all`, `auction`, `api`); unset: all.
    pub role: Option<&'static str>,
}

impl Launch {
    /// `dkp serve` from this very executable: `dkp bench` is a command of
    /// the `dkp` binary. (Tests name the binary Cargo built instead.)
    pub fn this_exe(database: &Database) -> anyhow::Result<Launch> {
        Ok(Launch {
            exe: std::env::current_exe()?,
            database: database.clone(),
            redis_url: None,
            behind_balancer: false,
            role: None,
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
    pub async fn start(database: &Database) -> anyhow::Result<Server> {
        Server::launch(&Launch::this_exe(database)?).await
    }

    /// Starts `dkp serve` on a free port and waits until it is ready.
    pub async fn launch(launch: &Launch) -> anyhow::Result<Server> {
        Server::launch_on(launch, ([127, 0, 0, 1], free_port()?).into(), &[], &[]).await
    }

    /// Starts `dkp serve` on `address` (again, after a crash: a balancer
    /// lists it there) with more `args` and environment, and waits until it
    /// is ready.
    pub async fn launch_on(
        launch: &Launch,
        address: SocketAddr,
        args: &[&str],
        env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let mut command = Command::new(&launch.exe);
        command.args(["serve", "--listen", &address.to_string(), "--data-dir"]).arg(&launch.database.data_dir);
        // The load comes from a few members and one address, far past what a person sends.
        command.args(["--bid-rate", "0", "--ws-connect-rate", "0"]);
        if launch.behind_balancer {
            command.arg("--trust-forwarded-for");
        }
        if let Some(role) = launch.role {
            command.args(["--role", role]);
        }
        // Set or cleared: a DATABASE_URL of this process's own must not leak into the child.
        match &launch.database.database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        if let Some(url) = &launch.redis_url {
            command.env("REDIS_URL", url);
        }
        command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        command.env("DKP_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(path) = &launch.log_file {
            // Appended to: an instance started again after a crash keeps its earlier lines.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            command.stderr(log);
        }
        let child = command.spawn().with_context(|| format!("cannot start {} serve", launch.exe.display()))?;
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

    /// Sends the process a signal (`STOP`, `CONT`, …) by name.
    pub fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Kills the process at once (SIGKILL), as a crash or a lost host would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        self.memory_kib("VmRSS")
    }

    /// The most resident memory the server has held since it started, in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.memory_kib("VmHWM")
    }

    /// A `kB` line of /proc/PID/status.
    fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A TCP port of 127.0.0.1 free now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends process `pid` the signal `name` (`TERM`, `KILL`, `STOP`, `CONT`).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Asks a child to stop (SIGTERM: dkp and nginx both finish what is in
/// flight and exit), and kills it when it has not within 10 s.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child.id(), "TERM");
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
        self.answer(request.body(body)?).await
    }

    /// Sends `file` as the raw body of a POST (an import's upload).
    pub async fn post_file(&self, path: &str, token: &str, file: Bytes) -> anyhow::Result<(u16, Value)> {
        let request = hyper::Request::builder()
            .method("POST")
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream");
        self.answer(request.body(Full::new(file))?).await
    }

    /// The status and the parsed body of the answer to `request`.
    async fn answer(&self, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<(u16, Value)> {
        let response = self.client.request(request).await?;
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

    /// Sends a JSON request and fails unless it is answered with `status`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn database(url: Option<&str>) -> Database {
        Database { database_url: url.map(str::to_owned), data_dir: PathBuf::from(".") }
    }

    #[test]
    fn the_store_is_named_by_the_url_scheme() {
        assert_eq!(database(None).store(), "sqlite");
        assert_eq!(database(Some("sqlite:///tmp/x.sqlite3")).store(), "sqlite");
        assert_eq!(database(Some("postgres://h/db")).store(), "postgres");
        assert_eq!(database(Some("postgresql://h/db")).store(), "postgres");
        assert_eq!(database(Some("mysql://h/db")).store(), "unknown");
    }

    #[test]
    fn the_database_url_never_prints() {
        let printed = format!("{:?}", database(Some("postgres://u:hunter2@h/db")));
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}

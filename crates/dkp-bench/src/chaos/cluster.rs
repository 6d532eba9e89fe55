//! The deployment a chaos round runs against, every part a real process of
//! its own that the round may kill: a PostgreSQL server made with `initdb`,
//! a `redis-server`, three `dkp serve` instances (no jobs) and two
//! `dkp worker`s on them, and nginx with the shipped configuration in front
//! of the instances. Everything lives in one folder, removed when the
//! cluster is dropped (the processes stopped first).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::balancer::Nginx;
use crate::harness::{Database, Launch, Server, free_port, signal, stop};
use crate::postgres::{as_postgres, bin, initdb, is_root, run};

/// `dkp serve` instances and `dkp worker`s of a cluster.
pub const INSTANCES: usize = 3;
pub const WORKERS: usize = 2;

/// How long a worker's claim on a job lasts: a killed worker's jobs are
/// taken over this soon.
const JOB_LEASE_S: &str = "5";

/// A PostgreSQL server of the cluster's own.
pub struct Postgres {
    dir: PathBuf,
    pub port: u16,
}

impl Postgres {
    fn start(dir: &Path) -> anyhow::Result<Postgres> {
        let dir = dir.join("postgres");
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        initdb(&dir.join("data"))?;
        let postgres = Postgres { dir, port: free_port()? };
        postgres.pg_ctl("start")?;
        Ok(postgres)
    }

    fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(as_postgres(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-m", "fast", "-o", &options, action])
            .stdout(Stdio::null()))?;
        Ok(())
    }

    /// A fast restart: connections are cut, what committed stays.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl("restart")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A way to query it that can go to another task.
    pub fn psql(&self) -> Psql {
        Psql { port: self.port }
    }
}

/// Queries, through `psql`, to the cluster's PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct Psql {
    port: u16,
}

impl Psql {
    fn command(&self) -> Command {
        let mut command = Command::new("psql");
        command
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", "postgres"]);
        command
    }

    /// What `sql` returns, a row a line, columns apart by tabs.
    pub fn query(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        Ok(rows(&run(self.command().args(["-c", sql]))?))
    }

    /// Every row `sql` returns when asked every `every` until `deadline`,
    /// over one connection (`\watch`), so it can be asked often; asked
    /// again on a new one when the server restarts. Blocks the thread.
    pub fn watch(&self, sql: &str, every: Duration, deadline: Instant, out: &Path) -> Vec<Vec<String>> {
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let Ok(file) = std::fs::File::create(out) else { break };
            let child = self.command().stdin(Stdio::piped()).stdout(file).stderr(Stdio::null()).spawn();
            let Ok(mut child) = child else { break };
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                let _ = writeln!(stdin, "{sql} \\watch {}", every.as_secs_f64());
            }
            // Until the deadline, or until the server went away and ended the watch.
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            signal(child.id(), "INT");
            let _ = child.wait();
            seen.extend(rows(&std::fs::read_to_string(out).unwrap_or_default()));
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = std::fs::remove_file(out);
        seen
    }
}

/// `psql`'s unaligned rows, columns apart by tabs.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines().filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(as_postgres(&bin("pg_ctl")).arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]));
    }
}

/// A `redis-server` of the cluster's own, keeping nothing on disk.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    fn start(port: u16) -> anyhow::Result<Redis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Redis { port, child })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (everything it held is gone) and starts it again
    /// after `down`.
    pub async fn crash(&mut self, down: Duration) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        tokio::time::sleep(down).await;
        *self = Redis::start(self.port)?;
        Ok(())
    }

    /// Empties it: `FLUSHALL`, spoken over its own protocol.
    pub async fn flush_all(&self) -> anyhow::Result<()> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n").await?;
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await?;
        if &reply != b"+OK\r\n" {
            bail!("FLUSHALL answered {:?}", String::from_utf8_lossy(&reply));
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `dkp serve` at its fixed address: running, or down after a crash.
struct Instance {
    address: SocketAddr,
    server: Option<Server>,
}

/// The whole deployment.
pub struct Cluster {
    dir: PathBuf,
    launch: Launch,
    /// More environment for the instances (a deliberately broken build's switch).
    env: Vec<(String, String)>,
    pub postgres: Postgres,
    pub redis: Redis,
    instances: Vec<Instance>,
    workers: Vec<Option<Child>>,
    pub nginx: Nginx,
}

impl Cluster {
    /// Starts every part in `dir` (made empty first), the instances from `exe`.
    pub async fn start(dir: &Path, exe: &Path, env: Vec<(String, String)>) -> anyhow::Result<Cluster> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let postgres = Postgres::start(dir)?;
        let redis = Redis::start(free_port()?)?;
        let launch = Launch {
            exe: exe.to_path_buf(),
            database: Database { database_url: Some(postgres.url()), data_dir: dir.join("data") },
            redis_url: Some(redis.url()),
            behind_balancer: true,
            log_file: None,
            role: None,
        };
        let mut instances = Vec::new();
        for _ in 0..INSTANCES {
            instances.push(Instance { address: ([127, 0, 0, 1], free_port()?).into(), server: None });
        }
        let addresses: Vec<SocketAddr> = instances.iter().map(|i| i.address).collect();
        let nginx = Nginx::start_for(&addresses, 1).await?;
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            launch,
            env,
            postgres,
            redis,
            instances,
            workers: (0..WORKERS).map(|_| None).collect(),
            nginx,
        };
        for n in 0..INSTANCES {
            cluster.start_instance(n).await?;
        }
        for n in 0..WORKERS {
            cluster.start_worker(n)?;
        }
        Ok(cluster)
    }

    async fn start_instance(&mut self, n: usize) -> anyhow::Result<()> {
        let launch = Launch { log_file: Some(self.dir.join(format!("instance-{}.log", n + 1))), ..self.launch.clone() };
        let address = self.instances[n].address;
        let server = Server::launch_on(&launch, address, &["--no-jobs"], &self.env).await?;
        self.instances[n].server = Some(server);
        Ok(())
    }

    fn start_worker(&mut self, n: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("worker-{}.log", n + 1)))?;
        let child = Command::new(&self.launch.exe)
            .args(["worker", "--job-lease-s", JOB_LEASE_S])
            .env("DATABASE_URL", self.postgres.url())
            .env("REDIS_URL", self.redis.url())
            .env("DKP_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start dkp worker")?;
        self.workers[n] = Some(child);
        Ok(())
    }

    /// Kills instance `n` (SIGKILL) and starts it again on its address after `down`.
    pub async fn crash_instance(&mut self, n: usize, down: Duration) -> anyhow::Result<()> {
        if let Some(mut server) = self.instances[n].server.take() {
            server.kill();
        }
        tokio::time::sleep(down).await;
        self.start_instance(n).await
    }

    /// Stops instance `n` (SIGSTOP) for `paused`, then lets it go on.
    pub async fn pause_instance(&self, n: usize, paused: Duration) {
        if let Some(server) = &self.instances[n].server {
            server.signal("STOP");
            tokio::time::sleep(paused).await;
            server.signal("CONT");
        }
    }

    /// Kills worker `n` (SIGKILL) and starts it again after `down`.
    pub async fn crash_worker(&mut self, n: usize, down: Duration) -> anyhow::Result<()> {
        if let Some(mut child) = self.workers[n].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        tokio::time::sleep(down).await;
        self.start_worker(n)
    }

    /// Brings back whatever is down, and waits until every instance is ready.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        for n in 0..INSTANCES {
            if self.instances[n].server.is_none() {
                self.start_instance(n).await?;
            }
        }
        for n in 0..WORKERS {
            let exited = match &mut self.workers[n] {
                Some(child) => child.try_wait()?.is_some(),
                None => true,
            };
            if exited {
                self.start_worker(n)?;
            }
        }
        let started = Instant::now();
        for instance in &self.instances {
            let http = crate::harness::Http::new(instance.address, 1);
            while !matches!(http.send("GET", "/health/ready", None, None).await, Ok((200, _))) {
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("instance {} was not ready again within 60 s", instance.address);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The instances' and workers' logs, for a report of what went wrong.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for worker in self.workers.iter_mut().flatten() {
            stop(worker);
        }
        for instance in &mut self.instances {
            if let Some(server) = &instance.server {
                // A paused instance would never hear the TERM.
                signal(server.pid(), "CONT");
            }
            instance.server = None;
        }
    }
}

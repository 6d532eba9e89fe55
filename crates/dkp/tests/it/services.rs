//! Real outside services a test starts for itself, on free ports, and stops
//! when dropped: a Redis server or a NATS server it may kill and bring back,
//! a Redis Cluster.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Waits, blocking the thread, until something accepts connections on `port`.
pub fn wait_for_port_blocking(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(15), "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(15), "{what} did not start on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One kind of server a test runs for itself.
pub trait Program {
    /// The program, as `PATH` finds it.
    const NAME: &'static str;
    /// The scheme of its URLs.
    const SCHEME: &'static str;
    /// Runs it on 127.0.0.1:`port`, keeping what it keeps in `dir`.
    fn command(port: u16, dir: &Path) -> Command;
}

/// A `redis-server`, keeping nothing on disk.
pub struct Redis;

impl Program for Redis {
    const NAME: &'static str = "redis-server";
    const SCHEME: &'static str = "redis";

    fn command(port: u16, _: &Path) -> Command {
        let mut command = Command::new(Self::NAME);
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        command
    }
}

/// A `nats-server` with JetStream (the outbox's relay needs it).
pub struct Nats;

impl Program for Nats {
    const NAME: &'static str = "nats-server";
    const SCHEME: &'static str = "nats";

    fn command(port: u16, dir: &Path) -> Command {
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let debian = Path::new("/usr/sbin").join(Self::NAME);
        let mut command = Command::new(if debian.exists() { debian.as_path() } else { Path::new(Self::NAME) });
        command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(dir);
        command
    }
}

pub type RedisServer = Server<Redis>;
pub type NatsServer = Server<Nats>;

/// A server of this test's own on a free port, which the test may kill and
/// start again; what it keeps on disk outlives a restart, not the test.
pub struct Server<P: Program> {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    program: PhantomData<P>,
}

impl<P: Program> Server<P> {
    pub async fn start() -> Server<P> {
        let mut server =
            Server { port: free_port(), dir: crate::support::temp_dir(), child: None, program: PhantomData };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", P::SCHEME, self.port)
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        let child = P::command(self.port, &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} must be installed for the tests: {e}", P::NAME));
        self.child = Some(child);
        wait_for_port(self.port, P::NAME).await;
    }
}

impl<P: Program> Drop for Server<P> {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries, each owning a third of the key slots.
pub struct RedisCluster {
    ports: Vec<u16>,
    nodes: Vec<Child>,
    dir: PathBuf,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let dir = crate::support::temp_dir();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for port in &ports {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed for the tests");
            nodes.push(child);
        }
        let cluster = RedisCluster { ports, nodes, dir };
        for port in &cluster.ports {
            wait_for_port(*port, "a redis cluster node").await;
        }
        let addresses: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed for the tests");
        assert!(created.success(), "redis-cli --cluster create failed");
        let started = Instant::now();
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &cluster.ports[0].to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    /// `REDIS_URL` for the cluster: its nodes, comma-separated.
    pub fn url(&self) -> String {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

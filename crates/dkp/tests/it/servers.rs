//! Throwaway servers for the tests that need more than the shared PostgreSQL:
//! PgBouncer in transaction mode (`Bouncer`). It is a guard: dropping it, also
//! when a test fails, stops what it started and removes its folder.
//!
//! PgBouncer refuses to run as root, and tests run as root in CI, so there it
//! runs as the `postgres` user in a folder it owns.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{admin_url, temp_dir};

/// A port nobody listens on at the moment.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A folder of its own, owned by `postgres` when the tests run as root.
fn server_dir() -> PathBuf {
    let dir = temp_dir();
    if is_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(&dir));
    }
    dir
}

#[track_caller]
fn run(command: &mut Command) {
    let output = command.stdin(Stdio::null()).output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// PgBouncer in transaction mode on a port of its own, in front of a fresh
/// database `dkp` on the tests' PostgreSQL server, with `pool_size` server
/// connections at most.
pub struct Bouncer {
    dir: PathBuf,
    pub port: u16,
    /// The database behind it, on the tests' server.
    pub database: String,
    child: Option<Child>,
}

impl Bouncer {
    pub async fn start(pool_size: u32) -> Bouncer {
        let database = format!("dkp_pgb_{}", uuid::Uuid::now_v7().simple());
        let mut bouncer = Bouncer { dir: server_dir(), port: free_port(), database, child: None };
        admin(&format!("CREATE DATABASE {}", bouncer.database)).await;
        let (host, port) = server_of(&admin_url());
        let dir = bouncer.dir.display();
        std::fs::write(bouncer.dir.join("userlist.txt"), "\"postgres\" \"\"\n").expect("userlist");
        let ini = format!(
            "[databases]\n\
             dkp = host={host} port={port} dbname={database} user=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             admin_users = postgres\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 200\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n",
            database = bouncer.database,
            listen = bouncer.port,
        );
        let config = bouncer.dir.join("pgbouncer.ini");
        std::fs::write(&config, ini).expect("pgbouncer.ini");
        // PgBouncer drops root itself when told which user to become.
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].into_iter().find(|p| Path::new(p).exists());
        let mut command = Command::new(program.unwrap_or("pgbouncer"));
        if is_root() {
            command.args(["-u", "postgres"]);
        }
        // Quiet: it logs to its log file in the folder, not into the test output.
        let child = command
            .arg("-q")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        bouncer.child = Some(child);
        wait_for_port(bouncer.port);
        bouncer
    }

    /// The service's URL: through PgBouncer, in its transaction mode.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/dkp?pgbouncer=true", self.port)
    }

    /// PgBouncer's admin console, which speaks only the simple query protocol.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/pgbouncer", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let database = self.database.clone();
        // Drop cannot await: the database goes on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(admin(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")));
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs one statement on the tests' server, as its administrator.
async fn admin(statement: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.expect("connect to the tests' PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.expect("admin statement");
}

/// The host and port of a postgres:// URL.
fn server_of(url: &str) -> (String, u16) {
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("DKP_TEST_DATABASE_URL");
    (options.get_host().to_owned(), options.get_port())
}

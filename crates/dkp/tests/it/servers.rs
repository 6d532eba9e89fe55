//! Throwaway servers for the tests that need more than the shared PostgreSQL:
//! a primary with a streaming replica (`Cluster`), and PgBouncer in
//! transaction mode (`Bouncer`). Each is a guard: dropping it, also when a test
//! fails, stops what it started and removes its folder.
//!
//! PostgreSQL and PgBouncer refuse to run as root, and tests run as root in
//! CI, so there they run as the `postgres` user in a folder it owns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::services::{free_port, wait_for_port_blocking};
use crate::support::{admin_url, temp_dir};

pub(crate) use dkp_bench::postgres::{as_postgres, bin, is_root};

/// A folder of its own, owned by `postgres` when the tests run as root.
pub(crate) fn server_dir() -> PathBuf {
    let dir = temp_dir();
    if is_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(&dir));
    }
    dir
}

#[track_caller]
pub(crate) fn run(command: &mut Command) {
    if let Err(error) = dkp_bench::postgres::run(command) {
        panic!("{error:#}");
    }
}

/// A PostgreSQL primary made with initdb, and a streaming replica of it made
/// with `pg_basebackup -R`, each on its own port.
pub struct Cluster {
    dir: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
    /// Data folders of the servers running now.
    running: Vec<PathBuf>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let mut cluster =
            Cluster { dir: server_dir(), primary_port: free_port(), replica_port: free_port(), running: Vec::new() };
        let primary = cluster.dir.join("primary");
        dkp_bench::postgres::initdb(&primary).expect("initdb makes the primary");
        cluster.start_server(&primary, cluster.primary_port);
        run(as_postgres(&bin("pg_basebackup"))
            .args(["-h", "127.0.0.1", "-p", &cluster.primary_port.to_string(), "-U", "postgres", "-D"])
            .arg(cluster.dir.join("replica"))
            .args(["-R", "-X", "stream", "-c", "fast"]));
        cluster.start_replica();
        cluster
    }

    pub fn primary_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.primary_port)
    }

    pub fn replica_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.replica_port)
    }

    pub fn start_replica(&mut self) {
        let replica = self.dir.join("replica");
        self.start_server(&replica, self.replica_port);
    }

    pub fn stop_replica(&mut self) {
        let replica = self.dir.join("replica");
        stop_server(&replica, "fast");
        self.running.retain(|dir| *dir != replica);
    }

    fn start_server(&mut self, data: &Path, port: u16) {
        start_server(&self.dir, data, port, "");
        self.running.push(data.to_path_buf());
    }
}

/// Starts PostgreSQL on `data` at `port` (its socket in `dir`), with
/// `settings` (more `-c name=value`) after the tests' own, and waits for it.
pub(crate) fn start_server(dir: &Path, data: &Path, port: u16, settings: &str) {
    let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {settings}", dir.display());
    run(as_postgres(&bin("pg_ctl"))
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(data.with_extension("log"))
        .args(["-w", "-o", &options, "start"])
        .stdout(Stdio::null()));
}

pub(crate) fn stop_server(data: &Path, mode: &str) {
    let _ = as_postgres(&bin("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-m", mode, "-w", "stop"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The replica first, so that it does not retry its primary meanwhile.
        for data in self.running.drain(..).rev() {
            stop_server(&data, "immediate");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
        wait_for_port_blocking(bouncer.port, "pgbouncer");
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

//! nginx in front of `dkp serve` instances, run from the configuration the
//! project ships (deploy/nginx/dkp.conf, built into this crate): the example
//! instance addresses, the listener and the log path are replaced, nothing
//! else, so the benchmarks and the failover test exercise what is deployed.
//!
//! nginx runs as a child that does not daemonize, with its pid file, logs and
//! temporary files in a folder of its own, and is stopped when dropped. As
//! root its workers run as `nobody`, which is enough: the master opens the
//! logs and the listening socket, and creates the temporary folders for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// deploy/nginx/dkp.conf, as shipped.
pub const NGINX_CONFIG: &str = include_str!("../../../deploy/nginx/dkp.conf");

/// deploy/nginx/dkp-roles.conf, as shipped: api and auction instances apart.
pub const NGINX_ROLES_CONFIG: &str = include_str!("../../../deploy/nginx/dkp-roles.conf");

/// The example instances the shipped configurations list, in order.
pub const EXAMPLE_INSTANCES: [&str; 2] = ["10.0.0.11:8080", "10.0.0.12:8080"];

/// The example auction instances of the roles configuration, in order.
pub const EXAMPLE_AUCTION_INSTANCES: [&str; 2] = ["10.0.0.21:8080", "10.0.0.22:8080"];

/// `template` with each `(from, to)` replaced in its active lines (comments
/// are left alone). Each `from` must be there: a configuration edited out of
/// the shape this expects fails loudly instead of running half rendered.
pub fn substitute(template: &str, replacements: &[(&str, String)]) -> anyhow::Result<String> {
    let mut found = vec![false; replacements.len()];
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        let mut line = line.to_owned();
        if !line.trim_start().starts_with('#') {
            for (n, (from, to)) in replacements.iter().enumerate() {
                if line.contains(from) {
                    line = line.replace(from, to);
                    found[n] = true;
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(n) = found.iter().position(|f| !f) {
        bail!("the configuration no longer contains `{}`", replacements[n].0);
    }
    Ok(out)
}

/// The shipped nginx configuration for two instances (or one named twice),
/// listening on `listen` and logging requests to `access_log`.
pub fn render_nginx(instances: [SocketAddr; 2], listen: SocketAddr, access_log: &Path) -> anyhow::Result<String> {
    render_nginx_for(&instances, listen, access_log)
}

/// The same for any number of instances: each line naming the second example
/// instance is repeated for every instance after the first.
pub fn render_nginx_for(instances: &[SocketAddr], listen: SocketAddr, access_log: &Path) -> anyhow::Result<String> {
    let [first, rest @ ..] = instances else { bail!("nginx needs an instance to send requests to") };
    let rest = if rest.is_empty() { std::slice::from_ref(first) } else { rest };
    let mut repeated = String::with_capacity(NGINX_CONFIG.len());
    for line in NGINX_CONFIG.lines() {
        let copies = if !line.trim_start().starts_with('#') && line.contains(EXAMPLE_INSTANCES[1]) {
            rest.iter().map(|other| line.replace(EXAMPLE_INSTANCES[1], &other.to_string())).collect()
        } else {
            vec![line.to_owned()]
        };
        for copy in copies {
            repeated.push_str(&copy);
            repeated.push('\n');
        }
    }
    substitute(
        &repeated,
        &[
            (EXAMPLE_INSTANCES[0], first.to_string()),
            ("listen 80;", format!("listen {listen};")),
            ("/var/log/nginx/dkp-access.log", access_log.display().to_string()),
        ],
    )
}

/// nginx processes this process has started.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// A running nginx, stopped when dropped.
pub struct Nginx {
    pub address: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Nginx {
    /// Starts nginx with the shipped configuration in front of `instances`,
    /// on a free port of 127.0.0.1, with `workers` worker processes.
    pub async fn start(instances: [SocketAddr; 2], workers: usize) -> anyhow::Result<Nginx> {
        Nginx::start_with(workers, |listen, log| render_nginx(instances, listen, log)).await
    }

    /// Starts nginx with the shipped configuration in front of any number of instances.
    pub async fn start_for(instances: &[SocketAddr], workers: usize) -> anyhow::Result<Nginx> {
        Nginx::start_with(workers, |listen, log| render_nginx_for(instances, listen, log)).await
    }

    /// Starts nginx with the shipped roles configuration: `api` instances
    /// behind `dkp_api`, `auction` instances behind `dkp_auction`.
    pub async fn start_roles(api: [SocketAddr; 2], auction: [SocketAddr; 2], workers: usize) -> anyhow::Result<Nginx> {
        Nginx::start_with(workers, |listen, log| {
            substitute(
                NGINX_ROLES_CONFIG,
                &[
                    (EXAMPLE_INSTANCES[0], api[0].to_string()),
                    (EXAMPLE_INSTANCES[1], api[1].to_string()),
                    (EXAMPLE_AUCTION_INSTANCES[0], auction[0].to_string()),
                    (EXAMPLE_AUCTION_INSTANCES[1], auction[1].to_string()),
                    ("listen 80;", format!("listen {listen};")),
                    ("/var/log/nginx/dkp-access.log", log.display().to_string()),
                ],
            )
        })
        .await
    }

    /// Starts nginx with the configuration `render` writes for a listener and an access log.
    async fn start_with(
        workers: usize,
        render: impl FnOnce(SocketAddr, &Path) -> anyhow::Result<String>,
    ) -> anyhow::Result<Nginx> {
        let port = crate::harness::free_port()?;
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        // The count tells apart the front doors one run starts within the same instant.
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dkp-nginx-{}-{n}", crate::setup::run_tag()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("dkp.conf"), render(address, &dir.join("access.log"))?)?;
        std::fs::write(dir.join("nginx.conf"), main_config(&dir, workers))?;
        let binary = if Path::new("/usr/sbin/nginx").exists() { "/usr/sbin/nginx" } else { "nginx" };
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg(format!("daemon off; pid {};", dir.join("nginx.pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx (Debian package `nginx`)")?;
        let mut nginx = Nginx { address, dir, child };
        nginx.wait_listening().await?;
        Ok(nginx)
    }

    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(self.address).await.is_err() {
            if self.child.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(15) {
                bail!("nginx did not start: {}", self.error_log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// What nginx logged about its own troubles (refused connections to
    /// instances, for one).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The master process and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = crate::cpu::children(master);
        pids.push(master);
        pids
    }

    /// The request log, in the shipped `dkp` format.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master takes its workers down with it.
        crate::harness::stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The main context around the shipped `http`-level file: everything nginx
/// writes stays inside `dir`.
fn main_config(dir: &Path, workers: usize) -> String {
    let d = dir.display();
    format!(
        "worker_processes {workers};\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/dkp.conf;\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_is_rendered_with_the_given_instances_and_listener() {
        let instances = ["127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap()];
        let text = render_nginx(instances, "127.0.0.1:7000".parse().unwrap(), Path::new("/tmp/x.log")).unwrap();
        assert_eq!(text.matches("server 127.0.0.1:7001 max_fails").count(), 2, "both upstreams");
        assert_eq!(text.matches("server 127.0.0.1:7002 max_fails").count(), 2);
        assert!(text.contains("listen 127.0.0.1:7000;"));
        assert!(text.contains("access_log /tmp/x.log dkp;"));
        assert!(!text.lines().any(|l| !l.trim_start().starts_with('#') && l.contains("10.0.0.")));
    }

    #[test]
    fn three_instances_are_listed_in_both_upstreams() {
        let instances: Vec<SocketAddr> = (1..=3).map(|n| format!("127.0.0.1:700{n}").parse().unwrap()).collect();
        let text = render_nginx_for(&instances, "127.0.0.1:7000".parse().unwrap(), Path::new("/tmp/x.log")).unwrap();
        for instance in &instances {
            assert_eq!(text.matches(&format!("server {instance} max_fails")).count(), 2, "{instance}");
        }
        let two = render_nginx(
            instances[..2].try_into().unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
            Path::new("/tmp/x.log"),
        );
        assert!(!two.unwrap().contains("127.0.0.1:7003"), "two instances list no third");
    }

    #[test]
    fn a_missing_placeholder_is_an_error() {
        let error = substitute("listen 80;\n# server 10.0.0.11:8080;\n", &[("10.0.0.11:8080", "x".into())]);
        assert!(error.is_err(), "a commented line does not count");
    }
}

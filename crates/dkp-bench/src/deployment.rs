//! Where a benchmark's load goes: one `dkp serve` (the default), or two on
//! one PostgreSQL database sharing a Redis, reached directly or through nginx
//! running the shipped configuration.
//!
//! Clients reach the instances in one of two ways:
//! - `spread`: the addresses load spreads over: with nginx its one balanced
//!   front door, else each instance in turn;
//! - `pinned(n)`: a way to instance `n`: with nginx a front door of its own
//!   that lists only `n`, else the instance itself. The fan-out benchmark
//!   bids through one and subscribes through the other, so that every
//!   delivery crosses Redis.

use std::fmt;
use std::net::SocketAddr;

use anyhow::bail;
use clap::Args;

use crate::balancer::Nginx;
use crate::cpu::{CpuMeter, matching};
use crate::harness::{Database, Http, Launch, Server};

#[derive(Clone, Args)]
pub struct Topology {
    /// `dkp serve` instances to run (2 needs PostgreSQL and --redis-url).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub instances: u8,
    /// The Redis the instances share (their REDIS_URL).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Put nginx with deploy/nginx/dkp.conf in front of the instances.
    #[arg(long)]
    pub nginx: bool,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("instances", &self.instances)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .field("nginx", &self.nginx)
            .finish()
    }
}

/// Running instances and the nginx processes in front of them, all stopped
/// when dropped (nginx first).
pub struct Deployment {
    doors: Vec<Nginx>,
    servers: Vec<Server>,
    nginx: bool,
    /// What identifies the backing services' processes, for the CPU figures.
    database: Option<String>,
    redis_port: Option<String>,
}

impl Deployment {
    pub async fn start(database: &Database, topology: &Topology) -> anyhow::Result<Deployment> {
        if topology.instances > 1 && database.store() != "postgres" {
            bail!("--instances 2 needs PostgreSQL (--database-url postgres://…): SQLite serves one instance");
        }
        if topology.instances > 1 && topology.redis_url.is_none() {
            bail!("--instances 2 needs --redis-url: the instances pass events to each other over Redis");
        }
        let mut servers = Vec::new();
        for _ in 0..topology.instances {
            let launch = Launch {
                redis_url: topology.redis_url.clone(),
                behind_balancer: topology.nginx,
                role: None,
                ..Launch::this_exe(database)?
            };
            servers.push(Server::launch(&launch).await?);
        }
        // postgres://…/NAME?… names the database; redis://HOST:PORT/… the port.
        let path = |url: &str| url.split('?').next().unwrap_or_default().trim_end_matches('/').to_owned();
        let database = (database.store() == "postgres")
            .then_some(database.database_url.as_deref())
            .flatten()
            .and_then(|url| Some(path(url).rsplit_once('/')?.1.to_owned()));
        let redis_port = topology.redis_url.as_ref().and_then(|url| {
            let path = path(url);
            let (_, port) = path.rsplit_once(':')?;
            Some(port.split('/').next().unwrap_or_default().to_owned())
        });
        Ok(Deployment { doors: Vec::new(), servers, nginx: topology.nginx, database, redis_port })
    }

    /// How the load reaches the instances, for the figures' first line.
    pub fn describe(&self) -> String {
        format!("instances={} via={}", self.servers.len(), if self.nginx { "nginx" } else { "direct" })
    }

    /// The addresses load spreads over.
    pub async fn spread(&mut self) -> anyhow::Result<Vec<SocketAddr>> {
        if !self.nginx {
            return Ok(self.servers.iter().map(|s| s.address).collect());
        }
        let first = self.servers[0].address;
        let last = self.servers[self.servers.len() - 1].address;
        let door = Nginx::start([first, last], 1).await?;
        let address = door.address;
        self.doors.push(door);
        Ok(vec![address])
    }

    /// A way to instance `n` (of the instances there are, in turn).
    pub async fn pinned(&mut self, n: usize) -> anyhow::Result<SocketAddr> {
        let own = self.servers[n % self.servers.len()].address;
        if !self.nginx {
            return Ok(own);
        }
        let door = Nginx::start([own, own], 1).await?;
        let address = door.address;
        self.doors.push(door);
        Ok(address)
    }

    /// Starts measuring the CPU each instance and each nginx uses.
    pub fn cpu_meter(&self) -> CpuMeter {
        let mut groups: Vec<(String, Vec<u32>)> =
            self.servers.iter().enumerate().map(|(n, s)| (format!("dkp{}", n + 1), vec![s.pid()])).collect();
        for (n, door) in self.doors.iter().enumerate() {
            groups.push((format!("nginx{}", n + 1), door.pids()));
        }
        if let Some(database) = &self.database {
            groups.push(("postgres".to_owned(), matching(&["postgres: ", &format!(" {database} ")])));
        }
        if let Some(port) = &self.redis_port {
            groups.push(("redis".to_owned(), matching(&["redis-server", &format!(":{port}")])));
        }
        CpuMeter::start(groups)
    }

    /// The metrics of every instance, one after the other (counters summed
    /// over them read as one).
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let mut all = String::new();
        for server in &self.servers {
            all.push_str(&Http::new(server.address, 1).text("/metrics").await?);
            all.push('\n');
        }
        Ok(all)
    }
}

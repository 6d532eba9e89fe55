//! Where a benchmark's load goes: one `dkp serve` (the default), or two on
//! one PostgreSQL database sharing a Redis, reached directly or through nginx
//! running the shipped configuration.
//!
//! Clients reach the instances in one of two ways:
//! - `spread`: the addresses load spreads over: with nginx its one balanced
//!   front door, else each instance in turn;
//! - `pinned(n)`: a way to instance `n`: with nginx a front door of its own
//!   that sends everything to `n` (the other instance only as its backup),
//!   else the instance itself. The fan-out benchmark bids through one and
//!   subscribes through the other, so that every delivery crosses Redis.

use std::net::SocketAddr;

use anyhow::bail;
use clap::Args;

use super::balancer::{Nginx, Upstream};
use super::cpu::CpuMeter;
use super::harness::{Http, Launch, Server};
use crate::config::{DatabaseArgs, Secret};

#[derive(Debug, Clone, Args)]
pub struct Topology {
    /// `dkp serve` instances to run (2 needs PostgreSQL and --redis-url).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub instances: u8,
    /// The Redis the instances share (their REDIS_URL).
    #[arg(long)]
    pub redis_url: Option<Secret>,
    /// Put nginx with deploy/nginx/dkp.conf in front of the instances.
    #[arg(long)]
    pub nginx: bool,
}

/// Running instances and the nginx processes in front of them, all stopped
/// when dropped (nginx first).
pub struct Deployment {
    doors: Vec<Nginx>,
    servers: Vec<Server>,
    nginx: bool,
}

impl Deployment {
    pub async fn start(database: &DatabaseArgs, topology: &Topology) -> anyhow::Result<Deployment> {
        if topology.instances > 1 && database.database_url.is_none() {
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
                ..Launch::this_exe(database)?
            };
            servers.push(Server::launch(&launch).await?);
        }
        Ok(Deployment { doors: Vec::new(), servers, nginx: topology.nginx })
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
        let first = self.upstream(0, false);
        let last = self.upstream(self.servers.len() - 1, false);
        let door = Nginx::start([first, last], 1).await?;
        let address = door.address;
        self.doors.push(door);
        Ok(vec![address])
    }

    /// A way to instance `n` (of the instances there are, in turn).
    pub async fn pinned(&mut self, n: usize) -> anyhow::Result<SocketAddr> {
        let own = self.upstream(n, false);
        if !self.nginx {
            return Ok(own.address);
        }
        let door = Nginx::start([own, self.upstream(n + 1, true)], 1).await?;
        let address = door.address;
        self.doors.push(door);
        Ok(address)
    }

    fn upstream(&self, n: usize, backup: bool) -> Upstream {
        Upstream { address: self.servers[n % self.servers.len()].address, backup }
    }

    /// Starts measuring the CPU each instance and each nginx uses.
    pub fn cpu_meter(&self) -> CpuMeter {
        let mut groups: Vec<(String, Vec<u32>)> =
            self.servers.iter().enumerate().map(|(n, s)| (format!("dkp{}", n + 1), vec![s.pid()])).collect();
        for (n, door) in self.doors.iter().enumerate() {
            groups.push((format!("nginx{}", n + 1), door.pids()));
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

//! Configuration: one typed `Config`, from flags or the environment (clap with
//! `env`). Secrets are wrapped so that they never print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::blobs::{BlobConfig, BlobLocation, PublicUrls, S3Settings};
use crate::http::Origin;
pub use crate::secret::Secret;
use crate::store::Location;

#[derive(Debug, Parser)]
#[command(name = "dkp", version, about = "DKP wallets and live loot auctions for MMO guilds")]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, the WebSocket feed and the job runner.
    Serve(ServeArgs),
    /// Run the job runner alone (lot closing, decay), beside `serve --no-jobs`.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Import another tool's file into a guild's pool (the database `dkp serve` uses).
    Import(ImportArgs),
    /// Measure the service on this machine and print the figures.
    Bench(dkp_bench::BenchArgs),
    /// Check or refill the audit database (AUDIT_DATABASE_URL).
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// `postgres://…` of the audit database.
    #[arg(long, env = "AUDIT_DATABASE_URL", hide_env_values = true)]
    pub audit_database_url: Secret,
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain; exit 1 naming the first broken row.
    Verify {
        /// Only this guild's chain.
        #[arg(long)]
        guild: Option<String>,
    },
    /// Copy every audit row of the main database the audit database lacks.
    Rebuild,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// `nats://…` when the service publishes events to NATS: the import's go to the outbox too.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<Secret>,
    /// The guild's slug.
    #[arg(long)]
    pub guild: String,
    /// The id of the pool the balances go to.
    #[arg(long)]
    pub pool: String,
    /// eqdkp-xml, monolith, webdkp, mrt, rclc-csv, gargul or csv.
    #[arg(long = "format")]
    pub file_format: String,
    /// Report what the import would do, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// CommunityDKP: the team to read (by number or name).
    #[arg(long)]
    pub team: Option<String>,
    /// EQdkp Plus: the multidkp pool; WebDKP: the table (by id or name).
    #[arg(long)]
    pub table: Option<String>,
    /// The file to import.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, in the `tracing` env-filter syntax.
    #[arg(long = "log", env = "DKP_LOG", default_value = "info", global = true)]
    pub filter: String,
    #[arg(long = "log-format", env = "DKP_LOG_FORMAT", value_enum, default_value = "json", global = true)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://…` for PostgreSQL, `sqlite://PATH`, or unset for SQLite in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Where the embedded database and files live.
    #[arg(long, env = "DKP_DATA_DIR", default_value = "./dkp-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// `postgres://…` of a streaming replica for lag-tolerant reads (PostgreSQL only).
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<Secret>,
    #[arg(long, env = "DKP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Run no jobs in this process (run `dkp worker` beside it).
    #[arg(long, env = "DKP_NO_JOBS")]
    pub no_jobs: bool,
    #[command(flatten)]
    pub job: JobArgs,
    /// How long a login lasts, in hours.
    #[arg(long, env = "DKP_SESSION_TTL_HOURS", default_value_t = 720)]
    pub session_ttl_hours: u32,
    /// Mark the session cookie `Secure` (serve behind HTTPS).
    #[arg(long, env = "DKP_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The address browsers reach the service at (`https://dkp.example`): the one origin
    /// cookie-authenticated changes may come from. Unset: the request's own `Host`.
    #[arg(long, env = "DKP_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub scale: ScaleArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
    /// `postgres://…` of the audit database: a hash-chained, append-only copy of the audit log.
    #[arg(long, env = "AUDIT_DATABASE_URL", hide_env_values = true)]
    pub audit_database_url: Option<Secret>,
    /// `nats://…`: every committed event also goes to NATS JetStream (stream `DKP_EVENTS`);
    /// without `REDIS_URL`, NATS carries the fan-out between instances too.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<Secret>,
    /// What this process serves: `all`; `auction` (lots, bids and `lot:` channels only,
    /// the hot path, scaled apart); `api` (everything else).
    #[arg(long, env = "DKP_ROLE", value_enum, default_value_t = ServeRole::All)]
    pub role: ServeRole,
    /// The base of the web pages' static files: `/static` (served here) or the URL of a CDN
    /// in front. Their names carry a hash of their content, so a CDN may keep them for good.
    #[arg(long, env = "DKP_ASSET_PUBLIC_URL", default_value = "/static")]
    pub asset_public_url: String,
    /// `http://collector:4318`: export the spans of requests (a bid's commit and broadcast
    /// among them) over OTLP/HTTP, to `<endpoint>/v1/traces`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The name the exported spans carry as their `service.name`.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "dkp")]
    pub otel_service_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// `redis://…`: send the events of the jobs (lot closed, balances) to every instance.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    #[command(flatten)]
    pub job: JobArgs,
    /// The base of image URLs in the events of the lots this worker closes (as `serve` has it).
    #[arg(long, env = "DKP_BLOB_PUBLIC_URL", default_value = "/blobs")]
    pub blob_public_url: String,
    /// `nats://…`: publish the outbox's events to NATS JetStream, and queue this worker's own;
    /// without `REDIS_URL`, send the events of the jobs to every instance over NATS.
    #[arg(long, env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<Secret>,
}

/// How this process runs jobs, in `serve` and in `worker`.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// How long a claimed job is this process's before another may take it over, in seconds.
    #[arg(long, env = "DKP_JOB_LEASE_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub job_lease_s: u64,
}

impl JobArgs {
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.job_lease_s)
    }
}

/// What several instances share, and the limits they keep together.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// `redis://…`: fan events out between instances and share lot states and rate limits.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// Bids one member may place per second (0: no limit).
    #[arg(long, env = "DKP_BID_RATE", default_value_t = 20)]
    pub bid_rate: u32,
    /// WebSocket connections one address may open per second (0: no limit).
    #[arg(long, env = "DKP_WS_CONNECT_RATE", default_value_t = 20)]
    pub ws_connect_rate: u32,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a balancer).
    #[arg(long, env = "DKP_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
}

impl Default for ScaleArgs {
    fn default() -> ScaleArgs {
        ScaleArgs { redis_url: None, bid_rate: 20, ws_connect_rate: 20, trust_forwarded_for: false }
    }
}

/// Where uploaded images live and how they are reached.
#[derive(Debug, Clone, Args)]
pub struct BlobArgs {
    /// `file:///PATH`, `s3://BUCKET`, or unset for `blobs` in the data folder.
    #[arg(long, env = "BLOB_URL")]
    pub blob_url: Option<String>,
    /// The base of image URLs: `/blobs` (served here) or the URL of a CDN in front.
    #[arg(long, env = "DKP_BLOB_PUBLIC_URL", default_value = "/blobs")]
    pub blob_public_url: String,
    /// The largest image accepted, in bytes (at most 64 MiB).
    #[arg(long, env = "DKP_BLOB_MAX_BYTES", default_value_t = crate::blobs::DEFAULT_MAX_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub blob_max_bytes: u64,
    /// The S3 store's access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<Secret>,
    /// The S3 store's secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<Secret>,
    /// The S3 store's region (us-east-1 unless set).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// The S3 endpoint of MinIO, Garage or another S3-compatible store.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
}

impl BlobArgs {
    /// The checked blob settings; images live in `data_dir` unless `BLOB_URL` says otherwise.
    pub fn config(&self, data_dir: &Path) -> anyhow::Result<BlobConfig> {
        Ok(BlobConfig {
            location: BlobLocation::parse(self.blob_url.as_deref(), data_dir)?,
            s3: S3Settings {
                access_key_id: self.aws_access_key_id.clone(),
                secret_access_key: self.aws_secret_access_key.clone(),
                region: self.aws_region.clone().filter(|r| !r.is_empty()),
                endpoint: self.aws_endpoint_url.clone().filter(|e| !e.is_empty()),
            },
            public_url: PublicUrls::parse(&self.blob_public_url)?,
            max_bytes: usize::try_from(self.blob_max_bytes)?,
        })
    }
}

/// What one `dkp serve` process serves (seed phase 3: the auction service
/// split out). Every role shares the database, Redis and the jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ServeRole {
    #[default]
    All,
    /// Lots, bids and the `lot:` channels of the WebSocket.
    Auction,
    /// Everything but the auction routes.
    Api,
}

/// Everything `dkp serve` needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub location: Location,
    /// The read replica, if any: checked to be PostgreSQL beside a PostgreSQL primary.
    pub read_replica: Option<Secret>,
    pub session_ttl_hours: u32,
    pub secure_cookies: bool,
    /// The origin of the service's own pages, if configured (`DKP_PUBLIC_URL`).
    pub public_url: Option<Origin>,
    pub jobs: bool,
    pub job_lease: std::time::Duration,
    pub scale: ScaleArgs,
    pub blobs: BlobConfig,
    /// Where browsers fetch the pages' static files.
    pub assets: PublicUrls,
    pub role: ServeRole,
    /// The audit database, fed from the main one while the service runs.
    pub audit_database: Option<Secret>,
    /// NATS, where events are published from the outbox, and which carries
    /// the fan-out between instances when there is no Redis.
    pub nats_url: Option<Secret>,
    /// The OTLP collector's base URL and the service's name in the spans sent there.
    pub otlp: Option<(String, String)>,
}

impl DatabaseArgs {
    /// Where the data lives, from `DATABASE_URL` and the data folder.
    pub fn location(&self) -> anyhow::Result<Location> {
        location(self.database_url.as_ref().map(Secret::expose), &self.data_dir)
    }
}

fn location(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Location> {
    match url {
        None | Some("") => Ok(Location::Sqlite { path: data_dir.join("dkp.sqlite3") }),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Location::Postgres { url: Secret::new(url) })
        }
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Location::Sqlite { path: PathBuf::from(path) }),
            _ => anyhow::bail!("DATABASE_URL must be postgres://…, sqlite://PATH, or unset"),
        },
    }
}

/// The read replica's URL, if set: only a PostgreSQL replica of a PostgreSQL primary.
fn read_replica(url: Option<&str>, primary: &Location) -> anyhow::Result<Option<Secret>> {
    match (url, primary) {
        (None | Some(""), _) => Ok(None),
        (Some(_), Location::Sqlite { .. }) => {
            anyhow::bail!("DATABASE_READ_URL needs DATABASE_URL to be PostgreSQL (SQLite has no replicas)")
        }
        (Some(url), Location::Postgres { .. })
            if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            Ok(Some(Secret::new(url)))
        }
        (Some(_), Location::Postgres { .. }) => anyhow::bail!("DATABASE_READ_URL must be a postgres:// URL"),
    }
}

/// `DKP_PUBLIC_URL`, if set: an `http://` or `https://` origin.
fn public_url(url: Option<&str>) -> anyhow::Result<Option<Origin>> {
    match url {
        None | Some("") => Ok(None),
        Some(url) => url.parse().map(Some).map_err(|e| anyhow::anyhow!("DKP_PUBLIC_URL: {e}")),
    }
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let location = self.database.location()?;
        Ok(Config {
            listen: self.listen,
            data_dir: self.database.data_dir.clone(),
            read_replica: read_replica(self.database_read_url.as_ref().map(Secret::expose), &location)?,
            location,
            session_ttl_hours: self.session_ttl_hours,
            secure_cookies: self.secure_cookies,
            public_url: public_url(self.public_url.as_deref())?,
            jobs: !self.no_jobs,
            job_lease: self.job.lease(),
            scale: self.scale.clone(),
            blobs: self.blobs.config(&self.database.data_dir)?,
            assets: PublicUrls::parse(&self.asset_public_url)
                .map_err(|e| anyhow::anyhow!("DKP_ASSET_PUBLIC_URL: {e}"))?,
            role: self.role,
            audit_database: self.audit_database_url.clone(),
            nats_url: self.nats_url.clone(),
            otlp: self.otlp_endpoint.clone().filter(|e| !e.is_empty()).map(|e| (e, self.otel_service_name.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_database_url_means_sqlite_in_the_data_folder() {
        let Location::Sqlite { path } = location(None, Path::new("/d")).unwrap() else { panic!() };
        assert_eq!(path, Path::new("/d/dkp.sqlite3"));
    }

    #[test]
    fn a_postgres_url_is_kept_secret() {
        let location = location(Some("postgres://u:hunter2@h/db"), Path::new(".")).unwrap();
        assert!(!format!("{location:?}").contains("hunter2"));
    }

    #[test]
    fn the_s3_secret_never_prints_and_a_bad_blob_url_is_refused() {
        let serve = |extra: &[&str]| {
            let args = [&["dkp", "serve", "--aws-secret-access-key", "hunter2"], extra].concat();
            match Cli::try_parse_from(args).expect("the arguments parse").command {
                Command::Serve(args) => args.config(),
                _ => panic!("not serve"),
            }
        };
        let config = serve(&["--blob-url", "s3://guild-images"]).expect("a config");
        assert!(!format!("{config:?}").contains("hunter2"));
        let error = serve(&["--blob-url", "gs://elsewhere"]).expect_err("refused");
        assert!(error.to_string().starts_with("BLOB_URL must be"), "{error}");
    }

    #[test]
    fn a_read_replica_needs_a_postgres_primary_and_url() {
        let postgres = location(Some("postgres://h/db"), Path::new(".")).unwrap();
        let sqlite = location(None, Path::new(".")).unwrap();
        assert!(read_replica(Some("postgres://r/db"), &postgres).unwrap().is_some());
        assert!(read_replica(None, &sqlite).unwrap().is_none());
        assert!(read_replica(Some(""), &postgres).unwrap().is_none());
        let refused = read_replica(Some("postgres://r/db"), &sqlite).unwrap_err().to_string();
        assert!(refused.contains("DATABASE_READ_URL"), "{refused}");
        assert!(read_replica(Some("mysql://r/db"), &postgres).is_err());
    }

    #[test]
    fn a_public_url_is_an_origin() {
        assert!(public_url(None).unwrap().is_none());
        assert_eq!(public_url(Some("https://dkp.example/")).unwrap(), Some("https://dkp.example:443".parse().unwrap()));
        let refused = public_url(Some("dkp.example")).unwrap_err().to_string();
        assert!(refused.starts_with("DKP_PUBLIC_URL"), "{refused}");
    }

    #[test]
    fn an_unknown_scheme_is_refused() {
        assert!(location(Some("mysql://x"), Path::new(".")).is_err());
        assert!(location(Some("sqlite://"), Path::new(".")).is_err());
    }
}

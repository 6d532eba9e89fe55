//! Wiring: `Application::build` opens the store (migrating it), binds the
//! listener and assembles the router; `run_until_stopped` serves until a stop
//! signal, then stops accepting, finishes the requests in flight and closes.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::blobs::{Blobs, PublicUrls};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, WorkerArgs};
use crate::http::wire::Wire;
use crate::http::{self, AppState};
use crate::hub::{Bridge, Encoder, Hub, LocalHub};
use crate::secret::Secret;
use crate::service::jobs::Runner;
use crate::service::{Parts, Service};
use crate::shared::Shared;
use crate::store::{self, Location, Store};
use crate::telemetry::spans::Spans;

pub struct Application {
    listener: TcpListener,
    router: Router,
    service: Arc<Service>,
    /// The store the service writes to, for tools and tests that look at it directly.
    store: Arc<Store>,
    /// The job runner of this process, unless jobs run elsewhere.
    jobs: Option<Runner>,
    /// Held while serving from SQLite, so a second instance cannot open it.
    _data_lock: Option<File>,
    /// The task feeding the audit database, when there is one. It runs from
    /// the start (a test that only builds the application is fed too) until
    /// the application stops serving.
    audit_feed: Option<tokio::task::JoinHandle<()>>,
    /// NATS JetStream, when events go there: this process relays the outbox while it runs jobs.
    nats: Option<async_nats::jetstream::Context>,
    /// How events look on the wire, for the relay.
    encoder: Encoder,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Application::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// The application reading time from `clock` (a test moves its own).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let data_lock = match &config.location {
            Location::Sqlite { path } => Some(lock_data(path)?),
            Location::Postgres { .. } => None,
        };
        let blobs = Arc::new(Blobs::open(&config.blobs).await?);
        let scale = &config.scale;
        let wire = Arc::new(Wire::new(blobs.urls().clone()));
        let (store, shared) = connect(&config.location, config.read_replica.as_ref(), scale.redis_url.as_ref()).await?;
        let audit_feed = match &config.audit_database {
            Some(url) => {
                let audit =
                    store::audit_db::AuditDb::open(url.expose()).await.context("cannot open AUDIT_DATABASE_URL")?;
                Some(tokio::spawn(crate::service::audit_feed::run(store.clone(), audit, clock.clone())))
            }
            None => None,
        };
        let hub = hub(&shared, config.nats_url.as_ref(), &wire).await?;
        let spans = match &config.otlp {
            Some((endpoint, name)) => Some(Spans::start(endpoint, name.clone())?),
            None => None,
        };
        let service = Arc::new(Service::new(Parts {
            store: store.clone(),
            hub,
            clock,
            shared,
            bid_rate: scale.bid_rate,
            connect_rate: scale.ws_connect_rate,
            blobs,
            session_ttl_hours: config.session_ttl_hours,
            outbox: config.nats_url.is_some(),
            spans,
        }));
        let pages = http::web::Pages::new(&config.assets, wire.image_origin()).context("the web pages' templates")?;
        let state = AppState {
            service: service.clone(),
            wire,
            pages: Arc::new(pages),
            metrics: crate::telemetry::metrics(),
            secure_cookies: config.secure_cookies,
            trust_forwarded_for: scale.trust_forwarded_for,
            origin: http::OwnOrigin { public: config.public_url.clone(), trust_forwarded: scale.trust_forwarded_for },
            role: config.role,
        };
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let jobs = config.jobs.then(|| Runner::new("serve", config.job_lease));
        let encoder = encoder(&state.wire);
        let nats = match &config.nats_url {
            Some(url) => Some(crate::service::outbox::connect(url.expose()).await.context("cannot reach NATS_URL")?),
            None => None,
        };
        Ok(Application {
            listener,
            router: http::router(state),
            service,
            store,
            jobs,
            _data_lock: data_lock,
            audit_feed,
            nats,
            encoder,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The router, for sending requests in-process.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Serves until `stop` completes, then drains and closes.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), backend = ?self.service.backend(), "serving");
        let (stop_jobs, jobs_stopped) = watch::channel(false);
        let relay = match (&self.jobs, self.nats) {
            (Some(_), Some(nats)) => {
                let run = crate::service::outbox::run(
                    self.store.clone(),
                    nats,
                    self.encoder,
                    self.service.clock(),
                    jobs_stopped.clone(),
                );
                Some(tokio::spawn(run))
            }
            _ => None,
        };
        let jobs =
            self.jobs.map(|runner| tokio::spawn(crate::service::jobs::run(self.service.clone(), runner, jobs_stopped)));
        let router = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, router).with_graceful_shutdown(stop).await;
        let _ = stop_jobs.send(true);
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        if let Some(feed) = self.audit_feed {
            feed.abort();
        }
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        served.context("the server failed")?;
        self.service.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Opens the store (migrating it), with its read replica when configured, and
/// Redis when configured.
pub(crate) async fn connect(
    location: &Location,
    read_replica: Option<&Secret>,
    redis_url: Option<&Secret>,
) -> anyhow::Result<(Arc<Store>, Option<Shared>)> {
    let store = Arc::new(store::open_with_replica(location, read_replica).await?);
    let shared = match redis_url {
        Some(url) => Some(Shared::connect(url).await?),
        None => None,
    };
    Ok((store, shared))
}

/// The fan-out: between instances over Redis when there is Redis, else over
/// NATS when there is NATS, else inside this process; each event encoded
/// once, as the wire shows it.
pub(crate) async fn hub(
    shared: &Option<Shared>,
    nats_url: Option<&Secret>,
    wire: &Arc<Wire>,
) -> anyhow::Result<Arc<dyn Hub>> {
    let encoder = encoder(wire);
    Ok(match (shared, nats_url) {
        (Some(shared), _) => Arc::new(Bridge::over_redis(shared.clone(), encoder)),
        (None, Some(url)) => Arc::new(Bridge::over_nats(url.expose(), encoder).await.context("cannot reach NATS_URL")?),
        (None, None) => Arc::new(LocalHub::new(encoder)),
    })
}

/// Each event as the wire shows it (the WebSocket's frame, NATS's message).
fn encoder(wire: &Arc<Wire>) -> Encoder {
    let wire = wire.clone();
    Arc::new(move |event| wire.frame(event))
}

/// A service that serves no client (the worker, `dkp import`): no sessions,
/// no rate limits, no image store of its own. `outbox`: events go to NATS too.
pub(crate) fn headless_service(store: Arc<Store>, shared: Option<Shared>, hub: Arc<dyn Hub>, outbox: bool) -> Service {
    Service::new(Parts {
        store,
        hub,
        clock: Arc::new(SystemClock),
        shared,
        bid_rate: 0,
        connect_rate: 0,
        blobs: Arc::new(Blobs::in_memory()),
        session_ttl_hours: 1,
        outbox,
        spans: None,
    })
}

/// `dkp worker`: the job runner alone, until a stop signal. It finishes the
/// job in hand before stopping; one killed outright leaves its claims to
/// run out and be taken over.
pub async fn run_worker(args: WorkerArgs, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let location = args.database.location()?;
    if matches!(location, Location::Sqlite { .. }) {
        anyhow::bail!("dkp worker needs PostgreSQL (DATABASE_URL); on SQLite, dkp serve runs the jobs itself");
    }
    // The worker closes lots, and their events show icon URLs as the API does.
    let wire = Arc::new(Wire::new(PublicUrls::parse(&args.blob_public_url)?));
    // A worker only writes: it needs no read replica.
    let (store, shared) = connect(&location, None, args.redis_url.as_ref()).await?;
    let hub = hub(&shared, args.nats_url.as_ref(), &wire).await?;
    let service = Arc::new(headless_service(store.clone(), shared, hub, args.nats_url.is_some()));
    let runner = Runner::new("worker", args.job.lease());
    let (stop_jobs, jobs_stopped) = watch::channel(false);
    let relay = match &args.nats_url {
        Some(url) => {
            let nats = crate::service::outbox::connect(url.expose()).await.context("cannot reach NATS_URL")?;
            let run = crate::service::outbox::run(store, nats, encoder(&wire), service.clock(), jobs_stopped.clone());
            Some(tokio::spawn(run))
        }
        None => None,
    };
    let jobs = tokio::spawn(crate::service::jobs::run(service.clone(), runner, jobs_stopped));
    stop.await;
    let _ = stop_jobs.send(true);
    let _ = jobs.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    service.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Takes the lock file beside the SQLite database; a second `dkp serve` on
/// the same data fails here with a clear message instead of corrupting it.
pub(crate) fn lock_data(database: &std::path::Path) -> anyhow::Result<File> {
    let dir = database.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let path = dir.join("dkp.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another dkp instance is serving from {}; SQLite serves one instance only (use PostgreSQL to run several)",
            dir.display()
        )
    })?;
    Ok(file)
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("stop signal received; finishing requests in flight");
}

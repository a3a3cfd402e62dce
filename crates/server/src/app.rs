//! Start-up and shutdown: build every part from the configuration, bind, serve until told
//! to stop, then close sockets with "going away" and finish in-flight writes.
//!
//! `Application::build` binds before serving so tests can use port 0 and ask `port()`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rand::RngCore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::at_rest::{AtRestKey, KeyError};
use crate::bus::Bus;
use crate::bus::memory::MemoryBus;
use crate::bus::nats::{NatsBus, NatsBusOptions};
use crate::cache::Cache;
use crate::cache::memory::MemoryCache;
use crate::cache::redis::RedisCache;
use crate::config::{BusEngine, CacheEngine, Config, MediaBackend, StoreEngine};
use crate::files::{create_private_file, write_private};
use crate::gateway::hub::Hub;
use crate::http::{AppState, metrics_router, router};
use crate::media::local::LocalMediaStore;
use crate::media::s3::S3MediaStore;
use crate::media::sealed::Keyring;
use crate::media::{MediaError, MediaStore};
use crate::push::Dispatcher;
use crate::service::{Core, ServiceError};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::transport::{Guard, Timeouts, default_max_connections, refusal_slots};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("push: {0}")]
    Push(#[from] crate::push::PushError),
    #[error("link_previews: {0}")]
    Previews(#[from] crate::outbound::OutboundError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Events the in-process bus buffers for a lagging subscriber.
const BUS_CAPACITY: usize = 65_536;

/// Connections the metrics listener takes at once: a scraper or two. Past it they are
/// closed without an answer.
const METRICS_CONNECTIONS: usize = 16;

/// The background tasks of one application, in tokio's mini-redis shape: each loop ends
/// when `stop` is cancelled, and shutdown waits for `tasks` to be empty, so nothing the
/// server started outlives it (nor the engines and sockets those tasks hold).
#[derive(Clone, Default)]
struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Runs `tick` every `period` (the first at once) until shutdown.
    fn every<F, Fut>(&self, period: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            let mut interval = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = interval.tick() => tick().await,
                }
            }
        });
    }

    /// Runs `work` until it ends or shutdown, whichever comes first.
    fn until_stopped(&self, work: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// Signals every task to stop and waits until all have.
    async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    /// `/metrics` on its own listener; `None` when it is served on the main one.
    metrics: Option<(std::net::TcpListener, SocketAddr)>,
    state: AppState,
    tls: Option<RustlsConfig>,
    background: Background,
}

/// The process-wide Prometheus recorder (the `metrics` facade has one global recorder).
fn metrics_handle() -> Result<PrometheusHandle, StartError> {
    // A lock, not a OnceLock: two servers starting at once in one process (tests) must
    // not both try to install the recorder.
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut slot = HANDLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(h) = slot.as_ref() {
        return Ok(h.clone());
    }
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .and_then(|b| b.install_recorder())
        .map_err(|e| StartError::Metrics(e.to_string()))?;
    crate::telemetry::register();
    Ok(slot.insert(handle).clone())
}

/// The token-signing secret: configured, or generated once and kept in the data dir.
fn signing_secret(config: &Config) -> Result<Vec<u8>, StartError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().as_bytes().to_vec()),
        _ => {
            let mut raw = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut raw);
            let secret = hex::encode(raw);
            write_private(&path, secret.as_bytes())?;
            Ok(secret.into_bytes())
        }
    }
}

/// What the server keeps in the data directory, with the mode each must have.
const DATA_FILES: &[(&str, u32)] = &[
    ("palaver.db", 0o600),
    ("palaver.db-wal", 0o600),
    ("palaver.db-shm", 0o600),
    ("palaver.db-journal", 0o600),
    ("jwt-secret", 0o600),
    ("vapid-private.pem", 0o600),
    ("media", 0o700),
    ("media/objects", 0o700),
    ("media/tmp", 0o700),
];

/// Makes the data directory private to the server's user: the directory 0700, what the
/// server keeps in it 0600 (its directories 0700). Found looser at start-up (a directory
/// made with a lax umask, files of an older version), they are tightened, and the log says
/// so. Anything else in the directory is left as it is, behind the 0700 directory; media
/// objects are written 0600 in 0700 directories (`media/local.rs`), older ones are not
/// walked.
fn private_data_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        tighten(dir, 0o700)?;
        for (name, mode) in DATA_FILES {
            match tighten(&dir.join(name), *mode) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Takes away any permission beyond `mode`. A path the server may not change (another
/// user's) is left as it is, with a warning.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        let tightened =
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode));
        if let Err(err) = tightened {
            if err.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(err);
            }
            tracing::warn!(
                path = %path.display(),
                mode = format!("{current:o}"),
                %err,
                "could not tighten permissions in the data directory; others may read it"
            );
            return Ok(());
        }
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{:o}", current & mode),
            "tightened permissions in the data directory"
        );
    }
    Ok(())
}

/// Pending connections the kernel queues for us. The default of 128 drops SYNs when many
/// clients connect at once (a reconnect storm), and each dropped SYN costs its client a
/// one-second retransmit. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // Lets a restarted server bind while old connections sit in TIME_WAIT. Not for port 0:
    // there the kernel may then hand out a port that another socket holds.
    if addr.port() != 0 {
        socket.set_reuseaddr(true)?;
    }
    socket.bind(addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?.into_std()?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A server on `listener` under the connection limits (docs/CONFIGURATION.md):
/// `max_connections`, the timeouts, and hyper's timer for request heads (without a timer
/// hyper silently ignores its header timeout).
fn guarded<A: Clone>(
    listener: std::net::TcpListener,
    inner: A,
    max_connections: usize,
    refusals: usize,
    config: &Config,
) -> axum_server::Server<Guard<A>> {
    let timeouts = Timeouts {
        first_byte: Duration::from_secs(config.header_timeout_secs),
        idle: Duration::from_secs(config.idle_timeout_secs),
    };
    let guard = Guard::new(inner, max_connections, refusals, timeouts);
    let mut server = axum_server::from_tcp(listener).acceptor(guard);
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_timeout_secs));
    server
}

/// Where `/metrics` is served when `metrics_listen` is unset.
const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

/// Binds the metrics listener: the configured address, or the default one, or (when the
/// default is taken, by another server on the host say) any free loopback port.
fn bind_metrics(configured: Option<SocketAddr>) -> std::io::Result<std::net::TcpListener> {
    let named = |addr: SocketAddr, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("metrics_listen {addr}: {e}"))
    };
    match configured {
        Some(addr) => bind(addr).map_err(|e| named(addr, e)),
        None => match bind(DEFAULT_METRICS_LISTEN) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let fallback = SocketAddr::new(DEFAULT_METRICS_LISTEN.ip(), 0);
                let listener = bind(fallback).map_err(|e| named(fallback, e))?;
                tracing::warn!(
                    taken = %DEFAULT_METRICS_LISTEN,
                    metrics = %listener.local_addr()?,
                    "the default metrics address is taken; set metrics_listen to choose one"
                );
                Ok(listener)
            }
            other => other.map_err(|e| named(DEFAULT_METRICS_LISTEN, e)),
        },
    }
}

/// The at-rest key, if one is configured (docs/DEPLOYMENT.md, "Encryption at rest"). It
/// covers the embedded engines only: said once at start-up, by id, never the key.
fn at_rest_key(config: &Config) -> Result<Option<AtRestKey>, StartError> {
    let key = AtRestKey::from_config(&config.encryption)?;
    if let Some(key) = &key {
        let database = matches!(config.store, StoreEngine::Sqlite);
        let media = matches!(config.media.backend, MediaBackend::Local);
        tracing::info!(key_id = %key.id(), database, media, "encryption at rest");
        if !database || !media {
            tracing::warn!(
                "the at-rest key covers only the SQLite database and local media: encrypt \
                 PostgreSQL's volume and use the bucket's server-side encryption for S3 \
                 (docs/DEPLOYMENT.md, \"Encryption at rest\")"
            );
        }
    }
    Ok(key)
}

/// The engines the configuration names: embedded ones by default, URLs for a cluster.
async fn open_engines(
    config: &Config,
    key: Option<&AtRestKey>,
    node_id: uuid::Uuid,
    background: &Background,
) -> Result<(Arc<dyn Store>, Arc<dyn Bus>, Arc<dyn Cache>), StartError> {
    let ns = config.namespace.as_str();
    let store: Arc<dyn Store> = match &config.store {
        StoreEngine::Sqlite => {
            let path = config.data_dir.join(crate::files::DATABASE_FILE);
            create_private_file(&path)?;
            Arc::new(SqliteStore::open(&path, key).await?)
        }
        StoreEngine::Postgres(url) => {
            Arc::new(PostgresStore::connect(url.as_str(), Some(ns)).await?)
        }
    };
    let bus: Arc<dyn Bus> = match &config.bus {
        BusEngine::Memory => Arc::new(MemoryBus::new(BUS_CAPACITY)),
        BusEngine::Nats(url) => Arc::new(
            NatsBus::connect_with(
                url.as_str(),
                ns,
                NatsBusOptions {
                    stream_max_age: Duration::from_secs(config.bus_stream_max_age_secs),
                    stream_max_bytes: i64::try_from(config.bus_stream_max_bytes)
                        .unwrap_or(i64::MAX),
                    ..NatsBusOptions::default()
                },
            )
            .await
            .map_err(|e| StartError::Engine(e.to_string()))?,
        ),
    };
    let cache: Arc<dyn Cache> = match &config.cache {
        CacheEngine::Memory => {
            let cache = Arc::new(MemoryCache::new(&config.rate_limits));
            let swept = cache.clone();
            background.every(Duration::from_secs(60), move || {
                swept.housekeeping(crate::clock::now_ms());
                std::future::ready(())
            });
            cache
        }
        CacheEngine::Redis(url) => Arc::new(
            RedisCache::connect(
                url.as_str(),
                ns,
                node_id,
                &config.rate_limits,
                config.presence_ttl(),
            )
            .await
            .map_err(|e| StartError::Engine(e.to_string()))?,
        ),
    };
    Ok((store, bus, cache))
}

fn open_media(config: &Config, key: Option<&AtRestKey>) -> Result<Arc<dyn MediaStore>, StartError> {
    // Mid-rotation, objects still sealed with the previous key open too.
    let previous = AtRestKey::previous_from_config(&config.encryption)?;
    let keys = key.map(|key| match &previous {
        Some(old) => Keyring::new(key).with_previous(old),
        None => Keyring::new(key),
    });
    Ok(match config.media.backend {
        MediaBackend::Local => Arc::new(LocalMediaStore::open(
            &config.data_dir.join(crate::files::MEDIA_OBJECTS_DIR),
            &config.data_dir.join("media").join("tmp"),
            keys,
        )?),
        MediaBackend::S3 => Arc::new(S3MediaStore::open(&config.media)?),
    })
}

/// The service over the configured engines, with no listener and no background work:
/// what `palaver admin` uses against the data directory or the cluster's database. It
/// reaches running nodes only through shared engines: with Redis and NATS configured,
/// sessions it ends end on every node at once; with the embedded engines a running
/// server learns of them at its next start (use `palaver admin --server` instead).
pub async fn open_core(config: Config) -> Result<Arc<Core>, StartError> {
    private_data_dir(&config.data_dir)?;
    let secret = signing_secret(&config)?;
    let node_id = uuid::Uuid::now_v7();
    let key = at_rest_key(&config)?;
    let (store, bus, cache) =
        open_engines(&config, key.as_ref(), node_id, &Background::default()).await?;
    let media = open_media(&config, key.as_ref())?;
    Ok(Core::start(
        config, node_id, store, bus, cache, media, &secret, None, None,
    )
    .await?)
}

impl Application {
    /// Opens the data directory and engines, starts the background tasks and binds.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        private_data_dir(&config.data_dir)?;
        let trusted_proxies = config.proxies()?.into();
        let secret = signing_secret(&config)?;
        let node_id = uuid::Uuid::now_v7();
        let background = Background::default();
        let key = at_rest_key(&config)?;
        let (store, bus, cache) = open_engines(&config, key.as_ref(), node_id, &background).await?;
        // Anything here is an upload that was cut off by a restart (only the server
        // clears it: `open_core` runs beside a server that may be taking uploads).
        let _ = std::fs::remove_dir_all(config.data_dir.join("media").join("tmp"));
        let media = open_media(&config, key.as_ref())?;
        let events = bus.subscribe();
        // One TLS implementation for the whole process (the S3 client's included), so
        // none has to guess which is meant.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(RustlsConfig::from_pem_file(cert, key).await?),
            _ => None,
        };
        let listener = bind(config.listen)?;
        let addr = listener.local_addr()?;
        let metrics = match config.metrics_on_main_listener {
            true => None,
            false => {
                let listener = bind_metrics(config.metrics_listen)?;
                let addr = listener.local_addr()?;
                Some((listener, addr))
            }
        };
        // The VAPID key is created before anything can subscribe with it.
        let push = match config.push.enabled {
            true => Some(Dispatcher::new(
                &config.push,
                &config.data_dir,
                store.clone(),
            )?),
            false => None,
        };
        let previews = match config.link_previews.enabled {
            true => Some(crate::link_preview::Fetcher::new(&config.link_previews)?),
            false => None,
        };
        let core = Core::start(
            config, node_id, store, bus, cache, media, &secret, push, previews,
        )
        .await?;
        let hub = Hub::new(core.clone());
        background.until_stopped(hub.clone().run(core.consume(events)));
        // A few times per TTL, so a dead node's users go offline soon after it expires.
        let reaper = core.clone();
        background.every(core.config.presence_ttl() / 3, move || {
            let reaper = reaper.clone();
            async move {
                if let Err(err) = reaper.reap_dead_nodes().await {
                    tracing::warn!(%err, "announcing a dead node's users offline failed");
                }
            }
        });
        let sweeper = core.clone();
        let every = Duration::from_secs(core.config.media.gc_interval_secs);
        background.every(every, move || {
            let sweeper = sweeper.clone();
            async move {
                if let Err(err) = sweeper.collect_orphan_media().await {
                    tracing::warn!(%err, "orphan media sweep failed");
                }
            }
        });
        let state = AppState {
            core,
            hub,
            metrics: metrics_handle()?,
            process: Arc::new(metrics_process::Collector::default()),
            ready: Arc::new(AtomicBool::new(true)),
            trusted_proxies,
            connections: TaskTracker::new(),
        };
        Ok(Application {
            listener,
            addr,
            metrics,
            state,
            tls,
            background,
        })
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where `/metrics` is served: the metrics listener, or the main one when
    /// `metrics_on_main_listener` is set.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.as_ref().map_or(self.addr, |(_, addr)| *addr)
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Application {
            listener,
            addr,
            metrics,
            state,
            tls,
            background,
        } = self;
        let config = state.core.config.clone();
        let handle = axum_server::Handle::new();
        let metrics_handle = axum_server::Handle::new();
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        {
            let (handle, metrics_handle, state) =
                (handle.clone(), metrics_handle.clone(), state.clone());
            background.until_stopped(async move {
                shutdown.await;
                tracing::info!("shutting down");
                state.ready.store(false, Ordering::Relaxed);
                state.hub.close_all();
                handle.graceful_shutdown(Some(grace));
                metrics_handle.shutdown();
            });
        }
        let service = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let max_connections = config
            .max_connections
            .unwrap_or_else(default_max_connections);
        let refusals = refusal_slots(max_connections);
        tracing::info!(%addr, tls = tls.is_some(), max_connections, "palaver listening");
        let main = async {
            match tls {
                Some(tls) => {
                    let tls = RustlsAcceptor::new(tls)
                        .handshake_timeout(Duration::from_secs(config.tls_handshake_timeout_secs));
                    guarded(listener, tls, max_connections, refusals, &config)
                        .handle(handle)
                        .serve(service)
                        .await
                }
                None => {
                    guarded(
                        listener,
                        DefaultAcceptor,
                        max_connections,
                        refusals,
                        &config,
                    )
                    .handle(handle)
                    .serve(service)
                    .await
                }
            }
        };
        let metrics = async {
            let Some((listener, addr)) = metrics else {
                return Ok(());
            };
            tracing::info!(%addr, "metrics listening");
            guarded(listener, DefaultAcceptor, METRICS_CONNECTIONS, 0, &config)
                .handle(metrics_handle)
                .serve(metrics_router(state.clone()).into_make_service())
                .await
        };
        let served = tokio::try_join!(main, metrics);
        // Sockets were asked to close; give their writers a moment to flush and say so.
        state.connections.close();
        if tokio::time::timeout(grace, state.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = state.connections.len(),
                "sockets still open after the grace period"
            );
        }
        state.core.drain().await;
        // Last, the loops that serve the rest (the hub among them): nothing is published
        // after the drain.
        background.stop().await;
        state.core.store.close().await;
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

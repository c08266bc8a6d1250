//! # isola-server
//!
//! `isola serve`: one process hosting many tenants behind HTTP.
//!
//! - **Connections** ([`conn`]): connection cap and socket timeouts.
//! - **Data plane** ([`dataplane`]): routes by `Host: {tenant}.{base_domain}`,
//!   a custom route, or `/t/{tenant}/...`; hands the tenant's `fetch` handler a
//!   `Request` and returns its `Response`, admitted per tenant by
//!   [`admission`] and framed by the server ([`framing`]).
//! - **Workers** ([`pool`]): threads that each own a set of tenant isolates
//!   and interleave their invocations.
//! - **Admin API** ([`admin`]): its own listener, bearer token (at least
//!   [`MIN_ADMIN_TOKEN_BYTES`] bytes), JSON; deploy, configure, roll back,
//!   delete, read logs; `/metrics` in Prometheus format (behind the token, or
//!   open on a `metrics_listen` address of its own).
//! - **Control plane** ([`controlplane`]): deploy, roll back, configure and
//!   delete a tenant, under the per-tenant locks of [`control`].
//! - **Dispatch** ([`dispatch`]): the seam to what runs tenants' code:
//!   worker threads ([`pool`]) or sandboxed worker processes ([`process`]).
//! - **Store** ([`store`]): tenants, settings and code versions in SQLite,
//!   secrets sealed ([`sealed`]); after a restart every deployed tenant serves again.
//!
//! Errors become HTTP responses in one place ([`errors::ApiError`]).

pub mod admin;
pub mod admission;
pub mod config;
pub mod conn;
pub mod control;
pub mod controlplane;
pub mod dataplane;
pub mod dispatch;
pub mod errors;
pub mod framing;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod pool;
pub mod process;
pub mod registry;
pub mod sealed;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use isola_core::Engine;
use tokio::sync::oneshot;

pub use config::{ServerConfig, TenantSettings};
use dispatch::Dispatcher;
use logs::Logs;
use metrics::Metrics;
use pool::{Pool, WorkerBudget};
use registry::Registry;
use store::{SqliteTenantStore, TenantStore};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick another address with --listen / --admin-listen"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The store or engine failed.
    #[error(transparent)]
    Core(#[from] isola_core::Error),
    /// The tenant store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The admin token is unsafe (empty, whitespace, too short).
    #[error("the admin token from {origin} {problem}; use a random token of at least {MIN_ADMIN_TOKEN_BYTES} printable characters (e.g. `openssl rand -hex 24`), or unset it to have one generated in DATA_DIR/admin-token")]
    AdminToken {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        problem: TokenProblem,
    },
    /// Something else (runtime creation, token file).
    #[error("{0}")]
    Other(String),
}

/// Shortest admin token accepted, in bytes.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;
/// Longest admin token accepted, in bytes.
pub const MAX_ADMIN_TOKEN_BYTES: usize = 1024;

/// What is wrong with an admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// Empty or only whitespace.
    #[error("is empty")]
    Empty,
    /// Shorter than [`MIN_ADMIN_TOKEN_BYTES`].
    #[error("is too short ({0} bytes)")]
    TooShort(usize),
    /// Longer than [`MAX_ADMIN_TOKEN_BYTES`].
    #[error("is too long ({0} bytes)")]
    TooLong(usize),
    /// Holds whitespace or characters a header cannot carry.
    #[error("holds whitespace or non-printable characters")]
    BadCharacters,
}

/// Checks an admin token: [`MIN_ADMIN_TOKEN_BYTES`]..=[`MAX_ADMIN_TOKEN_BYTES`]
/// bytes of printable ASCII without spaces.
pub fn check_admin_token(token: &str) -> Result<(), TokenProblem> {
    if token.trim().is_empty() {
        Err(TokenProblem::Empty)
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Err(TokenProblem::BadCharacters)
    } else if token.len() < MIN_ADMIN_TOKEN_BYTES {
        Err(TokenProblem::TooShort(token.len()))
    } else if token.len() > MAX_ADMIN_TOKEN_BYTES {
        Err(TokenProblem::TooLong(token.len()))
    } else {
        Ok(())
    }
}

/// State shared by the HTTP layers.
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Server configuration.
    pub config: ServerConfig,
    /// Durable tenant store.
    pub store: Arc<dyn TenantStore>,
    /// Serving registry.
    pub registry: Registry,
    /// Where tenants' code runs: worker threads or worker processes.
    pub pool: Arc<dyn Dispatcher>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Console rings.
    pub logs: Arc<Logs>,
    /// The admin bearer token.
    pub admin_token: String,
    /// Per-tenant admission queues of the data plane.
    pub admission: admission::Admission,
    /// Data-plane connection counters.
    pub conns: Arc<conn::ConnStats>,
    /// Locks serialising control-plane changes.
    pub control: control::ControlLocks,
    next_request: AtomicU64,
    request_salt: u64,
}

impl AppState {
    /// A new request id (16 hex digits).
    pub fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}",
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.request_salt
        )
    }
}

/// Keeps tenants' trust (see `pool::trust`) in the store, written by a
/// thread of its own so that no worker waits for the disk.
fn trust_to_store(store: Arc<dyn TenantStore>) -> pool::trust::TrustSink {
    let (tx, rx) = std::sync::mpsc::channel::<(String, Option<u64>)>();
    let spawned = std::thread::Builder::new()
        .name("isola-trust".into())
        .spawn(move || {
            for (id, version) in rx {
                if let Err(e) = store.set_trusted(&id, version) {
                    tracing::warn!(tenant = %id, "could not store the tenant's trust: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the trust writer: {e}");
    }
    Box::new(move |id, earned| {
        let _ = tx.send((id.to_string(), earned.map(|(_, version)| version)));
    })
}

/// Reads `DATA_DIR/admin-token`, creating it (random, mode 0600) if missing.
/// A file that exists but holds an unsafe token (empty, too short) is an error.
pub fn admin_token_file(data_dir: &Path) -> Result<String, ServerError> {
    use isola_core::secrets;
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            let t = t.trim().to_string();
            check_admin_token(&t).map_err(|problem| ServerError::AdminToken {
                origin: path.display().to_string(),
                problem,
            })?;
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            secrets::private_dir(data_dir)?;
            let token = secrets::hex(&secrets::random_bytes(24)?);
            secrets::write_private(&path, token.as_bytes())?;
            Ok(token)
        }
        Err(e) => Err(ServerError::Other(format!(
            "{}: {e}; make it readable by this user or pass --admin-token",
            path.display()
        ))),
    }
}

/// A configured server, not yet listening.
pub struct Server {
    state: Arc<AppState>,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Opens the store, loads every deployed tenant and starts the workers.
    /// `engine` must have been created on the main thread first.
    pub fn new(engine: Engine, config: ServerConfig) -> Result<Server, ServerError> {
        let admin_token = match &config.admin_token {
            Some(t) => {
                check_admin_token(t).map_err(|problem| ServerError::AdminToken {
                    origin: "--admin-token / ISOLA_ADMIN_TOKEN".into(),
                    problem,
                })?;
                t.clone()
            }
            None => admin_token_file(&config.data_dir)?,
        };
        let store: Arc<dyn TenantStore> = Arc::new(SqliteTenantStore::open(&config.data_dir)?);
        let registry = Registry::default();
        let trusted = store.trusted_versions()?;
        for t in store.list()? {
            registry.put_settings(&t.id, t.settings.clone());
            if let Some(v) = t.current {
                match store.code(&t.id, v)? {
                    Some(code) => {
                        // Trusted when this version had run a request within
                        // its limits, and had not been stopped by one since.
                        let earned = trusted.get(&t.id) == Some(&v);
                        registry.restore_current(&t.id, v, code, earned);
                    }
                    None => {
                        tracing::warn!(tenant = %t.id, version = v, "current version missing from the store")
                    }
                }
            }
        }
        let logs = Arc::new(Logs::default());
        let workers = config.workers.max(1);
        let budget = WorkerBudget {
            prewarm: config.prewarm_per_worker,
            max_warm: (config.max_warm_isolates / workers).max(1),
            max_heap: config.memory_budget_bytes / workers as u64,
            probation: true,
            outbound: None,
        };
        let metrics = Arc::new(Metrics::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("isola-http")
            .enable_all()
            .build()
            .map_err(|e| ServerError::Other(format!("tokio runtime: {e}")))?;
        let fetch_client = outbound::Client::new(
            runtime.handle().clone(),
            config.fetch_ca_file.as_deref(),
            Some(metrics.clone()),
        )
        .map_err(|e| ServerError::Other(e.to_string()))?;
        let budget = WorkerBudget {
            outbound: Some(pool::FetchClient(Arc::new(fetch_client.clone()))),
            ..budget
        };
        let pool: Arc<dyn Dispatcher> = match config.isolation {
            config::Isolation::Thread => Arc::new(Pool::start(
                &engine,
                workers,
                budget,
                config.max_queue_per_worker,
                logs.clone(),
                metrics.clone(),
                Some(trust_to_store(store.clone())),
            )),
            config::Isolation::Process => Arc::new(
                process::ProcessPool::start(
                    &engine,
                    &config,
                    logs.clone(),
                    metrics.clone(),
                    runtime.handle().clone(),
                    trust_to_store(store.clone()),
                    Some(fetch_client.clone()),
                )
                .map_err(ServerError::Other)?,
            ),
        };
        let admission =
            admission::Admission::new(config.admission_queue_len, config.admission_max_wait);
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Server {
            runtime,
            state: Arc::new(AppState {
                engine,
                config,
                store,
                registry,
                pool,
                metrics,
                logs,
                admin_token,
                admission,
                conns: Arc::default(),
                control: control::ControlLocks::default(),
                next_request: AtomicU64::new(1),
                request_salt: salt,
            }),
        })
    }

    /// Shared state (for embedding and tests).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Binds both listeners and serves on a background runtime.
    pub fn start(self) -> Result<RunningServer, ServerError> {
        let cfg = &self.state.config;
        let bind = |addr: SocketAddr| -> Result<std::net::TcpListener, ServerError> {
            let l = std::net::TcpListener::bind(addr)
                .map_err(|source| ServerError::Bind { addr, source })?;
            l.set_nonblocking(true)
                .map_err(|source| ServerError::Bind { addr, source })?;
            Ok(l)
        };
        let data = bind(cfg.listen)?;
        let admin = bind(cfg.admin_listen)?;
        let data_addr = data
            .local_addr()
            .map_err(|e| ServerError::Other(e.to_string()))?;
        let admin_addr = admin
            .local_addr()
            .map_err(|e| ServerError::Other(e.to_string()))?;
        let metrics = cfg.metrics_listen.map(bind).transpose()?;
        let metrics_addr = metrics
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()
            .map_err(|e| ServerError::Other(e.to_string()))?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = self.state.clone();
        let runtime = self.runtime;
        let thread = std::thread::Builder::new()
            .name("isola-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let data = tokio::net::TcpListener::from_std(data).expect("listener from std");
                    let admin =
                        tokio::net::TcpListener::from_std(admin).expect("listener from std");
                    let admin_app = admin::router(state.clone());
                    let admin_task = tokio::spawn(async move {
                        let _ = axum::serve(admin, admin_app).await;
                    });
                    let metrics_task = metrics.map(|l| {
                        let l = tokio::net::TcpListener::from_std(l).expect("listener from std");
                        let app = admin::metrics_router(state.clone());
                        tokio::spawn(async move {
                            let _ = axum::serve(l, app).await;
                        })
                    });
                    let data_task = tokio::spawn(conn::serve_data(data, state));
                    let _ = stop_rx.await;
                    admin_task.abort();
                    data_task.abort();
                    if let Some(t) = metrics_task {
                        t.abort();
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(|e| ServerError::Other(format!("spawning the server thread: {e}")))?;
        Ok(RunningServer {
            data_addr,
            admin_addr,
            metrics_addr,
            admin_token: self.state.admin_token.clone(),
            state: self.state.clone(),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A server that is listening.
pub struct RunningServer {
    /// Where the data plane listens.
    pub data_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// Where `/metrics` is served without auth, if `metrics_listen` was set.
    pub metrics_addr: Option<SocketAddr>,
    /// The admin bearer token.
    pub admin_token: String,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Shared state (for embedding and tests).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops listening and waits for the server thread (workers stay until the process ends).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Blocks until the server thread ends (it does not end on its own).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

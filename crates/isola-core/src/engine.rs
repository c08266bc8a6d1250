//! [`Engine`]: the process-wide handle that owns V8, the base snapshot and the code cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::code_cache::{CodeCacheStore, SqliteCodeCache, DEFAULT_MAX_BYTES};
use crate::error::Result;
use crate::runtime::{platform, watchdog::Watchdog};
use crate::snapshot::{self, BaseSnapshot};

/// How to build an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where the snapshot cache and the store live. `None`: nothing on disk
    /// (the snapshot is built in memory and there is no code cache).
    pub data_dir: Option<PathBuf>,
    /// Whether tenant compiles use and fill the code cache.
    pub code_cache: bool,
    /// Bound of the code cache in bytes (LRU eviction past it).
    pub code_cache_max_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: Some(default_data_dir()),
            code_cache: true,
            code_cache_max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl EngineConfig {
    /// A config using `dir` as the data directory.
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: Some(dir.into()),
            ..EngineConfig::default()
        }
    }

    /// A config with nothing on disk: in-memory snapshot, no code cache.
    pub fn in_memory() -> Self {
        EngineConfig {
            data_dir: None,
            code_cache: false,
            code_cache_max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// `$XDG_DATA_HOME/isola`, else `$HOME/.local/share/isola`, else `./.isola`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("isola");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/isola");
    }
    PathBuf::from(".isola")
}

pub(crate) struct EngineInner {
    pub snapshot: BaseSnapshot,
    pub cache: Option<Arc<dyn CodeCacheStore>>,
    pub watchdog: Watchdog,
    pub data_dir: Option<PathBuf>,
}

/// The process-wide engine: V8 initialised once, the base snapshot, the code
/// cache store and the limits watchdog.
///
/// Create it on the main thread before spawning threads that run tenants (V8
/// needs its platform initialised first on CPUs with memory protection
/// keys). It is cheap to clone and `Send + Sync`; [`crate::Tenant`]s are not.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("snapshot", &self.inner.snapshot.fingerprint)
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Initialises V8 (once per process), loads or builds the base snapshot
    /// and opens the code cache.
    pub fn new(config: EngineConfig) -> Result<Self> {
        platform::init();
        if let Some(dir) = &config.data_dir {
            // Private from the start (0700): it holds keys, tenants' code and secrets.
            crate::secrets::private_dir(dir)?;
        }
        let snapshot = snapshot::load_or_build(
            config
                .data_dir
                .as_deref()
                .map(|d| d.join("snapshots"))
                .as_deref(),
        )?;
        let cache: Option<Arc<dyn CodeCacheStore>> = match (&config.data_dir, config.code_cache) {
            (Some(dir), true) => Some(Arc::new(SqliteCodeCache::open(
                dir,
                config.code_cache_max_bytes,
            )?)),
            _ => None,
        };
        Ok(Engine {
            inner: Arc::new(EngineInner {
                snapshot,
                cache,
                watchdog: Watchdog::default(),
                data_dir: config.data_dir,
            }),
        })
    }

    /// Like [`Engine::new`] with a custom code cache store (e.g. a shared one).
    pub fn with_store(config: EngineConfig, store: Arc<dyn CodeCacheStore>) -> Result<Self> {
        let mut engine = Engine::new(EngineConfig {
            code_cache: false,
            ..config
        })?;
        if let Some(inner) = Arc::get_mut(&mut engine.inner) {
            inner.cache = Some(store);
        }
        Ok(engine)
    }

    /// The base snapshot's fingerprint (hex SHA-256).
    pub fn snapshot_fingerprint(&self) -> &str {
        &self.inner.snapshot.fingerprint
    }

    /// Whether the snapshot file had to be (re)created because it was missing
    /// or unusable (false: a valid one was found in the data dir).
    pub fn snapshot_was_built(&self) -> bool {
        self.inner.snapshot.built
    }

    /// Size of the base snapshot in bytes.
    pub fn snapshot_size(&self) -> usize {
        self.inner.snapshot.blob.len()
    }

    /// The code cache store, if enabled.
    pub fn code_cache(&self) -> Option<&Arc<dyn CodeCacheStore>> {
        self.inner.cache.as_ref()
    }

    /// The data directory, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.data_dir.as_deref()
    }

    /// The V8 version isola runs.
    pub fn v8_version() -> &'static str {
        platform::v8_version()
    }

    /// The V8 flags isola runs with.
    pub fn v8_flags() -> &'static str {
        platform::V8_FLAGS
    }
}

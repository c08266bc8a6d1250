//! # isola-core
//!
//! The engine of isola, a multi-tenant JavaScript runtime on V8: every tenant
//! gets its own V8 isolate, started from one base startup snapshot, with its
//! compiled code kept in a persistent, authenticated code cache and its use
//! of heap, ArrayBuffer memory, CPU and wall time bounded and accounted.
//!
//! ## Concepts
//!
//! - [`Engine`]: one per process. Initialises V8 (on the main thread, before
//!   other threads run isolates), loads or builds the base snapshot (cached in
//!   the data directory, keyed by its fingerprint) and opens the code cache.
//!   Cheap to clone, `Send + Sync`.
//! - [`Tenant`]: one customer's code in exactly one isolate with one context.
//!   Not `Send`: it stays on the thread that created it. Creating one costs
//!   an isolate from the snapshot (about a millisecond) plus compiling its
//!   code (near zero on a code cache hit).
//! - [`TenantCode`]: an ES module or classic script, possibly several files
//!   importing each other by relative path, never anything outside the bundle.
//! - [`Limits`]: per-tenant budgets. A tenant that breaks one gets
//!   [`Error::Limit`] naming the limit and its value, with a [`KillReport`]
//!   saying where its code was; its isolate is replaced, the process and the
//!   other tenants go on.
//! - [`TenantStats`]: per-tenant accounting (invocations, errors, CPU and
//!   wall histograms, heap, isolate creations, code cache hits).
//! - [`CodeCacheStore`]: where code cache entries live; [`SqliteCodeCache`] by default.
//!
//! ## Example
//!
//! ```no_run
//! use isola_core::{Engine, EngineConfig, HttpRequest, Output, Tenant, TenantCode, TenantConfig};
//!
//! let engine = Engine::new(EngineConfig::with_data_dir("/tmp/isola-doc"))?;
//! let code = TenantCode::single(
//!     "worker.js",
//!     r#"export default { async fetch(req) { return new Response("hi from " + req.url); } }"#,
//! );
//! let mut tenant = Tenant::new(&engine, TenantConfig::new("acme"), code)?;
//! let out = tenant.fetch(HttpRequest::get("http://acme.example/"))?;
//! match out.output {
//!     Output::Response(r) => assert_eq!(r.body, b"hi from http://acme.example/"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), isola_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod accounting;
pub mod bundle;
pub mod code_cache;
pub mod engine;
pub mod error;
pub mod limits;
pub mod outbound;
mod runtime;
pub mod secrets;
pub mod snapshot;
mod sqlite;
pub mod tenant;

pub use accounting::{HeapUsage, Histogram, KillReport, TenantStats};
pub use bundle::{CodeKind, TenantCode};
pub use code_cache::{CacheEvent, CacheKey, CacheStats, CodeCacheStore, SqliteCodeCache};
pub use engine::{default_data_dir, Engine, EngineConfig};
pub use error::{Error, JsError, LimitError, Location, Result};
pub use limits::{Bound, ConcurrencyGate, LimitKind, Limits, LimitsError, Permit};
pub use outbound::{
    FetchPolicy, Outbound, OutboundCall, OutboundPoll, OutboundRequest, OutboundResponse,
};
pub use tenant::{
    stderr_console, BodyPoll, BodyProgress, BodySource, ConsoleLevel, ConsoleSink, HttpRequest,
    HttpResponse, Invocation, Invoked, IsolatePool, LoadInfo, Output, Progress, Tenant,
    TenantConfig,
};

/// Initialises V8's platform for this process (idempotent). [`Engine::new`]
/// calls it; call it yourself first thing in `main` when other threads are
/// spawned before the engine is created (V8 requires the platform to exist
/// before threads that will run isolates, on CPUs with memory protection keys).
pub fn init_platform() {
    runtime::platform::init();
}

/// Hooks for tests and benchmarks; not part of the stable API.
#[doc(hidden)]
pub mod testing {
    /// How many times this process executed the bootstrap JS.
    pub fn bootstrap_executions() -> usize {
        crate::runtime::ops::bootstrap_executions()
    }

    /// A code cache for `source` made in a plain V8 isolate without isola's
    /// snapshot (bytes a tenant isolate must reject).
    pub fn foreign_code_cache(source: &str, module: bool) -> Option<Vec<u8>> {
        crate::runtime::foreign_code_cache(source, module)
    }

    pub use crate::runtime::platform::V8_FLAGS;

    /// Creates and drops a plain V8 isolate (V8's own snapshot) with a context.
    pub fn bench_plain_isolate() {
        crate::runtime::snapshot::bench_plain_isolate()
    }

    /// Creates a plain isolate and context and runs isola's bootstrap JS in
    /// it: the cost a tenant would pay without the base snapshot.
    pub fn bench_isolate_running_bootstrap() -> bool {
        crate::runtime::snapshot::bench_isolate_running_bootstrap()
    }
}

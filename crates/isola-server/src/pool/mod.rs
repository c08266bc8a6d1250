//! The worker pool: threads that own tenant isolates.
//!
//! A proven tenant always lives on the same shared worker
//! (`hash(id) % workers`); requests reach it over the worker's queue. A
//! tenant version runs on the probation worker until one of its requests has
//! run to its end within its limits, and on the penalty worker (at the lowest
//! priority) for a while after it broke one (see [`quarantine`]): code whose
//! behaviour is unknown, or known bad, never holds up the shared workers'
//! tenants. Each worker runs an event loop over its
//! tenants: it begins queued invocations, resumes those whose timers are due
//! and sleeps until the next wake-up or job, so one tenant awaiting a timer
//! never holds up the others. A tenant runs one invocation at a time; later
//! requests wait in its queue (bounded by its concurrency limit).
//!
//! A new version is switched to only between invocations, so in-flight
//! requests finish on the version they started on. Idle tenants are evicted
//! least-recently-used when the worker holds more warm isolates, or more
//! heap, than its share of the budgets.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use isola_core::{
    BodySource, CacheEvent, ConcurrencyGate, Engine, Error, HttpRequest, Invoked, IsolatePool,
    Limits, Permit, TenantCode,
};
use tokio::sync::oneshot;

use crate::config::TenantSettings;
use crate::dispatch::{BoxFuture, Dispatcher};
use crate::logs::Logs;
use crate::metrics::Metrics;

mod quarantine;
mod stream;
mod takeover;
pub mod trust;
mod validate;
mod worker;

use quarantine::Quarantine;
use quarantine::Route;
pub(crate) use takeover::lower_priority;
use takeover::{Retired, WorkerKind, WorkerShared};
use worker::{Penalized, WorkerLoop};

/// A deployed tenant version: what the workers run.
#[derive(Debug)]
pub struct Deployment {
    /// Tenant id.
    pub id: String,
    /// Code version.
    pub version: u64,
    /// Unique per deployment (a new version or new settings); workers switch on it.
    pub generation: u64,
    /// Restored from the store when the server started, with the trust its
    /// version had earned before: it starts on its shared worker, not on
    /// probation (see [`trust`]).
    pub restored: bool,
    /// Settings at deploy time.
    pub settings: Arc<TenantSettings>,
    /// The code.
    pub code: Arc<TenantCode>,
    /// The tenant's in-flight gate (shared across versions).
    pub gate: ConcurrencyGate,
}

/// What a worker reports back for one request.
#[derive(Debug)]
pub struct Reply {
    /// The handler's result.
    pub result: Result<Invoked, Error>,
    /// Whether the isolate was created for this request.
    pub cold: bool,
    /// Whether that creation used a pre-created blank isolate.
    pub prewarmed: bool,
    /// Code cache outcomes of the load, when cold.
    pub cache: Vec<CacheEvent>,
    /// Heap bytes in use after the request.
    pub heap_bytes: u64,
    /// The body of a streamed response, chunk by chunk.
    pub body: Option<tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>>,
}

impl Reply {
    /// A request that failed before its handler ran.
    fn failed(err: Error, cold: bool) -> Reply {
        Reply {
            result: Err(err),
            cold,
            prewarmed: false,
            cache: Vec::new(),
            heap_bytes: 0,
            body: None,
        }
    }
}

pub(crate) enum Job {
    Invoke {
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        reply: oneshot::Sender<Reply>,
        permit: Permit,
    },
    Evict {
        id: String,
    },
}

struct Worker {
    tx: Sender<Job>,
    queued: Arc<AtomicUsize>,
}

/// The pool's handle, used by the HTTP layers.
pub struct Pool {
    workers: Vec<Worker>,
    probation: Option<Worker>,
    penalty: Worker,
    /// Every worker's shared state (shared workers, probation, penalty), for `describe`.
    threads: Vec<Arc<WorkerShared>>,
    quarantine: Arc<Quarantine>,
    max_queue: usize,
    engine: Engine,
    logs: Arc<Logs>,
    retired: Retired,
    outbound: Option<FetchClient>,
}

pub use crate::dispatch::DispatchError;

/// Sizes a worker works within.
#[derive(Debug, Clone)]
pub struct WorkerBudget {
    /// Blank isolates kept ready for tenants' first requests.
    pub prewarm: usize,
    /// Warm isolates at most.
    pub max_warm: usize,
    /// Heap bytes of warm isolates at most.
    pub max_heap: u64,
    /// Whether tenant versions not known yet run on a probation worker
    /// first (off in a worker process: its supervisor places them).
    pub probation: bool,
    /// The HTTP client tenants' `fetch()` goes through (`None`: `fetch()` throws).
    pub outbound: Option<FetchClient>,
}

/// The host's client for tenants' `fetch()`.
#[derive(Clone)]
pub struct FetchClient(pub Arc<dyn isola_core::Outbound>);

impl std::fmt::Debug for FetchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FetchClient")
    }
}

impl Pool {
    /// Starts `n` worker threads plus the probation (if the budget says so)
    /// and penalty workers. Call after `Engine::new` (V8 is initialised).
    /// `trust` hears which tenant deployments earn or lose trust.
    pub fn start(
        engine: &Engine,
        n: usize,
        budget: WorkerBudget,
        max_queue: usize,
        logs: Arc<Logs>,
        metrics: Arc<Metrics>,
        trust: Option<trust::TrustSink>,
    ) -> Pool {
        let quarantine = Arc::new(Quarantine::new(trust));
        let retired = Retired::default();
        let queues: Arc<std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>> = Arc::default();
        let penalized: Arc<OnceLock<Penalized>> = Arc::default();
        let start_thread: takeover::Spawn = {
            let (engine, budget, logs, quarantine, retired, queues, metrics, penalized) = (
                engine.clone(),
                budget.clone(),
                logs.clone(),
                quarantine.clone(),
                retired.clone(),
                queues.clone(),
                metrics.clone(),
                penalized.clone(),
            );
            Arc::new(move |shared: Arc<WorkerShared>, gen: u64| {
                let queued = queues
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&shared.name)
                    .cloned()
                    .unwrap_or_default();
                let (engine, budget, logs, quarantine, retired, metrics, penalty) = (
                    engine.clone(),
                    budget.clone(),
                    logs.clone(),
                    quarantine.clone(),
                    retired.clone(),
                    metrics.clone(),
                    penalized.clone(),
                );
                // Replacements after a takeover get the generation as a suffix.
                let name = match gen {
                    0 => shared.name.clone(),
                    g => format!("{}.{g}", shared.name),
                };
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .stack_size(8 << 20)
                    .spawn(move || {
                        shared.serving_thread_starts();
                        if shared.kind == WorkerKind::Penalty {
                            takeover::lower_priority(takeover::current_tid());
                        }
                        // Tenants (isolates) are created on, and never leave, this thread.
                        let prewarmed =
                            IsolatePool::new(&engine, Limits::default(), budget.prewarm);
                        WorkerLoop {
                            engine,
                            shared,
                            gen,
                            retired,
                            queued,
                            budget,
                            logs,
                            metrics,
                            quarantine,
                            penalty,
                            prewarmed,
                            slots: HashMap::new(),
                        }
                        .run()
                    });
                if let Err(e) = spawned {
                    tracing::error!("cannot start a worker thread: {e}");
                }
            })
        };
        let mut shared_all = Vec::new();
        let mut spawn = |name: String, kind: WorkerKind| {
            let (tx, rx) = mpsc::channel();
            let queued = Arc::new(AtomicUsize::new(0));
            queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), queued.clone());
            let shared = Arc::new(WorkerShared::new(name, kind, rx));
            start_thread(shared.clone(), 0);
            shared_all.push(shared);
            Worker { tx, queued }
        };
        let workers = (0..n.max(1))
            .map(|i| spawn(format!("isola-worker-{i}"), WorkerKind::Shared))
            .collect();
        let outbound = budget.outbound.clone();
        let probation = budget
            .probation
            .then(|| spawn("isola-probation".to_string(), WorkerKind::Probation));
        let penalty = spawn("isola-penalty".to_string(), WorkerKind::Penalty);
        let _ = penalized.set(Penalized {
            tx: penalty.tx.clone(),
            queued: penalty.queued.clone(),
        });
        // A tenant that held a worker past the turn limit runs its next
        // requests on the penalty worker.
        let demote = quarantine.clone();
        let threads = shared_all.clone();
        takeover::monitor(
            shared_all,
            start_thread,
            retired.clone(),
            Box::new(move |id| demote.demote(id)),
        );
        Pool {
            workers,
            probation,
            penalty,
            threads,
            quarantine,
            max_queue,
            engine: engine.clone(),
            logs,
            retired,
            outbound,
        }
    }

    fn worker(&self, id: &str) -> &Worker {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        &self.workers[(h.finish() % self.workers.len() as u64) as usize]
    }

    /// Requests on the workers now: waiting, running, or streaming a body.
    pub fn requests(&self) -> usize {
        self.workers
            .iter()
            .chain(self.probation.iter())
            .chain([&self.penalty])
            .map(|w| w.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// The tenant whose isolate has held a retired thread longest inside
    /// the turn it was taken over in (it ignores termination), and how long.
    pub fn stuck(&self) -> Option<(String, Duration)> {
        self.retired.oldest_long_turn()
    }

    /// Whether `id` currently runs on the penalty worker.
    pub fn is_quarantined(&self, id: &str) -> bool {
        self.quarantine.contains(id)
    }

    /// Queues a request for its tenant's worker and waits for the reply.
    pub async fn invoke(
        &self,
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        permit: Permit,
    ) -> Result<Reply, DispatchError> {
        let w = match self.quarantine.route(&dep) {
            Err(wait) => return Err(DispatchError::Suspended(wait)),
            Ok(Route::Penalty) => &self.penalty,
            Ok(Route::Probation) => self.probation.as_ref().unwrap_or(self.worker(&dep.id)),
            Ok(Route::Shared) => self.worker(&dep.id),
        };
        if w.queued.load(Ordering::Relaxed) >= self.max_queue {
            return Err(DispatchError::Overloaded);
        }
        let (reply, rx) = oneshot::channel();
        w.queued.fetch_add(1, Ordering::Relaxed);
        if w.tx
            .send(Job::Invoke {
                dep,
                request,
                body,
                reply,
                permit,
            })
            .is_err()
        {
            w.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(DispatchError::Closed);
        }
        rx.await.map_err(|_| DispatchError::Closed)
    }

    /// Compiles and loads `dep` in a scratch isolate and runs the optional
    /// smoke request, on a thread of its own (a slow smoke request must not
    /// hold up a worker's tenants); `Err` says what is wrong.
    pub async fn validate(
        &self,
        dep: Arc<Deployment>,
        smoke: Option<HttpRequest>,
    ) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        let engine = self.engine.clone();
        let logs = self.logs.clone();
        let outbound = self.outbound.clone();
        std::thread::Builder::new()
            .name("isola-validate".into())
            .stack_size(8 << 20)
            .spawn(move || {
                let config = validate::tenant_config(&dep, &logs, outbound.as_ref());
                let _ = reply.send(validate::validate(&engine, config, &dep, smoke));
            })
            .map_err(|e| format!("cannot start validation: {e}"))?;
        rx.await
            .map_err(|_| "validation thread failed".to_string())?
    }

    /// Drops a tenant's isolate (after a delete).
    pub fn evict(&self, id: &str) {
        self.evict_quiet(id)
    }

    fn evict_quiet(&self, id: &str) {
        let probation = self.probation.iter();
        for w in [self.worker(id), &self.penalty]
            .into_iter()
            .chain(probation)
        {
            let _ = w.tx.send(Job::Evict { id: id.to_string() });
        }
        self.quarantine.remove(id);
    }
}

impl Dispatcher for Pool {
    fn invoke(
        &self,
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        permit: Permit,
    ) -> BoxFuture<'_, Result<Reply, DispatchError>> {
        Box::pin(Pool::invoke(self, dep, request, body, permit))
    }

    fn validate(
        &self,
        dep: Arc<Deployment>,
        smoke: Option<HttpRequest>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(Pool::validate(self, dep, smoke))
    }

    fn evict(&self, id: &str) {
        self.evict_quiet(id)
    }

    fn requests(&self) -> usize {
        Pool::requests(self)
    }

    fn is_quarantined(&self, id: &str) -> bool {
        Pool::is_quarantined(self, id)
    }

    fn describe(&self) -> serde_json::Value {
        let threads: Vec<serde_json::Value> = self
            .threads
            .iter()
            .map(|w| {
                serde_json::json!({
                    "name": w.name,
                    "role": w.kind.name(),
                    "takeovers": w.takeovers.load(Ordering::Relaxed),
                })
            })
            .collect();
        serde_json::json!({
            "isolation": "thread",
            "workers": self.workers.len(),
            "threads": threads,
            "requests": Pool::requests(self),
        })
    }
}

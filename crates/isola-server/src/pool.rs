//! The worker pool: threads that own tenant isolates.
//!
//! A tenant always lives on the same worker (`hash(id) % workers`); requests
//! reach it over the worker's queue. Each worker runs an event loop over its
//! tenants: it begins queued invocations, resumes those whose timers are due
//! and sleeps until the next wake-up or job, so one tenant awaiting a timer
//! never holds up the others. A tenant runs one invocation at a time; later
//! requests wait in its queue (bounded by its concurrency limit).
//!
//! A new version is switched to only between invocations, so in-flight
//! requests finish on the version they started on. Idle tenants are evicted
//! least-recently-used when the worker holds more warm isolates, or more
//! heap, than its share of the budgets.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use isola_core::{
    BodyProgress, BodySource, CacheEvent, ConcurrencyGate, Engine, Error, HttpRequest, Invocation,
    Invoked, IsolatePool, Limits, Output, Permit, Progress, Tenant, TenantCode, TenantConfig,
};
use tokio::sync::oneshot;

use crate::config::TenantSettings;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::takeover::{self, Retired, WorkerShared};

/// A deployed tenant version: what the workers run.
#[derive(Debug)]
pub struct Deployment {
    /// Tenant id.
    pub id: String,
    /// Code version.
    pub version: u64,
    /// Unique per deployment (a new version or new settings); workers switch on it.
    pub generation: u64,
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

/// Tenants that broke a limit recently. They run on a separate penalty
/// worker, so well-behaved tenants' workers never run their code again, and
/// after each kill they are refused for a cool-down that doubles per kill.
#[derive(Default)]
pub(crate) struct Quarantine {
    entries: std::sync::Mutex<HashMap<String, Penalty>>,
}

#[derive(Debug, Clone, Copy)]
struct Penalty {
    kills: u32,
    last_kill: Instant,
    cooldown_until: Instant,
}

/// How long a tenant stays on the penalty worker after its last kill.
const QUARANTINE_KEEP: Duration = Duration::from_secs(60);
/// First cool-down after a kill; doubles per kill up to [`MAX_COOLDOWN`].
const FIRST_COOLDOWN: Duration = Duration::from_millis(250);
const MAX_COOLDOWN: Duration = Duration::from_secs(10);

impl Quarantine {
    fn record_kill(&self, id: &str) {
        let now = Instant::now();
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let p = e.entry(id.to_string()).or_insert(Penalty {
            kills: 0,
            last_kill: now,
            cooldown_until: now,
        });
        p.kills += 1;
        p.last_kill = now;
        let cooldown = FIRST_COOLDOWN
            .saturating_mul(1 << (p.kills - 1).min(8))
            .min(MAX_COOLDOWN);
        p.cooldown_until = now + cooldown;
        tracing::warn!(tenant = %id, kills = p.kills, cooldown_ms = cooldown.as_millis() as u64, "tenant quarantined after a limit kill");
    }

    /// `Err(wait)` while cooling down; `Ok(true)` if it runs on the penalty worker.
    fn check(&self, id: &str) -> Result<bool, Duration> {
        let now = Instant::now();
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = e.get(id).copied() else {
            return Ok(false);
        };
        if now.duration_since(p.last_kill) > QUARANTINE_KEEP {
            e.remove(id);
            return Ok(false);
        }
        if now < p.cooldown_until {
            return Err(p.cooldown_until - now);
        }
        Ok(true)
    }

    /// Whether `id` is quarantined now.
    pub fn contains(&self, id: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    fn remove(&self, id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

fn tenant_config(dep: &Deployment, logs: &Arc<Logs>) -> TenantConfig {
    TenantConfig::new(&dep.id)
        .limits(dep.settings.limits.clone())
        .env(dep.settings.env_json())
        .console(logs.sink(&dep.id))
}

fn validate(
    engine: &Engine,
    logs: &Arc<Logs>,
    dep: &Deployment,
    smoke: Option<HttpRequest>,
) -> Result<(), String> {
    let mut t = Tenant::new(engine, tenant_config(dep, logs), (*dep.code).clone())
        .map_err(|e| e.to_string())?;
    if let Some(req) = smoke {
        match t.fetch(req) {
            Ok(Invoked {
                output: Output::Response(r),
                ..
            }) if r.status < 500 => {}
            Ok(Invoked {
                output: Output::Response(r),
                ..
            }) => return Err(format!("smoke request answered {}", r.status)),
            Ok(other) => return Err(format!("smoke request returned {:?}", other.output)),
            Err(e) => return Err(format!("smoke request failed: {e}")),
        }
    }
    Ok(())
}

/// A kill that no request's reply carries (of `ctx.waitUntil` work after its
/// response, or while a response body streams) is counted and quarantines
/// the tenant like a kill inside a request.
fn kill_outside_reply(metrics: &Metrics, quarantine: &Quarantine, id: &str, e: &Error) {
    let cause = match e {
        Error::Limit(l) if l.kind != isola_core::LimitKind::Concurrency => l.kind.name(),
        Error::Forbidden { .. } => "forbidden",
        _ => return,
    };
    metrics.termination(id, cause);
    quarantine.record_kill(id);
}

/// Runs the calling thread at the lowest scheduling priority (nice 19), so
/// quarantined tenants' code only gets CPU that well-behaved tenants leave.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id
        // only changes this thread's nice value.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
        if rc != 0 {
            tracing::warn!(
                "could not lower the penalty worker's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The pool's handle, used by the HTTP layers.
pub struct Pool {
    workers: Vec<Worker>,
    penalty: Worker,
    quarantine: Arc<Quarantine>,
    max_queue: usize,
    engine: Engine,
    logs: Arc<Logs>,
}

/// Why a request could not be queued.
#[derive(Debug)]
pub enum DispatchError {
    /// The worker's queue is full.
    Overloaded,
    /// The worker is gone (shutting down).
    Closed,
    /// The tenant broke a limit and is cooling down for this long.
    Suspended(Duration),
}

/// Sizes a worker works within.
#[derive(Debug, Clone)]
pub struct WorkerBudget {
    /// Blank isolates kept ready for tenants' first requests.
    pub prewarm: usize,
    /// Warm isolates at most.
    pub max_warm: usize,
    /// Heap bytes of warm isolates at most.
    pub max_heap: u64,
}

impl Pool {
    /// Starts `n` worker threads plus the penalty worker. Call after
    /// `Engine::new` (V8 is initialised).
    pub fn start(
        engine: &Engine,
        n: usize,
        budget: WorkerBudget,
        max_queue: usize,
        logs: Arc<Logs>,
        metrics: Arc<Metrics>,
    ) -> Pool {
        let quarantine = Arc::new(Quarantine::default());
        let retired = Retired::default();
        let queues: Arc<std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>> = Arc::default();
        let start_thread: takeover::Spawn = {
            let (engine, budget, logs, quarantine, retired, queues, metrics) = (
                engine.clone(),
                budget.clone(),
                logs.clone(),
                quarantine.clone(),
                retired.clone(),
                queues.clone(),
                metrics.clone(),
            );
            Arc::new(move |shared: Arc<WorkerShared>, gen: u64| {
                let queued = queues
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&shared.name)
                    .cloned()
                    .unwrap_or_default();
                let (engine, budget, logs, quarantine, retired, metrics) = (
                    engine.clone(),
                    budget.clone(),
                    logs.clone(),
                    quarantine.clone(),
                    retired.clone(),
                    metrics.clone(),
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
                        if shared.background {
                            lower_thread_priority();
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
        let mut spawn = |name: String, background: bool| {
            let (tx, rx) = mpsc::channel();
            let queued = Arc::new(AtomicUsize::new(0));
            queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), queued.clone());
            let shared = Arc::new(WorkerShared::new(name, background, rx, tx.clone()));
            start_thread(shared.clone(), 0);
            shared_all.push(shared);
            Worker { tx, queued }
        };
        let workers = (0..n.max(1))
            .map(|i| spawn(format!("isola-worker-{i}"), false))
            .collect();
        let penalty = spawn("isola-penalty".to_string(), true);
        takeover::monitor(shared_all, start_thread, retired);
        Pool {
            workers,
            penalty,
            quarantine,
            max_queue,
            engine: engine.clone(),
            logs,
        }
    }

    fn worker(&self, id: &str) -> &Worker {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        &self.workers[(h.finish() % self.workers.len() as u64) as usize]
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
        let w = match self.quarantine.check(&dep.id) {
            Err(wait) => return Err(DispatchError::Suspended(wait)),
            Ok(true) => &self.penalty,
            Ok(false) => self.worker(&dep.id),
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
        std::thread::Builder::new()
            .name("isola-validate".into())
            .stack_size(8 << 20)
            .spawn(move || {
                let _ = reply.send(validate(&engine, &logs, &dep, smoke));
            })
            .map_err(|e| format!("cannot start validation: {e}"))?;
        rx.await
            .map_err(|_| "validation thread failed".to_string())?
    }

    /// Drops a tenant's isolate (after a delete).
    pub fn evict(&self, id: &str) {
        let _ = self.worker(id).tx.send(Job::Evict { id: id.to_string() });
        let _ = self.penalty.tx.send(Job::Evict { id: id.to_string() });
        self.quarantine.remove(id);
    }
}

struct Pending {
    request: HttpRequest,
    body: Option<Box<dyn BodySource>>,
    reply: oneshot::Sender<Reply>,
    permit: Permit,
    dep: Arc<Deployment>,
}

/// A streamed response body on its way to the client.
struct StreamOut {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    chunk: Option<Bytes>,
    wake: Instant,
    _permit: Permit,
}

/// Chunks of a streamed response body in flight between worker and client.
const STREAM_CHANNEL_CHUNKS: usize = 16;
/// How soon a full client channel is retried.
const STREAM_RETRY: Duration = Duration::from_millis(1);

struct Slot {
    dep: Arc<Deployment>,
    tenant: Tenant,
    queue: VecDeque<Pending>,
    current: Option<(Pending, Instant)>,
    streaming: Option<StreamOut>,
    last_used: Instant,
    /// Set until the first request of a new slot settles: whether its
    /// isolate was a pre-created one.
    fresh: Option<bool>,
}

impl Slot {
    /// When the invocation in flight, or the response body streaming, needs
    /// the thread next; `None` when the tenant is free.
    fn busy_wake(&self) -> Option<Instant> {
        match (&self.current, &self.streaming) {
            (Some(c), _) => Some(c.1),
            (None, Some(st)) => Some(st.wake),
            (None, None) => None,
        }
    }
}

struct WorkerLoop {
    engine: Engine,
    /// The worker's queue, shared with the thread that takes over from this one.
    shared: Arc<WorkerShared>,
    /// Which generation of the worker this thread is (see `takeover`).
    gen: u64,
    retired: Retired,
    queued: Arc<AtomicUsize>,
    budget: WorkerBudget,
    logs: Arc<Logs>,
    /// For terminations that happen outside a request (`ctx.waitUntil` work).
    metrics: Arc<Metrics>,
    quarantine: Arc<Quarantine>,
    prewarmed: IsolatePool,
    slots: HashMap<String, Slot>,
}

const IDLE_WAIT: Duration = Duration::from_millis(250);

impl WorkerLoop {
    fn run(mut self) {
        // A thread that takes over after a long turn serves at once; it
        // pre-creates isolates later, when idle.
        if self.gen == 0 {
            if let Err(e) = self.prewarmed.refill() {
                tracing::warn!("could not pre-create isolates: {e}");
            }
        }
        loop {
            let now = Instant::now();
            let next_wake = self
                .slots
                .values()
                .filter_map(|s| {
                    s.busy_wake().or_else(|| {
                        // Queued requests of a free tenant begin on the next turn.
                        if s.queue.is_empty() {
                            s.tenant.background_wake()
                        } else {
                            Some(now)
                        }
                    })
                })
                .min();
            let timeout = next_wake
                .map(|w| w.saturating_duration_since(now))
                .unwrap_or(IDLE_WAIT);
            if self.shared.generation() != self.gen {
                // A long turn of this thread made a new thread take over.
                self.retire();
                return;
            }
            let job = match self.shared.recv_timeout(timeout) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // A panic (a bug in isola) must not take the thread's requests
            // with it: they are answered, the worker's isolates are dropped
            // (`JsRuntime` exits its isolate before a panic unwinds past it),
            // and the loop goes on with fresh state.
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match job {
                    Some(job) => {
                        self.accept(job);
                        while let Some(job) = self.shared.try_recv() {
                            self.accept(job);
                        }
                    }
                    // Idle: top up the blank isolates used for first requests.
                    None if next_wake.is_none() => {
                        let _ = self.prewarmed.refill_one();
                    }
                    None => {}
                }
                self.step();
                self.evict_over_budget();
            }));
            if let Err(panic) = turn {
                self.recover_from_panic(panic);
            }
        }
    }

    /// This thread was replaced after a long turn: gives back the requests
    /// it accepted but did not begin, drives the invocations it started to
    /// their end (their isolates live on this thread), then exits.
    fn retire(&mut self) {
        for slot in self.slots.values_mut() {
            for p in slot.queue.drain(..) {
                self.shared.give_back(Job::Invoke {
                    dep: p.dep,
                    request: p.request,
                    body: p.body,
                    reply: p.reply,
                    permit: p.permit,
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3600);
        while Instant::now() < deadline {
            let busy = self.slots.values().filter_map(Slot::busy_wake).min();
            let Some(wake) = busy else { break };
            let now = Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
            if let Err(panic) = turn {
                self.recover_from_panic(panic);
            }
        }
        tracing::info!(
            worker = %self.shared.name,
            generation = self.gen,
            "a retired worker thread finished its long turn and exits"
        );
        self.retired.release();
    }

    /// After a panic in a turn: fails every request this worker holds with
    /// an internal error and drops its tenants' isolates.
    fn recover_from_panic(&mut self, panic: Box<dyn std::any::Any + Send>) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        tracing::error!(
            tenants = self.slots.len(),
            "a worker panicked (a bug in isola): {what}; its requests were failed and its isolates dropped"
        );
        for (_, slot) in self.slots.drain() {
            let held = slot.queue.len()
                + usize::from(slot.current.is_some())
                + usize::from(slot.streaming.is_some());
            self.queued.fetch_sub(held, Ordering::Relaxed);
            for p in slot.queue.into_iter().chain(slot.current.map(|c| c.0)) {
                let err =
                    Error::Internal(format!("the worker serving this request panicked: {what}"));
                let _ = p.reply.send(Reply::failed(err, false));
            }
        }
    }

    fn config(&self, dep: &Deployment) -> TenantConfig {
        tenant_config(dep, &self.logs)
    }

    fn accept(&mut self, job: Job) {
        match job {
            Job::Invoke {
                dep,
                request,
                body,
                reply,
                permit,
            } => {
                let id = dep.id.clone();
                let pending = Pending {
                    request,
                    body,
                    reply,
                    permit,
                    dep,
                };
                match self.slots.get_mut(&id) {
                    Some(slot) => slot.queue.push_back(pending),
                    None => self.cold_start(pending),
                }
            }
            Job::Evict { id } => {
                if let Some(slot) = self.slots.remove(&id) {
                    for p in slot.queue.into_iter().chain(slot.current.map(|c| c.0)) {
                        self.queued.fetch_sub(1, Ordering::Relaxed);
                        let err = Error::InvalidCode(format!("tenant {id} was deleted"));
                        let _ = p.reply.send(Reply::failed(err, false));
                    }
                }
            }
        }
    }

    /// Makes a slot for a tenant's first queued request. The isolate is
    /// created and the code loaded by that request's `begin`, in
    /// non-blocking steps (top-level code awaiting a timer does not hold up
    /// the worker's other tenants).
    fn cold_start(&mut self, pending: Pending) {
        let dep = pending.dep.clone();
        let config = self.config(&dep);
        let (tenant, prewarmed) = Tenant::deferred(
            &self.engine,
            config,
            (*dep.code).clone(),
            &mut self.prewarmed,
        );
        let mut queue = VecDeque::new();
        queue.push_back(pending);
        self.slots.insert(
            dep.id.clone(),
            Slot {
                dep,
                tenant,
                queue,
                current: None,
                streaming: None,
                last_used: Instant::now(),
                fresh: Some(prewarmed),
            },
        );
    }

    fn step(&mut self) {
        let now = Instant::now();
        let ids: Vec<String> = self.slots.keys().cloned().collect();
        let mut to_restart = Vec::new();
        for id in ids {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            // What one tenant does in a turn is timed for the takeover monitor.
            self.shared.turn_begins();
            // Resume a due invocation.
            if let Some((_, wake)) = &slot.current {
                if *wake <= now {
                    let progress = slot.tenant.resume();
                    Self::settle(&self.queued, &self.quarantine, slot, progress);
                }
            }
            // Drive ctx.waitUntil work of an idle tenant.
            if slot.current.is_none()
                && slot.streaming.is_none()
                && slot.tenant.background_wake().is_some_and(|w| w <= now)
            {
                if let Err(e) = slot.tenant.poll_background() {
                    kill_outside_reply(&self.metrics, &self.quarantine, &id, &e);
                }
            }
            // Begin the next queued request while the tenant is free: one per
            // turn, so a tenant's burst takes turns with the worker's other
            // tenants instead of holding the thread for the whole burst.
            if let Some(e) = Self::pump_stream(&self.queued, slot, now) {
                kill_outside_reply(&self.metrics, &self.quarantine, &id, &e);
            }
            if slot.current.is_none() && slot.streaming.is_none() {
                match slot.queue.pop_front() {
                    None => {}
                    Some(next) if next.dep.generation != slot.dep.generation => {
                        // Switch versions between invocations only.
                        slot.queue.push_front(next);
                        to_restart.push(id.clone());
                    }
                    Some(mut next) => {
                        slot.last_used = Instant::now();
                        let body = next.body.take();
                        let progress = slot
                            .tenant
                            .begin_with_body(Invocation::Fetch(next.request.clone()), body);
                        slot.current = Some((next, Instant::now()));
                        #[cfg(feature = "test-hooks")]
                        if slot
                            .current
                            .as_ref()
                            .is_some_and(|c| c.0.request.url.contains("__isola_test_panic"))
                        {
                            panic!("test hook: a worker panics mid-request");
                        }
                        Self::settle(&self.queued, &self.quarantine, slot, progress);
                    }
                }
            }
            if self.shared.generation() == self.gen {
                self.shared.turn_ends();
            }
        }
        for id in to_restart {
            if let Some(slot) = self.slots.remove(&id) {
                let mut queue = slot.queue.into_iter();
                if let Some(first) = queue.next() {
                    self.cold_start(first);
                    if let Some(new_slot) = self.slots.get_mut(&id) {
                        new_slot.queue.extend(queue);
                    }
                }
            }
        }
    }

    /// Moves a streamed response body from the isolate to the client.
    /// Returns the error that stopped the stream, if the tenant's code failed.
    fn pump_stream(queued: &AtomicUsize, slot: &mut Slot, now: Instant) -> Option<Error> {
        let mut failure = None;
        let st = slot.streaming.as_mut()?;
        if st.wake > now {
            return None;
        }
        let mut finished = false;
        for _ in 0..STREAM_CHANNEL_CHUNKS {
            if let Some(chunk) = st.chunk.take() {
                match st.tx.try_send(Ok(chunk)) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(Ok(c))) => {
                        st.chunk = Some(c);
                        st.wake = now + STREAM_RETRY;
                        return None;
                    }
                    Err(_) => {
                        // The client went away.
                        slot.tenant.cancel_body();
                        finished = true;
                        break;
                    }
                }
            }
            match slot.tenant.poll_body() {
                BodyProgress::Chunk(c) => st.chunk = Some(Bytes::from(c)),
                BodyProgress::Wait(until) => {
                    st.wake = until;
                    return None;
                }
                BodyProgress::End => {
                    finished = true;
                    break;
                }
                BodyProgress::Failed(e) => {
                    tracing::warn!(tenant = %slot.dep.id, "response stream failed: {e}");
                    let _ = st.tx.try_send(Err(std::io::Error::other(e.to_string())));
                    failure = Some(e);
                    finished = true;
                    break;
                }
            }
        }
        if finished {
            if let Some(st) = slot.streaming.take() {
                if let Some(chunk) = st.chunk {
                    let _ = st.tx.try_send(Ok(chunk));
                }
            }
            queued.fetch_sub(1, Ordering::Relaxed);
        } else {
            st.wake = now;
        }
        failure
    }

    fn settle(queued: &AtomicUsize, quarantine: &Quarantine, slot: &mut Slot, progress: Progress) {
        match progress {
            Progress::Wait(until) => {
                if let Some(cur) = slot.current.as_mut() {
                    cur.1 = until;
                }
            }
            Progress::Done(result) => {
                let Some((pending, _)) = slot.current.take() else {
                    return;
                };
                queued.fetch_sub(1, Ordering::Relaxed);
                let cold = slot.fresh.is_some() || result.as_ref().is_ok_and(|i| i.cold);
                let prewarmed = slot.fresh.take().unwrap_or(false);
                let cache: Vec<CacheEvent> = if cold {
                    slot.tenant
                        .load_info()
                        .cache
                        .iter()
                        .map(|(_, e)| *e)
                        .collect()
                } else {
                    Vec::new()
                };
                let heap_bytes = slot.tenant.heap_used_bytes();
                match &result {
                    Err(Error::Limit(l)) if l.kind != isola_core::LimitKind::Concurrency => {
                        quarantine.record_kill(&slot.dep.id)
                    }
                    Err(Error::Forbidden { .. }) => quarantine.record_kill(&slot.dep.id),
                    _ => {}
                }
                let streamed = matches!(
                    &result,
                    Ok(Invoked { output: Output::Response(r), .. }) if r.streamed
                );
                let body = if streamed {
                    // The head goes now; the body follows chunk by chunk and the
                    // request keeps its concurrency slot until it ends.
                    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHANNEL_CHUNKS);
                    slot.streaming = Some(StreamOut {
                        tx,
                        chunk: None,
                        wake: Instant::now(),
                        _permit: pending.permit,
                    });
                    queued.fetch_add(1, Ordering::Relaxed);
                    Some(rx)
                } else {
                    None
                };
                let _ = pending.reply.send(Reply {
                    result,
                    cold,
                    prewarmed,
                    cache,
                    heap_bytes,
                    body,
                });
            }
        }
    }

    fn evict_over_budget(&mut self) {
        loop {
            let warm = self.slots.len();
            let heap: u64 = self
                .slots
                .values()
                .map(|s| s.tenant.heap_used_bytes())
                .sum();
            if warm <= self.budget.max_warm && heap <= self.budget.max_heap {
                return;
            }
            let victim = self
                .slots
                .iter()
                .filter(|(_, s)| s.current.is_none() && s.streaming.is_none() && s.queue.is_empty())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone());
            match victim {
                Some(id) => {
                    tracing::debug!(tenant = %id, "evicting idle isolate (budget)");
                    self.slots.remove(&id);
                }
                None => return,
            }
        }
    }
}

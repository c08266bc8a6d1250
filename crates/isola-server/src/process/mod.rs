//! Process isolation (`isola serve --isolation process`): tenants run in
//! sandboxed worker processes under this supervisor.
//!
//! The supervisor keeps the HTTP front, the admin API, the store and the
//! metrics; worker processes (this executable in worker mode, see
//! [`worker`]) host the isolates, each with a thread [`crate::pool::Pool`]
//! of its own, behind a [seccomp sandbox](sandbox). They talk over a Unix
//! socket pair with the framed, versioned protocol of [`wire`]; one
//! [`link::Link`] per worker process.
//!
//! Placement: `workers` shared worker processes with tenants hashed onto
//! them; a probation worker process for tenant versions that have not yet
//! answered a request within their limits (new, redeployed); a worker
//! process of its own, at the lowest priority, for each tenant stopped by a
//! limit; and a worker process of its own for each tenant marked
//! `dedicated` in its settings, and for each tenant that was in flight when
//! a shared worker died (*dynamic process isolation*: after one crash its
//! neighbours no longer share a process with it). A tenant that crashes its
//! own worker [`ProcessConfig::quarantine_after_crashes`] times is
//! quarantined: refused with 503 naming the reason, visible in
//! `GET /v1/workers` and in `/metrics`, until the quarantine ends or a new
//! version is deployed.
//!
//! A dead worker is noticed at once (its socket closes), every request it
//! had is answered with 502 naming the cause, and it is restarted with
//! backoff (none for the first crash, then 100 ms doubling up to 5 s while
//! it keeps crashing within a minute of starting).

pub mod fetch_proxy;
pub mod link;
mod placement;
pub mod sandbox;
pub mod wire;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use isola_core::{BodySource, Engine, HttpRequest, Permit};
use tokio::sync::watch;

use crate::config::{ProcessConfig, ServerConfig};
use crate::dispatch::{BoxFuture, DispatchError, Dispatcher};
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::pool::trust::Trust;
use crate::pool::{Deployment, Reply};
use link::{Exit, Link, LinkEnv};
use worker::WorkerArgs;

pub use worker::run_if_worker;

/// Longest a request waits for its worker to (re)start.
const START_WAIT: Duration = Duration::from_secs(10);
/// Longest a deploy's validation may take.
const VALIDATE_WAIT: Duration = Duration::from_secs(60);
/// A worker that lived this long before dying starts again without backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One place a worker process lives: it is restarted there after a crash.
struct Slot {
    name: String,
    /// Code cache scope (entries of one slot are not read by another).
    scope: String,
    /// A dedicated slot's tenant.
    owner: Option<String>,
    link: watch::Sender<Option<Arc<Link>>>,
    /// Consecutive quick crashes (for backoff).
    quick_crashes: Mutex<u32>,
    restarts: AtomicU64,
    crashes: AtomicU64,
    last_cause: Mutex<Option<String>>,
    /// Set when the slot is retired (its tenant deleted): no restart.
    retired: std::sync::atomic::AtomicBool,
}

/// What the supervisor knows of a tenant that crashed a worker.
#[derive(Debug, Clone, Default)]
struct Record {
    /// Crashes of a worker it was a suspect of.
    crashes: u32,
    /// Crashes of its own (dedicated) worker.
    own_crashes: u32,
    /// Runs in a worker of its own from now on.
    isolated: bool,
    /// Isolated for breaking a limit (not as a suspect of a crash): its
    /// worker process runs at the lowest priority.
    broke_limit: bool,
    /// Refused until then, for this reason, for this version.
    quarantined: Option<(Instant, String, u64)>,
}

struct Inner {
    env: LinkEnv,
    base: WorkerArgs,
    shared: Vec<Arc<Slot>>,
    /// Where tenant versions run until one request ended within their limits.
    probation: Arc<Slot>,
    /// Which tenant deployments run on their shared worker (told by the
    /// workers, which see a request's body and `ctx.waitUntil` work end).
    trust: Arc<Trust>,
    dedicated: Mutex<HashMap<String, Arc<Slot>>>,
    records: Mutex<HashMap<String, Record>>,
    runtime: tokio::runtime::Handle,
    crashes_total: AtomicU64,
}

/// Worker processes hosting tenants (the process implementation of [`Dispatcher`]).
pub struct ProcessPool {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProcessPool {
    /// Starts the shared worker processes (in the background: requests wait
    /// for them); their I/O tasks run on `runtime`.
    pub fn start(
        engine: &Engine,
        config: &ServerConfig,
        logs: Arc<Logs>,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
        trust: crate::pool::trust::TrustSink,
        fetch: Option<crate::outbound::Client>,
    ) -> Result<ProcessPool, String> {
        let trust = Arc::new(Trust::with_sink(Some(trust)));
        let pc: ProcessConfig = config.process.clone();
        let exe = match &pc.worker_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))?,
        };
        let n = config.workers.max(1);
        let base = WorkerArgs {
            name: String::new(),
            data_dir: PathBuf::from(&config.data_dir),
            threads: 1,
            prewarm: config.prewarm_per_worker,
            max_warm: (config.max_warm_isolates / n).max(1),
            max_heap: config.memory_budget_bytes / n as u64,
            max_queue: config.max_queue_per_worker,
            sandbox: pc.sandbox,
            low_priority: false,
        };
        let inner = Arc::new(Inner {
            env: LinkEnv {
                config: pc,
                exe,
                cache: engine.code_cache().cloned(),
                logs,
                metrics,
                trust: trust.clone(),
                fetch,
            },
            base,
            shared: (0..n)
                .map(|i| Slot::new(format!("isola-worker-{i}"), None))
                .collect(),
            probation: Slot::new("isola-probation".into(), None),
            trust,
            dedicated: Mutex::default(),
            records: Mutex::default(),
            runtime,
            crashes_total: AtomicU64::new(0),
        });
        for slot in inner.shared.iter().chain([&inner.probation]) {
            Inner::spawn(&inner, slot.clone(), Duration::ZERO);
        }
        Ok(ProcessPool { inner })
    }

    /// The process id of the worker that serves `tenant` now, if it runs.
    pub fn worker_pid(&self, tenant: &str) -> Option<u32> {
        let slot = self.inner.slot_for(tenant, false, None)?;
        let link = slot.link.borrow().clone();
        link.filter(|l| !l.is_dead()).map(|l| l.pid)
    }

    /// Process ids of the running shared workers.
    pub fn shared_pids(&self) -> Vec<u32> {
        self.inner
            .shared
            .iter()
            .filter_map(|s| s.link.borrow().as_ref().map(|l| l.pid))
            .collect()
    }
}

impl Slot {
    fn new(name: String, owner: Option<String>) -> Arc<Slot> {
        let scope = match &owner {
            Some(t) => format!("tenant:{t}"),
            None => format!("shared:{name}"),
        };
        Arc::new(Slot {
            name,
            scope,
            owner,
            link: watch::channel(None).0,
            quick_crashes: Mutex::new(0),
            restarts: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            last_cause: Mutex::new(None),
            retired: Default::default(),
        })
    }
}

impl Inner {
    /// Starts `slot`'s worker after `delay`, retrying with backoff.
    fn spawn(this: &Arc<Inner>, slot: Arc<Slot>, delay: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(this);
        this.runtime.spawn(async move {
            let mut delay = delay;
            loop {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let Some(inner) = weak.upgrade() else { return };
                if slot.retired.load(Ordering::SeqCst) {
                    return;
                }
                let mut args = inner.base.clone();
                args.name = slot.name.clone();
                if let Some(owner) = &slot.owner {
                    args.max_warm = 4;
                    args.prewarm = 0;
                    // Isolated for breaking a limit (not `dedicated` by its settings).
                    args.low_priority =
                        lock(&inner.records).get(owner).is_some_and(|r| r.broke_limit);
                }
                let on_exit = {
                    let (weak, slot) = (weak.clone(), slot.clone());
                    Box::new(move |exit: Exit| {
                        if let Some(inner) = weak.upgrade() {
                            inner.on_exit(&slot, exit);
                        }
                    })
                };
                // Each crash starts a new code cache scope: entries a
                // compromised worker wrote are never read by its successor.
                let scope = format!("{}:{}", slot.scope, slot.crashes.load(Ordering::SeqCst));
                match Link::start(&inner.env, args, scope, on_exit).await {
                    Ok(link) if slot.retired.load(Ordering::SeqCst) => {
                        link.kill("its tenant was deleted".into(), Vec::new());
                        return;
                    }
                    Ok(link) => {
                        if slot.owner.is_none() {
                            // A stuck isolate in a shared worker: its tenant
                            // moves to a process of its own, a replacement
                            // worker takes new requests, and the old one is
                            // killed once its neighbours' requests are done.
                            let (weak, slot2) = (weak.clone(), slot.clone());
                            link.set_on_stuck(Arc::new(move |link: &Arc<Link>, tenant: &str, ms: u64| {
                                let Some(inner) = weak.upgrade() else { return };
                                if link.drain_then_kill(tenant, Link::stuck_reason(tenant, ms)) {
                                    inner.trust.distrust(tenant);
                                    inner.isolate(tenant);
                                    Inner::spawn(&inner, slot2.clone(), Duration::ZERO);
                                }
                            }));
                        }
                        tracing::info!(worker = %slot.name, pid = link.pid, sandboxed = link.sandboxed, "worker process started");
                        slot.link.send_replace(Some(link));
                        return;
                    }
                    Err(e) => {
                        tracing::error!(worker = %slot.name, "cannot start a worker process: {e}");
                        *lock(&slot.last_cause) = Some(e);
                        delay = (delay * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                    }
                }
            }
        });
    }

    fn on_exit(self: &Arc<Self>, slot: &Arc<Slot>, exit: Exit) {
        tracing::warn!(worker = %slot.name, cause = %exit.cause, suspects = ?exit.suspects, "worker process ended");
        // A drained worker was replaced already: its successor stays.
        let current = slot
            .link
            .borrow()
            .as_ref()
            .is_some_and(|l| l.pid == exit.pid);
        let lived = slot
            .link
            .borrow()
            .as_ref()
            .map(|l| l.started.elapsed())
            .unwrap_or_default();
        if current {
            slot.link.send_replace(None);
        }
        slot.crashes.fetch_add(1, Ordering::Relaxed);
        self.crashes_total.fetch_add(1, Ordering::Relaxed);
        *lock(&slot.last_cause) = Some(exit.cause.clone());
        {
            let mut records = lock(&self.records);
            let dedicated = records.values().filter(|r| r.isolated).count();
            let mut new_isolated = 0;
            // The probation worker hosts new code of many tenants: a crash
            // there moves a suspect out only when it was alone in flight or
            // was a suspect before, so bystanders stay on probation.
            let probation = Arc::ptr_eq(slot, &self.probation);
            let alone = exit.suspects.len() == 1;
            for t in &exit.suspects {
                let r = records.entry(t.clone()).or_default();
                r.crashes += 1;
                if slot.owner.as_deref() == Some(t.as_str()) {
                    r.own_crashes += 1;
                    if r.own_crashes >= self.env.config.quarantine_after_crashes {
                        let reason = format!(
                            "it crashed its own worker process {} times (last: {})",
                            r.own_crashes, exit.cause
                        );
                        r.quarantined =
                            Some((Instant::now() + self.env.config.quarantine_for, reason, 0));
                    }
                } else if !r.isolated && (!probation || alone || r.crashes >= 2) {
                    if dedicated + new_isolated < self.env.config.max_dedicated {
                        r.isolated = true;
                        new_isolated += 1;
                    } else {
                        r.quarantined = Some((
                            Instant::now() + self.env.config.quarantine_for,
                            format!(
                                "it crashed a shared worker process ({}) and no worker of its own is free",
                                exit.cause
                            ),
                            0,
                        ));
                    }
                }
            }
        }
        if slot.retired.load(Ordering::SeqCst) || !current {
            return;
        }
        let delay = {
            let mut q = lock(&slot.quick_crashes);
            if lived >= STABLE_AFTER {
                *q = 0;
            }
            *q += 1;
            match *q {
                1 => Duration::ZERO,
                k => Duration::from_millis(100 << (k - 2).min(6)).min(Duration::from_secs(5)),
            }
        };
        slot.restarts.fetch_add(1, Ordering::Relaxed);
        Inner::spawn(self, slot.clone(), delay);
    }

    async fn link_of(slot: &Slot) -> Result<Arc<Link>, DispatchError> {
        let mut rx = slot.link.subscribe();
        let wait = tokio::time::timeout(START_WAIT, async {
            loop {
                if let Some(l) = rx.borrow_and_update().clone() {
                    if !l.is_dead() && !l.is_draining() {
                        return Some(l);
                    }
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match wait {
            Ok(Some(l)) => Ok(l),
            _ => Err(DispatchError::WorkerCrashed {
                cause: format!(
                    "worker {} is not running ({})",
                    slot.name,
                    lock(&slot.last_cause)
                        .clone()
                        .unwrap_or_else(|| "still starting".into())
                ),
            }),
        }
    }
}

impl Dispatcher for ProcessPool {
    fn invoke(
        &self,
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        permit: Permit,
    ) -> BoxFuture<'_, Result<Reply, DispatchError>> {
        Box::pin(async move {
            self.inner.check_quarantine(&dep)?;
            let slot = if dep.settings.dedicated {
                self.inner.dedicated_slot(&dep.id)
            } else {
                self.inner
                    .slot_for(&dep.id, true, Some(&dep))
                    .ok_or(DispatchError::Closed)?
            };
            let link = Inner::link_of(&slot).await?;
            let id = dep.id.clone();
            let r = link.invoke(dep, request, body, permit).await;
            // Dynamic process isolation: a tenant stopped by a limit in a
            // shared worker runs in a process of its own from now on, so
            // whatever it tries next (a builtin that ignores termination, a
            // crash) costs its neighbours nothing.
            if let Ok(Reply {
                result: Err(isola_core::Error::Limit(l)),
                ..
            }) = &r
            {
                if l.kind != isola_core::LimitKind::Concurrency {
                    self.inner.trust.distrust(&id);
                    if slot.owner.is_none() && self.inner.isolate(&id) {
                        link.evict(&id);
                    }
                }
            }
            r
        })
    }

    fn validate(
        &self,
        dep: Arc<Deployment>,
        smoke: Option<HttpRequest>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // Candidate code runs in a scratch worker process of its own:
            // never in the supervisor, never next to serving tenants.
            let (tx, rx) = tokio::sync::oneshot::channel::<Exit>();
            let mut args = self.inner.base.clone();
            args.name = "isola-validate".into();
            args.prewarm = 0;
            args.max_warm = 1;
            let on_exit = Box::new(move |e: Exit| {
                let _ = tx.send(e);
            });
            let link =
                Link::start(&self.inner.env, args, format!("tenant:{}", dep.id), on_exit).await?;
            let r = tokio::time::timeout(VALIDATE_WAIT, link.validate(&dep, smoke)).await;
            link.kill("validation done".into(), Vec::new());
            let _ = rx.await;
            r.unwrap_or_else(|_| {
                Err(format!(
                    "validation took longer than {} s",
                    VALIDATE_WAIT.as_secs()
                ))
            })
        })
    }

    fn evict(&self, id: &str) {
        if let Some(slot) = lock(&self.inner.dedicated).remove(id) {
            slot.retired.store(true, Ordering::SeqCst);
            if let Some(l) = slot.link.borrow().clone() {
                l.kill(format!("tenant \"{id}\" was deleted"), Vec::new());
            }
        }
        for slot in self.inner.shared.iter().chain([&self.inner.probation]) {
            if let Some(l) = slot.link.borrow().clone() {
                l.evict(id);
            }
        }
        lock(&self.inner.records).remove(id);
        self.inner.trust.forget(id);
    }

    fn requests(&self) -> usize {
        let dedicated: Vec<Arc<Slot>> = lock(&self.inner.dedicated).values().cloned().collect();
        self.inner
            .shared
            .iter()
            .chain(dedicated.iter())
            .chain([&self.inner.probation])
            .filter_map(|s| s.link.borrow().as_ref().map(|l| l.requests()))
            .sum()
    }

    fn is_quarantined(&self, id: &str) -> bool {
        lock(&self.inner.records)
            .get(id)
            .is_some_and(|r| r.isolated || r.quarantined.is_some())
    }

    fn describe(&self) -> serde_json::Value {
        let dedicated: Vec<Arc<Slot>> = lock(&self.inner.dedicated).values().cloned().collect();
        let workers: Vec<serde_json::Value> = self
            .inner
            .shared
            .iter()
            .chain(dedicated.iter())
            .chain([&self.inner.probation])
            .map(|s| {
                let link = s.link.borrow().clone();
                let role = match &s.owner {
                    Some(_) => "dedicated",
                    None if Arc::ptr_eq(s, &self.inner.probation) => "probation",
                    None => "shared",
                };
                serde_json::json!({
                    "name": s.name,
                    "role": role,
                    "dedicated_to": s.owner,
                    "pid": link.as_ref().map(|l| l.pid),
                    "running": link.as_ref().is_some_and(|l| !l.is_dead()),
                    "sandboxed": link.as_ref().is_some_and(|l| l.sandboxed),
                    "tenants": link.as_ref().map(|l| l.tenants()).unwrap_or_default(),
                    "sandbox_violations": link.as_ref().map(|l| l.violations().0).unwrap_or(0),
                    "last_sandbox_violation": link.as_ref().and_then(|l| l.violations().1),
                    "crashes": s.crashes.load(Ordering::Relaxed),
                    "restarts": s.restarts.load(Ordering::Relaxed),
                    "last_crash": *lock(&s.last_cause),
                })
            })
            .collect();
        let now = Instant::now();
        let quarantined: Vec<serde_json::Value> = lock(&self.inner.records)
            .iter()
            .filter_map(|(t, r)| {
                let (until, reason, _) = r.quarantined.as_ref()?;
                (*until > now).then(|| {
                    serde_json::json!({
                        "tenant": t,
                        "reason": reason,
                        "retry_after_s": until.saturating_duration_since(now).as_secs(),
                    })
                })
            })
            .collect();
        serde_json::json!({
            "isolation": "process",
            "workers": workers,
            "quarantined": quarantined,
            "crashes_total": self.inner.crashes_total.load(Ordering::Relaxed),
        })
    }
}

//! A worker thread's event loop over its tenants: it begins queued
//! invocations (one per tenant per turn), resumes those whose timers are
//! due, drives `ctx.waitUntil` work and streamed bodies, and sleeps until the
//! next wake-up or job. See [`super::takeover`] for what happens when one
//! turn runs long.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use isola_core::{
    BodySource, CacheEvent, Engine, Error, HttpRequest, Invocation, Invoked, IsolatePool, Output,
    Permit, Progress, Tenant, TenantConfig,
};
use tokio::sync::oneshot;

use super::quarantine::{kill_outside_reply, Quarantine};
use super::stream::{pump_stream, StreamOut, STREAM_CHANNEL_CHUNKS};
use super::takeover::{Retired, WorkerKind, WorkerShared};
use super::validate::tenant_config;
use super::{Deployment, Job, Reply, WorkerBudget};
use crate::logs::Logs;
use crate::metrics::Metrics;

pub(crate) struct Pending {
    request: HttpRequest,
    body: Option<Box<dyn BodySource>>,
    reply: oneshot::Sender<Reply>,
    permit: Permit,
    dep: Arc<Deployment>,
}

impl Pending {
    fn into_job(self) -> Job {
        Job::Invoke {
            dep: self.dep,
            request: self.request,
            body: self.body,
            reply: self.reply,
            permit: self.permit,
        }
    }
}

/// Requests a worker has accepted but not begun, per tenant (only tenants
/// with some). Shared by the worker's threads: a thread that takes over
/// after a long turn serves them even while the old thread is stuck in it.
#[derive(Default)]
pub(crate) struct Waiting(Mutex<HashMap<String, VecDeque<Pending>>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Pending>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, p: Pending, front: bool) {
        let mut m = self.lock();
        let q = m.entry(p.dep.id.clone()).or_default();
        if front {
            q.push_front(p);
        } else {
            q.push_back(p);
        }
    }

    fn pop(&self, id: &str) -> Option<Pending> {
        let mut m = self.lock();
        let q = m.get_mut(id)?;
        let p = q.pop_front();
        if q.is_empty() {
            m.remove(id);
        }
        p
    }

    fn take(&self, id: &str) -> VecDeque<Pending> {
        self.lock().remove(id).unwrap_or_default()
    }

    fn has(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Tenants with waiting requests, and the deployment of each one's first.
    fn heads(&self) -> Vec<(String, Arc<Deployment>)> {
        self.lock()
            .iter()
            .filter_map(|(id, q)| q.front().map(|p| (id.clone(), p.dep.clone())))
            .collect()
    }
}

pub(super) struct Slot {
    pub(super) dep: Arc<Deployment>,
    pub(super) tenant: Tenant,
    current: Option<(Pending, Instant)>,
    pub(super) streaming: Option<StreamOut>,
    last_used: Instant,
    /// Set until the first request of a new slot settles: whether its
    /// isolate was a pre-created one.
    fresh: Option<bool>,
    /// An invocation answered within its limits; trust is earned once its
    /// streamed body and `ctx.waitUntil` work end without a kill too.
    earned: bool,
}

impl Slot {
    /// Whether this tenant has work for the thread at `now`.
    fn due(&self, now: Instant, waiting: bool) -> bool {
        let free = self.current.is_none() && self.streaming.is_none();
        self.busy_wake().is_some_and(|w| w <= now)
            || (free && waiting)
            || (free && self.tenant.background_wake().is_some_and(|w| w <= now))
    }

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

pub(super) struct WorkerLoop {
    pub(super) engine: Engine,
    /// The worker's queue, shared with the thread that takes over from this one.
    pub(super) shared: Arc<WorkerShared>,
    /// Which generation of the worker this thread is (see `takeover`).
    pub(super) gen: u64,
    pub(super) retired: Retired,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) budget: WorkerBudget,
    pub(super) logs: Arc<Logs>,
    /// For terminations that happen outside a request (`ctx.waitUntil` work).
    pub(super) metrics: Arc<Metrics>,
    pub(super) quarantine: Arc<Quarantine>,
    /// Where requests of a tenant quarantined while they waited here go.
    pub(super) penalty: Arc<OnceLock<Penalized>>,
    pub(super) prewarmed: IsolatePool,
    pub(super) slots: HashMap<String, Slot>,
}

/// The penalty worker's queue, as the shared workers hand requests to it.
pub(super) struct Penalized {
    pub(super) tx: Sender<Job>,
    pub(super) queued: Arc<AtomicUsize>,
}

const IDLE_WAIT: Duration = Duration::from_millis(250);

impl WorkerLoop {
    pub(super) fn run(mut self) {
        // A thread that takes over after a long turn serves at once; it
        // pre-creates isolates later, when idle.
        if self.gen == 0 {
            if let Err(e) = self.prewarmed.refill() {
                tracing::warn!("could not pre-create isolates: {e}");
            }
        }
        loop {
            let now = Instant::now();
            // Waiting requests begin on the next turn.
            let waiting = self.shared.waiting.any().then_some(now);
            let next_wake = self
                .slots
                .values()
                .filter_map(|s| s.busy_wake().or_else(|| s.tenant.background_wake()))
                .chain(waiting)
                .min();
            let timeout = next_wake
                .map(|w| w.saturating_duration_since(now))
                .unwrap_or(IDLE_WAIT);
            if !self.serving() {
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
                if self.shared.kind == WorkerKind::Probation {
                    self.drop_graduated();
                }
                self.evict_over_budget();
            }));
            if let Err(panic) = turn {
                self.recover_from_panic(panic);
            }
        }
    }

    /// Whether this thread serves the worker's queue (not retired by a takeover).
    fn serving(&self) -> bool {
        self.shared.generation() == self.gen
    }

    /// This thread was replaced after a long turn: drives the invocations it
    /// started to their end (their isolates live on this thread), then exits.
    /// The requests it had not begun were never its own: they wait in the
    /// worker's shared queue, which the new thread serves.
    fn retire(&mut self) {
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
        self.retired.release(&self.shared.name, self.gen);
    }

    /// After a panic in a turn: fails the requests this thread had begun with
    /// an internal error and drops its tenants' isolates. Requests not begun
    /// yet wait in the shared queue and are served by the fresh state.
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
            let held = usize::from(slot.current.is_some()) + usize::from(slot.streaming.is_some());
            self.queued.fetch_sub(held, Ordering::Relaxed);
            if let Some((p, _)) = slot.current {
                let err =
                    Error::Internal(format!("the worker serving this request panicked: {what}"));
                let _ = p.reply.send(Reply::failed(err, false));
            }
        }
    }

    fn config(&self, dep: &Deployment) -> TenantConfig {
        tenant_config(dep, &self.logs, self.budget.outbound.as_ref())
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
                let pending = Pending {
                    request,
                    body,
                    reply,
                    permit,
                    dep,
                };
                self.shared.waiting.push(pending, false);
            }
            Job::Evict { id } => {
                let slot = self.slots.remove(&id);
                let current = slot.and_then(|s| s.current).map(|c| c.0);
                for p in self.shared.waiting.take(&id).into_iter().chain(current) {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    let err = Error::InvalidCode(format!("tenant {id} was deleted"));
                    let _ = p.reply.send(Reply::failed(err, false));
                }
            }
        }
    }

    /// Makes a slot for a tenant with waiting requests. The isolate is
    /// created and the code loaded by the first request's `begin`, in
    /// non-blocking steps (top-level code awaiting a timer does not hold up
    /// the worker's other tenants).
    fn cold_start(&mut self, dep: Arc<Deployment>) {
        let config = self.config(&dep);
        let (tenant, prewarmed) = Tenant::deferred(
            &self.engine,
            config,
            (*dep.code).clone(),
            &mut self.prewarmed,
        );
        self.slots.insert(
            dep.id.clone(),
            Slot {
                dep,
                tenant,
                current: None,
                streaming: None,
                last_used: Instant::now(),
                fresh: Some(prewarmed),
                earned: false,
            },
        );
    }

    /// A tenant quarantined while more of its requests waited on a shared
    /// worker runs them on the penalty worker, not among this worker's tenants.
    fn forward_to_penalty(&self, id: &str) -> bool {
        if self.shared.kind == WorkerKind::Penalty || !self.quarantine.contains(id) {
            return false;
        }
        let Some(penalty) = self.penalty.get() else {
            return false;
        };
        for p in self.shared.waiting.take(id) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            penalty.queued.fetch_add(1, Ordering::Relaxed);
            if let Err(mpsc::SendError(Job::Invoke { reply, .. })) = penalty.tx.send(p.into_job()) {
                penalty.queued.fetch_sub(1, Ordering::Relaxed);
                let err = Error::Internal("the penalty worker is gone".into());
                let _ = reply.send(Reply::failed(err, false));
            }
        }
        true
    }

    fn step(&mut self) {
        let now = Instant::now();
        let serving = self.serving();
        // Tenants with waiting requests (a retired thread begins no more).
        let mut waiting = HashSet::new();
        if serving {
            for (id, dep) in self.shared.waiting.heads() {
                if self.forward_to_penalty(&id) {
                    continue;
                }
                if !self.slots.contains_key(&id) {
                    self.cold_start(dep);
                }
                waiting.insert(id);
            }
        }
        let ids: Vec<String> = self.slots.keys().cloned().collect();
        let mut to_restart = Vec::new();
        for id in ids {
            let Some(slot) = self.slots.get_mut(&id) else {
                continue;
            };
            if !slot.due(now, waiting.contains(&id)) {
                continue;
            }
            // What one tenant does in a turn is timed for the takeover monitor.
            self.shared.turn_begins(&id);
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
                    slot.earned = false;
                    kill_outside_reply(&self.metrics, &self.quarantine, &id, &e);
                }
            }
            if let Some(e) = pump_stream(&self.queued, slot, now) {
                slot.earned = false;
                kill_outside_reply(&self.metrics, &self.quarantine, &id, &e);
            }
            Self::maybe_trust(&self.quarantine, slot);
            // Begin the next waiting request while the tenant is free: one per
            // turn, so a tenant's burst takes turns with the worker's other
            // tenants instead of holding the thread for the whole burst.
            let free = slot.current.is_none() && slot.streaming.is_none();
            if free && waiting.contains(&id) && self.shared.generation() == self.gen {
                match self.shared.waiting.pop(&id) {
                    None => {}
                    Some(next) if next.dep.generation != slot.dep.generation => {
                        // Switch versions between invocations only.
                        let dep = next.dep.clone();
                        self.shared.waiting.push(next, true);
                        to_restart.push(dep);
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
            } else {
                // Retired during this turn: the long slice is over.
                self.retired.turn_done(&self.shared.name, self.gen);
            }
        }
        for dep in to_restart {
            self.slots.remove(&dep.id);
            self.cold_start(dep);
        }
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
                    // It ran to its end within its limits (an exception
                    // thrown by its own code included).
                    Ok(_) | Err(Error::Js(_)) => slot.earned = true,
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
                // Before the reply goes: the tenant's next request is
                // placed by then.
                Self::maybe_trust(quarantine, slot);
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

    /// Records the trust a slot earned once all the work of the invocation
    /// that earned it is over, unless the tenant is quarantined (a request
    /// that began before a kill, or one served on the penalty worker, earns
    /// nothing).
    fn maybe_trust(quarantine: &Quarantine, slot: &mut Slot) {
        let done = slot.current.is_none()
            && slot.streaming.is_none()
            && slot.tenant.background_wake().is_none();
        if slot.earned && done {
            slot.earned = false;
            if !quarantine.contains(&slot.dep.id) {
                quarantine.trust.record_success(&slot.dep);
            }
        }
    }

    /// On the probation worker: drops the isolates of idle tenants whose
    /// next requests run on their shared worker.
    fn drop_graduated(&mut self) {
        let quarantine = &self.quarantine;
        let waiting = &self.shared.waiting;
        self.slots.retain(|id, s| {
            let busy = s.current.is_some()
                || s.streaming.is_some()
                || s.tenant.background_wake().is_some();
            // Kept while it has work here, or still runs here.
            busy || waiting.has(id) || quarantine.contains(id) || !quarantine.trust.trusted(&s.dep)
        });
    }

    fn evict_over_budget(&mut self) {
        let mut waiting: Option<HashSet<String>> = None;
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
            let waiting = waiting.get_or_insert_with(|| {
                let heads = self.shared.waiting.heads();
                heads.into_iter().map(|(id, _)| id).collect()
            });
            let victim = self
                .slots
                .iter()
                .filter(|(id, s)| {
                    s.current.is_none() && s.streaming.is_none() && !waiting.contains(id.as_str())
                })
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

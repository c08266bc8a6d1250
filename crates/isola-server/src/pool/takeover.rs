//! Worker takeover: no tenant holds its worker's other tenants hostage.
//!
//! A worker thread runs its tenants' slices one after another. A slice that
//! runs long (a tenant with a large CPU budget, or an isolate stuck in a
//! builtin that does not honour termination, such as a huge `fill`) would
//! stall every other tenant of that worker. A monitor thread watches each
//! worker's current turn; when one has run longer than [`TURN_LIMIT`], the
//! worker's queue is handed to a fresh thread, which serves the other
//! tenants at once (creating their isolates again, from the code cache).
//! Requests a worker accepted but has not begun wait in a queue its threads
//! share, so the new thread serves them at once. The old thread finishes the
//! long slice, drives the invocations it had started to their end, and
//! exits. At most [`MAX_RETIRED`] such threads live at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::worker::Waiting;
use super::Job;

/// How long one tenant may hold its worker before the worker's queue moves
/// to a new thread (three times the default CPU budget of one invocation),
/// counted in the CPU time of the turn: on a busy machine a 50 ms slice may
/// take longer than this in wall time, and a takeover would cost the
/// worker's other tenants their warm isolates for nothing.
pub const TURN_LIMIT: Duration = Duration::from_millis(150);
/// A turn that holds its worker this long in wall time is taken over
/// whatever CPU it used (a thread that makes no progress at all).
pub const TURN_WALL_LIMIT: Duration = Duration::from_secs(1);
/// How often the monitor looks.
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// Most retired threads alive at once (each still finishing a long slice).
pub const MAX_RETIRED: usize = 8;

/// What a worker is for (see [`super::quarantine::Route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkerKind {
    /// Serves the tenants hashed to it that have proven themselves.
    Shared,
    /// Serves tenant versions until their first request answered within limits.
    Probation,
    /// Serves tenants that broke a limit recently, at the lowest priority.
    Penalty,
}

impl WorkerKind {
    /// As `GET /v1/workers` shows it.
    pub fn name(self) -> &'static str {
        match self {
            WorkerKind::Shared => "shared",
            WorkerKind::Probation => "probation",
            WorkerKind::Penalty => "penalty",
        }
    }
}

/// What a worker's threads share: its queue and the state of its turn.
pub(crate) struct WorkerShared {
    rx: Mutex<Receiver<Job>>,
    /// Requests accepted but not begun, served by whichever thread serves the queue.
    pub waiting: Waiting,
    /// Start of the running turn (nanoseconds since `epoch`, plus one), or 0.
    turn_started: AtomicU64,
    /// The tenant whose turn it is (or was last).
    turn_tenant: Mutex<String>,
    /// Kernel thread id of the thread serving the queue now (0: not known).
    tid: AtomicI64,
    /// CPU-time clock of that thread (-1: not known).
    cpu_clock: AtomicI64,
    /// Which thread serves the queue; a thread whose number is older retires.
    generation: AtomicU64,
    epoch: Instant,
    /// Thread name and role of the worker.
    pub name: String,
    pub kind: WorkerKind,
    /// Threads this worker has retired so far.
    pub takeovers: AtomicU64,
}

impl WorkerShared {
    pub fn new(name: String, kind: WorkerKind, rx: Receiver<Job>) -> Self {
        WorkerShared {
            rx: Mutex::new(rx),
            waiting: Waiting::default(),
            turn_started: AtomicU64::new(0),
            turn_tenant: Mutex::new(String::new()),
            tid: AtomicI64::new(0),
            cpu_clock: AtomicI64::new(-1),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
            name,
            kind,
            takeovers: AtomicU64::new(0),
        }
    }

    /// The next job, waiting at most `timeout`; `Err(Disconnected)` when the pool is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Job, RecvTimeoutError> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        rx.recv_timeout(timeout)
    }

    /// A job that arrived already, if any.
    pub fn try_recv(&self) -> Option<Job> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        rx.try_recv().ok()
    }

    /// The calling thread serves the queue from now on (its id is kept so a
    /// takeover can lower the priority of the long turn it leaves behind).
    pub fn serving_thread_starts(&self) {
        self.tid.store(current_tid(), Ordering::SeqCst);
        self.cpu_clock.store(current_cpu_clock(), Ordering::SeqCst);
    }

    /// `tenant` begins a turn.
    pub fn turn_begins(&self, tenant: &str) {
        {
            let mut t = self.turn_tenant.lock().unwrap_or_else(|p| p.into_inner());
            if *t != tenant {
                t.clear();
                t.push_str(tenant);
            }
        }
        let now = self.epoch.elapsed().as_nanos() as u64 + 1;
        self.turn_started.store(now, Ordering::SeqCst);
    }

    pub fn turn_ends(&self) {
        self.turn_started.store(0, Ordering::SeqCst);
    }

    fn turn_age(&self) -> Option<Duration> {
        let started = self.turn_started.load(Ordering::SeqCst);
        (started != 0).then(|| {
            let now = self.epoch.elapsed().as_nanos() as u64 + 1;
            Duration::from_nanos(now.saturating_sub(started))
        })
    }

    /// The generation a thread serves; it must retire once this moves on.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Counts retired threads still alive (each finishing a long slice), and
/// remembers which of them are still inside the long turn they were
/// retired in (an isolate that ignores termination stays there).
#[derive(Clone, Default)]
pub(crate) struct Retired(Arc<RetiredInner>);

#[derive(Default)]
struct RetiredInner {
    alive: AtomicUsize,
    /// (worker name, generation) of threads still in their long turn: the
    /// tenant of that turn and when the thread was retired.
    in_long_turn: Mutex<HashMap<(String, u64), (String, Instant)>>,
}

impl Retired {
    /// Counts one more, unless [`MAX_RETIRED`] are alive already.
    fn try_acquire(&self) -> bool {
        let mut cur = self.0.alive.load(Ordering::SeqCst);
        loop {
            if cur >= MAX_RETIRED {
                return false;
            }
            match self
                .0
                .alive
                .compare_exchange(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    fn long_turn(&self, worker: &str, gen: u64, tenant: &str) {
        self.0
            .in_long_turn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (worker.to_string(), gen),
                (tenant.to_string(), Instant::now()),
            );
    }

    /// The retired thread `gen` of `worker` got out of its long turn.
    pub fn turn_done(&self, worker: &str, gen: u64) {
        self.0
            .in_long_turn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(worker.to_string(), gen));
    }

    /// A retired thread exits.
    pub fn release(&self, worker: &str, gen: u64) {
        self.turn_done(worker, gen);
        self.0.alive.fetch_sub(1, Ordering::SeqCst);
    }

    /// The tenant whose long turn has held a retired thread longest, and for
    /// how long since the takeover.
    pub fn oldest_long_turn(&self) -> Option<(String, Duration)> {
        self.0
            .in_long_turn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .min_by_key(|(_, at)| *at)
            .map(|(t, at)| (t.clone(), at.elapsed()))
    }
}

/// Starts a thread serving `shared` as generation `gen`.
pub(crate) type Spawn = Arc<dyn Fn(Arc<WorkerShared>, u64) + Send + Sync>;
/// Told the tenant whose turn ran past [`TURN_LIMIT`].
pub(crate) type OnLongTurn = Box<dyn Fn(&str) + Send>;

/// Starts the monitor thread over `workers`; `spawn` starts a replacement.
/// The thread left with the long turn drops to the lowest priority, so the
/// rest of that turn only gets CPU the other tenants leave, and
/// `on_long_turn` hears which tenant held it.
pub(crate) fn monitor(
    workers: Vec<Arc<WorkerShared>>,
    spawn: Spawn,
    retired: Retired,
    on_long_turn: OnLongTurn,
) {
    let started = std::thread::Builder::new()
        .name("isola-takeover".into())
        .spawn(move || {
            // Per worker: the turn being watched and its thread's CPU time
            // when the monitor first saw it.
            let mut seen: Vec<(u64, Option<Duration>)> = vec![(0, None); workers.len()];
            loop {
                std::thread::sleep(CHECK_EVERY);
                for (w, seen) in workers.iter().zip(seen.iter_mut()) {
                    let turn = w.turn_started.load(Ordering::SeqCst);
                    let Some(age) = w.turn_age() else { continue };
                    let cpu_now = cpu_time(w.cpu_clock.load(Ordering::SeqCst));
                    if seen.0 != turn {
                        *seen = (turn, cpu_now);
                    }
                    let held = match (seen.1, cpu_now) {
                        (Some(base), Some(now)) => now.saturating_sub(base),
                        _ => age,
                    };
                    if (held < TURN_LIMIT && age < TURN_WALL_LIMIT) || !retired.try_acquire() {
                        continue; // short, or too many threads finishing long slices already
                    }
                    let gen = w.generation() + 1;
                    w.generation.store(gen, Ordering::SeqCst);
                    let tenant_now = w
                        .turn_tenant
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    retired.long_turn(&w.name, gen - 1, &tenant_now);
                    w.takeovers.fetch_add(1, Ordering::Relaxed);
                    // The long turn belongs to the retired thread now.
                    w.turn_ends();
                    let tenant = w
                        .turn_tenant
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    tracing::warn!(
                        worker = %w.name,
                        tenant = %tenant,
                        turn_ms = age.as_millis() as u64,
                        "a worker turn ran past {} ms; a new thread serves its queue",
                        TURN_LIMIT.as_millis()
                    );
                    match w.tid.load(Ordering::SeqCst) {
                        0 => {}
                        tid => lower_priority(tid),
                    }
                    on_long_turn(&tenant);
                    spawn(w.clone(), gen);
                }
            }
        });
    if let Err(e) = started {
        tracing::error!("cannot start the worker takeover monitor: {e}");
    }
}

/// The calling thread's kernel id (0 where there is none).
pub(crate) fn current_tid() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions.
        i64::from(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The calling thread's CPU-time clock (-1 where there is none).
fn current_cpu_clock() -> i64 {
    #[cfg(target_os = "linux")]
    {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is the calling thread, alive for the call;
        // `clock` is a valid out-pointer.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0 {
            return i64::from(clock);
        }
    }
    -1
}

/// CPU time so far on `clock` (from [`current_cpu_clock`]); `None` if the
/// thread is gone or there is no clock.
fn cpu_time(clock: i64) -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        if clock == -1 {
            return None;
        }
        let clock = libc::clockid_t::try_from(clock).ok()?;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; a stale clock id fails with EINVAL.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return None;
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = clock;
        None
    }
}

/// Runs thread `tid` of this process at the lowest nice value (19), so it
/// gets little CPU while other threads want it. (`SCHED_IDLE` would starve
/// it outright, and with it any lock it holds.)
pub(crate) fn lower_priority(tid: i64) {
    #[cfg(target_os = "linux")]
    {
        let Ok(id) = libc::pid_t::try_from(tid) else {
            return;
        };
        // SAFETY: setpriority on a thread id of this process only changes that
        // thread's nice value (a stale id fails with ESRCH).
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, id as libc::id_t, 19) };
        if rc != 0 {
            tracing::warn!(
                "could not lower a worker thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tid;
}

//! Worker takeover: no tenant holds its worker's other tenants hostage.
//!
//! A worker thread runs its tenants' slices one after another. A slice that
//! runs long (a tenant with a large CPU budget, or an isolate stuck in a
//! builtin that does not honour termination, such as a huge `fill`) would
//! stall every other tenant of that worker. A monitor thread watches each
//! worker's current turn; when one has run longer than [`TURN_LIMIT`], the
//! worker's queue is handed to a fresh thread, which serves the other
//! tenants at once (creating their isolates again, from the code cache).
//! The old thread finishes the long slice, gives back the requests it had
//! accepted but not begun, drives the invocations it had started to their
//! end, and exits. At most [`MAX_RETIRED`] such threads live at once.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pool::Job;

/// How long one tenant may hold its worker before the worker's queue moves
/// to a new thread (three times the default CPU budget of one invocation).
pub const TURN_LIMIT: Duration = Duration::from_millis(150);
/// How often the monitor looks.
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// Most retired threads alive at once (each still finishing a long slice).
pub const MAX_RETIRED: usize = 8;

/// What a worker's threads share: its queue and the state of its turn.
pub(crate) struct WorkerShared {
    rx: Mutex<Receiver<Job>>,
    /// For giving back requests a retired thread accepted but did not begin.
    tx: Sender<Job>,
    /// Start of the running turn (nanoseconds since `epoch`, plus one), or 0.
    turn_started: AtomicU64,
    /// Which thread serves the queue; a thread whose number is older retires.
    generation: AtomicU64,
    epoch: Instant,
    /// Thread name and priority of the worker.
    pub name: String,
    pub background: bool,
    /// Threads this worker has retired so far.
    pub takeovers: AtomicU64,
}

impl WorkerShared {
    pub fn new(name: String, background: bool, rx: Receiver<Job>, tx: Sender<Job>) -> Self {
        WorkerShared {
            rx: Mutex::new(rx),
            tx,
            turn_started: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
            name,
            background,
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

    /// Puts a job back in the queue (for the thread that serves it now).
    pub fn give_back(&self, job: Job) {
        let _ = self.tx.send(job);
    }

    pub fn turn_begins(&self) {
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

/// Counts retired threads still alive (each finishing a long slice).
#[derive(Clone, Default)]
pub(crate) struct Retired(Arc<AtomicUsize>);

impl Retired {
    /// Counts one more, unless [`MAX_RETIRED`] are alive already.
    fn try_acquire(&self) -> bool {
        let mut cur = self.0.load(Ordering::SeqCst);
        loop {
            if cur >= MAX_RETIRED {
                return false;
            }
            match self
                .0
                .compare_exchange(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A retired thread exits.
    pub fn release(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a thread serving `shared` as generation `gen`.
pub(crate) type Spawn = Arc<dyn Fn(Arc<WorkerShared>, u64) + Send + Sync>;

/// Starts the monitor thread over `workers`; `spawn` starts a replacement.
pub(crate) fn monitor(workers: Vec<Arc<WorkerShared>>, spawn: Spawn, retired: Retired) {
    let started = std::thread::Builder::new()
        .name("isola-takeover".into())
        .spawn(move || loop {
            std::thread::sleep(CHECK_EVERY);
            for w in &workers {
                let Some(age) = w.turn_age() else { continue };
                if age < TURN_LIMIT || !retired.try_acquire() {
                    continue; // short, or too many threads finishing long slices already
                }
                let gen = w.generation() + 1;
                w.generation.store(gen, Ordering::SeqCst);
                w.takeovers.fetch_add(1, Ordering::Relaxed);
                // The long turn belongs to the retired thread now.
                w.turn_ends();
                tracing::warn!(
                    worker = %w.name,
                    turn_ms = age.as_millis() as u64,
                    "a worker turn ran past {} ms; a new thread serves its queue",
                    TURN_LIMIT.as_millis()
                );
                spawn(w.clone(), gen);
            }
        });
    if let Err(e) = started {
        tracing::error!("cannot start the worker takeover monitor: {e}");
    }
}

//! The CPU/wall-time watchdog and the kill state shared with V8 callbacks.
//!
//! One watchdog thread per [`crate::Engine`] watches every running
//! invocation. CPU time is the CPU clock of the thread running the isolate
//! (`pthread_getcpuclockid`), read while tenant code runs; V8's background
//! threads (concurrent GC, compilers) are not included. When a budget is
//! passed the watchdog asks the isolate for an interrupt: the interrupt
//! callback, on the isolate's own thread, captures the JS stack for the kill
//! report and then terminates execution. If the isolate does not reach an
//! interrupt check within the grace period, the watchdog terminates it
//! directly; after a second grace period the runtime is marked abandoned so it
//! is never reused.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::limits::LimitKind;

/// Why an invocation was stopped, and what was measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Kill {
    pub kind: LimitKind,
    pub limit: u64,
    pub used: Option<u64>,
    pub seq: u64,
    /// Set when the invocation was stopped for using a refused feature
    /// (not a budget): what it used.
    pub forbidden: Option<&'static str>,
}

/// Per-runtime state reachable from V8 callbacks (interrupts, near-heap-limit).
#[derive(Debug)]
pub(crate) struct KillState {
    pub handle: v8::IsolateHandle,
    pub seq: AtomicU64,
    pub running: AtomicBool,
    pub kill: Mutex<Option<Kill>>,
    pub stack: Mutex<Option<String>>,
    pub abandoned: AtomicBool,
    pub heap_limit: u64,
    pub heap_grants: AtomicU64,
    /// Heap bytes granted above the limit during the current invocation.
    pub heap_granted: AtomicU64,
}

impl KillState {
    pub fn new(handle: v8::IsolateHandle, heap_limit: u64) -> Arc<Self> {
        Arc::new(KillState {
            handle,
            seq: AtomicU64::new(0),
            running: AtomicBool::new(false),
            kill: Mutex::new(None),
            stack: Mutex::new(None),
            abandoned: AtomicBool::new(false),
            heap_limit,
            heap_grants: AtomicU64::new(0),
            heap_granted: AtomicU64::new(0),
        })
    }

    /// Records `kill` unless another cause was recorded first; returns whether it was recorded.
    pub fn set_kill(&self, kill: Kill) -> bool {
        let mut k = self.kill.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.seq.load(Ordering::SeqCst);
        // A kill left from an earlier slice (its interrupt came too late to
        // stop anything) must not shield the current one.
        let free = k.as_ref().is_none_or(|old| old.seq != current);
        // Not once the slice has ended: the watchdog acts outside its lock,
        // and a late kill must not be left for the next invocation.
        if free && kill.seq == current && self.running.load(Ordering::SeqCst) {
            *k = Some(kill);
            true
        } else {
            false
        }
    }

    pub fn take_kill(&self) -> Option<Kill> {
        self.kill.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn take_stack(&self) -> Option<String> {
        self.stack.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Asks the isolate to capture its stack and terminate at the next interrupt check.
    pub fn request_stop(self: &Arc<Self>) {
        let data = Arc::as_ptr(self) as *mut c_void;
        self.handle.request_interrupt(capture_and_terminate, data);
    }
}

/// Interrupt callback: on the isolate thread, records the JS stack and terminates.
///
/// # Safety
/// `data` must point to the `KillState` of the runtime owning `isolate`; the
/// runtime keeps it alive longer than its isolate, so it is valid whenever V8
/// runs this callback.
unsafe extern "C" fn capture_and_terminate(isolate: &mut v8::Isolate, data: *mut c_void) {
    // SAFETY: see the function's contract above.
    let ks = unsafe { &*(data as *const KillState) };
    let armed = ks
        .kill
        .lock()
        .map(|k| k.as_ref().map(|k| k.seq))
        .unwrap_or(None);
    if armed != Some(ks.seq.load(Ordering::SeqCst)) || !ks.running.load(Ordering::SeqCst) {
        return; // a late request for an invocation that already ended
    }
    // rusty_v8 140 declares this callback's first parameter as `&mut Isolate`,
    // but V8 passes its raw `v8::Isolate*`, and `Isolate` is now a wrapper
    // around such a pointer. Rebuild a proper wrapper from the raw pointer.
    let raw = isolate as *mut v8::Isolate as *mut v8::RealIsolate;
    // SAFETY: `raw` is the running isolate V8 handed to this callback, on its own thread.
    let mut isolate = unsafe { v8::Isolate::from_raw_ptr(raw) };
    let stack = {
        v8::scope!(let scope, &mut isolate);
        let scope: &mut v8::PinScope<'_, '_, ()> = scope;
        // SAFETY: `HandleScope<'_, C>` uses `C` only in a `PhantomData`, so
        // both types have the same layout. Interrupts run only while JS runs,
        // and isola runs JS only inside a `ContextScope`, so V8 has a current
        // context for `get_current_context` to return.
        let scope: &mut v8::PinScope<'_, '_> =
            unsafe { &mut *(scope as *mut v8::PinScope<'_, '_, ()> as *mut v8::PinScope<'_, '_>) };
        crate::runtime::errors::current_stack(scope)
    };
    if let Ok(mut s) = ks.stack.lock() {
        *s = stack;
    }
    isolate.terminate_execution();
}

/// V8 near-heap-limit callback: records a heap kill, grants headroom so V8
/// does not abort, and stops the invocation.
///
/// # Safety
/// `data` must point to the `KillState` of the runtime owning the isolate (see above).
pub(crate) unsafe extern "C" fn near_heap_limit(
    data: *mut c_void,
    current: usize,
    _initial: usize,
) -> usize {
    // SAFETY: registered with a pointer to the runtime's `KillState`, which outlives the isolate.
    let ks = unsafe { &*(data as *const KillState) };
    let grants = ks.heap_grants.fetch_add(1, Ordering::SeqCst);
    let seq = ks.seq.load(Ordering::SeqCst);
    ks.set_kill(Kill {
        kind: LimitKind::Heap,
        limit: ks.heap_limit,
        used: Some(current as u64),
        seq,
        forbidden: None,
    });
    if grants == 0 {
        // First time: let the code reach an interrupt check, capture its stack there.
        let data = ks as *const KillState as *mut c_void;
        ks.handle.request_interrupt(capture_and_terminate, data);
    } else {
        ks.handle.terminate_execution();
    }
    // Headroom so the termination can unwind without a fatal OOM, large
    // enough for a single big allocation (`new Array(5e7)`) that triggered
    // this. It is granted once per invocation, up to HEAP_HEADROOM in total:
    // later calls get what is left of it, never more. The isolate is
    // discarded afterwards, so the raised limit never serves another call.
    let granted = ks.heap_granted.load(Ordering::SeqCst) as usize;
    let extra = HEAP_HEADROOM.saturating_sub(granted);
    ks.heap_granted
        .store((granted + extra) as u64, Ordering::SeqCst);
    current + extra
}

/// Most heap bytes granted above a tenant's heap limit in one invocation, so
/// that V8 can unwind the terminated code instead of aborting the process.
/// One V8 object is at most 1 GiB (`FixedArrayBase::kMaxSize`, the longest
/// string), so this covers the single allocation that crossed the limit.
pub(crate) const HEAP_HEADROOM: usize = (1 << 30) + (64 << 20);

/// V8's use-counter hook: a resizable `ArrayBuffer` or growable
/// `SharedArrayBuffer` reserves memory outside the tenant's counted budget.
/// The bootstrap refuses them with a `RangeError`; this is the backstop for
/// any way around it: the invocation is stopped.
///
/// # Safety
/// Called by V8 on the isolate's thread, with the isolate's raw pointer.
pub(crate) unsafe extern "C" fn on_use_counter(
    isolate: &mut v8::Isolate,
    feature: v8::UseCounterFeature,
) {
    let forbidden = match feature {
        v8::UseCounterFeature::kResizableArrayBuffer => "a resizable ArrayBuffer (maxByteLength)",
        v8::UseCounterFeature::kGrowableSharedArrayBuffer => {
            "a growable SharedArrayBuffer (maxByteLength)"
        }
        _ => return,
    };
    // As in `capture_and_terminate`: V8 passes its raw `v8::Isolate*`.
    let raw = isolate as *mut v8::Isolate as *mut v8::RealIsolate;
    // SAFETY: `raw` is the running isolate V8 handed to this callback, on its own thread.
    let isolate = unsafe { v8::Isolate::from_raw_ptr(raw) };
    let Some(ks) = isolate.get_slot::<Arc<KillState>>().cloned() else {
        return;
    };
    ks.set_kill(Kill {
        kind: LimitKind::ExternalMemory,
        limit: 0,
        used: None,
        seq: ks.seq.load(Ordering::SeqCst),
        forbidden: Some(forbidden),
    });
    ks.handle.terminate_execution();
}

struct Watch {
    handle: Arc<KillState>,
    clock: libc::clockid_t,
    cpu_start: Duration,
    cpu_spent: Duration,
    cpu_limit: Duration,
    cpu_kind: LimitKind,
    wall_deadline: Instant,
    wall_limit: Duration,
    grace: Duration,
    seq: u64,
    fired_at: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    watches: Mutex<HashMap<u64, Watch>>,
    cv: Condvar,
}

/// The engine's watchdog thread.
#[derive(Clone, Default)]
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    started: Arc<OnceLock<()>>,
}

static NEXT_WATCH: AtomicU64 = AtomicU64::new(1);

/// Removes its watch when dropped.
pub(crate) struct WatchGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Ok(mut w) = self.shared.watches.lock() {
            w.remove(&self.id);
        }
    }
}

/// CPU time consumed by the calling thread so far.
pub(crate) fn thread_cpu_time() -> Duration {
    clock_time(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or_default()
}

fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn current_thread_clock() -> libc::clockid_t {
    let mut clock: libc::clockid_t = libc::CLOCK_THREAD_CPUTIME_ID;
    // SAFETY: pthread_self() is always valid for the calling thread; `clock` is writable.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    if rc != 0 {
        clock = libc::CLOCK_THREAD_CPUTIME_ID;
    }
    clock
}

impl Watchdog {
    /// Watches one slice of an invocation that has already used `cpu_spent`
    /// of its `cpu_limit` and must end by `wall_deadline`.
    #[allow(clippy::too_many_arguments)]
    pub fn watch_slice(
        &self,
        ks: &Arc<KillState>,
        seq: u64,
        cpu_kind: LimitKind,
        cpu_limit: Duration,
        cpu_spent: Duration,
        wall_deadline: Instant,
        wall_limit: Duration,
        grace: Duration,
    ) -> WatchGuard {
        self.started.get_or_init(|| {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("isola-watchdog".into())
                .spawn(move || run(shared))
                .expect("spawning the watchdog thread");
        });
        let id = NEXT_WATCH.fetch_add(1, Ordering::Relaxed);
        let clock = current_thread_clock();
        let mut watch = Watch {
            handle: ks.clone(),
            clock,
            cpu_start: clock_time(clock).unwrap_or_default(),
            cpu_spent,
            cpu_limit,
            cpu_kind,
            wall_deadline,
            wall_limit,
            grace,
            seq,
            fired_at: None,
        };
        // A slice that starts over its budget (many short slices, each
        // shorter than the 1 ms tick, such as the chunks of an endless
        // response stream) is stopped at once: the ticks alone would never
        // see it running.
        if let Some(kill) = due_kill(&watch, Instant::now()) {
            watch.fired_at = Some(Instant::now());
            if ks.set_kill(kill) {
                ks.request_stop();
            }
        }
        let mut w = self
            .shared
            .watches
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Only a watchdog with nothing to watch waits without a timeout;
        // otherwise it sees the new watch at its next tick.
        let was_idle = w.is_empty();
        w.insert(id, watch);
        if was_idle {
            self.shared.cv.notify_all();
        }
        WatchGuard {
            shared: self.shared.clone(),
            id,
        }
    }
}

/// The kill `w` has earned by `now` (CPU past its budget, or the wall
/// deadline passed), if any.
fn due_kill(w: &Watch, now: Instant) -> Option<Kill> {
    let cpu = clock_time(w.clock).map(|t| t.saturating_sub(w.cpu_start) + w.cpu_spent);
    if let Some(cpu) = cpu.filter(|c| *c > w.cpu_limit) {
        Some(Kill {
            kind: w.cpu_kind,
            limit: w.cpu_limit.as_millis() as u64,
            used: Some(cpu.as_millis() as u64),
            seq: w.seq,
            forbidden: None,
        })
    } else if now >= w.wall_deadline {
        Some(Kill {
            kind: LimitKind::Wall,
            limit: w.wall_limit.as_millis() as u64,
            used: Some(
                w.wall_limit.as_millis() as u64
                    + now.duration_since(w.wall_deadline).as_millis() as u64,
            ),
            seq: w.seq,
            forbidden: None,
        })
    } else {
        None
    }
}

const TICK: Duration = Duration::from_millis(1);

/// What the watchdog does to one isolate after a tick.
enum Act {
    /// Record the kill; if it is the first cause, ask for an interrupt.
    Stop(Kill),
    /// The interrupt did not come within the grace period (of slice `seq`).
    Terminate(u64),
    /// Nor within two: the runtime is never reused.
    Abandon(u64),
}

fn run(shared: Arc<Shared>) {
    let mut acts: Vec<(Arc<KillState>, Act)> = Vec::new();
    loop {
        {
            let mut watches = shared.watches.lock().unwrap_or_else(|p| p.into_inner());
            while watches.is_empty() {
                watches = shared.cv.wait(watches).unwrap_or_else(|p| p.into_inner());
            }
            let now = Instant::now();
            for w in watches.values_mut() {
                if let Some(fired) = w.fired_at {
                    let since = now.duration_since(fired);
                    if since > w.grace * 2 {
                        acts.push((w.handle.clone(), Act::Abandon(w.seq)));
                    } else if since > w.grace {
                        acts.push((w.handle.clone(), Act::Terminate(w.seq)));
                    }
                    continue;
                }
                if let Some(kill) = due_kill(w, now) {
                    w.fired_at = Some(now);
                    acts.push((w.handle.clone(), Act::Stop(kill)));
                }
            }
        }
        // Outside the lock: these calls take the isolate's own locks, which
        // its thread may hold while it runs at low priority. Workers that
        // start or end a slice must never wait for that.
        for (ks, act) in acts.drain(..) {
            match act {
                Act::Stop(kill) => {
                    if ks.set_kill(kill) {
                        ks.request_stop();
                    }
                }
                // Only while that slice still runs: a termination that
                // reached the isolate's next invocation would kill it with
                // no cause recorded.
                Act::Terminate(seq) | Act::Abandon(seq)
                    if ks.seq.load(Ordering::SeqCst) != seq
                        || !ks.running.load(Ordering::SeqCst) => {}
                Act::Terminate(_) => {
                    ks.handle.terminate_execution();
                }
                Act::Abandon(_) => {
                    ks.abandoned.store(true, Ordering::SeqCst);
                    ks.handle.terminate_execution();
                }
            }
        }
        let watches = shared.watches.lock().unwrap_or_else(|p| p.into_inner());
        if !watches.is_empty() {
            let _ = shared.cv.wait_timeout(watches, TICK);
        }
    }
}

//! The V8 glue: one [`JsRuntime`] owns one isolate and its context.
//!
//! This is the only module tree that touches `v8::` types. The rest of the
//! crate (tenants, engine, store) talks to it through plain Rust values:
//! sources in, [`Output`]s and typed errors out.
//!
//! Architecture invariant: a `JsRuntime` lives and dies on the thread that
//! created it (rusty_v8 140 has no `Locker`; an isolate moved between threads
//! keeps its first thread's stack limit).

pub(crate) mod allocator;
pub(crate) mod boundary;
pub(crate) mod errors;
mod gcm;
pub(crate) mod lazy_areas;
mod load;
pub(crate) use load::LoadStep;
mod modules;
pub(crate) mod ops;
pub(crate) mod ops_clone;
pub(crate) mod ops_compress;
pub(crate) mod ops_crypto;
pub(crate) mod ops_encoding;
pub(crate) mod ops_fetch;
pub(crate) mod ops_formdata;
pub(crate) mod ops_pbkdf2;
pub(crate) mod ops_urlpattern;
pub(crate) mod ops_wasm;
pub(crate) mod ops_web;
pub(crate) mod platform;
pub(crate) mod snapshot;
pub(crate) mod watchdog;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accounting::{HeapUsage, KillReport};
use crate::code_cache::{CacheEvent, CacheKey, CodeCacheStore};
use crate::error::{Error, LimitError, Result};
use crate::limits::{LimitKind, Limits};
use crate::tenant::{ConsoleLevel, ConsoleSink, Invocation, Output};
use allocator::AbCounter;
use ops::{OpState, SharedOpState};
use watchdog::{KillState, Watchdog};

/// What a runtime needs to know about the engine's code cache.
pub(crate) struct CacheCtx<'a> {
    pub store: &'a dyn CodeCacheStore,
    pub fingerprint: &'a str,
}

impl CacheCtx<'_> {
    pub fn key(&self, source: &str, kind: &str) -> CacheKey {
        CacheKey::new(
            source,
            kind,
            platform::v8_version(),
            platform::V8_FLAGS,
            self.fingerprint,
        )
    }
}

/// What loading a tenant's code did.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadReport {
    pub cache_events: Vec<(String, CacheEvent)>,
    pub compile_time: Duration,
    pub startup_cpu: Duration,
}

/// Per-invocation measurements.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RunMeasure {
    pub cpu: Duration,
    pub wall: Duration,
}

/// Where an invocation stands after a step.
pub(crate) enum Step {
    /// Finished, with its result and measurements.
    Done(Result<Output>, RunMeasure),
    /// Waiting for a timer (or its deadline): call `resume` at or after this instant.
    Wait(Instant),
}

/// The invocation in flight on an isolate.
struct InFlight {
    promise: Option<v8::Global<v8::Promise>>,
    t0: Instant,
    deadline: Instant,
    cpu: Duration,
    wake: Option<Instant>,
}

/// Work handed to `ctx.waitUntil`, still running after its response.
struct Background {
    promise: v8::Global<v8::Promise>,
    deadline: Instant,
    /// CPU already spent by the invocation that handed it over, plus its own
    /// slices: `waitUntil` work runs under the request's CPU budget.
    cpu: Duration,
}

/// A streamed response body being pulled.
struct ResponseStream {
    reader: v8::Global<v8::Object>,
    pending: Option<v8::Global<v8::Promise>>,
    deadline: Instant,
    cpu: Duration,
}

/// One isolate, its context, and the tenant code loaded into it.
pub(crate) struct JsRuntime {
    // Handles first: they must be released before the isolate is disposed.
    context: v8::Global<v8::Context>,
    internals: v8::Global<v8::Object>,
    namespace: Option<v8::Global<v8::Object>>,
    in_flight: Option<InFlight>,
    loading: Option<load::Loading>,
    background: Vec<Background>,
    response: Option<ResponseStream>,
    entry: String,
    tenant: String,
    limits: Limits,
    ops: SharedOpState,
    ab: Arc<AbCounter>,
    watchdog: Watchdog,
    seq: u64,
    isolate: v8::OwnedIsolate,
    // After the isolate: V8 callbacks hold a pointer to it until the isolate is gone.
    kill: Arc<KillState>,
    /// V8's WebAssembly namespace of this context, kept aside (see `set_webassembly`).
    wasm_ns: Option<v8::Global<v8::Value>>,
}

impl JsRuntime {
    /// Creates an isolate from the base snapshot, with a fresh context.
    pub fn new(
        snapshot: &'static [u8],
        tenant: &str,
        limits: &Limits,
        console: ConsoleSink,
        watchdog: Watchdog,
    ) -> Result<Self> {
        platform::init();
        let ab = AbCounter::new(limits.external_memory_bytes as usize);
        let params = v8::CreateParams::default()
            .snapshot_blob(v8::StartupData::from(snapshot))
            .external_references(ops::external_references())
            .array_buffer_allocator(allocator::new_allocator(&ab))
            .heap_limits(0, limits.heap_bytes as usize);
        let mut isolate = v8::Isolate::new(params);
        isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
        isolate.set_allow_atomics_wait(false);
        isolate.set_capture_stack_trace_for_uncaught_exceptions(true, 16);
        isolate.set_allow_wasm_code_generation_callback(ops_wasm::wasm_codegen);
        isolate.set_slot(ops_wasm::WasmEnabled(false));
        isolate.set_oom_error_handler(platform::on_oom);
        isolate.set_use_counter_callback(watchdog::on_use_counter);
        isolate.set_promise_reject_callback(ops::on_promise_reject);
        let kill = KillState::new(isolate.thread_safe_handle(), limits.heap_bytes);
        isolate.set_slot(kill.clone());
        isolate.add_near_heap_limit_callback(
            watchdog::near_heap_limit,
            Arc::as_ptr(&kill) as *mut std::ffi::c_void,
        );
        let ops = Rc::new(RefCell::new(OpState {
            console,
            timers: Default::default(),
            body: None,
            body_waiter: None,
            out_headers: Vec::new(),
            out_header_bytes: 0,
            rejections: Vec::new(),
            tenant: tenant.to_string(),
            fetch: None,
            fetches: Vec::new(),
            subrequests: 0,
            deadline: None,
            wasm_memories: 0,
            decoders: Default::default(),
            reported: Default::default(),
            handled_later: Vec::new(),
            ab: ab.clone(),
            codecs: Default::default(),
        }));
        isolate.set_slot(ops.clone());
        let (context, internals, wasm_ns) = {
            v8::scope!(let scope, &mut isolate);
            let context = v8::Context::new(scope, Default::default());
            let scope = &mut v8::ContextScope::new(scope, context);
            let internals = scope
                .get_context_data_from_snapshot_once::<v8::Object>(snapshot::INTERNALS_INDEX)
                .map_err(|e| Error::Snapshot(format!("the snapshot has no internals object ({e}); delete the snapshot file to rebuild it")))?;
            // No WebAssembly unless the tenant's settings enable it (then
            // `set_webassembly` installs it, wrapped so its memories and code
            // count: see ops_wasm). V8 installs the global per context, so it
            // is kept aside and removed here.
            let global = context.global(scope);
            let wasm = v8_str(scope, "WebAssembly")?;
            let wasm_ns = global
                .get(scope, wasm.into())
                .map(|ns| v8::Global::new(scope, ns));
            global.delete(scope, wasm.into());
            (
                v8::Global::new(scope, context),
                v8::Global::new(scope, internals),
                wasm_ns,
            )
        };
        // Isolates are entered only while in use (see `entered`): several
        // tenants share a thread, and V8's per-thread entry stack must stay LIFO.
        // SAFETY: `Isolate::new` entered the isolate; this balances it.
        unsafe { isolate.exit() };
        Ok(JsRuntime {
            context,
            internals,
            namespace: None,
            in_flight: None,
            loading: None,
            background: Vec::new(),
            response: None,
            entry: String::new(),
            tenant: tenant.to_string(),
            limits: limits.clone(),
            ops,
            ab,
            watchdog,
            seq: 0,
            isolate,
            kill,
            wasm_ns,
        })
    }

    /// Whether the runtime may serve again (false after a limit kill or abandonment).
    pub fn is_healthy(&self) -> bool {
        !self.kill.abandoned.load(Ordering::SeqCst)
    }

    /// Runs `f` with the isolate entered (the thread's current isolate).
    ///
    /// Panic-safe: if `f` panics, the isolate is exited before the panic goes
    /// on (disposing an entered isolate, or leaving V8's per-thread entry
    /// stack unbalanced, would be fatal) and the runtime is marked abandoned.
    fn entered<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        // SAFETY: balanced by the `exit` below on the same thread, on every
        // path including unwinding; isolates are never left entered between
        // calls, so the entry stack stays LIFO.
        unsafe { self.isolate.enter() };
        platform::set_current_tenant(Some(&self.tenant));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        platform::set_current_tenant(None);
        // SAFETY: see above.
        unsafe { self.isolate.exit() };
        match r {
            Ok(r) => r,
            Err(panic) => {
                self.kill.abandoned.store(true, Ordering::SeqCst);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Asks V8 for a full, memory-reducing garbage collection.
    pub fn collect_garbage(&mut self) {
        self.entered(|rt| rt.isolate.low_memory_notification());
    }

    /// Heap figures right now.
    pub fn heap_usage(&mut self) -> HeapUsage {
        self.entered(|rt| rt.heap_usage_inner())
    }

    fn heap_usage_inner(&mut self) -> HeapUsage {
        let s = self.isolate.get_heap_statistics();
        HeapUsage {
            used_bytes: s.used_heap_size() as u64,
            total_bytes: s.total_heap_size() as u64,
            limit_bytes: self.limits.heap_bytes,
            external_bytes: self.ab.used() as u64,
        }
    }

    /// Starts an invocation and runs it until it settles or waits for a timer.
    pub fn start(
        &mut self,
        inv: &Invocation,
        env: &serde_json::Value,
        body: Option<Box<dyn crate::tenant::BodySource>>,
    ) -> Step {
        if self.is_busy() {
            return Step::Done(
                Err(Error::Internal(
                    "an invocation is already in flight on this isolate".into(),
                )),
                RunMeasure::default(),
            );
        }
        self.begin();
        let t0 = Instant::now();
        // Subrequests of an earlier invocation nobody waits for now.
        self.drop_idle_fetches();
        self.in_flight = Some(InFlight {
            promise: None,
            t0,
            deadline: t0 + self.limits.wall,
            cpu: Duration::ZERO,
            wake: None,
        });
        let streamed = body.is_some();
        {
            let mut st = self.ops.borrow_mut();
            st.body = body;
            st.subrequests = 0;
            st.deadline = Some(t0 + self.limits.wall);
        }

        self.entered(|rt| rt.slice(Some((inv, env, streamed))))
    }

    /// Continues the invocation in flight (after the instant its last step asked for).
    pub fn resume(&mut self) -> Step {
        if self.in_flight.is_none() {
            return Step::Done(
                Err(Error::Internal("no invocation in flight".into())),
                RunMeasure::default(),
            );
        }
        self.entered(|rt| rt.slice(None))
    }

    /// Whether an invocation is in flight (started, not yet done).
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some() || self.response.is_some() || self.loading.is_some()
    }

    /// Pulls the next chunk of a streamed response body.
    pub fn poll_body(&mut self) -> crate::tenant::BodyProgress {
        if self.response.is_none() {
            return crate::tenant::BodyProgress::End;
        }
        self.entered(|rt| rt.poll_body_inner())
    }

    /// Drops a streamed response body that is no longer wanted.
    pub fn cancel_body(&mut self) {
        self.response = None;
        self.drop_request_body();
        self.drop_idle_fetches();
    }

    /// Abandons subrequests no invocation, stream or background work can
    /// wait for any more.
    fn drop_idle_fetches(&mut self) {
        if self.in_flight.is_none() && self.response.is_none() && self.background.is_empty() {
            self.ops.borrow_mut().fetches.clear();
        }
    }

    /// Drops the request body of the invocation that ended (and a read of it
    /// still pending).
    fn drop_request_body(&mut self) {
        let mut ops = self.ops.borrow_mut();
        ops.body = None;
        ops.body_waiter = None;
    }

    fn poll_body_inner(&mut self) -> crate::tenant::BodyProgress {
        use crate::tenant::BodyProgress;
        let Some(mut rs) = self.response.take() else {
            return BodyProgress::End;
        };
        let seq = self.begin();
        let guard = self.watchdog.watch_slice(
            &self.kill,
            seq,
            LimitKind::Cpu,
            self.limits.cpu,
            rs.cpu,
            rs.deadline,
            self.limits.wall,
            self.limits.termination_grace,
        );
        let cpu0 = watchdog::thread_cpu_time();
        let outcome: Result<Result<Option<Vec<u8>>, Instant>> = {
            in_context!(self, rs.deadline, scope, internals, ctx);
            let promise = match rs.pending.take() {
                Some(p) => Ok(v8::Local::new(scope, p)),
                None => {
                    let reader = v8::Local::new(scope, &rs.reader);
                    read_chunk(scope, internals, reader)
                }
            };
            match promise.and_then(|p| drive(scope, internals, p, &ctx).map(|d| (p, d))) {
                Err(e) => Err(e),
                Ok((p, Drive::Wait(until))) => {
                    rs.pending = Some(v8::Global::new(scope, p));
                    Ok(Err(until))
                }
                Ok((_, Drive::Settled(v))) => {
                    if v.is_null_or_undefined() {
                        Ok(Ok(None))
                    } else {
                        boundary::chunk_bytes(v, &ctx.caps()).map(|b| Ok(Some(b)))
                    }
                }
            }
        };
        drop(guard);
        rs.cpu += watchdog::thread_cpu_time().saturating_sub(cpu0);
        match outcome {
            Ok(Err(until)) => {
                self.response = Some(rs);
                self.kill.running.store(false, Ordering::SeqCst);
                BodyProgress::Wait(until)
            }
            Ok(Ok(Some(chunk))) => {
                self.response = Some(rs);
                self.kill.running.store(false, Ordering::SeqCst);
                BodyProgress::Chunk(chunk)
            }
            Ok(Ok(None)) => {
                self.kill.running.store(false, Ordering::SeqCst);
                self.drop_request_body();
                self.drop_idle_fetches();
                BodyProgress::End
            }
            Err(e) => match self.end::<()>(Err(e)) {
                Err(e) => BodyProgress::Failed(e),
                Ok(()) => BodyProgress::End,
            },
        }
    }

    /// One slice of the invocation in flight, under the watchdog.
    fn slice(&mut self, call: Option<(&Invocation, &serde_json::Value, bool)>) -> Step {
        let Some(mut fl) = self.in_flight.take() else {
            return Step::Done(
                Err(Error::Internal("no invocation in flight".into())),
                RunMeasure::default(),
            );
        };
        let guard = self.watchdog.watch_slice(
            &self.kill,
            self.seq,
            LimitKind::Cpu,
            self.limits.cpu,
            fl.cpu,
            fl.deadline,
            self.limits.wall,
            self.limits.termination_grace,
        );
        let cpu0 = watchdog::thread_cpu_time();
        let (bg_before, stream_before) = (self.background.len(), self.response.is_some());
        let outcome: Result<Option<Output>> = match &self.namespace {
            None => Err(Error::Internal("invoke before load".into())),
            Some(ns) => {
                in_context!(self, fl.deadline, scope, internals, ctx);
                let promise = match (call, &fl.promise) {
                    (Some((inv, env, streamed)), _) => {
                        // Cleanups V8 posted since the last turn (freeing
                        // native state of collected objects) run first.
                        platform::pump(scope);
                        let ns = v8::Local::new(scope, ns);
                        start_invoke(scope, internals, &ctx, ns, &self.entry, inv, env, streamed)
                    }
                    (None, Some(p)) => Ok(v8::Local::new(scope, p)),
                    (None, None) => Err(Error::Internal("no promise in flight".into())),
                };
                match promise {
                    Err(e) => Err(e),
                    Ok(promise) => match drive(scope, internals, promise, &ctx) {
                        Err(e) => Err(e),
                        Ok(Drive::Settled(record)) => {
                            let headers = std::mem::take(&mut self.ops.borrow_mut().out_headers);
                            let out = boundary::read_record(scope, record, headers, &ctx.caps())
                                .map(|(out, reader)| {
                                    if let Some(reader) = reader {
                                        self.response = Some(ResponseStream {
                                            reader: v8::Global::new(scope, reader),
                                            pending: None,
                                            deadline: fl.deadline,
                                            cpu: Duration::ZERO,
                                        });
                                    }
                                    out
                                });
                            if out.is_ok() {
                                // Work the handler passed to ctx.waitUntil goes on
                                // after the response, within the same wall deadline.
                                if let Ok(Some(bg)) = take_background(scope, internals) {
                                    self.background.push(Background {
                                        promise: v8::Global::new(scope, bg),
                                        deadline: fl.deadline,
                                        cpu: Duration::ZERO, // set below, with this slice's CPU
                                    });
                                }
                            }
                            out.map(Some)
                        }
                        Ok(Drive::Wait(until)) => {
                            fl.promise = Some(v8::Global::new(scope, promise));
                            fl.wake = Some(until);
                            Ok(None)
                        }
                    },
                }
            }
        };
        drop(guard);
        fl.cpu += watchdog::thread_cpu_time().saturating_sub(cpu0);
        // A streamed body and waitUntil work handed over in this slice go on
        // under the same CPU budget: they start from what the handler used.
        for bg in self.background.iter_mut().skip(bg_before) {
            bg.cpu = fl.cpu;
        }
        if !stream_before {
            if let Some(rs) = self.response.as_mut() {
                rs.cpu = fl.cpu;
            }
        }
        match outcome {
            Ok(None) => {
                let until = fl.wake.take().unwrap_or_else(Instant::now);
                self.in_flight = Some(fl);
                Step::Wait(until)
            }
            Ok(Some(out)) => {
                let m = RunMeasure {
                    cpu: fl.cpu,
                    wall: fl.t0.elapsed(),
                };
                Step::Done(self.end(Ok(out)), m)
            }
            Err(e) => {
                let m = RunMeasure {
                    cpu: fl.cpu,
                    wall: fl.t0.elapsed(),
                };
                Step::Done(self.end(Err(e)), m)
            }
        }
    }

    /// When background work (`ctx.waitUntil`) needs driving next, if any
    /// and no invocation is in flight (an invocation drives it too).
    pub fn background_wake(&self) -> Option<Instant> {
        if self.in_flight.is_some() || self.background.is_empty() {
            return None;
        }
        let deadline = self.background.iter().map(|b| b.deadline).min()?;
        let st = self.ops.borrow();
        let timer = st.timers.next_deadline();
        // Subrequests in flight are polled like a pending body read.
        let fetch = (!st.fetches.is_empty()).then(|| Instant::now() + BODY_POLL);
        let next = match (timer, fetch) {
            (Some(t), Some(f)) => Some(t.min(f)),
            (t, f) => t.or(f),
        };
        Some(next.map_or(Instant::now(), |t| t.min(deadline)))
    }

    /// Drives background work; returns a limit error if it broke one (the
    /// runtime is then unhealthy and must be dropped).
    pub fn poll_background(&mut self) -> Result<()> {
        if self.in_flight.is_some() || self.background.is_empty() {
            return Ok(());
        }
        self.entered(|rt| rt.poll_background_inner())
    }

    fn poll_background_inner(&mut self) -> Result<()> {
        let seq = self.begin();
        let items = std::mem::take(&mut self.background);
        let mut keep = Vec::new();
        let mut failure = Ok(());
        for mut bg in items {
            let guard = self.watchdog.watch_slice(
                &self.kill,
                seq,
                LimitKind::Cpu,
                self.limits.cpu,
                bg.cpu,
                bg.deadline,
                self.limits.wall,
                self.limits.termination_grace,
            );
            let cpu0 = watchdog::thread_cpu_time();
            let outcome = {
                in_context!(self, bg.deadline, scope, internals, ctx);
                let promise = v8::Local::new(scope, &bg.promise);
                match drive(scope, internals, promise, &ctx) {
                    Ok(Drive::Wait(_)) => Ok(true),
                    Ok(Drive::Settled(_)) | Err(Error::NeverSettled) => Ok(false),
                    Err(e) => Err(e),
                }
            };
            drop(guard);
            bg.cpu += watchdog::thread_cpu_time().saturating_sub(cpu0);
            match outcome {
                Ok(true) => keep.push(bg),
                Ok(false) => {}
                Err(e) => {
                    if failure.is_ok() {
                        failure = Err(e);
                    }
                }
            }
        }
        self.background = keep;
        match self.end(failure) {
            Ok(()) => Ok(()),
            Err(e) => {
                let sink = self.ops.borrow().console.clone();
                sink(
                    ConsoleLevel::Error,
                    &format!("ctx.waitUntil work stopped: {e}"),
                );
                if self.background.is_empty() && self.in_flight.is_none() {
                    self.ops.borrow_mut().timers.clear_all();
                }
                Err(e)
            }
        }
    }

    /// Gives an isolate created ahead of time (see [`crate::tenant::IsolatePool`])
    /// to a tenant: its name, console and limits. The heap limit is fixed at
    /// creation, so `limits.heap_bytes` must equal the one it was created with.
    pub fn adopt(&mut self, tenant: &str, limits: &Limits, console: ConsoleSink) -> bool {
        if limits.heap_bytes != self.limits.heap_bytes {
            return false;
        }
        self.tenant = tenant.to_string();
        self.limits = limits.clone();
        self.ab.set_limit(limits.external_memory_bytes as usize);
        let mut st = self.ops.borrow_mut();
        st.console = console;
        st.tenant = tenant.to_string();
        true
    }

    /// Gives the tenant WebAssembly (once; a runtime never loses it): the
    /// namespace, wrapped so memories and compiled code count in its
    /// ArrayBuffer budget, and wasm code generation.
    pub fn set_webassembly(&mut self) -> Result<()> {
        let Some(ns) = self.wasm_ns.take() else {
            return Ok(());
        };
        self.isolate.set_slot(ops_wasm::WasmEnabled(true));
        let deadline = Instant::now() + self.limits.wall;
        self.entered(|rt| {
            in_context!(rt, deadline, scope, internals, _ctx);
            let ns = v8::Local::new(scope, ns);
            call_internal(scope, internals, "enableWasm", &[ns]).map(|_| ())
        })
    }

    /// Lets the tenant `fetch()` through `outbound` within `policy` (or not,
    /// with `None`: `fetch()` then throws a `TypeError`).
    pub fn set_fetch(
        &mut self,
        fetch: Option<(
            Arc<crate::outbound::FetchPolicy>,
            Arc<dyn crate::outbound::Outbound>,
        )>,
    ) {
        self.ops.borrow_mut().fetch =
            fetch.map(|(policy, outbound)| ops_fetch::FetchHost { policy, outbound });
    }

    fn begin(&mut self) -> u64 {
        self.seq += 1;
        self.kill.seq.store(self.seq, Ordering::SeqCst);
        self.kill.running.store(true, Ordering::SeqCst);
        self.kill.heap_granted.store(0, Ordering::SeqCst);
        self.ab.take_refused();
        self.seq
    }

    /// Ends an invocation: turns a termination into the limit error that caused it.
    fn end<T>(&mut self, result: Result<T>) -> Result<T> {
        self.in_flight = None;
        // A response body that streams may still read the request body
        // (an echo, a transform of the upload): it lives until that ends.
        if self.response.is_none() || result.is_err() {
            self.drop_request_body();
        }
        // Subrequests nobody can wait for any more are abandoned.
        if result.is_err() {
            self.ops.borrow_mut().fetches.clear();
        } else {
            self.drop_idle_fetches();
        }
        self.kill.running.store(false, Ordering::SeqCst);
        // Only a kill of this invocation (one recorded for an earlier slice
        // after it ended is stale).
        let seq = self.seq;
        let kill = self.kill.take_kill().filter(|k| k.seq == seq);
        let stack = self.kill.take_stack();
        let terminating = self.isolate.is_execution_terminating();
        if terminating || kill.is_some() {
            self.isolate.cancel_terminate_execution();
            self.ops.borrow_mut().timers.clear_all();
        }
        match kill {
            Some(watchdog::Kill {
                forbidden: Some(what),
                ..
            }) => {
                self.kill.abandoned.store(true, Ordering::SeqCst);
                Err(Error::Forbidden {
                    tenant: self.tenant.clone(),
                    feature: what.to_string(),
                })
            }
            Some(k) if terminating || result.is_err() => {
                let heap = self.heap_usage_inner();
                let report = KillReport {
                    limit: k.kind,
                    js_stack: stack,
                    heap,
                    cpu_ms: 0,
                    wall_ms: 0,
                };
                // A killed isolate may hold half-updated state; never reuse it.
                self.kill.abandoned.store(true, Ordering::SeqCst);
                Err(self.limit_error(k.kind, k.limit, k.used, Some(report)))
            }
            _ if terminating => {
                self.kill.abandoned.store(true, Ordering::SeqCst);
                Err(Error::Internal(
                    "execution was terminated without a recorded cause".into(),
                ))
            }
            _ => match result {
                Err(Error::Js(e)) if self.ab.take_refused() && e.name == "RangeError" => {
                    let heap = self.heap_usage_inner();
                    let limit = self.limits.external_memory_bytes;
                    Err(self.limit_error(
                        LimitKind::ExternalMemory,
                        limit,
                        Some(heap.external_bytes),
                        Some(KillReport {
                            limit: LimitKind::ExternalMemory,
                            js_stack: Some(e.stack.clone()).filter(|s| !s.is_empty()),
                            heap,
                            cpu_ms: 0,
                            wall_ms: 0,
                        }),
                    ))
                }
                other => other,
            },
        }
    }

    fn limit_error(
        &self,
        kind: LimitKind,
        limit: u64,
        used: Option<u64>,
        report: Option<KillReport>,
    ) -> Error {
        Error::Limit(LimitError {
            tenant: self.tenant.clone(),
            kind,
            limit,
            used,
            report: report.map(Box::new),
        })
    }
}

impl Drop for JsRuntime {
    fn drop(&mut self) {
        // `OwnedIsolate`'s drop exits the isolate before disposing it.
        // SAFETY: balances that exit; the isolate is not entered otherwise.
        unsafe { self.isolate.enter() };
    }
}

/// Returns freed heap memory to the OS after an isolate was disposed, so a
/// tenant that is killed and recreated again and again does not ratchet up
/// the process's RSS through allocator fragmentation.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Enters a runtime's context: binds `$scope` (a context scope), `$internals`
/// (the bootstrap's internals object) and `$ctx` (the event-loop state, with
/// wall deadline `$deadline`). A macro because the pinned scopes it creates
/// must live in the caller's frame.
macro_rules! in_context {
    ($rt:ident, $deadline:expr, $scope:ident, $internals:ident, $ctx:ident) => {
        let $ctx = Loop {
            ops: &$rt.ops,
            kill: &$rt.kill,
            ab: &$rt.ab,
            tenant: &$rt.tenant,
            max_bytes: $rt.limits.external_memory_bytes as usize,
            deadline: $deadline,
            wall_limit: $rt.limits.wall,
        };
        v8::scope!(let $scope, &mut $rt.isolate);
        let context = v8::Local::new($scope, &$rt.context);
        let $scope = &mut v8::ContextScope::new($scope, context);
        let $internals = v8::Local::new($scope, &$rt.internals);
    };
}
use in_context;

/// What the event loop needs besides the scope.
pub(crate) struct Loop<'a> {
    pub ops: &'a SharedOpState,
    pub kill: &'a Arc<KillState>,
    pub ab: &'a AbCounter,
    pub tenant: &'a str,
    /// Cap of one response body, chunk or result (bytes).
    pub max_bytes: usize,
    pub deadline: Instant,
    pub wall_limit: Duration,
}

impl Loop<'_> {
    /// Caps for what crosses back from JS.
    pub fn caps(&self) -> boundary::Caps<'_> {
        boundary::Caps {
            body_bytes: self.max_bytes,
            tenant: self.tenant,
        }
    }
}

/// The error for a failed call: a termination (limit), or the caught exception.
pub(crate) fn call_error(
    tc: &mut v8::PinnedRef<'_, v8::TryCatch<'_, '_, v8::HandleScope<'_>>>,
    internals: v8::Local<v8::Object>,
) -> Error {
    if tc.has_terminated() || tc.is_execution_terminating() {
        return Error::Internal("terminated".into()); // replaced by `JsRuntime::end`
    }
    match tc.exception() {
        Some(exc) => {
            let msg = tc.message();
            Error::Js(errors::js_error(tc, internals, exc, msg))
        }
        None => Error::Internal("a call failed without an exception".into()),
    }
}

/// What one non-blocking turn of the event loop found.
pub(crate) enum Drive<'s> {
    /// The promise settled with this value.
    Settled(v8::Local<'s, v8::Value>),
    /// Still pending; nothing to do before this instant (next timer or the deadline).
    Wait(Instant),
}

/// Runs microtasks and due timers until `promise` settles or only future
/// timers are left; never sleeps.
pub(crate) fn drive<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    promise: v8::Local<'s, v8::Promise>,
    ctx: &Loop<'_>,
) -> Result<Drive<'s>> {
    let fire = get_fn(scope, internals, "fireTimer")?;
    loop {
        feed_body(scope, ctx);
        ops_fetch::feed_fetches(scope, ctx.ab);
        platform::pump(scope);
        scope.perform_microtask_checkpoint();
        report_rejections(scope, internals, ctx);
        if scope.is_execution_terminating() {
            return Err(Error::Internal("terminated".into()));
        }
        match promise.state() {
            v8::PromiseState::Fulfilled => return Ok(Drive::Settled(promise.result(scope))),
            v8::PromiseState::Rejected => {
                let exc = promise.result(scope);
                let msg = v8::Exception::create_message(scope, exc);
                return Err(Error::Js(errors::js_error(
                    scope,
                    internals,
                    exc,
                    Some(msg),
                )));
            }
            v8::PromiseState::Pending => {}
        }
        let now = Instant::now();
        // A pending body read or subrequest is polled again shortly: its
        // data arrives from outside the isolate.
        let body_pending = {
            let st = ctx.ops.borrow();
            st.body_waiter.is_some() || !st.fetches.is_empty()
        };
        let timer = ctx.ops.borrow().timers.next_deadline();
        let next = match (timer, body_pending) {
            (Some(t), true) => Some(t.min(now + BODY_POLL)),
            (None, true) => Some(now + BODY_POLL),
            (t, false) => t,
        };
        let Some(next) = next else {
            // A kill that landed in a microtask leaves the promise pending
            // with nothing left to settle it: report the kill, not a hang.
            if ctx.kill.kill.lock().map(|k| k.is_some()).unwrap_or(true) {
                return Err(Error::Internal("terminated".into()));
            }
            return Err(Error::NeverSettled);
        };
        if now >= ctx.deadline {
            return Err(wall_kill(ctx));
        }
        if next > now {
            return Ok(Drive::Wait(next.min(ctx.deadline)));
        }
        if ctx.kill.kill.lock().map(|k| k.is_some()).unwrap_or(false) {
            return Err(Error::Internal("terminated".into()));
        }
        loop {
            let id = ctx.ops.borrow_mut().timers.pop_due(now);
            let Some(id) = id else { break };
            v8::tc_scope!(let tc, scope);
            let undef = v8::undefined(tc).into();
            let arg = v8::Integer::new_from_unsigned(tc, id).into();
            if fire.call(tc, undef, &[arg]).is_none() {
                if tc.has_terminated() || tc.is_execution_terminating() {
                    return Err(Error::Internal("terminated".into()));
                }
                if let Some(exc) = tc.exception() {
                    let msg = tc.message();
                    let e = errors::js_error(tc, internals, exc, msg);
                    let sink = ctx.ops.borrow().console.clone();
                    sink(
                        ConsoleLevel::Error,
                        &format!("Uncaught exception in timer: {e}"),
                    );
                }
            }
            tc.perform_microtask_checkpoint();
        }
    }
}

/// Hands the promises still rejected with no handler after a checkpoint to
/// the bootstrap (`unhandledRejection`: an `unhandledrejection` event on the
/// global, then the tenant's log unless a listener cancelled it).
fn report_rejections<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    ctx: &Loop<'_>,
) {
    let (pending, handled) = {
        let mut st = ctx.ops.borrow_mut();
        (
            std::mem::take(&mut st.rejections),
            std::mem::take(&mut st.handled_later),
        )
    };
    if (pending.is_empty() && handled.is_empty()) || scope.is_execution_terminating() {
        return;
    }
    let (Ok(report), Ok(report_handled)) = (
        get_fn(scope, internals, "unhandledRejection"),
        get_fn(scope, internals, "rejectionHandled"),
    ) else {
        return;
    };
    {
        // Remembered before the events run: a listener may add a handler.
        let mut st = ctx.ops.borrow_mut();
        for (p, r) in &pending {
            if st.reported.len() >= ops::MAX_PENDING_REJECTIONS {
                st.reported.pop_front();
            }
            st.reported.push_back((p.clone(), r.clone()));
        }
    }
    let calls = pending
        .into_iter()
        .map(|e| (report, e))
        .chain(handled.into_iter().map(|e| (report_handled, e)));
    for (report, (promise, reason)) in calls {
        v8::tc_scope!(let tc, scope);
        let undef = v8::undefined(tc).into();
        let args = [
            v8::Local::new(tc, promise).into(),
            v8::Local::new(tc, reason),
        ];
        if report.call(tc, undef, &args).is_none()
            && (tc.has_terminated() || tc.is_execution_terminating())
        {
            tc.rethrow();
            return;
        }
        tc.perform_microtask_checkpoint();
    }
}

/// How often a pending request-body read is polled.
const BODY_POLL: Duration = Duration::from_millis(1);

/// Resolves a pending `readBody()` when the body source has something.
fn feed_body(scope: &mut v8::PinScope<'_, '_>, ctx: &Loop<'_>) {
    let waiter = {
        let mut st = ctx.ops.borrow_mut();
        if st.body_waiter.is_none() {
            return;
        }
        let Some(src) = st.body.as_mut() else { return };
        match src.poll() {
            crate::tenant::BodyPoll::Pending => return,
            other => st.body_waiter.take().map(|w| (w, other)),
        }
    };
    let Some((waiter, poll)) = waiter else { return };
    let resolver = v8::Local::new(scope, waiter);
    match poll {
        crate::tenant::BodyPoll::Chunk(bytes) => {
            match boundary::bytes_to_u8a(scope, ctx.ab, &bytes) {
                Some(v) => {
                    resolver.resolve(scope, v);
                }
                None => {
                    let msg = format!(
                    "a request body chunk of {} bytes does not fit the ArrayBuffer memory limit of {} bytes",
                    bytes.len(),
                    ctx.ab.limit()
                );
                    if let Some(m) = v8::String::new(scope, &msg) {
                        let e = v8::Exception::range_error(scope, m);
                        resolver.reject(scope, e);
                    }
                }
            }
        }
        crate::tenant::BodyPoll::End | crate::tenant::BodyPoll::Pending => {
            let null = v8::null(scope).into();
            resolver.resolve(scope, null);
        }
        crate::tenant::BodyPoll::Error(msg) => {
            if let Some(m) = v8::String::new(scope, &msg) {
                let e = v8::Exception::type_error(scope, m);
                resolver.reject(scope, e);
            }
        }
    }
}

fn wall_kill(ctx: &Loop<'_>) -> Error {
    // The isolate is idle (waiting for a timer), so record the kill here
    // rather than through an interrupt.
    ctx.kill.set_kill(watchdog::Kill {
        kind: LimitKind::Wall,
        limit: ctx.wall_limit.as_millis() as u64,
        used: Some(ctx.wall_limit.as_millis() as u64),
        seq: ctx.kill.seq.load(Ordering::SeqCst),
        forbidden: None,
    });
    Error::Internal("terminated".into())
}

fn get_fn<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    obj: v8::Local<'s, v8::Object>,
    name: &str,
) -> Result<v8::Local<'s, v8::Function>> {
    let key = v8_str(scope, name)?;
    obj.get(scope, key.into())
        .and_then(|f| v8::Local::<v8::Function>::try_from(f).ok())
        .ok_or_else(|| Error::Internal(format!("internals.{name} missing")))
}

/// A JS string, or an internal error if it is too long for V8.
pub(crate) fn v8_str<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    s: &str,
) -> Result<v8::Local<'s, v8::String>> {
    v8::String::new(scope, s).ok_or_else(|| Error::Internal("string too long for V8".into()))
}

/// Calls `internals[name](...args)`; an exception or termination becomes an error.
fn call_internal<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    name: &str,
    args: &[v8::Local<'s, v8::Value>],
) -> Result<v8::Local<'s, v8::Value>> {
    let f = get_fn(scope, internals, name)?;
    v8::tc_scope!(let tc, scope);
    let undef = v8::undefined(tc).into();
    match f.call(tc, undef, args) {
        Some(v) => Ok(v),
        None => Err(call_error(tc, internals)),
    }
}

fn promise<'s>(v: v8::Local<'s, v8::Value>, what: &str) -> Result<v8::Local<'s, v8::Promise>> {
    v8::Local::<v8::Promise>::try_from(v)
        .map_err(|_| Error::Internal(format!("internals.{what} did not return a promise")))
}

#[allow(clippy::too_many_arguments)]
fn start_invoke<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    ctx: &Loop<'_>,
    ns: v8::Local<'s, v8::Object>,
    entry: &str,
    inv: &Invocation,
    env: &serde_json::Value,
    streamed: bool,
) -> Result<v8::Local<'s, v8::Promise>> {
    let entry_v = v8_str(scope, entry)?;
    let (request, args) = match inv {
        Invocation::Fetch(req) => {
            let [method, url, headers, body] =
                boundary::request_args(scope, ctx.ab, ctx.tenant, req)?;
            let streamed = v8::Boolean::new(scope, streamed).into();
            let request = call_internal(
                scope,
                internals,
                "makeRequest",
                &[method, url, headers, body, streamed],
            )?;
            (request, v8::Array::new(scope, 0).into())
        }
        Invocation::Call(args) => (
            v8::null(scope).into(),
            boundary::json_to_v8(scope, &serde_json::Value::Array(args.clone()))?,
        ),
    };
    let env_v = boundary::json_to_v8(scope, env)?;
    let p = call_internal(
        scope,
        internals,
        "invoke",
        &[ns.into(), entry_v.into(), request, args, env_v],
    )?;
    promise(p, "invoke")
}

fn take_background<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
) -> Result<Option<v8::Local<'s, v8::Promise>>> {
    let v = call_internal(scope, internals, "takeBackground", &[])?;
    Ok(v8::Local::<v8::Promise>::try_from(v).ok())
}

fn read_chunk<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    reader: v8::Local<'s, v8::Object>,
) -> Result<v8::Local<'s, v8::Promise>> {
    let p = call_internal(scope, internals, "readChunk", &[reader.into()])?;
    promise(p, "readChunk")
}

/// Produces a code cache for `source` in a plain isolate without isola's
/// snapshot: bytes V8 must reject in a tenant isolate. For tests of the
/// rejection path.
pub(crate) fn foreign_code_cache(source: &str, module: bool) -> Option<Vec<u8>> {
    platform::init();
    let mut isolate = v8::Isolate::new(v8::CreateParams::default());
    v8::scope!(let scope, &mut isolate);
    let context = v8::Context::new(scope, Default::default());
    let scope = &mut v8::ContextScope::new(scope, context);
    let src = v8::String::new(scope, source)?;
    let name = v8::String::new(scope, "foreign.js")?;
    let origin = v8::ScriptOrigin::new(
        scope,
        name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        module,
        None,
    );
    let mut s = v8::script_compiler::Source::new(src, Some(&origin));
    if module {
        let m = v8::script_compiler::compile_module(scope, &mut s)?;
        Some(
            m.get_unbound_module_script(scope)
                .create_code_cache()?
                .to_vec(),
        )
    } else {
        let script = v8::script_compiler::compile(
            scope,
            &mut s,
            v8::script_compiler::CompileOptions::NoCompileOptions,
            v8::script_compiler::NoCacheReason::NoReason,
        )?;
        Some(
            script
                .get_unbound_script(scope)
                .create_code_cache()?
                .to_vec(),
        )
    }
}

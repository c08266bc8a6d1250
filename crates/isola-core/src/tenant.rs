//! [`Tenant`]: one customer's code in its own V8 isolate.
//!
//! A tenant owns exactly one isolate (created from the base snapshot) with
//! one context, plus its code, limits and accounting. It is not `Send`: it
//! lives on the thread that created it. After a limit kill its isolate is
//! disposed and a fresh one is created (from the snapshot, code from the code
//! cache) on the next invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accounting::TenantStats;
use crate::bundle::TenantCode;
use crate::code_cache::CacheEvent;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::runtime::{CacheCtx, JsRuntime, LoadStep, RunMeasure, Step};

/// Severity of a console line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleLevel {
    /// `console.log`, `info`, `debug`.
    Log,
    /// `console.warn`, `error`, `trace`, failed `assert`.
    Error,
}

/// Where a tenant's console output goes.
pub type ConsoleSink = Arc<dyn Fn(ConsoleLevel, &str) + Send + Sync>;

/// A console sink that writes `[tenant] line` to stderr.
pub fn stderr_console(tenant: &str) -> ConsoleSink {
    let prefix = tenant.to_string();
    Arc::new(move |_level, line| eprintln!("[{prefix}] {line}"))
}

/// An HTTP request handed to a tenant's `fetch` handler.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Header name/value pairs.
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(with = "body_text")]
    pub body: Vec<u8>,
}

impl Default for HttpRequest {
    fn default() -> Self {
        HttpRequest {
            method: "GET".into(),
            url: "http://localhost/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

impl HttpRequest {
    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest {
            url: url.into(),
            ..HttpRequest::default()
        }
    }
}

mod body_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// The `Response` a `fetch` handler returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty when `streamed`).
    pub body: Vec<u8>,
    /// The handler returned a `ReadableStream` body: pull it with
    /// [`Tenant::poll_body`] (the blocking [`Tenant::invoke`] collects it).
    pub streamed: bool,
}

/// What a request body source has for the handler.
#[derive(Debug)]
pub enum BodyPoll {
    /// The next bytes.
    Chunk(Vec<u8>),
    /// Nothing yet; poll again later.
    Pending,
    /// The body is complete.
    End,
    /// The body broke off (e.g. over the size limit); the handler's read rejects with this.
    Error(String),
}

/// A request body that arrives while the handler runs (`request.body`
/// pulls from it). Polled on the tenant's thread without blocking.
pub trait BodySource: Send {
    /// The next piece of the body.
    fn poll(&mut self) -> BodyPoll;
}

/// One step of pulling a streamed response body.
#[derive(Debug)]
pub enum BodyProgress {
    /// The next bytes.
    Chunk(Vec<u8>),
    /// Nothing before this instant; call again then.
    Wait(Instant),
    /// The body is complete.
    End,
    /// The stream failed (an exception or a limit); the response is cut.
    Failed(Error),
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What an invocation returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A `fetch` handler's `Response`.
    Response(HttpResponse),
    /// Any other value, as JSON (`undefined` becomes `null`).
    Json(serde_json::Value),
    /// A `Uint8Array` result.
    Bytes(Vec<u8>),
}

impl Output {
    /// The output as JSON: responses become `{status, headers, body}` (body as text).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Output::Json(v) => v.clone(),
            Output::Bytes(b) => serde_json::Value::Array(b.iter().map(|x| (*x).into()).collect()),
            Output::Response(r) => serde_json::json!({
                "status": r.status,
                "headers": r.headers.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&r.body),
            }),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Call `export default { fetch(request, env, ctx) }` with this request.
    Fetch(HttpRequest),
    /// Call the default-exported function (or a script's global `handler`)
    /// with these arguments; with no handler, return the module's default
    /// export or the script's completion value.
    Call(Vec<serde_json::Value>),
}

/// A tenant's name, limits, environment and console.
#[derive(Clone)]
pub struct TenantConfig {
    /// The tenant's name (used in errors and logs).
    pub name: String,
    /// Budgets.
    pub limits: Limits,
    /// The `env` object handed to handlers (variables and secrets).
    pub env: serde_json::Value,
    /// Where console output goes (default: stderr, prefixed with the name).
    pub console: Option<ConsoleSink>,
    /// What the tenant may `fetch()` (deny by default).
    pub fetch: Arc<crate::outbound::FetchPolicy>,
    /// The host's HTTP client for `fetch()`; without one `fetch()` throws.
    pub outbound: Option<Arc<dyn crate::outbound::Outbound>>,
    /// Whether the tenant has WebAssembly (its memories and compiled code
    /// then count in its ArrayBuffer budget; off by default).
    pub webassembly: bool,
}

impl TenantConfig {
    /// Default limits, empty env, console to stderr.
    pub fn new(name: impl Into<String>) -> Self {
        TenantConfig {
            name: name.into(),
            limits: Limits::default(),
            env: serde_json::json!({}),
            console: None,
            fetch: Arc::default(),
            outbound: None,
            webassembly: false,
        }
    }

    /// Gives the tenant WebAssembly (counted in its ArrayBuffer budget).
    pub fn webassembly(mut self, on: bool) -> Self {
        self.webassembly = on;
        self
    }

    /// Lets the tenant `fetch()` through `outbound` within `policy`.
    pub fn fetch(
        mut self,
        policy: crate::outbound::FetchPolicy,
        outbound: Arc<dyn crate::outbound::Outbound>,
    ) -> Self {
        self.fetch = Arc::new(policy);
        self.outbound = Some(outbound);
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the console sink.
    pub fn console(mut self, sink: ConsoleSink) -> Self {
        self.console = Some(sink);
        self
    }

    /// Sets the env object.
    pub fn env(mut self, env: serde_json::Value) -> Self {
        self.env = env;
        self
    }
}

impl std::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How loading the tenant's code went (the last time its isolate was created).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadInfo {
    /// Per file: hit, miss or rejected.
    pub cache: Vec<(String, CacheEvent)>,
    /// Creating the isolate and context from the snapshot.
    pub isolate_time: Duration,
    /// Compiling the code (including consuming the cache).
    pub compile_time: Duration,
    /// CPU time of evaluating the top-level code.
    pub startup_cpu: Duration,
    /// Wall time of the whole load.
    pub total_time: Duration,
}

/// The result of one invocation with its measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoked {
    /// What the handler returned.
    pub output: Output,
    /// CPU time of the isolate thread during the invocation.
    pub cpu: Duration,
    /// Wall time of the invocation.
    pub wall: Duration,
    /// Whether the isolate had to be created (and the code loaded) for this call.
    pub cold: bool,
}

/// Where a non-blocking invocation stands.
#[derive(Debug)]
pub enum Progress {
    /// Finished.
    Done(Result<Invoked>),
    /// Waiting for a timer: call [`Tenant::resume`] at or after this instant.
    Wait(Instant),
}

/// One tenant: one isolate, its code, limits and accounting.
pub struct Tenant {
    engine: Engine,
    config: TenantConfig,
    code: TenantCode,
    runtime: Option<JsRuntime>,
    stats: TenantStats,
    load: LoadInfo,
    cold: bool,
    /// A pre-created isolate kept for the first load (see [`Tenant::deferred`]).
    pooled: Option<JsRuntime>,
    /// A cold start whose top-level code waits for a timer, and the invocation waiting for it.
    starting: Option<Box<ColdStart>>,
}

/// The engine's code cache, as the runtime uses it (none when disabled).
fn cache_ctx(engine: &Engine) -> Option<CacheCtx<'_>> {
    let inner = &engine.inner;
    inner.cache.as_deref().map(|store| CacheCtx {
        store,
        fingerprint: &inner.snapshot.fingerprint,
    })
}

/// A cold start in progress (see [`Tenant::begin_with_body`]).
struct ColdStart {
    rt: JsRuntime,
    t0: Instant,
    isolate_time: Duration,
    inv: Invocation,
    body: Option<Box<dyn BodySource>>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.config.name)
            .field("entry", &self.code.entry())
            .field("warm", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    fn unloaded(engine: &Engine, config: TenantConfig, code: TenantCode) -> Self {
        Tenant {
            engine: engine.clone(),
            config,
            code,
            runtime: None,
            stats: TenantStats::default(),
            load: LoadInfo::default(),
            cold: false,
            pooled: None,
            starting: None,
        }
    }

    /// A tenant whose isolate is created, and code loaded, by its first
    /// invocation, without blocking: [`Tenant::begin`] then returns
    /// [`Progress::Wait`] while top-level code waits for timers, so a worker
    /// thread serves its other tenants meanwhile. Takes a pre-created isolate
    /// from `pool` when one fits; returns whether it did. Load errors are
    /// reported by that first invocation.
    pub fn deferred(
        engine: &Engine,
        config: TenantConfig,
        code: TenantCode,
        pool: &mut IsolatePool,
    ) -> (Self, bool) {
        let mut t = Tenant::unloaded(engine, config, code);
        t.pooled = pool.take(t.config.limits.heap_bytes);
        let used = t.pooled.is_some();
        (t, used)
    }

    /// Creates the tenant's isolate from the base snapshot and loads `code`
    /// (compile with the code cache, evaluate top-level code under the
    /// startup budget). Fails on syntax errors, bad imports, a top-level
    /// exception or a broken limit.
    pub fn new(engine: &Engine, config: TenantConfig, code: TenantCode) -> Result<Self> {
        let mut t = Tenant::unloaded(engine, config, code);
        t.runtime_from(None)?;
        Ok(t)
    }

    /// Like [`Tenant::new`], but takes a pre-created isolate from `pool`
    /// when one fits (same heap limit), skipping isolate creation. Returns
    /// whether a pooled isolate was used.
    pub fn new_pooled(
        engine: &Engine,
        config: TenantConfig,
        code: TenantCode,
        pool: &mut IsolatePool,
    ) -> Result<(Self, bool)> {
        let mut t = Tenant::unloaded(engine, config, code);
        let pooled = pool.take(t.config.limits.heap_bytes);
        let used = pooled.is_some();
        t.runtime_from(pooled)?;
        Ok((t, used))
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The tenant's limits.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The tenant's code.
    pub fn code(&self) -> &TenantCode {
        &self.code
    }

    /// Accounting so far (a copy).
    pub fn stats(&self) -> TenantStats {
        self.stats.clone()
    }

    /// Heap bytes in use after the last invocation (cheap; no stats copy).
    pub fn heap_used_bytes(&self) -> u64 {
        self.stats.heap.used_bytes
    }

    /// How the last isolate creation and code load went.
    pub fn load_info(&self) -> &LoadInfo {
        &self.load
    }

    /// Whether an isolate is alive (false after a limit kill until the next call).
    pub fn is_warm(&self) -> bool {
        self.runtime.is_some()
    }

    /// Runs a full, memory-reducing garbage collection in the tenant's
    /// isolate (e.g. when the host is under memory pressure).
    pub fn collect_garbage(&mut self) {
        if let Some(rt) = self.runtime.as_mut() {
            rt.collect_garbage();
            let heap = rt.heap_usage();
            self.stats.record_heap(heap);
        }
        crate::runtime::release_freed_memory();
    }

    /// Drops the isolate (e.g. to free memory); the next call recreates it.
    pub fn evict(&mut self) {
        self.runtime = None;
    }

    /// The tenant's console sink (stderr, prefixed with its name, by default).
    fn console(&self) -> ConsoleSink {
        self.config
            .console
            .clone()
            .unwrap_or_else(|| stderr_console(&self.config.name))
    }

    /// Drops a runtime that was killed or abandoned; the next call recreates it.
    fn drop_unhealthy_runtime(&mut self) {
        if self.runtime.as_ref().is_some_and(|r| !r.is_healthy()) {
            self.runtime = None;
            crate::runtime::release_freed_memory();
        }
    }

    /// Creates (or adopts `pooled`) the runtime and loads the code into it.
    fn runtime_from(&mut self, pooled: Option<JsRuntime>) -> Result<()> {
        self.runtime = None;
        let t0 = Instant::now();
        let mut rt = self.new_runtime(pooled)?;
        let isolate_time = t0.elapsed();
        match rt.load(&self.code, cache_ctx(&self.engine).as_ref()) {
            Ok(report) => {
                self.loaded(rt, report, t0, isolate_time);
                Ok(())
            }
            Err(e) => {
                self.record_error(&e);
                Err(e)
            }
        }
    }

    /// A new runtime (or `pooled`, adopted) for this tenant, code not loaded.
    fn new_runtime(&mut self, pooled: Option<JsRuntime>) -> Result<JsRuntime> {
        let console = self.console();
        let adopted = pooled.and_then(|mut rt| {
            rt.adopt(&self.config.name, &self.config.limits, console.clone())
                .then_some(rt)
        });
        let mut rt = match adopted {
            Some(rt) => rt,
            None => {
                let inner = &self.engine.inner;
                JsRuntime::new(
                    inner.snapshot.blob,
                    &self.config.name,
                    &self.config.limits,
                    console,
                    inner.watchdog.clone(),
                )?
            }
        };
        rt.set_fetch(
            self.config
                .outbound
                .clone()
                .map(|o| (self.config.fetch.clone(), o)),
        );
        if self.config.webassembly {
            rt.set_webassembly()?;
        }
        self.stats.isolate_creations += 1;
        Ok(rt)
    }

    /// Records a finished load and makes `rt` the tenant's runtime.
    fn loaded(
        &mut self,
        mut rt: JsRuntime,
        report: crate::runtime::LoadReport,
        t0: Instant,
        isolate_time: Duration,
    ) {
        for (_, e) in &report.cache_events {
            self.stats.record_cache(*e);
        }
        self.stats.compile_time += report.compile_time;
        self.stats.startup_cpu += report.startup_cpu;
        self.stats.record_heap(rt.heap_usage());
        self.load = LoadInfo {
            cache: report.cache_events,
            isolate_time,
            compile_time: report.compile_time,
            startup_cpu: report.startup_cpu,
            total_time: t0.elapsed(),
        };
        self.runtime = Some(rt);
    }

    /// Drives a cold start one step; starts its invocation once loaded.
    fn cold_step(&mut self, mut cs: Box<ColdStart>, step: LoadStep) -> Progress {
        match step {
            LoadStep::Wait(until) => {
                self.starting = Some(cs);
                Progress::Wait(until)
            }
            LoadStep::Done(Err(e)) => {
                self.record_error(&e);
                crate::runtime::release_freed_memory();
                Progress::Done(Err(e))
            }
            LoadStep::Done(Ok(report)) => {
                let (inv, body) = (cs.inv, cs.body.take());
                self.loaded(cs.rt, report, cs.t0, cs.isolate_time);
                self.cold = true;
                let Some(rt) = self.runtime.as_mut() else {
                    return Progress::Done(Err(Error::Internal("no runtime after a load".into())));
                };
                let step = rt.start(&inv, &self.config.env, body);
                self.after(step)
            }
        }
    }

    fn record_error(&mut self, e: &Error) {
        *self
            .stats
            .errors
            .entry(e.kind_name().to_string())
            .or_default() += 1;
        if let Error::Limit(l) = e {
            *self
                .stats
                .terminations
                .entry(l.kind.name().to_string())
                .or_default() += 1;
        }
    }

    /// Runs one invocation to completion, sleeping while it waits for timers.
    /// A broken limit returns [`Error::Limit`] and the isolate is recreated
    /// on the next call; an uncaught exception returns [`Error::Js`] and the
    /// isolate stays.
    pub fn invoke(&mut self, inv: Invocation) -> Result<Invoked> {
        let mut progress = self.begin(inv);
        loop {
            match progress {
                Progress::Done(mut result) => {
                    if let Ok(Invoked {
                        output: Output::Response(r),
                        ..
                    }) = &mut result
                    {
                        if r.streamed {
                            if let Err(e) = self.collect_body(r) {
                                result = Err(e);
                            }
                        }
                    }
                    // Let ctx.waitUntil work finish (within its wall deadline).
                    while let Some(until) = self.background_wake() {
                        let now = Instant::now();
                        if until > now {
                            std::thread::sleep(until - now);
                        }
                        let _ = self.poll_background(); // counted and logged there
                    }
                    return result;
                }
                Progress::Wait(until) => {
                    let now = Instant::now();
                    if until > now {
                        std::thread::sleep(until - now);
                    }
                    progress = self.resume();
                }
            }
        }
    }

    /// Starts an invocation without blocking: it runs until it finishes or
    /// waits for a timer. On [`Progress::Wait`], call [`Tenant::resume`] at or
    /// after the given instant; meanwhile the thread can serve other tenants.
    /// One invocation at a time per tenant: queue others until `Done`.
    pub fn begin(&mut self, inv: Invocation) -> Progress {
        self.begin_with_body(inv, None)
    }

    /// Like [`Tenant::begin`], with a request body that arrives while the
    /// handler runs (for `Invocation::Fetch`; the request's `body` is ignored).
    pub fn begin_with_body(
        &mut self,
        inv: Invocation,
        body: Option<Box<dyn BodySource>>,
    ) -> Progress {
        self.stats.invocations += 1;
        if self.starting.is_some() {
            return Progress::Done(Err(Error::Internal(
                "an invocation is already in flight on this tenant".into(),
            )));
        }
        if !self.runtime.as_ref().is_some_and(|r| r.is_healthy()) {
            // Cold: create the isolate and load the code in non-blocking steps.
            self.runtime = None;
            let t0 = Instant::now();
            let pooled = self.pooled.take();
            let mut rt = match self.new_runtime(pooled) {
                Ok(rt) => rt,
                Err(e) => {
                    self.record_error(&e);
                    return Progress::Done(Err(e));
                }
            };
            let isolate_time = t0.elapsed();
            let step = rt.load_begin(&self.code, cache_ctx(&self.engine).as_ref());
            let cs = Box::new(ColdStart {
                rt,
                t0,
                isolate_time,
                inv,
                body,
            });
            return self.cold_step(cs, step);
        }
        self.cold = false;
        let Some(rt) = self.runtime.as_mut() else {
            return Progress::Done(Err(Error::Internal("no runtime after creation".into())));
        };
        let step = rt.start(&inv, &self.config.env, body);
        self.after(step)
    }

    /// Continues the invocation started by [`Tenant::begin`].
    pub fn resume(&mut self) -> Progress {
        if let Some(mut cs) = self.starting.take() {
            let step = cs.rt.load_resume(cache_ctx(&self.engine).as_ref());
            return self.cold_step(cs, step);
        }
        let Some(rt) = self.runtime.as_mut() else {
            return Progress::Done(Err(Error::Internal("no invocation in flight".into())));
        };
        let step = rt.resume();
        self.after(step)
    }

    /// Pulls the next piece of a streamed response body (after a `Done`
    /// whose response has `streamed` set). The tenant stays busy until `End`
    /// or `Failed`.
    pub fn poll_body(&mut self) -> BodyProgress {
        let Some(rt) = self.runtime.as_mut() else {
            return BodyProgress::Failed(Error::Internal("no streamed response".into()));
        };
        let step = rt.poll_body();
        if let BodyProgress::Failed(e) = &step {
            self.record_error(e);
            if let Error::Limit(l) = e {
                let sink = self.console();
                sink(
                    ConsoleLevel::Error,
                    &format!("isola: response stream stopped: {l}"),
                );
            }
            self.drop_unhealthy_runtime();
        }
        step
    }

    /// Abandons a streamed response (e.g. the client went away).
    pub fn cancel_body(&mut self) {
        if let Some(rt) = self.runtime.as_mut() {
            rt.cancel_body();
        }
    }

    /// Collects a streamed response whole, up to the tenant's ArrayBuffer
    /// budget (the bytes are held at once, as a buffered body would be).
    fn collect_body(&mut self, r: &mut HttpResponse) -> Result<()> {
        let max = self.config.limits.external_memory_bytes;
        loop {
            match self.poll_body() {
                BodyProgress::Chunk(c) => {
                    let total = (r.body.len() + c.len()) as u64;
                    if total > max {
                        self.cancel_body();
                        let e = Error::Limit(crate::error::LimitError {
                            tenant: self.config.name.clone(),
                            kind: crate::limits::LimitKind::ExternalMemory,
                            limit: max,
                            used: Some(total),
                            report: None,
                        });
                        self.record_error(&e);
                        return Err(e);
                    }
                    r.body.extend_from_slice(&c);
                }
                BodyProgress::Wait(until) => {
                    let now = Instant::now();
                    if until > now {
                        std::thread::sleep(until - now);
                    }
                }
                BodyProgress::End => {
                    r.streamed = false;
                    return Ok(());
                }
                BodyProgress::Failed(e) => return Err(e),
            }
        }
    }

    /// When work handed to `ctx.waitUntil` needs driving next (while no
    /// invocation is in flight); `None` when there is none.
    pub fn background_wake(&self) -> Option<Instant> {
        self.runtime.as_ref().and_then(|r| r.background_wake())
    }

    /// Drives `ctx.waitUntil` work. A limit it breaks is counted like any
    /// termination, returned (so a host can quarantine the tenant), and its
    /// isolate is recreated on the next call.
    pub fn poll_background(&mut self) -> Result<()> {
        let Some(rt) = self.runtime.as_mut() else {
            return Ok(());
        };
        let r = rt.poll_background();
        if let Err(e) = &r {
            self.record_error(e);
            self.drop_unhealthy_runtime();
        }
        r
    }

    /// Whether an invocation is in flight (begun and not yet done).
    pub fn is_busy(&self) -> bool {
        self.starting.is_some() || self.runtime.as_ref().is_some_and(|r| r.is_busy())
    }

    fn after(&mut self, step: Step) -> Progress {
        match step {
            Step::Wait(until) => Progress::Wait(until),
            Step::Done(result, m) => Progress::Done(self.finish(result, m)),
        }
    }

    fn finish(&mut self, result: Result<Output>, m: RunMeasure) -> Result<Invoked> {
        let cold = self.cold;
        let Some(rt) = self.runtime.as_mut() else {
            return Err(Error::Internal(
                "runtime vanished during an invocation".into(),
            ));
        };
        let heap = rt.heap_usage();
        self.stats.cpu.observe(m.cpu);
        self.stats.wall.observe(m.wall);
        self.stats.record_heap(heap);
        self.drop_unhealthy_runtime();
        match result {
            Ok(output) => Ok(Invoked {
                output,
                cpu: m.cpu,
                wall: m.wall,
                cold,
            }),
            Err(mut e) => {
                if let Error::Limit(l) = &mut e {
                    if let Some(r) = l.report.as_mut() {
                        r.cpu_ms = m.cpu.as_millis() as u64;
                        r.wall_ms = m.wall.as_millis() as u64;
                    }
                    let sink = self.console();
                    let report = l
                        .report
                        .as_ref()
                        .map(|r| format!("\n{r}"))
                        .unwrap_or_default();
                    sink(ConsoleLevel::Error, &format!("isola: {l}{report}"));
                }
                self.record_error(&e);
                Err(e)
            }
        }
    }

    /// Shorthand for `invoke(Invocation::Fetch(req))`.
    pub fn fetch(&mut self, req: HttpRequest) -> Result<Invoked> {
        self.invoke(Invocation::Fetch(req))
    }

    /// Shorthand for `invoke(Invocation::Call(args))`.
    pub fn call(&mut self, args: Vec<serde_json::Value>) -> Result<Invoked> {
        self.invoke(Invocation::Call(args))
    }
}

/// Blank isolates created ahead of time from the base snapshot, so a new
/// tenant's first request skips isolate creation. Not `Send`: keep one per
/// thread that creates tenants, and [`IsolatePool::refill`] it when idle.
pub struct IsolatePool {
    engine: Engine,
    limits: Limits,
    ready: Vec<JsRuntime>,
    target: usize,
}

impl std::fmt::Debug for IsolatePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolatePool")
            .field("ready", &self.ready.len())
            .field("target", &self.target)
            .finish()
    }
}

impl IsolatePool {
    /// A pool that keeps `target` isolates with `limits.heap_bytes` ready
    /// (only tenants with that heap limit can use them).
    pub fn new(engine: &Engine, limits: Limits, target: usize) -> Self {
        IsolatePool {
            engine: engine.clone(),
            limits,
            ready: Vec::new(),
            target,
        }
    }

    /// Isolates ready now.
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// Whether no isolate is ready.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// Creates one isolate if below target; returns whether it did.
    pub fn refill_one(&mut self) -> Result<bool> {
        if self.ready.len() >= self.target {
            return Ok(false);
        }
        let inner = &self.engine.inner;
        let rt = JsRuntime::new(
            inner.snapshot.blob,
            "(prewarmed)",
            &self.limits,
            Arc::new(|_, _| {}),
            inner.watchdog.clone(),
        )?;
        self.ready.push(rt);
        Ok(true)
    }

    /// Fills the pool up to its target.
    pub fn refill(&mut self) -> Result<()> {
        while self.refill_one()? {}
        Ok(())
    }

    fn take(&mut self, heap_bytes: u64) -> Option<JsRuntime> {
        if heap_bytes != self.limits.heap_bytes {
            return None;
        }
        self.ready.pop()
    }
}

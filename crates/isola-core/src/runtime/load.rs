//! Loading a tenant's code into a runtime, one non-blocking step at a time.
//!
//! Top-level code may await timers (top-level `await`, a classic script
//! whose completion value is a promise). A load therefore runs in slices
//! like an invocation: [`JsRuntime::load_begin`] compiles, instantiates and
//! starts evaluation, [`JsRuntime::load_resume`] drives it again when its
//! next timer is due, and in between the thread serves other tenants. All
//! slices together are bounded by the startup CPU budget and the wall limit.
//! [`JsRuntime::load`] is the blocking form (deploy validation, `isola run`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{drive, in_context, modules, watchdog, CacheCtx, Drive, JsRuntime, LoadReport, Loop};
use crate::bundle::TenantCode;
use crate::error::{Error, Result};
use crate::limits::LimitKind;

/// Where a load stands after a step.
pub(crate) enum LoadStep {
    /// Loaded (the runtime can serve) or failed.
    Done(Result<LoadReport>),
    /// Top-level code waits for a timer: call `load_resume` at or after this instant.
    Wait(Instant),
}

/// A load whose top-level code has not settled yet.
pub(super) struct Loading {
    module: Option<v8::Global<v8::Module>>,
    value: Option<v8::Global<v8::Value>>,
    produce: Vec<modules::Produce>,
    report: LoadReport,
    deadline: Instant,
    cpu: Duration,
}

impl JsRuntime {
    /// Compiles (with the code cache), instantiates and evaluates the
    /// tenant's code, sleeping while top-level code waits for timers.
    pub fn load(&mut self, code: &TenantCode, cache: Option<&CacheCtx<'_>>) -> Result<LoadReport> {
        let mut step = self.load_begin(code, cache);
        loop {
            match step {
                LoadStep::Done(r) => return r,
                LoadStep::Wait(until) => {
                    let now = Instant::now();
                    if until > now {
                        std::thread::sleep(until - now);
                    }
                    step = self.load_resume(cache);
                }
            }
        }
    }

    /// Starts loading `code`; never waits for a timer.
    pub fn load_begin(&mut self, code: &TenantCode, cache: Option<&CacheCtx<'_>>) -> LoadStep {
        if code.size() > self.limits.code_size_bytes {
            return LoadStep::Done(Err(self.limit_error(
                LimitKind::CodeSize,
                self.limits.code_size_bytes,
                Some(code.size()),
                None,
            )));
        }
        if self.is_busy() {
            return LoadStep::Done(Err(Error::Internal("load on a busy runtime".into())));
        }
        self.entry = code.entry().to_string();
        self.begin();
        self.loading = Some(Loading {
            module: None,
            value: None,
            produce: Vec::new(),
            report: LoadReport::default(),
            deadline: Instant::now() + self.limits.wall,
            cpu: Duration::ZERO,
        });
        self.entered(|rt| rt.load_slice(Some(code), cache))
    }

    /// Continues a load that waited for a timer.
    pub fn load_resume(&mut self, cache: Option<&CacheCtx<'_>>) -> LoadStep {
        if self.loading.is_none() {
            return LoadStep::Done(Err(Error::Internal("no load in progress".into())));
        }
        self.entered(|rt| rt.load_slice(None, cache))
    }

    fn load_slice(&mut self, code: Option<&TenantCode>, cache: Option<&CacheCtx<'_>>) -> LoadStep {
        let Some(mut ld) = self.loading.take() else {
            return LoadStep::Done(Err(Error::Internal("no load in progress".into())));
        };
        let guard = self.watchdog.watch_slice(
            &self.kill,
            self.seq,
            LimitKind::StartupCpu,
            self.limits.startup_cpu,
            ld.cpu,
            ld.deadline,
            self.limits.wall,
            self.limits.termination_grace,
        );
        let cpu0 = watchdog::thread_cpu_time();
        let outcome = {
            in_context!(self, ld.deadline, scope, internals, ctx);
            step(scope, internals, &ctx, &mut ld, code, cache)
        };
        drop(guard);
        ld.cpu += watchdog::thread_cpu_time().saturating_sub(cpu0);
        ld.report.startup_cpu = ld.cpu;
        match outcome {
            Ok(Err(until)) => {
                self.loading = Some(ld);
                self.kill.running.store(false, Ordering::SeqCst);
                LoadStep::Wait(until)
            }
            Ok(Ok(ns)) => match self.end(Ok(())) {
                Ok(()) => {
                    self.namespace = Some(ns);
                    LoadStep::Done(Ok(ld.report))
                }
                Err(e) => LoadStep::Done(Err(e)),
            },
            Err(e) => LoadStep::Done(self.end(Err(e))),
        }
    }
}

/// One slice of a load: starts evaluation (first slice) or drives it.
/// `Ok(Err(instant))`: waiting for a timer; `Ok(Ok(ns))`: loaded.
fn step<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    ctx: &Loop<'_>,
    ld: &mut Loading,
    code: Option<&TenantCode>,
    cache: Option<&CacheCtx<'_>>,
) -> Result<std::result::Result<v8::Global<v8::Object>, Instant>> {
    let (module, value) = match code {
        Some(code) => {
            let started = modules::start(scope, internals, code, cache, &mut ld.report)?;
            ld.produce = started.produce;
            (started.module, started.value)
        }
        None => {
            let value = ld
                .value
                .as_ref()
                .ok_or_else(|| Error::Internal("a load without a value".into()))?;
            (
                ld.module.as_ref().map(|m| v8::Local::new(scope, m)),
                v8::Local::new(scope, value),
            )
        }
    };
    let settled = match v8::Local::<v8::Promise>::try_from(value) {
        Ok(p) => match drive(scope, internals, p, ctx)? {
            Drive::Settled(v) => v,
            Drive::Wait(until) => {
                ld.module = module.map(|m| v8::Global::new(scope, m));
                ld.value = Some(v8::Global::new(scope, value));
                return Ok(Err(until));
            }
        },
        Err(_) => value,
    };
    let produce = std::mem::take(&mut ld.produce);
    let ns = modules::finish(scope, internals, module, settled, produce, cache)?;
    Ok(Ok(v8::Global::new(scope, ns)))
}

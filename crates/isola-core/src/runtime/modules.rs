//! Compiling and evaluating tenant code, with the code cache.
//!
//! Every file of a module graph is compiled up front (consuming a cache entry
//! when one is found), then the graph is instantiated through a resolve
//! callback that only looks inside the tenant's bundle, then evaluated. Cache
//! entries are produced after evaluation, so they include the functions the
//! top-level code compiled lazily.

use std::collections::HashMap;
use std::time::Instant;

use super::{call_error, errors, v8_str, CacheCtx, LoadReport};
use crate::bundle::{CodeKind, TenantCode};
use crate::code_cache::{CacheEvent, CacheKey};
use crate::error::{Error, Result};

/// The module graph of one load, kept in an isolate slot for the resolve callback.
#[derive(Default)]
struct ModuleMap {
    by_hash: HashMap<i32, String>,
    by_path: HashMap<String, v8::Global<v8::Module>>,
    code: Option<TenantCode>,
}

/// A compiled unit whose cache entry must be written after evaluation.
pub(super) enum Produce {
    Module(v8::Global<v8::Module>, CacheKey),
    Script(v8::Global<v8::UnboundScript>, CacheKey),
}

fn lookup(
    cache: Option<&CacheCtx<'_>>,
    source: &str,
    kind: &str,
) -> (Option<CacheKey>, Option<Vec<u8>>) {
    let Some(c) = cache else { return (None, None) };
    let key = c.key(source, kind);
    let bytes = match c.store.get(&key) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("code cache lookup failed, compiling without it: {e}");
            None
        }
    };
    (Some(key), bytes)
}

fn settle_event(
    cache: Option<&CacheCtx<'_>>,
    key: &Option<CacheKey>,
    had: bool,
    rejected: bool,
) -> CacheEvent {
    let event = match (had, rejected) {
        (false, _) => CacheEvent::Miss,
        (true, true) => CacheEvent::Rejected,
        (true, false) => CacheEvent::Hit,
    };
    if let (Some(c), Some(k)) = (cache, key) {
        if event == CacheEvent::Rejected {
            if let Err(e) = c.store.remove(k) {
                tracing::warn!("could not delete a rejected code cache entry: {e}");
            }
        }
        if let Err(e) = c.store.record(event) {
            tracing::warn!("could not record a code cache event: {e}");
        }
    }
    event
}

fn origin<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    module: bool,
) -> Option<v8::ScriptOrigin<'s>> {
    let name = v8::String::new(scope, name)?;
    Some(v8::ScriptOrigin::new(
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
    ))
}

fn source_string<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    source: &str,
) -> Result<v8::Local<'s, v8::String>> {
    v8::String::new(scope, source)
        .ok_or_else(|| Error::InvalidCode(format!("{name}: source too large for a V8 string")))
}

fn compile_module<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    source: &str,
    cache: Option<&CacheCtx<'_>>,
    report: &mut LoadReport,
    produce: &mut Vec<Produce>,
) -> Result<v8::Local<'s, v8::Module>> {
    let (key, bytes) = lookup(cache, source, "module");
    let src = source_string(scope, name, source)?;
    let origin = origin(scope, name, true).ok_or_else(|| Error::Internal("origin".into()))?;
    let t0 = Instant::now();
    let (module, rejected) = {
        v8::tc_scope!(let tc, scope);
        let mut s = match &bytes {
            Some(b) => v8::script_compiler::Source::new_with_cached_data(
                src,
                Some(&origin),
                v8::CachedData::new(b),
            ),
            None => v8::script_compiler::Source::new(src, Some(&origin)),
        };
        let opts = if bytes.is_some() {
            v8::script_compiler::CompileOptions::ConsumeCodeCache
        } else {
            v8::script_compiler::CompileOptions::NoCompileOptions
        };
        let m = v8::script_compiler::compile_module2(
            tc,
            &mut s,
            opts,
            v8::script_compiler::NoCacheReason::NoReason,
        );
        let rejected = s.get_cached_data().map(|d| d.rejected()).unwrap_or(false);
        match m {
            Some(m) => (m, rejected),
            None => {
                let (msg, exc) = (tc.message(), tc.exception());
                return Err(errors::syntax_error(tc, name, msg, exc));
            }
        }
    };
    report.compile_time += t0.elapsed();
    let event = settle_event(cache, &key, bytes.is_some(), rejected);
    report.cache_events.push((name.to_string(), event));
    if let (Some(k), true) = (key, event != CacheEvent::Hit) {
        produce.push(Produce::Module(v8::Global::new(scope, module), k));
    }
    Ok(module)
}

fn module_requests(scope: &mut v8::PinScope<'_, '_>, module: v8::Local<v8::Module>) -> Vec<String> {
    let reqs = module.get_module_requests();
    let mut out = Vec::with_capacity(reqs.length());
    for i in 0..reqs.length() {
        let Some(data) = reqs.get(scope, i) else {
            continue;
        };
        if let Ok(req) = v8::Local::<v8::ModuleRequest>::try_from(data) {
            out.push(req.get_specifier().to_rust_string_lossy(scope));
        }
    }
    out
}

fn resolve_callback<'s>(
    context: v8::Local<'s, v8::Context>,
    specifier: v8::Local<'s, v8::String>,
    _attributes: v8::Local<'s, v8::FixedArray>,
    referrer: v8::Local<'s, v8::Module>,
) -> Option<v8::Local<'s, v8::Module>> {
    // SAFETY: V8 calls this during `instantiate_module`, on the isolate's
    // thread, with a live context; the callback scope only borrows it.
    v8::callback_scope!(unsafe scope, context);
    let spec = specifier.to_rust_string_lossy(scope);
    let found = {
        let map = scope.get_slot::<ModuleMap>()?;
        let from = map.by_hash.get(&referrer.get_identity_hash().get())?;
        let code = map.code.as_ref()?;
        code.resolve(from, &spec)
            .ok()
            .and_then(|p| map.by_path.get(&p).cloned())
    };
    match found {
        Some(g) => Some(v8::Local::new(scope, g)),
        None => {
            let msg = v8::String::new(scope, &format!("cannot resolve import \"{spec}\""))?;
            let exc = v8::Exception::error(scope, msg);
            scope.throw_exception(exc);
            None
        }
    }
}

/// Top-level code that has run up to its first `await` (or to the end).
pub(super) struct Started<'s> {
    /// The module, or `None` for a classic script.
    pub module: Option<v8::Local<'s, v8::Module>>,
    /// The evaluation promise of a module, or a script's completion value.
    pub value: v8::Local<'s, v8::Value>,
    /// Code cache entries to create once evaluation has settled.
    pub produce: Vec<Produce>,
}

/// Compiles, instantiates and starts evaluating `code`. The caller drives
/// `value` (when it is a promise: top-level await, timers during load)
/// without blocking, then calls [`finish`] with the settled value.
pub(super) fn start<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    code: &TenantCode,
    cache: Option<&CacheCtx<'_>>,
    report: &mut LoadReport,
) -> Result<Started<'s>> {
    let mut produce = Vec::new();
    let (module, value) = match code.kind() {
        CodeKind::Module => {
            let (m, v) = load_module(scope, internals, code, cache, report, &mut produce)?;
            (Some(m), v)
        }
        CodeKind::Script => (
            None,
            load_script(scope, internals, code, cache, report, &mut produce)?,
        ),
    };
    Ok(Started {
        module,
        value,
        produce,
    })
}

/// After evaluation settled (`settled`: a script's completion value):
/// checks the module for an error, builds the namespace and writes the code
/// cache entries (which now include the functions top-level code compiled).
pub(super) fn finish<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    module: Option<v8::Local<'s, v8::Module>>,
    settled: v8::Local<'s, v8::Value>,
    produce: Vec<Produce>,
    cache: Option<&CacheCtx<'_>>,
) -> Result<v8::Local<'s, v8::Object>> {
    let ns = match module {
        Some(module) => module_namespace(scope, internals, module)?,
        None => script_namespace(scope, settled)?,
    };
    if let Some(c) = cache {
        for p in produce {
            let (bytes, key) = match p {
                Produce::Module(m, k) => {
                    let m = v8::Local::new(scope, m);
                    (m.get_unbound_module_script(scope).create_code_cache(), k)
                }
                Produce::Script(s, k) => (v8::Local::new(scope, s).create_code_cache(), k),
            };
            if let Some(bytes) = bytes {
                if let Err(e) = c.store.put(&key, &bytes) {
                    tracing::warn!("could not store a code cache entry: {e}");
                }
            }
        }
    }
    Ok(ns)
}

fn load_module<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    code: &TenantCode,
    cache: Option<&CacheCtx<'_>>,
    report: &mut LoadReport,
    produce: &mut Vec<Produce>,
) -> Result<(v8::Local<'s, v8::Module>, v8::Local<'s, v8::Value>)> {
    let mut map = ModuleMap::default();
    let mut queue = vec![code.entry().to_string()];
    let mut entry = None;
    while let Some(path) = queue.pop() {
        if map.by_path.contains_key(&path) {
            continue;
        }
        let source = code
            .source(&path)
            .ok_or_else(|| Error::InvalidCode(format!("missing file {path}")))?;
        let module = compile_module(scope, &path, source, cache, report, produce)?;
        for spec in module_requests(scope, module) {
            let resolved = code.resolve(&path, &spec)?;
            if !map.by_path.contains_key(&resolved) {
                queue.push(resolved);
            }
        }
        map.by_hash
            .insert(module.get_identity_hash().get(), path.clone());
        map.by_path
            .insert(path.clone(), v8::Global::new(scope, module));
        if entry.is_none() {
            entry = Some(module);
        }
    }
    let module = entry.ok_or_else(|| Error::Internal("no entry module".into()))?;
    map.code = Some(code.clone());
    scope.set_slot(map);
    let instantiated = {
        v8::tc_scope!(let tc, scope);
        match module.instantiate_module(tc, resolve_callback) {
            Some(true) => Ok(()),
            _ => Err(call_error(tc, internals)),
        }
    };
    scope.remove_slot::<ModuleMap>();
    instantiated?;
    let result = {
        v8::tc_scope!(let tc, scope);
        match module.evaluate(tc) {
            Some(v) => v,
            None => return Err(call_error(tc, internals)),
        }
    };
    Ok((module, result))
}

fn module_namespace<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    module: v8::Local<'s, v8::Module>,
) -> Result<v8::Local<'s, v8::Object>> {
    if module.get_status() == v8::ModuleStatus::Errored {
        let exc = module.get_exception();
        let msg = v8::Exception::create_message(scope, exc);
        return Err(Error::Js(errors::js_error(
            scope,
            internals,
            exc,
            Some(msg),
        )));
    }
    v8::Local::<v8::Object>::try_from(module.get_module_namespace())
        .map_err(|_| Error::Internal("module namespace is not an object".into()))
}

fn load_script<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    internals: v8::Local<'s, v8::Object>,
    code: &TenantCode,
    cache: Option<&CacheCtx<'_>>,
    report: &mut LoadReport,
    produce: &mut Vec<Produce>,
) -> Result<v8::Local<'s, v8::Value>> {
    let name = code.entry();
    let source = code
        .source(name)
        .ok_or_else(|| Error::InvalidCode(format!("missing file {name}")))?;
    let (key, bytes) = lookup(cache, source, "script");
    let src = source_string(scope, name, source)?;
    let origin = origin(scope, name, false).ok_or_else(|| Error::Internal("origin".into()))?;
    let t0 = Instant::now();
    let (script, rejected) = {
        v8::tc_scope!(let tc, scope);
        let mut s = match &bytes {
            Some(b) => v8::script_compiler::Source::new_with_cached_data(
                src,
                Some(&origin),
                v8::CachedData::new(b),
            ),
            None => v8::script_compiler::Source::new(src, Some(&origin)),
        };
        let opts = if bytes.is_some() {
            v8::script_compiler::CompileOptions::ConsumeCodeCache
        } else {
            v8::script_compiler::CompileOptions::NoCompileOptions
        };
        let script = v8::script_compiler::compile(
            tc,
            &mut s,
            opts,
            v8::script_compiler::NoCacheReason::NoReason,
        );
        let rejected = s.get_cached_data().map(|d| d.rejected()).unwrap_or(false);
        match script {
            Some(sc) => (sc, rejected),
            None => {
                let (msg, exc) = (tc.message(), tc.exception());
                return Err(errors::syntax_error(tc, name, msg, exc));
            }
        }
    };
    report.compile_time += t0.elapsed();
    let event = settle_event(cache, &key, bytes.is_some(), rejected);
    report.cache_events.push((name.to_string(), event));
    if let (Some(k), true) = (key, event != CacheEvent::Hit) {
        let unbound = script.get_unbound_script(scope);
        produce.push(Produce::Script(v8::Global::new(scope, unbound), k));
    }
    let completion = {
        v8::tc_scope!(let tc, scope);
        match script.run(tc) {
            Some(v) => v,
            None => return Err(call_error(tc, internals)),
        }
    };
    Ok(completion)
}

fn script_namespace<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    completion: v8::Local<'s, v8::Value>,
) -> Result<v8::Local<'s, v8::Object>> {
    // The namespace of a classic script: its completion value as `default`,
    // and a global `handler` function if it defined one.
    let ns = v8::Object::new(scope);
    let default_key = v8_str(scope, "default")?;
    ns.set(scope, default_key.into(), completion);
    let handler_key = v8_str(scope, "handler")?;
    let global = scope.get_current_context().global(scope);
    if let Some(h) = global
        .get(scope, handler_key.into())
        .filter(|h| h.is_function())
    {
        ns.set(scope, handler_key.into(), h);
    }
    Ok(ns)
}

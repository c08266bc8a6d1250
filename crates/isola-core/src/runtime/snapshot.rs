//! Building the base startup snapshot (the V8 side).
//!
//! The bootstrap JS runs once inside a snapshot creator with the native ops
//! attached; the resulting heap (globals, classes, the internals object kept
//! as context data 0) is serialized. Tenant isolates deserialize it instead
//! of running the bootstrap again.

use crate::error::{Error, Result};
pub use crate::runtime::lazy_areas::LAZY_SOURCES;
use crate::runtime::ops;

/// The primordials source (built-ins captured before any tenant code runs).
pub const PRIMORDIALS_JS: &str = include_str!("../../js/primordials.js");
/// The bootstrap source baked into the snapshot.
pub const BOOTSTRAP_JS: &str = include_str!("../../js/bootstrap.js");
/// Its resource name, as seen in stacks.
pub const BOOTSTRAP_NAME: &str = "isola:bootstrap.js";
/// Resource names of isola's own scripts start with this (stack lines from
/// them are hidden from tenants).
pub const INTERNAL_PREFIX: &str = "isola:";
/// The scripts run in the snapshot creator, in order: the primordials, the
/// web APIs by spec area (each called with the ops, the primordials and the
/// `web` object it puts its names on), then the bootstrap, which defines the
/// globals and returns the internals.
pub const SOURCES: [(&str, &str); 7] = [
    ("isola:primordials.js", PRIMORDIALS_JS),
    (
        "isola:web/timers.js",
        include_str!("../../js/web/timers.js"),
    ),
    (
        "isola:web/events.js",
        include_str!("../../js/web/events.js"),
    ),
    ("isola:web/abort.js", include_str!("../../js/web/abort.js")),
    ("isola:web/url.js", include_str!("../../js/web/url.js")),
    (
        "isola:web/globals.js",
        include_str!("../../js/web/globals.js"),
    ),
    (BOOTSTRAP_NAME, BOOTSTRAP_JS),
];
/// Context-data index of the internals object.
pub(crate) const INTERNALS_INDEX: usize = 0;

/// Runs the bootstrap in a snapshot creator and returns the blob.
pub(crate) fn build_blob() -> Result<Vec<u8>> {
    crate::runtime::platform::init();
    let mut creator = v8::Isolate::snapshot_creator(Some(ops::external_references()), None);
    let mut failure = None;
    {
        v8::scope!(let scope, &mut creator);
        let context = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, context);
        let internals = {
            v8::tc_scope!(let tc, scope);
            let result = run_bootstrap(tc);
            if result.is_none() {
                let msg = match (tc.message(), tc.exception()) {
                    (Some(m), e) => {
                        let text = m.get(tc).to_rust_string_lossy(tc);
                        let at = m
                            .get_script_resource_name(tc)
                            .map(|n| n.to_rust_string_lossy(tc))
                            .unwrap_or_default();
                        let line = m.get_line_number(tc).unwrap_or(0);
                        let stack = e
                            .and_then(|e| e.to_object(tc))
                            .and_then(|o| {
                                let k = v8::String::new(tc, "stack")?;
                                o.get(tc, k.into())
                            })
                            .map(|s| s.to_rust_string_lossy(tc))
                            .unwrap_or_default();
                        format!("{text} ({at}:{line})\n{stack}")
                    }
                    (None, _) => "bootstrap failed".into(),
                };
                failure = Some(msg);
            }
            result
        };
        match internals {
            Some(internals) => {
                let index = scope.add_context_data(context, internals);
                if index != INTERNALS_INDEX {
                    failure = Some(format!("internals stored at context data {index}"));
                }
                scope.set_default_context(context);
            }
            None => scope.set_default_context(context),
        }
    }
    // A snapshot creator must make its blob before it is dropped, even when
    // the bootstrap failed.
    let blob = creator.create_blob(v8::FunctionCodeHandling::Keep);
    if let Some(msg) = failure {
        return Err(Error::Snapshot(format!("the bootstrap JS threw: {msg}")));
    }
    let blob =
        blob.ok_or_else(|| Error::Snapshot("V8 could not create the snapshot blob".into()))?;
    Ok(blob.to_vec())
}

pub(crate) fn run_bootstrap<'s>(
    scope: &mut v8::PinScope<'s, '_>,
) -> Option<v8::Local<'s, v8::Object>> {
    let primordials = run_script(scope, SOURCES[0], &[])?;
    let ops = ops::create_ops_object(scope)?;
    let web = v8::Object::new(scope);
    let null = v8::null(scope).into();
    web.set_prototype(scope, null)?;
    let args = [ops.into(), primordials, web.into()];
    let (last, areas) = SOURCES[1..].split_last()?;
    for area in areas {
        run_script(scope, *area, &args)?;
    }
    // The lazy areas, as `web.__lazyAreas[name] = { index, names }`: only
    // their names are in the snapshot (see `lazy_areas`).
    let lazy = v8::Object::new(scope);
    lazy.set_prototype(scope, null)?;
    for (index, (name, _source, globals)) in LAZY_SOURCES.iter().enumerate() {
        let names: Vec<v8::Local<v8::Value>> = globals
            .iter()
            .map(|g| v8::String::new(scope, g).map(Into::into))
            .collect::<Option<_>>()?;
        let names = v8::Array::new_with_elements(scope, &names);
        let record = v8::Object::new(scope);
        record.set_prototype(scope, null)?;
        let k = v8::String::new(scope, "index")?;
        let i = v8::Integer::new_from_unsigned(scope, index as u32);
        record.set(scope, k.into(), i.into())?;
        let k = v8::String::new(scope, "names")?;
        record.set(scope, k.into(), names.into())?;
        let k = v8::String::new(scope, name)?;
        lazy.set(scope, k.into(), record.into())?;
    }
    let k = v8::String::new(scope, "__lazyAreas")?;
    web.set(scope, k.into(), lazy.into())?;
    let internals = run_script(scope, *last, &args)?;
    v8::Local::<v8::Object>::try_from(internals).ok()
}

/// Compiles one of isola's scripts (a function expression) and calls it with `args`.
fn run_script<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    area: (&str, &str),
    args: &[v8::Local<'s, v8::Value>],
) -> Option<v8::Local<'s, v8::Value>> {
    let f = compile_area(scope, area)?;
    let undef = v8::undefined(scope).into();
    f.call(scope, undef, args)
}

/// Compiles one of isola's scripts and returns the function it evaluates to.
fn compile_area<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    (name, source): (&str, &str),
) -> Option<v8::Local<'s, v8::Function>> {
    let source = v8::String::new(scope, source)?;
    let name = v8::String::new(scope, name)?;
    let origin = internal_origin(scope, name);
    let script = v8::Script::compile(scope, source, Some(&origin))?;
    v8::Local::<v8::Function>::try_from(script.run(scope)?).ok()
}

/// The origin of one of isola's own classic scripts (`name` starts with
/// [`INTERNAL_PREFIX`], so its stack lines are hidden from tenants).
pub(crate) fn internal_origin<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: v8::Local<'s, v8::String>,
) -> v8::ScriptOrigin<'s> {
    v8::ScriptOrigin::new(
        scope,
        name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        false,
        None,
    )
}

/// For benchmarks: a plain V8 isolate (V8's own snapshot) plus a context.
pub(crate) fn bench_plain_isolate() {
    crate::runtime::platform::init();
    let mut isolate = v8::Isolate::new(v8::CreateParams::default());
    v8::scope!(let scope, &mut isolate);
    let _context = v8::Context::new(scope, Default::default());
}

/// For benchmarks: what a tenant would cost without isola's snapshot: a plain
/// isolate and context, then the bootstrap JS run in it.
pub(crate) fn bench_isolate_running_bootstrap() -> bool {
    crate::runtime::platform::init();
    let mut isolate = v8::Isolate::new(v8::CreateParams::default());
    v8::scope!(let scope, &mut isolate);
    let context = v8::Context::new(scope, Default::default());
    let scope = &mut v8::ContextScope::new(scope, context);
    run_bootstrap(scope).is_some()
}

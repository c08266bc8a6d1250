//! Conformance of the web APIs in the base snapshot (`js/web/*.js`), run in
//! real isolates from the snapshot: normal behaviour, edge cases, and wrong
//! input throwing the spec's error class with a clear message. One module
//! per spec area; the web-platform-tests (`scripts/wpt.sh`) are the wider
//! reference.

mod abort;
mod blob;
mod compression;
mod crypto;
mod crypto_keys;
mod crypto_secret;
mod encoding;
mod events;
mod fetch;
mod formdata;
mod globals;
mod message;
mod streams;
mod url;
mod urlpattern;
mod wasm;

use serde_json::Value;

use crate::util::{call_json, engine, tenant, tenant_with_limits};

/// Runs `body` as the body of an async default-exported function in a fresh
/// tenant and returns what it returns, as JSON.
pub fn run(body: &str) -> Value {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "web",
        &format!("export default async () => {{\n{body}\n}};"),
    );
    call_json(&mut t)
}

/// As [`run`], with a CPU budget of `cpu_ms` (for work that is slow on purpose).
pub fn run_with_cpu(body: &str, cpu_ms: u64) -> Value {
    let e = engine();
    let limits = isola_core::Limits {
        cpu: std::time::Duration::from_millis(cpu_ms),
        ..Default::default()
    };
    let src = format!("export default async () => {{\n{body}\n}};");
    let mut t = tenant_with_limits(&e.engine, "web", &src, limits);
    call_json(&mut t)
}

/// JS that evaluates `expr` and returns `[error name, message]` of what it
/// throws (or `["no error", String(value)]`).
pub fn throws(expr: &str) -> String {
    format!(
        "(() => {{ try {{ const v = ({expr}); return ['no error', String(v)]; }} \
         catch (e) {{ return [e.name, e.message]; }} }})()"
    )
}

/// Tenant code that patches the built-ins the runtime's own JS could be
/// tempted to call: every API must behave the same after it ran.
pub const PATCH_EVERYTHING: &str = r#"
for (const [o, names] of [
  [Array.prototype, ["push", "pop", "shift", "splice", "slice", "map", "forEach", "join", "sort", "indexOf", "includes", "filter", "concat", "reverse"]],
  [Map.prototype, ["get", "set", "has", "delete", "forEach"]],
  [Set.prototype, ["add", "has", "delete"]],
  [WeakMap.prototype, ["get", "set", "has", "delete"]],
  [String.prototype, ["slice", "charCodeAt", "toUpperCase", "toLowerCase", "split", "replace", "trim", "toWellFormed"]],
  [Function.prototype, ["call", "apply", "bind"]],
  [Promise.prototype, ["then", "catch", "finally"]],
  [Number.prototype, ["toString"]],
]) for (const n of names) Object.defineProperty(o, n, { value() { throw new Error("patched " + n); }, configurable: true, writable: true });
Object.defineProperty(Array.prototype, Symbol.iterator, { value() { throw new Error("patched iterator"); }, configurable: true });
Reflect.apply = () => { throw new Error("patched Reflect.apply"); };
Object.defineProperty = () => { throw new Error("patched defineProperty"); };
"#;

/// Tenant code that, on top of [`PATCH_EVERYTHING`], deletes the global
/// constructors and namespaces a lazily installed area could be tempted to
/// read when it loads after tenant code (they must come from the
/// primordials). Keeps `globalThis.__gopd` (the original
/// `Object.getOwnPropertyDescriptor`) for the test to look with.
pub const DELETE_GLOBALS: &str = r#"
globalThis.__gopd = Object.getOwnPropertyDescriptor;
{
  const names = ["Object", "Function", "Array", "String", "Symbol", "Number", "Math", "Reflect", "JSON", "Promise",
                 "Map", "Set", "WeakMap", "WeakSet", "Uint8Array", "ArrayBuffer", "DataView", "TypeError", "RangeError", "Error", "Date"];
  for (let i = 0; i < names.length; i++) delete globalThis[names[i]];
}
"#;

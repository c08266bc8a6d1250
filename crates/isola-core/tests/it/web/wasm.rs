//! WebAssembly per tenant: absent unless the tenant's config enables it;
//! when enabled, its memories (at their declared maximum) and compiled code
//! count in the tenant's ArrayBuffer budget, and no path reaches V8's own
//! constructors around that accounting.

use isola_core::{Limits, Tenant, TenantCode};
use serde_json::{json, Value};

use super::{run, PATCH_EVERYTHING};
use crate::util::{call_json, config, engine};

/// `(module (memory (export "mem") 1 2) (func (export "add") (param i32 i32) (result i32) ...))`
const BOUNDED: &str = "[0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,5,4,1,1,1,2,7,13,2,3,109,101,109,2,0,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11]";
/// The same with a memory of no maximum.
const UNBOUNDED: &str = "[0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,5,3,1,0,1,7,13,2,3,109,101,109,2,0,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11]";
/// The same with a maximum of 1024 pages (64 MiB).
const BIG: &str = "[0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,5,5,1,1,1,128,8,7,13,2,3,109,101,109,2,0,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11]";

fn wasm_tenant(body: &str, ab_bytes: u64) -> Tenant {
    let e = engine();
    let limits = Limits {
        external_memory_bytes: ab_bytes,
        ..Limits::default()
    };
    let src = format!(
        "const BOUNDED = new Uint8Array({BOUNDED}); const UNBOUNDED = new Uint8Array({UNBOUNDED}); const BIG = new Uint8Array({BIG});
         export default async () => {{\n{body}\n}};"
    );
    // The engine (and its snapshot) must outlive the tenant: leak the test engine.
    let e = Box::leak(Box::new(e));
    Tenant::new(
        &e.engine,
        config("wasm").limits(limits).webassembly(true),
        TenantCode::single("wasm.js", src),
    )
    .unwrap()
}

fn run_wasm(body: &str, ab_bytes: u64) -> Value {
    call_json(&mut wasm_tenant(body, ab_bytes))
}

#[test]
fn webassembly_is_absent_unless_the_tenant_has_it() {
    let v = run("return [typeof WebAssembly, 'WebAssembly' in globalThis, Object.getOwnPropertyNames(globalThis).includes('WebAssembly')];");
    assert_eq!(v, json!(["undefined", false, false]));
}

#[test]
fn an_enabled_tenant_compiles_and_runs_modules_with_bounded_memories() {
    let v = run_wasm(
        "const { instance, module } = await WebAssembly.instantiate(BOUNDED);
         const sync = new WebAssembly.Instance(new WebAssembly.Module(BOUNDED));
         const m = instance.exports.mem;
         m.grow(1);
         let past;
         try { m.grow(1); } catch (e) { past = e.name; }
         return [instance.exports.add(2, 40), sync.exports.add(1, 1), m.buffer.byteLength, past,
                 module instanceof WebAssembly.Module, WebAssembly.validate(BOUNDED), String(WebAssembly)];",
        64 << 20,
    );
    assert_eq!(
        v,
        json!([
            42,
            2,
            131072,
            "RangeError",
            true,
            true,
            "[object WebAssembly]"
        ])
    );
}

#[test]
fn memories_that_cannot_be_counted_are_refused() {
    let v = run_wasm(
        "const why = async (f) => { try { await f(); return 'no error'; } catch (e) { return [e.name, e.message]; } };
         return [await why(() => new WebAssembly.Module(UNBOUNDED)),
                 await why(() => WebAssembly.instantiate(UNBOUNDED)),
                 await why(() => new WebAssembly.Memory({ initial: 1 })),
                 await why(() => new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true }))];",
        64 << 20,
    );
    assert_eq!(v[0][0], "CompileError", "{v}");
    assert!(
        v[0][1].as_str().unwrap().contains("without a maximum"),
        "{v}"
    );
    assert_eq!(v[1][0], "CompileError");
    assert_eq!(v[2][0], "TypeError");
    assert!(
        v[2][1].as_str().unwrap().contains("maximum is required"),
        "{v}"
    );
    assert_eq!(v[3][0], "TypeError");
}

#[test]
fn memories_and_code_count_in_the_array_buffer_budget() {
    // 16 MiB budget: a 64 MiB maximum does not fit, whichever way it is made.
    let v = run_wasm(
        "const why = async (f) => { try { await f(); return 'no error'; } catch (e) { return [e.name, e.message]; } };
         const held = [];
         return [await why(() => new WebAssembly.Memory({ initial: 1, maximum: 1024 })),
                 await why(() => WebAssembly.instantiate(BIG)),
                 await why(() => { for (let i = 0; i < 200; i++) held.push(new WebAssembly.Memory({ initial: 1, maximum: 2 })); }),
                 held.length];",
        16 << 20,
    );
    assert_eq!(v[0][0], "RangeError", "{v}");
    assert!(
        v[0][1].as_str().unwrap().contains("external_memory_bytes"),
        "{v}"
    );
    assert_eq!(v[1][0], "RangeError", "{v}");
    // 128 KiB each: 16 MiB holds 128, but at most 64 memories are alive.
    assert_eq!(v[2][0], "RangeError", "{v}");
    assert_eq!(v[3], 64, "{v}");
}

#[test]
fn charges_come_back_when_memories_are_collected() {
    let mut t = wasm_tenant(
        "const out = [];
         for (let i = 0; i < 40; i++) { try { new WebAssembly.Memory({ initial: 1, maximum: 16 }); out.push(1); } catch (e) { break; } }
         return out.length;",
        (32 << 20) + (64 << 10),
    );
    // 1 MiB each, a budget of 32 MiB (and a little for the module's own
    // buffers): 32 fit, then the budget is spent...
    assert_eq!(call_json(&mut t), json!(32));
    // ...until a collection frees the abandoned ones.
    t.collect_garbage();
    assert_eq!(
        call_json(&mut t),
        json!(32),
        "abandoned memories were not released"
    );
}

#[test]
fn no_path_reaches_the_uncounted_constructors() {
    let v = run_wasm(
        "const m = new WebAssembly.Memory({ initial: 1, maximum: 1 });
         const why = (f) => { try { f(); return 'no error'; } catch (e) { return e.name; } };
         const M = m.constructor, P = Object.getPrototypeOf(m).constructor;
         const mod = new WebAssembly.Module(BOUNDED);
         const inst = new WebAssembly.Instance(mod);
         return [M === WebAssembly.Memory, P === WebAssembly.Memory,
                 why(() => new M({ initial: 1 })),
                 why(() => Reflect.construct(P, [{ initial: 1 }])),
                 why(() => new mod.constructor(UNBOUNDED)),
                 inst.constructor === WebAssembly.Instance,
                 why(() => new inst.constructor(new WebAssembly.Module(UNBOUNDED)))];",
        64 << 20,
    );
    assert_eq!(
        v,
        json!([
            true,
            true,
            "TypeError",
            "TypeError",
            "CompileError",
            true,
            "CompileError"
        ])
    );
}

#[test]
fn webassembly_works_after_the_tenant_patched_every_builtin() {
    let v = run_wasm(
        &format!(
            "{PATCH_EVERYTHING}
             const {{ instance }} = await WebAssembly.instantiate(BOUNDED);
             return instance.exports.add(20, 22);"
        ),
        64 << 20,
    );
    assert_eq!(v, json!(42));
}

/// `(module (memory (export "m") 1 64))`: 4 MiB at its maximum.
const MEM4: &str = "[0,97,115,109,1,0,0,0,5,4,1,1,1,64,7,5,1,1,109,2,0]";
/// `(module (memory 1 2))`: a memory the module does not export.
const HIDDEN: &str = "[0,97,115,109,1,0,0,0,5,4,1,1,1,2]";

#[test]
fn an_exported_memory_keeps_its_charge_after_its_instance_is_collected() {
    // 4 MiB memories, a budget of 14 MiB: three fit. The tenant keeps the
    // exported memories and drops the instances; a collection must not give
    // their charges back, so a fourth still does not fit.
    let mut t = wasm_tenant(
        &format!(
            "const mod = new WebAssembly.Module(new Uint8Array({MEM4}));
             globalThis.kept ??= [];
             const out = [];
             for (let i = 0; i < 4; i++) {{
               try {{ kept.push(new WebAssembly.Instance(mod).exports.m); out.push('ok'); }} catch (e) {{ out.push(e.name); }}
             }}
             return out;"
        ),
        14 << 20,
    );
    assert_eq!(call_json(&mut t), json!(["ok", "ok", "ok", "RangeError"]));
    t.collect_garbage();
    assert_eq!(
        call_json(&mut t),
        json!(["RangeError", "RangeError", "RangeError", "RangeError"])
    );
}

#[test]
fn unexported_memories_and_promise_integration_are_refused() {
    let v = run_wasm(
        &format!(
            "let hidden;
             try {{ new WebAssembly.Module(new Uint8Array({HIDDEN})); }} catch (e) {{ hidden = [e.name, e.message]; }}
             return [hidden, typeof WebAssembly.promising, typeof WebAssembly.Suspending, typeof WebAssembly.Table];"
        ),
        64 << 20,
    );
    assert_eq!(v[0][0], "CompileError", "{v}");
    assert!(v[0][1].as_str().unwrap().contains("not exported"), "{v}");
    assert_eq!(v[1], "undefined");
    assert_eq!(v[2], "undefined");
    assert_eq!(v[3], "function");
}

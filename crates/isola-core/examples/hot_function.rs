//! A hot function across many invocations of one tenant: prints the CPU
//! time of each invocation (ms), then the median of the first 50 and of the
//! last 100. With V8 14.0's Maglev tier, such a function fell back to a slow
//! tier after about 60 invocations and never recovered (3 ms -> 15-18 ms
//! here); isola runs with `--no-maglev` (see `runtime/platform.rs`).
//!
//! Run: `cargo run --release -p isola-core --example hot_function`

use std::time::Duration;

use isola_core::{Engine, EngineConfig, Limits, Tenant, TenantCode, TenantConfig};

const CODE: &str = "function work(n) { let h = 0; for (let i = 0; i < n; i++) h = Math.imul(h ^ i, 16777619) >>> 0; return h; }
export default () => { let h = 0; for (let k = 0; k < 20; k++) h ^= work(100000); return h; };";

fn median(v: &[u128]) -> u128 {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn main() {
    isola_core::init_platform();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(EngineConfig::with_data_dir(dir.path())).expect("engine");
    let limits = Limits {
        cpu: Duration::from_secs(2),
        ..Limits::default()
    };
    let mut t = Tenant::new(
        &engine,
        TenantConfig::new("hot").limits(limits),
        TenantCode::single("hot.js", CODE),
    )
    .expect("tenant");
    let ms: Vec<u128> = (0..200)
        .map(|_| t.call(vec![]).expect("call").cpu.as_millis())
        .collect();
    println!("{ms:?}");
    println!(
        "median CPU ms: first 50 invocations {}, last 100 {}",
        median(&ms[..50]),
        median(&ms[100..])
    );
}

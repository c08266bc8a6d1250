//! Startup costs, measured side by side in one run and printed as a table
//! with ratios: plain V8 isolate, isola's bootstrap without a snapshot, a
//! tenant isolate from isola's base snapshot, and compiling a real library
//! (lodash, fetched by `bench/startup.sh`) cold vs from the code cache.
//!
//! Run: `bash bench/startup.sh` (or `cargo bench -p isola-core --bench startup`
//! with `ISOLA_BENCH_LODASH=/path/to/lodash.js`).

use std::time::{Duration, Instant};

use isola_core::{Engine, EngineConfig, Limits, Tenant, TenantCode, TenantConfig};

struct Row {
    name: String,
    median: Duration,
    p90: Duration,
}

fn measure(name: &str, iters: usize, mut f: impl FnMut() -> Duration) -> Row {
    for _ in 0..iters.min(5) {
        f();
    }
    let mut samples: Vec<Duration> = (0..iters).map(|_| f()).collect();
    samples.sort();
    Row {
        name: name.to_string(),
        median: samples[samples.len() / 2],
        p90: samples[samples.len() * 9 / 10],
    }
}

/// Measures several cases in alternation (one sample of each per round), so
/// that drifts of the machine (frequency, caches, other load) reach every
/// case alike and their ratios hold within one run.
type Case<'a> = (&'a str, Box<dyn FnMut() -> Duration + 'a>);

fn measure_interleaved(iters: usize, cases: Vec<Case<'_>>) -> Vec<Row> {
    let mut cases = cases;
    for _ in 0..iters.min(5) {
        for (_, f) in cases.iter_mut() {
            f();
        }
    }
    let mut samples: Vec<Vec<Duration>> = cases.iter().map(|_| Vec::with_capacity(iters)).collect();
    for _ in 0..iters {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            samples[i].push(f());
        }
    }
    cases
        .iter()
        .zip(samples)
        .map(|((name, _), mut s)| {
            s.sort();
            Row {
                name: name.to_string(),
                median: s[s.len() / 2],
                p90: s[s.len() * 9 / 10],
            }
        })
        .collect()
}

/// Resident memory of this process (bytes), from /proc/self/statm.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The memory of idle tenants: RSS growth over N warm hello-world tenants
/// (each created from the snapshot and served one request), divided by N.
fn idle_memory(engine: &Engine, hello: &TenantCode) {
    const N: usize = 300;
    let mut warm = Vec::with_capacity(N);
    // One first, so process-wide setup is not counted.
    let mut first = Tenant::new(engine, quiet("idle"), hello.clone()).expect("tenant");
    first.call(vec![]).expect("first request");
    let before = rss();
    for i in 0..N {
        let mut t = Tenant::new(engine, quiet(&format!("idle{i}")), hello.clone()).expect("tenant");
        t.call(vec![]).expect("request");
        warm.push(t);
    }
    let after = rss();
    let heap: u64 = warm.iter_mut().map(|t| t.heap_used_bytes()).sum::<u64>() / N as u64;
    let per = after.saturating_sub(before) / N as u64;
    println!(
        "\nidle tenant (hello world, warm after one request), {N} tenants: {} KiB RSS each ({} per GiB), V8 heap used {} KiB each",
        per >> 10,
        (1u64 << 30).checked_div(per).unwrap_or(0),
        heap >> 10
    );
    drop(warm);
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn quiet(name: &str) -> TenantConfig {
    TenantConfig::new(name)
        .limits(Limits::relaxed())
        .console(std::sync::Arc::new(|_, _| {}))
}

fn main() {
    isola_core::init_platform();
    let iters: usize = std::env::var("ISOLA_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(EngineConfig::with_data_dir(dir.path())).expect("engine");
    let no_cache = Engine::new(EngineConfig {
        code_cache: false,
        ..EngineConfig::with_data_dir(dir.path())
    })
    .expect("engine");
    let hello = TenantCode::single(
        "hello.js",
        "export default { fetch() { return new Response('hi'); } }",
    );

    let mut rows = measure_interleaved(
        iters,
        vec![
            (
                "plain V8 isolate + context (V8's own snapshot)",
                Box::new(|| timed(isola_core::testing::bench_plain_isolate)),
            ),
            (
                "isolate + context + isola bootstrap run (no isola snapshot)",
                Box::new(|| {
                    timed(|| assert!(isola_core::testing::bench_isolate_running_bootstrap()))
                }),
            ),
            (
                "tenant from isola base snapshot (isolate + context + hello module)",
                Box::new(|| {
                    timed(|| drop(Tenant::new(&engine, quiet("h"), hello.clone()).expect("tenant")))
                }),
            ),
        ],
    );

    // A tenant that touches every lazy web area at its top level: what the
    // areas cost the tenants that use them (the per-process code cache of
    // the areas is warm after the warm-up iterations).
    let every_area = TenantCode::single(
        "areas.js",
        "const used = [Blob, fetch, FormData, MessageChannel, URLPattern, ReadableStream, ReadableStreamBYOBReader,
                       WritableStream, TransformStream, CompressionStream, crypto.subtle];
         await crypto.subtle.digest('SHA-256', new Uint8Array(1));
         export default { fetch() { return new Response(String(used.length)); } }",
    );
    rows.push(measure(
        "tenant from the snapshot + first use of every lazy web area",
        (iters / 4).max(20),
        || timed(|| drop(Tenant::new(&engine, quiet("a"), every_area.clone()).expect("tenant"))),
    ));

    let lodash_path = std::env::var("ISOLA_BENCH_LODASH").ok();
    match lodash_path.as_deref().map(std::fs::read_to_string) {
        Some(Ok(src)) => {
            // lodash's UMD build assigns `_` to the global object when it is not a module.
            let src = format!(
                "{src}\n;var handler = function () {{ return _.chunk([1,2,3,4], 2).length; }};"
            );
            let code = TenantCode::single("lodash.cjs", src);
            let lib_iters = (iters / 4).max(20);
            let mut compile_cold = Vec::new();
            rows.push(measure(
                "tenant + lodash, compiled cold (no code cache)",
                lib_iters,
                || {
                    let t0 = Instant::now();
                    let t =
                        Tenant::new(&no_cache, quiet("l"), code.clone()).expect("lodash tenant");
                    compile_cold.push(t.load_info().compile_time);
                    t0.elapsed()
                },
            ));
            // Prime the cache once, then every load consumes it.
            let mut t = Tenant::new(&engine, quiet("l"), code.clone()).expect("lodash tenant");
            assert_eq!(
                t.call(vec![]).expect("lodash runs").output,
                isola_core::Output::Json(2.into())
            );
            let mut compile_warm = Vec::new();
            rows.push(measure(
                "tenant + lodash, from the code cache",
                lib_iters,
                || {
                    let t0 = Instant::now();
                    let t = Tenant::new(&engine, quiet("l"), code.clone()).expect("lodash tenant");
                    assert!(t
                        .load_info()
                        .cache
                        .iter()
                        .all(|(_, e)| *e == isola_core::CacheEvent::Hit));
                    compile_warm.push(t.load_info().compile_time);
                    t0.elapsed()
                },
            ));
            compile_cold.sort();
            compile_warm.sort();
            let (c, w) = (
                compile_cold[compile_cold.len() / 2],
                compile_warm[compile_warm.len() / 2],
            );
            rows.push(Row {
                name: "  lodash compile step only, cold".into(),
                median: c,
                p90: c,
            });
            rows.push(Row {
                name: "  lodash compile step only, code cache".into(),
                median: w,
                p90: w,
            });
        }
        _ => eprintln!(
            "(lodash rows skipped: run bench/startup.sh, or set ISOLA_BENCH_LODASH to lodash.js)"
        ),
    }

    let base = rows[0].median;
    println!(
        "\nisola startup benchmark (V8 {}, {} iterations, median and p90 in ms)\n",
        Engine::v8_version(),
        iters
    );
    println!("| case | median ms | p90 ms | vs plain isolate |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2}x |",
            r.name,
            ms(r.median),
            ms(r.p90),
            r.median.as_secs_f64() / base.as_secs_f64()
        );
    }
    idle_memory(&engine, &hello);
    // The blob the engine wrote to its data dir (snapshots/<fingerprint>.bin).
    let blob_bytes: u64 = std::fs::read_dir(dir.path().join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    println!(
        "\nbase snapshot blob: {} bytes ({:.1} MiB)",
        blob_bytes,
        blob_bytes as f64 / (1 << 20) as f64
    );
    let find = |prefix: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(prefix))
            .map(|r| r.median)
    };
    if let (Some(no_snap), Some(snap)) = (
        find("isolate + context + isola bootstrap"),
        find("tenant from isola base snapshot"),
    ) {
        println!(
            "base snapshot vs running the bootstrap: {:.1}x faster",
            no_snap.as_secs_f64() / snap.as_secs_f64()
        );
    }
    if let (Some(cold), Some(warm)) = (
        find("tenant + lodash, compiled cold"),
        find("tenant + lodash, from the code cache"),
    ) {
        println!(
            "lodash tenant, code cache vs cold: {:.1}x faster",
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
    if let (Some(cold), Some(warm)) = (
        find("  lodash compile step only, cold"),
        find("  lodash compile step only, code cache"),
    ) {
        println!(
            "lodash compile step, code cache vs cold: {:.1}x faster",
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
}

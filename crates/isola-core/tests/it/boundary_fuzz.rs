//! Property test of the JS → Rust response boundary: a few hundred random,
//! hostile handlers (odd statuses, header names and values, body types,
//! streams, call results, patched prototypes) run in real tenants on a real
//! V8. Each outcome must be a valid `HttpResponse` (or JSON / bytes result)
//! or a typed error, never `Error::Internal`, and the tenant must answer a
//! plain request right after. The loop runs in a child process of the test
//! binary, so an abort fails the test with the seed and the case's source.
//!
//! `ISOLA_FUZZ_SEED` (decimal or 0x-hex) and `ISOLA_FUZZ_CASES` override the
//! default run; `ISOLA_FUZZ_CASE` runs one case of the seed alone.

use std::time::{Duration, Instant};

use isola_core::{Error, HttpRequest, HttpResponse, Invoked, Limits, Output, Tenant, TenantCode};
use serde_json::json;

use crate::util::{config, engine, in_child_within, is_child, tail};

mod gen;

use gen::{case, BUDGET};

const DEFAULT_SEED: u64 = 0x1501_a7ed_b0c5_f022;
const DEFAULT_CASES: u64 = 600;
/// A line the child prints before each case, so the parent can name the one
/// that aborted the process.
const MARK: &str = "boundary-fuzz case ";

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn seed() -> u64 {
    env_u64("ISOLA_FUZZ_SEED").unwrap_or(DEFAULT_SEED)
}

fn limits() -> Limits {
    Limits {
        heap_bytes: 32 << 20,
        external_memory_bytes: BUDGET as u64,
        cpu: Duration::from_millis(150),
        wall: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What is wrong with a response that crossed the boundary, if anything.
fn invalid_response(r: &HttpResponse) -> Option<String> {
    if !(200..=599).contains(&r.status) {
        return Some(format!("status {}", r.status));
    }
    if r.headers.len() > 256 {
        return Some(format!("{} header lines", r.headers.len()));
    }
    let bytes: usize = r.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > 128 << 10 {
        return Some(format!("{bytes} header bytes"));
    }
    for (k, v) in &r.headers {
        if !is_token(k) {
            return Some(format!("header name {k:?} is not an HTTP token"));
        }
        if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Some(format!("header {k} has CR, LF or NUL: {v:?}"));
        }
    }
    // A streamed body collected by `Tenant::fetch` is bounded by the same
    // budget (`hostile::a_collected_response_stream_is_bounded_by_the_array_buffer_budget`).
    if r.body.len() > BUDGET {
        return Some(format!("body of {} bytes", r.body.len()));
    }
    if r.streamed {
        return Some("a collected response is still marked streamed".into());
    }
    None
}

/// What is wrong with one invocation's outcome, if anything.
fn violation(got: &Result<Invoked, Error>) -> Option<String> {
    match got {
        Ok(Invoked { output, .. }) => match output {
            Output::Response(r) => invalid_response(r),
            Output::Bytes(b) if b.len() > BUDGET => Some(format!("{} result bytes", b.len())),
            Output::Json(v) if v.to_string().len() > BUDGET => Some("huge JSON result".into()),
            _ => None,
        },
        Err(Error::Internal(m)) => Some(format!("Error::Internal: {m}")),
        Err(_) => None,
    }
}

fn plain(t: &mut Tenant, fetch: bool) -> Result<(), String> {
    let got = if fetch {
        t.fetch(HttpRequest::get("http://x/plain"))
    } else {
        t.call(vec![json!("plain")])
    };
    match got.map(|i| i.output) {
        Ok(Output::Response(r)) if r.status == 200 && r.body == b"plain-ok" => Ok(()),
        Ok(Output::Json(v)) if !fetch && v == json!("plain-ok") => Ok(()),
        other => Err(format!("plain request after the case: {other:?}")),
    }
}

/// Runs case `i`: the hostile request, the invariants, then a plain request.
fn run_case(engine: &isola_core::Engine, seed: u64, i: u64) -> Result<String, String> {
    let c = case(seed, i);
    let mut t = Tenant::new(
        engine,
        config("fuzz").limits(limits()),
        TenantCode::single("fuzz.js", c.source.as_str()),
    )
    .map_err(|e| format!("load failed: {e}"))?;
    let got = if c.fetch {
        t.fetch(HttpRequest::get("http://x/attack"))
    } else {
        t.call(vec![json!("attack")])
    };
    if let Some(v) = violation(&got) {
        let body = if c.stream { "streamed" } else { "whole" };
        return Err(format!("{v} (response body {body})"));
    }
    plain(&mut t, c.fetch)?;
    Ok(match got {
        Ok(i) => match i.output {
            Output::Response(r) => format!("response {}", r.status),
            Output::Json(_) => "json".into(),
            Output::Bytes(_) => "bytes".into(),
        },
        Err(e) => format!("error {}", e.kind_name()),
    })
}

#[test]
fn random_hostile_responses_cross_the_boundary_as_valid_responses_or_typed_errors() {
    let seed = seed();
    let name = "boundary_fuzz::random_hostile_responses_cross_the_boundary_as_valid_responses_or_typed_errors";
    if !is_child() {
        eprintln!("boundary fuzz seed {seed:#x} (set ISOLA_FUZZ_SEED to replay)");
        let child = std::panic::catch_unwind(|| in_child_within(name, Duration::from_secs(90)));
        if let Err(panic) = child {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "(no message)".into());
            // The last case the child started is the one that killed it.
            let last = text
                .rsplit(MARK)
                .next()
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            let source = last.map(|i| case(seed, i).source).unwrap_or_default();
            panic!(
                "the fuzz child failed; seed {seed:#x}, last case {last:?} (replay with ISOLA_FUZZ_SEED={seed:#x} ISOLA_FUZZ_CASE=<n>):\n{source}\n---\n{}",
                tail(&text, 16 << 10)
            );
        }
        return;
    }
    let cases: Vec<u64> = match env_u64("ISOLA_FUZZ_CASE") {
        Some(one) => {
            eprintln!("{}", case(seed, one).source);
            vec![one]
        }
        None => (0..env_u64("ISOLA_FUZZ_CASES").unwrap_or(DEFAULT_CASES)).collect(),
    };
    let e = engine();
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for &i in &cases {
        eprintln!("{MARK}{i}");
        match run_case(&e.engine, seed, i) {
            Ok(outcome) => *outcomes.entry(outcome).or_default() += 1,
            Err(why) => failures.push(format!(
                "case {i}: {why}\n{}",
                tail(&case(seed, i).source, 4 << 10)
            )),
        }
    }
    eprintln!(
        "boundary fuzz: {} cases in {:?}, outcomes {outcomes:?}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} of {} cases broke an invariant:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

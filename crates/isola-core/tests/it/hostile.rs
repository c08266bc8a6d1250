//! Hostile tenants at the JS → Rust boundary: patched prototypes, huge or
//! malformed results, locale-aware builtins. Each case asserts the specific
//! outcome, that a neighbour on the same thread keeps answering, and that the
//! hostile tenant answers its next request. Cases that used to abort the
//! process run in a child process (`in_child`), so a regression fails one
//! test, not the whole binary.

use std::time::{Duration, Instant};

use isola_core::{Error, HttpRequest, LimitKind, Limits, Output, Tenant, TenantCode};
use serde_json::json;

use crate::util::{config, engine, in_child, in_child_within, is_child, tenant_with_limits};

fn limits() -> Limits {
    Limits {
        heap_bytes: 32 << 20,
        external_memory_bytes: 16 << 20,
        cpu: Duration::from_millis(200),
        wall: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn fetch_tenant(engine: &isola_core::Engine, name: &str, source: &str) -> Tenant {
    Tenant::new(
        engine,
        config(name).limits(limits()),
        TenantCode::single(format!("{name}.js"), source),
    )
    .unwrap()
}

fn get(path: &str) -> HttpRequest {
    HttpRequest::get(format!("http://x{path}"))
}

/// Status, headers and body text of a fetch.
type Fetched = Result<(u16, Vec<(String, String)>, String), Error>;

fn fetch(t: &mut Tenant, path: &str) -> Fetched {
    match t.fetch(get(path))?.output {
        Output::Response(r) => Ok((r.status, r.headers, String::from_utf8_lossy(&r.body).into())),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The hostile tenant `source` answers `/attack` with `expect`ed outcome and
/// `/` with "ok"; a neighbour on the same thread answers before and after,
/// within `bound`.
fn check_fetch(source: &str, expect: impl Fn(&Fetched) -> bool) {
    let e = engine();
    let mut neighbour = fetch_tenant(
        &e.engine,
        "neighbour",
        "export default { fetch() { return new Response('n'); } }",
    );
    let mut hostile = fetch_tenant(&e.engine, "hostile", source);
    assert_eq!(fetch(&mut neighbour, "/").unwrap().2, "n");
    let got = fetch(&mut hostile, "/attack");
    assert!(expect(&got), "unexpected outcome {got:?}");
    let t0 = Instant::now();
    assert_eq!(fetch(&mut neighbour, "/").unwrap().2, "n");
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "neighbour took {:?}",
        t0.elapsed()
    );
    let again = fetch(&mut hostile, "/").unwrap_or_else(|e| panic!("next request failed: {e}"));
    assert_eq!(again.2, "ok");
}

/// A handler that patches `patch` at module top level, then answers normally.
fn patched(patch: &str) -> String {
    format!(
        "{patch}\nexport default {{ async fetch(req) {{ const h = new Headers({{ 'x-a': '1' }}); h.append('set-cookie', 'a=1'); h.append('set-cookie', 'b=2'); return new Response(req.url.endsWith('/attack') ? 'attacked' : 'ok', {{ headers: h }}); }} }};"
    )
}

#[test]
fn locale_aware_builtins_work_in_several_locales() {
    in_child("hostile::locale_aware_builtins_work_in_several_locales");
    if !is_child() {
        return;
    }
    let e = engine();
    let mut t = tenant_with_limits(
        &e.engine,
        "intl",
        r#"export default () => [
            new Date(0).toLocaleString("en-US", { timeZone: "UTC" }),
            new Date(0).toLocaleDateString("de-DE", { timeZone: "UTC" }),
            new Date(0).toLocaleDateString("ja-JP", { timeZone: "UTC" }),
            new Intl.NumberFormat("fr-FR").format(1234567.5),
            ["ä", "a", "z"].sort(new Intl.Collator("sv").compare).join(""),
            "\u0041\u030A".normalize("NFC") === "\u00C5",
            (1234.5).toLocaleString("en-IN"),
            new Intl.PluralRules("ar").select(2),
        ];"#,
        limits(),
    );
    let out = t.call(vec![]).unwrap().output;
    assert_eq!(
        out,
        Output::Json(json!([
            "1/1/1970, 12:00:00 AM",
            "1.1.1970",
            "1970/1/1",
            "1\u{202f}234\u{202f}567,5",
            "azä",
            true,
            "1,234.5",
            "two"
        ]))
    );
}

#[test]
fn a_patched_array_push_that_sets_a_huge_length_changes_nothing() {
    in_child("hostile::a_patched_array_push_that_sets_a_huge_length_changes_nothing");
    if !is_child() {
        return;
    }
    check_fetch(
        &patched("Array.prototype.push = function () { this.length = 0xFFFFFFFF; return 0; };"),
        |r| matches!(r, Ok((200, h, b)) if b == "attacked" && h.len() == 4),
    );
}

#[test]
fn patched_iterators_maps_and_setters_do_not_reach_the_runtime() {
    in_child("hostile::patched_iterators_maps_and_setters_do_not_reach_the_runtime");
    if !is_child() {
        return;
    }
    let patch = r#"
        Array.prototype[Symbol.iterator] = function* () { yield ["x-evil", "1"]; };
        Object.defineProperty(Array.prototype, "0", { set(v) { throw new Error("setter"); }, get() { return "evil"; }, configurable: true });
        Map.prototype.get = () => ["evil"];
        Map.prototype.forEach = () => {};
        Map.prototype.set = function () { return this; };
        Array.prototype.join = () => "evil";
        Array.prototype.sort = function () { this.length = 1e9; return this; };
        String.prototype.toLowerCase = () => "evil name";
        Promise.prototype.then = function () { throw new Error("then"); };
        JSON.stringify = () => { throw new Error("stringify"); };
        globalThis.Uint8Array = function () { throw new Error("Uint8Array"); };
        Object.defineProperty(Object.prototype, "kind", { get() { return "bytes"; }, configurable: true });
    "#;
    let source = format!(
        "{patch}\nexport default {{ async fetch(req) {{ return new Response(req.url.endsWith('/attack') ? 'attacked' : 'ok', {{ headers: {{ 'x-a': '1' }} }}); }} }};"
    );
    check_fetch(&source, |r| {
        matches!(r, Ok((200, h, b)) if b == "attacked"
            && h.iter().any(|(k, v)| k == "x-a" && v == "1")
            && !h.iter().any(|(k, _)| k == "x-evil"))
    });
}

#[test]
fn set_cookie_values_stay_separate_header_lines() {
    let e = engine();
    let mut t = fetch_tenant(
        &e.engine,
        "cookies",
        "export default { fetch() { const h = new Headers(); h.append('set-cookie', 'a=1; Path=/'); h.append('set-cookie', 'b=2'); h.append('x-list', 'one'); h.append('x-list', 'two'); h.set('x-get', h.get('x-list')); return new Response('c', { headers: h }); } }",
    );
    let (_, headers, _) = fetch(&mut t, "/").unwrap();
    let cookies: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    // Lines of other names reach the server one by one too; in JS, `get`
    // combines them as the spec says.
    let list: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "x-list")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(list, ["one", "two"], "{headers:?}");
    assert!(
        headers.contains(&("x-get".into(), "one, two".into())),
        "{headers:?}"
    );
}

#[test]
fn response_headers_are_capped_in_count_and_size() {
    let e = engine();
    for (what, attack, needle) in [
        (
            "count",
            "for (let i = 0; i < 300; i++) h.append('x-h' + i, 'v');",
            "more than 256 header lines",
        ),
        (
            "size",
            "for (let i = 0; i < 40; i++) h.append('x-h' + i, 'v'.repeat(4096));",
            "larger than 128 KiB",
        ),
        (
            "one huge value",
            "h.set('x-big', 'v'.repeat(200000));",
            "larger than 128 KiB",
        ),
    ] {
        let mut t = fetch_tenant(
            &e.engine,
            "headers",
            &format!("export default {{ fetch(req) {{ const h = new Headers(); if (req.url.endsWith('/attack')) {{ {attack} }} return new Response('ok', {{ headers: h }}); }} }}"),
        );
        match fetch(&mut t, "/attack") {
            Err(Error::Js(j)) => assert!(
                j.name == "TypeError" && j.message.contains(needle),
                "{what}: {j:?}"
            ),
            other => panic!("{what}: expected a TypeError, got {other:?}"),
        }
        assert_eq!(fetch(&mut t, "/").unwrap().2, "ok", "{what}");
    }
}

#[test]
fn a_result_larger_than_the_array_buffer_budget_is_refused_before_copying() {
    let e = engine();
    let mut t = tenant_with_limits(
        &e.engine,
        "big",
        "export default (mode) => mode === 'attack' ? 'x'.repeat(20 << 20) : 'ok';",
        Limits {
            cpu: Duration::from_secs(5),
            ..limits()
        },
    );
    match t.call(vec![json!("attack")]) {
        Err(Error::Limit(l)) => {
            assert_eq!(l.kind, LimitKind::ExternalMemory);
            assert_eq!(l.limit, 16 << 20);
            assert!(l.used.unwrap() > 16 << 20, "{l:?}");
        }
        other => panic!("expected the ArrayBuffer limit, got {other:?}"),
    }
    assert_eq!(
        t.call(vec![json!("x")]).unwrap().output,
        Output::Json(json!("ok"))
    );
}

#[test]
fn request_bodies_count_in_the_array_buffer_budget() {
    let e = engine();
    let mut t = Tenant::new(
        &e.engine,
        config("upload").limits(Limits { external_memory_bytes: 1 << 20, ..limits() }),
        TenantCode::single("u.js", "export default { async fetch(req) { return new Response(String((await req.bytes()).length)); } }"),
    )
    .unwrap();
    let mut small = get("/");
    small.method = "POST".into();
    small.body = vec![b'a'; 100 << 10];
    let body = match t.fetch(small).unwrap().output {
        Output::Response(r) => r.body,
        other => panic!("{other:?}"),
    };
    assert_eq!(body, b"102400");
    let mut big = get("/");
    big.method = "POST".into();
    big.body = vec![b'a'; 2 << 20];
    match t.fetch(big) {
        Err(Error::Limit(l)) => assert_eq!((l.kind, l.limit), (LimitKind::ExternalMemory, 1 << 20)),
        other => panic!("expected the ArrayBuffer limit, got {other:?}"),
    }
}

#[test]
fn wait_until_work_is_charged_to_the_request_cpu_budget() {
    let e = engine();
    let console = crate::util::Console::default();
    let mut t = Tenant::new(
        &e.engine,
        isola_core::TenantConfig::new("bg").console(console.sink()).limits(limits()),
        TenantCode::single(
            "bg.js",
            "export default { fetch(req, env, ctx) { const spin = (ms) => { const t = Date.now(); while (Date.now() - t < ms) {} }; spin(150); ctx.waitUntil((async () => { for (let i = 0; i < 10; i++) { await new Promise((r) => setTimeout(r, 1)); spin(30); } })()); return new Response('done'); } }",
        ),
    )
    .unwrap();
    // 150 ms in the handler + 300 ms of waitUntil work in slices of 30 ms:
    // past the request's 200 ms budget, though no slice is.
    let out = t.fetch(get("/")).unwrap();
    assert!(matches!(out.output, Output::Response(ref r) if r.body == b"done"));
    let text = console.text();
    assert!(
        text.contains(
            "ctx.waitUntil work stopped: tenant \"bg\" exceeded its CPU time limit of 200 ms"
        ),
        "{text}"
    );
    assert_eq!(
        t.stats().terminations.get("cpu"),
        Some(&1),
        "{:?}",
        t.stats()
    );
}

#[test]
fn lone_surrogates_in_a_result_become_replacement_characters() {
    let e = engine();
    let mut t = tenant_with_limits(
        &e.engine,
        "surrogates",
        r#"export default () => ({ lone: "a\ud800b", low: "\udfff", pair: "\ud83d\ude00", key: { "\udc00": 1 }, escaped: "\\ud800" });"#,
        limits(),
    );
    let out = t.call(vec![]).expect("a typed result, not Error::Internal");
    assert_eq!(
        out.output,
        Output::Json(json!({
            "lone": "a\u{fffd}b",
            "low": "\u{fffd}",
            "pair": "\u{1F600}",
            "key": { "\u{fffd}": 1 },
            "escaped": "\\ud800",
        }))
    );
}

#[test]
fn a_collected_response_stream_is_bounded_by_the_array_buffer_budget() {
    let e = engine();
    let mut t = fetch_tenant(
        &e.engine,
        "endless",
        "export default { fetch() { const b = new Uint8Array(64 << 10); let i = 0; return new Response(new ReadableStream({ pull(c) { if (i++ === 1024) c.close(); else c.enqueue(b); } })); } }",
    );
    // 64 MiB in 1024 chunks of one reused 64 KiB buffer, each chunk far
    // under the 16 MiB budget: collected whole, the body must not exceed it.
    match t.fetch(get("/")) {
        Err(Error::Limit(l)) => assert_eq!(l.kind, LimitKind::ExternalMemory),
        Ok(i) => match i.output {
            Output::Response(r) => {
                assert!(r.body.len() <= 16 << 20, "collected {} bytes", r.body.len())
            }
            other => panic!("{other:?}"),
        },
        Err(other) => panic!("expected the ArrayBuffer limit, got {other:?}"),
    }
}

#[test]
fn an_endless_stream_of_cheap_chunks_is_stopped_by_the_cpu_limit() {
    in_child_within(
        "hostile::an_endless_stream_of_cheap_chunks_is_stopped_by_the_cpu_limit",
        Duration::from_secs(30),
    );
    if !is_child() {
        return;
    }
    let e = engine();
    // Each chunk is one short slice, far under the watchdog's 1 ms tick.
    let mut t = fetch_tenant(
        &e.engine,
        "endless",
        "export default { fetch(req) { if (req.url.endsWith('/ok')) return new Response('ok'); return new Response(ReadableStream.from({ [Symbol.iterator]() { return { next() { return { done: false, value: 'x' }; } }; } })); } }",
    );
    for _ in 0..3 {
        let t0 = Instant::now();
        match t.fetch(get("/")) {
            Err(Error::Limit(l)) => {
                assert!(matches!(l.kind, LimitKind::Cpu | LimitKind::Wall), "{l:?}")
            }
            other => panic!("expected the CPU limit, got {:?}", other.map(|i| i.cpu)),
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert_eq!(fetch(&mut t, "/ok").unwrap().2, "ok");
    }
}

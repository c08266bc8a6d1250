//! Tenants are isolated from each other and start from the base snapshot.

use isola_core::{HttpRequest, Output, Tenant, TenantCode};
use serde_json::json;

use crate::util::{call_json, config, engine, tenant};

#[test]
fn globals_defined_by_one_tenant_are_invisible_to_another() {
    let e = engine();
    let mut a = tenant(
        &e.engine,
        "a",
        "globalThis.secret = 42; export default () => typeof globalThis.secret;",
    );
    let mut b = tenant(
        &e.engine,
        "b",
        "export default () => typeof globalThis.secret;",
    );
    assert_eq!(call_json(&mut a), json!("number"));
    assert_eq!(call_json(&mut b), json!("undefined"));
}

#[test]
fn a_prototype_patched_by_one_tenant_is_untouched_in_another() {
    let e = engine();
    let mut evil = tenant(
        &e.engine,
        "evil",
        "Array.prototype.map = function () { return ['pwned']; };
         Object.prototype.polluted = true;
         export default () => [1, 2].map(x => x * 2);",
    );
    let mut good = tenant(
        &e.engine,
        "good",
        "export default () => [[1, 2].map(x => x * 2), ({}).polluted === undefined];",
    );
    assert_eq!(call_json(&mut evil), json!(["pwned"]));
    assert_eq!(call_json(&mut good), json!([[2, 4], true]));
}

#[test]
fn bootstrap_globals_exist_without_running_the_bootstrap_again() {
    let e = engine();
    let before = isola_core::testing::bootstrap_executions();
    let mut t = tenant(
        &e.engine,
        "fresh",
        "export default () => [typeof console.log, typeof setTimeout, typeof Response, typeof Headers,
                               typeof TextEncoder, typeof Request, typeof WebAssembly];",
    );
    let mut t2 = tenant(
        &e.engine,
        "fresh2",
        "export default () => typeof queueMicrotask;",
    );
    assert_eq!(
        call_json(&mut t),
        json!([
            "function",
            "function",
            "function",
            "function",
            "function",
            "function",
            "undefined"
        ])
    );
    assert_eq!(call_json(&mut t2), json!("function"));
    assert_eq!(
        isola_core::testing::bootstrap_executions(),
        before,
        "creating tenants must not execute the bootstrap JS (the snapshot holds its result)"
    );
}

#[test]
fn the_snapshot_is_built_once_then_loaded_from_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let first =
        isola_core::Engine::new(isola_core::EngineConfig::with_data_dir(dir.path())).unwrap();
    assert!(first.snapshot_was_built());
    let second =
        isola_core::Engine::new(isola_core::EngineConfig::with_data_dir(dir.path())).unwrap();
    assert!(!second.snapshot_was_built());
    assert_eq!(first.snapshot_fingerprint(), second.snapshot_fingerprint());
}

#[test]
fn a_corrupt_snapshot_file_is_set_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    drop(isola_core::Engine::new(isola_core::EngineConfig::with_data_dir(dir.path())).unwrap());
    let snaps = dir.path().join("snapshots");
    let file = std::fs::read_dir(&snaps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let engine =
        isola_core::Engine::new(isola_core::EngineConfig::with_data_dir(dir.path())).unwrap();
    assert!(engine.snapshot_was_built());
    let names: Vec<String> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.contains(".corrupt-")),
        "bad file kept aside: {names:?}"
    );
    let mut t = tenant(&engine, "after", "export default () => 1 + 1;");
    assert_eq!(call_json(&mut t), json!(2));
}

#[test]
fn fetch_handler_gets_a_request_and_returns_a_response() {
    let e = engine();
    let code = TenantCode::single(
        "worker.js",
        r#"export default {
            async fetch(request, env, ctx) {
                const body = await request.json();
                ctx.waitUntil(Promise.resolve());
                return Response.json({ method: request.method, url: request.url,
                                       ua: request.headers.get("User-Agent"), sum: body.a + body.b, who: env.who },
                                     { status: 201, headers: { "x-isola": "yes" } });
            }
        }"#,
    );
    let mut t = Tenant::new(&e.engine, config("acme").env(json!({"who": "acme"})), code).unwrap();
    let req = HttpRequest {
        method: "POST".into(),
        url: "http://acme.example/sum".into(),
        headers: vec![("user-agent".into(), "test".into())],
        body: br#"{"a": 2, "b": 3}"#.to_vec(),
    };
    let Output::Response(r) = t.fetch(req).unwrap().output else {
        panic!("not a response")
    };
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-isola"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"method": "POST", "url": "http://acme.example/sum", "ua": "test", "sum": 5, "who": "acme"})
    );
}

#[test]
fn promises_and_timers_are_awaited_until_settled() {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "timers",
        "export default async () => {
            const order = [];
            setTimeout(() => order.push('t20'), 20);
            const iv = setInterval(() => { order.push('iv'); if (order.filter(x => x === 'iv').length === 3) clearInterval(iv); }, 1);
            queueMicrotask(() => order.push('micro'));
            await new Promise(r => setTimeout(r, 40));
            return order;
        };",
    );
    assert_eq!(call_json(&mut t), json!(["micro", "iv", "iv", "iv", "t20"]));
}

#[test]
fn classic_scripts_return_their_completion_value_or_call_handler() {
    let e = engine();
    let mut t = tenant(&e.engine, "script", "var x = 20; x + 22;");
    assert_eq!(call_json(&mut t), json!(42));
    let mut h = tenant(
        &e.engine,
        "script2",
        "function handler(a, b) { return a * b; }",
    );
    assert_eq!(
        h.call(vec![json!(6), json!(7)]).unwrap().output,
        Output::Json(json!(42))
    );
}

#[test]
fn console_output_goes_to_the_tenant_sink() {
    let e = engine();
    let console = crate::util::Console::default();
    let code = TenantCode::single("c.js", "export default () => { console.log('hello', {a: [1, 2]}, 3); console.error(new TypeError('bad')); }");
    let mut t = Tenant::new(
        &e.engine,
        isola_core::TenantConfig::new("c").console(console.sink()),
        code,
    )
    .unwrap();
    t.call(vec![]).unwrap();
    let text = console.text();
    assert!(text.contains("hello { a: [ 1, 2 ] } 3"), "{text}");
    assert!(text.contains("TypeError: bad"), "{text}");
}

#[test]
fn text_encoding_round_trips_utf8() {
    let e = engine();
    let mut t = tenant(
        &e.engine,
        "enc",
        "export default () => { const b = new TextEncoder().encode('héllo ✓'); return [b.length, new TextDecoder().decode(b)]; };",
    );
    assert_eq!(call_json(&mut t), json!([10, "héllo ✓"]));
}

#[test]
fn waiting_invocations_of_several_tenants_interleave_on_one_thread() {
    use isola_core::Progress;
    use std::time::{Duration, Instant};
    let e = engine();
    let src =
        "export default async (ms) => { await new Promise(r => setTimeout(r, ms)); return ms; };";
    let mut tenants: Vec<Tenant> = (0..5)
        .map(|i| tenant(&e.engine, &format!("w{i}"), src))
        .collect();
    let start = Instant::now();
    let mut waits: Vec<Option<Instant>> = tenants
        .iter_mut()
        .map(
            |t| match t.begin(isola_core::Invocation::Call(vec![json!(100)])) {
                Progress::Wait(until) => Some(until),
                Progress::Done(r) => panic!("finished early: {r:?}"),
            },
        )
        .collect();
    let mut done = 0;
    while done < tenants.len() {
        let next = waits.iter().flatten().min().copied().unwrap();
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        for (t, w) in tenants.iter_mut().zip(waits.iter_mut()) {
            if w.is_some_and(|until| until <= Instant::now()) {
                match t.resume() {
                    Progress::Wait(until) => *w = Some(until),
                    Progress::Done(r) => {
                        assert_eq!(r.unwrap().output, Output::Json(json!(100)));
                        *w = None;
                        done += 1;
                    }
                }
            }
        }
    }
    // Five 100 ms waits overlapped instead of adding up to 500 ms.
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn wait_until_work_continues_after_the_response() {
    use isola_core::Progress;
    use std::time::{Duration, Instant};
    let e = engine();
    let console = crate::util::Console::default();
    let code = TenantCode::single(
        "bg.js",
        "export default { fetch(req, env, ctx) {
            ctx.waitUntil(new Promise(r => setTimeout(() => { console.log('background done'); r(); }, 250)));
            return new Response('sent');
        } };",
    );
    let mut t = Tenant::new(
        &e.engine,
        isola_core::TenantConfig::new("bg").console(console.sink()),
        code,
    )
    .unwrap();
    let start = Instant::now();
    let Progress::Done(Ok(out)) = t.begin(isola_core::Invocation::Fetch(HttpRequest::default()))
    else {
        panic!("the response should be ready at once")
    };
    assert!(matches!(out.output, Output::Response(ref r) if r.body == b"sent"));
    assert!(start.elapsed() < Duration::from_millis(200));
    assert!(!console.text().contains("background done"));
    let wake = t.background_wake().expect("background work pending");
    std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    let _ = t.poll_background();
    assert!(
        console.text().contains("background done"),
        "{}",
        console.text()
    );
    assert!(t.background_wake().is_none());
    // The blocking API waits for it.
    let start = Instant::now();
    t.fetch(HttpRequest::default()).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn wait_until_work_is_cut_at_the_wall_limit() {
    let e = engine();
    let console = crate::util::Console::default();
    let code = TenantCode::single(
        "bgw.js",
        "export default { fetch(req, env, ctx) { ctx.waitUntil(new Promise(r => setTimeout(r, 1e9))); return new Response('ok'); } };",
    );
    let limits = isola_core::Limits {
        wall: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let mut t = Tenant::new(
        &e.engine,
        isola_core::TenantConfig::new("bgw")
            .limits(limits)
            .console(console.sink()),
        code,
    )
    .unwrap();
    let start = std::time::Instant::now();
    assert!(t.fetch(HttpRequest::default()).is_ok());
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        console.text().contains("wall time limit of 200 ms"),
        "{}",
        console.text()
    );
    // Serves again.
    assert!(t.fetch(HttpRequest::default()).is_ok());
}

#[test]
fn pre_created_isolates_are_adopted_by_new_tenants() {
    let e = engine();
    let mut pool = isola_core::IsolatePool::new(&e.engine, isola_core::Limits::default(), 2);
    pool.refill().unwrap();
    assert_eq!(pool.len(), 2);
    let code = TenantCode::single(
        "p.js",
        "globalThis.x = (globalThis.x || 0) + 1; export default () => [x, typeof Response];",
    );
    let (mut a, used) =
        Tenant::new_pooled(&e.engine, config("pa"), code.clone(), &mut pool).unwrap();
    assert!(used);
    assert_eq!(call_json(&mut a), json!([1, "function"]));
    let big = isola_core::Limits {
        heap_bytes: 256 << 20,
        ..Default::default()
    };
    let (mut b, used) =
        Tenant::new_pooled(&e.engine, config("pb").limits(big), code, &mut pool).unwrap();
    assert!(!used, "a different heap limit needs its own isolate");
    assert_eq!(call_json(&mut b), json!([1, "function"]));
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_streamed_response_body_is_pulled_chunk_by_chunk() {
    use isola_core::{BodyProgress, Progress};
    let e = engine();
    let code = TenantCode::single(
        "stream.js",
        "export default { fetch() {
            let i = 0;
            const body = new ReadableStream({ async pull(c) {
                await new Promise(r => setTimeout(r, 100));
                if (i === 3) { c.close(); return; }
                c.enqueue(i++ === 1 ? new TextEncoder().encode('two,') : `part${i},`);
            } });
            return new Response(body, { headers: { 'content-type': 'text/plain' } });
        } };",
    );
    let mut t = Tenant::new(&e.engine, config("stream"), code.clone()).unwrap();
    // Blocking callers get the whole body.
    let Output::Response(r) = t.fetch(HttpRequest::default()).unwrap().output else {
        panic!()
    };
    assert_eq!(String::from_utf8(r.body).unwrap(), "part1,two,part3,");
    assert!(!r.streamed);
    // Non-blocking callers get the head first, then the chunks as they come.
    let start = std::time::Instant::now();
    let Progress::Done(Ok(head)) = t.begin(isola_core::Invocation::Fetch(HttpRequest::default()))
    else {
        panic!()
    };
    let Output::Response(head) = head.output else {
        panic!()
    };
    assert!(head.streamed && head.body.is_empty());
    assert!(
        start.elapsed() < std::time::Duration::from_millis(80),
        "the head does not wait for the body"
    );
    assert!(t.is_busy());
    let mut chunks = Vec::new();
    loop {
        match t.poll_body() {
            BodyProgress::Chunk(c) => chunks.push(String::from_utf8(c).unwrap()),
            BodyProgress::Wait(until) => {
                std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()))
            }
            BodyProgress::End => break,
            BodyProgress::Failed(e) => panic!("{e}"),
        }
    }
    assert_eq!(chunks, ["part1,", "two,", "part3,"]);
    assert!(!t.is_busy());
}

struct Chunks(std::collections::VecDeque<Option<Vec<u8>>>);

impl isola_core::BodySource for Chunks {
    fn poll(&mut self) -> isola_core::BodyPoll {
        match self.0.pop_front() {
            Some(Some(c)) => isola_core::BodyPoll::Chunk(c),
            Some(None) => isola_core::BodyPoll::Pending,
            None => isola_core::BodyPoll::End,
        }
    }
}

#[test]
fn a_streamed_request_body_is_read_while_it_arrives() {
    let e = engine();
    let code = TenantCode::single(
        "count.js",
        "export default { async fetch(req) {
            let n = 0, chunks = 0;
            for await (const c of req.body) { n += c.length; chunks++; }
            return Response.json({ n, chunks });
        } };",
    );
    let mut t = Tenant::new(&e.engine, config("count"), code).unwrap();
    let body = Chunks(
        vec![
            Some(vec![1; 1000]),
            None,
            None,
            Some(vec![2; 24]),
            None,
            Some(vec![3; 1 << 20]),
        ]
        .into(),
    );
    let mut progress = t.begin_with_body(
        isola_core::Invocation::Fetch(HttpRequest::default()),
        Some(Box::new(body)),
    );
    let out = loop {
        match progress {
            isola_core::Progress::Done(r) => break r.unwrap(),
            isola_core::Progress::Wait(until) => {
                std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()));
                progress = t.resume();
            }
        }
    };
    let Output::Response(r) = out.output else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v, json!({"n": 1000 + 24 + (1 << 20), "chunks": 3}));
}

//! The data plane, the admin API and persistence, end to end.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::util::{config, start, start_with};

const HELLO: &str = r#"export default { async fetch(req, env) {
    const u = req.url;
    return new Response(`hello from ${env.NAME ?? "nobody"} at ${u}`, { headers: { "x-tenant": "acme" } });
} };"#;

fn versioned(v: &str) -> String {
    format!("export default {{ async fetch(req) {{ await new Promise(r => setTimeout(r, 1)); return new Response('{v}'); }} }};")
}

#[test]
fn deploy_then_call_by_host_and_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let r = s.admin(
        "PUT",
        "/v1/tenants/acme",
        Some(json!({"env": {"NAME": "acme"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.deploy("acme", HELLO);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["version"], json!(1));

    let by_host = s.data("acme.localhost", "/hi?x=1");
    assert_eq!(by_host.status, 200);
    assert_eq!(
        by_host.body,
        "hello from acme at http://acme.localhost/hi?x=1"
    );
    assert!(by_host.request_id.is_some());

    let by_path = s.data("127.0.0.1", "/t/acme/deep/path?q=2");
    assert_eq!(by_path.status, 200);
    assert_eq!(
        by_path.body, "hello from acme at http://127.0.0.1/deep/path?q=2",
        "prefix stripped"
    );
    let root = s.data("127.0.0.1", "/t/acme");
    assert_eq!(root.body, "hello from acme at http://127.0.0.1/");
}

#[test]
fn a_custom_route_reaches_its_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.admin(
        "PUT",
        "/v1/tenants/shop",
        Some(json!({"routes": ["shop.example.com"]})),
    );
    s.deploy(
        "shop",
        "export default { fetch() { return new Response('shop'); } };",
    );
    assert_eq!(s.data("shop.example.com", "/").body, "shop");
}

#[test]
fn request_bodies_and_methods_reach_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy("echo", "export default { async fetch(req) { return Response.json({ m: req.method, b: await req.text(), ct: req.headers.get('content-type') }); } };");
    let r = s.post("echo.localhost", "/", "payload");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["m"], "POST");
    assert_eq!(r.json()["b"], "payload");
}

#[test]
fn updating_under_load_fails_no_request_and_each_answer_comes_from_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(start(dir.path()));
    assert_eq!(s.deploy("live", &versioned("v1")).status, 201);
    let stop = Arc::new(AtomicBool::new(false));
    let v2_seen = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop, v2_seen) = (s.clone(), stop.clone(), v2_seen.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = s.data("live.localhost", "/");
                    assert_eq!(
                        r.status, 200,
                        "request failed during the update: {}",
                        r.body
                    );
                    assert!(r.body == "v1" || r.body == "v2", "mixed answer: {}", r.body);
                    if r.body == "v2" {
                        v2_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.deploy("live", &versioned("v2")).status, 201);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let total: usize = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .sum();
    assert!(total > 20, "only {total} requests");
    assert!(v2_seen.load(Ordering::Relaxed) > 0);
    // After the switch, every answer is v2.
    for _ in 0..10 {
        assert_eq!(s.data("live.localhost", "/").body, "v2");
    }
}

#[test]
fn rollback_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy("app", &versioned("v1"));
    s.deploy("app", &versioned("v2"));
    assert_eq!(s.data("app.localhost", "/").body, "v2");
    let r = s.admin("POST", "/v1/tenants/app/rollback", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], json!(1));
    assert_eq!(s.data("app.localhost", "/").body, "v1");
    let r = s.admin(
        "POST",
        "/v1/tenants/app/rollback",
        Some(json!({"version": 2})),
    );
    assert_eq!(r.json()["version"], json!(2));
    assert_eq!(s.data("app.localhost", "/").body, "v2");
    let info = s.admin("GET", "/v1/tenants/app", None).json();
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    assert_eq!(s.admin("DELETE", "/v1/tenants/app", None).status, 204);
    let gone = s.data("app.localhost", "/");
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"], "unknown_tenant");
    assert_eq!(s.admin("GET", "/v1/tenants/app", None).status, 404);
}

#[test]
fn after_a_restart_deployed_tenants_serve_again_from_the_code_cache() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = start(dir.path());
        s.admin(
            "PUT",
            "/v1/tenants/keep",
            Some(json!({"env": {"NAME": "kept"}})),
        );
        s.deploy("keep", HELLO);
        assert_eq!(s.data("keep.localhost", "/").status, 200);
        s.server_shutdown();
    }
    let s = start(dir.path());
    let r = s.data("keep.localhost", "/again");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "hello from kept at http://keep.localhost/again");
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_code_cache_lookups_total{tenant=\"keep\",result=\"hit\"} 1"),
        "first request after restart hits the code cache:\n{m}"
    );
    assert!(
        m.contains("isola_starts_total{tenant=\"keep\",state=\"cold\"} 1"),
        "{m}"
    );
}

#[test]
fn admin_requests_without_the_right_token_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    assert_eq!(s.admin_with_token("GET", "/v1/tenants", None).status, 401);
    assert_eq!(
        s.admin_with_token("GET", "/v1/tenants", Some("wrong"))
            .status,
        401
    );
    assert_eq!(
        s.admin_with_token("GET", "/v1/tenants", Some(crate::util::TOKEN))
            .status,
        200
    );
    assert_eq!(s.admin("PUT", "/v1/tenants/Bad_Id", None).status, 400);
}

#[test]
fn secrets_reach_the_handler_but_never_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let r = s.admin(
        "PUT",
        "/v1/tenants/sec",
        Some(json!({"secrets": {"API_KEY": "hunter2"}})),
    );
    assert!(!r.body.contains("hunter2"), "{}", r.body);
    s.deploy(
        "sec",
        "export default { fetch(req, env) { return new Response(env.API_KEY.length + ''); } };",
    );
    assert_eq!(s.data("sec.localhost", "/").body, "7");
    let info = s.admin("GET", "/v1/tenants/sec", None).body;
    assert!(
        !info.contains("hunter2") && info.contains("API_KEY"),
        "{info}"
    );
}

#[test]
fn errors_map_to_http_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.workers = 1;
    c.max_queue_per_worker = 2;
    c.admission_max_wait = Duration::from_millis(150);
    let s = Arc::new(start_with(c));
    // Unknown tenant: 404.
    let r = s.data("nobody.localhost", "/");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("unknown_tenant"))
    );
    // Limit exceeded: 503 naming the limit.
    s.admin(
        "PUT",
        "/v1/tenants/spin",
        Some(json!({"limits": {"cpu": 20}})),
    );
    s.deploy("spin", "export default { fetch() { for (;;) {} } };");
    let r = s.data("spin.localhost", "/");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "limit_exceeded");
    assert_eq!(r.json()["limit"], "cpu");
    assert_eq!(r.json()["value"], 20);
    // Handler exception: 500 with a request id, no stack unless opted in.
    s.deploy(
        "boom",
        "export default { fetch() { throw new Error('secret detail'); } };",
    );
    let r = s.data("boom.localhost", "/");
    assert_eq!(r.status, 500);
    assert!(r.json()["request_id"].is_string());
    assert!(!r.body.contains("secret detail"), "{}", r.body);
    s.admin(
        "PUT",
        "/v1/tenants/boom",
        Some(json!({"expose_errors": true})),
    );
    let r = s.data("boom.localhost", "/");
    assert!(r.body.contains("secret detail"), "{}", r.body);
    // Body too large: 413.
    s.admin(
        "PUT",
        "/v1/tenants/small",
        Some(json!({"max_body_bytes": 10})),
    );
    s.deploy(
        "small",
        "export default { fetch() { return new Response('ok'); } };",
    );
    assert_eq!(s.post("small.localhost", "/", &"x".repeat(100)).status, 413);
    // Concurrency past the tenant's limit: the request waits in the tenant's
    // queue; past the longest wait (150 ms here), 503 + Retry-After.
    s.admin(
        "PUT",
        "/v1/tenants/slow",
        Some(json!({"limits": {"max_concurrency": 1}})),
    );
    s.deploy("slow", "export default { async fetch() { await new Promise(r => setTimeout(r, 400)); return new Response('done'); } };");
    let s2 = s.clone();
    let first = std::thread::spawn(move || s2.data("slow.localhost", "/"));
    std::thread::sleep(Duration::from_millis(100));
    let r = s.data("slow.localhost", "/");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "queue_timeout");
    assert_eq!(r.json()["max_concurrency"], 1);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert_eq!(first.join().unwrap().body, "done");
    // Overload (the worker's queue is full): 503 + Retry-After.
    s.admin(
        "PUT",
        "/v1/tenants/slow",
        Some(json!({"limits": {"max_concurrency": 16}})),
    );
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let s2 = s.clone();
            std::thread::spawn(move || s2.data("slow.localhost", "/"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let r = s.data("slow.localhost", "/");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "overloaded");
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    for w in waiting {
        assert_eq!(w.join().unwrap().status, 200);
    }
}

#[test]
fn bad_code_is_refused_before_the_switch_and_the_old_version_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy("safe", &versioned("v1"));
    let r = s.deploy(
        "safe",
        "export default { fetch() { return new Response(; } };",
    );
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("index.js:1:"),
        "{}",
        r.body
    );
    let smoke = s.admin(
        "PUT",
        "/v1/tenants/safe/code",
        Some(json!({"files": {"index.js": "export default { fetch() { throw new Error('x'); } };"}, "smoke": {"method": "GET", "url": "/health"}})),
    );
    assert_eq!(smoke.status, 422, "{}", smoke.body);
    assert_eq!(s.data("safe.localhost", "/").body, "v1");
    assert_eq!(
        s.admin("GET", "/v1/tenants/safe", None).json()["version"],
        json!(1)
    );
}

#[test]
fn multi_file_bundles_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let r = s.admin(
        "PUT",
        "/v1/tenants/multi/code",
        Some(json!({"entry": "index.js", "files": {
            "index.js": "import { greet } from './lib/greet.js'; export default { fetch() { return new Response(greet('bundle')); } };",
            "lib/greet.js": "export const greet = (n) => `hi ${n}`;"
        }})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.data("multi.localhost", "/").body, "hi bundle");
}

#[test]
fn logs_and_metrics_show_what_tenants_did() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.admin(
        "PUT",
        "/v1/tenants/chatty",
        Some(json!({"limits": {"cpu": 20}})),
    );
    s.deploy("chatty", "export default { fetch(req) { console.log('visit', req.url); if (req.url.endsWith('/spin')) for (;;) {} return new Response('ok'); } };");
    s.data("chatty.localhost", "/a");
    s.data("chatty.localhost", "/spin");
    let logs = s.admin("GET", "/v1/tenants/chatty/logs", None).json();
    let text = logs["lines"].to_string();
    assert!(text.contains("visit http://chatty.localhost/a"), "{text}");
    assert!(
        text.contains("exceeded its CPU time limit of 20 ms"),
        "kill report in the logs: {text}"
    );
    assert!(
        text.contains("index.js:1:"),
        "kill report names the file and line: {text}"
    );
    let m = s.admin("GET", "/metrics", None).body;
    for series in [
        "isola_requests_total{tenant=\"chatty\",status=\"200\"} 1",
        "isola_requests_total{tenant=\"chatty\",status=\"503\"} 1",
        "isola_terminations_total{tenant=\"chatty\",cause=\"cpu\"} 1",
        "isola_cpu_seconds_total{tenant=\"chatty\"}",
        "isola_wall_seconds_bucket{tenant=\"chatty\",le=\"+Inf\"} 2",
        "isola_heap_bytes{tenant=\"chatty\"}",
        "isola_process_resident_bytes",
    ] {
        assert!(m.contains(series), "missing {series} in\n{m}");
    }
    let usage = &s.admin("GET", "/v1/tenants/chatty", None).json()["usage"];
    assert_eq!(usage["terminations"]["cpu"], json!(1));
    let openapi = s.admin_with_token("GET", "/v1/openapi.json", None).json();
    assert_eq!(openapi["openapi"], "3.1.0");
}

/// The OpenAPI document is generated from the handlers: every operation it
/// names is routed (the router's own 404/405 has an empty body; ours never).
#[test]
fn every_documented_operation_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let doc = s.admin_with_token("GET", "/v1/openapi.json", None).json();
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/tenants",
        "/v1/tenants/{id}/code",
        "/v1/workers",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url = format!(
                "http://{}{}",
                s.server.admin_addr,
                path.replace("{id}", "nosuch")
            );
            let r = ureq::request(&method.to_uppercase(), &url)
                .set("Authorization", &format!("Bearer {}", crate::util::TOKEN))
                .call();
            let (status, body) = match r {
                Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
                Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
                Err(e) => panic!("{method} {path}: {e}"),
            };
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
}

/// After its first kill, a tenant's code runs on the penalty worker, never
/// on the shared worker. Observed on the threads' own CPU clocks
/// (`/proc/self/task/*/stat`, by thread name), in a child process so that
/// the only `isola-worker-0` and `isola-penalty` threads are this server's.
#[test]
fn a_tenant_that_breaks_a_limit_cools_down_then_serves_again_on_the_penalty_worker() {
    crate::util::in_child(
        "api::a_tenant_that_breaks_a_limit_cools_down_then_serves_again_on_the_penalty_worker",
        Duration::from_secs(120),
    );
    if !crate::util::is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.workers = 1;
    let s = start_with(c);
    s.admin(
        "PUT",
        "/v1/tenants/rogue",
        Some(json!({"limits": {"cpu": 3000}})),
    );
    s.deploy("rogue", "export default { fetch(req) {
        if (req.url.endsWith('/spin')) for (;;) {}
        if (req.url.endsWith('/work')) { let x = 0; for (let i = 0; i < 3e7; i++) x = (x + i) | 0; return new Response('worked ' + (x !== 0.5)); }
        return new Response('fine');
    } };");
    assert_eq!(s.data("rogue.localhost", "/").body, "fine");
    // Before any kill, its work runs on the shared worker (in requests
    // shorter than the turn limit, past which a tenant would be moved to
    // the penalty worker too).
    let (shared, penalty) = crate::util::cpu_by_worker(|| {
        for _ in 0..10 {
            assert_eq!(s.data("rogue.localhost", "/work").body, "worked true");
        }
    });
    eprintln!("before the kill: shared worker {shared:?}, penalty worker {penalty:?}");
    assert!(shared >= Duration::from_millis(100), "{shared:?}");
    assert!(penalty < shared / 4, "{penalty:?} vs {shared:?}");
    assert!(!s.state.pool.is_quarantined("rogue"));

    assert_eq!(s.data("rogue.localhost", "/spin").json()["limit"], "cpu");
    assert!(s.state.pool.is_quarantined("rogue"));
    let r = s.data("rogue.localhost", "/");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "suspended");
    assert!(r.retry_after.is_some());
    let served = crate::raw::eventually(Duration::from_secs(5), || {
        let r = s.data("rogue.localhost", "/");
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(served.as_deref(), Some("fine"));

    // After the kill, the same work runs on the penalty worker only.
    let (shared, penalty) = crate::util::cpu_by_worker(|| {
        for _ in 0..10 {
            assert_eq!(s.data("rogue.localhost", "/work").body, "worked true");
        }
    });
    eprintln!("after the kill: shared worker {shared:?}, penalty worker {penalty:?}");
    assert!(penalty >= Duration::from_millis(100), "{penalty:?}");
    assert!(shared < penalty / 4, "{shared:?} vs {penalty:?}");
}

#[test]
fn wait_until_runs_after_the_response_and_first_requests_use_prewarmed_isolates() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    std::thread::sleep(Duration::from_millis(300)); // workers pre-create their blank isolates
    s.deploy(
        "later",
        "export default { fetch(req, env, ctx) {
            ctx.waitUntil(new Promise(r => setTimeout(() => { console.log('background done'); r(); }, 500)));
            return new Response('now');
        } };",
    );
    let t0 = std::time::Instant::now();
    let r = s.data("later.localhost", "/");
    assert_eq!(r.body, "now");
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "the response did not wait: {:?}",
        t0.elapsed()
    );
    let logs = || s.admin("GET", "/v1/tenants/later/logs", None).json()["lines"].to_string();
    assert!(!logs().contains("background done"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(logs().contains("background done"), "{}", logs());
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_prewarmed_starts_total{tenant=\"later\"} 1"),
        "{m}"
    );
}

#[test]
fn a_streamed_response_reaches_the_client_chunk_by_chunk() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy(
        "ticker",
        "export default { fetch() {
            let i = 0;
            return new Response(new ReadableStream({ async pull(c) {
                if (i > 0) await new Promise(r => setTimeout(r, 300));
                if (i === 3) return c.close();
                c.enqueue(`tick ${i++}\\n`);
            } }), { headers: { 'content-type': 'text/plain' } });
        } };",
    );
    let t0 = std::time::Instant::now();
    let resp = ureq::get(&format!("http://{}/", s.server.data_addr))
        .set("Host", "ticker.localhost")
        .call()
        .unwrap();
    let mut reader = resp.into_reader();
    let mut first = [0u8; 7];
    reader.read_exact(&mut first).unwrap();
    let first_at = t0.elapsed();
    assert_eq!(&first, b"tick 0\n");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let total = t0.elapsed();
    assert_eq!(rest, "tick 1\ntick 2\n");
    assert!(
        first_at < Duration::from_millis(250),
        "first chunk after {first_at:?}"
    );
    assert!(
        total >= Duration::from_millis(600),
        "whole body after {total:?}"
    );
}

#[test]
fn large_bodies_stream_through_without_being_buffered_whole() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.admin(
        "PUT",
        "/v1/tenants/bulk",
        Some(json!({"max_body_bytes": 64 << 20, "limits": {"heap_bytes": 32 << 20, "cpu": 2000}})),
    );
    s.deploy(
        "bulk",
        "export default { async fetch(req) {
            if (req.method === 'POST') {
                let n = 0, sum = 0;
                for await (const c of req.body) { n += c.length; sum = (sum + c[0]) % 251; }
                return Response.json({ n });
            }
            // 48 MiB generated 64 KiB at a time: more than the 32 MiB heap could hold at once.
            // After the first 1 MiB, the handler waits 2 s before producing the rest.
            const chunk = new Uint8Array(64 << 10).fill(120);
            let left = 768;
            return new Response(new ReadableStream({ async pull(c) {
                if (left === 768 - 16) await new Promise((r) => setTimeout(r, 2000));
                if (left-- === 0) c.close(); else c.enqueue(chunk);
            } }));
        } };",
    );
    let upload = vec![7u8; 40 << 20];
    let r = ureq::post(&format!("http://{}/", s.server.data_addr))
        .set("Host", "bulk.localhost")
        .send_bytes(&upload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    assert_eq!(v["n"], json!(40 << 20));
    let t0 = std::time::Instant::now();
    let resp = ureq::get(&format!("http://{}/", s.server.data_addr))
        .set("Host", "bulk.localhost")
        .call()
        .unwrap();
    let mut n = 0usize;
    let mut first_mib_at = None;
    let mut buf = vec![0u8; 1 << 16];
    let mut reader = resp.into_reader();
    loop {
        let k = reader.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        assert!(buf[..k].iter().all(|b| *b == 120));
        n += k;
        if n >= 1 << 20 && first_mib_at.is_none() {
            first_mib_at = Some(t0.elapsed());
        }
    }
    let total = t0.elapsed();
    assert_eq!(n, 48 << 20);
    // Not buffered whole: the first MiB reached the client while the handler
    // was still waiting on its 2 s timer, before the rest existed.
    let first = first_mib_at.unwrap();
    assert!(
        first < Duration::from_millis(1500),
        "the first MiB arrived after {first:?}"
    );
    assert!(
        total >= Duration::from_secs(2),
        "the whole body after {total:?}"
    );
}

/// Reads from `s` until `needle` has arrived (or the 10 s read timeout fails the test).
fn read_until(s: &mut std::net::TcpStream, seen: &mut Vec<u8>, needle: &str) {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let k = s.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "waiting for {needle:?}: {e}; got {:?}",
                String::from_utf8_lossy(seen)
            )
        });
        assert!(
            k > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..k]);
    }
}

#[test]
fn large_uploads_reach_the_handler_before_the_client_has_sent_them_whole() {
    // In both isolation modes: in process mode the body crosses the worker
    // socket with credit in each direction.
    for isolation in [
        isola_server::config::Isolation::Thread,
        isola_server::config::Isolation::Process,
    ] {
        uploads_stream_to_the_handler(isolation);
    }
}

fn uploads_stream_to_the_handler(isolation: isola_server::config::Isolation) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.isolation = isolation;
    let s = start_with(cfg);
    s.admin(
        "PUT",
        "/v1/tenants/duplex",
        Some(json!({"max_body_bytes": 8 << 20})),
    );
    // The handler answers at once and reports, per chunk of the upload it reads, how
    // many bytes it has seen so far.
    s.deploy(
        "duplex",
        "export default { async fetch(req) {
            const reader = req.body.getReader();
            const enc = new TextEncoder();
            let n = 0;
            return new Response(new ReadableStream({ async pull(c) {
                const { value, done } = await reader.read();
                if (done) { c.enqueue(enc.encode(`total ${n}\\n`)); c.close(); return; }
                n += value.length;
                c.enqueue(enc.encode(`seen ${n}\\n`));
            } }));
        } };",
    );
    for chunked in [false, true] {
        let mut c = crate::raw::connect(s.server.data_addr);
        let half = vec![b'u'; 1 << 20];
        let framing = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            format!("content-length: {}", 2 << 20)
        };
        write!(
            c,
            "POST / HTTP/1.1\r\nhost: duplex.localhost\r\n{framing}\r\n\r\n"
        )
        .unwrap();
        let send = |c: &mut std::net::TcpStream, last: bool| {
            if chunked {
                write!(c, "{:x}\r\n", half.len()).unwrap();
                c.write_all(&half).unwrap();
                c.write_all(if last { b"\r\n0\r\n\r\n" } else { b"\r\n" })
                    .unwrap();
            } else {
                c.write_all(&half).unwrap();
            }
        };
        send(&mut c, false);
        // Not buffered whole: the handler has read the first MiB while the second
        // does not exist yet (the client sends it only after this line arrives).
        let mut seen = Vec::new();
        read_until(&mut c, &mut seen, &format!("seen {}\n", 1 << 20));
        assert!(
            !String::from_utf8_lossy(&seen).contains("total"),
            "chunked={chunked} {isolation:?}"
        );
        send(&mut c, true);
        read_until(&mut c, &mut seen, &format!("total {}\n", 2 << 20));
        assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    }
}

#[test]
fn webassembly_is_a_per_tenant_setting() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let code = "export default { fetch() { return new Response(typeof WebAssembly); } };";
    assert!(s.deploy("plain", code).status < 300);
    let r = s.admin(
        "PUT",
        "/v1/tenants/wasm",
        Some(serde_json::json!({ "webassembly": true })),
    );
    assert!(r.status < 300, "{}", r.body);
    assert!(s.deploy("wasm", code).status < 300);
    assert_eq!(s.data("plain.localhost", "/").body, "undefined");
    assert_eq!(s.data("wasm.localhost", "/").body, "object");
}

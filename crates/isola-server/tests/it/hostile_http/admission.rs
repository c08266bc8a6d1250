//! Per-tenant admission: over-limit requests wait in a bounded FIFO queue,
//! and are refused (naming why) only when it is full or the wait expires.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::server;
use crate::raw::eventually;

#[test]
fn requests_over_a_tenants_concurrency_wait_in_its_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(server(dir.path(), |_| {}));
    s.admin(
        "PUT",
        "/v1/tenants/busy",
        Some(json!({"limits": {"max_concurrency": 2}})),
    );
    s.deploy(
        "busy",
        "export default { async fetch() { await new Promise(r => setTimeout(r, 30)); return new Response('done'); } };",
    );
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| {
                        let r = s.data("busy.localhost", "/");
                        (r.status, r.body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for c in clients {
        for (status, body) in c.join().unwrap() {
            assert_eq!((status, body.as_str()), (200, "done"));
        }
    }
}

#[test]
fn a_full_queue_and_an_expired_wait_get_503_naming_which() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(server(dir.path(), |c| {
        c.admission_queue_len = 1;
        c.admission_max_wait = Duration::from_millis(400);
    }));
    s.admin(
        "PUT",
        "/v1/tenants/one",
        Some(json!({"limits": {"max_concurrency": 1}})),
    );
    s.deploy(
        "one",
        "export default { async fetch(req) {
            if (req.url.endsWith('/hold')) { console.log('holding'); await new Promise(r => setTimeout(r, 4000)); }
            return new Response('ok');
        } };",
    );
    let holder = std::thread::spawn({
        let s = s.clone();
        move || s.data("one.localhost", "/hold")
    });
    let holding = eventually(Duration::from_secs(10), || {
        let logs = s.admin("GET", "/v1/tenants/one/logs", None).body;
        logs.contains("holding").then_some(())
    });
    assert!(holding.is_some(), "the holding request never started");
    // Two more: one fills the queue and waits it out, the other finds it full.
    let extra: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.data("one.localhost", "/"))
        })
        .collect();
    let mut answers: Vec<_> = extra.into_iter().map(|t| t.join().unwrap()).collect();
    answers.sort_by_key(|r| r.json()["error"].as_str().map(str::to_string));
    let (full, waited) = (&answers[0], &answers[1]);
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.json()["error"], "queue_full");
    assert_eq!(full.json()["queue_capacity"], 1);
    assert_eq!(full.retry_after.as_deref(), Some("1"));
    assert_eq!(waited.status, 503, "{}", waited.body);
    assert_eq!(waited.json()["error"], "queue_timeout");
    assert_eq!(waited.json()["max_wait_ms"], 400);
    assert_eq!(waited.retry_after.as_deref(), Some("1"));
    assert_eq!(holder.join().unwrap().body, "ok");
}

#[test]
fn requests_parked_for_a_suspended_tenant_do_not_hold_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(server(dir.path(), |c| {
        c.admission_max_wait = Duration::from_millis(500);
    }));
    s.admin(
        "PUT",
        "/v1/tenants/cool",
        Some(json!({"limits": {"max_concurrency": 1, "cpu": 20}})),
    );
    s.deploy(
        "cool",
        "export default { fetch(req) { if (req.url.endsWith('/spin')) for (;;) {} return new Response('fine'); } };",
    );
    // Four kills in a row: the cool-down doubles to 2 s, longer than the
    // 1 s a parked request is held and than the 500 ms queue wait below.
    let mut kills = 0;
    for _ in 0..20 {
        if kills == 4 {
            break;
        }
        let r = s.data("cool.localhost", "/spin");
        match r.json()["error"].as_str() {
            Some("limit_exceeded") => kills += 1,
            Some("suspended") => {}
            _ => panic!("{} {}", r.status, r.body),
        }
    }
    assert_eq!(kills, 4);
    // While it cools down, each request is parked (up to 1 s), then refused
    // as suspended; none waits for another's slot.
    let parked: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.data("cool.localhost", "/"))
        })
        .collect();
    for p in parked {
        let r = p.join().unwrap();
        assert!(
            r.status == 200 || r.json()["error"] == "suspended",
            "{} {}",
            r.status,
            r.body
        );
    }
}

#[test]
fn queued_requests_are_admitted_first_come_first_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(server(dir.path(), |_| {}));
    s.admin(
        "PUT",
        "/v1/tenants/fifo",
        Some(json!({"limits": {"max_concurrency": 1}})),
    );
    s.deploy(
        "fifo",
        "export default { async fetch(req) {
            const path = req.url.split('/').pop();
            console.log('ran ' + path);
            if (path === 'hold') await new Promise(r => setTimeout(r, 300));
            return new Response(path);
        } };",
    );
    let holder = std::thread::spawn({
        let s = s.clone();
        move || s.data("fifo.localhost", "/hold")
    });
    let logs = || s.admin("GET", "/v1/tenants/fifo/logs", None).json()["lines"].to_string();
    assert!(eventually(Duration::from_secs(10), || logs()
        .contains("ran hold")
        .then_some(()))
    .is_some());
    // Each request joins the queue only once the one before it is waiting.
    let queued: Vec<_> = (0..6)
        .map(|i| {
            let t = std::thread::spawn({
                let s = s.clone();
                move || s.data("fifo.localhost", &format!("/q{i}"))
            });
            let waiting = eventually(Duration::from_secs(5), || {
                (s.state.admission.waiting("fifo") == i + 1).then_some(())
            });
            assert!(waiting.is_some(), "request {i} never queued");
            t
        })
        .collect();
    assert_eq!(holder.join().unwrap().body, "hold");
    for (i, t) in queued.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().body, format!("q{i}"));
    }
    let text = logs();
    let order: Vec<usize> = (0..6)
        .map(|i| text.find(&format!("ran q{i}")).expect("ran"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not FIFO: {text}");
}

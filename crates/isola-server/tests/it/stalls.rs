//! One tenant's slow steps do not stall the other tenants on its worker.

use std::time::{Duration, Instant};

use crate::util::{config, start_with, TestServer};

const QUICK: &str = "export default { fetch() { return new Response('quick'); } };";

/// A server with one worker (every tenant lives on the same thread) and
/// `tenants` deployed, each `(id, source)`.
fn one_worker(dir: &std::path::Path, tenants: &[(&str, &str)]) -> TestServer {
    let mut c = config(dir);
    c.workers = 1;
    let s = start_with(c);
    for (id, source) in tenants {
        let r = s.deploy(id, source);
        assert!(r.status < 300, "deploying {id}: {r:?}");
    }
    s
}

#[test]
fn a_cold_start_awaiting_a_timer_does_not_stall_tenants_on_the_same_worker() {
    let dir = tempfile::tempdir().unwrap();
    let slow = "await new Promise((r) => setTimeout(r, 2000));\n\
                export default { fetch() { return new Response('slow ready'); } };";
    let s = one_worker(dir.path(), &[("slow", slow), ("quick", QUICK)]);
    assert_eq!(s.data("quick.localhost", "/").body, "quick");
    // Its first request runs on the probation worker; from then on it is
    // the shared worker's tenant, and its cold start there is what we watch.
    assert_eq!(s.data("slow.localhost", "/").body, "slow ready");
    std::thread::scope(|scope| {
        let t0 = Instant::now();
        let cold = scope.spawn(|| s.data("slow.localhost", "/"));
        // While the slow tenant's top-level code waits for its timer, the
        // quick tenant on the same worker answers promptly, again and again.
        let mut answered = 0;
        while t0.elapsed() < Duration::from_millis(1200) {
            let q0 = Instant::now();
            let r = s.data("quick.localhost", "/");
            let took = q0.elapsed();
            assert_eq!((r.status, r.body.as_str()), (200, "quick"));
            assert!(
                took < Duration::from_millis(250),
                "a neighbour waited {took:?} behind a cold start"
            );
            answered += 1;
        }
        assert!(answered > 5, "{answered}");
        let r = cold.join().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "slow ready"));
        assert!(
            t0.elapsed() >= Duration::from_millis(1900),
            "{:?}",
            t0.elapsed()
        );
    });
}

#[test]
fn a_long_slice_hands_the_workers_other_tenants_to_a_new_thread() {
    let dir = tempfile::tempdir().unwrap();
    let s = one_worker(dir.path(), &[("quick", QUICK)]);
    // A tenant allowed 3 s of CPU per request, which spends 1.5 s in one slice
    // (as an isolate stuck in a builtin that ignores termination would).
    let r = s.admin(
        "PUT",
        "/v1/tenants/long",
        Some(serde_json::json!({ "limits": { "cpu": 3000 } })),
    );
    assert!(r.status < 300, "{r:?}");
    let long = "export default { fetch() { const end = Date.now() + 1500; while (Date.now() < end) {} return new Response('long done'); } };";
    assert!(s.deploy("long", long).status < 300);
    assert_eq!(s.data("quick.localhost", "/").body, "quick");
    // Warm: the first request runs on the probation worker, the next ones
    // on the shared worker with `quick`.
    assert_eq!(s.data("long.localhost", "/").body, "long done");
    std::thread::scope(|scope| {
        let t0 = Instant::now();
        let busy = scope.spawn(|| s.data("long.localhost", "/"));
        let mut answered = 0;
        let mut slowest = Duration::ZERO;
        while t0.elapsed() < Duration::from_millis(1200) {
            let q0 = Instant::now();
            let r = s.data("quick.localhost", "/");
            slowest = slowest.max(q0.elapsed());
            assert_eq!((r.status, r.body.as_str()), (200, "quick"));
            answered += 1;
        }
        // The takeover happens 150 ms into the long turn (checked every
        // 10 ms); the neighbour's isolate is then created again on the new
        // thread from the code cache.
        assert!(
            slowest < Duration::from_millis(250),
            "a neighbour waited {slowest:?} behind another tenant's slice"
        );
        assert!(answered > 5, "{answered}");
        let r = busy.join().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "long done"));
    });
}

#[test]
fn a_tenants_burst_takes_turns_with_its_workers_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    // Each request spins 30 ms of wall time (under the default 50 ms CPU budget).
    let burst = "export default { fetch() { const end = Date.now() + 30; while (Date.now() < end) {} return new Response('b'); } };";
    let s = one_worker(dir.path(), &[("burst", burst), ("quick", QUICK)]);
    assert_eq!(s.data("burst.localhost", "/").body, "b");
    assert_eq!(s.data("quick.localhost", "/").body, "quick");
    std::thread::scope(|scope| {
        let t0 = Instant::now();
        let senders: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| s.data("burst.localhost", "/")))
            .collect();
        let mut slowest = Duration::ZERO;
        let mut answered = 0;
        // 16 × 30 ms = 480 ms of the burst tenant's work is queued; the
        // neighbour is served between two of its requests.
        while t0.elapsed() < Duration::from_millis(400) {
            let q0 = Instant::now();
            assert_eq!(s.data("quick.localhost", "/").body, "quick");
            slowest = slowest.max(q0.elapsed());
            answered += 1;
        }
        assert!(answered > 3, "{answered}");
        assert!(
            slowest < Duration::from_millis(120),
            "the neighbour waited {slowest:?} behind another tenant's burst"
        );
        for h in senders {
            let r = h.join().unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "b"));
        }
    });
}

#[test]
fn a_worker_that_panics_answers_its_request_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let ok = "export default { fetch() { return new Response('fine'); } };";
    let s = one_worker(dir.path(), &[("boom", ok), ("calm", ok)]);
    assert_eq!(s.data("calm.localhost", "/").body, "fine");
    // After its first request (on the probation worker) `boom` runs on the
    // shared worker, with `calm`.
    assert_eq!(s.data("boom.localhost", "/").body, "fine");
    // The test-only hook (feature `test-hooks`) panics the worker thread
    // after it began this request.
    let t0 = Instant::now();
    let r = s.data("boom.localhost", "/__isola_test_panic");
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body.contains("the worker serving this request panicked"),
        "{}",
        r.body
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // The same worker serves on: both tenants, isolates created again.
    assert_eq!(s.data("calm.localhost", "/").body, "fine");
    assert_eq!(s.data("boom.localhost", "/").body, "fine");
}

#[test]
fn requests_accepted_before_a_long_turn_are_served_by_the_new_thread() {
    let dir = tempfile::tempdir().unwrap();
    // `held` keeps its first request in flight (awaiting a timer), so its
    // second one waits in the worker's queue, accepted but not begun.
    let held = "export default { async fetch(req) {
        if (req.url.endsWith('/hold')) { console.log('holding'); await new Promise((r) => setTimeout(r, 400)); }
        return new Response('held ' + req.url.slice(-4));
    } };";
    let s = one_worker(dir.path(), &[("held", held)]);
    // After one request (on the probation worker) `held` runs on the shared worker.
    assert_eq!(s.data("held.localhost", "/warm").body, "held warm");
    let r = s.admin(
        "PUT",
        "/v1/tenants/long",
        Some(serde_json::json!({ "limits": { "cpu": 5000, "wall": 10000 } })),
    );
    assert!(r.status < 300, "{r:?}");
    let long = "export default { fetch() { const end = Date.now() + 3000; while (Date.now() < end) {} return new Response('long done'); } };";
    assert!(s.deploy("long", long).status < 300);
    assert_eq!(s.data("long.localhost", "/").body, "long done"); // off probation
    std::thread::scope(|scope| {
        let first = scope.spawn(|| s.data("held.localhost", "/hold"));
        let logs = || s.admin("GET", "/v1/tenants/held/logs", None).json()["lines"].to_string();
        let t = Instant::now();
        while !logs().contains("holding") {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the first request never began"
            );
        }
        let t0 = Instant::now();
        let s = &s;
        let second = scope.spawn(move || (s.data("held.localhost", "/next"), t0.elapsed()));
        // Both of `held`'s requests are on the worker before the long turn begins.
        let on_workers = || {
            let m = s.admin("GET", "/metrics", None).body;
            m.lines().any(|l| l == "isola_worker_requests 2")
        };
        while !on_workers() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the second request never queued"
            );
        }
        let busy = scope.spawn(|| s.data("long.localhost", "/"));
        // The long turn begins while the second request waits; the thread that
        // takes over 150 ms into it serves that request (a fresh isolate of
        // `held`), instead of leaving it with the thread stuck in the turn.
        let (r, took) = second.join().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "held next"));
        assert!(
            took < Duration::from_millis(1500),
            "the waiting request was answered after {took:?}, behind the 3 s turn"
        );
        let r = first.join().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "held hold"));
        let r = busy.join().unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "long done"));
    });
}

/// The work measured ran on worker `name`: it spent at least `min_ms` of
/// CPU there, and the other worker less than a quarter of that.
fn mostly_on(name: &str, there: Duration, other: Duration, min_ms: u64) {
    assert!(
        there >= Duration::from_millis(min_ms) && other < there / 4,
        "expected the work on the {name} worker: {there:?} there, {other:?} on the other"
    );
}

/// A tenant version whose behaviour is not known yet (just deployed, or
/// back from quarantine) runs on the probation worker until one of its
/// requests ran to its end within its limits: a first request that spins
/// never takes the shared worker's time from its proven tenants. Observed on
/// the threads' own CPU clocks, in a child process so that the only worker
/// threads are this server's.
#[test]
fn a_new_tenant_version_runs_on_the_probation_worker_until_a_request_ends_within_its_limits() {
    crate::util::in_child(
        "stalls::a_new_tenant_version_runs_on_the_probation_worker_until_a_request_ends_within_its_limits",
        Duration::from_secs(120),
    );
    if !crate::util::is_child() {
        return;
    }
    let work = |tag: &str| {
        format!(
            "export default {{ fetch(req) {{
                if (req.url.endsWith('/spin')) for (;;) {{}}
                const n = req.url.endsWith('/big') ? 8e7 : 2e7;
                let x = 0; for (let i = 0; i < n; i++) x = (x + i) | 0;
                return new Response('{tag} ' + (x !== 0.5));
            }} }};"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let s = one_worker(dir.path(), &[("quick", QUICK)]);
    let r = s.admin(
        "PUT",
        "/v1/tenants/fresh",
        Some(serde_json::json!({ "limits": { "cpu": 2000 } })),
    );
    assert!(r.status < 300, "{r:?}");
    assert!(s.deploy("fresh", &work("v1")).status < 300);
    let threads = ["isola-worker-0", "isola-probation"];
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        assert_eq!(s.data("fresh.localhost", "/big").body, "v1 true");
    });
    eprintln!("first request: shared {shared:?}, probation {probation:?}");
    mostly_on("probation", probation, shared, 50);

    // It answered within its limits: its next requests run on the shared worker.
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        for _ in 0..10 {
            assert_eq!(s.data("fresh.localhost", "/").body, "v1 true");
        }
    });
    eprintln!("proven: shared {shared:?}, probation {probation:?}");
    mostly_on("shared", shared, probation, 100);

    // A new version is unknown again, and its first request, which spins
    // until its 2 s CPU limit, runs on the probation worker while the shared
    // worker's tenant answers at once.
    // (Its CPU is not counted here: the probation thread the spin holds is
    // taken over and exits when the spin ends, and with it its CPU clock.)
    assert!(s.deploy("fresh", &work("v2")).status < 300);
    let takeovers = |name: &str| {
        let w = s.admin("GET", "/v1/workers", None).json();
        let t = w["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .find(|t| t["name"] == name);
        t.unwrap_or_else(|| panic!("no worker {name} in {w}"))["takeovers"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (takeovers("isola-worker-0"), takeovers("isola-probation")),
        (0, 0)
    );
    {
        std::thread::scope(|scope| {
            let spin = scope.spawn(|| s.data("fresh.localhost", "/spin"));
            let mut slowest = Duration::ZERO;
            while !spin.is_finished() {
                let q0 = Instant::now();
                assert_eq!(s.data("quick.localhost", "/").body, "quick");
                slowest = slowest.max(q0.elapsed());
            }
            let r = spin.join().unwrap();
            assert_eq!(r.json()["limit"], "cpu", "{}", r.body);
            assert!(
                slowest < Duration::from_millis(250),
                "the shared worker's tenant waited {slowest:?}"
            );
        });
    }
    // The spin held the probation worker past the turn limit; the shared
    // worker was never held.
    assert_eq!(
        (takeovers("isola-worker-0"), takeovers("isola-probation")),
        (0, 1)
    );
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_worker_takeovers_total{worker=\"isola-probation\"} 1"),
        "{m}"
    );

    // A version that earned trust keeps it across a restart (the store
    // keeps it), one that never ran a request does not, and a settings
    // change after the restart is a new deployment that earns it again.
    for id in ["steady", "idle", "tuned"] {
        let limits = serde_json::json!({ "limits": { "cpu": 2000 } });
        let r = s.admin("PUT", &format!("/v1/tenants/{id}"), Some(limits));
        assert!(r.status < 300, "{r:?}");
        assert!(s.deploy(id, &work(id)).status < 300);
    }
    assert_eq!(s.data("steady.localhost", "/").body, "steady true");
    assert_eq!(s.data("tuned.localhost", "/").body, "tuned true");
    let db = rusqlite::Connection::open(dir.path().join("isola.db")).unwrap();
    let t0 = Instant::now();
    while db
        .query_row("SELECT count(*) FROM tenant_trust", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        < 2
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the trust never reached the store"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    s.server_shutdown();
    let mut c = config(dir.path());
    c.workers = 1;
    let s = start_with(c);
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        assert_eq!(s.data("steady.localhost", "/big").body, "steady true");
    });
    eprintln!("restored and trusted: shared {shared:?}, probation {probation:?}");
    mostly_on("shared", shared, probation, 50);
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        assert_eq!(s.data("idle.localhost", "/big").body, "idle true");
    });
    eprintln!("restored, never ran: shared {shared:?}, probation {probation:?}");
    mostly_on("probation", probation, shared, 50);
    let limits = serde_json::json!({ "limits": { "cpu": 3000 } });
    assert!(s.admin("PUT", "/v1/tenants/tuned", Some(limits)).status < 300);
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        assert_eq!(s.data("tuned.localhost", "/big").body, "tuned true");
    });
    eprintln!("restored, settings changed: shared {shared:?}, probation {probation:?}");
    mostly_on("probation", probation, shared, 50);
}

/// Trust is earned when the whole invocation ends within its limits, its
/// `ctx.waitUntil` work included: requests that arrive while that work still
/// runs stay on the probation worker.
#[test]
fn trust_waits_for_wait_until_work_to_end() {
    crate::util::in_child(
        "stalls::trust_waits_for_wait_until_work_to_end",
        Duration::from_secs(120),
    );
    if !crate::util::is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = one_worker(dir.path(), &[("quick", QUICK)]);
    let r = s.admin(
        "PUT",
        "/v1/tenants/late",
        Some(serde_json::json!({ "limits": { "cpu": 1000 } })),
    );
    assert!(r.status < 300, "{r:?}");
    // The first request answers at once and leaves 600 ms of timer-driven
    // work behind it.
    let late = "export default { fetch(req, env, ctx) {
        if (req.url.endsWith('/work')) { let x = 0; for (let i = 0; i < 8e7; i++) x = (x + i) | 0; return new Response('worked ' + (x !== 0.5)); }
        ctx.waitUntil(new Promise((r) => setTimeout(r, 600)));
        return new Response('answered');
    } };";
    assert!(s.deploy("late", late).status < 300);
    assert_eq!(s.data("late.localhost", "/").body, "answered");
    let threads = ["isola-worker-0", "isola-probation"];
    let [shared, probation] = crate::util::cpu_of_threads(threads, || {
        assert_eq!(s.data("late.localhost", "/work").body, "worked true");
    });
    eprintln!("while its waitUntil work runs: shared {shared:?}, probation {probation:?}");
    mostly_on("probation", probation, shared, 50);
    // Once that work ended within its limits, the tenant is trusted.
    let t0 = Instant::now();
    loop {
        let [shared, probation] = crate::util::cpu_of_threads(threads, || {
            assert_eq!(s.data("late.localhost", "/work").body, "worked true");
        });
        if shared >= Duration::from_millis(50) && probation < shared / 4 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "never trusted: shared {shared:?}, probation {probation:?}"
        );
    }
}

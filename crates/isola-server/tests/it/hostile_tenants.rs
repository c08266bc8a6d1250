//! Issue 7 end to end: hostile tenants against `isola serve` running
//! in-process with ONE worker, so each hostile tenant shares its worker
//! thread with a well-behaved neighbour. For every class of attack: (a) the
//! hostile request gets the specific error naming the limit, (b) the
//! neighbour keeps answering within a stated latency bound while the attack
//! runs, (c) the process lives (`/healthz` on the admin listener), (d) the
//! hostile tenant's next request gets a clear answer (503 `suspended` during
//! the cool-down, then a correct result). The memory checks live in
//! `memory`; the penalty-worker check is in `api.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::raw::eventually;
use crate::util::{config, start_with, Resp, TestServer};

mod memory;

/// The neighbour's worst latency allowed while an attack runs on its worker.
///
/// A hostile invocation holds the shared worker for at most its CPU budget
/// (50 ms here) plus the termination grace (200 ms, only if V8 is slow to
/// honour the termination), plus dropping and recreating the killed isolate
/// (a few ms); after its first kill the tenant runs on the penalty worker.
/// The remaining margin absorbs a loaded 2-core test machine.
pub(crate) const NEIGHBOUR_BOUND: Duration = Duration::from_millis(500);

pub(crate) const CALM: &str = "export default { fetch() { return new Response('calm'); } };";

/// A one-worker server with the neighbour `calm` deployed.
pub(crate) fn one_worker_server(dir: &std::path::Path) -> TestServer {
    let mut c = config(dir);
    c.workers = 1;
    let s = start_with(c);
    assert_eq!(s.deploy("calm", CALM).status, 201);
    assert_eq!(s.data("calm.localhost", "/").body, "calm");
    s
}

/// Deploys `id` with test limits (and errors exposed, to assert their text).
pub(crate) fn deploy_hostile(s: &TestServer, id: &str, source: &str) {
    deploy_hostile_cpu(s, id, source, 50)
}

/// [`deploy_hostile`] with a CPU budget of `cpu` ms.
pub(crate) fn deploy_hostile_cpu(s: &TestServer, id: &str, source: &str, cpu: u64) {
    let r = s.admin(
        "PUT",
        &format!("/v1/tenants/{id}"),
        Some(json!({"expose_errors": true, "limits": {
            "cpu": cpu, "heap_bytes": 32 << 20, "external_memory_bytes": 16 << 20, "wall": 5000
        }})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.deploy(id, source);
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Neighbour latencies measured while `attack` runs.
pub(crate) struct Probe {
    pub latencies: Vec<Duration>,
    pub failures: Vec<String>,
}

impl Probe {
    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// Runs `attack` while another thread asks the neighbour every 5 ms;
/// returns the attack's result and the neighbour's latencies.
pub(crate) fn while_probing<T>(s: &Arc<TestServer>, attack: impl FnOnce() -> T) -> (T, Probe) {
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut p = Probe {
                latencies: Vec::new(),
                failures: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) || p.latencies.len() < 3 {
                let t0 = Instant::now();
                let r = s.data("calm.localhost", "/");
                p.latencies.push(t0.elapsed());
                if (r.status, r.body.as_str()) != (200, "calm") {
                    p.failures.push(format!("{} {}", r.status, r.body));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            p
        })
    };
    let out = attack();
    stop.store(true, Ordering::Relaxed);
    (out, prober.join().expect("prober thread"))
}

/// The suspended answer during the cool-down, then `ok` within `bound`.
pub(crate) fn serves_again(s: &TestServer, host: &str, ok: &str, bound: Duration) -> Resp {
    eventually(bound, || {
        let r = s.data(host, "/");
        if r.status == 503 {
            assert_eq!(r.json()["error"], "suspended", "{}", r.body);
            assert!(r.retry_after.is_some(), "{r:?}");
            return None;
        }
        Some(r)
    })
    .filter(|r| (r.status, r.body.as_str()) == (200, ok))
    .unwrap_or_else(|| panic!("{host} did not serve {ok:?} again within {bound:?}"))
}

/// One attack class: source (answering `/attack` with the attack and `/`
/// with `ok`), the expected answer to `/attack`, whether it is a kill.
struct Class {
    name: &'static str,
    attack: &'static str,
    expect: fn(&Resp) -> bool,
    kill: bool,
}

fn limit(r: &Resp, kind: &str) -> bool {
    r.status == 503 && r.json()["error"] == "limit_exceeded" && r.json()["limit"] == kind
}

fn exception(r: &Resp, name: &str, needle: &str) -> bool {
    let j: Value = r.json();
    r.status == 500
        && j["error"] == "exception"
        && j["exception"]["name"] == name
        && j["exception"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(needle)
}

const CLASSES: &[Class] = &[
    Class {
        name: "cpu loop",
        attack: "for (;;) {}",
        expect: |r| limit(r, "cpu") && r.json()["value"] == 50,
        kill: true,
    },
    Class {
        name: "heap flood",
        attack: "const a = []; for (;;) a.push(new Array(1e5).fill(1.5));",
        expect: |r| limit(r, "heap"),
        kill: true,
    },
    Class {
        name: "ArrayBuffer flood",
        attack: "const a = []; for (;;) a.push(new ArrayBuffer(1 << 20));",
        expect: |r| limit(r, "external_memory") && r.json()["value"] == 16 << 20,
        kill: true,
    },
    Class {
        name: "resizable ArrayBuffer, object options",
        attack: "const b = new ArrayBuffer(1, { maxByteLength: 2 ** 30 }); b.resize(2 ** 30);",
        expect: |r| exception(r, "RangeError", "resizable buffers (maxByteLength) are not available"),
        kill: false,
    },
    Class {
        name: "resizable ArrayBuffer, function options",
        attack: "const o = function () {}; o.maxByteLength = 2 ** 30; const b = new ArrayBuffer(1, o); b.resize(2 ** 30); new Uint8Array(b).fill(1);",
        expect: |r| exception(r, "RangeError", "resizable buffers (maxByteLength) are not available"),
        kill: false,
    },
    Class {
        name: "growable SharedArrayBuffer",
        attack: "const b = new SharedArrayBuffer(1, { maxByteLength: 2 ** 30 }); b.grow(2 ** 30); new Uint8Array(b).fill(1);",
        expect: |r| {
            r.status == 500
                && r.json()["error"] == "handler_failed"
                && r.json()["message"].as_str().unwrap_or("").contains("growable SharedArrayBuffer")
        },
        kill: true,
    },
    Class {
        name: "patched Array.prototype.push with a huge length",
        attack: "Array.prototype.push = function () { this.length = 0xFFFFFFFF; return 0; }; return new Response('pushed', { headers: [['x-a', '1'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']] });",
        expect: |r| (r.status, r.body.as_str()) == (200, "pushed"),
        kill: false,
    },
    Class {
        name: "Date.toLocaleString",
        attack: "return new Response(new Date(0).toLocaleString('en-US', { timeZone: 'UTC' }));",
        expect: |r| (r.status, r.body.as_str()) == (200, "1/1/1970, 12:00:00 AM"),
        kill: false,
    },
    Class {
        name: "huge response headers",
        attack: "const h = new Headers(); for (let i = 0; i < 5000; i++) h.append('x-h' + i, 'v'.repeat(2000)); return new Response('x', { headers: h });",
        expect: |r| exception(r, "TypeError", "(the limit)") && r.body.len() < 4096,
        kill: false,
    },
    Class {
        name: "oversized response body",
        attack: "return new Response(new Uint8Array(20 << 20));",
        expect: |r| limit(r, "external_memory"),
        // A refusal, not a termination (the isolate is kept), but the pool
        // quarantines every broken limit alike.
        kill: true,
    },
];

fn source(attack: &str) -> String {
    format!("export default {{ fetch(req) {{ if (req.url.endsWith('/attack')) {{ {attack} }} return new Response('ok'); }} }};")
}

#[test]
fn each_hostile_tenant_gets_its_specific_error_while_its_worker_neighbour_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(one_worker_server(dir.path()));
    let mut report = Vec::new();
    for (i, class) in CLASSES.iter().enumerate() {
        let id = format!("hostile{i}");
        let host = format!("{id}.localhost");
        // Filling a 32 MiB heap (garbage collections) and building 100k
        // headers (a debug build's op) can use more than 50 ms of CPU on a
        // loaded machine: these classes get 1 s, so their own limit is what
        // stops them.
        let cpu = match class.name {
            "heap flood" | "huge response headers" => 1000,
            _ => 50,
        };
        deploy_hostile_cpu(&s, &id, &source(class.attack), cpu);
        assert_eq!(s.data(&host, "/").body, "ok", "{}", class.name);
        let (r, probe) = while_probing(&s, || s.data(&host, "/attack"));
        // (a) the specific error.
        assert!(
            (class.expect)(&r),
            "{}: unexpected answer {} {}",
            class.name,
            r.status,
            r.body
        );
        // (b) the neighbour on the same worker answered every request, fast.
        assert!(
            probe.failures.is_empty(),
            "{}: neighbour failed: {:?}",
            class.name,
            probe.failures
        );
        assert!(
            probe.max() < NEIGHBOUR_BOUND,
            "{}: neighbour took {:?} (bound {NEIGHBOUR_BOUND:?})",
            class.name,
            probe.max()
        );
        // (c) the process lives.
        assert_eq!(s.admin_with_token("GET", "/healthz", None).body, "ok");
        // (d) the next request: suspended during the cool-down after a kill,
        // then served; at once otherwise.
        if class.kill {
            let r = s.data(&host, "/");
            assert_eq!(
                (r.status, r.json()["error"].clone()),
                (503, json!("suspended")),
                "{}",
                class.name
            );
            assert!(s.state.pool.is_quarantined(&id), "{}", class.name);
            serves_again(&s, &host, "ok", Duration::from_secs(5));
        } else {
            assert_eq!(s.data(&host, "/").body, "ok", "{}", class.name);
            assert!(!s.state.pool.is_quarantined(&id), "{}", class.name);
        }
        report.push(format!(
            "{}: neighbour max {:?} over {} requests",
            class.name,
            probe.max(),
            probe.latencies.len()
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn wait_until_work_that_burns_cpu_is_stopped_after_the_response_and_the_neighbour_keeps_answering()
{
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(one_worker_server(dir.path()));
    deploy_hostile(
        &s,
        "late",
        "export default { fetch(req, env, ctx) { if (req.url.endsWith('/attack')) ctx.waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => { for (;;) {} })); return new Response('ok'); } };",
    );
    let (r, probe) = while_probing(&s, || {
        let r = s.data("late.localhost", "/attack");
        // The kill lands after the response: wait for it in the tenant's logs.
        let killed = eventually(Duration::from_secs(5), || {
            let logs = s.admin("GET", "/v1/tenants/late/logs", None).json()["lines"].to_string();
            logs.contains("ctx.waitUntil work stopped").then_some(logs)
        });
        (r, killed)
    });
    let (r, killed) = r;
    // (a) the response went out; the background work was stopped by the CPU limit.
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert!(
        killed.is_some(),
        "no CPU termination for the waitUntil work"
    );
    let logs = s.admin("GET", "/v1/tenants/late/logs", None).json()["lines"].to_string();
    assert!(
        logs.contains(
            "ctx.waitUntil work stopped: tenant \\\"late\\\" exceeded its CPU time limit of 50 ms"
        ),
        "{logs}"
    );
    // (b), (c), (d).
    assert!(probe.failures.is_empty(), "{:?}", probe.failures);
    assert!(
        probe.max() < NEIGHBOUR_BOUND,
        "neighbour took {:?}",
        probe.max()
    );
    assert_eq!(s.admin_with_token("GET", "/healthz", None).body, "ok");
    // (d) the kill quarantined the tenant: it is refused during its
    // cool-down, then runs again (on a fresh isolate, on the penalty worker).
    let next = s.data("late.localhost", "/");
    assert_eq!(next.status, 503, "{next:?}");
    assert_eq!(next.json()["error"], "suspended", "{next:?}");
    let again = eventually(Duration::from_secs(5), || {
        let r = s.data("late.localhost", "/");
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(again.as_deref(), Some("ok"));
    eprintln!(
        "waitUntil: neighbour max {:?} over {} requests",
        probe.max(),
        probe.latencies.len()
    );
}

#[test]
fn a_wait_until_kill_after_the_response_is_counted_and_quarantines_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = one_worker_server(dir.path());
    deploy_hostile(
        &s,
        "late",
        "export default { fetch(req, env, ctx) { if (req.url.endsWith('/attack')) ctx.waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => { for (;;) {} })); return new Response('ok'); } };",
    );
    assert_eq!(s.data("late.localhost", "/attack").body, "ok");
    let killed = eventually(Duration::from_secs(5), || {
        let logs = s.admin("GET", "/v1/tenants/late/logs", None).json()["lines"].to_string();
        logs.contains("ctx.waitUntil work stopped").then_some(())
    });
    assert!(
        killed.is_some(),
        "no CPU termination for the waitUntil work"
    );
    // The log line is written as the kill is handled; the metric right after.
    let counted = eventually(Duration::from_secs(5), || {
        let m = s.admin("GET", "/metrics", None).body;
        m.contains("isola_terminations_total{tenant=\"late\",cause=\"cpu\"} 1")
            .then_some(())
    });
    assert!(
        counted.is_some(),
        "the kill is not in the metrics: {}",
        s.admin("GET", "/metrics", None).body
    );
    assert!(
        s.state.pool.is_quarantined("late"),
        "the tenant was not quarantined"
    );
}

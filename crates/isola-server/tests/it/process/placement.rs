//! Placement in process mode: the probation worker process, and the low
//! priority of a tenant isolated for breaking a limit.

use std::time::Duration;

use super::{deployed, process_server, wait_until, worker_of, workers, APP, STUCK};

/// The nice value of process `pid` (field 19 of `/proc/PID/stat`).
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

#[test]
fn a_new_tenant_version_runs_in_the_probation_worker_and_a_limit_breaker_at_low_priority() {
    let (s, _dir) = process_server(|c| {
        c.workers = 1;
        c.process.stuck_kill_after = Duration::from_millis(300);
    });
    deployed(&s, "ok", APP);
    assert_eq!(s.data("ok.localhost", "/").status, 200);
    assert_eq!(worker_of(&s, "ok").0, "isola-probation");
    assert_eq!(s.data("ok.localhost", "/").status, 200);
    let (shared, shared_pid) = worker_of(&s, "ok");
    assert_eq!(shared, "isola-worker-0");
    assert_eq!(nice_of(shared_pid), 0);
    let probation_pid = || {
        let w = workers(&s);
        let p = w
            .iter()
            .find(|w| w["role"] == "probation" && w["running"] == true);
        p.and_then(|p| p["pid"].as_u64())
    };
    let first_probation = probation_pid().expect("a running probation worker");

    // A tenant whose first request gets its isolate stuck costs the
    // probation worker, not the shared one: the shared worker keeps its
    // process and never hosted the tenant.
    deployed(&s, "fresh", STUCK);
    let r = s.data("fresh.localhost", "/fill");
    assert_eq!(r.status, 502, "{}", r.body);
    let cause = r.json()["cause"].as_str().unwrap().to_string();
    assert!(cause.contains("isolate ignored termination"), "{cause}");
    assert_eq!(worker_of(&s, "ok"), (shared.clone(), shared_pid));
    let w = workers(&s);
    let shared_w = w.iter().find(|w| w["name"] == shared.as_str()).unwrap();
    assert!(
        !shared_w["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "fresh"),
        "{shared_w}"
    );
    wait_until("a new probation worker", Duration::from_secs(10), || {
        probation_pid().is_some_and(|p| p != first_probation)
    });

    // Stopped by a limit, it runs in a process of its own at nice 19.
    assert_eq!(s.data("fresh.localhost", "/").body, "fine");
    let (own, own_pid) = worker_of(&s, "fresh");
    assert_eq!(own, "isola-dedicated-fresh");
    assert_eq!(nice_of(own_pid), 19);

    // A proven tenant's new version is on probation again.
    deployed(&s, "ok", STUCK);
    let r = s.data("ok.localhost", "/fill");
    assert_eq!(r.status, 502, "{}", r.body);
    let w = workers(&s);
    let probation = w.iter().find(|w| w["role"] == "probation").unwrap();
    assert!(
        probation["last_crash"]
            .as_str()
            .is_some_and(|c| c.contains("tenant \"ok\"'s isolate ignored termination")),
        "the new version did not get stuck in the probation worker: {w:?}"
    );
    let shared_w = w.iter().find(|w| w["name"] == shared.as_str()).unwrap();
    assert_eq!(
        shared_w["pid"], shared_pid,
        "the shared worker was replaced: {shared_w}"
    );
}

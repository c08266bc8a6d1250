//! Event, EventTarget, CustomEvent, DOMException (WHATWG DOM).

use serde_json::json;

use super::{run, run_with_cpu, throws, PATCH_EVERYTHING};

#[test]
fn event_target_dispatches_in_order_with_once_capture_and_stop_immediate() {
    let v = run(r#"
        const t = new EventTarget();
        const seen = [];
        const obj = { handleEvent(e) { seen.push("object:" + e.type + ":" + (e.currentTarget === t)); } };
        t.addEventListener("x", () => seen.push("a"));
        t.addEventListener("x", () => seen.push("once"), { once: true });
        t.addEventListener("x", obj);
        t.addEventListener("x", obj); // the same listener twice: once
        t.addEventListener("x", () => seen.push("capture"), { capture: true });
        const r1 = t.dispatchEvent(new Event("x"));
        t.dispatchEvent(new Event("x"));
        const stopper = new EventTarget();
        stopper.addEventListener("s", (e) => { seen.push("s1"); e.stopImmediatePropagation(); });
        stopper.addEventListener("s", () => seen.push("s2"));
        stopper.dispatchEvent(new Event("s"));
        const c = new EventTarget();
        c.addEventListener("c", (e) => e.preventDefault());
        const notCancelled = c.dispatchEvent(new Event("c"));
        const cancelled = c.dispatchEvent(new Event("c", { cancelable: true }));
        const ce = new CustomEvent("k", { detail: { n: 1 } });
        return { seen, r1, notCancelled, cancelled, detail: ce.detail, tag: Object.prototype.toString.call(ce),
                 props: [ce.type, ce.bubbles, ce.cancelable, ce.defaultPrevented, typeof ce.timeStamp, ce instanceof Event] };
    "#);
    assert_eq!(
        v["seen"],
        json!([
            "capture",
            "a",
            "once",
            "object:x:true",
            "capture",
            "a",
            "object:x:true",
            "s1"
        ])
    );
    assert_eq!(v["r1"], true);
    assert_eq!(v["notCancelled"], true);
    assert_eq!(v["cancelled"], false);
    assert_eq!(v["detail"], json!({"n": 1}));
    assert_eq!(v["tag"], "[object CustomEvent]");
    assert_eq!(
        v["props"],
        json!(["k", false, false, false, "number", true])
    );
}

#[test]
fn a_throwing_listener_is_reported_and_the_others_still_run() {
    let v = run(r#"
        const t = new EventTarget();
        const seen = [];
        t.addEventListener("x", () => { throw new Error("listener broke"); });
        t.addEventListener("x", () => seen.push("after"));
        const ok = t.dispatchEvent(new Event("x"));
        return { ok, seen };
    "#);
    assert_eq!(v, json!({"ok": true, "seen": ["after"]}));
}

#[test]
fn wrong_input_throws_the_specs_errors() {
    let v = run(&format!(
        "return [{}, {}, {}, {}];",
        throws("new Event()"),
        throws("new EventTarget().dispatchEvent({ type: 'x' })"),
        throws("(() => { const t = new EventTarget(); const e = new Event('x'); t.addEventListener('x', () => t.dispatchEvent(e)); t.dispatchEvent(e); return 'nested ok'; })()"),
        throws("Event.prototype.preventDefault.call({})"),
    ));
    assert_eq!(v[0][0], "TypeError");
    assert!(
        v[0][1].as_str().unwrap().contains("1 argument required"),
        "{v}"
    );
    assert_eq!(v[1][0], "TypeError");
    // Re-dispatching an event that is being dispatched: InvalidStateError
    // (thrown inside a listener, so reported; the outer dispatch completes).
    assert_eq!(v[2], json!(["no error", "nested ok"]));
    assert_eq!(v[3][0], "TypeError");
}

#[test]
fn dom_exception_has_names_codes_and_is_an_error() {
    let v = run(r#"
        const a = new DOMException("gone", "AbortError");
        const d = new DOMException();
        const t = new DOMException("slow", "TimeoutError");
        return [a.name, a.message, a.code, a instanceof Error, d.name, d.message, d.code, t.code,
                Object.prototype.toString.call(a), DOMException.ABORT_ERR];
    "#);
    assert_eq!(
        v,
        json!([
            "AbortError",
            "gone",
            20,
            true,
            "Error",
            "",
            0,
            23,
            "[object DOMException]",
            20
        ])
    );
}

#[test]
fn listener_count_per_target_is_capped_with_a_clear_error() {
    let v = run_with_cpu(
        &format!(
            "return {};",
            throws("(() => { const t = new EventTarget(); for (let i = 0; i < 20000; i++) t.addEventListener('x', () => i); })()")
        ),
        5000,
    );
    assert_eq!(v[0], "RangeError");
    assert!(v[1].as_str().unwrap().contains("10000"), "{v}");
}

#[test]
fn events_work_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        const t = new EventTarget(); let n = 0;
        const f = () => n++;
        t.addEventListener('x', f); t.addEventListener('x', () => n += 10, {{ once: true }});
        t.dispatchEvent(new Event('x')); t.dispatchEvent(new CustomEvent('x', {{ detail: 1 }}));
        t.removeEventListener('x', f); t.dispatchEvent(new Event('x'));
        return n;"
    ));
    assert_eq!(v, json!(12));
}

/// Runs `body` in a tenant whose console is kept; returns (result, log).
fn run_logged(body: &str) -> (serde_json::Value, String) {
    let e = crate::util::engine();
    let console = crate::util::Console::default();
    let mut t = isola_core::Tenant::new(
        &e.engine,
        isola_core::TenantConfig::new("web").console(console.sink()),
        isola_core::TenantCode::single(
            "web.js",
            format!("export default async () => {{\n{body}\n}};"),
        ),
    )
    .unwrap();
    let v = crate::util::call_json(&mut t);
    (v, console.text())
}

#[test]
fn a_reported_rejection_handled_later_fires_rejectionhandled() {
    let (v, _log) = run_logged(
        r#"
        const seen = [];
        addEventListener("unhandledrejection", (e) => { seen.push("unhandled " + e.reason.message); e.preventDefault(); });
        addEventListener("rejectionhandled", (e) => seen.push([e.type, e.reason.message, e.cancelable]));
        onrejectionhandled = (e) => seen.push("handler " + e.reason.message);
        const p = Promise.reject(new Error("late"));
        await new Promise((r) => setTimeout(r, 1));
        p.catch(() => {});
        await new Promise((r) => setTimeout(r, 1));
        return seen;
        "#,
    );
    assert_eq!(
        v,
        json!([
            "unhandled late",
            "handler late",
            ["rejectionhandled", "late", false]
        ])
    );
}

#[test]
fn unhandled_rejections_reach_global_listeners_then_the_log_with_their_stack() {
    let (v, log) = run_logged(
        r#"
        const seen = [];
        addEventListener("unhandledrejection", (e) => {
          seen.push([e.type, e.reason.message, e.promise instanceof Promise, e.cancelable]);
          if (e.reason.message === "quiet") e.preventDefault();
        });
        onunhandledrejection = (e) => seen.push("handler " + e.reason.message);
        Promise.reject(new Error("loud"));
        Promise.reject(new Error("quiet"));
        Promise.reject(new Error("handled in time")).catch(() => {});
        const later = Promise.reject(new Error("handled later"));
        later.catch(() => {});
        await new Promise((r) => setTimeout(r, 5));
        return seen;
        "#,
    );
    assert_eq!(
        v,
        json!([
            "handler loud",
            ["unhandledrejection", "loud", true, true],
            "handler quiet",
            ["unhandledrejection", "quiet", true, true]
        ])
    );
    assert!(log.contains("Uncaught (in promise) Error: loud"), "{log}");
    assert!(
        log.contains("web.js:"),
        "the stack names the tenant's file: {log}"
    );
    assert!(
        !log.contains("quiet"),
        "a cancelled rejection is not logged: {log}"
    );
    assert!(!log.contains("handled"), "{log}");
}

#[test]
fn report_error_and_throwing_listeners_fire_error_events_on_the_global() {
    let (v, log) = run_logged(
        r#"
        const seen = [];
        onerror = (e) => { seen.push("onerror " + e.error.message); return e.error.message === "cancel me"; };
        reportError(new Error("logged"));
        reportError(new Error("cancel me"));
        const t = new EventTarget();
        t.addEventListener("x", () => { throw new Error("from a listener"); });
        t.dispatchEvent(new Event("x"));
        addEventListener("error", () => { throw new Error("error listener broke"); });
        reportError(new Error("last"));
        return [seen, typeof addEventListener, typeof dispatchEvent, onerror !== null];
        "#,
    );
    assert_eq!(
        v[0],
        json!([
            "onerror logged",
            "onerror cancel me",
            "onerror from a listener",
            "onerror last"
        ])
    );
    assert_eq!(v[1], "function");
    assert_eq!(v[2], "function");
    assert_eq!(v[3], true);
    assert!(log.contains("Uncaught Error: logged"), "{log}");
    assert!(!log.contains("cancel me"), "{log}");
    assert!(log.contains("Uncaught Error: from a listener"), "{log}");
    assert!(log.contains("error listener broke"), "{log}");
}

#[test]
fn a_tenant_rejecting_in_a_loop_does_not_grow_the_runtimes_memory() {
    let (v, log) = run_logged(
        r#"
        for (let i = 0; i < 10000; i++) Promise.reject(i);
        await new Promise((r) => setTimeout(r, 1));
        return "done";
        "#,
    );
    assert_eq!(v, json!("done"));
    // At most 100 per checkpoint are reported.
    let n = log.matches("Uncaught (in promise)").count();
    assert!((1..=100).contains(&n), "{n} reported");
}

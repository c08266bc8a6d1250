//! AbortController and AbortSignal (WHATWG DOM).

use serde_json::json;

use super::{run, throws, PATCH_EVERYTHING};

#[test]
fn abort_fires_once_with_a_reason_and_removes_signal_bound_listeners() {
    let v = run(r#"
        const ac = new AbortController();
        const seen = [];
        ac.signal.addEventListener("abort", (e) => seen.push(e.type));
        ac.signal.onabort = () => seen.push("onabort");
        const t = new EventTarget();
        t.addEventListener("x", () => seen.push("bound"), { signal: ac.signal });
        t.dispatchEvent(new Event("x"));
        ac.abort();
        ac.abort("again");
        t.dispatchEvent(new Event("x"));
        let thrown;
        try { ac.signal.throwIfAborted(); } catch (e) { thrown = e.name; }
        const custom = new AbortController(); custom.abort("why");
        return { seen, aborted: ac.signal.aborted, reason: [ac.signal.reason.name, ac.signal.reason.message], thrown,
                 custom: custom.signal.reason, tag: Object.prototype.toString.call(ac.signal) };
    "#);
    assert_eq!(v["seen"], json!(["bound", "abort", "onabort"]));
    assert_eq!(v["aborted"], true);
    assert_eq!(v["reason"][0], "AbortError");
    assert_eq!(v["thrown"], "AbortError");
    assert_eq!(v["custom"], "why");
    assert_eq!(v["tag"], "[object AbortSignal]");
}

#[test]
fn static_abort_timeout_and_any() {
    let v = run(r#"
        const a = AbortSignal.abort("r");
        const t = AbortSignal.timeout(20);
        const t0 = Date.now();
        const timedOut = await new Promise((res) => t.addEventListener("abort", () => res(t.reason.name)));
        const waited = Date.now() - t0;
        const c1 = new AbortController(), c2 = new AbortController();
        const any = AbortSignal.any([c1.signal, c2.signal]);
        let anyFired = 0; any.addEventListener("abort", () => anyFired++);
        c2.abort("second");
        c1.abort("first");
        const pre = AbortSignal.any([a]);
        return { a: [a.aborted, a.reason], timedOut, waited: waited >= 15, any: [any.aborted, any.reason, anyFired], pre: pre.reason };
    "#);
    assert_eq!(v["a"], json!([true, "r"]));
    assert_eq!(v["timedOut"], "TimeoutError");
    assert_eq!(v["waited"], true);
    assert_eq!(v["any"], json!([true, "second", 1]));
    assert_eq!(v["pre"], "r");
}

#[test]
fn wrong_input_throws_type_errors() {
    let v = run(&format!(
        "return [{}, {}, {}];",
        throws("new AbortSignal()"),
        throws("AbortSignal.timeout(-1)"),
        throws("AbortSignal.any([{}])"),
    ));
    for e in v.as_array().unwrap() {
        assert_eq!(e[0], "TypeError", "{v}");
    }
}

#[test]
fn abort_works_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        const c1 = new AbortController(); const c2 = new AbortController();
        const any = AbortSignal.any([c1.signal, c2.signal]);
        let n = 0; any.addEventListener('abort', () => n++); c1.signal.addEventListener('abort', () => n += 10);
        c1.abort('x');
        return [n, any.aborted, any.reason];"
    ));
    assert_eq!(v, json!([11, true, "x"]));
}

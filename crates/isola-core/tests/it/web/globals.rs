//! atob/btoa, navigator, performance, reportError, timers.

use serde_json::json;

use super::{run, throws};

#[test]
fn base64_round_trips_and_is_forgiving_as_the_spec_says() {
    let v = run(r#"
        return [btoa(""), btoa("f"), btoa("fo"), btoa("\xff\x00"), atob("Zm9v"), atob(" Zm 9v\n"), atob("Zg"), atob("Zg=="),
                atob("Zh=="), btoa(String.fromCharCode(...Array.from({length: 256}, (_, i) => i))).length];
    "#);
    assert_eq!(
        v,
        json!(["", "Zg==", "Zm8=", "/wA=", "foo", "foo", "f", "f", "f", 344])
    );
}

#[test]
fn base64_refuses_bad_input_with_invalid_character_errors() {
    let v = run(&format!(
        "return [{}, {}, {}, {}, {}];",
        throws("atob('Zm9v!')"),
        throws("atob('Z')"),
        throws("atob('Zm9v=')"),
        throws("btoa('✓')"),
        throws("atob()"),
    ));
    for i in 0..4 {
        assert_eq!(v[i][0], "InvalidCharacterError", "{v}");
    }
    assert!(v[3][1].as_str().unwrap().contains("Latin1"), "{v}");
    assert_eq!(v[4][0], "TypeError");
}

#[test]
fn navigator_performance_and_illegal_constructors() {
    let v = run(&format!(
        "const a = performance.now(); const t0 = Date.now(); while (Date.now() - t0 < 5) {{}}
         const b = performance.now();
         return [navigator.userAgent, typeof a, b >= a + 4, typeof performance.timeOrigin,
                 Number.isInteger(b), {}, {}, typeof reportError, typeof setTimeout, typeof queueMicrotask];",
        throws("new Navigator()"),
        throws("new Performance()"),
    ));
    assert_eq!(v[0], "isola");
    assert_eq!(v[1], "number");
    assert_eq!(v[2], true);
    assert_eq!(v[3], "number");
    // 1 ms resolution, on purpose (docs/LIMITS.md).
    assert_eq!(v[4], true);
    assert_eq!(v[5], json!(["TypeError", "Illegal constructor"]));
    assert_eq!(v[6], json!(["TypeError", "Illegal constructor"]));
    assert_eq!(v[7], "function");
    assert_eq!(v[8], "function");
    assert_eq!(v[9], "function");
}

#[test]
fn timers_run_in_order_and_can_be_cleared() {
    let v = run(r#"
        const seen = [];
        const a = setTimeout(() => seen.push("cleared"), 5);
        clearTimeout(a);
        setTimeout((x, y) => seen.push("args:" + x + y), 10, "p", "q");
        setTimeout(() => seen.push("first"), 1);
        let n = 0;
        await new Promise((res) => { const i = setInterval(() => { if (++n === 3) { clearInterval(i); res(); } }, 2); });
        await new Promise((res) => setTimeout(res, 20));
        return { seen, n };
    "#);
    assert_eq!(v, json!({"seen": ["first", "args:pq"], "n": 3}));
}

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

#[test]
fn structured_clone_copies_deeply_and_refuses_what_cannot_be_cloned() {
    let v = run(&format!(
        r#"
        const src = {{ n: 1, s: "x", d: new Date(0), r: /a+/g, m: new Map([[1, {{ k: 2 }}]]), set: new Set([3]),
                      buf: new Uint8Array([1, 2, 3]), big: 10n, nested: {{ deep: [1, [2, [3]]] }}, err: new RangeError("e") }};
        src.self = src;
        const c = structuredClone(src);
        c.nested.deep[1][1][0] = 99;
        return [c !== src, c.self === c, c.n, c.d.getTime(), c.r.source + c.r.flags, c.m.get(1).k, c.set.has(3),
                Array.from(c.buf), String(c.big), src.nested.deep[1][1][0], c.err instanceof RangeError, c.err.message,
                {}, {}, {}, {}];
        "#,
        throws("structuredClone(() => 1)"),
        throws("structuredClone({ f: Symbol('s') })"),
        throws("structuredClone(new ArrayBuffer(8), { transfer: [new ArrayBuffer(1)] })"),
        throws("structuredClone()"),
    ));
    assert_eq!(
        v.as_array().unwrap()[..12],
        json!([
            true,
            true,
            1,
            0,
            "a+g",
            2,
            true,
            [1, 2, 3],
            "10",
            3,
            true,
            "e"
        ])
        .as_array()
        .unwrap()[..]
    );
    for i in 12..15 {
        assert_eq!(v[i][0], "DataCloneError", "{v}");
    }
    assert!(
        v[12][1].as_str().unwrap().contains("could not be cloned"),
        "{v}"
    );
    assert_eq!(v[15][0], "TypeError");
}

#[test]
fn structured_clone_of_deep_or_huge_values_is_a_clear_error_not_a_crash() {
    // Deep nesting: V8's stack check. A copy of 40 MiB of buffers next to the
    // originals: past the 64 MiB ArrayBuffer budget (the copy counts in it).
    let v = super::run_with_cpu(
        &format!(
            "return [{}, {}];",
            throws("(() => { let o = {}; for (let i = 0; i < 1e6; i++) o = { o }; return structuredClone(o); })()"),
            throws("(() => { const a = []; for (let i = 0; i < 20; i++) a.push(new Uint8Array(2 << 20)); return structuredClone(a); })()"),
        ),
        5000,
    );
    assert_eq!(
        v[0],
        json!(["RangeError", "Maximum call stack size exceeded"])
    );
    assert_eq!(
        v[1],
        json!([
            "RangeError",
            "structuredClone: the copy does not fit the tenant's memory limits"
        ])
    );
    // With a budget that fits it, a value over 64 MiB serialized is refused.
    let e = crate::util::engine();
    let limits = isola_core::Limits {
        cpu: std::time::Duration::from_secs(5),
        external_memory_bytes: 512 << 20,
        ..Default::default()
    };
    let src = format!(
        "export default () => {};",
        throws("(() => { const a = []; for (let i = 0; i < 40; i++) a.push(new Uint8Array(2 << 20)); return structuredClone(a); })()")
    );
    let mut t = crate::util::tenant_with_limits(&e.engine, "big", &src, limits);
    let v = crate::util::call_json(&mut t);
    assert_eq!(v[0], "DataCloneError", "{v}");
    assert!(
        v[1].as_str()
            .unwrap()
            .contains("larger than 67108864 bytes"),
        "{v}"
    );
}

#[test]
fn text_encoder_encode_into_writes_whole_code_points() {
    let v = run(&format!(
        r#"
        const e = new TextEncoder();
        const d = new Uint8Array(5);
        const r1 = e.encodeInto("a€𝌆", d); // 1 + 3 + 4 bytes: only a€ fit
        const r2 = e.encodeInto("\ud800x", new Uint8Array(8)); // a lone surrogate is U+FFFD
        const shared = new Uint8Array(new SharedArrayBuffer(4));
        const r3 = e.encodeInto("hé", shared);
        return [r1, Array.from(d), r2, r3, Array.from(shared), {}];
        "#,
        throws("new TextEncoder().encodeInto('x', new Uint16Array(2))"),
    ));
    assert_eq!(v[0], json!({"read": 2, "written": 4}));
    assert_eq!(v[1], json!([97, 226, 130, 172, 0]));
    assert_eq!(v[2], json!({"read": 2, "written": 4}));
    assert_eq!(v[3], json!({"read": 2, "written": 3}));
    assert_eq!(v[4], json!([104, 195, 169, 0]));
    assert_eq!(v[5][0], "TypeError");
}

#[test]
fn text_decoder_streams_split_code_points_and_drops_only_the_first_bom() {
    let v = run(&format!(
        r#"
        const d = new TextDecoder();
        const euro = [0xe2, 0x82, 0xac];
        const parts = [d.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, euro[0]]), {{ stream: true }}),
                       d.decode(new Uint8Array([euro[1]]), {{ stream: true }}),
                       d.decode(new Uint8Array([euro[2], 0xef, 0xbb, 0xbf]), {{ stream: true }}),
                       d.decode()];
        const unfinished = new TextDecoder().decode(new Uint8Array([0x61, 0xe2, 0x82]));
        const keep = new TextDecoder("utf-8", {{ ignoreBOM: true }}).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x62]));
        return [parts, unfinished, keep.length, new TextDecoder("utf-8", {{ ignoreBOM: true }}).ignoreBOM, {}];
        "#,
        throws("(() => { const f = new TextDecoder('utf-8', { fatal: true }); f.decode(new Uint8Array([0xe2]), { stream: true }); return f.decode(); })()"),
    ));
    assert_eq!(v[0], json!(["a", "", "€\u{feff}", ""]));
    assert_eq!(v[1], "a\u{fffd}");
    assert_eq!(v[2], 2);
    assert_eq!(v[3], true);
    assert_eq!(v[4][0], "TypeError", "{v}");
}

#[test]
fn structured_clone_refuses_the_runtimes_own_objects() {
    let v = run(&format!(
        "return [{}, {}, {}, {}, {}, {}];",
        throws("structuredClone(new URL('http://x/'))"),
        throws("structuredClone({ nested: [new Headers()] })"),
        throws("structuredClone(new Event('x'))"),
        throws("structuredClone(new AbortController().signal)"),
        throws("structuredClone(new Response('x'))"),
        throws("structuredClone({ plain: new Map([[1, 2]]) }).plain.get(1)"),
    ));
    for i in 0..5 {
        assert_eq!(v[i][0], "DataCloneError", "{v}");
    }
    assert!(
        v[0][1]
            .as_str()
            .unwrap()
            .contains("URL object could not be cloned"),
        "{v}"
    );
    assert_eq!(v[5], json!(["no error", "2"]));
}

//! The global fetch() without a host client (the server's tests run it
//! against real upstreams: isola-server `tests/it/fetch.rs`).

use serde_json::json;

use super::{run, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn fetch_without_a_host_client_rejects_clearly_even_after_the_builtins_were_patched() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const why = async (p) => {{ try {{ const r = await p; return ['ok', r.status]; }} catch (e) {{ return [e.name, e.message]; }} }};
        return [typeof fetch, fetch.length, await why(fetch('http://example.com/')),
                await why(fetch('http://example.com/', {{ redirect: 'sideways' }})),
                await why(fetch('http://example.com/', {{ signal: 5 }}))];"
    ));
    assert_eq!(v[0], "function");
    assert_eq!(v[1], 1);
    assert_eq!(v[2][0], "TypeError", "{v}");
    assert!(
        v[2][1]
            .as_str()
            .unwrap()
            .contains("no outbound HTTP client"),
        "{v}"
    );
    assert_eq!(v[3][0], "TypeError");
    assert!(v[3][1].as_str().unwrap().contains("redirect"), "{v}");
    assert_eq!(v[4][0], "TypeError");
    assert!(v[4][1].as_str().unwrap().contains("AbortSignal"), "{v}");
}

#[test]
fn an_aborted_signal_rejects_before_anything_is_sent() {
    let v = run(
        "const c = new AbortController(); c.abort(new Error('stop'));
         const r = await fetch('http://example.com/', { signal: c.signal }).then(() => 'sent', (e) => e.message);
         const req = new Request('http://example.com/', { signal: c.signal, redirect: 'manual' });
         return [r, req.signal.aborted, req.redirect, new Request('http://x/').redirect];",
    );
    assert_eq!(v, json!(["stop", true, "manual", "follow"]));
}

#[test]
fn responses_clone_with_their_own_body() {
    let v = run(r#"
        const a = new Response("body", { status: 201, statusText: "Made", headers: { "x-a": "1" } });
        const b = a.clone();
        const texts = [await a.text(), await b.text()];
        let used;
        try { a.clone(); } catch (e) { used = [e.name, e.message]; }
        return [texts, b.status, b.statusText, b.headers.get("x-a"), b.headers.get("content-type"), used];
    "#);
    assert_eq!(
        v,
        json!([
            ["body", "body"],
            201,
            "Made",
            "1",
            "text/plain;charset=UTF-8",
            ["TypeError", "Body has already been consumed"]
        ])
    );
}

#[test]
fn a_streamed_response_clones_by_teeing_its_stream() {
    let v = run(r#"
        const enc = new TextEncoder();
        const r = new Response(new ReadableStream({ start(c) { c.enqueue(enc.encode("a")); c.enqueue(enc.encode("b")); c.close(); } }));
        const c = r.clone();
        return [await c.text(), await r.text(), r.bodyUsed, c.bodyUsed];
    "#);
    assert_eq!(v, json!(["ab", "ab", true, true]));
}

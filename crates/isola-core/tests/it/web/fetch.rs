//! The global fetch() without a host client (the server's tests run it
//! against real upstreams: isola-server `tests/it/fetch.rs`).

use serde_json::json;

use super::{run, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

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

#[test]
fn headers_requests_and_responses_follow_the_fetch_standards_rules() {
    let v = run(&format!(
        r#"const h = new Headers({{ a: "\t x \f\n" }});
        return [h.get("a"),
                {}, {},
                new Request("http://x/", {{ method: "patch" }}).method, new Request("http://x/", {{ method: "post" }}).method,
                {}, {},
                {}, {}, {},
                Response.error().type, Response.error().status,
                Response.redirect("http://x/a b", 301).headers.get("location"),
                {},
                new Response(null).bodyUsed, await new Response(null).text(), new Response(null).bodyUsed];"#,
        throws("new Headers({ a: 'caf\\u0100' })"),
        throws("new Headers(null)"),
        throws("new Request('http://x/', { method: 'TRACE' })"),
        throws("new Request('http://x/', { method: 'GET', body: 'x' })"),
        throws("new Response('x', { status: 204 })"),
        throws("Response.redirect('http://x/', 200)"),
        throws("Response.redirect('not a url')"),
        throws("Response.json(undefined)"),
    ));
    assert_eq!(v[0], "x \u{c}");
    assert_eq!(v[1][0], "TypeError", "{v}");
    assert!(v[1][1].as_str().unwrap().contains("U+100"), "{v}");
    assert_eq!(v[2][0], "TypeError");
    assert_eq!(v[3], "patch");
    assert_eq!(v[4], "POST");
    assert_eq!(v[5][0], "TypeError");
    assert_eq!(v[6][0], "TypeError");
    assert_eq!(v[7][0], "TypeError");
    assert_eq!(v[8][0], "RangeError");
    assert_eq!(v[9][0], "TypeError");
    assert_eq!(v[10], "error");
    assert_eq!(v[11], 0);
    assert_eq!(v[12], "http://x/a%20b");
    assert_eq!(v[13][0], "TypeError");
    assert_eq!(v[14], false);
    assert_eq!(v[15], "");
    assert_eq!(v[16], false);
}

#[test]
fn a_url_search_params_body_is_form_encoded_with_its_content_type() {
    let v = run(r#"
        const p = new URLSearchParams({ a: "1 2", b: "é" });
        URLSearchParams.prototype.toString = () => "patched";
        const r = new Request("http://x/", { method: "POST", body: p });
        const s = new Response(p);
        return [r.headers.get("content-type"), await r.text(), await s.text()];
    "#);
    assert_eq!(
        v,
        json!([
            "application/x-www-form-urlencoded;charset=UTF-8",
            "a=1+2&b=%C3%A9",
            "a=1+2&b=%C3%A9"
        ])
    );
}

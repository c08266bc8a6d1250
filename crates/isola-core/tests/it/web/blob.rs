//! Blob and File (W3C File API), and blobs as bodies.

use serde_json::json;

use super::{run, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn blobs_concatenate_parts_slice_and_read_back() {
    let v = run(r#"
        const b = new Blob(["héllo ", new Uint8Array([119, 111]), new Blob(["rld"])], { type: "Text/Plain" });
        const s = b.slice(1, -2, "x/y");
        const neg = b.slice(-3);
        const f = new File(["abc"], "a.txt", { type: "text/plain", lastModified: 42 });
        const fromSet = new Blob(new Set(["a", "b"]));
        return [b.size, b.type, await b.text(), s.size, s.type, await s.text(), await neg.text(),
                Array.from(await b.bytes()).slice(0, 2), (await b.arrayBuffer()).byteLength,
                f.name, f.lastModified, f.size, f instanceof Blob, Object.prototype.toString.call(f),
                await fromSet.text(), new Blob().size, new Blob([], { type: "bad\u0001" }).type,
                await new Response(b).text(), (await new Response("x", { headers: { "content-type": "a/b" } }).blob()).type];
    "#);
    assert_eq!(
        v,
        json!([
            12,
            "text/plain",
            "héllo world",
            9,
            "x/y",
            "éllo wor",
            "rld",
            [104, 195],
            12,
            "a.txt",
            42,
            3,
            true,
            "[object File]",
            "ab",
            0,
            "",
            "héllo world",
            "a/b"
        ])
    );
}

#[test]
fn blob_streams_and_wrong_input() {
    let v = run(&format!(
        r#"
        const chunks = [];
        for await (const c of new Blob(["stream me"]).stream()) chunks.push(new TextDecoder().decode(c));
        return [chunks.join(""), {}, {}];
        "#,
        throws("new Blob('not a sequence')"),
        throws("new File(['x'])"),
    ));
    assert_eq!(v[0], "stream me");
    assert_eq!(v[1][0], "TypeError");
    assert_eq!(v[2][0], "TypeError");
    assert!(
        v[2][1].as_str().unwrap().contains("2 arguments required"),
        "{v}"
    );
}

#[test]
fn blob_bytes_count_in_the_array_buffer_budget() {
    // 40 MiB of parts copied into one 40 MiB blob: past the 64 MiB budget.
    let v = run(&format!(
        "return {};",
        throws("(() => { const p = new Uint8Array(40 << 20); return new Blob([p]); })()")
    ));
    assert_eq!(v[0], "RangeError", "{v}");
}

#[test]
fn blobs_work_after_the_tenant_patched_every_builtin() {
    let v = run(&format!(
        "{PATCH_EVERYTHING}
        const b = new Blob(['ab', new Uint8Array(2)], {{ type: 'T' }});
        const r = new Response(b);
        return [b.size, b.type, (await b.slice(0, 2).text()), (await r.arrayBuffer()).byteLength];"
    ));
    assert_eq!(v, json!([4, "t", "ab", 4]));
}

#[test]
fn responses_keep_their_content_type_after_the_tenant_patched_headers() {
    let v = run(r#"
        Headers.prototype.has = () => { throw new Error("patched has"); };
        Headers.prototype.set = () => { throw new Error("patched set"); };
        Headers.prototype.get = () => { throw new Error("patched get"); };
        const text = new Response("x");
        const json = Response.json({ a: 1 });
        const blob = await new Response("y").blob();
        return [blob.type, await text.text(), await json.text()];
    "#);
    assert_eq!(v, json!(["text/plain;charset=utf-8", "x", "{\"a\":1}"]));
}

#[test]
fn blob_loads_on_first_use_after_the_tenant_deleted_and_patched_the_builtins() {
    // Blob and File are a lazy area: their globals are accessors until first
    // use, which runs the area after this tenant code. It must not reach for
    // a global or a patchable method.
    let v = run(&format!(
        "const before = Object.getOwnPropertyDescriptor(globalThis, 'Blob'); const U8 = Uint8Array;
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const b = new Blob(['ab', new U8(1).fill(99)], {{ type: 'Text/Plain' }});
        const f = new File([b], 'n.txt');
        const after = __gopd(globalThis, 'File');
        return [typeof before.get, await b.text(), b.type, f.name, f.size, typeof after.value, 'get' in after, after.enumerable];"
    ));
    assert_eq!(
        v,
        json!([
            "function",
            "abc",
            "text/plain",
            "n.txt",
            3,
            "function",
            false,
            false
        ])
    );
}

#[test]
fn a_lazy_global_can_be_replaced_before_use_and_survives_a_frozen_global() {
    let v = run(r#"
        globalThis.Blob = 5;
        const replaced = Blob;
        const file = new File(["x"], "a").size;
        return [replaced, file];
    "#);
    assert_eq!(v, json!([5, 1]));
    let v = run(r#"
        Object.freeze(globalThis);
        return [new Blob(["xy"]).size, typeof File, Object.isFrozen(globalThis)];
    "#);
    assert_eq!(v, json!([2, "function", true]));
}

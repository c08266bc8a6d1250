//! FormData (XHR standard), FormData bodies (multipart/form-data) and
//! `body.formData()` (multipart and urlencoded), with the parser's caps.

use serde_json::json;

use super::{run, run_with_cpu, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn entries_are_kept_in_order_with_strings_and_files() {
    let v = run(r#"
        const fd = new FormData();
        fd.append("a", "1");
        fd.append("b", new Blob(["xyz"], { type: "text/x" }));
        fd.append("a", "2");
        fd.append("f", new File(["q"], "orig.txt", { lastModified: 5 }), "renamed.txt");
        fd.append("s", "lone \ud800");
        const b = fd.get("b");
        const f = fd.get("f");
        const lone = fd.get("s").charCodeAt(5);
        const before = [fd.getAll("a"), fd.has("a"), fd.has("zz"), fd.get("zz")];
        fd.set("a", "3");
        const afterSet = [...fd.keys()];
        fd.delete("b");
        const seen = [];
        fd.forEach((v, k, o) => seen.push([k, typeof v === "string" ? v : v.name, o === fd]));
        const it = fd.entries();
        return [lone, before, b instanceof File, b.name, b.type, b.size, f.name, f.lastModified, fd.get("s"),
                afterSet, [...fd.values()].map((v) => typeof v), seen,
                Object.prototype.toString.call(it), typeof it.next, it[Symbol.iterator]() === it,
                Object.getPrototypeOf(Object.getPrototypeOf(it)) === Object.getPrototypeOf(Object.getPrototypeOf([].values())),
                Object.prototype.toString.call(fd)];
    "#);
    assert_eq!(
        v,
        json!([
            0xFFFD,
            [["1", "2"], true, false, null],
            true,
            "blob",
            "text/x",
            3,
            "renamed.txt",
            5,
            "lone \u{FFFD}",
            ["a", "b", "f", "s"],
            ["string", "object", "string"],
            [
                ["a", "3", true],
                ["f", "renamed.txt", true],
                ["s", "lone \u{FFFD}", true]
            ],
            "[object FormData Iterator]",
            "function",
            true,
            true,
            "[object FormData]"
        ])
    );
}

#[test]
fn a_formdata_body_round_trips_through_multipart() {
    let v = run(r#"
        const fd = new FormData();
        fd.append("name\"q", "line1\nline2");
        fd.append("file", new File(["hello \u00e9"], "h\u00e9.txt", { type: "text/plain" }));
        fd.append("bin", new Blob([new Uint8Array([0, 13, 10, 45, 45, 255])]));
        const res = new Response(fd);
        const type = res.headers.get("content-type");
        const req = new Request("http://x/", { method: "POST", body: fd, headers: { "content-type": "multipart/form-data; boundary=mine" } });
        const text = await new Response(fd).text();
        const out = await res.formData();
        const file = out.get("file");
        const bin = out.get("bin");
        return [/^multipart\/form-data; boundary=----isolaFormBoundary[0-9a-f]{32}$/.test(type), req.headers.get("content-type"),
                text.includes('name="name%22q"'), text.includes("line1\r\nline2"),
                [...out.keys()], out.get("name\"q"), file.name, file.type, await file.text(),
                bin.name, bin.type, [...await bin.bytes()]];
    "#);
    assert_eq!(
        v,
        json!([
            true,
            "multipart/form-data; boundary=mine",
            true,
            true,
            ["name\"q", "file", "bin"],
            "line1\r\nline2",
            "hé.txt",
            "text/plain",
            "hello é",
            "blob",
            "application/octet-stream",
            [0, 13, 10, 45, 45, 255]
        ])
    );
}

#[test]
fn a_hand_written_multipart_body_and_an_urlencoded_body_parse() {
    let v = run(r#"
        const body = "ignored preamble\r\n--B0undary\r\n" +
          'Content-Disposition: form-data; name="field"\r\n\r\n' +
          "value one\r\n--B0undary   \r\n" +
          'content-disposition: form-data; name="up"; filename="a;b.bin"\r\n' +
          "Content-Type: application/x-thing\r\n\r\n" +
          "AB\r\nCD\r\n--B0undary\r\n" +
          'Content-Disposition: form-data; name="plain"; filename="p"\r\n\r\n' +
          "\r\n--B0undary--\r\nepilogue";
        const fd = await new Response(body, { headers: { "content-type": 'multipart/form-data; charset=x; boundary="B0undary"' } }).formData();
        const up = fd.get("up");
        const u = await new Request("http://x/", { method: "POST", body: "a=1&b=%20x+y&a=%E2%82%AC",
          headers: { "content-type": "application/x-www-form-urlencoded;charset=UTF-8" } }).formData();
        return [[...fd.keys()], fd.get("field"), up.name, up.type, await up.text(), fd.get("plain").type, fd.get("plain").size,
                [...u.entries()]];
    "#);
    assert_eq!(
        v,
        json!([
            ["field", "up", "plain"],
            "value one",
            "a;b.bin",
            "application/x-thing",
            "AB\r\nCD",
            "text/plain",
            0,
            [["a", "1"], ["b", " x y"], ["a", "€"]]
        ])
    );
}

#[test]
fn wrong_input_is_a_type_error() {
    let v = run(&format!(
        r#"
        const parse = async (body, type) => {{
          try {{ await new Response(body, {{ headers: type ? {{ "content-type": type }} : {{}} }}).formData(); return "parsed"; }}
          catch (e) {{ return [e.name, e.message]; }}
        }};
        return [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}];
        "#,
        throws("new FormData(null)"),
        throws("new FormData().append('a')"),
        throws("new FormData().append('a', 'b', 'c')"),
        throws("new FormData().get()"),
        throws("structuredClone(new FormData())"),
        "await parse('x', 'text/plain')",
        "await parse('x', 'multipart/form-data')",
        "await parse('no boundary in here', 'multipart/form-data; boundary=zz')",
        "await parse('--zz\\r\\nContent-Disposition: form-data; name=\"a\"\\r\\n\\r\\nunterminated', 'multipart/form-data; boundary=zz')",
        "await parse('--zz\\r\\nContent-Type: text/plain\\r\\n\\r\\nx\\r\\n--zz--', 'multipart/form-data; boundary=zz')",
        "await parse('--zzjunk', 'multipart/form-data; boundary=zz')",
    ));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "DataCloneError",
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError"
        ],
        "{v}"
    );
    let msg = |i: usize| v[i][1].as_str().unwrap().to_string();
    assert!(msg(5).contains("neither multipart/form-data"), "{}", msg(5));
    assert!(msg(6).contains("no boundary"), "{}", msg(6));
    assert!(msg(7).contains("has no multipart boundary"), "{}", msg(7));
    assert!(msg(8).contains("not terminated"), "{}", msg(8));
    assert!(msg(9).contains("no Content-Disposition"), "{}", msg(9));
    assert!(msg(10).contains("not followed by CRLF"), "{}", msg(10));
}

#[test]
fn hostile_multipart_bodies_hit_caps_quickly() {
    // 100k tiny parts: refused past 10000 parts, without building them; a
    // 10 MB body with no boundary and one with a 20 KB header block are
    // refused after one linear scan.
    let v = run_with_cpu(
        r#"
        const type = "multipart/form-data; boundary=b";
        const part = '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n';
        const many = part.repeat(100000) + "--b--";
        const ok = part.repeat(10000) + "--b--";
        const big = new Uint8Array(10 << 20).fill(45);
        const longHeaders = '--b\r\nContent-Disposition: form-data; name="a"\r\nX: ' + "y".repeat(20000) + "\r\n\r\nx\r\n--b--";
        const parse = async (body) => {
          const t0 = Date.now();
          try { const fd = await new Response(body, { headers: { "content-type": type } }).formData(); return [[...fd.keys()].length, Date.now() - t0]; }
          catch (e) { return [e.name + ": " + e.message, Date.now() - t0]; }
        };
        return [await parse(many), await parse(ok), await parse(big), await parse(longHeaders)];
    "#,
        5000,
    );
    eprintln!("{v}");
    assert_eq!(
        v[0][0],
        "TypeError: Failed to parse the body as FormData: the body has more than 10000 parts"
    );
    assert_eq!(v[1][0], 10000);
    assert_eq!(
        v[2][0],
        "TypeError: Failed to parse the body as FormData: the body has no multipart boundary"
    );
    assert_eq!(
        v[3][0],
        "TypeError: Failed to parse the body as FormData: a part's headers are larger than 16384 bytes"
    );
    for r in v.as_array().unwrap() {
        assert!(r[1].as_i64().unwrap() < 1000, "{v}");
    }
}

#[test]
fn formdata_loads_on_first_use_after_the_tenant_deleted_and_patched_the_builtins() {
    let v = run(&format!(
        "const before = Object.getOwnPropertyDescriptor(globalThis, 'FormData');
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const fd = new FormData();
        fd.append('k', 'v');
        fd.append('f', new Blob(['data']), 'd.txt');
        const keys = [];
        const it = fd.keys();
        for (let r = it.next(); !r.done; r = it.next()) keys[keys.length] = r.value;
        const back = await new Response(fd).formData();
        const after = __gopd(globalThis, 'FormData');
        return [typeof before.get, keys, back.get('k'), back.get('f').name, await back.get('f').text(), typeof after.value];"
    ));
    assert_eq!(
        v,
        json!(["function", ["k", "f"], "v", "d.txt", "data", "function"])
    );
}

//! The Streams Standard (readable, writable, transform streams, queuing
//! strategies), TextEncoderStream/TextDecoderStream, and bodies as streams.

use serde_json::json;

use super::{run, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn smoke() {
    let v = run(r#"
        const rs = new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue("b"); c.close(); } });
        const r = rs.getReader();
        const out = [];
        for (;;) { const { value, done } = await r.read(); if (done) break; out.push(value); }
        return out;
    "#);
    assert_eq!(v, json!(["a", "b"]));
}

#[test]
fn backpressure_follows_the_high_water_mark_and_size() {
    let v = run(r#"
        const sizes = [];
        let ctrl, pulls = 0;
        const rs = new ReadableStream({
            start(c) { ctrl = c; },
            pull() { pulls++; },
        }, { highWaterMark: 10, size(chunk) { return chunk.length; } });
        await null; await null;
        sizes.push(ctrl.desiredSize);
        ctrl.enqueue("abcd");
        sizes.push(ctrl.desiredSize);
        ctrl.enqueue("abcdefgh");
        sizes.push(ctrl.desiredSize);
        const r = rs.getReader();
        await r.read();
        sizes.push(ctrl.desiredSize);
        ctrl.close();
        sizes.push(ctrl.desiredSize);
        await r.read();
        sizes.push(ctrl.desiredSize, (await r.read()).done);
        const counted = new CountQueuingStrategy({ highWaterMark: 3 });
        const bytes = new ByteLengthQueuingStrategy({ highWaterMark: 16 });
        return [sizes, pulls > 0, counted.highWaterMark, counted.size("x"), bytes.size(new Uint8Array(5)),
                ReadableStream.prototype.getReader.length];
    "#);
    assert_eq!(v, json!([[10, 6, -2, 2, 2, 0, true], true, 3, 1, 5, 0]));
}

#[test]
fn writable_streams_apply_backpressure_and_report_errors() {
    let v = run(r#"
        const log = [];
        let release;
        const ws = new WritableStream({
            write(chunk) { log.push("w:" + chunk); return new Promise((r) => { release = r; }); },
            close() { log.push("close"); },
        }, new CountQueuingStrategy({ highWaterMark: 2 }));
        const w = ws.getWriter();
        const d0 = w.desiredSize;
        const p1 = w.write("a");
        const p2 = w.write("b");
        const d2 = w.desiredSize;
        await null; await null;
        release(); await p1;
        release(); await p2;
        const closed = w.close();
        await closed;
        const bad = new WritableStream({ write() { throw new Error("sink broke"); } });
        const bw = bad.getWriter();
        const e = await bw.write("x").catch((e) => e.message);
        const e2 = await bw.closed.catch((e) => e.message);
        const aborted = new WritableStream({ abort(r) { log.push("abort:" + r); } });
        await aborted.abort("why");
        return [d0, d2, log, e, e2, ws.locked, w.desiredSize];
    "#);
    assert_eq!(
        v,
        json!([
            2,
            0,
            ["w:a", "w:b", "close", "abort:why"],
            "sink broke",
            "sink broke",
            true,
            0
        ])
    );
}

#[test]
fn tee_pipe_to_and_pipe_through() {
    let v = run(r#"
        const src = () => ReadableStream.from(["a", "b", "c"]);
        const [t1, t2] = src().tee();
        const all = async (rs) => { const out = []; for await (const c of rs) out.push(c); return out.join(""); };
        const teed = [await all(t1), await all(t2)];
        const got = [];
        await src().pipeTo(new WritableStream({ write(c) { got.push(c); } }));
        const upper = src().pipeThrough(new TransformStream({ transform(c, ctl) { ctl.enqueue(c.toUpperCase()); ctl.enqueue(c); } }));
        const piped = await all(upper);
        // preventClose leaves the destination open; an aborted signal stops the pipe.
        const ws = new WritableStream();
        await src().pipeTo(ws, { preventClose: true });
        const stillOpen = ws.locked === false && (await ws.getWriter().write("more"), true);
        const ac = new AbortController();
        ac.abort(new Error("stop"));
        let canceled = null;
        const r = await new ReadableStream({ cancel(reason) { canceled = reason.message; } })
            .pipeTo(new WritableStream(), { signal: ac.signal }).catch((e) => e.message);
        // An error in the source aborts the destination (unless preventAbort).
        let abortedWith = null;
        const failing = new ReadableStream({ start(c) { c.error(new Error("src failed")); } });
        const r2 = await failing.pipeTo(new WritableStream({ abort(e) { abortedWith = e.message; } })).catch((e) => e.message);
        return [teed, got.join(""), piped, stillOpen, r, canceled, r2, abortedWith];
    "#);
    assert_eq!(
        v,
        json!([
            ["abc", "abc"],
            "abc",
            "AaBbCc",
            true,
            "stop",
            "stop",
            "src failed",
            "src failed"
        ])
    );
}

#[test]
fn byte_streams_fill_byob_views() {
    let v = run(r#"
        let n = 0;
        const rs = new ReadableStream({
            type: "bytes",
            pull(c) {
                const req = c.byobRequest;
                if (n === 2) { c.close(); if (req) req.respond(0); return; }
                const view = req.view;
                for (let i = 0; i < 3; i++) view[i] = 10 * n + i;
                req.respond(3);
                n++;
            },
        });
        const reader = rs.getReader({ mode: "byob" });
        const first = await reader.read(new Uint8Array(8));
        const buf = new Uint16Array(4);
        const second = await reader.read(buf);
        // The odd byte of the Uint16Array read stays queued for the next read.
        const third = await reader.read(new Uint8Array(4));
        const fourth = await reader.read(new Uint8Array(4));
        // A default reader of a byte stream gets enqueued chunks as Uint8Arrays.
        const rs2 = new ReadableStream({ type: "bytes", start(c) { c.enqueue(new Uint8Array([1, 2, 3])); c.close(); } });
        const d = await rs2.getReader().read();
        // min: the read waits until at least `min` elements arrived.
        const rs3 = new ReadableStream({ type: "bytes", start(c) { c.enqueue(new Uint8Array([1])); c.enqueue(new Uint8Array([2, 3])); } });
        const m = await rs3.getReader({ mode: "byob" }).read(new Uint8Array(4), { min: 3 });
        return [Array.from(first.value), first.done, buf.buffer.detached, second.value.constructor.name,
                second.value.byteLength, Array.from(third.value), fourth.done, Array.from(d.value), d.value.constructor.name, Array.from(m.value),
                Object.prototype.toString.call(reader)];
    "#);
    assert_eq!(
        v,
        json!([
            [0, 1, 2],
            false,
            true,
            "Uint16Array",
            2,
            [12],
            true,
            [1, 2, 3],
            "Uint8Array",
            [1, 2, 3],
            "[object ReadableStreamBYOBReader]"
        ])
    );
}

#[test]
fn cancel_errors_and_async_iteration() {
    let v = run(r#"
        let reason = null;
        const rs = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(r) { reason = r; } });
        for await (const x of rs) break;
        const afterBreak = [reason, rs.locked];
        // preventCancel keeps the stream alive after a break.
        let canceled = false;
        const rs2 = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); }, cancel() { canceled = true; } });
        for await (const x of rs2.values({ preventCancel: true })) break;
        const rest = await rs2.getReader().read();
        // An erroring source rejects reads and closed.
        const bad = new ReadableStream({ pull() { throw new TypeError("pull broke"); } });
        const r = bad.getReader();
        const e1 = await r.read().catch((e) => [e.name, e.message]);
        const e2 = await r.closed.catch((e) => e.message);
        r.releaseLock();
        const e3 = await r.read().catch((e) => e.name);
        const c = new ReadableStream();
        const cr = c.getReader();
        const pending = cr.read();
        await cr.cancel("bye");
        return [afterBreak, canceled, rest.value, e1, e2, e3, await pending, 
                Object.getPrototypeOf(Object.getPrototypeOf(rs.values())) === Object.getPrototypeOf(Object.getPrototypeOf(Object.getPrototypeOf((async function* () {})())))];
    "#);
    assert_eq!(
        v,
        json!([[null, false], false, 2, ["TypeError", "pull broke"], "pull broke", "TypeError", {"done": true}, true])
    );
}

#[test]
fn wrong_input_throws_the_specs_errors() {
    let v = run(&format!(
        "return [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}];",
        throws("new ReadableStream(null)"),
        throws("new ReadableStream({ type: 'nope' })"),
        throws("new ReadableStream({}, { highWaterMark: -1 })"),
        throws("new ReadableStream({ type: 'bytes' }, { size() { return 1; } })"),
        throws("new ReadableStream({ start: 5 })"),
        throws(
            "(() => { const s = new ReadableStream(); s.getReader(); return s.getReader(); })()"
        ),
        throws("new ReadableStream().getReader({ mode: 'byob' })"),
        throws("new ReadableStream().getReader({ mode: 'other' })"),
        throws("new WritableStream({ type: 'bytes' })"),
        throws("new TransformStream({ readableType: 'bytes' })"),
        throws("new ReadableStreamDefaultController()"),
        throws("new CountQueuingStrategy({})"),
        throws("ReadableStream.from(5)"),
        throws("new ReadableStream({ start(c) { c.close(); c.enqueue(1); } })"),
        throws("structuredClone(new ReadableStream())"),
    ));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "TypeError",
            "TypeError",
            "RangeError",
            "RangeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "RangeError",
            "RangeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "TypeError",
            "DataCloneError"
        ],
        "{v}"
    );
    assert!(v[5][1].as_str().unwrap().contains("locked"), "{v}");
}

#[test]
fn text_encoder_and_decoder_streams() {
    let v = run(r#"
        const enc = new TextEncoderStream();
        const w = enc.writable.getWriter();
        // A surrogate pair split across two chunks still encodes as one code point.
        w.write("h\ud83d"); w.write("\ude00!"); w.close();
        const bytes = [];
        for await (const c of enc.readable) bytes.push(...c);
        const dec = new TextDecoderStream();
        const dw = dec.writable.getWriter();
        // "é" split across chunks.
        dw.write(new Uint8Array([0x68, 0xc3])); dw.write(new Uint8Array([0xa9])); dw.close();
        let text = "";
        for await (const s of dec.readable) text += s;
        return [bytes, text, enc.encoding, dec.encoding, dec.fatal, new TextDecoderStream("utf-8", { fatal: true }).fatal];
    "#);
    assert_eq!(
        v,
        json!([
            [104, 240, 159, 152, 128, 33],
            "hé",
            "utf-8",
            "utf-8",
            false,
            true
        ])
    );
}

#[test]
fn bodies_are_streams_and_streams_are_bodies() {
    let v = run(r#"
        const res = new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("ab")); c.enqueue("cd"); c.close(); } }));
        const t = await res.text();
        const body = new Response("xyz").body;
        const chunk = await body.getReader().read();
        const blobText = await new Response(new Blob(["blob!"]).stream()).text();
        const locked = new ReadableStream(); locked.getReader();
        let err = null;
        try { new Response(locked); } catch (e) { err = e.name; }
        return [t, Array.from(chunk.value), blobText, err];
    "#);
    assert_eq!(v, json!(["abcd", [120, 121, 122], "blob!", "TypeError"]));
}

#[test]
fn the_hello_world_path_does_not_load_streams() {
    let v = run(r#"
        const isAccessor = () => typeof Object.getOwnPropertyDescriptor(globalThis, "ReadableStream").get === "function";
        const before = isAccessor();
        const r = new Response("x");
        const t = await new Response("x").text();
        const j = await new Request("http://a/", { method: "POST", body: "{\"a\":1}" }).json();
        return [before, isAccessor(), t, j.a, r.status];
    "#);
    assert_eq!(v, json!([true, true, "x", 1, 200]));
}

#[test]
fn streams_load_after_the_tenant_deleted_and_patched_the_builtins() {
    let v = run(&format!(
        r#"
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const gopd = globalThis.__gopd;
        const wasLazy = typeof gopd(globalThis, "ReadableStream").get === "function";
        const rs = new ReadableStream({{ start(c) {{ c.enqueue("a"); c.enqueue("b"); c.close(); }} }});
        const x = rs.tee()[0];
        let out = "";
        const t = new TransformStream({{ transform(c, ctl) {{ ctl.enqueue(c + c); }} }});
        const piped = x.pipeThrough(t);
        const reader = piped.getReader();
        for (;;) {{ const r = await reader.read(); if (r.done) break; out += r.value; }}
        const bytes = new ReadableStream({{ type: "bytes", start(c) {{ c.enqueue(new TextEncoder().encode("hi")); c.close(); }} }});
        const br = await bytes.getReader({{ mode: "byob" }}).read(new TextEncoder().encode("....."));
        let it = "";
        const tds = new TextDecoderStream();
        const tw = tds.writable.getWriter();
        tw.write(new TextEncoder().encode("ok"));
        tw.close();
        for await (const c of tds.readable) it += c;
        const z = new CompressionStream("gzip");
        return [wasLazy, out, br.value.length, typeof gopd(globalThis, "ReadableStream").value, it];
        "#
    ));
    assert_eq!(v, json!([true, "aabb", 2, "function", "ok"]));
}

//! CompressionStream and DecompressionStream (WHATWG Compression Standard)
//! over the native codec (runtime/ops_compress.rs).

use serde_json::json;

use super::{run, run_with_cpu, throws};
use crate::util::{call_json, engine, tenant_with_limits};

/// JS helpers: `pump(stream, chunks)` writes the chunks, closes, and returns
/// every output byte as one array (or `[error name, message]`).
const HELPERS: &str = r#"
    const pump = async (ts, chunks) => {
        const w = ts.writable.getWriter();
        for (const c of chunks) w.write(c).catch(() => {});
        w.close().catch(() => {});
        const out = [];
        try {
            for await (const c of ts.readable) out.push(...c);
        } catch (e) {
            return [e.name, e.message];
        }
        return out;
    };
    const enc = (s) => new TextEncoder().encode(s);
    const dec = (a) => new TextDecoder().decode(new Uint8Array(a));
"#;

#[test]
fn known_answers_decompress() {
    let v = run(&format!(
        r#"{HELPERS}
        const gz = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 87, 40, 207, 47, 202, 73, 1, 0, 133, 17, 74, 13, 11, 0, 0, 0];
        const zl = [120, 156, 203, 72, 205, 201, 201, 7, 0, 6, 44, 2, 21];
        // Split into one-byte chunks: the gzip header, data and trailer may arrive in pieces.
        const bytewise = gz.map((b) => new Uint8Array([b]));
        return [
            dec(await pump(new DecompressionStream("gzip"), [new Uint8Array(gz)])),
            dec(await pump(new DecompressionStream("gzip"), bytewise)),
            dec(await pump(new DecompressionStream("deflate"), [new Uint8Array(zl)])),
            dec(await pump(new DecompressionStream("deflate-raw"), [new Uint8Array(zl.slice(2, -4))])),
        ];
        "#
    ));
    assert_eq!(v, json!(["hello world", "hello world", "hello", "hello"]));
}

#[test]
fn round_trips_in_every_format() {
    // Compression in a debug build is slow: a larger CPU budget.
    let v = run_with_cpu(
        &format!(
            r#"{HELPERS}
        const text = "streams ".repeat(5000) + "end";
        const out = [];
        for (const f of ["gzip", "deflate", "deflate-raw"]) {{
            const packed = await pump(new CompressionStream(f), [enc(text.slice(0, 100)), enc(text.slice(100))]);
            const back = dec(await pump(new DecompressionStream(f), [new Uint8Array(packed)]));
            out.push([f, f === "deflate-raw" ? null : packed.slice(0, 2), packed.length < 1000, back === text]);
        }}
        // Through pipeThrough, with an ArrayBuffer chunk.
        const piped = new Blob(["piped!"]).stream().pipeThrough(new CompressionStream("gzip")).pipeThrough(new DecompressionStream("gzip"));
        out.push(await new Response(piped).text());
        return out;
        "#
        ),
        5000,
    );
    assert_eq!(
        v,
        json!([
            ["gzip", [31, 139], true, true],
            ["deflate", [120, 156], true, true],
            ["deflate-raw", null, true, true],
            "piped!"
        ])
    );
}

#[test]
fn bad_data_is_a_type_error() {
    let v = run(&format!(
        r#"{HELPERS}
        const gz = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 87, 40, 207, 47, 202, 73, 1, 0, 133, 17, 74, 13, 11, 0, 0, 0];
        const badCrc = gz.slice(); badCrc[gz.length - 8] ^= 1;
        return [
            await pump(new DecompressionStream("gzip"), [new Uint8Array([...gz, 0])]),
            await pump(new DecompressionStream("gzip"), [new Uint8Array(gz.slice(0, -4))]),
            await pump(new DecompressionStream("gzip"), [new Uint8Array([1, 2, 3, 4])]),
            await pump(new DecompressionStream("gzip"), [new Uint8Array(badCrc)]),
            await pump(new DecompressionStream("deflate"), ["not bytes"]),
            {},
            {},
        ];
        "#,
        throws("new CompressionStream('brotli')"),
        throws("new DecompressionStream()"),
    ));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TypeError"; 7], "{v}");
    assert!(v[0][1].as_str().unwrap().contains("after the end"), "{v}");
    assert!(v[1][1].as_str().unwrap().contains("truncated"), "{v}");
    assert!(v[3][1].as_str().unwrap().contains("checksum"), "{v}");
}

#[test]
fn a_decompression_bomb_stops_at_the_array_buffer_budget() {
    // 8 MiB of zeros compress to about 8 KiB; the budget is 4 MiB.
    let e = engine();
    let limits = isola_core::Limits {
        external_memory_bytes: 4 << 20,
        cpu: std::time::Duration::from_secs(20),
        wall: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    let src = format!(
        r#"{HELPERS}
        export default async () => {{
            const zeros = new Uint8Array(256 << 10);
            const cs = new CompressionStream("deflate-raw");
            const w = cs.writable.getWriter();
            for (let i = 0; i < 32; i++) w.write(zeros);
            w.close();
            const parts = [];
            let n = 0;
            for await (const c of cs.readable) {{ parts.push(c); n += c.length; }}
            const bomb = new Uint8Array(n);
            let at = 0;
            for (const p of parts) {{ bomb.set(p, at); at += p.length; }}
            const ds = new DecompressionStream("deflate-raw");
            const dw = ds.writable.getWriter();
            dw.write(bomb).catch(() => {{}});
            dw.close().catch(() => {{}});
            const kept = [];
            let total = 0;
            try {{
                for await (const c of ds.readable) {{ kept.push(c); total += c.length; }}
                return ["no error", total, n];
            }} catch (e) {{
                return [e.name, e.message, total, n];
            }}
        }};
        "#
    );
    let mut t = tenant_with_limits(&e.engine, "bomb", &src, limits);
    let v = call_json(&mut t);
    assert_eq!(v[0], "RangeError", "{v}");
    assert!(v[1].as_str().unwrap().contains("memory budget"), "{v}");
    assert!(v[3].as_u64().unwrap() < 64 << 10, "{v}");
}

#[test]
fn abandoned_compression_streams_are_freed_after_garbage_collection() {
    // Each stream holds a native codec (at most 16 alive). Streams the tenant
    // drops without closing are freed by a FinalizationRegistry, whose
    // cleanup V8 posts as a foreground task that the event loop must run.
    let e = engine();
    let src = r#"
        export default async () => {
            // A codec is made on a stream's first chunk; these 16 each get one.
            const writes = [];
            for (let i = 0; i < 16; i++) {
                const cs = new CompressionStream("gzip");
                cs.readable.getReader().read();
                writes.push(cs.writable.getWriter().write(new Uint8Array(1)).then(() => "ok", (e) => e.name));
            }
            const done = await Promise.all(writes);
            return done.filter((x) => x === "ok").length;
        };
    "#;
    let mut t = tenant_with_limits(&e.engine, "abandon", src, isola_core::Limits::default());
    assert_eq!(call_json(&mut t), json!(16));
    // Those 16 are abandoned open: the next 16 would pass the cap...
    // ...unless a collection found them and the cleanup ran.
    t.collect_garbage();
    assert_eq!(
        call_json(&mut t),
        json!(16),
        "abandoned codecs were not freed"
    );
}

#[test]
fn streams_never_written_to_hold_no_codec_and_a_bad_chunk_frees_its_codec() {
    let v = run(r#"
        const made = [];
        for (let i = 0; i < 100; i++) made.push(new DecompressionStream("deflate"));
        // Each of these errors on a chunk that is not bytes, freeing its codec.
        const bad = [];
        for (let i = 0; i < 20; i++) {
            const cs = new CompressionStream("gzip");
            const r = cs.readable.getReader();
            (async () => { try { while (!(await r.read()).done); } catch {} })();
            const w = cs.writable.getWriter();
            await w.write(new Uint8Array(1));
            bad.push(await w.write("text").then(() => "ok", (e) => e.name));
        }
        return [made.length, bad.filter((x) => x === "TypeError").length];
    "#);
    assert_eq!(v, json!([100, 20]));
}

//! MessageChannel and MessagePort (HTML channel messaging): asynchronous
//! delivery as tasks, ordering, cloning, start/close, the queue cap.

use serde_json::json;

use super::{run, run_with_cpu, throws, DELETE_GLOBALS, PATCH_EVERYTHING};

#[test]
fn ping_pong_is_ordered_asynchronous_and_clones() {
    let v = run(r#"
        const { port1, port2 } = new MessageChannel();
        const log = [];
        const original = new Map([["k", { n: 1 }]]);
        const done = new Promise((resolve) => {
          port2.onmessage = (e) => {
            log.push(["port2", e.data instanceof Map ? "map:" + e.data.get("k").n : e.data, e.isTrusted,
                      e.constructor === MessageEvent, e.target === port2, e.ports.length, e.source]);
            if (e.data instanceof Map) {
              e.data.get("k").n = 99; // a copy: the sender's map is untouched
              port2.postMessage(e.data === original);
            }
          };
          port1.addEventListener("message", (e) => {
            log.push(["port1", e.data]);
            resolve();
          });
          port1.start();
        });
        port1.postMessage("first");
        port1.postMessage(original);
        Promise.resolve().then(() => log.push("microtask"));
        log.push("sync");
        await done;
        return [log, original.get("k").n, Object.prototype.toString.call(port1), typeof MessagePort];
    "#);
    assert_eq!(
        v,
        json!([
            [
                "sync",
                "microtask",
                ["port2", "first", true, true, true, 0, null],
                ["port2", "map:1", true, true, true, 0, null],
                ["port1", false]
            ],
            1,
            "[object MessagePort]",
            "function"
        ])
    );
}

#[test]
fn add_event_listener_needs_start_and_close_stops_delivery() {
    let v = run(r#"
        const wait = (ms) => new Promise((r) => setTimeout(r, ms));
        const a = new MessageChannel();
        const got = [];
        a.port2.addEventListener("message", (e) => got.push(e.data));
        a.port1.postMessage(1);
        await wait(5);
        const beforeStart = got.length;
        a.port2.start();
        await wait(5);
        const afterStart = [...got];
        const b = new MessageChannel();
        const gotB = [];
        b.port2.onmessage = (e) => gotB.push(e.data);
        b.port1.postMessage("queued");
        b.port2.close();
        b.port1.postMessage("after close");
        await wait(5);
        const c = new MessageChannel();
        const gotC = [];
        c.port2.onmessage = (e) => gotC.push(e.data);
        c.port1.close();
        c.port1.postMessage("from closed");
        await wait(5);
        return [beforeStart, afterStart, gotB, gotC];
    "#);
    assert_eq!(v, json!([0, [1], [], []]));
}

#[test]
fn transfer_lists_and_wrong_input() {
    let v = run(&format!(
        r#"
        const {{ port1, port2 }} = new MessageChannel();
        const buf = new Uint8Array([1, 2, 3]).buffer;
        const received = new Promise((r) => (port2.onmessage = (e) => r(e.data)));
        port1.postMessage({{ buf }}, [buf]);
        const data = await received;
        return [buf.byteLength, buf.detached, [...new Uint8Array(data.buf)], {}, {}, {}, {}, {}, {}, {}];
        "#,
        throws("new MessagePort()"),
        throws("port1.postMessage(port2)"),
        throws("port1.postMessage(1, [port2])"),
        throws("port1.postMessage(1, { transfer: [new ArrayBuffer(1), 5] })"),
        throws("(() => { const b = new ArrayBuffer(1); port1.postMessage(1, [b, b]); })()"),
        throws("port1.postMessage(() => 1)"),
        throws("port1.postMessage()"),
    ));
    assert_eq!(v[0], 0);
    assert_eq!(v[1], true);
    assert_eq!(v[2], json!([1, 2, 3]));
    let names: Vec<&str> = v.as_array().unwrap()[3..]
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "TypeError",
            "DataCloneError",
            "DataCloneError",
            "TypeError",
            "DataCloneError",
            "DataCloneError",
            "TypeError"
        ],
        "{v}"
    );
    assert!(
        v[5][1]
            .as_str()
            .unwrap()
            .contains("MessagePort is not supported"),
        "{v}"
    );
}

#[test]
fn a_message_flood_hits_the_queue_cap_with_a_clear_error() {
    let v = run_with_cpu(
        r#"
        const { port1, port2 } = new MessageChannel();
        let sent = 0;
        let error;
        try { for (;;) { port1.postMessage(sent); sent++; } } catch (e) { error = [e.name, e.message]; }
        // Once started, the queued messages are all delivered, in order.
        let n = 0, inOrder = true;
        const all = new Promise((r) => (port2.onmessage = (e) => { if (e.data !== n) inOrder = false; if (++n === sent) r(); }));
        const t0 = Date.now();
        await all;
        return [sent, error, n, inOrder, Date.now() - t0];
    "#,
        5000,
    );
    eprintln!("{v}");
    assert!(v[4].as_i64().unwrap() < 3000, "{v}");
    let v = json!(v.as_array().unwrap()[..4]);
    assert_eq!(
        v,
        json!([
            10000,
            [
                "QuotaExceededError",
                "Failed to execute 'postMessage' on 'MessagePort': the receiving port already holds 10000 undelivered messages."
            ],
            10000,
            true
        ])
    );
}

#[test]
fn an_endless_ping_pong_is_stopped_by_the_limits() {
    // Each delivery is a task like a timer: a port pair bouncing forever
    // cannot outlive the invocation's CPU and wall-time limits.
    let e = crate::util::engine();
    let mut t = crate::util::tenant(
        &e.engine,
        "web",
        "export default async () => {
           const { port1, port2 } = new MessageChannel();
           port1.onmessage = (e) => port1.postMessage(e.data + 1);
           port2.onmessage = (e) => port2.postMessage(e.data + 1);
           port1.postMessage(0);
           await new Promise(() => {});
         };",
    );
    let err = t.call(vec![]).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("CPU") || err.contains("wall"), "{err}");
}

#[test]
fn message_channel_loads_on_first_use_after_the_tenant_deleted_and_patched_the_builtins() {
    let v = run(&format!(
        "const before = Object.getOwnPropertyDescriptor(globalThis, 'MessageChannel');
        const P = Promise;
        {PATCH_EVERYTHING}
        {DELETE_GLOBALS}
        const ch = new MessageChannel();
        const got = await new P((resolve) => {{
          ch.port2.onmessage = (e) => resolve(e.data);
          ch.port1.postMessage({{ a: [1, 2] }});
        }});
        const after = __gopd(globalThis, 'MessagePort');
        return [typeof before.get, got.a[1], typeof after.value];"
    ));
    assert_eq!(v, json!(["function", 2, "function"]));
}

//! Hostile clients and hostile tenant responses against the data plane:
//! timeouts, the connection cap, the per-tenant admission queue and
//! server-side response framing. Misbehaving clients are raw `TcpStream`s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::raw::{closed_within, connect, eventually, get, read_response};
use crate::util::{config, start_with, TestServer};

mod admission;

pub(crate) fn server(
    dir: &std::path::Path,
    tune: impl FnOnce(&mut isola_server::ServerConfig),
) -> TestServer {
    let mut c = config(dir);
    tune(&mut c);
    start_with(c)
}

// ---- Framing: the server, not the tenant, frames responses. ----

#[test]
fn a_tenant_content_length_cannot_inject_a_second_response() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {});
    let forged = "HTTP/1.1 200 OK\\r\\ncontent-length: 6\\r\\n\\r\\nforged";
    assert_eq!(
        s.deploy(
            "evil",
            &format!("export default {{ fetch() {{ return new Response(\"{forged}\", {{ headers: {{ 'Content-Length': '0', 'transfer-encoding': 'identity' }} }}); }} }};")
        )
        .status,
        201
    );
    assert_eq!(
        s.deploy(
            "good",
            "export default { fetch() { return new Response('genuine'); } };"
        )
        .status,
        201
    );
    let mut c = connect(s.server.data_addr);
    // Pipelined: the second request (another tenant) rides the same connection.
    let both = format!(
        "{}GET / HTTP/1.1\r\nHost: good.localhost\r\nConnection: close\r\n\r\n",
        get("evil.localhost", "/")
    );
    c.write_all(both.as_bytes()).unwrap();
    let mut r = BufReader::new(c);
    let first = read_response(&mut r);
    assert_eq!(first.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&first.body),
        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged",
        "the tenant's bytes are the first response's body: {first:?}"
    );
    let second = read_response(&mut r);
    assert_eq!(
        (
            second.status,
            String::from_utf8_lossy(&second.body).as_ref()
        ),
        (200, "genuine"),
        "the second request got its own tenant's answer: {second:?}"
    );
}

#[test]
fn hop_by_hop_headers_from_a_tenant_never_reach_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {});
    s.deploy(
        "hop",
        "export default { fetch() { return new Response('body', { headers: [
            ['Connection', 'close, x-listed'], ['x-listed', '1'], ['Keep-Alive', 'timeout=99'],
            ['Upgrade', 'h2c'], ['TE', 'trailers'], ['Trailer', 'x-t'],
            ['Proxy-Connection', 'close'], ['Proxy-Authenticate', 'Basic'],
            ['X-Kept', 'yes'] ] }); } };",
    );
    let mut c = connect(s.server.data_addr);
    c.write_all(get("hop.localhost", "/").repeat(2).as_bytes())
        .unwrap();
    let mut r = BufReader::new(c);
    for _ in 0..2 {
        let resp = read_response(&mut r);
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"body"[..]));
        for gone in [
            "connection",
            "x-listed",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-connection",
            "proxy-authenticate",
        ] {
            assert_eq!(
                resp.header(gone),
                None,
                "{gone} reached the client: {resp:?}"
            );
        }
        assert_eq!(resp.header("x-kept"), Some("yes"));
        assert_eq!(resp.header("content-length"), Some("4"), "server framing");
    }
}

#[test]
fn a_header_value_with_a_line_break_is_an_error_not_an_injected_header() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {});
    s.deploy(
        "crlf",
        "export default { fetch() { return new Response('x', { headers: { 'x-evil': 'a\\r\\nset-cookie: pwned=1' } }); } };",
    );
    let mut c = connect(s.server.data_addr);
    c.write_all(get("crlf.localhost", "/").as_bytes()).unwrap();
    let resp = read_response(&mut BufReader::new(c));
    // The runtime refuses the value where the tenant sets it (a TypeError in
    // the handler: 500); the server's framing would answer 502 if one ever
    // got through (framing's unit tests).
    assert_eq!(resp.status, 500, "{resp:?}");
    assert!(resp.header("set-cookie").is_none(), "{resp:?}");
    let j = resp.json();
    assert_eq!(j["error"], "exception", "{j}");
    assert!(j["request_id"].is_string());
}

#[test]
fn a_response_with_too_many_or_too_large_headers_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {});
    s.deploy(
        "loud",
        "export default { fetch(req) {
            const h = new Headers();
            if (req.url.endsWith('/many')) for (let i = 0; i < 300; i++) h.set('x-' + i, 'v');
            else h.set('x-big', 'v'.repeat(130 << 10));
            return new Response('x', { headers: h });
        } };",
    );
    // A raw client: it reads whatever the server sends, however many headers.
    let ask = |path: &str| {
        let mut c = connect(s.server.data_addr);
        c.write_all(get("loud.localhost", path).as_bytes()).unwrap();
        read_response(&mut BufReader::new(c))
    };
    // The runtime caps the headers as the handler's Response is finished
    // (a TypeError naming the limit: 500, the stack in the logs); the
    // server's own cap (502 `invalid_response`) is the last line of defence,
    // covered by framing's unit tests.
    for path in ["/many", "/big"] {
        let r = ask(path);
        assert_eq!(r.status, 500, "{path}: {} headers", r.headers.len());
        assert!(
            r.headers.len() < 16,
            "{path}: {} headers reached the client",
            r.headers.len()
        );
        assert_eq!(r.json()["error"], "exception", "{path}");
    }
}

// ---- Timeouts ----

#[test]
fn a_slowloris_request_head_is_cut_off_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.header_read_timeout = Duration::from_millis(500);
        c.keep_alive_timeout = Duration::from_secs(60);
    });
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = connect(s.server.data_addr);
            c.write_all(b"GET / HTTP/1.1\r\nHost: x.localhost\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    // Keep dribbling header bytes on one of them: progress does not extend the deadline.
    let mut dribbler = conns.pop().unwrap();
    let mut buf = [0u8; 1024];
    let dribble_closed = eventually(Duration::from_secs(5), || {
        if dribbler.write_all(b"a").is_err() {
            return Some(());
        }
        dribbler
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match dribbler.read(&mut buf) {
            Ok(_) => Some(()), // EOF, or the last words before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(()),
            Err(_) => None,
        }
    })
    .is_some();
    assert!(dribble_closed, "a dribbled head kept its connection open");
    for c in &mut conns {
        assert!(
            closed_within(c, Duration::from_secs(5)),
            "a half-open connection stayed open"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(6));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.header_read_timeout = Duration::from_secs(30);
        c.keep_alive_timeout = Duration::from_millis(300);
    });
    s.deploy(
        "ka",
        "export default { fetch() { return new Response('ok'); } };",
    );
    let mut c = connect(s.server.data_addr);
    c.write_all(get("ka.localhost", "/").as_bytes()).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_response(&mut r).status, 200);
    let t0 = Instant::now();
    assert!(
        closed_within(&mut c, Duration::from_secs(10)),
        "the idle connection stayed open"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "closed by the keep-alive timeout, not the 30 s header timeout: {:?}",
        t0.elapsed()
    );
    // A connection that is not idle is not cut: a request every 100 ms keeps it.
    let c = connect(s.server.data_addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    for _ in 0..8 {
        w.write_all(get("ka.localhost", "/").as_bytes()).unwrap();
        assert_eq!(read_response(&mut r).status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slow_upload_gets_408_without_holding_the_tenants_slot() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(server(dir.path(), |c| {
        c.body_read_timeout = Duration::from_millis(800);
        // A request that finds the slot taken fails fast instead of queueing.
        c.admission_max_wait = Duration::from_millis(50);
    }));
    s.admin(
        "PUT",
        "/v1/tenants/up",
        Some(json!({"limits": {"max_concurrency": 1}})),
    );
    s.deploy(
        "up",
        "export default { async fetch(req) { return new Response('got ' + (await req.text()).length); } };",
    );
    let mut slow = connect(s.server.data_addr);
    slow.write_all(
        b"POST / HTTP/1.1\r\nHost: up.localhost\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .unwrap();
    let reader = std::thread::spawn({
        let slow = slow.try_clone().unwrap();
        move || read_response(&mut BufReader::new(slow))
    });
    // While the upload stalls, the tenant keeps serving others.
    let mut served = 0;
    while !reader.is_finished() {
        let r = s.post("up.localhost", "/", "hello");
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "got 5"),
            "the stalled upload held the tenant's only slot"
        );
        served += 1;
    }
    assert!(served > 0);
    let resp = reader.join().unwrap();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert_eq!(resp.json()["error"], "request_timeout");
    assert_eq!(resp.json()["timeout_ms"], 800);
    assert!(closed_within(&mut slow, Duration::from_secs(5)));
}

#[test]
fn a_streamed_upload_that_stalls_fails_the_handlers_body_read_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.body_read_timeout = Duration::from_millis(800)
    });
    s.deploy(
        "sink",
        "export default { async fetch(req) {
            try { await req.text(); return new Response('read it all'); }
            catch (e) { return new Response('body failed: ' + e.message, { status: 400 }); }
        } };",
    );
    let mut c = connect(s.server.data_addr);
    // Chunked (so streamed to the handler): one chunk, then nothing.
    c.write_all(
        b"POST / HTTP/1.1\r\nHost: sink.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let resp = read_response(&mut BufReader::new(c));
    let body = String::from_utf8_lossy(&resp.body);
    assert_eq!(resp.status, 400, "{body}");
    assert!(body.contains("no data for 800 ms"), "{body}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_client_that_stops_reading_a_stream_is_disconnected_and_the_tenant_released() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.write_timeout = Duration::from_millis(500);
        c.admission_max_wait = Duration::from_millis(100);
    });
    s.admin(
        "PUT",
        "/v1/tenants/firehose",
        Some(json!({"limits": {"max_concurrency": 1, "wall": 120000, "cpu": 60000}})),
    );
    s.deploy(
        "firehose",
        "export default { fetch(req) {
            if (req.url.endsWith('/quick')) return new Response('quick');
            const chunk = new Uint8Array(64 << 10).fill(97);
            return new Response(new ReadableStream({ pull(c) { c.enqueue(chunk); } }));
        } };",
    );
    let mut c = connect(s.server.data_addr);
    c.write_all(get("firehose.localhost", "/").as_bytes())
        .unwrap();
    let mut head = String::new();
    BufReader::new(c.try_clone().unwrap())
        .read_line(&mut head)
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The stream holds the tenant's only slot while it flows.
    let busy = s.data("firehose.localhost", "/quick");
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert_eq!(busy.json()["error"], "queue_timeout");
    // Never read: the server gives up on the connection after the write timeout...
    let t0 = Instant::now();
    let released = eventually(Duration::from_secs(20), || {
        let r = s.data("firehose.localhost", "/quick");
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(
        released.as_deref(),
        Some("quick"),
        "the tenant's slot was never released"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    // ...and closed it: what is left in the buffers ends in EOF or a reset.
    assert!(closed_within(&mut c, Duration::from_secs(10)));
}

#[test]
fn connections_past_the_cap_are_refused_at_once_and_served_again_when_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.max_connections = 4;
        c.keep_alive_timeout = Duration::from_secs(60);
        c.header_read_timeout = Duration::from_secs(60);
    });
    s.deploy(
        "cap",
        "export default { fetch() { return new Response('in'); } };",
    );
    let mut open: Vec<(TcpStream, BufReader<TcpStream>)> = (0..4)
        .map(|_| {
            let mut c = connect(s.server.data_addr);
            c.write_all(get("cap.localhost", "/").as_bytes()).unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            assert_eq!(read_response(&mut r).body, b"in");
            (c, r)
        })
        .collect();
    // A fifth is told at once, without having to send anything, and closed.
    let mut extra = connect(s.server.data_addr);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let _ = extra.read_to_end(&mut got);
    assert!(!got.is_empty(), "a fifth connection was kept open");
    let refused = read_response(&mut BufReader::new(&got[..]));
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(refused.json()["error"], "too_many_connections");
    // The four keep working.
    for (c, r) in &mut open {
        c.write_all(get("cap.localhost", "/").as_bytes()).unwrap();
        assert_eq!(read_response(r).body, b"in");
    }
    drop(open.pop());
    let served = eventually(Duration::from_secs(10), || {
        let mut c = connect(s.server.data_addr);
        c.write_all(get("cap.localhost", "/").as_bytes()).ok()?;
        let mut buf = Vec::new();
        let mut r = BufReader::new(c);
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        buf.extend_from_slice(line.as_bytes());
        line.starts_with("HTTP/1.1 200").then_some(())
    });
    assert!(served.is_some(), "a freed connection slot was not reused");
}

#[test]
fn hundreds_of_silent_connections_are_all_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |c| {
        c.keep_alive_timeout = Duration::from_millis(500);
        c.header_read_timeout = Duration::from_secs(60);
    });
    let mut conns: Vec<TcpStream> = (0..800).map(|_| connect(s.server.data_addr)).collect();
    for c in &mut conns {
        assert!(
            closed_within(c, Duration::from_secs(10)),
            "a silent connection stayed open"
        );
    }
    let none = eventually(Duration::from_secs(5), || {
        (s.state.conns.open() == 0).then_some(())
    });
    assert!(none.is_some(), "{} still open", s.state.conns.open());
    assert!(
        s.state.conns.timed_out() >= 800,
        "{} timed out",
        s.state.conns.timed_out()
    );
}

//! Outbound `fetch()` from tenants, end to end: a real upstream HTTP server
//! on loopback that each test explicitly allows, the tenant's policy checked
//! after DNS and on every redirect, the per-invocation caps, abort signals
//! and the subrequest metrics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{start, TestServer};

/// A small HTTP/1.1 upstream on an ephemeral loopback port (one thread per
/// connection, `Connection: close`). Paths: `/hello`, `/echo` (method,
/// selected headers and body as JSON), `/big?n=N` (N bytes), `/slow` (2 s),
/// `/to?u=URL` (302 to URL), `/loop` (302 to itself).
pub struct Upstream {
    pub port: u16,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve(conn));
            }
        });
        Upstream { port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(mut conn: TcpStream) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (n, v) = h.trim_end().split_once(':').unwrap_or(("", ""));
        let (n, v) = (n.to_ascii_lowercase(), v.trim().to_string());
        if n == "content-length" {
            len = v.parse().unwrap_or(0);
        }
        headers.push((n, v));
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (status, extra, out): (u16, String, Vec<u8>) = match path {
        "/hello" => (
            200,
            "x-up: 1\r\ncontent-type: text/plain\r\n".into(),
            b"hi".to_vec(),
        ),
        "/echo" => {
            let v = json!({
                "method": method,
                "host": header("host"),
                "token": header("x-token"),
                "authorization": header("authorization"),
                "body": String::from_utf8_lossy(&body),
            });
            (
                200,
                "content-type: application/json\r\n".into(),
                v.to_string().into_bytes(),
            )
        }
        "/big" => {
            let n: usize = query
                .strip_prefix("n=")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (200, String::new(), vec![b'x'; n])
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(2));
            (200, String::new(), b"late".to_vec())
        }
        "/to" => {
            let u = query.strip_prefix("u=").unwrap_or("/");
            (302, format!("location: {u}\r\n"), Vec::new())
        }
        "/loop" => (302, "location: /loop\r\n".into(), Vec::new()),
        _ => (404, String::new(), b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
        out.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&out);
}

/// Sets `tenant`'s fetch settings and deploys `source`.
fn tenant(s: &TestServer, tenant: &str, fetch: Value, source: &str) {
    let r = s.admin(
        "PUT",
        &format!("/v1/tenants/{tenant}"),
        Some(json!({ "fetch": fetch })),
    );
    assert!(r.status < 300, "settings: {} {}", r.status, r.body);
    let r = s.deploy(tenant, source);
    assert!(r.status < 300, "deploy: {} {}", r.status, r.body);
}

/// A handler that runs `body` (an async function body) and answers its
/// JSON result, or `{error: [name, message]}`.
fn handler(body: &str) -> String {
    format!(
        "export default {{ async fetch(request) {{
            try {{ return Response.json(await (async () => {{ {body} }})()); }}
            catch (e) {{ return Response.json({{ error: [e.name, e.message] }}); }}
        }} }};"
    )
}

fn call(s: &TestServer, tenant: &str) -> Value {
    let r = s.data(&format!("{tenant}.localhost"), "/");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn a_tenant_fetches_from_an_allowed_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = Upstream::start();
    let allow = json!({ "allow": [format!("127.0.0.1:{}", up.port)] });
    let code = handler(&format!(
        r#"const a = await fetch("{hello}");
        const b = await fetch("{echo}", {{ method: "post", headers: {{ "x-token": "t1", host: "evil.example" }}, body: JSON.stringify({{ n: 1 }}) }});
        const e = await b.json();
        const r = await fetch("{to}");
        const m = await fetch("{to}", {{ redirect: "manual" }});
        let err = null;
        try {{ await fetch("{to}", {{ redirect: "error" }}); }} catch (x) {{ err = x.name; }}
        return {{ status: a.status, text: await a.text(), up: a.headers.get("x-up"), ok: a.ok, url: a.url, type: a.type,
                 echo: e, redirected: r.redirected, finalUrl: r.url, finalText: await r.text(),
                 manual: [m.status, m.headers.get("location"), m.redirected], err }};"#,
        hello = up.url("/hello"),
        echo = up.url("/echo"),
        to = up.url("/to?u=/hello"),
    ));
    tenant(&s, "fetcher", allow, &code);
    let v = call(&s, "fetcher");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["text"], "hi");
    assert_eq!(v["up"], "1");
    assert_eq!(v["ok"], true);
    assert_eq!(v["url"], up.url("/hello"));
    assert_eq!(v["type"], "basic");
    assert_eq!(v["echo"]["method"], "POST");
    assert_eq!(v["echo"]["token"], "t1");
    assert_eq!(v["echo"]["body"], "{\"n\":1}");
    // The client sets Host from the URL, never from the tenant.
    assert_eq!(v["echo"]["host"], format!("127.0.0.1:{}", up.port));
    assert_eq!(v["redirected"], true);
    assert_eq!(v["finalUrl"], up.url("/hello"));
    assert_eq!(v["finalText"], "hi");
    assert_eq!(v["manual"], json!([302, "/hello", false]));
    assert_eq!(v["err"], "TypeError");
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_subrequests_total{tenant=\"fetcher\",outcome=\"ok\"} 5"),
        "{m}"
    );
}

#[test]
fn fetch_is_denied_by_default_and_to_non_public_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = Upstream::start();
    let port = up.port;
    let try_fetch = |url: &str| {
        handler(&format!(
            "try {{ const r = await fetch({url:?}); return ['ok', await r.text()]; }} catch (e) {{ return [e.name, e.message]; }}"
        ))
    };
    // No settings: deny by default.
    tenant(&s, "closed", json!({}), &try_fetch(&up.url("/hello")));
    let v = call(&s, "closed");
    assert_eq!(v[0], "TypeError", "{v}");
    assert!(
        v[1].as_str()
            .unwrap()
            .contains("not in the tenant's fetch.allow list"),
        "{v}"
    );
    // A host name that resolves to loopback is refused after resolution...
    let by_name = json!({ "allow": [format!("localhost:{port}")] });
    let url = format!("http://localhost:{port}/hello");
    tenant(&s, "byname", by_name, &try_fetch(&url));
    let v = call(&s, "byname");
    assert_eq!(v[0], "TypeError", "{v}");
    assert!(v[1].as_str().unwrap().contains("non-public address"), "{v}");
    // ...unless the settings allow private addresses.
    let open = json!({ "allow": [format!("localhost:{port}")], "allow_private": true });
    tenant(&s, "byname", open, &try_fetch(&url));
    assert_eq!(call(&s, "byname"), json!(["ok", "hi"]));
    // A redirect is checked like the first hop: to a host not in the list,
    // and to an allowed name that resolves to loopback.
    let allow = json!({ "allow": [format!("127.0.0.1:{port}"), format!("localhost:{port}")] });
    let to_metadata = up.url("/to?u=http://169.254.169.254/latest/meta-data/");
    tenant(&s, "redir", allow.clone(), &try_fetch(&to_metadata));
    let v = call(&s, "redir");
    assert!(
        v[1].as_str()
            .unwrap()
            .contains("169.254.169.254 is not allowed"),
        "{v}"
    );
    let to_name = up.url(&format!("/to?u=http://localhost:{port}/hello"));
    tenant(&s, "redir", allow, &try_fetch(&to_name));
    let v = call(&s, "redir");
    assert!(v[1].as_str().unwrap().contains("non-public address"), "{v}");
    // Other schemes.
    tenant(
        &s,
        "scheme",
        json!({ "allow": ["*.example.com"] }),
        &try_fetch("file:///etc/passwd"),
    );
    let v = call(&s, "scheme");
    assert!(v[1].as_str().unwrap().contains("scheme file:"), "{v}");
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_subrequests_total{tenant=\"redir\",outcome=\"denied\"} 2"),
        "{m}"
    );
}

#[test]
fn subrequest_caps_stop_the_tenant_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = Upstream::start();
    let allow = format!("127.0.0.1:{}", up.port);
    let settings = json!({ "allow": [allow], "max_subrequests": 2, "max_response_bytes": 1000, "timeout_ms": 300 });
    let code = handler(&format!(
        r#"const out = {{}};
        const why = (p) => p.then((r) => ["ok", r.status], (e) => [e.name, e.message]);
        out.first = await why(fetch("{hello}"));
        out.big = await why(fetch("{big}"));
        out.third = await why(fetch("{hello}"));
        return out;"#,
        hello = up.url("/hello"),
        big = up.url("/big?n=5000"),
    ));
    tenant(&s, "capped", settings.clone(), &code);
    let v = call(&s, "capped");
    assert_eq!(v["first"], json!(["ok", 200]));
    assert_eq!(v["big"][0], "TypeError", "{v}");
    assert!(
        v["big"][1]
            .as_str()
            .unwrap()
            .contains("larger than 1000 bytes"),
        "{v}"
    );
    assert_eq!(v["third"][0], "TypeError");
    assert!(
        v["third"][1]
            .as_str()
            .unwrap()
            .contains("fetch.max_subrequests"),
        "{v}"
    );
    // The count is per invocation: the next request may fetch again.
    assert_eq!(call(&s, "capped")["first"], json!(["ok", 200]));
    // The timeout, and a signal that aborts first.
    let code = handler(&format!(
        r#"const why = (p) => p.then((r) => ["ok", r.status], (e) => [e.name, e.message]);
        const slow = await why(fetch("{slow}"));
        const aborted = await why(fetch("{slow}", {{ signal: AbortSignal.timeout(50) }}));
        const loop = await why(fetch("{lp}"));
        return {{ slow, aborted, loop }};"#,
        slow = up.url("/slow"),
        lp = up.url("/loop"),
    ));
    let settings = json!({ "allow": [format!("127.0.0.1:{}", up.port)], "timeout_ms": 300 });
    tenant(&s, "slow", settings, &code);
    let v = call(&s, "slow");
    assert_eq!(v["slow"][0], "TypeError", "{v}");
    assert!(
        v["slow"][1]
            .as_str()
            .unwrap()
            .contains("longer than 300 ms"),
        "{v}"
    );
    assert_eq!(v["aborted"][0], "TimeoutError", "{v}");
    assert!(
        v["loop"][1]
            .as_str()
            .unwrap()
            .contains("more than 10 redirects"),
        "{v}"
    );
}

#[test]
fn bad_fetch_settings_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let r = s.admin(
        "PUT",
        "/v1/tenants/bad",
        Some(json!({ "fetch": { "allow": ["http://x/"] } })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("fetch.allow"), "{}", r.body);
    let r = s.admin(
        "PUT",
        "/v1/tenants/bad",
        Some(json!({ "fetch": { "max_subrequests": 5000 } })),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("fetch.max_subrequests"), "{}", r.body);
}

#[test]
fn a_sandboxed_worker_process_fetches_through_its_supervisor() {
    // The worker's seccomp filter refuses socket(): the subrequest must
    // travel to the supervisor, which applies the tenant's policy itself.
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::util::config(dir.path());
    c.isolation = isola_server::config::Isolation::Process;
    c.workers = 1;
    let s = crate::util::start_with(c);
    let up = Upstream::start();
    let allow = json!({ "allow": [format!("127.0.0.1:{}", up.port)] });
    let code = handler(&format!(
        r#"const why = (p) => p.then(async (r) => ["ok", r.status, await r.text()], (e) => [e.name, e.message]);
        return {{ hello: await why(fetch("{hello}")),
                 echo: await why(fetch("{echo}", {{ method: "PUT", body: "up" }})),
                 denied: await why(fetch("http://127.0.0.1:1/")),
                 big: await why(fetch("{big}")) }};"#,
        hello = up.url("/hello"),
        echo = up.url("/echo"),
        big = up.url("/big?n=200000"),
    ));
    // A 100 KiB ArrayBuffer budget: the 200 KB body must not reach the tenant.
    let r = s.admin(
        "PUT",
        "/v1/tenants/proc",
        Some(json!({ "fetch": allow, "limits": { "external_memory_bytes": 102400 } })),
    );
    assert!(r.status < 300, "{}", r.body);
    assert!(s.deploy("proc", &code).status < 300);
    let v = call(&s, "proc");
    assert_eq!(v["hello"], json!(["ok", 200, "hi"]), "{v}");
    assert_eq!(v["echo"][0], "ok", "{v}");
    assert!(
        v["echo"][2]
            .as_str()
            .unwrap()
            .contains("\"method\":\"PUT\""),
        "{v}"
    );
    assert!(
        v["denied"][1]
            .as_str()
            .unwrap()
            .contains("not in the tenant's fetch.allow list"),
        "{v}"
    );
    assert!(
        v["big"][1]
            .as_str()
            .unwrap()
            .contains("larger than 102400 bytes"),
        "{v}"
    );
    let m = s.admin("GET", "/metrics", None).body;
    assert!(
        m.contains("isola_subrequests_total{tenant=\"proc\",outcome=\"ok\"} 2"),
        "{m}"
    );
}

/// A one-response HTTPS upstream on loopback with a certificate for
/// `localhost` from a fresh CA; returns its port and the CA's PEM.
fn tls_upstream() -> (u16, String) {
    use std::sync::Arc;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure",
                );
                let _ = tls.flush();
            });
        }
    });
    (port, ca.pem())
}

#[test]
fn https_upstreams_are_verified_against_the_configured_roots() {
    let (port, ca_pem) = tls_upstream();
    let code = handler(&format!(
        r#"return await fetch("https://localhost:{port}/").then(async (r) => ["ok", await r.text()], (e) => [e.name, e.message]);"#
    ));
    let settings = json!({ "allow": [format!("localhost:{port}")], "allow_private": true });
    // Trusted through fetch_ca_file: the body arrives.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let mut c = crate::util::config(dir.path());
    c.fetch_ca_file = Some(ca_file);
    let s = crate::util::start_with(c);
    tenant(&s, "tls", settings.clone(), &code);
    assert_eq!(call(&s, "tls"), json!(["ok", "secure"]));
    // Without the CA, the certificate is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = start(dir2.path());
    tenant(&s2, "tls", settings, &code);
    let v = call(&s2, "tls");
    assert_eq!(v[0], "TypeError", "{v}");
    assert!(v[1].as_str().unwrap().contains("TLS"), "{v}");
}

#[test]
fn subrequest_bodies_count_in_the_tenants_array_buffer_budget() {
    // 16 MiB budget, 5 MiB bodies: the tenant's buffer and two copies in
    // flight fit; a third copy does not, while the first two still wait.
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = Upstream::start();
    let r = s.admin(
        "PUT",
        "/v1/tenants/heavy",
        Some(
            json!({ "fetch": { "allow": [format!("127.0.0.1:{}", up.port)], "timeout_ms": 300 },
                     "limits": { "external_memory_bytes": 16 << 20 } }),
        ),
    );
    assert!(r.status < 300, "{}", r.body);
    let code = handler(&format!(
        r#"const body = new Uint8Array(5 << 20);
        const why = (p) => p.then((r) => ["ok", r.status], (e) => [e.name, e.message]);
        const all = [why(fetch("{slow}", {{ method: "POST", body }})), why(fetch("{slow}", {{ method: "POST", body }})),
                     why(fetch("{slow}", {{ method: "POST", body }}))];
        return await Promise.all(all);"#,
        slow = up.url("/slow"),
    ));
    assert!(s.deploy("heavy", &code).status < 300);
    let v = call(&s, "heavy");
    assert!(
        v[2][1]
            .as_str()
            .unwrap()
            .contains("does not fit the ArrayBuffer memory limit"),
        "{v}"
    );
    assert!(
        v[0][1].as_str().unwrap().contains("longer than 300 ms"),
        "{v}"
    );
}

#[test]
fn fetch_works_after_the_tenant_patched_promise_then() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let up = Upstream::start();
    let code = handler(&format!(
        r#"Promise.prototype.then = function () {{ throw new Error("patched then"); }};
        const r = await fetch("{hello}");
        return [r.status, await r.text()];"#,
        hello = up.url("/hello"),
    ));
    tenant(
        &s,
        "patched",
        json!({ "allow": [format!("127.0.0.1:{}", up.port)] }),
        &code,
    );
    assert_eq!(call(&s, "patched"), json!([200, "hi"]));
}

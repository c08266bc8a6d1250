//! Memory with numbers: the server process's RSS (in-process server,
//! `/proc/self/status`) grows by less than 100 MB across 50 header
//! amplification attempts and 50 rounds of resizable / growable buffer
//! attempts. Runs in a child process, so parallel tests do not blur the RSS.

use std::sync::Arc;
use std::time::Duration;

use super::{deploy_hostile, one_worker_server, serves_again, while_probing, NEIGHBOUR_BOUND};
use crate::util::{in_child, is_child, rss_bytes};

const MAX_GROWTH: u64 = 100 << 20;

const AMPLIFY: &str = "export default { fetch(req) {
    if (req.url.endsWith('/many')) { const h = new Headers(); for (let i = 0; i < 5000; i++) h.append('x-h' + i, 'v'); return new Response('x', { headers: h }); }
    if (req.url.endsWith('/huge')) { const h = new Headers(); for (let i = 0; i < 5; i++) h.append('x-big' + i, 'v'.repeat(2 << 20)); return new Response('x', { headers: h }); }
    return new Response('ok');
} };";

const RESIZE: &str = "export default { fetch(req) {
    if (req.url.endsWith('/ab')) { const o = function () {}; o.maxByteLength = 2 ** 30; const b = new ArrayBuffer(1, o); b.resize(2 ** 30); new Uint8Array(b).fill(7); }
    if (req.url.endsWith('/sab')) { const b = new SharedArrayBuffer(1, { maxByteLength: 2 ** 30 }); b.grow(2 ** 30); new Uint8Array(b).fill(7); }
    return new Response('ok');
} };";

#[test]
fn rss_stays_flat_across_header_amplification_and_resizable_buffer_attempts() {
    in_child(
        "hostile_tenants::memory::rss_stays_flat_across_header_amplification_and_resizable_buffer_attempts",
        Duration::from_secs(300),
    );
    if !is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(one_worker_server(dir.path()));
    deploy_hostile(&s, "amp", AMPLIFY);
    deploy_hostile(&s, "grow", RESIZE);
    let amplify = |s: &super::TestServer| {
        for path in ["/many", "/huge"] {
            let r = s.data("amp.localhost", path);
            assert_eq!(r.status, 500, "{path}: {}", r.body);
            assert!(r.body.contains("(the limit)"), "{path}: {}", r.body);
        }
    };
    let resize = |s: &super::TestServer| {
        let r = s.data("grow.localhost", "/ab");
        assert_eq!(r.status, 500, "{}", r.body);
        assert!(
            r.body
                .contains("resizable buffers (maxByteLength) are not available"),
            "{}",
            r.body
        );
        let r = s.data("grow.localhost", "/sab");
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (500, Some("handler_failed")),
            "{}",
            r.body
        );
        assert!(r.body.contains("growable SharedArrayBuffer"), "{}", r.body);
        // Forbidden quarantines the tenant with a doubling cool-down; a
        // redeploy after delete starts it afresh, so 50 rounds stay quick.
        assert_eq!(s.admin("DELETE", "/v1/tenants/grow", None).status, 204);
        deploy_hostile(s, "grow", RESIZE);
    };
    // One round first, so lazily created state is in the baseline.
    amplify(&s);
    resize(&s);
    let before = rss_bytes();
    let (_, probe) = while_probing(&s, || {
        for _ in 0..50 {
            amplify(&s);
        }
    });
    let after_headers = rss_bytes();
    for _ in 0..50 {
        resize(&s);
    }
    let after = rss_bytes();
    serves_again(&s, "grow.localhost", "ok", Duration::from_secs(5));
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "RSS: before {:.1} MiB, after 50 header attempts {:.1} MiB ({:+.1}), after 50 resizable rounds {:.1} MiB ({:+.1}); neighbour max {:?} over {} requests",
        mb(before),
        mb(after_headers),
        mb(after_headers) - mb(before),
        mb(after),
        mb(after) - mb(after_headers),
        probe.max(),
        probe.latencies.len()
    );
    assert!(
        after_headers.saturating_sub(before) < MAX_GROWTH,
        "headers: {before} -> {after_headers}"
    );
    assert!(
        after.saturating_sub(before) < MAX_GROWTH,
        "buffers: {before} -> {after}"
    );
    assert!(probe.failures.is_empty(), "{:?}", probe.failures);
    assert!(
        probe.max() < NEIGHBOUR_BOUND,
        "neighbour took {:?}",
        probe.max()
    );
}

//! The HTTP client behind tenants' `fetch()` ([`isola_core::Outbound`]).
//!
//! Runs on the server's tokio runtime: in the server process with thread
//! isolation, and in the supervisor with process isolation (sandboxed
//! workers have no network; they forward subrequests over their link).
//!
//! For every hop (the first request and each redirect) it checks the URL
//! against the tenant's [`FetchPolicy`], resolves the name itself, refuses
//! the addresses the policy does not allow (loopback, private, link-local...
//! unless explicitly allowed) and connects to a checked address, so a DNS
//! answer cannot steer it elsewhere between the check and the connection.
//! TLS is rustls with the Mozilla roots (`webpki-roots`) plus any extra CA
//! the operator configured. The body is collected up to the request's cap;
//! the whole subrequest is bounded by its timeout. HTTP/1.1, one connection
//! per hop (no pooling yet).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use isola_core::outbound::{FetchPolicy, Reservation, MAX_REDIRECTS};
use isola_core::{Outbound, OutboundCall, OutboundPoll, OutboundRequest, OutboundResponse};

use crate::metrics::Metrics;

/// Most response header lines accepted from an upstream.
pub const MAX_UPSTREAM_HEADERS: usize = 256;
/// Most bytes of response header names and values accepted from an upstream.
pub const MAX_UPSTREAM_HEADER_BYTES: usize = 128 << 10;

/// DNS lookups in flight at once, in all (each holds a blocking thread
/// until the system resolver answers, whatever happens to its subrequest).
pub const MAX_LOOKUPS: usize = 64;
/// DNS lookups in flight at once for one tenant.
pub const MAX_LOOKUPS_PER_TENANT: usize = 8;

/// Lookups in flight, per tenant.
static LOOKUPS: Mutex<Option<std::collections::HashMap<String, usize>>> = Mutex::new(None);

/// One lookup's place in [`LOOKUPS`], given back when the system resolver
/// returns (not when the subrequest is abandoned: the thread is still busy).
struct LookupSlot(String);

impl LookupSlot {
    fn take(tenant: &str) -> Result<LookupSlot, String> {
        let mut g = LOOKUPS.lock().unwrap_or_else(|p| p.into_inner());
        let m = g.get_or_insert_with(Default::default);
        let all: usize = m.values().sum();
        let mine = m.get(tenant).copied().unwrap_or(0);
        if all >= MAX_LOOKUPS || mine >= MAX_LOOKUPS_PER_TENANT {
            return Err(format!(
                "fetch: too many DNS lookups in flight ({mine} of this tenant's {MAX_LOOKUPS_PER_TENANT}, {all} of {MAX_LOOKUPS} in all)"
            ));
        }
        *m.entry(tenant.to_string()).or_default() += 1;
        Ok(LookupSlot(tenant.to_string()))
    }
}

impl Drop for LookupSlot {
    fn drop(&mut self) {
        let mut g = LOOKUPS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = g.as_mut() {
            if let Some(n) = m.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.0);
                }
            }
        }
    }
}

/// Resolves `host` on a blocking thread that keeps its [`LookupSlot`] until
/// the resolver returns.
async fn lookup(tenant: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let slot = LookupSlot::take(tenant)?;
    let name = host.to_string();
    let task = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        (name.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.take(16).collect::<Vec<_>>())
    });
    match task.await {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(format!("fetch: could not resolve {host}: {e}")),
        Err(_) => Err(format!("fetch: could not resolve {host}")),
    }
}

/// Headers the client sets itself; a tenant's values for them are dropped.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// The client: a runtime handle, the TLS configuration and the metrics.
#[derive(Clone)]
pub struct Client {
    rt: tokio::runtime::Handle,
    tls: Arc<rustls::ClientConfig>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A problem with the client's TLS configuration.
#[derive(Debug, thiserror::Error)]
#[error("fetch TLS roots: {0}")]
pub struct TlsConfigError(String);

impl Client {
    /// A client spawning on `rt`, trusting the Mozilla roots and the PEM
    /// certificates in `extra_ca` (if any).
    pub fn new(
        rt: tokio::runtime::Handle,
        extra_ca: Option<&std::path::Path>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Client, TlsConfigError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?;
            let mut n = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?;
                n += 1;
            }
            if n == 0 {
                return Err(TlsConfigError(format!(
                    "{}: no PEM certificate in it",
                    path.display()
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            rt,
            tls: Arc::new(tls),
            metrics,
        })
    }

    /// Runs one subrequest to its end (for the supervisor of worker processes).
    pub async fn run(&self, req: OutboundRequest) -> Result<OutboundResponse, String> {
        let tenant = req.tenant.clone();
        let timeout = req.timeout;
        let result = match tokio::time::timeout(timeout, run(req, self.tls.clone())).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "fetch: the subrequest took longer than {} ms (fetch.timeout_ms)",
                timeout.as_millis()
            )),
        };
        if let Some(m) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) if e.contains("is not allowed") => "denied",
                Err(e) if e.contains("took longer") => "timeout",
                Err(_) => "error",
            };
            m.subrequest(&tenant, outcome);
        }
        result
    }
}

/// A subrequest spawned on the runtime; dropping it aborts the task.
struct Call {
    slot: Arc<Mutex<Option<Result<OutboundResponse, String>>>>,
    task: tokio::task::AbortHandle,
}

impl OutboundCall for Call {
    fn poll(&mut self) -> OutboundPoll {
        match self.slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(r) => OutboundPoll::Done(r),
            None => OutboundPoll::Pending,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Outbound for Client {
    fn start(&self, req: OutboundRequest) -> Box<dyn OutboundCall> {
        let slot: Arc<Mutex<Option<_>>> = Arc::default();
        let (out, client) = (slot.clone(), self.clone());
        let task = self.rt.spawn(async move {
            let r = client.run(req).await;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        Box::new(Call {
            slot,
            task: task.abort_handle(),
        })
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The addresses of `url`'s host that `policy` allows, or why none is.
async fn resolve(
    tenant: &str,
    policy: &FetchPolicy,
    url: &url::Url,
) -> Result<Vec<SocketAddr>, String> {
    let matched = policy.allows_url(url).map_err(|e| e.to_string())?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url.host_str().unwrap_or_default().to_string();
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(a)) => vec![SocketAddr::new(IpAddr::V4(a), port)],
        Some(url::Host::Ipv6(a)) => vec![SocketAddr::new(IpAddr::V6(a), port)],
        Some(url::Host::Domain(d)) => lookup(tenant, d, port).await?,
        None => return Err("fetch: the URL has no host".into()),
    };
    let mut first_denial = None;
    let mut ok = Vec::new();
    for a in addrs {
        match policy.allows_ip(&host, matched, a.ip()) {
            Ok(()) => ok.push(a),
            Err(d) => {
                first_denial.get_or_insert(d);
            }
        }
    }
    match (ok.is_empty(), first_denial) {
        (false, _) => Ok(ok),
        (true, Some(d)) => Err(d.to_string()),
        (true, None) => Err(format!("fetch: {host} has no address")),
    }
}

async fn connect(
    url: &url::Url,
    addrs: &[SocketAddr],
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Box<dyn Io>, String> {
    let mut last = String::from("no address");
    for a in addrs {
        match tokio::net::TcpStream::connect(a).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                if url.scheme() != "https" {
                    return Ok(Box::new(tcp));
                }
                let name = match url.host() {
                    Some(url::Host::Domain(d)) => {
                        rustls::pki_types::ServerName::try_from(d.to_string())
                            .map_err(|e| format!("fetch: {d}: {e}"))?
                    }
                    _ => rustls::pki_types::ServerName::IpAddress(a.ip().into()),
                };
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        format!("fetch: TLS with {}: {e}", url.host_str().unwrap_or(""))
                    })?;
                return Ok(Box::new(tls));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "fetch: could not connect to {}: {last}",
        url.host_str().unwrap_or("")
    ))
}

async fn run(
    req: OutboundRequest,
    tls: Arc<rustls::ClientConfig>,
) -> Result<OutboundResponse, String> {
    let OutboundRequest {
        tenant,
        method,
        url,
        headers,
        body,
        follow_redirects,
        policy,
        max_body_bytes,
        budget,
        // Held (and the request body counted) until the subrequest ends.
        body_charge: _body_charge,
        ..
    } = req;
    let mut url = url::Url::parse(&url).map_err(|e| format!("fetch: invalid URL: {e}"))?;
    let mut method = method;
    let mut body = Bytes::from(body);
    let mut headers = headers;
    for hop in 0..=MAX_REDIRECTS {
        let addrs = resolve(&tenant, &policy, &url).await?;
        let io = connect(&url, &addrs, &tls).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("fetch: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host_header = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut builder = hyper::Request::builder()
            .method(method.as_str())
            .uri(target)
            .header(hyper::header::HOST, host_header);
        for (n, v) in &headers {
            if HOP_BY_HOP.contains(&n.to_ascii_lowercase().as_str()) {
                continue;
            }
            let (Ok(n), Ok(v)) = (
                HeaderName::try_from(n.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) else {
                return Err(format!("fetch: the header {n} is not valid"));
            };
            builder = builder.header(n, v);
        }
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| format!("fetch: {e}"))?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| format!("fetch: {} failed: {e}", url.host_str().unwrap_or("")))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        if follow_redirects && matches!(status, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = location {
                if hop == MAX_REDIRECTS {
                    return Err(format!("fetch: more than {MAX_REDIRECTS} redirects"));
                }
                let next = url
                    .join(&loc)
                    .map_err(|e| format!("fetch: bad redirect location \"{loc}\": {e}"))?;
                // 303, and 301/302 after a POST, become a GET without a body.
                if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
                    if method != "HEAD" {
                        method = "GET".into();
                    }
                    body = Bytes::new();
                    headers.retain(|(n, _)| !n.to_ascii_lowercase().starts_with("content-"));
                }
                // Credentials do not follow a redirect to another origin.
                if next.origin() != url.origin() {
                    headers.retain(|(n, _)| {
                        let n = n.to_ascii_lowercase();
                        n != "authorization" && n != "cookie"
                    });
                }
                url = next;
                continue;
            }
        }
        if !(200..=599).contains(&status) {
            return Err(format!("fetch: the upstream answered status {status}"));
        }
        let status_text = resp
            .status()
            .canonical_reason()
            .unwrap_or_default()
            .to_string();
        let mut out_headers = Vec::new();
        let mut header_bytes = 0usize;
        for (n, v) in resp.headers() {
            header_bytes += n.as_str().len() + v.len();
            if out_headers.len() >= MAX_UPSTREAM_HEADERS || header_bytes > MAX_UPSTREAM_HEADER_BYTES
            {
                return Err(format!(
                    "fetch: the response headers exceed {MAX_UPSTREAM_HEADERS} lines or {MAX_UPSTREAM_HEADER_BYTES} bytes"
                ));
            }
            // Header values are bytes: as Latin-1, each byte one character
            // (what `Headers` accepts as a ByteString).
            out_headers.push((
                n.as_str().to_string(),
                v.as_bytes().iter().map(|&b| char::from(b)).collect(),
            ));
        }
        let mut incoming = resp.into_body();
        let mut data = Vec::new();
        // The bytes collected count in the tenant's budget as they arrive.
        let mut charge = Reservation::new(budget.clone());
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| format!("fetch: reading the response body: {e}"))?;
            if let Some(chunk) = frame.data_ref() {
                if data.len() + chunk.len() > max_body_bytes {
                    return Err(format!(
                        "fetch: the response body is larger than {max_body_bytes} bytes (fetch.max_response_bytes, or the ArrayBuffer memory limit)"
                    ));
                }
                if !charge.grow(chunk.len()) {
                    return Err(format!(
                        "fetch: the response body ({} bytes so far) does not fit the tenant's ArrayBuffer memory limit (the bodies of subrequests in flight count)",
                        data.len() + chunk.len()
                    ));
                }
                data.extend_from_slice(chunk);
            }
        }
        return Ok(OutboundResponse {
            status,
            status_text,
            url: url.to_string(),
            redirected: hop > 0,
            headers: out_headers,
            body: data,
            body_charge: Some(charge),
        });
    }
    Err(format!("fetch: more than {MAX_REDIRECTS} redirects"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_lookups_are_capped_per_tenant_until_the_resolver_returns() {
        let mine: Vec<LookupSlot> = (0..MAX_LOOKUPS_PER_TENANT)
            .map(|_| LookupSlot::take("dns-a").unwrap())
            .collect();
        let e = LookupSlot::take("dns-a").err().unwrap();
        assert!(e.contains("too many DNS lookups"), "{e}");
        // Another tenant still gets a slot.
        drop(LookupSlot::take("dns-b").unwrap());
        drop(mine);
        assert!(LookupSlot::take("dns-a").is_ok());
    }
}

//! The data plane: tenant traffic in, handler responses out.
//!
//! Routing: `Host: {tenant}.{base_domain}`, a custom route (a host name in
//! the tenant's settings), or the path prefix `/t/{tenant}/...` (stripped
//! before the handler sees the URL).
//!
//! Order of work per request: route; check the declared body size; read a
//! small body whole (under the body read timeout); take a slot of the
//! tenant ([`crate::admission`], waiting in its queue if need be); run the
//! handler on its worker; frame its response ([`crate::framing`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response};
use isola_core::{BodyPoll, BodySource, HttpRequest, Output};
use tokio::sync::mpsc;

use crate::admission::AdmissionError;
use crate::config::validate_tenant_id;
use crate::errors::ApiError;
use crate::framing;
use crate::metrics::Observation;
use crate::pool::DispatchError;
use crate::AppState;

/// Where a request goes: tenant id and the URL path (with query) the handler sees.
fn route(state: &AppState, host: &str, path_and_query: &str) -> Option<(String, String)> {
    let host = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    if let Some(t) = state.registry.route(&host) {
        return Some((t, path_and_query.to_string()));
    }
    let suffix = format!(".{}", state.config.base_domain);
    if let Some(t) = host.strip_suffix(&suffix) {
        if validate_tenant_id(t).is_ok() {
            return Some((t.to_string(), path_and_query.to_string()));
        }
    }
    let rest = path_and_query.strip_prefix("/t/")?;
    let (t, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    validate_tenant_id(t).ok()?;
    let tail = if tail.is_empty() || tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    Some((t.to_string(), tail))
}

/// Response bodies: whole (`Full`) or streamed from a worker (`ChannelBody`).
pub type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

/// A server-made response (errors): status and headers are known-good.
fn respond(status: u16, headers: &[(&str, String)], body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// A tenant's response, framed by the server ([`framing::tenant_head`]).
fn tenant_response(
    status: u16,
    headers: &[(String, String)],
    body: Body,
    request_id: &str,
) -> Result<Response<Body>, framing::FramingError> {
    let (status, mut map) = framing::tenant_head(status, headers)?;
    if let Ok(v) = HeaderValue::from_str(request_id) {
        map.append(HeaderName::from_static("x-request-id"), v);
    }
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = map;
    Ok(r)
}

/// A response body that holds `G` (a queue slot, a connection's in-flight
/// mark) until hyper is done with it: sent whole, or dropped.
struct Guarded<G> {
    inner: Body,
    _guard: G,
}

impl<G: Unpin> hyper::body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, holding `guard` until the response is done.
pub(crate) fn guard_body<G: Unpin + Send + Sync + 'static>(body: Body, guard: G) -> Body {
    Guarded {
        inner: body,
        _guard: guard,
    }
    .boxed()
}

/// A response body the worker streams in: each chunk as the handler's
/// `ReadableStream` produces it; a worker-side failure aborts the response.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A request body the handler reads while it arrives, fed by a task that
/// reads the connection (bounded channel: the client is slowed down when the
/// handler reads slowly).
struct ChannelSource {
    rx: mpsc::Receiver<Result<Bytes, String>>,
}

impl BodySource for ChannelSource {
    fn poll(&mut self) -> BodyPoll {
        match self.rx.try_recv() {
            Ok(Ok(b)) => BodyPoll::Chunk(b.to_vec()),
            Ok(Err(e)) => BodyPoll::Error(e),
            Err(mpsc::error::TryRecvError::Empty) => BodyPoll::Pending,
            Err(mpsc::error::TryRecvError::Disconnected) => BodyPoll::End,
        }
    }
}

/// Longest a request for a suspended tenant is held before its 503.
const SUSPENDED_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// Request bodies up to this size (declared by Content-Length) are read
/// whole before the handler starts; larger or chunked ones are streamed.
const BUFFERED_BODY_MAX: u64 = 64 << 10;

fn stream_request_body(mut body: Incoming, max: u64, gap: Duration) -> ChannelSource {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut seen = 0u64;
        loop {
            let frame = match tokio::time::timeout(gap, body.frame()).await {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(_) => {
                    let _ = tx
                        .send(Err(format!(
                            "request body: no data for {} ms",
                            gap.as_millis()
                        )))
                        .await;
                    return;
                }
            };
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        seen += data.len() as u64;
                        if seen > max {
                            let _ = tx
                                .send(Err(format!("request body larger than {max} bytes")))
                                .await;
                            return;
                        }
                        if tx.send(Ok(data)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("reading the request body: {e}"))).await;
                    return;
                }
            }
        }
    });
    ChannelSource { rx }
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-request-id", request_id.to_string()),
    ];
    if let Some(s) = e.retry_after() {
        headers.push(("retry-after", s.to_string()));
    }
    if matches!(e, ApiError::RequestTimeout { .. }) {
        // The rest of the body is not read: this connection cannot carry another request.
        headers.push(("connection", "close".to_string()));
    }
    respond(
        e.status(),
        &headers,
        full(e.body().to_string().into_bytes()),
    )
}

/// Serves one request.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let t0 = Instant::now();
    let request_id = state.request_id();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("")
        .to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let Some((tenant, path)) = route(&state, &host, &pq) else {
        state.metrics.unknown_tenant();
        return Ok(error_response(&ApiError::UnknownTenant(host), &request_id));
    };
    let (result, info) = serve(&state, &tenant, &host, &path, req, &request_id).await;
    let wall = t0.elapsed();
    let (resp, error_kind, termination) = match result {
        Ok(resp) => (resp, None, None),
        Err(e) => {
            match &e {
                ApiError::UnknownTenant(_) => {
                    state.metrics.unknown_tenant();
                    return Ok(error_response(&e, &request_id));
                }
                ApiError::Overloaded => state.metrics.overloaded(),
                ApiError::Exception { error, .. } => {
                    tracing::warn!(tenant = %tenant, request_id = %request_id, "handler threw: {error}");
                }
                ApiError::InvalidResponse { error, .. } => {
                    tracing::warn!(tenant = %tenant, request_id = %request_id, "refused the handler's response: {error}");
                }
                _ => {}
            }
            let kind = match &e {
                ApiError::Limit(l) => l.kind.name(),
                ApiError::Exception { .. } => "exception",
                ApiError::Overloaded => "overloaded",
                ApiError::Suspended { .. } => "suspended",
                ApiError::WorkerCrashed { .. } => "worker_crashed",
                ApiError::Quarantined { .. } => "quarantined",
                ApiError::BodyTooLarge { .. } => "body_too_large",
                ApiError::Queue(AdmissionError::QueueFull { .. }) => "queue_full",
                ApiError::Queue(AdmissionError::QueueTimeout { .. }) => "queue_timeout",
                ApiError::RequestTimeout { .. } => "request_timeout",
                ApiError::InvalidResponse { .. } => "invalid_response",
                ApiError::NoCode(_) => "not_deployed",
                _ => "handler_failed",
            };
            let termination = match &e {
                ApiError::Limit(l) if l.kind != isola_core::LimitKind::Concurrency => {
                    Some(l.kind.name())
                }
                _ => None,
            };
            (error_response(&e, &request_id), Some(kind), termination)
        }
    };
    let status = resp.status().as_u16();
    state.metrics.observe(Observation {
        tenant: &tenant,
        status,
        error: error_kind,
        termination,
        cpu: info.cpu,
        wall,
        cold: info.cold,
        prewarmed: info.prewarmed,
        cache: &info.cache,
        heap_bytes: info.heap,
    });
    tracing::info!(
        tenant = %tenant,
        status,
        cpu_ms = info.cpu.as_secs_f64() * 1000.0,
        wall_ms = wall.as_secs_f64() * 1000.0,
        cold = info.cold,
        request_id = %request_id,
        "request"
    );
    Ok(resp)
}

/// What the worker said about a request, for metrics and logs.
#[derive(Default)]
struct ReplyInfo {
    cpu: std::time::Duration,
    cold: bool,
    prewarmed: bool,
    cache: Vec<isola_core::CacheEvent>,
    heap: u64,
}

async fn serve(
    state: &AppState,
    tenant: &str,
    host: &str,
    path: &str,
    req: Request<Incoming>,
    request_id: &str,
) -> (Result<Response<Body>, ApiError>, ReplyInfo) {
    let none = ReplyInfo::default;
    let dep = match state.registry.current(tenant) {
        Ok(d) => d,
        Err(e) => return (Err(e), none()),
    };
    let max_body = dep.settings.max_body_bytes;
    let expose = dep.settings.expose_errors;
    let body_timeout = state.config.body_read_timeout;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return (Err(ApiError::BodyTooLarge { limit: max_body }), none());
    }
    let small = declared.is_some_and(|n| n <= BUFFERED_BODY_MAX);
    let empty = declared == Some(0)
        || (declared.is_none() && matches!(parts.method, hyper::Method::GET | hyper::Method::HEAD));
    // A small body is read whole before the request takes a slot of the
    // tenant, so a slow upload holds a connection, never the tenant.
    let (body, pending_stream) = if empty {
        (Vec::new(), None)
    } else if small {
        let read = Limited::new(body, max_body as usize).collect();
        match tokio::time::timeout(body_timeout, read).await {
            Ok(Ok(b)) => (b.to_bytes().to_vec(), None),
            Ok(Err(e)) => {
                let err = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError::BodyTooLarge { limit: max_body }
                } else {
                    ApiError::BadRequest(format!("reading the request body: {e}"))
                };
                return (Err(err), none());
            }
            Err(_) => {
                return (
                    Err(ApiError::RequestTimeout {
                        timeout: body_timeout,
                    }),
                    none(),
                )
            }
        }
    } else {
        (Vec::new(), Some(body))
    };
    let admitted = match state.admission.admit(&dep).await {
        Ok(a) => a,
        Err(e) => return (Err(ApiError::Queue(e)), none()),
    };
    let (permit, slot) = (admitted.permit, admitted.slot);
    let streamed: Option<Box<dyn BodySource>> = pending_stream
        .map(|b| Box::new(stream_request_body(b, max_body, body_timeout)) as Box<dyn BodySource>);
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let request = HttpRequest {
        method: parts.method.as_str().to_string(),
        url: format!("http://{host}{path}"),
        headers,
        body,
    };
    let reply = match state.pool.invoke(dep, request, streamed, permit).await {
        Ok(r) => r,
        Err(DispatchError::Overloaded) => return (Err(ApiError::Overloaded), none()),
        Err(DispatchError::Suspended(wait)) => {
            // Tarpit: answer when the cool-down ends (at most SUSPENDED_HOLD
            // later), so a client hammering a suspended tenant costs the
            // server a parked future, not a stream of 503s competing with
            // well-behaved tenants' traffic. The parked request gives its
            // tenant slot back first: it must not fill the admission queue.
            drop(slot);
            tokio::time::sleep(wait.min(SUSPENDED_HOLD)).await;
            let e = ApiError::Suspended {
                tenant: tenant.to_string(),
                retry_after: wait
                    .saturating_sub(SUSPENDED_HOLD)
                    .as_secs_f64()
                    .ceil()
                    .max(1.0) as u64,
            };
            return (Err(e), none());
        }
        Err(DispatchError::WorkerCrashed { cause }) => {
            return (
                Err(ApiError::WorkerCrashed {
                    request_id: request_id.to_string(),
                    cause,
                }),
                none(),
            )
        }
        Err(DispatchError::Quarantined {
            reason,
            retry_after,
        }) => {
            return (
                Err(ApiError::Quarantined {
                    tenant: tenant.to_string(),
                    reason,
                    retry_after: retry_after.as_secs().max(1),
                }),
                none(),
            )
        }
        Err(DispatchError::Closed) => {
            return (
                Err(ApiError::Internal("the server is shutting down".into())),
                none(),
            )
        }
    };
    let info = ReplyInfo {
        cpu: reply.result.as_ref().map(|i| i.cpu).unwrap_or_default(),
        cold: reply.cold,
        prewarmed: reply.prewarmed,
        cache: reply.cache,
        heap: reply.heap_bytes,
    };
    let stream = reply.body;
    let result = match reply.result {
        Ok(invoked) => match invoked.output {
            Output::Response(r) => {
                let body = match stream {
                    Some(rx) if r.streamed => ChannelBody { rx }.boxed(),
                    _ => full(r.body),
                };
                // The tenant's queue slot is held until the response is sent.
                let body = guard_body(body, slot);
                tenant_response(r.status, &r.headers, body, request_id).map_err(|error| {
                    ApiError::InvalidResponse {
                        request_id: request_id.to_string(),
                        error,
                    }
                })
            }
            other => Err(ApiError::HandlerFailed {
                request_id: request_id.to_string(),
                message: format!("the handler returned {other:?} instead of a Response"),
            }),
        },
        Err(e) => Err(ApiError::from_invocation(e, request_id, expose)),
    };
    (result, info)
}

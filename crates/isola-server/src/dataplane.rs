//! The data plane: tenant traffic in, handler responses out.
//!
//! Routing: `Host: {tenant}.{base_domain}`, a custom route (a host name in
//! the tenant's settings), or the path prefix `/t/{tenant}/...` (stripped
//! before the handler sees the URL).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use isola_core::{Error, HttpRequest, Output};

use crate::config::validate_tenant_id;
use crate::errors::ApiError;
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

fn respond(status: u16, headers: &[(String, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"handler returned an invalid header",
        )));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-request-id".to_string(), request_id.to_string()),
    ];
    if let Some(s) = e.retry_after() {
        headers.push(("retry-after".to_string(), s.to_string()));
    }
    respond(e.status(), &headers, e.body().to_string().into_bytes())
}

/// Serves one request.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
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
                _ => {}
            }
            let kind = match &e {
                ApiError::Limit(l) => l.kind.name(),
                ApiError::Exception { .. } => "exception",
                ApiError::Overloaded => "overloaded",
                ApiError::Suspended { .. } => "suspended",
                ApiError::BodyTooLarge { .. } => "body_too_large",
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
) -> (Result<Response<Full<Bytes>>, ApiError>, ReplyInfo) {
    let none = ReplyInfo::default;
    let dep = match state.registry.current(tenant) {
        Ok(d) => d,
        Err(e) => return (Err(e), none()),
    };
    let permit = match dep.gate.try_acquire() {
        Ok(p) => p,
        Err(Error::Limit(l)) => return (Err(ApiError::Limit(l)), none()),
        Err(other) => return (Err(ApiError::Internal(other.to_string())), none()),
    };
    let max_body = dep.settings.max_body_bytes;
    let expose = dep.settings.expose_errors;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return (Err(ApiError::BodyTooLarge { limit: max_body }), none());
    }
    let body = match Limited::new(body, max_body as usize).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return (Err(ApiError::BodyTooLarge { limit: max_body }), none())
        }
        Err(e) => {
            return (
                Err(ApiError::BadRequest(format!(
                    "reading the request body: {e}"
                ))),
                none(),
            )
        }
    };
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
    let reply = match state.pool.invoke(dep, request, permit).await {
        Ok(r) => r,
        Err(DispatchError::Overloaded) => return (Err(ApiError::Overloaded), none()),
        Err(DispatchError::Suspended(wait)) => {
            let e = ApiError::Suspended {
                tenant: tenant.to_string(),
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
            return (Err(e), none());
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
    let result = match reply.result {
        Ok(invoked) => match invoked.output {
            Output::Response(r) => {
                let mut headers = r.headers;
                headers.push(("x-request-id".into(), request_id.to_string()));
                Ok(respond(r.status, &headers, r.body))
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

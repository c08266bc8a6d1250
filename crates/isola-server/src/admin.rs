//! The admin API (its own listener, bearer-token auth, JSON) and `/metrics`.
//!
//! Routes are described by the OpenAPI document served at `/v1/openapi.json`.
//! Only `/healthz` and `/v1/openapi.json` are open; everything else, including
//! `/metrics`, needs the bearer token. With `metrics_listen` set,
//! [`metrics_router`] serves `/metrics` without auth on that listener.
//! Handlers parse and answer; deploy, rollback, settings and delete are
//! [`crate::controlplane`]'s, under the tenant's lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use isola_core::{HttpRequest, TenantCode};
use serde_json::json;

use crate::config::{validate_tenant_id, TenantSettings};
use crate::controlplane;
use crate::errors::ApiError;
use crate::AppState;

/// Largest admin request body (code uploads): 64 MiB.
const MAX_ADMIN_BODY: usize = 64 << 20;

/// Builds the admin router.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/tenants", get(list_tenants))
        .route(
            "/v1/tenants/{id}",
            put(put_tenant).get(get_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{id}/code", put(put_code))
        .route("/v1/tenants/{id}/rollback", post(rollback))
        .route("/v1/tenants/{id}/logs", get(logs))
        .route("/v1/workers", get(workers))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(api)
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .with_state(state)
}

/// `/metrics` alone, without auth, for the operator's `metrics_listen` address.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), state.admin_token.as_bytes()) {
        // The token is never logged, right or wrong.
        tracing::warn!(path = %req.uri().path(), "admin request with a missing or wrong token");
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

/// Runs a store write off the async threads (SQLite blocks).
fn check_id(id: &str) -> Result<(), ApiError> {
    validate_tenant_id(id).map_err(ApiError::BadRequest)
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    summary = "This document (no auth)", responses((status = 200, description = "OpenAPI document")))]
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
}

#[utoipa::path(get, path = "/healthz", tag = "meta", summary = "Liveness (no auth)",
    responses((status = 200, description = "`ok`", content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/metrics", tag = "meta", security(("bearer" = [])),
    summary = "Prometheus metrics (bearer token; without auth only on the --metrics-listen address)",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody)))]
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let text = state.metrics.render(&crate::metrics::ProcessGauges {
        tenants: state.registry.len(),
        worker_requests: state.pool.requests(),
        rss_bytes: crate::metrics::rss_bytes(),
        code_cache: state.engine.code_cache().and_then(|c| c.stats().ok()),
    });
    let text = text + &worker_metrics(&state.pool.describe());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Where tenants run: worker threads or processes, crashes, quarantines.
#[utoipa::path(get, path = "/v1/workers", tag = "workers", security(("bearer" = [])),
    summary = "Where tenants run: the isolation mode; in thread mode each worker thread (role: shared, probation or penalty; takeovers); in process mode each worker process (pid, tenants, sandbox, crashes, restarts, sandbox violations) and the quarantined tenants",
    responses((status = 200, description = "Workers", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody)))]
async fn workers(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(state.pool.describe())
}

/// Worker metrics from the dispatcher's description: takeovers of worker
/// threads; in process mode, the worker processes and quarantines.
fn worker_metrics(d: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(threads) = d["threads"].as_array() {
        family(
            &mut out,
            ("isola_worker_takeovers_total", "counter"),
            "Worker threads replaced because one turn held them past the turn limit.",
            threads.iter().map(|w| {
                let name = w["name"].as_str().unwrap_or("").to_string();
                (("worker", name), w["takeovers"].as_u64().unwrap_or(0))
            }),
        );
    }
    let Some(workers) = d["workers"].as_array() else {
        return out;
    };
    let name = |w: &serde_json::Value| w["name"].as_str().unwrap_or("").to_string();
    family(
        &mut out,
        ("isola_worker_process_crashes_total", "counter"),
        "Worker process deaths (crash, kill, ceiling).",
        workers.iter().map(|w| {
            let n = w["crashes"].as_u64().unwrap_or(0);
            (("worker", name(w)), n)
        }),
    );
    family(
        &mut out,
        ("isola_worker_process_up", "gauge"),
        "Whether the worker process runs.",
        workers.iter().map(|w| {
            let up = u64::from(w["running"].as_bool().unwrap_or(false));
            (("worker", name(w)), up)
        }),
    );
    let quarantined = d["quarantined"].as_array().into_iter().flatten();
    family(
        &mut out,
        ("isola_tenant_quarantined", "gauge"),
        "Tenants refused for crashing their worker.",
        quarantined.map(|q| {
            (
                ("tenant", q["tenant"].as_str().unwrap_or("").to_string()),
                1,
            )
        }),
    );
    out
}

/// One metric family in Prometheus text format: `(name, type)`, help, and
/// one `((label, value), sample)` per series. Label values are tenant ids and
/// worker names (`[a-z0-9-]`), which need no escaping.
fn family(
    out: &mut String,
    (name, kind): (&str, &str),
    help: &str,
    rows: impl Iterator<Item = ((&'static str, String), u64)>,
) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for ((label, value), sample) in rows {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {sample}");
    }
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), summary = "List tenants",
    responses((status = 200, description = "`{\"tenants\": [{id, version, routes}]}`", body = Object), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody)))]
async fn list_tenants(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenants = state.store.list()?;
    let items: Vec<_> = tenants
        .iter()
        .map(|t| json!({"id": t.id, "version": t.current, "routes": t.settings.routes}))
        .collect();
    Ok(Json(json!({ "tenants": items })))
}

#[utoipa::path(put, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    summary = "Create or update a tenant's settings", params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'")),
    request_body = crate::config::TenantSettings,
    responses((status = 200, description = "`{id, settings}` (secrets redacted)", body = Object), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 409, description = "A route another tenant owns; `owner` names it", body = crate::openapi::ErrorBody), (status = 422, description = "Invalid code or settings; `field` names the JSON path", body = crate::openapi::ErrorBody)))]
async fn put_tenant(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id(&id)?;
    let mut settings: TenantSettings = if body.is_empty() {
        TenantSettings::default()
    } else {
        parse_settings(&body)?
    };
    settings.validate()?;
    let settings = controlplane::put_settings(&state, &id, settings).await?;
    Ok(Json(json!({"id": id, "settings": settings.redacted()})))
}

/// Parses settings. Malformed JSON is 400; well-formed JSON with an unknown
/// field or a value of the wrong type is 422 naming the field's JSON path.
fn parse_settings(body: &[u8]) -> Result<TenantSettings, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let settings: TenantSettings = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = format!("tenant settings: {}", e.inner());
        match e.inner().classify() {
            serde_json::error::Category::Data => ApiError::InvalidField {
                field: e.path().to_string(),
                message,
            },
            _ => ApiError::BadRequest(message),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("tenant settings: {e}")))?;
    Ok(settings)
}

/// A route may not be another tenant's, nor a `{tenant}.{base_domain}` name
/// other than the tenant's own. Conflicts name the owner (operator-only API).
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    summary = "A tenant: settings (secrets redacted), versions, usage, isolation", params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'")),
    responses((status = 200, description = "The tenant", body = Object), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 404, description = "Unknown tenant or version", body = crate::openapi::ErrorBody)))]
async fn get_tenant(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id(&id)?;
    let t = state
        .store
        .get(&id)?
        .ok_or_else(|| ApiError::UnknownTenant(id.clone()))?;
    let versions = state.store.versions(&id)?;
    Ok(Json(json!({
        "id": t.id,
        "settings": t.settings.redacted(),
        "version": t.current,
        "versions": versions,
        "usage": state.metrics.tenant(&id),
        "isolated": state.pool.is_quarantined(&id),
    })))
}

#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    summary = "Delete a tenant and its versions", params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'")),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 404, description = "Unknown tenant or version", body = crate::openapi::ErrorBody)))]
async fn delete_tenant(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    controlplane::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The JSON form of a code upload.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    /// Entry file name (default `index.js`, or the only file).
    entry: Option<String>,
    /// File name to source.
    files: BTreeMap<String, String>,
    /// A request to run against the new version before switching (must not answer 5xx).
    #[schema(value_type = Option<Object>)]
    smoke: Option<HttpRequest>,
}

#[derive(serde::Deserialize)]
struct CodeQuery {
    /// With a raw (non-JSON) upload: the file's name (default `index.js`).
    name: Option<String>,
}

#[utoipa::path(put, path = "/v1/tenants/{id}/code", tag = "tenants", security(("bearer" = [])),
    summary = "Upload a module (raw JavaScript, `?name=` for its file name) or a multi-file bundle (JSON); validated (compile, load, optional smoke request) in a scratch isolate before the atomic switch",
    params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'"), ("name" = Option<String>, Query, description = "Raw upload: the file name (default index.js)")),
    request_body(content((Upload = "application/json"), (String = "application/javascript"))),
    responses((status = 201, description = "Deployed", body = crate::openapi::VersionBody), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 422, description = "Invalid code or settings; `field` names the JSON path", body = crate::openapi::ErrorBody)))]
async fn put_code(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<CodeQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    check_id(&id)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (code, smoke) = if is_json {
        let up: Upload = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("code upload: {e}")))?;
        let entry = match (up.entry, up.files.len()) {
            (Some(e), _) => e,
            (None, 1) => up.files.keys().next().cloned().unwrap_or_default(),
            (None, _) => "index.js".to_string(),
        };
        (
            TenantCode::bundle(entry, up.files).map_err(|e| ApiError::Invalid(e.to_string()))?,
            up.smoke,
        )
    } else {
        let source = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::BadRequest("the code must be UTF-8 text".into()))?;
        (
            TenantCode::single(q.name.unwrap_or_else(|| "index.js".into()), source),
            None,
        )
    };
    let version = controlplane::deploy(&state, &id, code, smoke).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "version": version})),
    ))
}

#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    version: Option<u64>,
}

#[utoipa::path(post, path = "/v1/tenants/{id}/rollback", tag = "tenants", security(("bearer" = [])),
    summary = "Serve an earlier version (default: the one before the current)", params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'")),
    request_body(content = Option<RollbackBody>, description = "Optional: `{\"version\": N}`"),
    responses((status = 200, description = "Serving", body = crate::openapi::VersionBody), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 404, description = "Unknown tenant or version", body = crate::openapi::ErrorBody)))]
async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id(&id)?;
    let req: RollbackBody = if body.is_empty() {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("rollback: {e}")))?
    };
    let target = controlplane::rollback(&state, &id, req.version).await?;
    Ok(Json(json!({"id": id, "version": target})))
}

#[derive(serde::Deserialize)]
struct LogQuery {
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}/logs", tag = "tenants", security(("bearer" = [])),
    summary = "Recent console output (bounded ring, kill reports included)",
    params(("id" = String, Path, description = "Tenant id: 1-63 of a-z, 0-9 and '-'"), ("limit" = Option<usize>, Query, description = "Lines, at most 1000 (default 100)")),
    responses((status = 200, description = "`{id, lines}`, oldest first", body = Object), (status = 400, description = "Malformed request or tenant id", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = crate::openapi::ErrorBody), (status = 404, description = "Unknown tenant or version", body = crate::openapi::ErrorBody)))]
async fn logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_id(&id)?;
    if state.registry.settings(&id).is_none() {
        return Err(ApiError::UnknownTenant(id));
    }
    let lines = state
        .logs
        .recent(&id, q.limit.unwrap_or(100).min(crate::logs::RING_LINES));
    Ok(Json(json!({"id": id, "lines": lines})))
}

//! The one place where errors become HTTP responses (data plane and admin API).

use isola_core::{Error, JsError, LimitError, LimitKind};
use serde_json::json;

/// Every error the HTTP layers answer with.
#[derive(Debug)]
pub enum ApiError {
    /// No tenant is routed for this host/path, or the admin API names an unknown one.
    UnknownTenant(String),
    /// The tenant exists but has no deployed code.
    NoCode(String),
    /// A limit stopped the request (CPU, memory, wall, concurrency).
    Limit(LimitError),
    /// The handler threw.
    Exception {
        /// Request id (also in the logs).
        request_id: String,
        /// The exception.
        error: Box<JsError>,
        /// Whether the tenant opted in to stacks in responses.
        expose: bool,
    },
    /// The handler failed otherwise (never settled, bad return value, ...).
    HandlerFailed {
        /// Request id.
        request_id: String,
        /// What happened.
        message: String,
    },
    /// The server is at capacity; retry later.
    Overloaded,
    /// The tenant broke a limit and is cooling down.
    Suspended {
        /// Tenant id.
        tenant: String,
        /// Seconds until it is served again.
        retry_after: u64,
    },
    /// The worker process running the request died (process isolation).
    WorkerCrashed {
        /// Request id.
        request_id: String,
        /// How the worker ended.
        cause: String,
    },
    /// The tenant kept crashing its worker process and is refused for now.
    Quarantined {
        /// Tenant id.
        tenant: String,
        /// Why.
        reason: String,
        /// Seconds until it is tried again.
        retry_after: u64,
    },
    /// The tenant is at `max_concurrency` and its admission queue is full,
    /// or the request waited in it too long.
    Queue(crate::admission::AdmissionError),
    /// The client did not send the request body in time.
    RequestTimeout {
        /// The body read timeout.
        timeout: std::time::Duration,
    },
    /// The handler's response cannot be sent (bad status, header or size).
    InvalidResponse {
        /// Request id.
        request_id: String,
        /// What is wrong with it.
        error: crate::framing::FramingError,
    },
    /// The request body exceeds the tenant's limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Malformed admin request.
    BadRequest(String),
    /// Code or settings failed validation.
    Invalid(String),
    /// A setting is out of bounds or malformed; names the field (JSON path).
    InvalidField {
        /// JSON path of the field (`limits.cpu`, `routes`, ...).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with another tenant (a route it owns). The
    /// body names the owner: the admin API is operator-only.
    Conflict {
        /// The field in conflict.
        field: String,
        /// The tenant that owns it.
        owner: String,
        /// What is wrong.
        message: String,
    },
    /// Missing or wrong admin token.
    Unauthorized,
    /// Something else is not there (a version, a route).
    NotFound(String),
    /// A bug or a store failure.
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::UnknownTenant(_) | ApiError::NoCode(_) | ApiError::NotFound(_) => 404,
            ApiError::Limit(_)
            | ApiError::Overloaded
            | ApiError::Suspended { .. }
            | ApiError::Quarantined { .. }
            | ApiError::Queue(_) => 503,
            ApiError::WorkerCrashed { .. } => 502,
            ApiError::RequestTimeout { .. } => 408,
            ApiError::InvalidResponse { .. } => 502,
            ApiError::Exception { .. } | ApiError::HandlerFailed { .. } | ApiError::Internal(_) => {
                500
            }
            ApiError::BodyTooLarge { .. } => 413,
            ApiError::BadRequest(_) => 400,
            ApiError::Invalid(_) | ApiError::InvalidField { .. } => 422,
            ApiError::Conflict { .. } => 409,
            ApiError::Unauthorized => 401,
        }
    }

    /// Seconds for a `Retry-After` header, where retrying makes sense.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Overloaded | ApiError::Queue(_) => Some(1),
            ApiError::Suspended { retry_after, .. } => Some(*retry_after),
            ApiError::Quarantined { retry_after, .. } => Some(*retry_after),
            ApiError::Limit(l) if l.kind == LimitKind::Concurrency => Some(1),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::UnknownTenant(t) => {
                json!({"error": "unknown_tenant", "message": format!("no tenant \"{t}\"")})
            }
            ApiError::NoCode(t) => {
                json!({"error": "not_deployed", "message": format!("tenant \"{t}\" has no deployed code")})
            }
            ApiError::Limit(l) => json!({
                "error": "limit_exceeded",
                "limit": l.kind.name(),
                "value": l.limit,
                "used": l.used,
                "tenant": l.tenant,
                "message": l.to_string(),
            }),
            ApiError::Exception {
                request_id,
                error,
                expose,
            } => {
                let mut b = json!({"error": "exception", "request_id": request_id, "message": "the handler threw an exception; see the tenant's logs"});
                if *expose {
                    b["exception"] =
                        json!({"name": error.name, "message": error.message, "stack": error.stack});
                }
                b
            }
            ApiError::HandlerFailed {
                request_id,
                message,
            } => {
                json!({"error": "handler_failed", "request_id": request_id, "message": message})
            }
            ApiError::Overloaded => {
                json!({"error": "overloaded", "message": "the server is at capacity; retry later"})
            }
            ApiError::Suspended {
                tenant,
                retry_after,
            } => json!({
                "error": "suspended",
                "message": format!("tenant \"{tenant}\" exceeded a limit and is cooling down; retry in {retry_after} s"),
            }),
            ApiError::WorkerCrashed { request_id, cause } => json!({
                "error": "worker_crashed",
                "message": format!("the worker process running this request died: {cause}"),
                "cause": cause,
                "request_id": request_id,
            }),
            ApiError::Quarantined {
                tenant,
                reason,
                retry_after,
            } => json!({
                "error": "quarantined",
                "message": format!("tenant \"{tenant}\" is quarantined: {reason}; retry in {retry_after} s or deploy a fix"),
                "reason": reason,
            }),
            ApiError::Queue(q) => {
                use crate::admission::AdmissionError as A;
                match q {
                    A::QueueFull {
                        tenant,
                        limit,
                        capacity,
                    } => json!({
                        "error": "queue_full",
                        "tenant": tenant,
                        "max_concurrency": limit,
                        "queue_capacity": capacity,
                        "message": q.to_string(),
                    }),
                    A::QueueTimeout {
                        tenant,
                        limit,
                        max_wait,
                    } => json!({
                        "error": "queue_timeout",
                        "tenant": tenant,
                        "max_concurrency": limit,
                        "max_wait_ms": max_wait.as_millis() as u64,
                        "message": q.to_string(),
                    }),
                }
            }
            ApiError::RequestTimeout { timeout } => json!({
                "error": "request_timeout",
                "timeout_ms": timeout.as_millis() as u64,
                "message": format!("the request body did not arrive within {} ms", timeout.as_millis()),
            }),
            ApiError::InvalidResponse { request_id, error } => json!({
                "error": "invalid_response",
                "request_id": request_id,
                "message": error.to_string(),
            }),
            ApiError::BodyTooLarge { limit } => {
                json!({"error": "body_too_large", "limit": limit, "message": format!("request body larger than {limit} bytes")})
            }
            ApiError::BadRequest(m) => json!({"error": "bad_request", "message": m}),
            ApiError::Invalid(m) => json!({"error": "invalid", "message": m}),
            ApiError::InvalidField { field, message } => {
                json!({"error": "invalid", "field": field, "message": message})
            }
            ApiError::Conflict {
                field,
                owner,
                message,
            } => json!({"error": "conflict", "field": field, "owner": owner, "message": message}),
            ApiError::Unauthorized => {
                json!({"error": "unauthorized", "message": "missing or wrong bearer token"})
            }
            ApiError::NotFound(m) => json!({"error": "not_found", "message": m}),
            ApiError::Internal(m) => json!({"error": "internal", "message": m}),
        }
    }

    /// Maps a core error from a tenant invocation.
    pub fn from_invocation(err: Error, request_id: &str, expose: bool) -> ApiError {
        match err {
            Error::Limit(l) => ApiError::Limit(l),
            Error::Js(error) => ApiError::Exception {
                request_id: request_id.to_string(),
                error: Box::new(error),
                expose,
            },
            Error::Store { .. } | Error::Snapshot(_) | Error::Io { .. } | Error::Internal(_) => {
                ApiError::Internal(format!("{err} (request {request_id})"))
            }
            other => ApiError::HandlerFailed {
                request_id: request_id.to_string(),
                message: other.to_string(),
            },
        }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after() {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::config::SettingsError> for ApiError {
    fn from(e: crate::config::SettingsError) -> Self {
        ApiError::InvalidField {
            field: e.field,
            message: e.message,
        }
    }
}

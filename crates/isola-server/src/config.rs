//! Server and per-tenant configuration, with validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use isola_core::Limits;

/// How `isola serve` runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data plane listener (tenant traffic).
    pub listen: SocketAddr,
    /// Admin API listener (its own port; keep it off the public network).
    pub admin_listen: SocketAddr,
    /// Bearer token for the admin API (at least 16 bytes). `None`: read or create `DATA_DIR/admin-token`.
    pub admin_token: Option<String>,
    /// Serve `/metrics` without auth on this address (its own listener);
    /// `None`: `/metrics` is on the admin listener, behind the token.
    pub metrics_listen: Option<SocketAddr>,
    /// Requests to `{tenant}.{base_domain}` go to that tenant.
    pub base_domain: String,
    /// Worker threads, each owning a set of tenant isolates (default: cores).
    pub workers: usize,
    /// Data directory (store, code cache, snapshot, admin token).
    pub data_dir: PathBuf,
    /// Warm isolates kept at most (LRU eviction of idle tenants past it).
    pub max_warm_isolates: usize,
    /// Heap bytes all warm isolates may hold together (LRU eviction past it).
    pub memory_budget_bytes: u64,
    /// Blank isolates each worker keeps ready for tenants' first requests.
    pub prewarm_per_worker: usize,
    /// Requests queued per worker before new ones get 503 + Retry-After.
    pub max_queue_per_worker: usize,
    /// Data-plane connections open at once; past it a new connection gets a
    /// best-effort 503 and is closed at once.
    pub max_connections: usize,
    /// Longest wait for a complete request head, from a new connection or
    /// the end of the previous response.
    pub header_read_timeout: Duration,
    /// An idle keep-alive connection (no request in flight) that sends no
    /// byte for this long is closed.
    pub keep_alive_timeout: Duration,
    /// Longest time to receive a buffered (small) request body whole, and
    /// the longest gap between chunks of a streamed one; past it: 408 (or,
    /// for a body already streaming to the handler, a body read error).
    pub body_read_timeout: Duration,
    /// A response write to the client that makes no progress for this long
    /// closes the connection (and cancels a streamed response).
    pub write_timeout: Duration,
    /// Requests of one tenant waiting for a free `max_concurrency` slot;
    /// past it: 503 `queue_full`.
    pub admission_queue_len: usize,
    /// Longest wait in a tenant's admission queue; past it: 503 `queue_timeout`.
    pub admission_max_wait: Duration,
    /// Where tenants' isolates run: threads of this process, or sandboxed
    /// worker processes.
    pub isolation: Isolation,
    /// Process isolation: settings of the worker processes.
    pub process: ProcessConfig,
    /// PEM certificates trusted by tenants' `fetch()` besides the Mozilla
    /// roots (e.g. an internal CA).
    pub fetch_ca_file: Option<PathBuf>,
}

/// Where tenants' isolates run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Worker threads of the serving process (one process, fastest).
    Thread,
    /// Sandboxed worker processes under a supervisor: a crash costs one
    /// worker, never the server.
    Process,
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "thread" => Ok(Isolation::Thread),
            "process" => Ok(Isolation::Process),
            other => Err(format!(
                "unknown isolation {other:?}; use \"process\" or \"thread\""
            )),
        }
    }
}

/// Settings of worker processes (`--isolation process`).
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The executable started in worker mode (default: this one).
    pub worker_exe: Option<PathBuf>,
    /// Resident memory one worker process may use; past it the supervisor
    /// kills it (its requests get 502 naming the ceiling).
    pub memory_ceiling_bytes: u64,
    /// A worker that answers no heartbeat for this long is killed and replaced.
    pub heartbeat_timeout: Duration,
    /// An isolate still running this long after its worker took over from
    /// it (it ignored termination) gets its worker process killed.
    pub stuck_kill_after: Duration,
    /// Whether workers install the seccomp sandbox (Linux; on by default).
    pub sandbox: bool,
    /// Worker processes of their own at most (tenants marked `dedicated`,
    /// and tenants that crashed a shared worker).
    pub max_dedicated: usize,
    /// Crashes of its own worker after which a tenant is quarantined.
    pub quarantine_after_crashes: u32,
    /// How long a quarantined tenant is refused (a new deploy lifts it).
    pub quarantine_for: Duration,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            worker_exe: None,
            memory_ceiling_bytes: 2 << 30,
            heartbeat_timeout: Duration::from_secs(2),
            stuck_kill_after: Duration::from_secs(2),
            sandbox: true,
            max_dedicated: 64,
            quarantine_after_crashes: 3,
            quarantine_for: Duration::from_secs(600),
        }
    }
}

impl ServerConfig {
    /// Defaults on loopback: data plane :8787, admin :8788, base domain `localhost`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8788)),
            admin_token: None,
            metrics_listen: None,
            base_domain: "localhost".into(),
            workers,
            data_dir: data_dir.into(),
            max_warm_isolates: 1000,
            memory_budget_bytes: 4 << 30,
            prewarm_per_worker: 2,
            max_queue_per_worker: 4096,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(30),
            admission_queue_len: 1024,
            admission_max_wait: Duration::from_secs(10),
            isolation: Isolation::Thread,
            process: ProcessConfig::default(),
            fetch_ca_file: None,
        }
    }
}

/// A tenant's configuration, as set by `PUT /v1/tenants/{id}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Budgets (missing fields keep their defaults).
    pub limits: Limits,
    /// Variables handed to handlers as `env.NAME`.
    pub env: BTreeMap<String, String>,
    /// Secrets handed to handlers as `env.NAME`; never returned by the admin API nor logged.
    pub secrets: BTreeMap<String, String>,
    /// Extra host names routed to this tenant (besides `{id}.{base_domain}`).
    pub routes: Vec<String>,
    /// Largest request body accepted (bytes); larger ones get 413.
    pub max_body_bytes: u64,
    /// Whether a 500 response carries the exception's stack (default: logs only).
    pub expose_errors: bool,
    /// In process isolation: run this tenant in a worker process of its own
    /// (never sharing a process with other tenants). Ignored with threads.
    pub dedicated: bool,
    /// Outbound `fetch()`: allowed hosts and per-invocation caps (deny by default).
    pub fetch: isola_core::FetchPolicy,
    /// WebAssembly for this tenant (off by default). Its memories count in
    /// `limits.external_memory_bytes` at their declared maximum, which they
    /// must have, and its compiled code at 4 bytes per module byte.
    pub webassembly: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            limits: Limits::default(),
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            routes: Vec::new(),
            max_body_bytes: 1 << 20,
            expose_errors: false,
            dedicated: false,
            fetch: isola_core::FetchPolicy::default(),
            webassembly: false,
        }
    }
}

impl TenantSettings {
    /// The `env` object a handler sees: variables and secrets.
    pub fn env_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in self.env.iter().chain(self.secrets.iter()) {
            m.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(m)
    }

    /// The settings as the admin API shows them: secret values redacted.
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            let names: Vec<String> = self.secrets.keys().cloned().collect();
            obj.insert("secrets".into(), serde_json::json!(names));
        }
        v
    }

    /// Checks every field against its bound (see `docs/LIMITS.md`) and
    /// normalises routes (lowercase). The error names the field.
    pub fn validate(&mut self) -> Result<(), SettingsError> {
        self.limits.validate().map_err(|e| SettingsError {
            field: format!("limits.{}", e.bound.field),
            message: e.to_string(),
        })?;
        self.fetch.validate().map_err(|e| SettingsError {
            field: format!("fetch.{}", e.field),
            message: e.message,
        })?;
        if self.max_body_bytes > MAX_BODY_BYTES {
            return Err(SettingsError::new(
                "max_body_bytes",
                format!(
                    "max_body_bytes is {}; it must be between 0 and {MAX_BODY_BYTES} bytes",
                    self.max_body_bytes
                ),
            ));
        }
        if self.routes.len() > MAX_ROUTES {
            return Err(SettingsError::new(
                "routes",
                format!(
                    "{} routes; a tenant may have at most {MAX_ROUTES}",
                    self.routes.len()
                ),
            ));
        }
        for r in &mut self.routes {
            *r = validate_route(r)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.routes {
            if !seen.insert(r) {
                return Err(SettingsError::new(
                    "routes",
                    format!("route \"{r}\" is listed twice"),
                ));
            }
        }
        let count = self.env.len() + self.secrets.len();
        if count > MAX_ENV_ENTRIES {
            return Err(SettingsError::new(
                "env",
                format!("{count} env and secret entries; at most {MAX_ENV_ENTRIES} together"),
            ));
        }
        let mut total = 0usize;
        for (kind, map) in [("env", &self.env), ("secrets", &self.secrets)] {
            for (k, v) in map {
                let field = format!(
                    "{kind}.{}",
                    k.chars().take(MAX_ENV_NAME).collect::<String>()
                );
                let name_ok = !k.is_empty()
                    && k.len() <= MAX_ENV_NAME
                    && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                if !name_ok {
                    return Err(SettingsError::new(
                        field,
                        format!("{kind} names must be 1-{MAX_ENV_NAME} letters, digits and _"),
                    ));
                }
                if v.len() > MAX_ENV_VALUE {
                    return Err(SettingsError::new(
                        field,
                        format!("value is {} bytes; at most {MAX_ENV_VALUE}", v.len()),
                    ));
                }
                total += k.len() + v.len();
            }
        }
        if let Some(k) = self.env.keys().find(|k| self.secrets.contains_key(*k)) {
            return Err(SettingsError::new(
                format!("secrets.{k}"),
                format!("\"{k}\" is both an env variable and a secret"),
            ));
        }
        if total > MAX_ENV_TOTAL {
            return Err(SettingsError::new(
                "env",
                format!("env and secrets hold {total} bytes; at most {MAX_ENV_TOTAL} together"),
            ));
        }
        Ok(())
    }
}

/// Largest `max_body_bytes` a tenant may set: 1 GiB (bodies stream).
pub const MAX_BODY_BYTES: u64 = 1 << 30;
/// Custom routes per tenant.
pub const MAX_ROUTES: usize = 32;
/// `env` and `secrets` entries per tenant, together.
pub const MAX_ENV_ENTRIES: usize = 128;
/// Bytes of one env or secret name.
pub const MAX_ENV_NAME: usize = 128;
/// Bytes of one env or secret value: 64 KiB.
pub const MAX_ENV_VALUE: usize = 64 << 10;
/// Bytes of all env and secret names and values of a tenant: 1 MiB.
pub const MAX_ENV_TOTAL: usize = 1 << 20;

/// A tenant setting out of bounds; `field` is its JSON path (`limits.cpu`, `routes`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong, with the bound.
    pub message: String,
}

impl SettingsError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A custom route must be a DNS host name: 1-253 bytes, dot-separated labels
/// of 1-63 `a-z`, `0-9`, `-` (not starting or ending with `-`). Upper case is
/// lowered; the normalised name is returned.
pub fn validate_route(route: &str) -> Result<String, SettingsError> {
    let r = route.to_ascii_lowercase();
    let ok = !r.is_empty()
        && r.len() <= 253
        && r.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(r)
    } else {
        Err(SettingsError::new(
            "routes",
            format!(
                "route \"{}\" is not a DNS host name (labels of a-z, 0-9 and '-', no port, no trailing dot)",
                route.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// Tenant ids: 1-63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`
/// (so they are valid DNS labels for `{id}.{base_domain}` routing).
pub fn validate_tenant_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tenant id \"{}\": use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'",
            id.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_dns_labels() {
        assert!(validate_tenant_id("acme").is_ok());
        assert!(validate_tenant_id("acme-2").is_ok());
        for bad in [
            "",
            "Acme",
            "-a",
            "a-",
            "a.b",
            "a/b",
            "../x",
            &"a".repeat(64),
        ] {
            assert!(validate_tenant_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_host_names_lowercased() {
        assert_eq!(
            validate_route("Shop.Example.COM").unwrap(),
            "shop.example.com"
        );
        for bad in [
            "", "a..b", "a/b", "a b", "-a.com", "a.com.", "a.com:80", "*.a.com",
        ] {
            assert_eq!(validate_route(bad).unwrap_err().field, "routes", "{bad}");
        }
    }

    #[test]
    fn secrets_are_redacted_but_reach_env() {
        let mut s = TenantSettings::default();
        s.secrets.insert("API_KEY".into(), "hunter2".into());
        s.env.insert("MODE".into(), "prod".into());
        assert!(!s.redacted().to_string().contains("hunter2"));
        assert_eq!(s.env_json()["API_KEY"], "hunter2");
    }
}

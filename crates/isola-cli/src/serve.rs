//! `isola serve` and the admin API client commands (`deploy`, `tenants`, `logs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use isola_core::{Engine, EngineConfig, TenantCode};
use isola_server::config::Isolation;
use isola_server::{Server, ServerConfig};

/// Flags of `isola serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data plane address (tenant traffic).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Admin API address (keep it private).
    #[arg(long, default_value = "127.0.0.1:8788")]
    pub admin_listen: SocketAddr,
    /// Requests to {tenant}.{base-domain} go to that tenant.
    #[arg(long, default_value = "localhost")]
    pub base_domain: String,
    /// Worker threads owning tenant isolates (default: number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Admin bearer token, at least 16 printable characters (default:
    /// DATA_DIR/admin-token, created on first start). An empty or short token
    /// refuses to start.
    #[arg(long, env = "ISOLA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve /metrics without auth on this address (a listener of its own);
    /// without it /metrics is on the admin listener and needs the token.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Warm isolates kept at most (idle tenants evicted LRU past it).
    #[arg(long, default_value_t = 1000)]
    pub max_warm: usize,
    /// Heap all warm isolates may hold together, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub memory_budget_mb: u64,
    /// Data-plane connections open at once (past it: 503 and close).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds to receive a complete request head.
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, default_value_t = 5)]
    pub keep_alive_timeout_secs: u64,
    /// Seconds to receive a small request body whole (or between chunks of a large one).
    #[arg(long, default_value_t = 15)]
    pub body_read_timeout_secs: u64,
    /// Seconds a response write may make no progress before the connection is closed.
    #[arg(long, default_value_t = 30)]
    pub write_timeout_secs: u64,
    /// Requests per tenant that wait for a free concurrency slot (past it: 503 queue_full).
    #[arg(long, default_value_t = 1024)]
    pub admission_queue: usize,
    /// Longest wait in a tenant's admission queue, in milliseconds (past it: 503 queue_timeout).
    #[arg(long, default_value_t = 10_000)]
    pub admission_max_wait_ms: u64,
    /// Where tenants' isolates run: `thread` (worker threads of this
    /// process; fastest, but one fatal error takes every tenant down) or
    /// `process` (sandboxed worker processes under this supervisor; a crash
    /// costs one worker). Use `process` for untrusted code.
    #[arg(long, default_value = "thread", value_parser = parse_isolation)]
    pub isolation: Isolation,
    /// Process isolation: resident memory per worker process, in MiB (past
    /// it the worker is killed and its requests get 502).
    #[arg(long, default_value_t = 2048)]
    pub worker_memory_mb: u64,
    /// Process isolation: run workers without the seccomp sandbox (for
    /// platforms without seccomp; never for untrusted tenants).
    #[arg(long)]
    pub no_sandbox: bool,
    /// PEM certificates tenants' fetch() trusts besides the Mozilla roots (an internal CA).
    #[arg(long, value_name = "FILE")]
    pub fetch_ca_file: Option<std::path::PathBuf>,
}

fn parse_isolation(s: &str) -> Result<Isolation, String> {
    s.parse()
}

/// Runs the server until the process is stopped.
pub fn serve(data_dir: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // V8 first, on the main thread, before any worker thread exists.
    let engine = Engine::new(EngineConfig::with_data_dir(data_dir))?;
    let mut config = ServerConfig::new(data_dir);
    config.listen = args.listen;
    config.admin_listen = args.admin_listen;
    config.base_domain = args.base_domain.trim_start_matches('.').to_string();
    if let Some(w) = args.workers {
        config.workers = w.max(1);
    }
    let token_given = args.admin_token.is_some();
    config.admin_token = args.admin_token;
    config.metrics_listen = args.metrics_listen;
    config.max_warm_isolates = args.max_warm;
    config.memory_budget_bytes = args.memory_budget_mb << 20;
    config.max_connections = args.max_connections.max(1);
    config.header_read_timeout = Duration::from_secs(args.header_read_timeout_secs.max(1));
    config.keep_alive_timeout = Duration::from_secs(args.keep_alive_timeout_secs.max(1));
    config.body_read_timeout = Duration::from_secs(args.body_read_timeout_secs.max(1));
    config.write_timeout = Duration::from_secs(args.write_timeout_secs.max(1));
    config.admission_queue_len = args.admission_queue;
    config.admission_max_wait = Duration::from_millis(args.admission_max_wait_ms);
    config.isolation = args.isolation;
    config.fetch_ca_file = args.fetch_ca_file;
    config.process.memory_ceiling_bytes = args.worker_memory_mb.max(64) << 20;
    config.process.sandbox = !args.no_sandbox && cfg!(target_os = "linux");
    let base = config.base_domain.clone();
    let server = Server::new(engine, config)?;
    let tenants = server.state().registry.len();
    let running = server.start()?;
    eprintln!(
        "isola serve: {tenants} tenant(s), isolation {}; data plane http://{} (Host: TENANT.{base} or path /t/TENANT/), admin API http://{} (token: {}){}",
        match args.isolation { Isolation::Process => "process", Isolation::Thread => "thread" },
        running.data_addr,
        running.admin_addr,
        if token_given { "--admin-token".to_string() } else { data_dir.join("admin-token").display().to_string() },
        match running.metrics_addr {
            Some(a) => format!(", metrics http://{a}/metrics (no auth)"),
            None => String::new(),
        }
    );
    running.wait();
    Ok(ExitCode::SUCCESS)
}

/// How the client commands reach the admin API.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Admin API base URL.
    #[arg(long, env = "ISOLA_ADMIN_URL", default_value = "http://127.0.0.1:8788")]
    pub admin: String,
    /// Admin bearer token (default: read DATA_DIR/admin-token).
    #[arg(long, env = "ISOLA_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

struct Client {
    base: String,
    token: String,
}

impl Client {
    fn new(data_dir: &Path, args: &ClientArgs) -> anyhow::Result<Client> {
        let token = match &args.token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(data_dir.join("admin-token"))
                .map(|t| t.trim().to_string())
                .with_context(|| {
                    format!(
                        "no admin token: pass --token or ISOLA_ADMIN_TOKEN, or run on the server's machine ({} not readable)",
                        data_dir.join("admin-token").display()
                    )
                })?,
        };
        Ok(Client {
            base: args.admin.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn call(
        &self,
        req: ureq::Request,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let req = req.set("Authorization", &format!("Bearer {}", self.token));
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => {
                let text = r.into_string()?;
                Ok(if text.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_str(&text)?
                })
            }
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                anyhow::bail!("admin API answered {code}: {msg}")
            }
            Err(e) => anyhow::bail!(
                "cannot reach the admin API at {}: {e}; is `isola serve` running?",
                self.base
            ),
        }
    }
}

/// Flags of `isola deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Tenant id (a-z, 0-9, '-').
    #[arg(long)]
    pub tenant: String,
    /// A .js file, or a folder with index.js (multi-file bundle).
    pub path: PathBuf,
    /// A path to request against the new version before switching (e.g. /health).
    #[arg(long)]
    pub smoke: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Uploads code; prints the new version.
pub fn deploy(data_dir: &Path, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let code = TenantCode::from_path(&args.path)?;
    let client = Client::new(data_dir, &args.client)?;
    let mut body = serde_json::json!({"entry": code.entry(), "files": code.files()});
    if let Some(path) = &args.smoke {
        body["smoke"] = serde_json::json!({"method": "GET", "url": path});
    }
    let url = format!("{}/v1/tenants/{}/code", client.base, args.tenant);
    let out = client.call(ureq::put(&url), Some(body))?;
    println!("deployed {} version {}", args.tenant, out["version"]);
    Ok(ExitCode::SUCCESS)
}

/// Lists tenants.
pub fn tenants_ls(data_dir: &Path, args: ClientArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(data_dir, &args)?;
    let out = client.call(ureq::get(&format!("{}/v1/tenants", client.base)), None)?;
    println!("{:<32} {:>8}  routes", "TENANT", "VERSION");
    for t in out["tenants"].as_array().cloned().unwrap_or_default() {
        let version = t["version"]
            .as_u64()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let routes: Vec<String> = t["routes"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{:<32} {:>8}  {}",
            t["id"].as_str().unwrap_or(""),
            version,
            routes.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Flags of `isola logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Tenant id.
    pub tenant: String,
    /// Lines to show (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Prints a tenant's recent console output.
pub fn logs(data_dir: &Path, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(data_dir, &args.client)?;
    let url = format!(
        "{}/v1/tenants/{}/logs?limit={}",
        client.base, args.tenant, args.limit
    );
    let out = client.call(ureq::get(&url), None)?;
    for l in out["lines"].as_array().cloned().unwrap_or_default() {
        println!(
            "{} {:<5} {}",
            l["ts_ms"],
            l["level"].as_str().unwrap_or(""),
            l["message"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `isola run`: one tenant, one invocation, result as JSON on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use isola_core::{
    Engine, EngineConfig, Error, HttpRequest, Invocation, Limits, Tenant, TenantCode, TenantConfig,
};

/// Flags of `isola run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tenant's code: a .js/.mjs file, or a folder with index.js (multi-file bundle).
    pub file: PathBuf,
    /// Tenant name (shown in console prefixes, errors and limits).
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Request for a fetch handler, as JSON:
    /// {"method":"POST","url":"http://x/","headers":{"k":"v"},"body":"..."}.
    #[arg(long, value_name = "JSON", conflicts_with = "arg")]
    pub request: Option<String>,
    /// An argument (JSON; plain text is taken as a string) for a default-exported
    /// function or a script's `handler`. Repeat for more arguments.
    #[arg(long = "arg", value_name = "JSON")]
    pub arg: Vec<String>,
    /// The tenant's env object, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub env: String,
    /// Print timings (snapshot, isolate, compile, code cache, invocation) to stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Do not read or write the code cache.
    #[arg(long)]
    pub no_cache: bool,
    /// CPU time limit per invocation, in ms.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub cpu_ms: u64,
    /// Wall time limit per invocation, in ms.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub wall_ms: u64,
    /// Heap limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub heap_mb: u64,
}

fn parse_request(text: &str) -> anyhow::Result<HttpRequest> {
    let v: serde_json::Value = serde_json::from_str(text).context("--request is not valid JSON")?;
    let obj = v.as_object().context("--request must be a JSON object")?;
    let mut req = HttpRequest::default();
    if let Some(m) = obj.get("method") {
        req.method = m
            .as_str()
            .context("--request: method must be a string")?
            .to_uppercase();
    }
    if let Some(u) = obj.get("url") {
        req.url = u
            .as_str()
            .context("--request: url must be a string")?
            .to_string();
    }
    match obj.get("headers") {
        None => {}
        Some(serde_json::Value::Object(h)) => {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                req.headers.push((k.clone(), v));
            }
        }
        Some(serde_json::Value::Array(pairs)) => {
            for p in pairs {
                let pair = p
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .context("--request: headers pairs must be [name, value]")?;
                let k = pair[0]
                    .as_str()
                    .context("--request: header names must be strings")?;
                let v = pair[1]
                    .as_str()
                    .context("--request: header values must be strings")?;
                req.headers.push((k.to_string(), v.to_string()));
            }
        }
        Some(_) => anyhow::bail!("--request: headers must be an object or a list of pairs"),
    }
    match obj.get("body") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => req.body = s.clone().into_bytes(),
        Some(other) => req.body = other.to_string().into_bytes(),
    }
    Ok(req)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the command; returns the exit code.
pub fn run(data_dir: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let code = TenantCode::from_path(&args.file).map_err(|e| match e {
        Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            anyhow::anyhow!(
                "{}: no such file or folder; pass the path of a .js file or a bundle folder",
                path.display()
            )
        }
        other => other.into(),
    })?;
    let invocation = match (&args.request, args.arg.is_empty()) {
        (Some(r), _) => Invocation::Fetch(parse_request(r)?),
        (None, false) => Invocation::Call(
            args.arg
                .iter()
                .map(|a| {
                    serde_json::from_str(a).unwrap_or_else(|_| serde_json::Value::String(a.clone()))
                })
                .collect(),
        ),
        (None, true) => Invocation::Call(Vec::new()),
    };
    let env: serde_json::Value =
        serde_json::from_str(&args.env).context("--env is not valid JSON")?;

    let t0 = Instant::now();
    let engine = Engine::new(EngineConfig {
        data_dir: Some(data_dir.to_path_buf()),
        code_cache: !args.no_cache,
        ..EngineConfig::default()
    })?;
    let engine_time = t0.elapsed();
    let limits = Limits {
        cpu: Duration::from_millis(args.cpu_ms),
        wall: Duration::from_millis(args.wall_ms),
        startup_cpu: Duration::from_millis(args.cpu_ms),
        heap_bytes: args.heap_mb << 20,
        ..Limits::relaxed()
    };
    let config = TenantConfig::new(&args.tenant).limits(limits).env(env);
    let mut tenant = match Tenant::new(&engine, config, code) {
        Ok(t) => t,
        Err(e) => return Ok(report_error(&e)),
    };
    if args.verbose {
        let li = tenant.load_info();
        eprintln!(
            "isola: engine {} (snapshot {} {}, {} bytes, V8 {})",
            ms(engine_time),
            &engine.snapshot_fingerprint()[..12],
            if engine.snapshot_was_built() {
                "built"
            } else {
                "loaded"
            },
            engine.snapshot_size(),
            Engine::v8_version()
        );
        eprintln!("isola: isolate {}", ms(li.isolate_time));
        eprintln!("isola: compile {}", ms(li.compile_time));
        for (file, ev) in &li.cache {
            eprintln!(
                "isola: code cache {file}: {}",
                serde_json::to_string(ev)?.trim_matches('"')
            );
        }
        eprintln!("isola: startup cpu {}", ms(li.startup_cpu));
    }
    match tenant.invoke(invocation) {
        Ok(out) => {
            if args.verbose {
                eprintln!("isola: invoke cpu {} wall {}", ms(out.cpu), ms(out.wall));
            }
            println!("{}", serde_json::to_string(&out.output.to_json())?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report_error(&e)),
    }
}

fn report_error(e: &Error) -> ExitCode {
    match e {
        Error::Limit(l) => {
            eprintln!("error: {l}");
        }
        other => eprintln!("error: {other}"),
    }
    ExitCode::FAILURE
}

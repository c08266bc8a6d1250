//! `isola`: the command-line front end (parse flags, validate, run).

mod run;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// isola: a multi-tenant JavaScript runtime on V8 (one isolate per tenant,
/// base startup snapshot, persistent code cache, per-tenant limits).
#[derive(Debug, Parser)]
#[command(name = "isola", version, about, long_about = None)]
struct Cli {
    /// Data directory (snapshot cache, code cache, tenant store).
    /// Default: $XDG_DATA_HOME/isola or ~/.local/share/isola.
    #[arg(long, global = true, env = "ISOLA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a handler or script once in a fresh tenant isolate and print its result as JSON.
    ///
    /// An ES module's `export default { fetch(request, env, ctx) }` is called with
    /// `--request` (default: GET http://localhost/); a default-exported function
    /// is called with the `--arg` values; a classic script's completion value
    /// (or its global `handler(...args)`) is the result. Console output goes to
    /// stderr; the result (JSON) to stdout.
    Run(run::RunArgs),
    /// Serve many tenants over HTTP: data plane, admin API (deploy, config,
    /// rollback, logs) and /metrics. Deployed tenants persist in the data dir.
    Serve(serve::ServeArgs),
    /// Deploy code to a tenant through the admin API (validated before the switch).
    Deploy(serve::DeployArgs),
    /// List or inspect tenants through the admin API.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Print a tenant's recent console output (and kill reports).
    Logs(serve::LogsArgs),
    /// Inspect or clear the code cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// List tenants with their serving version.
    Ls(serve::ClientArgs),
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Print code cache statistics (entries, bytes, hits, misses, rejections).
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete every code cache entry (counters are kept).
    Purge,
}

fn main() -> ExitCode {
    // A worker process of `isola serve --isolation process` never returns from here.
    isola_core::init_platform();
    isola_server::process::run_if_worker();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISOLA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .without_time()
        .with_target(false)
        .init();
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(isola_core::default_data_dir);
    let result = match cli.command {
        Command::Run(args) => run::run(&data_dir, args),
        Command::Cache { command } => cache(&data_dir, command),
        Command::Serve(args) => serve::serve(&data_dir, args),
        Command::Deploy(args) => serve::deploy(&data_dir, args),
        Command::Tenants {
            command: TenantsCommand::Ls(args),
        } => serve::tenants_ls(&data_dir, args),
        Command::Logs(args) => serve::logs(&data_dir, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn cache(data_dir: &std::path::Path, cmd: CacheCommand) -> anyhow::Result<ExitCode> {
    use isola_core::CodeCacheStore;
    let store =
        isola_core::SqliteCodeCache::open(data_dir, isola_core::code_cache::DEFAULT_MAX_BYTES)?;
    match cmd {
        CacheCommand::Stats { json } => {
            let s = store.stats()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("store       {}", store.path().display());
                println!("entries     {}", s.entries);
                println!("bytes       {} (max {})", s.bytes, s.max_bytes);
                println!("hits        {}", s.hits);
                println!("misses      {}", s.misses);
                println!("rejections  {}", s.rejections);
                println!("corrupt     {}", s.corrupt);
                println!("evictions   {}", s.evictions);
            }
        }
        CacheCommand::Purge => {
            let n = store.purge()?;
            println!(
                "purged {n} code cache entries from {}",
                store.path().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

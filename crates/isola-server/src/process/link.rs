//! The supervisor's side of one worker process: starting it, talking to it,
//! watching it, and answering for it when it dies.
//!
//! A [`Link`] owns the child process, a writer task (frames out), a reader
//! task (frames in, each checked: kind, size cap, known id, known tenant), a
//! stderr task (the worker's stderr, relayed with its name; fatal-error and
//! sandbox-violation lines are kept for the crash report) and a monitor
//! task (heartbeat, resident-memory ceiling, isolates stuck past
//! termination). However the worker ends, every request it had is answered
//! with [`DispatchError::WorkerCrashed`] naming the cause, at once. What
//! each frame from the worker does, and the body streams, are in [`frames`].

use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use isola_core::{
    BodyPoll, BodySource, CacheKey, CodeCacheStore, Error, HttpRequest, HttpResponse, Invoked,
    Output, Permit,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::wire::{
    read_frame, write_frames, DeployMsg, Event, Frame, Hello, InvokeMsg, Kind, LogMsg, Pong,
    ReplyHead, ReplyMeta, ValidateMsg, WireOutput, MAX_CHUNK, PROTOCOL_VERSION, WINDOW,
};
use super::worker::{invoke_payload, WorkerArgs, ENV_ARGS, ENV_FD};
use crate::config::ProcessConfig;
use crate::dispatch::DispatchError;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::pool::{Deployment, Reply};

mod fetch;
mod frames;
use frames::{pump_request_body, Pending, Stage};

/// How long a new worker may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the monitor looks at a worker.
const MONITOR_EVERY: Duration = Duration::from_millis(50);
/// How often a heartbeat is sent.
const PING_EVERY: Duration = Duration::from_millis(250);
/// How long past a tenant's wall limit a worker may hold a request before
/// the supervisor decides it is broken and kills it.
const REQUEST_GRACE: Duration = Duration::from_secs(10);
/// Bytes of code cache data queued for one worker at most (it is not
/// reading its socket past that).
const MAX_CACHE_BACKLOG: usize = 256 << 20;
/// Code cache lookups or stores of one worker running at once.
const CACHE_TASKS: usize = 2;
/// Lines of a worker's stderr relayed per second at most.
const STDERR_LINES_PER_SEC: u32 = 100;
/// Longest line of a worker's stderr relayed.
const STDERR_LINE_MAX: usize = 4096;

/// What the link reports when its worker has ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// The worker's process id.
    pub pid: u32,
    /// How it ended, in words.
    pub cause: String,
    /// Tenants that may have caused it: every tenant with a request in
    /// flight, and the one a fatal error or a stuck isolate names.
    pub suspects: Vec<String>,
}

/// Told when a worker has ended (once).
pub type OnExit = Box<dyn FnOnce(Exit) + Send>;
/// Told (on every heartbeat while it lasts) that a tenant's isolate has held
/// a retired thread past `stuck_kill_after`: (link, tenant, ms).
pub type OnStuck = Arc<dyn Fn(&Arc<Link>, &str, u64) + Send + Sync>;
/// Longest a draining worker waits for its other requests before it is killed.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// The shared parts a link needs.
#[derive(Clone)]
pub struct LinkEnv {
    /// Process settings.
    pub config: ProcessConfig,
    /// The worker executable.
    pub exe: std::path::PathBuf,
    /// The supervisor's code cache store, if any.
    pub cache: Option<Arc<dyn CodeCacheStore>>,
    /// Console rings.
    pub logs: Arc<Logs>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Which tenant deployments run on shared workers (see `pool::trust`).
    pub trust: Arc<crate::pool::trust::Trust>,
    /// The client that runs the workers' subrequests (`fetch()`).
    pub fetch: Option<crate::outbound::Client>,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    validations: HashMap<u64, oneshot::Sender<Result<(), String>>>,
    /// Generations sent to this worker.
    deployed: HashSet<u64>,
    /// Tenants with a deployment on this worker.
    tenants: HashSet<String>,
    /// Per tenant placed on this worker: its newest deployment's fetch
    /// policy and ArrayBuffer budget (what its subrequests run under).
    fetch_policies: HashMap<String, (Arc<isola_core::FetchPolicy>, u64)>,
    /// Subrequests running for this worker.
    fetches: HashMap<u64, tokio::task::AbortHandle>,
    /// Set once the worker is gone.
    dead: Option<String>,
}

/// One worker process.
pub struct Link {
    /// Its name.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Whether it installed its sandbox.
    pub sandboxed: bool,
    /// When it started.
    pub started: Instant,
    out: mpsc::UnboundedSender<Frame>,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Why the supervisor killed it, if it did.
    kill_reason: Mutex<Option<(String, Vec<String>)>>,
    last_pong: Mutex<Instant>,
    requests: AtomicUsize,
    /// System calls its sandbox refused, and the last such report.
    violations: AtomicU64,
    last_violation: Mutex<Option<String>>,
    /// Code cache bytes queued for the worker.
    cache_backlog: Arc<AtomicUsize>,
    /// Code cache tasks of this worker (the reader waits for one).
    cache_slots: Arc<Semaphore>,
    /// Bytes this worker's subrequests hold in the supervisor (bodies).
    fetch_bytes: Arc<fetch::LinkBytes>,
    /// Set once the process is reaped: its pid may belong to another then.
    reaped: std::sync::atomic::AtomicBool,
    /// What to do about a stuck isolate (default: kill the worker).
    on_stuck: Mutex<Option<OnStuck>>,
    /// Set while the worker finishes its requests before it is killed; it
    /// takes no new ones.
    draining: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link {
    /// Starts a worker process and waits for its hello. `scope` separates
    /// its code cache entries from other workers'.
    pub async fn start(
        env: &LinkEnv,
        args: WorkerArgs,
        scope: String,
        on_exit: OnExit,
    ) -> Result<Arc<Link>, String> {
        let (sup, child_end) =
            std::os::unix::net::UnixStream::pair().map_err(|e| format!("socket pair: {e}"))?;
        let mut cmd = tokio::process::Command::new(&env.exe);
        cmd.env_clear()
            .env(ENV_FD, "3")
            .env(
                ENV_ARGS,
                serde_json::to_string(&args).map_err(|e| e.to_string())?,
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for var in ["ISOLA_LOG", "RUST_BACKTRACE"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        let raw = child_end.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes async-signal-safe system calls (dup2, fcntl,
        // close_range) on descriptors of the child.
        unsafe {
            cmd.pre_exec(move || {
                if raw == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Nothing else of the supervisor's (or of its parent's) goes
                // along: close every descriptor above 3 (close_range, Linux
                // 5.9+; on older kernels close-on-exec still covers ours).
                libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", env.exe.display()))?;
        drop(child_end);
        let pid = child.id().unwrap_or(0);
        sup.set_nonblocking(true).map_err(|e| e.to_string())?;
        let sock = tokio::net::UnixStream::from_std(sup).map_err(|e| e.to_string())?;
        let (rd, wr) = sock.into_split();
        // Buffered: a reply's head, body and end usually arrive in one read.
        let mut rd = tokio::io::BufReader::with_capacity(64 << 10, rd);
        let cap = |k: Kind| k.from_worker().then(|| k.worker_cap());
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut rd, cap)).await {
            Ok(Ok(Some(f))) if f.kind == Kind::Hello => {
                f.parse::<Hello>().map_err(|e| e.to_string())
            }
            Ok(Ok(Some(f))) => Err(format!("expected a hello, got {:?}", f.kind)),
            Ok(Ok(None)) => Err("the worker exited before saying hello".to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no hello within {} s", HELLO_TIMEOUT.as_secs())),
        };
        let hello = match hello {
            Ok(h) if h.protocol == PROTOCOL_VERSION && h.pid == pid => h,
            Ok(h) => {
                let _ = child.start_kill();
                return Err(format!(
                    "worker speaks protocol {} as pid {} (want {PROTOCOL_VERSION} as pid {pid})",
                    h.protocol, h.pid
                ));
            }
            Err(e) => {
                let _ = child.start_kill();
                let status = child.wait().await.ok();
                let mut detail = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let mut buf = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        (&mut err).take(4096).read_to_end(&mut buf),
                    )
                    .await;
                    detail = String::from_utf8_lossy(&buf).trim().to_string();
                }
                return Err(format!(
                    "worker {}: {e} (status {status:?}) {detail}",
                    args.name
                ));
            }
        };
        // The kernel's word, not only the worker's: /proc/PID/status must
        // show the filter.
        let filtered = super::sandbox::is_filtered(pid);
        if env.config.sandbox && !(hello.sandboxed && filtered) {
            let _ = child.start_kill();
            return Err(format!(
                "worker {} runs without its sandbox (it reports sandboxed={}; /proc/{pid}/status shows a seccomp filter: {filtered})",
                args.name, hello.sandboxed
            ));
        }
        let (out, out_rx) = mpsc::unbounded_channel::<Frame>();
        let cache_backlog = Arc::new(AtomicUsize::new(0));
        let link = Arc::new(Link {
            name: args.name.clone(),
            pid,
            sandboxed: hello.sandboxed,
            started: Instant::now(),
            out,
            state: Mutex::default(),
            next_id: AtomicU64::new(1),
            kill_reason: Mutex::default(),
            last_pong: Mutex::new(Instant::now()),
            requests: AtomicUsize::new(0),
            violations: AtomicU64::new(0),
            last_violation: Mutex::default(),
            cache_backlog: cache_backlog.clone(),
            cache_slots: Arc::new(Semaphore::new(CACHE_TASKS)),
            fetch_bytes: Arc::default(),
            reaped: Default::default(),
            on_stuck: Mutex::default(),
            draining: Default::default(),
        });
        // Writer.
        let backlog = cache_backlog.clone();
        tokio::spawn(write_frames(out_rx, wr, move |f| {
            if f.kind == Kind::CacheData {
                backlog.fetch_sub(f.payload.len(), Ordering::Relaxed);
            }
        }));
        // Stderr relay, keeping the last fatal line.
        let fatal: Arc<Mutex<Option<String>>> = Arc::default();
        let (stderr_done_tx, stderr_done) = oneshot::channel::<()>();
        if let Some(err) = child.stderr.take() {
            let (fatal, name, relay_link) = (fatal.clone(), args.name.clone(), link.clone());
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err);
                let mut line = Vec::new();
                let (mut window, mut relayed, mut dropped) = (Instant::now(), 0u32, 0u64);
                loop {
                    line.clear();
                    match (&mut lines)
                        .take(STDERR_LINE_MAX as u64)
                        .read_until(b'\n', &mut line)
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end();
                            if text.starts_with("isola: fatal") {
                                *lock(&fatal) = Some(text.to_string());
                            } else if text.starts_with(super::sandbox::VIOLATION_LINE) {
                                relay_link.violations.fetch_add(1, Ordering::Relaxed);
                                *lock(&relay_link.last_violation) = Some(text.to_string());
                            }
                            if window.elapsed() >= Duration::from_secs(1) {
                                if dropped > 0 {
                                    eprintln!("[{name}] ({dropped} lines dropped: more than {STDERR_LINES_PER_SEC} a second)");
                                }
                                (window, relayed, dropped) = (Instant::now(), 0, 0);
                            }
                            if relayed < STDERR_LINES_PER_SEC {
                                relayed += 1;
                                eprintln!("[{name}] {text}");
                            } else {
                                dropped += 1;
                            }
                        }
                    }
                }
                let _ = stderr_done_tx.send(());
            });
        }
        // Reader; on its end, the exit report.
        {
            let (link, env) = (link.clone(), env.clone());
            tokio::spawn(async move {
                let why = loop {
                    match read_frame(&mut rd, cap).await {
                        Ok(Some(f)) => {
                            // Code cache work is bounded per worker: the
                            // reader waits (and so does the worker) for a slot.
                            let slot = match f.kind {
                                Kind::CacheGet | Kind::CachePut => {
                                    link.cache_slots.clone().acquire_owned().await.ok()
                                }
                                _ => None,
                            };
                            if let Err(e) = link.on_frame(f, &env, &scope, slot) {
                                break Some(format!("protocol violation: {e}"));
                            }
                        }
                        Ok(None) | Err(super::wire::WireError::Io(_)) => break None,
                        Err(e) => break Some(format!("protocol violation: {e}")),
                    }
                };
                if let Some(why) = why {
                    link.kill(why, Vec::new());
                    let _ = child.start_kill();
                }
                let status =
                    match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
                        Ok(s) => s.ok(),
                        Err(_) => {
                            let _ = child.start_kill();
                            child.wait().await.ok()
                        }
                    };
                link.reaped.store(true, Ordering::SeqCst);
                // Only an abort (a fatal error) or an exit of its own leaves a
                // last stderr line worth waiting for; a kill or a fault
                // answers its requests at once.
                let reported = status.is_some_and(|s| {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().is_some() || s.signal() == Some(libc::SIGABRT)
                });
                if reported && lock(&link.kill_reason).is_none() {
                    let _ = tokio::time::timeout(Duration::from_millis(50), stderr_done).await;
                }
                let fatal = lock(&fatal).take();
                let exit = link.exit_report(status, fatal);
                link.fail_all(&exit.cause);
                on_exit(exit);
            });
        }
        // Monitor: heartbeat, memory ceiling, stuck isolates.
        {
            let (link, config) = (Arc::downgrade(&link), env.config.clone());
            tokio::spawn(async move {
                let mut last_ping = Instant::now();
                let mut ping_id = 0u64;
                loop {
                    tokio::time::sleep(MONITOR_EVERY).await;
                    let Some(link) = link.upgrade() else { return };
                    if lock(&link.state).dead.is_some() {
                        return;
                    }
                    if let Some(rss) = crate::metrics::rss_bytes_of(&link.pid.to_string()) {
                        if rss > config.memory_ceiling_bytes {
                            let suspects = link.in_flight_tenants();
                            link.kill(
                                format!(
                                    "memory ceiling: the worker used {} MiB of resident memory, over its ceiling of {} MiB",
                                    rss >> 20,
                                    config.memory_ceiling_bytes >> 20
                                ),
                                suspects,
                            );
                            return;
                        }
                    }
                    let overdue = {
                        let now = Instant::now();
                        let s = lock(&link.state);
                        s.pending
                            .values()
                            .find(|p| p.deadline < now)
                            .map(|p| p.tenant.clone())
                    };
                    if let Some(t) = overdue {
                        link.kill(
                            format!(
                                "the worker held a request of tenant \"{t}\" {} s past its wall limit",
                                REQUEST_GRACE.as_secs()
                            ),
                            Vec::new(),
                        );
                        return;
                    }
                    let silent = lock(&link.last_pong).elapsed();
                    if silent > config.heartbeat_timeout {
                        link.kill(
                            format!(
                                "unresponsive: no heartbeat answer for {} ms",
                                silent.as_millis()
                            ),
                            Vec::new(),
                        );
                        return;
                    }
                    if last_ping.elapsed() >= PING_EVERY {
                        last_ping = Instant::now();
                        ping_id += 1;
                        let _ = link.out.send(Frame::new(Kind::Ping, ping_id, Bytes::new()));
                    }
                }
            });
        }
        Ok(link)
    }

    /// Kills the worker (SIGKILL); `reason` becomes the exit report's cause.
    pub fn kill(&self, reason: String, suspects: Vec<String>) {
        {
            let mut k = lock(&self.kill_reason);
            if k.is_none() {
                tracing::warn!(worker = %self.name, pid = self.pid, "killing the worker: {reason}");
                *k = Some((reason, suspects));
            }
        }
        if self.reaped.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            if pid > 0 {
                // SAFETY: kill takes plain integers; `pid` is our child, not
                // yet reaped (the reader task reaps it after this).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// Why a worker with a stuck isolate is killed.
    pub fn stuck_reason(tenant: &str, ms: u64) -> String {
        format!("tenant \"{tenant}\"'s isolate ignored termination for {ms} ms past its worker's takeover; the worker process was killed")
    }

    /// Replaces the default reaction to a stuck isolate (kill at once).
    pub fn set_on_stuck(&self, hook: OnStuck) {
        *lock(&self.on_stuck) = Some(hook);
    }

    /// Whether the worker takes no new requests (it is being replaced).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Takes no new requests; kills the worker once every request it has
    /// left is `tenant`'s (or after [`DRAIN_WAIT`]). `false` if it was
    /// draining already.
    pub fn drain_then_kill(self: &Arc<Self>, tenant: &str, reason: String) -> bool {
        if self.draining.swap(true, Ordering::SeqCst) {
            return false;
        }
        let (link, tenant) = (self.clone(), tenant.to_string());
        tokio::spawn(async move {
            let t0 = Instant::now();
            while t0.elapsed() < DRAIN_WAIT {
                let others = lock(&link.state)
                    .pending
                    .values()
                    .any(|p| p.tenant != tenant);
                if !others {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            link.kill(reason, vec![tenant]);
        });
        true
    }

    /// Whether the worker has ended.
    pub fn is_dead(&self) -> bool {
        lock(&self.state).dead.is_some()
    }

    /// System calls the worker's sandbox refused so far, and the last report.
    pub fn violations(&self) -> (u64, Option<String>) {
        (
            self.violations.load(Ordering::Relaxed),
            lock(&self.last_violation).clone(),
        )
    }

    /// Requests on the worker (last heartbeat).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Tenants with a deployment on this worker.
    pub fn tenants(&self) -> Vec<String> {
        let mut t: Vec<String> = lock(&self.state).tenants.iter().cloned().collect();
        t.sort();
        t
    }

    fn in_flight_tenants(&self) -> Vec<String> {
        let s = lock(&self.state);
        let mut t: Vec<String> = s.pending.values().map(|p| p.tenant.clone()).collect();
        t.sort();
        t.dedup();
        t
    }

    fn exit_report(&self, status: Option<std::process::ExitStatus>, fatal: Option<String>) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        let in_flight = self.in_flight_tenants();
        // A name the worker supplied (a fatal-error line, a stuck report) is
        // a hint, never an alibi: every tenant in flight is a suspect too.
        let with = |named: Vec<String>| {
            let mut all = in_flight.clone();
            all.extend(named);
            all.sort();
            all.dedup();
            all
        };
        if let Some((reason, named)) = lock(&self.kill_reason).clone() {
            return Exit {
                pid: self.pid,
                cause: reason,
                suspects: with(named),
            };
        }
        if let Some(line) = fatal {
            let named = line
                .split("while running tenant ")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .map(str::trim)
                .filter(|t| lock(&self.state).tenants.contains(*t))
                .map(str::to_string);
            return Exit {
                pid: self.pid,
                cause: line.trim_start_matches("isola: ").to_string(),
                suspects: with(named.into_iter().collect()),
            };
        }
        let cause = match status {
            Some(s) if s.code() == Some(super::sandbox::VIOLATION_EXIT) => {
                "sandbox violation: a forbidden system call".to_string()
            }
            Some(s) => match s.signal() {
                Some(sig) => format!("killed by signal {} ({})", sig, signal_name(sig)),
                None => format!("exited with status {}", s.code().unwrap_or(-1)),
            },
            None => "ended (status unknown)".to_string(),
        };
        Exit {
            pid: self.pid,
            cause,
            suspects: in_flight,
        }
    }

    fn fail_all(&self, cause: &str) {
        let (pending, validations) = {
            let mut s = lock(&self.state);
            s.dead = Some(cause.to_string());
            for (_, task) in s.fetches.drain() {
                task.abort();
            }
            (
                std::mem::take(&mut s.pending),
                std::mem::take(&mut s.validations),
            )
        };
        for (_, p) in pending {
            p.fail(cause);
        }
        for (_, v) in validations {
            let _ = v.send(Err(format!("the validation worker died: {cause}")));
        }
    }

    fn ensure_deployed(&self, dep: &Deployment) {
        let mut s = lock(&self.state);
        if s.deployed.insert(dep.generation) {
            s.tenants.insert(dep.id.clone());
            s.fetch_policies.insert(
                dep.id.clone(),
                (
                    Arc::new(dep.settings.fetch.clone()),
                    dep.settings.limits.external_memory_bytes,
                ),
            );
            let _ = self
                .out
                .send(Frame::json(Kind::Deploy, 0, &DeployMsg::of(dep)));
        }
    }

    /// Drops a tenant's isolates on this worker.
    pub fn evict(&self, id: &str) {
        {
            let mut s = lock(&self.state);
            s.tenants.remove(id);
            // A tenant no longer placed here may not fetch through it.
            s.fetch_policies.remove(id);
        }
        let _ = self
            .out
            .send(Frame::new(Kind::Evict, 0, id.as_bytes().to_vec()));
    }

    /// Runs a request on this worker.
    pub async fn invoke(
        self: &Arc<Self>,
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        permit: Permit,
    ) -> Result<Reply, DispatchError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let req_credit = body
            .as_ref()
            .map(|_| Arc::new(Semaphore::new(WINDOW as usize)));
        {
            let mut s = lock(&self.state);
            if let Some(cause) = &s.dead {
                return Err(DispatchError::WorkerCrashed {
                    cause: cause.clone(),
                });
            }
            s.pending.insert(
                id,
                Pending {
                    tenant: dep.id.clone(),
                    deadline: Instant::now() + dep.settings.limits.wall + REQUEST_GRACE,
                    req_credit: req_credit.clone(),
                    stage: Stage::Head {
                        max_body: dep.settings.limits.external_memory_bytes,
                        reply,
                        permit,
                    },
                },
            );
        }
        self.ensure_deployed(&dep);
        let msg = InvokeMsg {
            generation: dep.generation,
            method: request.method,
            url: request.url,
            headers: request.headers,
            streamed: body.is_some(),
        };
        let _ = self.out.send(Frame::new(
            Kind::Invoke,
            id,
            invoke_payload(&msg, &request.body),
        ));
        if let (Some(source), Some(credit)) = (body, req_credit) {
            tokio::spawn(pump_request_body(source, credit, self.out.clone(), id));
        }
        rx.await.unwrap_or(Err(DispatchError::Closed))
    }

    /// Validates a deployment on this worker.
    pub async fn validate(
        &self,
        dep: &Deployment,
        smoke: Option<HttpRequest>,
    ) -> Result<(), String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut s = lock(&self.state);
            if let Some(cause) = &s.dead {
                return Err(format!("the validation worker died: {cause}"));
            }
            s.validations.insert(id, tx);
            s.tenants.insert(dep.id.clone());
            s.fetch_policies.insert(
                dep.id.clone(),
                (
                    Arc::new(dep.settings.fetch.clone()),
                    dep.settings.limits.external_memory_bytes,
                ),
            );
        }
        let msg = ValidateMsg {
            deploy: DeployMsg::of(dep),
            smoke,
        };
        let _ = self.out.send(Frame::json(Kind::Validate, id, &msg));
        rx.await
            .unwrap_or_else(|_| Err("the validation worker went away".into()))
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV, a memory fault",
        libc::SIGABRT => "SIGABRT, an abort",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGSYS => "SIGSYS, a forbidden system call",
        libc::SIGTERM => "SIGTERM",
        libc::SIGFPE => "SIGFPE",
        _ => "signal",
    }
}

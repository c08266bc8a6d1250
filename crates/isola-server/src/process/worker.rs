//! The worker process: hosts tenant isolates for a supervisor.
//!
//! Started by the supervisor as the same executable with
//! [`ENV_FD`] (its end of a Unix socket pair) and [`ENV_ARGS`] (JSON
//! [`WorkerArgs`]) set; [`run_if_worker`] at the top of `main` turns the
//! process into a worker. It creates an engine from the base snapshot in the
//! data dir (code cache entries come from the supervisor over the socket),
//! starts a thread [`Pool`], installs the [sandbox](super::sandbox) and
//! then serves frames: deployments, requests with streamed bodies,
//! heartbeats. When the supervisor's socket closes the worker exits.

use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use isola_core::{
    BodyPoll, BodySource, CacheEvent, CacheKey, CacheStats, CodeCacheStore, ConcurrencyGate,
    Engine, EngineConfig, HttpRequest, Output,
};
use tokio::sync::{mpsc, Semaphore};

use super::wire::{
    read_frame, write_frames, DeployMsg, Event, Frame, Hello, InvokeMsg, Kind, LogMsg, Pong,
    ReplyHead, ReplyMeta, ValidateMsg, WireErr, WireOutput, MAX_CHUNK, MAX_TO_WORKER,
    PROTOCOL_VERSION, WINDOW,
};
use crate::dispatch::DispatchError;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::pool::{Deployment, Pool, Reply, WorkerBudget};

/// Environment variable holding the worker's socket descriptor.
pub const ENV_FD: &str = "ISOLA_WORKER_FD";
/// Environment variable holding the worker's [`WorkerArgs`] as JSON.
pub const ENV_ARGS: &str = "ISOLA_WORKER_ARGS";
/// Console bytes a worker holds for its supervisor before it drops lines.
const LOG_BACKLOG_BYTES: usize = 4 << 20;
/// How long a code cache lookup waits for the supervisor.
const CACHE_WAIT: Duration = Duration::from_secs(2);

/// What a worker is told at start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerArgs {
    /// Its name (`isola-worker-N` or `isola-dedicated-TENANT`).
    pub name: String,
    /// Data directory (the base snapshot is read from it before the sandbox).
    pub data_dir: PathBuf,
    /// Isolate threads.
    pub threads: usize,
    /// Its share of the warm-isolate budgets.
    pub prewarm: usize,
    /// Warm isolates at most.
    pub max_warm: usize,
    /// Heap bytes of warm isolates at most.
    pub max_heap: u64,
    /// Requests queued per thread at most.
    pub max_queue: usize,
    /// Whether to install the sandbox.
    pub sandbox: bool,
    /// Whether every thread runs at the lowest priority (nice 19): the
    /// process of a tenant that broke a limit, which, like the penalty
    /// thread in thread mode, only gets the CPU other workers leave.
    #[serde(default)]
    pub low_priority: bool,
}

/// If this process was started as a worker, runs it and exits; otherwise
/// returns at once. Call first thing in `main` (after V8's platform init).
pub fn run_if_worker() {
    let Ok(fd) = std::env::var(ENV_FD) else {
        return;
    };
    let code = match worker_main(&fd) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("isola worker: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn worker_main(fd: &str) -> Result<(), String> {
    let fd: i32 = fd
        .parse()
        .map_err(|_| format!("{ENV_FD} is not a descriptor: {fd:?}"))?;
    let args: WorkerArgs = serde_json::from_str(
        &std::env::var(ENV_ARGS).map_err(|_| format!("{ENV_ARGS} is not set"))?,
    )
    .map_err(|e| format!("{ENV_ARGS}: {e}"))?;
    if args.low_priority {
        // The threads running now (V8's platform threads among them); the
        // ones started later inherit the nice value of the thread that
        // starts them, this one.
        for task in std::fs::read_dir("/proc/self/task")
            .map_err(|e| format!("/proc/self/task: {e}"))?
            .flatten()
        {
            if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
                crate::pool::lower_priority(tid);
            }
        }
    }
    // SAFETY: the supervisor handed this process `fd`, its end of a socket
    // pair, and nothing else in this process owns it.
    let sock = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    sock.set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (out, out_rx) = mpsc::unbounded_channel::<Frame>();
    let waiters: Waiters = Arc::default();
    let cache = ProxyCache {
        out: out.clone(),
        waiters: waiters.clone(),
        next: AtomicU64::new(1),
    };
    let engine = Engine::with_store(
        EngineConfig {
            data_dir: Some(args.data_dir.clone()),
            code_cache: false,
            ..EngineConfig::default()
        },
        Arc::new(cache),
    )
    .map_err(|e| e.to_string())?;
    let backlog = Arc::new(AtomicUsize::new(0));
    let logs = {
        let (out, backlog) = (out.clone(), backlog.clone());
        Arc::new(Logs::forwarding(Box::new(move |tenant, level, message| {
            // A tenant logging in a loop must not fill this process's memory:
            // past the backlog, lines are dropped (the ring keeps only the
            // newest anyway).
            if backlog.load(Ordering::Relaxed) > LOG_BACKLOG_BYTES {
                return;
            }
            let msg = LogMsg {
                tenant: tenant.to_string(),
                level,
                message: message.to_string(),
            };
            let f = Frame::json(Kind::Log, 0, &msg);
            backlog.fetch_add(f.payload.len(), Ordering::Relaxed);
            let _ = out.send(f);
        })))
    };
    let metrics = {
        let out = out.clone();
        Arc::new(Metrics::forwarding(Box::new(move |tenant, cause| {
            let ev = Event::Termination {
                tenant: tenant.to_string(),
                cause: cause.to_string(),
            };
            let _ = out.send(Frame::json(Kind::Event, 0, &ev));
        })))
    };
    let fetch = super::fetch_proxy::WorkerFetch::new(out.clone());
    let pool = Arc::new(Pool::start(
        &engine,
        args.threads.max(1),
        WorkerBudget {
            prewarm: args.prewarm,
            max_warm: args.max_warm.max(1),
            max_heap: args.max_heap,
            probation: false,
            // Subrequests go to the supervisor: this process has no network.
            outbound: Some(crate::pool::FetchClient(Arc::new(fetch.clone()))),
        },
        args.max_queue,
        logs,
        metrics,
        Some({
            // The supervisor places tenants by the trust this process sees earned.
            let out = out.clone();
            Box::new(move |tenant: &str, earned| {
                let ev = Event::Trust {
                    tenant: tenant.to_string(),
                    earned,
                };
                let _ = out.send(Frame::json(Kind::Event, 0, &ev));
            })
        }),
    ));
    if args.sandbox {
        super::sandbox::install().map_err(|e| e.to_string())?;
    }
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        sandboxed: args.sandbox,
    };
    let _ = out.send(Frame::json(Kind::Hello, 0, &hello));
    rt.block_on(serve(sock, pool, out, out_rx, waiters, backlog, fetch));
    Ok(())
}

type Waiters = Arc<Mutex<HashMap<u64, std::sync::mpsc::SyncSender<Option<Vec<u8>>>>>>;

/// Per request: where its streamed body's chunks go, and the credit for its
/// response chunks.
#[derive(Default)]
struct Streams {
    bodies: HashMap<u64, mpsc::UnboundedSender<BodyPoll>>,
    credits: HashMap<u64, Arc<Semaphore>>,
}

type SharedStreams = Arc<Mutex<Streams>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(
    sock: std::os::unix::net::UnixStream,
    pool: Arc<Pool>,
    out: mpsc::UnboundedSender<Frame>,
    out_rx: mpsc::UnboundedReceiver<Frame>,
    waiters: Waiters,
    backlog: Arc<AtomicUsize>,
    fetch: super::fetch_proxy::WorkerFetch,
) {
    let Ok(sock) = tokio::net::UnixStream::from_std(sock) else {
        return;
    };
    let (rd, wr) = sock.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(64 << 10, rd);
    tokio::spawn(async move {
        write_frames(out_rx, wr, |f| {
            if f.kind == Kind::Log {
                backlog.fetch_sub(f.payload.len(), Ordering::Relaxed);
            }
        })
        .await;
        // The supervisor is gone: nothing left to serve.
        std::process::exit(0);
    });
    let streams: SharedStreams = Arc::default();
    let mut deps: HashMap<u64, Arc<Deployment>> = HashMap::new();
    // Per tenant: its newest generation and the one before (requests for
    // that one may still be on their way).
    let mut latest: HashMap<String, (u64, Option<u64>)> = HashMap::new();
    loop {
        let frame = match read_frame(&mut rd, |k| (!k.from_worker()).then_some(MAX_TO_WORKER)).await
        {
            Ok(Some(f)) => f,
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("isola worker: {e}; exiting");
                std::process::exit(1);
            }
        };
        match frame.kind {
            Kind::Deploy => match frame.parse::<DeployMsg>() {
                Ok(m) => {
                    let dep = deployment(m);
                    let entry = latest
                        .entry(dep.id.clone())
                        .or_insert((dep.generation, None));
                    if entry.0 != dep.generation {
                        if let Some(oldest) = entry.1.replace(entry.0) {
                            deps.remove(&oldest);
                        }
                        entry.0 = dep.generation;
                    }
                    deps.insert(dep.generation, dep);
                }
                Err(e) => eprintln!("isola worker: {e}"),
            },
            Kind::Invoke => {
                let id = frame.id;
                match invoke_msg(&frame.payload) {
                    Ok((m, body)) => {
                        let Some(dep) = deps.get(&m.generation).cloned() else {
                            let head = failed_head(WireErr::Internal(format!(
                                "deployment {} is not known to this worker",
                                m.generation
                            )));
                            let _ = out.send(Frame::json(Kind::Head, id, &head));
                            continue;
                        };
                        #[cfg(feature = "test-hooks")]
                        test_hooks::on_request(&m.url, &dep.id);
                        let source: Option<Box<dyn BodySource>> = if m.streamed {
                            let (tx, rx) = mpsc::unbounded_channel();
                            lock(&streams).bodies.insert(id, tx);
                            Some(Box::new(ChannelSource {
                                id,
                                rx,
                                out: out.clone(),
                                done: false,
                            }))
                        } else {
                            None
                        };
                        let request = HttpRequest {
                            method: m.method,
                            url: m.url,
                            headers: m.headers,
                            body,
                        };
                        let credit = Arc::new(Semaphore::new(WINDOW as usize));
                        lock(&streams).credits.insert(id, credit.clone());
                        tokio::spawn(run_request(
                            pool.clone(),
                            dep,
                            request,
                            source,
                            id,
                            out.clone(),
                            credit,
                            streams.clone(),
                        ));
                    }
                    Err(e) => {
                        let head = failed_head(WireErr::Internal(e));
                        let _ = out.send(Frame::json(Kind::Head, id, &head));
                    }
                }
            }
            Kind::ReqChunk | Kind::ReqEnd | Kind::ReqError => {
                let mut s = lock(&streams);
                let item = match frame.kind {
                    Kind::ReqChunk => BodyPoll::Chunk(frame.payload.to_vec()),
                    Kind::ReqEnd => BodyPoll::End,
                    _ => BodyPoll::Error(String::from_utf8_lossy(&frame.payload).into_owned()),
                };
                let last = !matches!(item, BodyPoll::Chunk(_));
                if let Some(tx) = s.bodies.get(&frame.id) {
                    let _ = tx.send(item);
                }
                if last {
                    s.bodies.remove(&frame.id);
                }
            }
            Kind::RespCredit => {
                if let (Ok(n), Some(sem)) = (
                    frame.credit_count(),
                    lock(&streams).credits.get(&frame.id).cloned(),
                ) {
                    sem.add_permits((n as usize).min(WINDOW as usize));
                }
            }
            Kind::Cancel => {
                if let Some(sem) = lock(&streams).credits.remove(&frame.id) {
                    sem.close();
                }
            }
            Kind::Evict => {
                let id = String::from_utf8_lossy(&frame.payload).into_owned();
                if let Some((g, prev)) = latest.remove(&id) {
                    deps.remove(&g);
                    if let Some(p) = prev {
                        deps.remove(&p);
                    }
                }
                pool.evict(&id);
            }
            Kind::FetchDone => fetch.deliver(&frame),
            Kind::CacheData => {
                if let Some(w) = lock(&waiters).remove(&frame.id) {
                    let data = (!frame.payload.is_empty()).then(|| frame.payload.to_vec());
                    let _ = w.try_send(data);
                }
            }
            Kind::Ping => {
                let pong = Pong {
                    requests: pool.requests(),
                    stuck: pool
                        .stuck()
                        .map(|(t, d)| (t, d.as_millis().min(u64::MAX as u128) as u64)),
                };
                let _ = out.send(Frame::json(Kind::Pong, frame.id, &pong));
            }
            Kind::Validate => {
                let id = frame.id;
                match frame.parse::<ValidateMsg>() {
                    Ok(m) => {
                        let (pool, out) = (pool.clone(), out.clone());
                        let dep = deployment(m.deploy);
                        tokio::spawn(async move {
                            let r = pool.validate(dep, m.smoke).await;
                            let _ = out.send(Frame::json(Kind::Validated, id, &r));
                        });
                    }
                    Err(e) => {
                        let r: Result<(), String> = Err(e.to_string());
                        let _ = out.send(Frame::json(Kind::Validated, id, &r));
                    }
                }
            }
            other => eprintln!("isola worker: unexpected {other:?} frame ignored"),
        }
    }
}

fn deployment(m: DeployMsg) -> Arc<Deployment> {
    Arc::new(Deployment {
        gate: ConcurrencyGate::new(&m.id, u32::MAX),
        id: m.id,
        version: m.version,
        generation: m.generation,
        // The supervisor places tenants; this process has no probation worker.
        restored: false,
        settings: Arc::new(m.settings),
        code: Arc::new(m.code),
    })
}

/// An Invoke payload: u32 LE JSON length, the JSON, the inline body.
fn invoke_msg(payload: &[u8]) -> Result<(InvokeMsg, Vec<u8>), String> {
    let n = payload
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_le_bytes(b) as usize)
        .ok_or("invoke frame too short")?;
    let json = payload.get(4..4 + n).ok_or("invoke frame too short")?;
    let m: InvokeMsg = serde_json::from_slice(json).map_err(|e| format!("invoke frame: {e}"))?;
    Ok((m, payload[4 + n..].to_vec()))
}

/// Builds an Invoke payload (the supervisor's side of [`invoke_msg`]).
pub(super) fn invoke_payload(m: &InvokeMsg, body: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(m).unwrap_or_default();
    let mut p = Vec::with_capacity(4 + json.len() + body.len());
    p.extend_from_slice(&(json.len() as u32).to_le_bytes());
    p.extend_from_slice(&json);
    p.extend_from_slice(body);
    p
}

fn failed_head(e: WireErr) -> ReplyHead {
    ReplyHead {
        result: Err(e),
        meta: ReplyMeta::default(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_request(
    pool: Arc<Pool>,
    dep: Arc<Deployment>,
    request: HttpRequest,
    body: Option<Box<dyn BodySource>>,
    id: u64,
    out: mpsc::UnboundedSender<Frame>,
    credit: Arc<Semaphore>,
    streams: SharedStreams,
) {
    let permit = match dep.gate.try_acquire() {
        Ok(p) => p,
        Err(e) => {
            let _ = out.send(Frame::json(Kind::Head, id, &failed_head(e.into())));
            return;
        }
    };
    let reply = pool.invoke(dep, request, body, permit).await;
    let (head, body) = match reply {
        Err(e) => (failed_head(dispatch_err(e)), None),
        Ok(r) => head_of(r),
    };
    let _ = out.send(Frame::json(Kind::Head, id, &head));
    match body {
        Some(Body::Full(bytes)) => {
            let mut rest = Bytes::from(bytes);
            let mut ok = true;
            while !rest.is_empty() && ok {
                let n = rest.len().min(MAX_CHUNK);
                let chunk = rest.split_to(n);
                ok = send_chunk(&credit, &out, id, chunk).await;
            }
            let end = if ok { Kind::RespEnd } else { Kind::RespError };
            let _ = out.send(Frame::new(end, id, Bytes::new()));
        }
        Some(Body::Stream(mut rx)) => loop {
            match rx.recv().await {
                Some(Ok(mut b)) => {
                    let mut ok = true;
                    while !b.is_empty() && ok {
                        let n = b.len().min(MAX_CHUNK);
                        ok = send_chunk(&credit, &out, id, b.split_to(n)).await;
                    }
                    if !ok {
                        // The client went away: dropping `rx` cancels the
                        // tenant's stream on its worker thread; the
                        // supervisor forgets the request.
                        let _ = out.send(Frame::new(Kind::RespError, id, &b"cancelled"[..]));
                        break;
                    }
                }
                Some(Err(e)) => {
                    let _ = out.send(Frame::new(Kind::RespError, id, e.to_string().into_bytes()));
                    break;
                }
                None => {
                    let _ = out.send(Frame::new(Kind::RespEnd, id, Bytes::new()));
                    break;
                }
            }
        },
        None => {}
    }
    let mut s = lock(&streams);
    s.credits.remove(&id);
    s.bodies.remove(&id);
}

/// Sends one chunk once the supervisor has granted credit; `false` when the
/// stream was cancelled.
async fn send_chunk(
    credit: &Semaphore,
    out: &mpsc::UnboundedSender<Frame>,
    id: u64,
    chunk: Bytes,
) -> bool {
    match credit.acquire().await {
        Ok(p) => {
            p.forget();
            out.send(Frame::new(Kind::RespChunk, id, chunk)).is_ok()
        }
        Err(_) => false,
    }
}

enum Body {
    Full(Vec<u8>),
    Stream(mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

fn dispatch_err(e: DispatchError) -> WireErr {
    match e {
        DispatchError::Overloaded => WireErr::Overloaded,
        DispatchError::Suspended(d) => WireErr::Suspended(d.as_millis() as u64),
        other => WireErr::Internal(format!("{other:?}")),
    }
}

fn head_of(r: Reply) -> (ReplyHead, Option<Body>) {
    let mut body = None;
    let mut meta = ReplyMeta {
        cold: r.cold,
        prewarmed: r.prewarmed,
        cache: r.cache,
        heap_bytes: r.heap_bytes,
        ..ReplyMeta::default()
    };
    let result = match r.result {
        Ok(inv) => {
            meta.cpu_us = inv.cpu.as_micros() as u64;
            meta.wall_us = inv.wall.as_micros() as u64;
            match inv.output {
                Output::Response(resp) => {
                    let streamed = resp.streamed && r.body.is_some();
                    body = Some(match (streamed, r.body) {
                        (true, Some(rx)) => Body::Stream(rx),
                        _ => Body::Full(resp.body),
                    });
                    Ok(WireOutput::Response {
                        status: resp.status,
                        headers: resp.headers,
                        streamed,
                    })
                }
                other => {
                    let d = format!("{other:?}");
                    Ok(WireOutput::Other(crate::logs::prefix(&d, 200).to_string()))
                }
            }
        }
        Err(e) => Err(e.into()),
    };
    (ReplyHead { result, meta }, body)
}

/// A streamed request body fed by [`Kind::ReqChunk`] frames; each chunk
/// taken grants the supervisor one more.
struct ChannelSource {
    id: u64,
    rx: mpsc::UnboundedReceiver<BodyPoll>,
    out: mpsc::UnboundedSender<Frame>,
    done: bool,
}

impl BodySource for ChannelSource {
    fn poll(&mut self) -> BodyPoll {
        if self.done {
            return BodyPoll::End;
        }
        match self.rx.try_recv() {
            Ok(BodyPoll::Chunk(c)) => {
                let _ = self.out.send(Frame::credit(Kind::ReqCredit, self.id, 1));
                BodyPoll::Chunk(c)
            }
            Ok(other) => {
                self.done = true;
                other
            }
            Err(mpsc::error::TryRecvError::Empty) => BodyPoll::Pending,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                self.done = true;
                BodyPoll::Error("the request body was cut off".into())
            }
        }
    }
}

/// The worker's code cache: entries live with the supervisor, which scopes
/// them to this worker and authenticates them at rest.
struct ProxyCache {
    out: mpsc::UnboundedSender<Frame>,
    waiters: Waiters,
    next: AtomicU64,
}

impl CodeCacheStore for ProxyCache {
    fn get(&self, key: &CacheKey) -> isola_core::Result<Option<Vec<u8>>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        lock(&self.waiters).insert(id, tx);
        let sent = self.out.send(Frame::new(
            Kind::CacheGet,
            id,
            key.as_str().as_bytes().to_vec(),
        ));
        let got = if sent.is_ok() {
            rx.recv_timeout(CACHE_WAIT).ok().flatten()
        } else {
            None
        };
        lock(&self.waiters).remove(&id);
        Ok(got)
    }

    fn put(&self, key: &CacheKey, data: &[u8]) -> isola_core::Result<()> {
        if data.is_empty() || data.len() > super::wire::MAX_WORKER_CACHE_ENTRY {
            return Ok(());
        }
        let mut p = Vec::with_capacity(64 + data.len());
        p.extend_from_slice(key.as_str().as_bytes());
        p.extend_from_slice(data);
        let _ = self.out.send(Frame::new(Kind::CachePut, 0, p));
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> isola_core::Result<()> {
        // A put without data removes the entry.
        let _ = self.out.send(Frame::new(
            Kind::CachePut,
            0,
            key.as_str().as_bytes().to_vec(),
        ));
        Ok(())
    }

    fn record(&self, _event: CacheEvent) -> isola_core::Result<()> {
        // The supervisor counts outcomes from each reply's `cache` list.
        Ok(())
    }

    fn stats(&self) -> isola_core::Result<CacheStats> {
        Ok(CacheStats::default())
    }

    fn purge(&self) -> isola_core::Result<u64> {
        Ok(0)
    }
}

/// Crash hooks for isola-server's own tests (feature `test-hooks`, never in
/// a release build): a request whose URL names one makes the worker process
/// fail that way, from its native side.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    pub(super) fn on_request(url: &str, tenant: &str) {
        if url.contains("__isola_test_segv") {
            // SAFETY: restoring the default action and raising a signal in
            // this process; it ends the process, as the test wants.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
        } else if url.contains("__isola_test_fatal") {
            // What V8's fatal-error handler prints, then the abort V8 does.
            eprintln!("isola: fatal V8 error while running tenant {tenant}: test hook (test:0); the process aborts");
            std::process::abort();
        } else if url.contains("__isola_test_open") {
            let path = c"/etc/hostname";
            // SAFETY: a NUL-terminated path; the result is only compared.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
            eprintln!("isola worker: test hook: open returned {fd}");
        } else if url.contains("__isola_test_socket") {
            // SAFETY: plain integer arguments; the result is only compared.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            eprintln!("isola worker: test hook: socket returned {fd}");
        } else if url.contains("__isola_test_grow") {
            // Touch memory until the supervisor's ceiling stops the process.
            std::thread::spawn(|| {
                let mut hold: Vec<Vec<u8>> = Vec::new();
                for _ in 0..256 {
                    hold.push(vec![1u8; 32 << 20]);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                drop(hold);
            });
        } else if url.contains("__isola_test_garbage") {
            // An oversized frame header on the supervisor socket (fd 3), as a
            // compromised worker could send.
            let mut f = u32::MAX.to_le_bytes().to_vec();
            f.push(66);
            f.extend_from_slice(&1u64.to_le_bytes());
            // SAFETY: writes an initialised buffer to this process's socket.
            unsafe {
                libc::write(3, f.as_ptr().cast(), f.len());
            }
        } else if url.contains("__isola_test_stop") {
            // SAFETY: stops this process, as the heartbeat test wants.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
    }
}

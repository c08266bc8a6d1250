//! Data-plane connections: the accept loop, the per-listener connection cap
//! and the socket-level timeouts a hostile client cannot outwait.
//!
//! - **Connection cap** ([`ServerConfig::max_connections`]): a semaphore per
//!   listener. A connection past the cap is accepted, answered with a
//!   best-effort `503` written without waiting, and closed at once, so it
//!   neither holds memory nor sits in the kernel backlog ahead of others.
//! - **Header read** ([`ServerConfig::header_read_timeout`]): hyper's own
//!   timer; it runs from the moment the server waits for a request head (a
//!   new connection, or the end of the previous response) until the head is
//!   complete.
//! - **Keep-alive idle** ([`ServerConfig::keep_alive_timeout`]): a connection
//!   with no request in flight that receives no byte for this long is closed.
//! - **Response write** ([`ServerConfig::write_timeout`]): a write to the
//!   client that makes no progress for this long fails the connection; hyper
//!   then drops the response body, which releases the tenant (a streamed
//!   body's channel closes and the worker cancels the tenant's stream).
//!
//! The request-body timeout lives with the body readers in
//! [`crate::dataplane`].
//!
//! [`ServerConfig::max_connections`]: crate::ServerConfig::max_connections
//! [`ServerConfig::header_read_timeout`]: crate::ServerConfig::header_read_timeout
//! [`ServerConfig::keep_alive_timeout`]: crate::ServerConfig::keep_alive_timeout
//! [`ServerConfig::write_timeout`]: crate::ServerConfig::write_timeout

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::dataplane;
use crate::AppState;

/// Connection counters of the data-plane listener (for metrics and tests).
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicUsize,
    rejected: AtomicU64,
    timed_out: AtomicU64,
}

impl ConnStats {
    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at accept because the cap was reached.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Connections closed by the header-read, keep-alive or write timeout.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// What a connection past the cap is told before it is closed.
fn reject_response() -> Vec<u8> {
    let body = r#"{"error":"too_many_connections","message":"the server has too many open connections; retry later"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts data-plane connections until the task is aborted.
pub(crate) async fn serve_data(listener: tokio::net::TcpListener, state: Arc<AppState>) {
    let cap = Arc::new(Semaphore::new(state.config.max_connections));
    let reject = reject_response();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = cap.clone().try_acquire_owned() else {
            state.conns.rejected.fetch_add(1, Ordering::Relaxed);
            // Never waits: a fresh socket's send buffer takes these bytes or
            // the client does without them.
            let _ = stream.try_write(&reject);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let _slot = slot;
            state.conns.open.fetch_add(1, Ordering::Relaxed);
            serve_connection(stream, &state).await;
            state.conns.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_connection(stream: TcpStream, state: &Arc<AppState>) {
    let cfg = &state.config;
    let activity = Arc::new(Activity::default());
    let io = TimedStream {
        inner: stream,
        activity: activity.clone(),
        stats: state.conns.clone(),
        keep_alive: cfg.keep_alive_timeout,
        write_timeout: cfg.write_timeout,
        seen_finished: 0,
        read_since_idle: false,
        idle: None,
        write_stall: None,
    };
    let svc = {
        let state = state.clone();
        hyper::service::service_fn(move |req| {
            let state = state.clone();
            let in_flight = InFlight::begin(activity.clone());
            async move {
                let resp = dataplane::handle(state, req).await?;
                Ok::<_, std::convert::Infallible>(resp.map(|b| dataplane::guard_body(b, in_flight)))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        if e.is_timeout() {
            // hyper's header read timeout (ours count themselves in TimedStream).
            state.conns.timed_out.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!("data-plane connection: {e}");
    }
}

/// Requests in flight on one connection, and how many have finished.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    finished: AtomicU64,
}

/// One request in flight on its connection; ends when its response body is
/// done (or dropped).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream with a keep-alive idle timeout on reads and a no-progress
/// timeout on writes; both fail the connection with `TimedOut`.
struct TimedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
    stats: Arc<ConnStats>,
    keep_alive: Duration,
    write_timeout: Duration,
    /// `finished` as of the last read check; a change means a response ended.
    seen_finished: u64,
    /// Whether a byte arrived since the connection went idle.
    read_since_idle: bool,
    idle: Option<Pin<Box<Sleep>>>,
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl TimedStream {
    fn timed_out(&self, what: &str, d: Duration) -> io::Error {
        self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out after {} ms", d.as_millis()),
        )
    }

    /// Called when a write is pending: fails once the write has made no
    /// progress for `write_timeout`.
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let d = self.write_timeout;
        let sleep = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + d)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.timed_out("writing the response", d)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write_result<T>(
        &mut self,
        r: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => match self.poll_write_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.read_since_idle = true;
                    this.idle = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let finished = this.activity.finished.load(Ordering::Acquire);
                if finished != this.seen_finished {
                    this.seen_finished = finished;
                    this.read_since_idle = false;
                    this.idle = None;
                }
                let idle =
                    this.activity.in_flight.load(Ordering::Acquire) == 0 && !this.read_since_idle;
                if !idle {
                    this.idle = None;
                    return Poll::Pending;
                }
                let d = this.keep_alive;
                let sleep = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + d)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(this.timed_out("idle keep-alive connection", d)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.write_result(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.write_result(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.write_result(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.write_result(r, cx)
    }
}

//! The supervisor ↔ worker protocol: framed, versioned messages over a Unix
//! domain socket.
//!
//! A frame is a 13-byte header (payload length `u32` LE, kind `u8`, stream id
//! `u64` LE) and the payload. Control messages are JSON; body chunks are raw
//! bytes. The worker opens with [`Kind::Hello`] naming [`PROTOCOL_VERSION`];
//! the supervisor closes a worker that speaks another version.
//!
//! The supervisor never trusts a worker: every payload length is checked
//! against the cap of its kind *before* the payload is read (an oversized
//! frame, an unknown kind or bad JSON closes that worker), and ids and
//! tenant names in worker frames are looked up, never used to size or index
//! anything.
//!
//! Bodies flow with credit: a sender may have at most [`WINDOW`] chunks of
//! one stream unacknowledged; the receiver grants more as its consumer (the
//! client connection, or the tenant's `request.body` reader) takes them, so
//! a slow reader slows the writer instead of filling memory, and one slow
//! stream never blocks the socket for the others.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use isola_core::{CacheEvent, ConsoleLevel, Error, JsError, LimitError, Location};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::TenantSettings;

/// Version of this protocol; both sides must agree.
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes of a frame header.
pub const HEADER_LEN: usize = 13;
/// Largest body chunk in a frame.
pub const MAX_CHUNK: usize = 64 << 10;
/// Unacknowledged chunks per stream and direction.
pub const WINDOW: u32 = 16;
/// Largest JSON control message a worker may send.
pub const MAX_WORKER_CONTROL: usize = 1 << 20;
/// Largest code cache entry a worker may send.
pub const MAX_WORKER_CACHE_ENTRY: usize = 64 << 20;
/// Largest frame the supervisor sends (a deploy carries the code).
pub const MAX_TO_WORKER: usize = 256 << 20;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    // Supervisor to worker.
    /// A deployment (JSON [`DeployMsg`]); id 0.
    Deploy = 1,
    /// A request (u32 LE JSON length, JSON [`InvokeMsg`], inline body).
    Invoke = 2,
    /// A chunk of a streamed request body.
    ReqChunk = 3,
    /// The streamed request body ended.
    ReqEnd = 4,
    /// The streamed request body failed (UTF-8 message).
    ReqError = 5,
    /// More response chunks may be sent (u32 LE count).
    RespCredit = 6,
    /// Drop a tenant's isolates (UTF-8 tenant id); id 0.
    Evict = 7,
    /// The answer to a [`Kind::CacheGet`] of the same id: empty for a miss,
    /// else the entry's bytes.
    CacheData = 8,
    /// Heartbeat; the worker answers [`Kind::Pong`] with the same id.
    Ping = 9,
    /// The client went away: stop the response.
    Cancel = 10,
    /// Validate a deployment (JSON [`ValidateMsg`]); answered by [`Kind::Validated`].
    Validate = 11,
    /// The outcome of a [`Kind::FetchStart`] of the same id (see `fetch_proxy`).
    FetchDone = 12,

    // Worker to supervisor.
    /// First frame (JSON [`Hello`]).
    Hello = 64,
    /// A request's outcome (JSON [`ReplyHead`]); body chunks follow.
    Head = 65,
    /// A chunk of a response body.
    RespChunk = 66,
    /// The response body ended.
    RespEnd = 67,
    /// The response body failed (UTF-8 message).
    RespError = 68,
    /// More request body chunks may be sent (u32 LE count).
    ReqCredit = 69,
    /// A console line (JSON [`LogMsg`]).
    Log = 70,
    /// Look up a code cache entry (hex key).
    CacheGet = 71,
    /// Store a code cache entry (64 hex key bytes, then the data).
    CachePut = 72,
    /// Heartbeat answer (JSON [`Pong`]).
    Pong = 73,
    /// Something happened outside a request (JSON [`Event`]).
    Event = 74,
    /// A validation's outcome (JSON `Result<(), String>`).
    Validated = 75,
    /// A tenant's outbound subrequest (see `fetch_proxy`).
    FetchStart = 76,
    /// The subrequest of this id is no longer wanted.
    FetchCancel = 77,
}

impl Kind {
    /// The kind of a byte, if it is one.
    pub fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            1 => Deploy,
            2 => Invoke,
            3 => ReqChunk,
            4 => ReqEnd,
            5 => ReqError,
            6 => RespCredit,
            7 => Evict,
            8 => CacheData,
            9 => Ping,
            10 => Cancel,
            11 => Validate,
            12 => FetchDone,
            64 => Hello,
            65 => Head,
            66 => RespChunk,
            67 => RespEnd,
            68 => RespError,
            69 => ReqCredit,
            70 => Log,
            71 => CacheGet,
            72 => CachePut,
            73 => Pong,
            74 => Event,
            75 => Validated,
            76 => FetchStart,
            77 => FetchCancel,
            _ => return None,
        })
    }

    /// Largest payload the supervisor accepts for a frame of this kind from
    /// a worker; 0 for kinds a worker may not send.
    pub fn worker_cap(self) -> usize {
        use Kind::*;
        match self {
            Hello | Head | Log | Pong | Event | Validated => MAX_WORKER_CONTROL,
            RespChunk => MAX_CHUNK,
            RespEnd => 0,
            RespError => 4096,
            ReqCredit => 4,
            CacheGet => 64,
            CachePut => 64 + MAX_WORKER_CACHE_ENTRY,
            FetchStart => MAX_WORKER_CONTROL + super::fetch_proxy::MAX_FETCH_BODY,
            FetchCancel => 0,
            _ => usize::MAX, // not a worker kind: refused by the caller
        }
    }

    /// Whether a worker may send this kind.
    pub fn from_worker(self) -> bool {
        self as u8 >= 64
    }
}

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// What it is.
    pub kind: Kind,
    /// Request (stream) id, cache lookup id or heartbeat id; 0 when none.
    pub id: u64,
    /// The payload.
    pub payload: Bytes,
}

impl Frame {
    /// A frame.
    pub fn new(kind: Kind, id: u64, payload: impl Into<Bytes>) -> Frame {
        Frame {
            kind,
            id,
            payload: payload.into(),
        }
    }

    /// A frame with a JSON payload.
    pub fn json<T: serde::Serialize>(kind: Kind, id: u64, value: &T) -> Frame {
        // Serialising our own plain types cannot fail; an empty payload
        // would be refused by the reader if it did.
        Frame::new(kind, id, serde_json::to_vec(value).unwrap_or_default())
    }

    /// A credit grant of `n` chunks.
    pub fn credit(kind: Kind, id: u64, n: u32) -> Frame {
        Frame::new(kind, id, n.to_le_bytes().to_vec())
    }

    /// The frame's bytes: header and payload.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(HEADER_LEN + self.payload.len());
        out.put_u32_le(self.payload.len() as u32);
        out.put_u8(self.kind as u8);
        out.put_u64_le(self.id);
        out.put_slice(&self.payload);
    }

    /// The payload as JSON of `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, WireError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| WireError::Malformed(format!("{:?} frame: {e}", self.kind)))
    }

    /// The payload as a credit count.
    pub fn credit_count(&self) -> Result<u32, WireError> {
        let b: [u8; 4] = self.payload[..]
            .try_into()
            .map_err(|_| WireError::Malformed("credit frame is not 4 bytes".into()))?;
        Ok(u32::from_le_bytes(b))
    }
}

/// A broken stream of frames.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error("worker socket: {0}")]
    Io(#[from] std::io::Error),
    /// A frame longer than its kind allows (nothing of it was read).
    #[error("oversized {kind:?} frame from the worker: {len} bytes (at most {cap})")]
    Oversized {
        /// The frame's kind.
        kind: Kind,
        /// Its declared length.
        len: usize,
        /// The cap of that kind.
        cap: usize,
    },
    /// A kind byte that is not one, or not one the sender may send.
    #[error("unknown or misdirected frame kind {0}")]
    BadKind(u8),
    /// A payload that does not parse.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Reads one frame; `Ok(None)` at a clean end of stream. `cap` gives the
/// largest payload accepted per kind (checked before anything is allocated).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: impl Fn(Kind) -> Option<usize>,
) -> Result<Option<Frame>, WireError> {
    let mut head = [0u8; HEADER_LEN];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut h = &head[..];
    let len = h.get_u32_le() as usize;
    let kind_byte = h.get_u8();
    let id = h.get_u64_le();
    let kind = Kind::from_u8(kind_byte).ok_or(WireError::BadKind(kind_byte))?;
    let cap = cap(kind).ok_or(WireError::BadKind(kind_byte))?;
    if len > cap {
        return Err(WireError::Oversized { kind, len, cap });
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame {
        kind,
        id,
        payload: payload.into(),
    }))
}

/// Writes the frames of `rx` to `wr`, batching those already queued into
/// one write (up to 256 KiB); `on_sent` sees each frame as it is encoded.
/// Returns when `rx` closes or a write fails.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Frame>,
    mut wr: W,
    on_sent: impl Fn(&Frame),
) {
    let mut buf = BytesMut::new();
    while let Some(f) = rx.recv().await {
        buf.clear();
        on_sent(&f);
        f.encode(&mut buf);
        while buf.len() < (256 << 10) {
            match rx.try_recv() {
                Ok(f) => {
                    on_sent(&f);
                    f.encode(&mut buf);
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// The worker's first frame.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the worker.
    pub protocol: u32,
    /// Its process id.
    pub pid: u32,
    /// Whether its sandbox is installed.
    pub sandboxed: bool,
}

/// A deployment as the worker needs it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DeployMsg {
    /// Tenant id.
    pub id: String,
    /// Code version.
    pub version: u64,
    /// Deployment generation (what invocations name).
    pub generation: u64,
    /// Settings, secrets included.
    pub settings: TenantSettings,
    /// The code.
    pub code: isola_core::TenantCode,
}

impl DeployMsg {
    /// The message for `dep`.
    pub fn of(dep: &crate::pool::Deployment) -> DeployMsg {
        DeployMsg {
            id: dep.id.clone(),
            version: dep.version,
            generation: dep.generation,
            settings: (*dep.settings).clone(),
            code: (*dep.code).clone(),
        }
    }
}

/// A request, without its body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct InvokeMsg {
    /// Which deployment runs it.
    pub generation: u64,
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Whether the body streams in [`Kind::ReqChunk`] frames (else it is inline).
    pub streamed: bool,
}

/// A validation request.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ValidateMsg {
    /// The candidate deployment.
    pub deploy: DeployMsg,
    /// The smoke request, if any.
    pub smoke: Option<isola_core::HttpRequest>,
}

/// How a request ended, before its body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ReplyHead {
    /// The handler's outcome.
    pub result: Result<WireOutput, WireErr>,
    /// What the request cost and found.
    #[serde(flatten)]
    pub meta: ReplyMeta,
}

/// What a reply head says besides the outcome.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReplyMeta {
    /// CPU time of the handler (µs).
    pub cpu_us: u64,
    /// Wall time of the handler (µs).
    pub wall_us: u64,
    /// Whether the isolate was created for this request.
    pub cold: bool,
    /// Whether that used a pre-created isolate.
    pub prewarmed: bool,
    /// Code cache outcomes of the load.
    pub cache: Vec<CacheEvent>,
    /// Heap bytes after the request.
    pub heap_bytes: u64,
}

/// What the handler returned.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum WireOutput {
    /// A `Response`: its body follows in chunks.
    Response {
        /// Status.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Whether the body is a stream (else it is sent whole, then ends).
        streamed: bool,
    },
    /// Anything else, described.
    Other(String),
}

/// An error on the wire: the core's [`Error`] or a dispatch refusal.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum WireErr {
    /// A syntax error.
    Syntax {
        /// Where.
        location: Location,
        /// What.
        message: String,
    },
    /// An uncaught exception.
    Js(JsError),
    /// A limit.
    Limit(LimitError),
    /// An import that does not resolve.
    Resolve {
        /// Importing file.
        referrer: String,
        /// The specifier.
        specifier: String,
        /// Why.
        reason: String,
    },
    /// A forbidden feature.
    Forbidden {
        /// Tenant.
        tenant: String,
        /// Feature.
        feature: String,
    },
    /// Bad code.
    InvalidCode(String),
    /// The promise never settled.
    NeverSettled,
    /// Anything else (store, I/O, internal), as text.
    Internal(String),
    /// The worker's pool is overloaded.
    Overloaded,
    /// The worker's pool is closing.
    Closed,
    /// The tenant is cooling down after a kill (ms).
    Suspended(u64),
}

impl From<Error> for WireErr {
    fn from(e: Error) -> WireErr {
        match e {
            Error::Syntax { location, message } => WireErr::Syntax { location, message },
            Error::Js(j) => WireErr::Js(j),
            Error::Limit(l) => WireErr::Limit(l),
            Error::Resolve {
                referrer,
                specifier,
                reason,
            } => WireErr::Resolve {
                referrer,
                specifier,
                reason,
            },
            Error::Forbidden { tenant, feature } => WireErr::Forbidden { tenant, feature },
            Error::InvalidCode(m) => WireErr::InvalidCode(m),
            Error::NeverSettled => WireErr::NeverSettled,
            other => WireErr::Internal(other.to_string()),
        }
    }
}

impl WireErr {
    /// Back to the core's error, or the dispatch refusal it stands for.
    pub fn into_error(self) -> Result<Error, crate::dispatch::DispatchError> {
        use crate::dispatch::DispatchError;
        Ok(match self {
            WireErr::Syntax { location, message } => Error::Syntax { location, message },
            WireErr::Js(j) => Error::Js(j),
            WireErr::Limit(l) => Error::Limit(l),
            WireErr::Resolve {
                referrer,
                specifier,
                reason,
            } => Error::Resolve {
                referrer,
                specifier,
                reason,
            },
            WireErr::Forbidden { tenant, feature } => Error::Forbidden { tenant, feature },
            WireErr::InvalidCode(m) => Error::InvalidCode(m),
            WireErr::NeverSettled => Error::NeverSettled,
            WireErr::Internal(m) => Error::Internal(m),
            WireErr::Overloaded => return Err(DispatchError::Overloaded),
            WireErr::Closed => return Err(DispatchError::Closed),
            WireErr::Suspended(ms) => {
                return Err(DispatchError::Suspended(Duration::from_millis(ms)))
            }
        })
    }
}

/// A console line of a tenant.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LogMsg {
    /// Tenant id.
    pub tenant: String,
    /// Level.
    pub level: ConsoleLevel,
    /// The line.
    pub message: String,
}

/// Heartbeat answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Pong {
    /// Requests on the worker's threads now.
    pub requests: usize,
    /// The tenant whose isolate has held a retired worker thread longest
    /// (it ignored termination), and for how long (ms).
    pub stuck: Option<(String, u64)>,
}

/// Something the supervisor should know, outside any request.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A tenant was stopped by a limit outside a request (`ctx.waitUntil`).
    Termination {
        /// Tenant id.
        tenant: String,
        /// The limit.
        cause: String,
    },
    /// A deployment (by generation) earned trust: one request ran to its
    /// end within its limits, its body and `ctx.waitUntil` work included
    /// (`None`: the tenant was stopped by a limit and lost it).
    Trust {
        /// Tenant id.
        tenant: String,
        /// The deployment's generation and code version.
        earned: Option<(u64, u64)>,
    },
}

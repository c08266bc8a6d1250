//! Outbound `fetch()` with process isolation.
//!
//! A sandboxed worker has no network (its seccomp filter refuses `socket`
//! and `connect`), so its tenants' subrequests travel to the supervisor:
//!
//! - worker side, [`WorkerFetch`]: the runtime's [`Outbound`]; each call is a
//!   [`Kind::FetchStart`] frame, answered by a [`Kind::FetchDone`] frame with
//!   the same id ([`WorkerFetch::deliver`]); a call dropped early sends
//!   [`Kind::FetchCancel`];
//! - supervisor side, `Link::start_fetch` (`link/fetch.rs`): runs the
//!   subrequest with the supervisor's [`crate::outbound::Client`] under the
//!   fetch policy of the tenant's deployment as the supervisor sent it to
//!   that worker, never one the worker describes, and only for tenants
//!   placed on that worker.
//!
//! Payloads of both frames: u32 LE JSON length, the JSON, then the body.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use isola_core::outbound::{ByteBudget, Reservation};
use isola_core::{Outbound, OutboundCall, OutboundPoll, OutboundRequest, OutboundResponse};
use tokio::sync::mpsc;

use super::wire::{Frame, Kind};

/// Largest request body a worker may send with a subrequest (bytes).
pub const MAX_FETCH_BODY: usize = 64 << 20;
/// Subrequests in flight at once per worker process.
pub const MAX_FETCHES_PER_WORKER: usize = 256;

/// A subrequest, worker to supervisor.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FetchMsg {
    /// The tenant making it (checked against the worker's placements).
    pub tenant: String,
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Header lines.
    pub headers: Vec<(String, String)>,
    /// Follow redirects.
    pub follow: bool,
    /// Largest body the worker can take (its tenant's ArrayBuffer budget).
    pub max_body_bytes: u64,
}

/// The head of a subrequest's outcome, supervisor to worker; the body follows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FetchDoneMsg {
    /// The response head, or the error message for the tenant.
    pub result: Result<FetchHead, String>,
}

/// A response head.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FetchHead {
    /// Status.
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// URL of the last hop.
    pub url: String,
    /// Whether a redirect was followed.
    pub redirected: bool,
    /// Header lines.
    pub headers: Vec<(String, String)>,
}

/// `u32 LE length | JSON | body`.
pub fn payload<T: serde::Serialize>(m: &T, body: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(m).unwrap_or_default();
    let mut p = Vec::with_capacity(4 + json.len() + body.len());
    p.extend_from_slice(&(json.len() as u32).to_le_bytes());
    p.extend_from_slice(&json);
    p.extend_from_slice(body);
    p
}

/// The JSON and the body of a [`payload`].
pub fn split<T: serde::de::DeserializeOwned>(p: &[u8]) -> Result<(T, &[u8]), String> {
    let n = p
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_le_bytes(b) as usize)
        .ok_or("fetch frame too short")?;
    let json = p
        .get(4..4usize.saturating_add(n))
        .ok_or("fetch frame too short")?;
    let m = serde_json::from_slice(json).map_err(|e| format!("fetch frame: {e}"))?;
    Ok((m, &p[4 + n..]))
}

type Slot = Arc<Mutex<Option<Result<OutboundResponse, String>>>>;
/// A waiting call: where its outcome goes, and the tenant budget its
/// response body is charged to when it arrives.
type Waiting = (Slot, Arc<dyn ByteBudget>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The worker's [`Outbound`]: subrequests go to the supervisor.
#[derive(Clone)]
pub struct WorkerFetch {
    out: mpsc::UnboundedSender<Frame>,
    slots: Arc<Mutex<HashMap<u64, Waiting>>>,
    next: Arc<AtomicU64>,
}

impl WorkerFetch {
    /// Sends frames through `out`.
    pub fn new(out: mpsc::UnboundedSender<Frame>) -> WorkerFetch {
        WorkerFetch {
            out,
            slots: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Hands a [`Kind::FetchDone`] frame to the call waiting for it.
    pub fn deliver(&self, frame: &Frame) {
        let Some((slot, budget)) = lock(&self.slots).remove(&frame.id) else {
            return;
        };
        let result = match split::<FetchDoneMsg>(&frame.payload) {
            Ok((m, body)) => m.result.and_then(|h| {
                let mut charge = Reservation::new(budget);
                if !charge.grow(body.len()) {
                    return Err(format!(
                        "fetch: the {}-byte response body does not fit the tenant's ArrayBuffer memory limit",
                        body.len()
                    ));
                }
                Ok(OutboundResponse {
                    status: h.status,
                    status_text: h.status_text,
                    url: h.url,
                    redirected: h.redirected,
                    headers: h.headers,
                    body: body.to_vec(),
                    body_charge: Some(charge),
                })
            }),
            Err(e) => Err(format!("fetch: {e}")),
        };
        *lock(&slot) = Some(result);
    }
}

struct WorkerCall {
    id: u64,
    slot: Slot,
    owner: WorkerFetch,
    /// The request body's charge, held until the call ends.
    _body_charge: Option<Reservation>,
}

impl OutboundCall for WorkerCall {
    fn poll(&mut self) -> OutboundPoll {
        match lock(&self.slot).take() {
            Some(r) => OutboundPoll::Done(r),
            None => OutboundPoll::Pending,
        }
    }
}

impl Drop for WorkerCall {
    fn drop(&mut self) {
        // Still waiting: the supervisor may stop the subrequest.
        if lock(&self.owner.slots).remove(&self.id).is_some() {
            let _ = self
                .owner
                .out
                .send(Frame::new(Kind::FetchCancel, self.id, Vec::new()));
        }
    }
}

impl Outbound for WorkerFetch {
    fn start(&self, mut req: OutboundRequest) -> Box<dyn OutboundCall> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot: Slot = Arc::default();
        let body_charge = req.body_charge.take();
        if req.body.len() > MAX_FETCH_BODY {
            *lock(&slot) = Some(Err(format!(
                "fetch: a request body larger than {MAX_FETCH_BODY} bytes cannot leave a worker process"
            )));
        } else {
            lock(&self.slots).insert(id, (slot.clone(), req.budget.clone()));
            let msg = FetchMsg {
                tenant: req.tenant,
                method: req.method,
                url: req.url,
                headers: req.headers,
                follow: req.follow_redirects,
                max_body_bytes: req.max_body_bytes as u64,
            };
            let sent = self
                .out
                .send(Frame::new(Kind::FetchStart, id, payload(&msg, &req.body)));
            if sent.is_err() {
                lock(&self.slots).remove(&id);
                *lock(&slot) = Some(Err("fetch: the supervisor is gone".into()));
            }
        }
        Box::new(WorkerCall {
            id,
            slot,
            owner: self.clone(),
            _body_charge: body_charge,
        })
    }
}

//! The supervisor's side of a worker's subrequests (see `fetch_proxy`):
//! each runs on the supervisor's runtime with its HTTP client, under the
//! policy of the tenant's deployment as the supervisor placed it on this
//! worker; the outcome goes back as a [`Kind::FetchDone`] frame.

use std::sync::atomic::AtomicUsize;

use isola_core::outbound::{ByteBudget, Reservation};

use super::*;
use crate::process::fetch_proxy::{
    payload, split, FetchDoneMsg, FetchHead, FetchMsg, MAX_FETCHES_PER_WORKER,
};
use crate::process::wire::MAX_TO_WORKER;

/// Bytes of bodies one worker's subrequests may hold in the supervisor at
/// once (request copies and responses being collected).
pub const MAX_FETCH_BYTES_PER_WORKER: usize = 256 << 20;
/// Largest response body sent back to a worker: it must fit one frame.
pub const MAX_FETCH_RESPONSE_TO_WORKER: usize = MAX_TO_WORKER - (1 << 20);

/// The supervisor-side byte budget of one worker's subrequests.
#[derive(Default)]
pub struct LinkBytes(AtomicUsize);

impl ByteBudget for LinkBytes {
    fn reserve(&self, n: usize) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur
                .checked_add(n)
                .filter(|x| *x <= MAX_FETCH_BYTES_PER_WORKER)
            else {
                return false;
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
    fn release(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Link {
    /// Starts a worker's subrequest; `Err` (a malformed frame) closes the worker.
    pub(super) fn start_fetch(self: &Arc<Self>, f: Frame, env: &LinkEnv) -> Result<(), String> {
        let (msg, body) = split::<FetchMsg>(&f.payload)?;
        let id = f.id;
        let refuse = |why: String| {
            let done = FetchDoneMsg { result: Err(why) };
            let _ = self
                .out
                .send(Frame::new(Kind::FetchDone, id, payload(&done, &[])));
            Ok(())
        };
        let Some(client) = env.fetch.clone() else {
            return refuse("fetch is not available: the supervisor has no HTTP client".into());
        };
        let (policy, ab_limit) = {
            let s = lock(&self.state);
            if s.fetches.len() >= MAX_FETCHES_PER_WORKER {
                drop(s);
                return refuse(format!(
                    "fetch: {MAX_FETCHES_PER_WORKER} subrequests are already in flight in this worker process"
                ));
            }
            match s.fetch_policies.get(&msg.tenant) {
                Some(p) => p.clone(),
                // Only tenants the supervisor placed here may fetch through it.
                None => {
                    return Err(format!(
                        "a subrequest for tenant {:?}, which is not placed on this worker",
                        crate::logs::prefix(&msg.tenant, 64)
                    ))
                }
            }
        };
        let budget: Arc<dyn ByteBudget> = self.fetch_bytes.clone();
        let mut body_charge = Reservation::new(budget.clone());
        if !body_charge.grow(body.len()) {
            return refuse(format!(
                "fetch: this worker's subrequests already hold {MAX_FETCH_BYTES_PER_WORKER} bytes"
            ));
        }
        let req = isola_core::OutboundRequest {
            tenant: msg.tenant,
            method: msg.method,
            url: msg.url,
            headers: msg.headers,
            body: body.to_vec(),
            follow_redirects: msg.follow,
            timeout: std::time::Duration::from_millis(policy.timeout_ms),
            max_body_bytes: (msg
                .max_body_bytes
                .min(policy.max_response_bytes)
                .min(ab_limit) as usize)
                .min(MAX_FETCH_RESPONSE_TO_WORKER),
            policy,
            budget,
            body_charge: Some(body_charge),
        };
        let link = self.clone();
        // Registered before the task can finish (it removes itself to answer).
        let mut s = lock(&self.state);
        let task = tokio::spawn(async move {
            let r = client.run(req).await;
            let (done, body) = match r {
                Ok(resp) => (
                    FetchDoneMsg {
                        result: Ok(FetchHead {
                            status: resp.status,
                            status_text: resp.status_text,
                            url: resp.url,
                            redirected: resp.redirected,
                            headers: resp.headers,
                        }),
                    },
                    resp.body,
                ),
                Err(e) => (FetchDoneMsg { result: Err(e) }, Vec::new()),
            };
            if lock(&link.state).fetches.remove(&id).is_some() {
                let _ = link
                    .out
                    .send(Frame::new(Kind::FetchDone, id, payload(&done, &body)));
            }
        });
        s.fetches.insert(id, task.abort_handle());
        Ok(())
    }

    /// Stops a subrequest the worker no longer wants.
    pub(super) fn cancel_fetch(&self, id: u64) {
        if let Some(task) = lock(&self.state).fetches.remove(&id) {
            task.abort();
        }
    }
}

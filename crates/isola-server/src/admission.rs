//! Per-tenant admission: at most `limits.max_concurrency` requests of a
//! tenant run at once; the ones over it wait, first come first served, in a
//! bounded queue for a bounded time.
//!
//! Each tenant has a `tokio::sync::Semaphore` (fair, so FIFO) sized to its
//! `max_concurrency`. A request takes a semaphore slot (waiting in the queue
//! if there is none), then the tenant's core [`ConcurrencyGate`] permit that
//! the worker holds while the handler runs. The slot is released when the
//! response body is done (it travels with the body), which is after the
//! worker has dropped the core permit in all but a short race; should the
//! gate still be full, the request retries it briefly within its wait
//! budget. A request is refused (`503` + `Retry-After`) only when the queue
//! is full or its wait expires.
//!
//! [`ConcurrencyGate`]: isola_core::ConcurrencyGate

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isola_core::Permit;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::pool::Deployment;

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The tenant's queue already holds `capacity` waiting requests.
    #[error("tenant \"{tenant}\" has {limit} requests in flight and {capacity} waiting; the queue is full")]
    QueueFull {
        /// Tenant id.
        tenant: String,
        /// The tenant's `max_concurrency`.
        limit: u32,
        /// The queue length (server-wide setting).
        capacity: usize,
    },
    /// The request waited the longest allowed without getting a slot.
    #[error("tenant \"{tenant}\" had no free slot (max_concurrency {limit}) within {} ms", max_wait.as_millis())]
    QueueTimeout {
        /// Tenant id.
        tenant: String,
        /// The tenant's `max_concurrency`.
        limit: u32,
        /// The longest wait (server-wide setting).
        max_wait: Duration,
    },
}

/// One tenant's slots and waiters.
struct TenantQueue {
    limit: u32,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// An admitted request: the core permit for the worker and the queue slot,
/// held until the response is done.
pub struct Admitted {
    /// The permit the worker holds while the handler runs.
    pub permit: Permit,
    /// The tenant's queue slot.
    pub slot: OwnedSemaphorePermit,
}

/// First and longest pause before a request with a slot retries a gate the
/// worker has not released yet (doubling in between).
const GATE_RETRY_FIRST: Duration = Duration::from_millis(1);
const GATE_RETRY_MAX: Duration = Duration::from_millis(50);

/// Admission queues of all tenants.
pub struct Admission {
    tenants: Mutex<HashMap<String, Arc<TenantQueue>>>,
    max_queue: usize,
    max_wait: Duration,
}

impl Admission {
    /// Queues of at most `max_queue` waiters per tenant, each waiting at most `max_wait`.
    pub fn new(max_queue: usize, max_wait: Duration) -> Self {
        Admission {
            tenants: Mutex::new(HashMap::new()),
            max_queue,
            max_wait,
        }
    }

    fn queue(&self, id: &str, limit: u32) -> Arc<TenantQueue> {
        let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        match t.get(id) {
            Some(q) if q.limit == limit => q.clone(),
            _ => {
                // New tenant, or its max_concurrency changed: new slots.
                // Requests holding or awaiting the old ones finish on them.
                let q = Arc::new(TenantQueue {
                    limit,
                    slots: Arc::new(Semaphore::new(limit as usize)),
                    waiting: AtomicUsize::new(0),
                });
                t.insert(id.to_string(), q.clone());
                q
            }
        }
    }

    /// Requests of tenant `id` waiting for a slot now.
    pub fn waiting(&self, id: &str) -> usize {
        let t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        t.get(id).map_or(0, |q| q.waiting.load(Ordering::Acquire))
    }

    /// Waits (FIFO, bounded) until `dep`'s tenant has a free slot.
    pub async fn admit(&self, dep: &Deployment) -> Result<Admitted, AdmissionError> {
        let limit = dep.settings.limits.max_concurrency;
        let q = self.queue(&dep.id, limit);
        let deadline = Instant::now() + self.max_wait;
        let timeout = || AdmissionError::QueueTimeout {
            tenant: dep.id.clone(),
            limit,
            max_wait: self.max_wait,
        };
        let slot = match q.slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                let before = q.waiting.fetch_add(1, Ordering::AcqRel);
                let _waiter = Waiter(&q.waiting);
                if before >= self.max_queue {
                    return Err(AdmissionError::QueueFull {
                        tenant: dep.id.clone(),
                        limit,
                        capacity: self.max_queue,
                    });
                }
                match tokio::time::timeout_at(deadline, q.slots.clone().acquire_owned()).await {
                    Ok(Ok(s)) => s,
                    // Timed out, or (never: the semaphore is not closed) closed.
                    _ => return Err(timeout()),
                }
            }
        };
        let mut pause = GATE_RETRY_FIRST;
        loop {
            match dep.gate.try_acquire() {
                Ok(permit) => return Ok(Admitted { permit, slot }),
                Err(_) if Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(GATE_RETRY_MAX);
                }
                Err(_) => return Err(timeout()),
            }
        }
    }
}

/// Counts one waiter while it waits.
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

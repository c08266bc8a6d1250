//! The seam between the data plane and whatever runs tenants' code.
//!
//! The data plane and the admin API talk to a [`Dispatcher`]: it takes a
//! request for a deployed tenant and gives back the handler's [`Reply`].
//! Two implementations exist: [`crate::pool::Pool`] runs isolates on
//! threads of this process (`--isolation thread`), and
//! [`crate::process::ProcessPool`] runs them in sandboxed worker processes
//! (`--isolation process`), each of which runs a `Pool` of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use isola_core::{BodySource, HttpRequest, Permit};

use crate::pool::{Deployment, Reply};

/// A boxed future, as the trait's async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a request could not be run.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchError {
    /// The worker's queue is full.
    Overloaded,
    /// The worker is gone (shutting down).
    Closed,
    /// The tenant broke a limit and is cooling down for this long.
    Suspended(Duration),
    /// The worker process running the request died (`cause` says how:
    /// signal, fatal V8 error, memory ceiling, unresponsive, ...).
    WorkerCrashed {
        /// How the worker ended, in words.
        cause: String,
    },
    /// The tenant kept crashing its worker process and is refused until
    /// `retry_after` has passed or it is deployed again.
    Quarantined {
        /// Why, in words.
        reason: String,
        /// When it may be tried again.
        retry_after: Duration,
    },
}

/// Runs tenants' requests: threads of this process, or worker processes.
pub trait Dispatcher: Send + Sync {
    /// Runs `request` on `dep`'s isolate and waits for the reply.
    fn invoke(
        &self,
        dep: Arc<Deployment>,
        request: HttpRequest,
        body: Option<Box<dyn BodySource>>,
        permit: Permit,
    ) -> BoxFuture<'_, Result<Reply, DispatchError>>;

    /// Loads `dep` in a scratch isolate (and runs the optional smoke
    /// request) before it is stored; `Err` says what is wrong.
    fn validate(
        &self,
        dep: Arc<Deployment>,
        smoke: Option<HttpRequest>,
    ) -> BoxFuture<'_, Result<(), String>>;

    /// Drops a tenant's isolates (after a delete).
    fn evict(&self, id: &str);

    /// Requests being run now (waiting on a worker, running or streaming).
    fn requests(&self) -> usize;

    /// Whether `id` runs apart from other tenants for having broken a limit
    /// (penalty worker, or a worker process of its own after a crash).
    fn is_quarantined(&self, id: &str) -> bool;

    /// What the dispatcher runs, for the admin API (`GET /v1/workers`).
    fn describe(&self) -> serde_json::Value;
}

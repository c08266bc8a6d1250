//! Which tenant versions have shown they run within their limits, and so
//! run on a shared worker rather than on the probation worker.
//!
//! A version earns it with one request that ran to its end within its
//! limits (an exception its own code throws counts; a limit kill does not).
//! A version that was serving when the server started (restored from the
//! store) starts trusted, so a restart does not send every tenant through
//! the one probation worker at once. A kill takes the trust away until the
//! tenant earns it again, whatever the version. Trust is kept per code
//! version: a settings change keeps it, a deploy or rollback does not.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Deployment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This code version ran a request to its end within its limits.
    Proven(u64),
    /// Stopped by a limit since it last did.
    Distrusted,
}

/// Tenants' trust, shared by the threads that place and run requests.
#[derive(Default)]
pub(crate) struct Trust(Mutex<HashMap<String, State>>);

impl Trust {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `dep`'s requests may run on a shared worker.
    pub fn trusted(&self, dep: &Deployment) -> bool {
        match self.lock().get(&dep.id) {
            Some(State::Proven(v)) => *v == dep.version,
            Some(State::Distrusted) => false,
            None => dep.restored,
        }
    }

    /// `dep` ran a request to its end within its limits.
    pub fn record_success(&self, dep: &Deployment) {
        let mut m = self.lock();
        if m.get(&dep.id) != Some(&State::Proven(dep.version)) {
            m.insert(dep.id.clone(), State::Proven(dep.version));
        }
    }

    /// `id` was stopped by a limit.
    pub fn distrust(&self, id: &str) {
        self.lock().insert(id.to_string(), State::Distrusted);
    }

    /// `id` was deleted.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

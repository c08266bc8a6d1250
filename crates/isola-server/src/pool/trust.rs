//! Which tenant deployments have shown they run within their limits, and so
//! run on a shared worker rather than on the probation worker.
//!
//! A deployment earns it with one request that ran to its end within its
//! limits, its streamed body and `ctx.waitUntil` work included (an exception
//! its own code throws counts; a limit kill does not), while the tenant was
//! not quarantined. A kill takes the trust away until the tenant earns it
//! again on the probation worker. Trust is kept per deployment (its
//! generation, unique in the process): a deploy, rollback or settings change
//! starts on probation again, and so does a tenant deleted and created again
//! under the same id. A deployment restored from the store at startup starts
//! trusted when the store says its version had earned it before (see
//! [`crate::store::TenantStore::trusted_versions`]), so a restart does not
//! send every tenant through the one probation worker at once.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Deployment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This deployment (by generation) ran a request to its end within its limits.
    Proven(u64),
    /// Stopped by a limit since it last did.
    Distrusted,
}

/// Told `(tenant, Some((generation, version)))` when a deployment earns
/// trust and `(tenant, None)` when the tenant loses it: to keep it across
/// restarts, or (in a worker process) to tell the supervisor.
pub type TrustSink = Box<dyn Fn(&str, Option<(u64, u64)>) + Send + Sync>;

/// Tenants' trust, shared by the threads that place and run requests.
#[derive(Default)]
pub struct Trust {
    states: Mutex<HashMap<String, State>>,
    sink: Option<TrustSink>,
}

impl Trust {
    /// Trust that reports its changes to `sink`.
    pub fn with_sink(sink: Option<TrustSink>) -> Trust {
        Trust {
            states: Mutex::default(),
            sink,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `dep`'s requests may run on a shared worker.
    pub fn trusted(&self, dep: &Deployment) -> bool {
        match self.lock().get(&dep.id) {
            Some(State::Proven(g)) => *g == dep.generation,
            Some(State::Distrusted) => false,
            None => dep.restored,
        }
    }

    /// `dep` ran a request to its end within its limits (the caller makes
    /// sure the tenant is not quarantined).
    pub fn record_success(&self, dep: &Deployment) {
        self.record(&dep.id, dep.generation, dep.version)
    }

    /// Deployment `generation` (code `version`) of `id` earned trust.
    pub fn record(&self, id: &str, generation: u64, version: u64) {
        let mut m = self.lock();
        if m.get(id) == Some(&State::Proven(generation)) {
            return;
        }
        m.insert(id.to_string(), State::Proven(generation));
        drop(m);
        if let Some(sink) = &self.sink {
            sink(id, Some((generation, version)));
        }
    }

    /// `id` was stopped by a limit.
    pub fn distrust(&self, id: &str) {
        let was = self.lock().insert(id.to_string(), State::Distrusted);
        if was != Some(State::Distrusted) {
            if let Some(sink) = &self.sink {
                sink(id, None);
            }
        }
    }

    /// `id` was deleted.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use isola_core::{ConcurrencyGate, TenantCode};

    use super::*;

    fn dep(id: &str, version: u64, generation: u64, restored: bool) -> Deployment {
        Deployment {
            id: id.into(),
            version,
            generation,
            restored,
            settings: Default::default(),
            code: Arc::new(TenantCode::single("index.js", "export default {}")),
            gate: ConcurrencyGate::new(id, 1),
        }
    }

    #[test]
    fn a_deployment_is_trusted_once_it_earned_it_and_until_a_kill() {
        type Seen = Vec<(String, Option<(u64, u64)>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let sink = {
            let seen = seen.clone();
            Box::new(move |id: &str, e| seen.lock().unwrap().push((id.into(), e)))
        };
        let t = Trust::with_sink(Some(sink));
        let v1 = dep("a", 1, 10, false);
        assert!(!t.trusted(&v1));
        t.record_success(&v1);
        t.record_success(&v1);
        assert!(t.trusted(&v1));
        // Another deployment of the same tenant (a deploy, rollback, settings
        // change, or the tenant deleted and created again) starts over.
        assert!(!t.trusted(&dep("a", 1, 11, false)));
        assert!(!t.trusted(&dep("a", 2, 12, false)));
        t.distrust("a");
        t.distrust("a");
        assert!(!t.trusted(&v1));
        t.record_success(&v1);
        assert!(t.trusted(&v1));
        t.forget("a");
        assert!(!t.trusted(&v1));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                ("a".into(), Some((10, 1))),
                ("a".into(), None),
                ("a".into(), Some((10, 1))),
            ]
        );
    }

    #[test]
    fn a_restored_deployment_is_trusted_until_a_kill() {
        let t = Trust::default();
        let restored = dep("b", 3, 1, true);
        assert!(t.trusted(&restored));
        t.distrust("b");
        assert!(!t.trusted(&restored));
    }
}

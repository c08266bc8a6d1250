//! Placement of tenants on worker processes: the probation worker until a
//! tenant version has answered a request within its limits, then its hashed
//! shared worker; a process of its own when it is `dedicated`, was in flight
//! when a shared worker died, or broke a limit; and the quarantine of a
//! tenant that keeps crashing its own worker.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lock, Inner, Slot};
use crate::dispatch::DispatchError;
use crate::pool::Deployment;

impl Inner {
    /// The slot a tenant runs in; `create` starts a dedicated one if needed.
    /// A version `dep` not trusted yet (see [`crate::pool::trust`]) runs on
    /// the probation worker (`None`: where the tenant's trusted versions run).
    pub(super) fn slot_for(
        self: &Arc<Self>,
        tenant: &str,
        create: bool,
        dep: Option<&Deployment>,
    ) -> Option<Arc<Slot>> {
        if let Some(s) = lock(&self.dedicated).get(tenant) {
            return Some(s.clone());
        }
        let isolated = lock(&self.records).get(tenant).is_some_and(|r| r.isolated);
        if isolated {
            return create.then(|| self.dedicated_slot(tenant));
        }
        if dep.is_some_and(|d| !self.trust.trusted(d)) {
            return Some(self.probation.clone());
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tenant.hash(&mut h);
        Some(self.shared[(h.finish() % self.shared.len() as u64) as usize].clone())
    }

    pub(super) fn dedicated_slot(self: &Arc<Self>, tenant: &str) -> Arc<Slot> {
        let mut d = lock(&self.dedicated);
        if let Some(s) = d.get(tenant) {
            return s.clone();
        }
        let slot = Slot::new(
            format!("isola-dedicated-{tenant}"),
            Some(tenant.to_string()),
        );
        d.insert(tenant.to_string(), slot.clone());
        drop(d);
        Inner::spawn(self, slot.clone(), Duration::ZERO);
        slot
    }

    /// Moves `tenant` to a worker process of its own (if one is free);
    /// whether it moved now.
    pub(super) fn isolate(&self, tenant: &str) -> bool {
        let mut records = lock(&self.records);
        let isolated = records.values().filter(|r| r.isolated).count();
        if isolated >= self.env.config.max_dedicated {
            return false;
        }
        let r = records.entry(tenant.to_string()).or_default();
        if r.isolated {
            return false;
        }
        r.isolated = true;
        r.broke_limit = true;
        tracing::warn!(
            tenant,
            "broke a limit in a shared worker; it runs in a worker process of its own, at the lowest priority, from now on"
        );
        true
    }

    /// `Err` when the tenant is quarantined (a new version lifts it).
    pub(super) fn check_quarantine(&self, dep: &Deployment) -> Result<(), DispatchError> {
        let mut records = lock(&self.records);
        let Some(r) = records.get_mut(&dep.id) else {
            return Ok(());
        };
        if let Some((until, reason, version)) = &mut r.quarantined {
            if *version == 0 {
                *version = dep.version;
            }
            let now = Instant::now();
            if *until > now && *version == dep.version {
                return Err(DispatchError::Quarantined {
                    reason: reason.clone(),
                    retry_after: *until - now,
                });
            }
            r.quarantined = None;
            r.own_crashes = 0;
        }
        Ok(())
    }
}

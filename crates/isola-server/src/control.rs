//! Serialisation of control-plane changes: one async mutex per tenant (deploy,
//! rollback, settings, delete of one tenant never interleave their "store /
//! move current pointer / update registry" steps) and one lock for route
//! claims (two tenants cannot claim the same host at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, MutexGuard, OwnedMutexGuard};

/// The control-plane locks.
#[derive(Default)]
pub struct ControlLocks {
    tenants: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    routes: AsyncMutex<()>,
}

impl ControlLocks {
    /// Waits for exclusive control of tenant `id` (held until the guard drops).
    pub async fn tenant(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            // Drop locks nobody holds or waits for, so the map stays as small as the activity.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Waits for exclusive control of route claims (take it after [`Self::tenant`]).
    pub async fn routes(&self) -> MutexGuard<'_, ()> {
        self.routes.lock().await
    }
}

//! Which tenants exist, what version each serves, and which hosts route to them.
//!
//! The registry is the serving truth in memory; the store is the durable one.
//! Switching a tenant to a new deployment replaces one `Arc` under a write
//! lock: a request sees either the old or the new version, never a mix.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use isola_core::{ConcurrencyGate, TenantCode};

use crate::config::TenantSettings;
use crate::errors::ApiError;
use crate::pool::Deployment;

struct Entry {
    settings: Arc<TenantSettings>,
    gate: ConcurrencyGate,
    current: Option<Arc<Deployment>>,
}

/// The in-memory registry.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<HashMap<String, Entry>>,
    routes: RwLock<HashMap<String, String>>,
    generation: AtomicU64,
}

impl Registry {
    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn deployment(
        &self,
        id: &str,
        version: u64,
        code: Arc<TenantCode>,
        settings: &Arc<TenantSettings>,
        gate: &ConcurrencyGate,
        restored: bool,
    ) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.to_string(),
            version,
            generation: self.next_generation(),
            restored,
            settings: settings.clone(),
            code,
            gate: gate.clone(),
        })
    }

    /// Sets (or creates) a tenant's settings; a serving tenant keeps its code
    /// and picks up the settings on its next request.
    pub fn put_settings(&self, id: &str, settings: TenantSettings) {
        let settings = Arc::new(settings);
        let gate = ConcurrencyGate::new(id, settings.limits.max_concurrency);
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        // A new deployment: it earns its trust again (see `pool::trust`).
        let current = inner.get(id).and_then(|e| e.current.clone()).map(|d| {
            let code = d.code.clone();
            self.deployment(id, d.version, code, &settings, &gate, false)
        });
        inner.insert(
            id.to_string(),
            Entry {
                settings: settings.clone(),
                gate,
                current,
            },
        );
        drop(inner);
        self.set_routes(id, &settings.routes);
    }

    /// Makes `code` (stored as `version`) the serving deployment.
    pub fn set_current(&self, id: &str, version: u64, code: TenantCode) -> Arc<Deployment> {
        self.make_current(id, version, code, false)
    }

    /// At startup: `code` (stored as `version`) served before the server
    /// started, and serves again; `trusted` when it had earned trust then.
    pub fn restore_current(
        &self,
        id: &str,
        version: u64,
        code: TenantCode,
        trusted: bool,
    ) -> Arc<Deployment> {
        self.make_current(id, version, code, trusted)
    }

    fn make_current(
        &self,
        id: &str,
        version: u64,
        code: TenantCode,
        restored: bool,
    ) -> Arc<Deployment> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let entry = inner.entry(id.to_string()).or_insert_with(|| {
            let settings = Arc::new(TenantSettings::default());
            Entry {
                gate: ConcurrencyGate::new(id, settings.limits.max_concurrency),
                settings,
                current: None,
            }
        });
        let code = Arc::new(code);
        let dep = self.deployment(id, version, code, &entry.settings, &entry.gate, restored);
        entry.current = Some(dep.clone());
        dep
    }

    /// A candidate deployment (not serving) for validating new code.
    pub fn candidate(&self, id: &str, code: TenantCode) -> Arc<Deployment> {
        let (settings, gate) = match self.inner.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            Some(e) => (e.settings.clone(), e.gate.clone()),
            None => {
                let s = Arc::new(TenantSettings::default());
                let g = ConcurrencyGate::new(id, s.limits.max_concurrency);
                (s, g)
            }
        };
        self.deployment(id, 0, Arc::new(code), &settings, &gate, false)
    }

    /// The serving deployment of `id`.
    pub fn current(&self, id: &str) -> Result<Arc<Deployment>, ApiError> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match inner.get(id) {
            None => Err(ApiError::UnknownTenant(id.to_string())),
            Some(e) => e
                .current
                .clone()
                .ok_or_else(|| ApiError::NoCode(id.to_string())),
        }
    }

    /// A tenant's settings, if it exists.
    pub fn settings(&self, id: &str) -> Option<Arc<TenantSettings>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|e| e.settings.clone())
    }

    /// Removes a tenant; returns whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        self.set_routes(id, &[]);
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some()
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there are no tenants.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tenant a custom route (host name) points to.
    pub fn route(&self, host: &str) -> Option<String> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    fn set_routes(&self, id: &str, hosts: &[String]) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.retain(|_, t| t != id);
        for h in hosts {
            routes.insert(h.to_ascii_lowercase(), id.to_string());
        }
    }
}

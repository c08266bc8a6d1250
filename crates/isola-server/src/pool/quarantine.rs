//! Where a tenant's requests run: tenants that broke a limit recently (or
//! held a worker past the turn limit) run on the penalty worker, and after
//! each kill are refused for a cool-down that doubles per kill; a tenant
//! version not trusted yet (see [`super::trust`]) runs on the probation
//! worker; the rest run on the shared workers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use isola_core::Error;

use super::trust::Trust;
use super::Deployment;

use crate::metrics::Metrics;

/// Tenants that broke a limit recently. They run on a separate penalty
/// worker, so well-behaved tenants' workers never run their code again, and
/// after each kill they are refused for a cool-down that doubles per kill.
pub(crate) struct Quarantine {
    entries: std::sync::Mutex<HashMap<String, Penalty>>,
    /// Which tenant versions run on the shared workers.
    pub(super) trust: Trust,
}

/// Which worker serves a tenant's next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Its hashed shared worker.
    Shared,
    /// The probation worker: a new tenant version, or one back from quarantine.
    Probation,
    /// The penalty worker: it broke a limit within [`QUARANTINE_KEEP`].
    Penalty,
}

#[derive(Debug, Clone, Copy)]
struct Penalty {
    kills: u32,
    last_kill: Instant,
    cooldown_until: Instant,
}

/// How long a tenant stays on the penalty worker after its last kill.
const QUARANTINE_KEEP: Duration = Duration::from_secs(60);
/// First cool-down after a kill; doubles per kill up to [`MAX_COOLDOWN`].
const FIRST_COOLDOWN: Duration = Duration::from_millis(250);
const MAX_COOLDOWN: Duration = Duration::from_secs(10);

impl Quarantine {
    /// No tenant quarantined; trust changes go to `sink`.
    pub(super) fn new(sink: Option<super::trust::TrustSink>) -> Quarantine {
        Quarantine {
            entries: std::sync::Mutex::default(),
            trust: Trust::with_sink(sink),
        }
    }

    pub(super) fn record_kill(&self, id: &str) {
        let now = Instant::now();
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let p = e.entry(id.to_string()).or_insert(Penalty {
            kills: 0,
            last_kill: now,
            cooldown_until: now,
        });
        p.kills += 1;
        p.last_kill = now;
        let cooldown = FIRST_COOLDOWN
            .saturating_mul(1 << (p.kills - 1).min(8))
            .min(MAX_COOLDOWN);
        p.cooldown_until = now + cooldown;
        let kills = p.kills;
        drop(e);
        self.trust.distrust(id);
        tracing::warn!(tenant = %id, kills, cooldown_ms = cooldown.as_millis() as u64, "tenant quarantined after a limit kill");
    }

    /// Moves `id` to the penalty worker (no cool-down, no kill counted): it
    /// held a shared worker past the turn limit.
    pub(super) fn demote(&self, id: &str) {
        let now = Instant::now();
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let p = e.entry(id.to_string()).or_insert(Penalty {
            kills: 0,
            last_kill: now,
            cooldown_until: now,
        });
        p.last_kill = now;
        drop(e);
        self.trust.distrust(id);
        tracing::warn!(tenant = %id, "tenant moved to the penalty worker after a long turn");
    }

    /// Where the next request of `dep` runs; `Err(wait)` while it cools
    /// down after a kill.
    pub(super) fn route(&self, dep: &Deployment) -> Result<Route, Duration> {
        let now = Instant::now();
        {
            let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = e.get(&dep.id).copied() {
                if now.duration_since(p.last_kill) <= QUARANTINE_KEEP {
                    if now < p.cooldown_until {
                        return Err(p.cooldown_until - now);
                    }
                    return Ok(Route::Penalty);
                }
                e.remove(&dep.id);
            }
        }
        Ok(match self.trust.trusted(dep) {
            true => Route::Shared,
            false => Route::Probation,
        })
    }

    /// Whether `id` is quarantined now.
    pub fn contains(&self, id: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    pub(super) fn remove(&self, id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.trust.forget(id);
    }
}

/// A kill that no request's reply carries (of `ctx.waitUntil` work after its
/// response, or while a response body streams) is counted and quarantines
/// the tenant like a kill inside a request.
pub(super) fn kill_outside_reply(metrics: &Metrics, quarantine: &Quarantine, id: &str, e: &Error) {
    let cause = match e {
        Error::Limit(l) if l.kind != isola_core::LimitKind::Concurrency => l.kind.name(),
        Error::Forbidden { .. } => "forbidden",
        _ => return,
    };
    metrics.termination(id, cause);
    quarantine.record_kill(id);
}

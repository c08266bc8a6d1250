//! Recent console output per tenant, in bounded rings.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use isola_core::{ConsoleLevel, ConsoleSink};

/// Lines kept per tenant.
pub const RING_LINES: usize = 1000;

/// One console line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// `log` or `error`.
    pub level: ConsoleLevel,
    /// The text (at most 64 KiB).
    pub message: String,
}

/// The rings of all tenants.
#[derive(Default)]
pub struct Logs {
    rings: Mutex<HashMap<String, VecDeque<LogLine>>>,
}

impl Logs {
    /// A console sink appending to `tenant`'s ring.
    pub fn sink(self: &Arc<Self>, tenant: &str) -> ConsoleSink {
        let logs = Arc::clone(self);
        let tenant = tenant.to_string();
        Arc::new(move |level, message| logs.push(&tenant, level, message))
    }

    /// Appends a line (dropping the oldest past [`RING_LINES`]).
    pub fn push(&self, tenant: &str, level: ConsoleLevel, message: &str) {
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if let Ok(mut rings) = self.rings.lock() {
            let ring = rings.entry(tenant.to_string()).or_default();
            if ring.len() >= RING_LINES {
                ring.pop_front();
            }
            ring.push_back(LogLine {
                ts_ms,
                level,
                message: message.to_string(),
            });
        }
    }

    /// The newest `limit` lines, oldest first.
    pub fn recent(&self, tenant: &str, limit: usize) -> Vec<LogLine> {
        let rings = match self.rings.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        rings
            .get(tenant)
            .map(|r| {
                r.iter()
                    .skip(r.len().saturating_sub(limit))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets a tenant's lines.
    pub fn remove(&self, tenant: &str) {
        if let Ok(mut rings) = self.rings.lock() {
            rings.remove(tenant);
        }
    }
}

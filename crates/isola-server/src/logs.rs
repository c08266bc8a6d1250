//! Recent console output per tenant, in rings bounded in lines and in bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use isola_core::{ConsoleLevel, ConsoleSink};

/// Lines kept per tenant.
pub const RING_LINES: usize = 1000;
/// Message bytes kept per tenant (oldest lines are dropped past it).
pub const RING_BYTES: usize = 1 << 20;

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

/// Where a worker process sends its tenants' lines instead of keeping them.
pub type LogForward = Box<dyn Fn(&str, ConsoleLevel, &str) + Send + Sync>;

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary (cutting a `String` at a byte index panics otherwise).
pub fn prefix(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// The rings of all tenants.
#[derive(Default)]
pub struct Logs {
    rings: Mutex<HashMap<String, Ring>>,
    forward: Option<LogForward>,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

impl Logs {
    /// Logs that hand every line to `forward` (a worker process sends them
    /// to its supervisor, which keeps the rings).
    pub fn forwarding(forward: LogForward) -> Logs {
        Logs {
            rings: Mutex::default(),
            forward: Some(forward),
        }
    }

    /// A console sink appending to `tenant`'s ring.
    pub fn sink(self: &Arc<Self>, tenant: &str) -> ConsoleSink {
        let logs = Arc::clone(self);
        let tenant = tenant.to_string();
        Arc::new(move |level, message| logs.push(&tenant, level, message))
    }

    /// Appends a line (dropping the oldest past [`RING_LINES`] or [`RING_BYTES`]).
    pub fn push(&self, tenant: &str, level: ConsoleLevel, message: &str) {
        if let Some(f) = &self.forward {
            return f(tenant, level, message);
        }
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if let Ok(mut rings) = self.rings.lock() {
            let ring = rings.entry(tenant.to_string()).or_default();
            let message = prefix(message, RING_BYTES);
            while !ring.lines.is_empty()
                && (ring.lines.len() >= RING_LINES || ring.bytes + message.len() > RING_BYTES)
            {
                if let Some(old) = ring.lines.pop_front() {
                    ring.bytes -= old.message.len();
                }
            }
            ring.bytes += message.len();
            ring.lines.push_back(LogLine {
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
                r.lines
                    .iter()
                    .skip(r.lines.len().saturating_sub(limit))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_is_bounded_in_bytes_as_well_as_lines() {
        let logs = Logs::default();
        let line = "x".repeat(64 << 10);
        for _ in 0..100 {
            logs.push("t", ConsoleLevel::Log, &line);
        }
        let kept = logs.recent("t", usize::MAX);
        let bytes: usize = kept.iter().map(|l| l.message.len()).sum();
        assert!(bytes <= RING_BYTES, "{bytes}");
        assert_eq!(kept.len(), RING_BYTES / line.len());
        for i in 0..2000 {
            logs.push("u", ConsoleLevel::Log, &i.to_string());
        }
        let kept = logs.recent("u", usize::MAX);
        assert_eq!(kept.len(), RING_LINES);
        assert_eq!(kept.last().unwrap().message, "1999");
    }
}

//! Per-tenant and process-wide metrics, rendered in Prometheus text format.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use isola_core::accounting::{Histogram, HISTOGRAM_BOUNDS_MS};
use isola_core::{CacheEvent, CacheStats};

/// Counters of one tenant.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TenantMetrics {
    /// Requests by HTTP status.
    pub requests: BTreeMap<u16, u64>,
    /// Failed requests by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Limit terminations by limit.
    pub terminations: BTreeMap<String, u64>,
    /// CPU time of handlers.
    pub cpu: Histogram,
    /// Wall time of requests (queueing included).
    pub wall: Histogram,
    /// Heap bytes after the last request.
    pub heap_bytes: u64,
    /// Requests that created the isolate.
    pub cold_starts: u64,
    /// Requests served by a warm isolate.
    pub warm_starts: u64,
    /// Cold starts that used a pre-created blank isolate.
    pub prewarmed_starts: u64,
    /// Code cache hits/misses when loading.
    pub code_cache_hits: u64,
    /// Code cache misses when loading.
    pub code_cache_misses: u64,
}

/// All metrics.
#[derive(Default)]
pub struct Metrics {
    tenants: Mutex<HashMap<String, TenantMetrics>>,
    overloaded: Mutex<u64>,
    unknown_tenant: Mutex<u64>,
}

/// What one request did, for the metrics.
pub struct Observation<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Response status.
    pub status: u16,
    /// Error kind, if failed.
    pub error: Option<&'a str>,
    /// Limit that stopped it, if any.
    pub termination: Option<&'a str>,
    /// Handler CPU.
    pub cpu: Duration,
    /// Request wall time.
    pub wall: Duration,
    /// Cold start?
    pub cold: bool,
    /// Cold start on a pre-created isolate?
    pub prewarmed: bool,
    /// Code cache events of a cold load.
    pub cache: &'a [CacheEvent],
    /// Heap after.
    pub heap_bytes: u64,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, o: Observation<'_>) {
        let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let m = t.entry(o.tenant.to_string()).or_default();
        *m.requests.entry(o.status).or_default() += 1;
        if let Some(e) = o.error {
            *m.errors.entry(e.to_string()).or_default() += 1;
        }
        if let Some(l) = o.termination {
            *m.terminations.entry(l.to_string()).or_default() += 1;
        }
        m.cpu.observe(o.cpu);
        m.wall.observe(o.wall);
        if o.heap_bytes > 0 {
            m.heap_bytes = o.heap_bytes;
        }
        if o.prewarmed {
            m.prewarmed_starts += 1;
        }
        if o.cold {
            m.cold_starts += 1;
        } else {
            m.warm_starts += 1;
        }
        for e in o.cache {
            match e {
                CacheEvent::Hit => m.code_cache_hits += 1,
                _ => m.code_cache_misses += 1,
            }
        }
    }

    /// Counts a request refused for overload.
    pub fn overloaded(&self) {
        *self.overloaded.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    /// Counts a request for an unknown tenant.
    pub fn unknown_tenant(&self) {
        *self
            .unknown_tenant
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += 1;
    }

    /// One tenant's counters.
    pub fn tenant(&self, id: &str) -> TenantMetrics {
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets a deleted tenant.
    pub fn remove(&self, id: &str) {
        self.tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Prometheus text exposition.
    pub fn render(&self, process: &ProcessGauges) -> String {
        let t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<&String> = t.keys().collect();
        ids.sort();
        let mut out = String::new();
        let family = |name: &str, kind: &str, help: &str, out: &mut String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            "isola_requests_total",
            "counter",
            "Requests by tenant and HTTP status.",
            &mut out,
        );
        for id in &ids {
            for (status, n) in &t[*id].requests {
                let _ = writeln!(
                    out,
                    "isola_requests_total{{tenant=\"{id}\",status=\"{status}\"}} {n}"
                );
            }
        }
        family(
            "isola_errors_total",
            "counter",
            "Failed requests by tenant and error kind.",
            &mut out,
        );
        for id in &ids {
            for (kind, n) in &t[*id].errors {
                let _ = writeln!(
                    out,
                    "isola_errors_total{{tenant=\"{id}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        family(
            "isola_terminations_total",
            "counter",
            "Invocations stopped by a limit, by tenant and cause.",
            &mut out,
        );
        for id in &ids {
            for (cause, n) in &t[*id].terminations {
                let _ = writeln!(
                    out,
                    "isola_terminations_total{{tenant=\"{id}\",cause=\"{cause}\"}} {n}"
                );
            }
        }
        family(
            "isola_cpu_seconds_total",
            "counter",
            "CPU time of tenant code (isolate thread).",
            &mut out,
        );
        for id in &ids {
            let _ = writeln!(
                out,
                "isola_cpu_seconds_total{{tenant=\"{id}\"}} {}",
                t[*id].cpu.sum.as_secs_f64()
            );
        }
        family(
            "isola_wall_seconds",
            "histogram",
            "Request wall time by tenant.",
            &mut out,
        );
        for id in &ids {
            histogram(&mut out, "isola_wall_seconds", id, &t[*id].wall);
        }
        family(
            "isola_heap_bytes",
            "gauge",
            "V8 heap in use after the tenant's last request.",
            &mut out,
        );
        for id in &ids {
            let _ = writeln!(
                out,
                "isola_heap_bytes{{tenant=\"{id}\"}} {}",
                t[*id].heap_bytes
            );
        }
        family(
            "isola_starts_total",
            "counter",
            "Requests by isolate state (cold: isolate created).",
            &mut out,
        );
        for id in &ids {
            let _ = writeln!(
                out,
                "isola_starts_total{{tenant=\"{id}\",state=\"cold\"}} {}",
                t[*id].cold_starts
            );
            let _ = writeln!(
                out,
                "isola_starts_total{{tenant=\"{id}\",state=\"warm\"}} {}",
                t[*id].warm_starts
            );
        }
        family(
            "isola_prewarmed_starts_total",
            "counter",
            "Cold starts that took a pre-created blank isolate.",
            &mut out,
        );
        for id in &ids {
            let _ = writeln!(
                out,
                "isola_prewarmed_starts_total{{tenant=\"{id}\"}} {}",
                t[*id].prewarmed_starts
            );
        }
        family(
            "isola_code_cache_lookups_total",
            "counter",
            "Code cache lookups when loading a tenant.",
            &mut out,
        );
        for id in &ids {
            let _ = writeln!(
                out,
                "isola_code_cache_lookups_total{{tenant=\"{id}\",result=\"hit\"}} {}",
                t[*id].code_cache_hits
            );
            let _ = writeln!(
                out,
                "isola_code_cache_lookups_total{{tenant=\"{id}\",result=\"miss\"}} {}",
                t[*id].code_cache_misses
            );
        }
        family("isola_tenants", "gauge", "Tenants deployed.", &mut out);
        let _ = writeln!(out, "isola_tenants {}", process.tenants);
        family(
            "isola_overloaded_total",
            "counter",
            "Requests refused with 503 for overload.",
            &mut out,
        );
        let _ = writeln!(
            out,
            "isola_overloaded_total {}",
            *self.overloaded.lock().unwrap_or_else(|p| p.into_inner())
        );
        family(
            "isola_unknown_tenant_total",
            "counter",
            "Requests for no known tenant (404).",
            &mut out,
        );
        let _ = writeln!(
            out,
            "isola_unknown_tenant_total {}",
            *self
                .unknown_tenant
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        );
        family(
            "isola_process_resident_bytes",
            "gauge",
            "Resident set size of the process.",
            &mut out,
        );
        let _ = writeln!(out, "isola_process_resident_bytes {}", process.rss_bytes);
        if let Some(c) = &process.code_cache {
            family(
                "isola_code_cache_bytes",
                "gauge",
                "Bytes in the code cache store.",
                &mut out,
            );
            let _ = writeln!(out, "isola_code_cache_bytes {}", c.bytes);
            family(
                "isola_code_cache_entries",
                "gauge",
                "Entries in the code cache store.",
                &mut out,
            );
            let _ = writeln!(out, "isola_code_cache_entries {}", c.entries);
        }
        out
    }
}

fn histogram(out: &mut String, name: &str, id: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (i, bound) in HISTOGRAM_BOUNDS_MS.iter().enumerate() {
        cumulative += h.buckets.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{tenant=\"{id}\",le=\"{}\"}} {cumulative}",
            bound / 1000.0
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{tenant=\"{id}\",le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "{name}_sum{{tenant=\"{id}\"}} {}", h.sum.as_secs_f64());
    let _ = writeln!(out, "{name}_count{{tenant=\"{id}\"}} {}", h.count);
}

/// Process-wide gauges sampled at scrape time.
pub struct ProcessGauges {
    /// Tenants deployed.
    pub tenants: usize,
    /// RSS bytes.
    pub rss_bytes: u64,
    /// Code cache store stats.
    pub code_cache: Option<CacheStats>,
}

/// Resident set size of this process (Linux), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

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
    /// Outbound `fetch()` subrequests by outcome (ok, denied, timeout, error).
    pub subrequests: BTreeMap<String, u64>,
}

/// Where a worker process reports terminations outside a request.
pub type TerminationForward = Box<dyn Fn(&str, &str) + Send + Sync>;

/// All metrics.
#[derive(Default)]
pub struct Metrics {
    tenants: Mutex<HashMap<String, TenantMetrics>>,
    forward: Option<TerminationForward>,
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
    /// Metrics of a worker process: terminations outside a request go to
    /// `forward` (the supervisor counts them); the rest is the supervisor's.
    pub fn forwarding(forward: TerminationForward) -> Metrics {
        Metrics {
            forward: Some(forward),
            ..Metrics::default()
        }
    }

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

    /// Counts a termination that happened outside a request (e.g. of
    /// `ctx.waitUntil` work after its response was sent).
    pub fn termination(&self, tenant: &str, cause: &str) {
        if let Some(f) = &self.forward {
            return f(tenant, cause);
        }
        let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let m = t.entry(tenant.to_string()).or_default();
        *m.terminations.entry(cause.to_string()).or_default() += 1;
    }

    /// Counts one outbound `fetch()` subrequest of `tenant` and its outcome.
    pub fn subrequest(&self, tenant: &str, outcome: &str) {
        let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let m = t.entry(tenant.to_string()).or_default();
        *m.subrequests.entry(outcome.to_string()).or_default() += 1;
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
        // A family with one series per tenant and per value of `label`
        // (`None`: one series per tenant).
        let mut per_tenant =
            |name: &str,
             kind: &str,
             help: &str,
             label: Option<&str>,
             series: &dyn Fn(&TenantMetrics) -> Vec<(String, String)>| {
                family(&mut out, name, kind, help);
                for id in &ids {
                    for (value, n) in series(&t[*id]) {
                        let _ = match label {
                            Some(l) => {
                                writeln!(out, "{name}{{tenant=\"{id}\",{l}=\"{value}\"}} {n}")
                            }
                            None => writeln!(out, "{name}{{tenant=\"{id}\"}} {n}"),
                        };
                    }
                }
            };
        let map =
            |m: &BTreeMap<String, u64>| m.iter().map(|(k, n)| (k.clone(), n.to_string())).collect();
        let one = |v: String| vec![(String::new(), v)];
        per_tenant(
            "isola_requests_total",
            "counter",
            "Requests by tenant and HTTP status.",
            Some("status"),
            &|m| {
                m.requests
                    .iter()
                    .map(|(k, n)| (k.to_string(), n.to_string()))
                    .collect()
            },
        );
        per_tenant(
            "isola_errors_total",
            "counter",
            "Failed requests by tenant and error kind.",
            Some("kind"),
            &|m| map(&m.errors),
        );
        per_tenant(
            "isola_terminations_total",
            "counter",
            "Invocations stopped by a limit, by tenant and cause.",
            Some("cause"),
            &|m| map(&m.terminations),
        );
        per_tenant(
            "isola_subrequests_total",
            "counter",
            "Outbound fetch() subrequests by tenant and outcome (ok, denied, timeout, error).",
            Some("outcome"),
            &|m| map(&m.subrequests),
        );
        per_tenant(
            "isola_cpu_seconds_total",
            "counter",
            "CPU time of tenant code (isolate thread).",
            None,
            &|m| one(m.cpu.sum.as_secs_f64().to_string()),
        );
        per_tenant(
            "isola_heap_bytes",
            "gauge",
            "V8 heap in use after the tenant's last request.",
            None,
            &|m| one(m.heap_bytes.to_string()),
        );
        per_tenant(
            "isola_starts_total",
            "counter",
            "Requests by isolate state (cold: isolate created).",
            Some("state"),
            &|m| {
                vec![
                    ("cold".into(), m.cold_starts.to_string()),
                    ("warm".into(), m.warm_starts.to_string()),
                ]
            },
        );
        per_tenant(
            "isola_prewarmed_starts_total",
            "counter",
            "Cold starts that took a pre-created blank isolate.",
            None,
            &|m| one(m.prewarmed_starts.to_string()),
        );
        per_tenant(
            "isola_code_cache_lookups_total",
            "counter",
            "Code cache lookups when loading a tenant.",
            Some("result"),
            &|m| {
                vec![
                    ("hit".into(), m.code_cache_hits.to_string()),
                    ("miss".into(), m.code_cache_misses.to_string()),
                ]
            },
        );
        family(
            &mut out,
            "isola_wall_seconds",
            "histogram",
            "Request wall time by tenant.",
        );
        for id in &ids {
            histogram(&mut out, "isola_wall_seconds", id, &t[*id].wall);
        }
        let overloaded = *self.overloaded.lock().unwrap_or_else(|p| p.into_inner());
        let unknown = *self
            .unknown_tenant
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut gauges = vec![
            (
                "isola_tenants",
                "gauge",
                "Tenants deployed.",
                process.tenants as u64,
            ),
            (
                "isola_worker_requests",
                "gauge",
                "Requests on the worker threads: waiting, running, or streaming a body.",
                process.worker_requests as u64,
            ),
            (
                "isola_overloaded_total",
                "counter",
                "Requests refused with 503 for overload.",
                overloaded,
            ),
            (
                "isola_unknown_tenant_total",
                "counter",
                "Requests for no known tenant (404).",
                unknown,
            ),
            (
                "isola_process_resident_bytes",
                "gauge",
                "Resident set size of the process.",
                process.rss_bytes,
            ),
        ];
        if let Some(c) = &process.code_cache {
            gauges.push((
                "isola_code_cache_bytes",
                "gauge",
                "Bytes in the code cache store.",
                c.bytes,
            ));
            gauges.push((
                "isola_code_cache_entries",
                "gauge",
                "Entries in the code cache store.",
                c.entries,
            ));
        }
        for (name, kind, help, v) in gauges {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
    /// Requests on the workers: waiting, running, or streaming a body.
    pub worker_requests: usize,
    /// RSS bytes.
    pub rss_bytes: u64,
    /// Code cache store stats.
    pub code_cache: Option<CacheStats>,
}

/// Resident set size of this process (Linux), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    rss_bytes_of("self").unwrap_or(0)
}

/// Resident memory of process `pid` (`"self"` or a number), from
/// `/proc/PID/statm`; `None` where it cannot be read.
pub fn rss_bytes_of(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf takes a plain integer.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

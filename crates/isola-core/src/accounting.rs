//! Per-tenant accounting: what each tenant used, read through a typed API.
//!
//! A [`TenantStats`] is updated by the runtime after every invocation and
//! isolate event; callers get a snapshot copy ([`crate::Tenant::stats`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::code_cache::CacheEvent;
use crate::limits::LimitKind;

/// Upper bounds (ms) of the latency histogram buckets; a last bucket is +Inf.
pub const HISTOGRAM_BOUNDS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// A cumulative-bucket histogram of durations.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Counts per bucket of [`HISTOGRAM_BOUNDS_MS`], plus one for +Inf (not cumulative).
    pub buckets: Vec<u64>,
    /// Sum of all observations.
    pub sum: Duration,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, d: Duration) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; HISTOGRAM_BOUNDS_MS.len() + 1];
        }
        let ms = d.as_secs_f64() * 1000.0;
        let i = HISTOGRAM_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(HISTOGRAM_BOUNDS_MS.len());
        self.buckets[i] += 1;
        self.sum += d;
        self.count += 1;
    }
}

/// Heap figures of an isolate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeapUsage {
    /// Bytes of live objects.
    pub used_bytes: u64,
    /// Bytes the heap has reserved.
    pub total_bytes: u64,
    /// The heap limit.
    pub limit_bytes: u64,
    /// Bytes of ArrayBuffer backing stores (counted by isola's allocator).
    pub external_bytes: u64,
}

/// Where a tenant was when a limit stopped it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KillReport {
    /// The limit that fired.
    pub limit: LimitKind,
    /// The JS stack of the running code, captured before terminating (file, line, function).
    pub js_stack: Option<String>,
    /// Heap at that moment.
    pub heap: HeapUsage,
    /// CPU time the invocation had used (ms).
    pub cpu_ms: u64,
    /// Wall time the invocation had used (ms).
    pub wall_ms: u64,
}

impl std::fmt::Display for KillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "stopped for {} after {} ms CPU, {} ms wall; heap {} / {} bytes (limit {}), ArrayBuffers {} bytes",
            self.limit.describe(),
            self.cpu_ms,
            self.wall_ms,
            self.heap.used_bytes,
            self.heap.total_bytes,
            self.heap.limit_bytes,
            self.heap.external_bytes
        )?;
        match &self.js_stack {
            Some(s) => write!(f, "running code:\n{s}"),
            None => write!(f, "running code: (no JS frame on the stack)"),
        }
    }
}

/// Everything accounted for one tenant.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TenantStats {
    /// Invocations started.
    pub invocations: u64,
    /// Invocations that failed, by error kind (`exception`, `cpu`, `heap`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Invocations stopped by a limit, by limit name.
    pub terminations: BTreeMap<String, u64>,
    /// CPU time of the isolate thread while running tenant code.
    pub cpu: Histogram,
    /// Wall time of invocations.
    pub wall: Histogram,
    /// Heap after the last invocation.
    pub heap: HeapUsage,
    /// Highest heap use seen after an invocation.
    pub peak_heap_bytes: u64,
    /// Isolates created for this tenant (first creation and every recreation).
    pub isolate_creations: u64,
    /// Code cache hits.
    pub code_cache_hits: u64,
    /// Code cache misses (including corrupt entries).
    pub code_cache_misses: u64,
    /// Code cache entries V8 rejected.
    pub code_cache_rejections: u64,
    /// Time spent compiling tenant code.
    pub compile_time: Duration,
    /// CPU time of module evaluation at load.
    pub startup_cpu: Duration,
}

impl TenantStats {
    pub(crate) fn record_cache(&mut self, e: CacheEvent) {
        match e {
            CacheEvent::Hit => self.code_cache_hits += 1,
            CacheEvent::Miss | CacheEvent::Corrupt => self.code_cache_misses += 1,
            CacheEvent::Rejected => {
                self.code_cache_rejections += 1;
                self.code_cache_misses += 1;
            }
        }
    }

    pub(crate) fn record_heap(&mut self, heap: HeapUsage) {
        self.heap = heap;
        self.peak_heap_bytes = self.peak_heap_bytes.max(heap.used_bytes);
    }
}

//! Per-tenant budgets: what a tenant may use, with documented defaults.
//!
//! [`Limits`] is plain data; the runtime enforces it (heap limit and
//! near-heap-limit callback, counting ArrayBuffer allocator, CPU/wall
//! watchdog, code size check, concurrency gate).

use std::time::Duration;

/// Which limit a tenant broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// V8 heap bytes.
    Heap,
    /// ArrayBuffer (external) bytes.
    ExternalMemory,
    /// CPU time of one invocation (ms).
    Cpu,
    /// Wall time of one invocation (ms).
    Wall,
    /// CPU time of module evaluation at load (ms).
    StartupCpu,
    /// In-flight invocations.
    Concurrency,
    /// Bytes of tenant source.
    CodeSize,
}

impl LimitKind {
    /// Stable short name (`cpu`, `heap`, ...), used in metrics labels and JSON.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Heap => "heap",
            LimitKind::ExternalMemory => "external_memory",
            LimitKind::Cpu => "cpu",
            LimitKind::Wall => "wall",
            LimitKind::StartupCpu => "startup_cpu",
            LimitKind::Concurrency => "concurrency",
            LimitKind::CodeSize => "code_size",
        }
    }

    /// Human description used in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::Heap => "heap memory",
            LimitKind::ExternalMemory => "ArrayBuffer memory",
            LimitKind::Cpu => "CPU time",
            LimitKind::Wall => "wall time",
            LimitKind::StartupCpu => "startup CPU time",
            LimitKind::Concurrency => "concurrency",
            LimitKind::CodeSize => "code size",
        }
    }

    /// Formats a value in this limit's unit.
    pub fn format_value(self, v: u64) -> String {
        match self {
            LimitKind::Heap | LimitKind::ExternalMemory | LimitKind::CodeSize => format_bytes(v),
            LimitKind::Cpu | LimitKind::Wall | LimitKind::StartupCpu => format!("{v} ms"),
            LimitKind::Concurrency => format!("{v} in-flight invocations"),
        }
    }
}

fn format_bytes(v: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if v >= MIB && v.is_multiple_of(MIB) {
        format!("{} MiB", v / MIB)
    } else if v >= MIB {
        format!("{:.1} MiB", v as f64 / MIB as f64)
    } else {
        format!("{v} bytes")
    }
}

/// A tenant's budgets. `Limits::default()` gives the documented defaults.
///
/// | field | default |
/// |---|---|
/// | `heap_bytes` | 64 MiB |
/// | `external_memory_bytes` | 64 MiB |
/// | `cpu` | 50 ms per invocation |
/// | `wall` | 30 s per invocation |
/// | `startup_cpu` | 500 ms for module evaluation at load |
/// | `max_concurrency` | 16 in-flight invocations |
/// | `code_size_bytes` | 8 MiB of source |
/// | `termination_grace` | 200 ms before an isolate that ignores termination is abandoned |
///
/// Deserialising refuses unknown fields (`{"cpu_ms": 20}` is an error: the
/// field is `cpu`); [`Limits::validate`] checks every value against
/// [`Limits::BOUNDS`] (also in `docs/LIMITS.md`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(
    description = "Per-tenant budgets; missing fields keep their defaults; bounds in docs/LIMITS.md (out of bounds: 422 naming the field)"
)]
pub struct Limits {
    /// Maximum V8 heap (old + young generation) in bytes.
    pub heap_bytes: u64,
    /// Maximum bytes of live ArrayBuffer backing stores.
    pub external_memory_bytes: u64,
    /// CPU time per invocation.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub cpu: Duration,
    /// Wall time per invocation.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub wall: Duration,
    /// CPU time for evaluating the tenant's module at load.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub startup_cpu: Duration,
    /// In-flight invocations per tenant.
    pub max_concurrency: u32,
    /// Bytes of tenant source (all files of a bundle together).
    pub code_size_bytes: u64,
    /// How long a terminated isolate may take to stop before it is abandoned.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub termination_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            heap_bytes: 64 << 20,
            external_memory_bytes: 64 << 20,
            cpu: Duration::from_millis(50),
            wall: Duration::from_secs(30),
            startup_cpu: Duration::from_millis(500),
            max_concurrency: 16,
            code_size_bytes: 8 << 20,
            termination_grace: Duration::from_millis(200),
        }
    }
}

impl Limits {
    /// Limits generous enough for a command-line run or a benchmark.
    pub fn relaxed() -> Self {
        Limits {
            heap_bytes: 512 << 20,
            external_memory_bytes: 512 << 20,
            cpu: Duration::from_secs(60),
            wall: Duration::from_secs(300),
            startup_cpu: Duration::from_secs(60),
            ..Limits::default()
        }
    }
}

/// The accepted range of one [`Limits`] field, in its JSON unit (bytes,
/// milliseconds or invocations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The field's JSON name.
    pub field: &'static str,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

/// A [`Limits`] value outside its [`Bound`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits.{field} is {value}; it must be between {min} and {max}{unit}", field = bound.field, min = bound.min, max = bound.max, unit = unit(bound.field))]
pub struct LimitsError {
    /// The field, its minimum and maximum.
    pub bound: Bound,
    /// The value given.
    pub value: u64,
}

fn unit(field: &str) -> &'static str {
    match field {
        "heap_bytes" | "external_memory_bytes" | "code_size_bytes" => " bytes",
        "max_concurrency" => " in-flight invocations",
        _ => " ms",
    }
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Limits {
    /// Accepted ranges, sane for a machine shared by many tenants.
    pub const BOUNDS: [Bound; 8] = [
        Bound {
            field: "heap_bytes",
            min: 4 * MIB,
            max: 4 * GIB,
        },
        Bound {
            field: "external_memory_bytes",
            min: 0,
            max: 4 * GIB,
        },
        Bound {
            field: "cpu",
            min: 1,
            max: 600_000,
        },
        Bound {
            field: "wall",
            min: 1,
            max: 3_600_000,
        },
        Bound {
            field: "startup_cpu",
            min: 1,
            max: 600_000,
        },
        Bound {
            field: "max_concurrency",
            min: 1,
            max: 10_000,
        },
        Bound {
            field: "code_size_bytes",
            min: 1,
            max: 64 * MIB,
        },
        Bound {
            field: "termination_grace",
            min: 10,
            max: 10_000,
        },
    ];

    /// Each field's value in its JSON unit, in [`Limits::BOUNDS`] order.
    fn values(&self) -> [u64; 8] {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        [
            self.heap_bytes,
            self.external_memory_bytes,
            ms(self.cpu),
            ms(self.wall),
            ms(self.startup_cpu),
            u64::from(self.max_concurrency),
            self.code_size_bytes,
            ms(self.termination_grace),
        ]
    }

    /// Checks every field against [`Limits::BOUNDS`]; the error names the
    /// first field out of range, its value and the bounds.
    pub fn validate(&self) -> Result<(), LimitsError> {
        for (bound, value) in Self::BOUNDS.into_iter().zip(self.values()) {
            if value < bound.min || value > bound.max {
                return Err(LimitsError { bound, value });
            }
        }
        Ok(())
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Counts a tenant's in-flight invocations and refuses new ones past
/// `Limits::max_concurrency` (the server's dispatcher holds a [`Permit`] for
/// every queued or running request). Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct ConcurrencyGate {
    tenant: std::sync::Arc<str>,
    limit: u32,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// One admitted invocation; releases its slot when dropped.
#[derive(Debug)]
pub struct Permit {
    in_flight: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl ConcurrencyGate {
    /// A gate admitting at most `limit` invocations of `tenant` at once.
    pub fn new(tenant: &str, limit: u32) -> Self {
        ConcurrencyGate {
            tenant: tenant.into(),
            limit,
            in_flight: Default::default(),
        }
    }

    /// Admits one more invocation, or fails with [`LimitKind::Concurrency`].
    pub fn try_acquire(&self) -> crate::Result<Permit> {
        use std::sync::atomic::Ordering;
        let mut cur = self.in_flight.load(Ordering::Acquire);
        loop {
            if cur >= self.limit {
                return Err(crate::Error::Limit(crate::LimitError {
                    tenant: self.tenant.to_string(),
                    kind: LimitKind::Concurrency,
                    limit: u64::from(self.limit),
                    used: Some(u64::from(cur)),
                    report: None,
                }));
            }
            match self.in_flight.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Permit {
                        in_flight: self.in_flight.clone(),
                    })
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Invocations admitted and not yet finished.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relaxed_are_within_bounds() {
        Limits::default().validate().unwrap();
        Limits::relaxed().validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Limits>(r#"{"cpu_ms": 20}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `cpu_ms`"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_field_and_bound() {
        let l: Limits = serde_json::from_str(r#"{"wall": 3600001}"#).unwrap();
        let e = l.validate().unwrap_err();
        assert_eq!(e.bound.field, "wall");
        assert_eq!(
            e.to_string(),
            "limits.wall is 3600001; it must be between 1 and 3600000 ms"
        );
        let l: Limits = serde_json::from_str(r#"{"termination_grace": 5}"#).unwrap();
        assert_eq!(l.validate().unwrap_err().bound.field, "termination_grace");
    }
}

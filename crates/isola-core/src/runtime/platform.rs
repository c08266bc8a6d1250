//! Process-wide V8 initialisation.
//!
//! V8's platform is created once per process, on the first
//! [`crate::Engine::new`], which must run on the main thread before any
//! thread that runs an isolate is spawned: on CPUs with memory protection
//! keys, threads created earlier crash the first time they run JIT code.

use std::sync::Once;

/// V8 flags isola runs with. They are part of the snapshot fingerprint and of
/// every code cache key.
///
/// `--stack-size=900`: V8's stack limit in KiB, below the 2 MiB of the
/// threads isola runs isolates on, so deep recursion is a `RangeError`, never
/// a native stack overflow.
///
/// `--no-turboshaft-loop-unrolling`: in V8 14.0, loops that Turboshaft
/// unrolls lose their interrupt checks; a loop such as
/// `for (;;) a.push(new Array(64))` then ignores `TerminateExecution` and
/// runs until the heap is exhausted. Without unrolling every loop back-edge
/// checks for interrupts, so CPU and wall limits hold.
pub const V8_FLAGS: &str = "--stack-size=900 --no-turboshaft-loop-unrolling";

static INIT: Once = Once::new();

/// Initialises V8 once; later calls do nothing.
pub(crate) fn init() {
    INIT.call_once(|| {
        v8::V8::set_flags_from_string(V8_FLAGS);
        let platform = v8::new_default_platform(0, false).make_shared();
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
}

/// The V8 version string, e.g. `14.0.365.5`.
pub fn v8_version() -> &'static str {
    v8::V8::get_version()
}

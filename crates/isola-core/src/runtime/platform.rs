//! Process-wide V8 initialisation: flags, ICU data, the platform, and the
//! handlers for errors V8 cannot recover from.
//!
//! V8's platform is created once per process, on the first
//! [`crate::Engine::new`], which must run on the main thread before any
//! thread that runs an isolate is spawned: on CPUs with memory protection
//! keys, threads created earlier crash the first time they run JIT code.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
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
///
/// `--no-experimental-wasm-jspi`: WebAssembly's promise integration
/// (`WebAssembly.promising`, `Suspending`) gives each suspended call a native
/// stack of its own that no limit counts and no collection frees; a tenant
/// with WebAssembly could exhaust the process's memory mappings with them.
///
/// `--no-maglev`: in V8 14.0 a hot function that tiers up through Maglev
/// can fall back to a slow tier and never reach TurboFan again: a loop that
/// took 3 ms per invocation took 15-18 ms from about the 60th invocation on
/// (`cargo run --release -p isola-core --example hot_function`). Without
/// Maglev, functions go from the baseline tier to TurboFan and stay fast.
pub const V8_FLAGS: &str =
    "--stack-size=900 --no-turboshaft-loop-unrolling --no-experimental-wasm-jspi --no-maglev";

/// The ICU data version loaded before V8 starts (the ICU this V8 build was
/// compiled with). Part of the snapshot fingerprint.
pub const ICU_DATA_VERSION: &str = "icu-74";

static INIT: Once = Once::new();
/// The process's platform, for pumping each isolate's foreground tasks.
static PLATFORM: std::sync::OnceLock<v8::SharedRef<v8::Platform>> = std::sync::OnceLock::new();

/// Most foreground tasks run per [`pump`] call.
const MAX_TASKS_PER_PUMP: usize = 16;

/// Runs the foreground tasks V8 posted for `isolate` (FinalizationRegistry
/// cleanups, which free native state such as compression streams; GC
/// follow-ups), at most a few per call, without waiting. Called from the
/// event loop while the tenant's slice is watched, so a tenant's own
/// FinalizationRegistry callbacks run under its limits.
pub(crate) fn pump(isolate: &v8::Isolate) {
    if let Some(platform) = PLATFORM.get() {
        for _ in 0..MAX_TASKS_PER_PUMP {
            if !v8::Platform::pump_message_loop(platform, isolate, false) {
                break;
            }
        }
    }
}

/// Initialises V8 once; later calls do nothing.
pub(crate) fn init() {
    INIT.call_once(|| {
        // Without ICU data every locale-aware builtin (`Intl.*`,
        // `toLocaleString`, `localeCompare`, `normalize`) is a fatal
        // out-of-memory error that aborts the process. Loaded before V8
        // initialises; the data is a static that lives as long as the process.
        if let Err(code) = v8::icu::set_common_data_74(deno_core_icudata::ICU_DATA) {
            // Not fatal here: V8 still starts; locale-aware calls would abort.
            tracing::error!("could not load ICU data (ICU error {code}); Intl will not work");
        }
        v8::V8::set_flags_from_string(V8_FLAGS);
        // V8 seeds its random number generators (Math.random, hash seeds)
        // from here instead of opening /dev/urandom per isolate, which a
        // sandboxed worker process cannot do (V8 would fall back to a
        // time-based seed).
        v8::V8::set_entropy_source(entropy);
        v8::V8::set_fatal_error_handler(on_fatal_error);
        let platform = v8::new_default_platform(0, false).make_shared();
        let _ = PLATFORM.set(platform.clone());
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`): V8's
/// entropy source, and `crypto.getRandomValues`.
pub(crate) fn fill_random(buf: &mut [u8]) -> bool {
    entropy(buf)
}

fn entropy(buf: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        filled += n as usize;
    }
    true
}

/// The V8 version string, e.g. `14.0.365.5`.
pub fn v8_version() -> &'static str {
    v8::V8::get_version()
}

thread_local! {
    /// The tenant whose isolate this thread has entered, for the last words
    /// of a fatal error.
    static CURRENT_TENANT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records which tenant's isolate the thread runs (see [`CURRENT_TENANT`]).
pub(crate) fn set_current_tenant(tenant: Option<&str>) {
    CURRENT_TENANT.with(|c| {
        let mut c = c.borrow_mut();
        match (tenant, c.as_mut()) {
            (Some(t), Some(cur)) if cur == t => {}
            (Some(t), _) => *c = Some(t.to_string()),
            (None, _) => *c = None,
        }
    });
}

fn current_tenant() -> String {
    CURRENT_TENANT
        .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
        .ok()
        .flatten()
        .unwrap_or_else(|| "(none)".into())
}

/// V8 aborts the process after this returns: say which tenant was running.
fn on_fatal_error(file: &str, line: i32, message: &str) {
    eprintln!(
        "isola: fatal V8 error while running tenant {}: {message} ({file}:{line}); the process aborts",
        current_tenant()
    );
}

/// Per-isolate out-of-memory handler (V8 aborts the process after it).
///
/// # Safety
/// Called by V8 with a NUL-terminated `location` (or null).
pub(crate) unsafe extern "C" fn on_oom(location: *const c_char, details: &v8::OomDetails) {
    let location = if location.is_null() {
        "(unknown)".to_string()
    } else {
        // SAFETY: V8 passes a NUL-terminated C string.
        unsafe { CStr::from_ptr(location) }
            .to_string_lossy()
            .into_owned()
    };
    eprintln!(
        "isola: fatal out of memory ({}) while running tenant {}: {location}; the process aborts",
        if details.is_heap_oom {
            "V8 heap"
        } else {
            "process"
        },
        current_tenant()
    );
}

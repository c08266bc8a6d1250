//! A counting ArrayBuffer allocator, one per isolate.
//!
//! Every ArrayBuffer backing store V8 allocates through the isolate's
//! allocator is counted against the tenant's external memory budget; an
//! allocation that would pass it returns null, which V8 turns into a
//! `RangeError` for the script. Request bodies and their streamed chunks are
//! copied into buffers allocated through the same allocator, so they count too
//! (see `boundary::bytes_to_u8a`).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared counter behind one isolate's allocator.
#[derive(Debug)]
pub(crate) struct AbCounter {
    used: AtomicUsize,
    peak: AtomicUsize,
    limit: AtomicUsize,
    refused: AtomicBool,
}

impl AbCounter {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(AbCounter {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            refused: AtomicBool::new(false),
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Whether `len` more bytes fit the budget now; a `false` counts as a
    /// refusal (as if the allocator had refused them).
    pub fn fits(&self, len: usize) -> bool {
        let ok = self
            .used()
            .checked_add(len)
            .is_some_and(|n| n <= self.limit());
        if !ok {
            self.refused.store(true, Ordering::Relaxed);
        }
        ok
    }

    /// Changes the budget (for an isolate created ahead of its tenant).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Whether an allocation was refused since the last call (and clears it).
    pub fn take_refused(&self) -> bool {
        self.refused.swap(false, Ordering::Relaxed)
    }

    /// Charges `len` bytes if they fit the budget.
    pub(crate) fn reserve(&self, len: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let limit = self.limit.load(Ordering::Relaxed);
            let Some(next) = cur.checked_add(len).filter(|n| *n <= limit) else {
                self.refused.store(true, Ordering::Relaxed);
                return false;
            };
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Returns `len` charged bytes.
    pub(crate) fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::Relaxed);
    }
}

impl crate::outbound::ByteBudget for AbCounter {
    fn reserve(&self, n: usize) -> bool {
        AbCounter::reserve(self, n)
    }
    fn release(&self, n: usize) {
        AbCounter::release(self, n)
    }
}

unsafe extern "C" fn allocate(counter: &AbCounter, len: usize) -> *mut c_void {
    if !counter.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: calloc with a non-zero size (at least 1) has no preconditions.
    let p = unsafe { libc::calloc(len.max(1), 1) };
    if p.is_null() {
        counter.release(len);
    }
    p
}

unsafe extern "C" fn allocate_uninitialized(counter: &AbCounter, len: usize) -> *mut c_void {
    if !counter.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: malloc with a non-zero size (at least 1) has no preconditions.
    let p = unsafe { libc::malloc(len.max(1)) };
    if p.is_null() {
        counter.release(len);
    }
    p
}

unsafe extern "C" fn free(counter: &AbCounter, data: *mut c_void, len: usize) {
    // SAFETY: V8 passes back a pointer this allocator returned (or null), exactly once.
    unsafe { libc::free(data) };
    counter.release(len);
}

unsafe extern "C" fn drop_counter(counter: *const AbCounter) {
    // SAFETY: `counter` came from `Arc::into_raw` in `new_allocator`; V8 calls
    // this once, when the allocator is destroyed.
    drop(unsafe { Arc::from_raw(counter) });
}

static VTABLE: v8::RustAllocatorVtable<AbCounter> = v8::RustAllocatorVtable {
    allocate,
    allocate_uninitialized,
    free,
    drop: drop_counter,
};

/// Creates a V8 allocator counting into `counter`.
pub(crate) fn new_allocator(counter: &Arc<AbCounter>) -> v8::UniqueRef<v8::Allocator> {
    let raw = Arc::into_raw(counter.clone());
    // SAFETY: `raw` is a valid `AbCounter` kept alive by the Arc reference we
    // leaked above until V8 calls `drop_counter`; `VTABLE`'s functions all
    // expect exactly that handle type.
    unsafe { v8::new_rust_allocator(raw, &VTABLE) }
}

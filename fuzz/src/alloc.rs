//! A global allocator that counts live heap bytes and their peak, so that a
//! target can assert "decoding N bytes allocated at most f(N)".
//!
//! Only Rust allocations are counted (the C parts of zstd allocate with
//! libc's `malloc` directly; the zstd window is bounded separately by the
//! decoder's `window_log_max`).
//!
//! A single allocation above [`HARD_LIMIT`] is never attempted: the allocator
//! prints its size and a backtrace and aborts, which libFuzzer reports as a
//! crash and saves the input for. Without this, a wire count used as a
//! capacity would either abort with a bare "memory allocation failed" or be
//! lazily overcommitted and only hit the RSS limit much later.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

/// No decoder in a fuzz target has a reason to ask for this much at once.
pub const HARD_LIMIT: usize = 256 << 20;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

/// The counting allocator (installed in `lib.rs`).
pub struct Counting;

fn added(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn removed(n: usize) {
    CURRENT.fetch_sub(n, Ordering::Relaxed);
}

fn check_size(size: usize) {
    if size <= HARD_LIMIT {
        return;
    }
    // Re-entrant: capturing the backtrace allocates (small amounts).
    if REPORTING.with(|r| r.replace(true)) {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "\n==floe-fuzz== single allocation of {size} bytes (limit {HARD_LIMIT}): \
         a length or count from the input was used before it was checked\n{}",
        std::backtrace::Backtrace::force_capture()
    );
    std::process::abort();
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on atomics; it never unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        removed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                added(new_size - layout.size());
            } else {
                removed(layout.size() - new_size);
            }
        }
        p
    }
}

/// Starts a measurement: the peak is reset to what is live now, which is
/// returned as the baseline.
pub fn start() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Bytes allocated at the peak since [`start`] returned `baseline`.
pub fn peak_since(baseline: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(baseline)
}

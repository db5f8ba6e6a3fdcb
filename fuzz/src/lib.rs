//! Shared parts of Weir's fuzz targets: an allocation guard that turns "allocates more than the
//! input's size allows" into a crash libFuzzer records, and the seed builders that write the
//! checked-in corpus (`fuzz/corpus/<target>/`, see `seeds`).
//!
//! Why a counting allocator rather than libFuzzer's `-malloc_limit_mb`: that flag works through
//! the sanitizer allocator's hooks, so it does nothing in a build without AddressSanitizer (the
//! stable-toolchain build scripts/fuzz.sh makes), and `-rss_limit_mb` only sees a blow-up once
//! the pages are touched. A reservation sized from a hostile count (`Vec::with_capacity(n)`) is
//! caught here at the call, whatever its size and whether or not it is ever touched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod seeds;
mod seeds_cluster;
pub use seeds_cluster::{disk_files_inputs, metadata_inputs};

/// Counts live heap bytes and aborts (libFuzzer saves the input as a crash) when the bytes
/// allocated while an input is decoded exceed that input's bound.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Live bytes when the current input's guard was armed.
static BASELINE: AtomicUsize = AtomicUsize::new(0);
/// Bytes the current input may hold above the baseline; `usize::MAX` when no guard is armed.
static ALLOWANCE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Input length, for the abort message.
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Highest live bytes above the baseline seen for the current input.
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

impl CountingAlloc {
    fn grew(new_live: usize, request: usize) {
        let allowance = ALLOWANCE.load(Ordering::Relaxed);
        if allowance == usize::MAX {
            return;
        }
        let used = new_live.saturating_sub(BASELINE.load(Ordering::Relaxed));
        PEAK.fetch_max(used, Ordering::Relaxed);
        if used > allowance {
            over_allowance(used, request, allowance);
        }
    }

    /// Checked before the system allocator is asked: a multi-gigabyte request must be reported,
    /// not die as an out-of-memory abort that names nothing.
    fn check_request(size: usize) {
        let allowance = ALLOWANCE.load(Ordering::Relaxed);
        if allowance != usize::MAX && size > allowance {
            let live = LIVE.load(Ordering::Relaxed);
            over_allowance(
                live.saturating_sub(BASELINE.load(Ordering::Relaxed)) + size,
                size,
                allowance,
            );
        }
    }
}

// SAFETY: every call forwards to `System` with the caller's own layout and pointer; the counters
// are plain atomics and the abort path allocates nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check_request(layout.size());
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            Self::grew(live, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check_request(layout.size());
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            Self::grew(live, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::check_request(new_size - layout.size());
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                Self::grew(live, new_size);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Writes the finding without allocating (the allocator is the caller) and aborts; libFuzzer
/// treats the abort as a crash and saves the input.
#[cold]
fn over_allowance(used: usize, request: usize, allowance: usize) -> ! {
    ALLOWANCE.store(usize::MAX, Ordering::Relaxed);
    let mut buf = [0u8; 256];
    let mut w = &mut buf[..];
    let _ = write!(
        w,
        "\n==weir-fuzz== allocation bound exceeded: {used} bytes live (request of {request}) \
         for a {}-byte input, bound {allowance}\n",
        INPUT_LEN.load(Ordering::Relaxed)
    );
    let left = w.len();
    let _ = std::io::stderr().write_all(&buf[..buf.len() - left]);
    // The bound is disarmed, so the backtrace may allocate: it names the call that asked.
    eprintln!("{}", std::backtrace::Backtrace::force_capture());
    std::process::abort();
}

/// Arms the allocation bound for one input: while the returned guard lives, the bytes allocated
/// above what was live at arming may not exceed `base + per_byte * input_len`.
///
/// `base` covers fixed costs (a decoder's tables, a formatted error message); `per_byte` is the
/// most a decoder may expand its input into decoded structures, chosen per target from the
/// largest ratio well-formed seeds show (see each target). A count read off the wire that sizes
/// a reservation before the elements are there, or work quadratic in the input, exceeds it.
#[must_use]
pub fn bound(input_len: usize, base: usize, per_byte: usize) -> Bound {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // A panic is the finding: formatting it must not trip the bound as well.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            ALLOWANCE.store(usize::MAX, Ordering::Relaxed);
            previous(info);
        }));
    });
    INPUT_LEN.store(input_len, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    BASELINE.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    ALLOWANCE.store(
        base.saturating_add(per_byte.saturating_mul(input_len)),
        Ordering::Relaxed,
    );
    Bound { _private: () }
}

/// Disarms the bound when dropped.
pub struct Bound {
    _private: (),
}

impl Bound {
    /// Peak bytes held above the baseline so far for this input.
    pub fn peak(&self) -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        ALLOWANCE.store(usize::MAX, Ordering::Relaxed);
    }
}

/// Splits `data` at a length read from its first two bytes, for targets that take two inputs
/// (a config byte and a payload, properties text and overrides, ...).
pub fn split_u16(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (&[], data);
    }
    let n = (u16::from_be_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    data[2..].split_at(n)
}

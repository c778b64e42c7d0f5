//! The `tern` binary's allocator (mimalloc), wrapped to count allocations and live heap
//! bytes while counting is switched on. Off (the timed runs), the wrapper costs one relaxed
//! load per call.
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use mimalloc::MiMalloc;

pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Allocations so far and live heap bytes (both counted only while [`enable`]d).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub allocs: u64,
    pub live: i64,
}

pub fn enable() {
    ON.store(true, Relaxed);
}

pub fn snapshot() -> Snapshot {
    Snapshot { allocs: ALLOCS.load(Relaxed), live: LIVE.load(Relaxed) }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

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
/// Live bytes by allocation size class (bucket b: sizes in [2^b, 2^(b+1))), to tell per-task
/// structures (a task's future is one allocation of one size) from the rest.
static BY_SIZE: [AtomicI64; 32] = [const { AtomicI64::new(0) }; 32];
/// Live allocations by the same size classes.
static COUNT_BY_SIZE: [AtomicI64; 32] = [const { AtomicI64::new(0) }; 32];

fn bucket(size: usize) -> usize {
    (usize::BITS - 1 - size.max(1).leading_zeros()) as usize % 32
}

fn count(size: usize, sign: i64) {
    LIVE.fetch_add(sign * size as i64, Relaxed);
    BY_SIZE[bucket(size)].fetch_add(sign * size as i64, Relaxed);
    COUNT_BY_SIZE[bucket(size)].fetch_add(sign, Relaxed);
}

/// Live bytes and allocations per size class: (lower bound of the class, bytes, allocations).
pub fn by_size() -> Vec<(usize, i64, i64)> {
    (0..32).map(|b| (1usize << b, BY_SIZE[b].load(Relaxed), COUNT_BY_SIZE[b].load(Relaxed))).collect()
}

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
            count(layout.size(), 1);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            count(layout.size(), -1);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            count(layout.size(), 1);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            count(layout.size(), -1);
            count(new_size, 1);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

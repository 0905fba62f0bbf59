//! The global allocator of the `dialer` binary and of the simulator's benches: mimalloc,
//! asked for plain blocks when the alignment allows.
//!
//! The simulator makes and drops a few small blocks per dial (records, their numbers, calls
//! in flight), about 730,000 on the 100-agent reference day. glibc's `malloc` and `free` cost
//! about a tenth of that day; mimalloc a third of that. The `mimalloc` crate's allocator asks
//! for every block with `mi_malloc_aligned`, whose checks cost about twice `mi_malloc` even
//! for the 8-byte alignment nearly every Rust value has. Every mimalloc block is aligned to at
//! least a pointer's size, so [`Allocator`] calls the plain functions for alignments up to
//! that and the aligned ones above it (`crates/backend-sim/PERF.md`, sixth round).
//!
//! ```no_run
//! #[global_allocator]
//! static GLOBAL: backend_sim::alloc::Allocator = backend_sim::alloc::Allocator;
//! # fn main() {}
//! ```

use libmimalloc_sys as ffi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The least alignment of every block mimalloc hands out: a pointer's size.
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator. See the module doc.
pub struct Allocator;

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` frees blocks of
// both kinds); a block asked for with `mi_malloc`, `mi_zalloc` or `mi_realloc` is aligned to
// at least `PLAIN_ALIGN`, which is why those are used only for layouts whose alignment is at
// most that; larger alignments go to the aligned functions, as the `mimalloc` crate does.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            ffi::mi_malloc(layout.size()) as *mut u8
        } else {
            ffi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            ffi::mi_zalloc(layout.size()) as *mut u8
        } else {
            ffi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        ffi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            ffi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            ffi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every size and alignment a program asks for come back aligned, writable, and
    /// keep their contents through a reallocation.
    #[test]
    fn blocks_are_aligned_and_keep_their_contents() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 13, 24, 100, 4000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layout has a non-zero size; the block is used within it and freed
                // once, with the layout it was last given.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc, size {size} align {align}");
                    for i in 0..size {
                        assert_eq!(*q.add(i), i as u8);
                    }
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}

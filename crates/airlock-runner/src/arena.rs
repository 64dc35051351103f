//! The runner's memory allocator: blocks of power-of-two sizes carved
//! from one arena in `.bss`, each size with a free list.
//!
//! Why: the runner is one short-lived, single-threaded process per sandbox
//! (three once it has forked), and the allocator it would otherwise get,
//! musl's mallocng in the static build, maps and unmaps pages as it goes:
//! about 70 `mmap` and `munmap` calls per start, each a page fault or a TLB
//! flush, and each mapping one more area for the runner's forks and exits
//! to copy and tear down. Here a block's pages are faulted in once, on
//! first use, and reused from the free list after; the arena is one
//! mapping. benches/daemon.py measured 5 % less CPU per sandbox with it
//! (docs/benchmarks.md). Once setup is over, [`Arena::release`] gives back
//! the pages that hold only free blocks; what a supervisor keeps beside its
//! workload is the pages its live blocks are spread over (about 100 KiB
//! per process, against about 50 with mallocng: benches/resident.py).
//!
//! Why by hand: the allocators made for a fixed arena (talc,
//! linked_list_allocator) split and coalesce blocks under a lock and cannot
//! say which pages hold nothing live; the runner needs none of the first
//! and the second is what keeps a supervisor small. Blocks above
//! [`LARGEST`] and anything asked once the arena is used up go to the C
//! library's allocator, as before.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};

/// The runner's arena: address space only, faulted in page by page. Setup
/// touches about 100 KiB of it.
pub const RUNNER_ARENA: usize = 8 << 20;
/// The smallest block: two words, so that a free block holds its link and
/// any alignment up to 16 that Rust asks for below it is met.
const SMALLEST_SHIFT: u32 = 4;
/// The largest block the arena serves (32 KiB); larger ones are rare here
/// (a read buffer grown past it) and go to the C library.
const LARGEST_SHIFT: u32 = 15;
const LARGEST: usize = 1 << LARGEST_SHIFT;
/// The smallest page size `release` gives pages back at.
const MIN_PAGE: usize = 4096;
/// The pages `release` can count in an arena: the runner's.
const PAGES_AT_MOST: usize = RUNNER_ARENA / MIN_PAGE;
const CLASSES: usize = (LARGEST_SHIFT - SMALLEST_SHIFT + 1) as usize;

// Aligned to the largest block, so that a block carved at a multiple of its
// size from the start is aligned to its size in memory too.
#[repr(C, align(32768))]
struct Space<const SIZE: usize>([u8; SIZE]);

struct State {
    /// How much of the arena blocks have been carved from.
    used: usize,
    /// For each size class, the first free block; each free block's first
    /// word points at the next.
    free: [*mut u8; CLASSES],
}

/// An arena of `SIZE` bytes (a multiple of the page size).
pub struct Arena<const SIZE: usize> {
    space: UnsafeCell<Space<SIZE>>,
    state: UnsafeCell<State>,
    /// Held while `state` changes. In the runner only a signal handler
    /// that allocated in the middle of an allocation could find it held
    /// (the runner's do not); in this crate's multi-threaded unit tests any
    /// thread can. Whoever finds it held is served by the C library, or
    /// leaks the block it frees, rather than wait or corrupt the lists.
    busy: AtomicBool,
}

// SAFETY: `state` is only touched while `busy` is held, and the space a
// block covers belongs to whoever the allocator handed it to.
unsafe impl<const SIZE: usize> Sync for Arena<SIZE> {}

impl<const SIZE: usize> Arena<SIZE> {
    pub const fn new() -> Self {
        Arena {
            space: UnsafeCell::new(Space([0; SIZE])),
            state: UnsafeCell::new(State {
                used: 0,
                free: [null_mut(); CLASSES],
            }),
            busy: AtomicBool::new(false),
        }
    }

    fn base(&self) -> usize {
        self.space.get() as usize
    }

    fn holds(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + SIZE
    }

    /// The size class of a layout, if the arena serves it: a block of
    /// 2^class bytes is aligned to its size (blocks are carved at multiples
    /// of their size), so a block no smaller than the alignment meets it.
    fn class(layout: Layout) -> Option<usize> {
        let size = layout.size().max(layout.align()).max(1 << SMALLEST_SHIFT);
        if size > LARGEST {
            return None;
        }
        let shift = size.next_power_of_two().trailing_zeros();
        Some((shift - SMALLEST_SHIFT) as usize)
    }

    /// The size of a block of `class`: the inverse of [`Self::class`].
    fn block_size(class: usize) -> usize {
        1 << (class as u32 + SMALLEST_SHIFT)
    }

    /// Give back to the kernel every page that holds only free blocks
    /// (a free block of a page or more, or a page whose small blocks are
    /// all free), and forget those blocks: a supervisor that only watches
    /// from here on keeps what it still uses. Called once setup is over
    /// (`airlock::runner::on_release_free_memory`); what is asked for
    /// later is carved anew.
    pub fn release(&self) {
        let Some(mut guard) = self.lock() else {
            return;
        };
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(0);
        if !page.is_power_of_two() || page < MIN_PAGE || SIZE.div_ceil(page) > PAGES_AT_MOST {
            return;
        }
        let base = self.base();
        let st = guard.state();
        // How many bytes of each page its free small blocks cover.
        let mut free_in = [0u32; PAGES_AT_MOST];
        for (class, head) in st.free.iter().enumerate() {
            let size = Self::block_size(class);
            let mut block = *head;
            while size < page && !block.is_null() {
                free_in[(block as usize - base) / page] += size as u32;
                // SAFETY: a free block's first word links the next one.
                block = unsafe { *(block as *mut *mut u8) };
            }
        }
        let all_free = |block: *mut u8| free_in[(block as usize - base) / page] as usize == page;
        for (class, head) in st.free.iter_mut().enumerate() {
            let size = Self::block_size(class);
            let mut link: *mut *mut u8 = head;
            // SAFETY: `link` is the list's head or a kept free block's
            // first word, each the address of the next block; a block
            // taken off the list is nobody's, and one of a page or more is
            // aligned to the page, so dropping its pages loses nothing.
            unsafe {
                while !(*link).is_null() {
                    let block = *link;
                    let next = *(block as *mut *mut u8);
                    if size >= page {
                        *link = next;
                        libc::madvise(block.cast(), size, libc::MADV_DONTNEED);
                    } else if all_free(block) {
                        *link = next;
                    } else {
                        link = block as *mut *mut u8;
                    }
                }
            }
        }
        // Only now that no list runs through them.
        for (i, free) in free_in.iter().enumerate() {
            if *free as usize == page {
                // SAFETY: every block in this page was free and is off its
                // list.
                unsafe {
                    libc::madvise(
                        self.space.get().cast::<u8>().wrapping_add(i * page).cast(),
                        page,
                        libc::MADV_DONTNEED,
                    )
                };
            }
        }
    }

    /// With transparent huge pages on `always`, the first touch of an
    /// aligned 2 MiB stretch of the arena could be given a huge page: 2 MiB
    /// zeroed and resident where a supervisor uses a few pages. Said once,
    /// at the first block carved; a fork keeps it.
    fn no_huge_pages(&self) {
        // SAFETY: the range is this arena's own static mapping; the advice
        // changes how it is backed, never its contents.
        unsafe { libc::madvise(self.space.get().cast(), SIZE, libc::MADV_NOHUGEPAGE) };
    }

    fn lock(&self) -> Option<Guard<'_, SIZE>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Guard(self))
    }
}

struct Guard<'a, const SIZE: usize>(&'a Arena<SIZE>);

impl<const SIZE: usize> Guard<'_, SIZE> {
    fn state(&mut self) -> &mut State {
        // SAFETY: the guard is the only holder of `busy`, so no other
        // reference to the state exists while it lives.
        unsafe { &mut *self.0.state.get() }
    }
}

impl<const SIZE: usize> Drop for Guard<'_, SIZE> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

// SAFETY: every block handed out is 2^class bytes, at least the layout's
// size, aligned to its size and so to the layout's alignment, lies inside
// the arena, and is handed to one owner at a time: it is on a free list or
// carved anew past `used`, never both.
unsafe impl<const SIZE: usize> GlobalAlloc for Arena<SIZE> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // The lock only for a size the arena serves.
        let class = Self::class(layout);
        if let (Some(class), Some(mut guard)) = (class, class.and_then(|_| self.lock())) {
            let st = guard.state();
            let head = st.free[class];
            if !head.is_null() {
                // SAFETY: a free block's first word is the next free block
                // of its class (written by `dealloc`), and the block is ours.
                st.free[class] = unsafe { *(head as *mut *mut u8) };
                return head;
            }
            if st.used == 0 {
                self.no_huge_pages();
            }
            let size = Self::block_size(class);
            let start = st.used.next_multiple_of(size);
            if start + size <= SIZE {
                st.used = start + size;
                return self.space.get().cast::<u8>().wrapping_add(start);
            }
        }
        // SAFETY: the caller's layout has a non-zero size (GlobalAlloc's
        // contract), which is all System asks.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.holds(ptr) {
            // SAFETY: a pointer outside the arena came from System.alloc
            // with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        let Some(class) = Self::class(layout) else {
            return;
        };
        if let Some(mut guard) = self.lock() {
            let st = guard.state();
            // SAFETY: the block is ours again and at least two words long,
            // so its first word can hold the link.
            unsafe { *(ptr as *mut *mut u8) = st.free[class] };
            st.free[class] = ptr;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: a pointer outside the arena came from System.alloc
            // with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: realloc's contract is that `new_size`, rounded up to the
        // alignment, does not overflow isize: the layout is valid.
        let resized = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if Self::class(resized) == Self::class(layout) {
            // The block (of an arena class, as it is in the arena) already
            // has the room.
            return ptr;
        }
        // SAFETY: `resized` is valid (above); the copy covers what both
        // blocks hold, and they are two blocks, so they do not overlap.
        unsafe {
            let moved = self.alloc(resized);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each test has an arena of its own (a static: an arena on the stack
    /// or built in a Box would be copied there first).
    const SMALL: usize = 64 << 10;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Whether the page at `ptr` is resident (mincore).
    fn resident(ptr: *mut u8) -> bool {
        let page = 4096;
        let mut vec = 0u8;
        // SAFETY: the address is page-aligned (the caller's blocks are) and
        // inside the arena's mapping; mincore writes one byte for one page.
        let r = unsafe { libc::mincore((ptr as usize & !(page - 1)) as *mut _, page, &mut vec) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        vec & 1 == 1
    }

    #[test]
    fn a_freed_block_serves_the_next_request_of_its_size() {
        static A: Arena<SMALL> = Arena::new();
        // SAFETY: every block is freed with the layout it was asked with.
        unsafe {
            let p = A.alloc(layout(100, 8));
            assert!(A.holds(p));
            A.dealloc(p, layout(100, 8));
            let q = A.alloc(layout(120, 8));
            assert_eq!(p, q, "a block of the same class is reused");
            let r = A.alloc(layout(120, 8));
            assert_ne!(q, r, "a block in use is not handed out twice");
            assert!(r as usize >= q as usize + 128 || r as usize + 128 <= q as usize);
        }
    }

    #[test]
    fn blocks_meet_their_alignment() {
        static A: Arena<SMALL> = Arena::new();
        // SAFETY: the blocks are only inspected, never freed.
        unsafe {
            let _ = A.alloc(layout(24, 8));
            for align in [16, 64, 4096, 8192] {
                let p = A.alloc(layout(8, align));
                assert!(A.holds(p));
                assert_eq!(p as usize % align, 0, "aligned to {align}");
            }
        }
    }

    #[test]
    fn large_blocks_and_an_exhausted_arena_go_to_the_c_library() {
        static A: Arena<SMALL> = Arena::new();
        // SAFETY: every block is freed with the layout it was asked with.
        unsafe {
            let big = A.alloc(layout(LARGEST + 1, 8));
            assert!(!big.is_null() && !A.holds(big));
            A.dealloc(big, layout(LARGEST + 1, 8));
            // Two 32 KiB blocks fill the arena; the third comes from System.
            let held: Vec<_> = (0..3).map(|_| A.alloc(layout(LARGEST, 8))).collect();
            assert!(A.holds(held[0]) && A.holds(held[1]));
            assert!(!held[2].is_null() && !A.holds(held[2]));
            for p in held {
                A.dealloc(p, layout(LARGEST, 8));
            }
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_moves_the_bytes_out_of_it() {
        static A: Arena<SMALL> = Arena::new();
        // SAFETY: each block is used within the size it has at the time,
        // and freed with its last layout.
        unsafe {
            let p = A.alloc(layout(40, 8));
            p.write_bytes(0xa5, 40);
            assert_eq!(
                A.realloc(p, layout(40, 8), 64),
                p,
                "40 and 64 share a class"
            );
            let q = A.realloc(p, layout(64, 8), 300);
            assert_ne!(q, p);
            assert!((0..40).all(|i| *q.add(i) == 0xa5), "the bytes moved");
            assert_eq!(A.alloc(layout(64, 8)), p, "the old block is free again");
            let r = A.realloc(q, layout(300, 8), LARGEST * 2);
            assert!(!A.holds(r) && (0..40).all(|i| *r.add(i) == 0xa5));
            A.dealloc(r, layout(LARGEST * 2, 8));
        }
    }

    #[test]
    fn release_gives_back_the_pages_that_hold_only_free_blocks() {
        static A: Arena<SMALL> = Arena::new();
        // SAFETY: sysconf has no preconditions.
        if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } != 4096 {
            eprintln!("SKIPPED: the test lays its blocks out for 4 KiB pages");
            return;
        }
        // SAFETY: each block is written within its size while held, freed
        // with its layout, and the kept one is read only while held.
        unsafe {
            // A page of 16-byte blocks, all freed; a page block, freed; a
            // page of 16-byte blocks with one still in use.
            let empty: Vec<_> = (0..256).map(|_| A.alloc(layout(16, 8))).collect();
            let whole = A.alloc(layout(4096, 8));
            let mixed: Vec<_> = (0..256).map(|_| A.alloc(layout(16, 8))).collect();
            for p in empty.iter().chain(&mixed).chain([&whole]) {
                p.write_bytes(0x5a, 16);
            }
            assert_eq!(empty[0] as usize % 4096, 0);
            assert_eq!(mixed[0] as usize % 4096, 0);
            let kept = mixed[7];
            for p in empty.iter().chain(&mixed).filter(|p| **p != kept) {
                A.dealloc(*p, layout(16, 8));
            }
            A.dealloc(whole, layout(4096, 8));
            assert!(resident(empty[0]) && resident(whole) && resident(kept));
            A.release();
            assert!(!resident(empty[0]), "a page of free blocks is given back");
            assert!(!resident(whole), "a free page-sized block is given back");
            assert!(resident(kept), "a page with a block in use stays");
            assert!((0..16).all(|i| *kept.add(i) == 0x5a), "and keeps its bytes");
            // The pages given back are forgotten: new blocks come from the
            // other page's free blocks, then from fresh space.
            let again = A.alloc(layout(16, 8));
            assert_eq!(again as usize & !4095, kept as usize & !4095);
            let page = A.alloc(layout(4096, 8));
            assert!(page != whole && A.holds(page));
        }
    }
}

//! Goroutine stacks: slab reservations carved into guarded slots (DESIGN §2).
//!
//! ```text
//!   one slab (mmap, MAP_NORESERVE, a single kernel mapping)
//!   ┌────────┬──────────────────────┬────────┬──────────────────────┬───
//!   │ guard  │ usable stack  ↓ grows│ guard  │ usable stack         │ ...
//!   │ 4 KiB  │            top-stagger│        │                      │
//!   └────────┴──────────────────────┴────────┴──────────────────────┴───
//!   slot 0: [bottom ............................. end)   slot 1 ...
//! ```
//!
//! * Each slot's lowest page is a guard installed with
//!   `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13), which keeps the slab one
//!   mapping; on older kernels `mprotect(PROT_NONE)` is used instead (two
//!   mappings per stack, so `vm.max_map_count` caps the goroutine count; the
//!   error then says so).
//! * The initial stack pointer of a slot sits `64 * ((bottom / slot_size) %
//!   32)` bytes below the slot's end (adjacent slots differ), so hot frames
//!   of many goroutines do not all map to the same L1 sets; it is a function
//!   of the slot's address ([`top_of`]).
//! * Only touched pages cost memory. Freed stacks go to the worker's pool
//!   (warm, for the runtime's default size), then to a global free list; past
//!   `GLOBAL_DIRTY_CAP` dirty stacks the pages of the oldest are returned
//!   with `MADV_DONTNEED`, `RELEASE_BATCH` stacks per `process_madvise`
//!   call (the guards survive that).
//! * Slab ranges are recorded in a fixed lock-free table so the SIGSEGV
//!   handler can tell a guard hit from any other fault.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Page size assumed for guards (checked against `sysconf` at first use).
pub(crate) const PAGE: usize = 4096;
/// Smallest stack a goroutine gets.
pub(crate) const MIN_STACK: usize = 16 * 1024;
/// Largest stack a goroutine may ask for (Go's limit is also 1 GB).
pub(crate) const MAX_STACK: usize = 1 << 30;
/// Default reservation per goroutine.
pub(crate) const DEFAULT_STACK: usize = 256 * 1024;
/// Address space reserved per slab (at least 16 slots).
const SLAB_BYTES: usize = 1 << 30;
/// Dirty stacks kept on the global free list before pages are released.
const GLOBAL_DIRTY_CAP: usize = 1024;
/// Warm stacks kept per worker.
pub(crate) const WORKER_POOL_CAP: usize = 256;
/// Most slabs the overflow table can describe.
pub(crate) const MAX_SLABS: usize = 1 << 14;

/// One goroutine stack: a slot of a slab.
#[derive(Debug)]
pub(crate) struct SlotStack {
    /// Lowest address of the slot (start of its guard page).
    bottom: usize,
    /// Initial stack pointer (slot end minus the stagger), 64-byte aligned.
    top: usize,
    /// Slot size in bytes, guard included.
    slot_size: usize,
}

// SAFETY: the slot is `slot_size` bytes of mapped memory owned exclusively by
// this value, whose lowest page is an inaccessible guard, and `top - bottom`
// exceeds `MIN_STACK_SIZE` (slots are at least `MIN_STACK + PAGE`). Both
// addresses are 16-byte aligned (slab and slot sizes are page multiples; the
// stagger is a multiple of 64).
unsafe impl corosensei::stack::Stack for SlotStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.top).expect("stack top is non-null")
    }
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.bottom).expect("stack bottom is non-null")
    }
}

/// Per size class state of the global allocator.
struct Class {
    /// Slot size (guard included).
    slot_size: usize,
    /// Free slots whose pages may still be resident.
    dirty: Vec<SlotStack>,
    /// Free slots whose pages were released.
    clean: Vec<SlotStack>,
    /// Next uncarved byte of the current slab.
    cur: usize,
    /// End of the current slab.
    end: usize,
    /// Slots carved so far.
    carved: usize,
}

/// All size classes; held only for short, non-blocking bookkeeping.
static CLASSES: Mutex<Vec<Class>> = Mutex::new(Vec::new());
/// Set once `MADV_GUARD_INSTALL` was refused: use `mprotect` from then on.
static USE_MPROTECT: AtomicBool = AtomicBool::new(false);

/// Slab table for the fault handler: `(start, end, slot_size)` triples.
static SLABS: [[AtomicUsize; 3]; MAX_SLABS] =
    [const { [const { AtomicUsize::new(0) }; 3] }; MAX_SLABS];
/// Number of valid entries in `SLABS`.
static NSLABS: AtomicUsize = AtomicUsize::new(0);

/// Slot size (guard included) for a requested stack size, or an error naming
/// why the size is impossible.
pub(crate) fn slot_size_for(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("goroutine stack size {requested} bytes exceeds the maximum of {MAX_STACK} bytes (1 GiB)"),
        ));
    }
    let usable = requested.max(MIN_STACK).div_ceil(PAGE) * PAGE;
    Ok(usable + PAGE)
}

/// Makes sure a stack of `slot_size` can be handed out, reserving a slab if
/// needed. This is what turns address-space exhaustion into an `Err` at spawn.
pub(crate) fn ensure_available(slot_size: usize) -> io::Result<()> {
    let mut classes = CLASSES.lock();
    let class = class_mut(&mut classes, slot_size);
    if !class.dirty.is_empty() || !class.clean.is_empty() || class.cur < class.end {
        return Ok(());
    }
    reserve_slab(class)
}

fn class_mut(classes: &mut Vec<Class>, slot_size: usize) -> &mut Class {
    let i = match classes.iter().position(|c| c.slot_size == slot_size) {
        Some(i) => i,
        None => {
            classes.push(Class {
                slot_size,
                dirty: Vec::new(),
                clean: Vec::new(),
                cur: 0,
                end: 0,
                carved: 0,
            });
            classes.len() - 1
        }
    };
    &mut classes[i]
}

fn reserve_slab(class: &mut Class) -> io::Result<()> {
    let slots = (SLAB_BYTES / class.slot_size).max(16);
    let bytes = slots * class.slot_size;
    // SAFETY: anonymous private mapping at a kernel-chosen address; no
    // existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot reserve {bytes} bytes of address space for goroutine stacks: {e}"),
        ));
    }
    let start = p as usize;
    let n = NSLABS.load(Ordering::Relaxed);
    if n < MAX_SLABS {
        SLABS[n][0].store(start, Ordering::Relaxed);
        SLABS[n][1].store(start + bytes, Ordering::Relaxed);
        SLABS[n][2].store(class.slot_size, Ordering::Relaxed);
        // Release: the handler reads the entry after seeing the count.
        NSLABS.store(n + 1, Ordering::Release);
    }
    class.cur = start;
    class.end = start + bytes;
    Ok(())
}

fn install_guard(addr: usize) -> io::Result<()> {
    const MADV_GUARD_INSTALL: libc::c_int = 102;
    if !USE_MPROTECT.load(Ordering::Relaxed) {
        // SAFETY: `addr` is the first page of a slot we own in a live mapping.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, PAGE, MADV_GUARD_INSTALL) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        USE_MPROTECT.store(true, Ordering::Relaxed);
    }
    // SAFETY: as above; the page holds no Rust data.
    let r = unsafe { libc::mprotect(addr as *mut libc::c_void, PAGE, libc::PROT_NONE) };
    if r == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!(
                "cannot install a stack guard page with mprotect ({e}); this kernel lacks MADV_GUARD_INSTALL, \
                 so each goroutine stack costs two mappings and vm.max_map_count caps the goroutine count"
            ),
        ))
    }
}

/// Takes a stack with `slot_size` from the global allocator.
pub(crate) fn alloc(slot_size: usize) -> io::Result<SlotStack> {
    let mut classes = CLASSES.lock();
    let class = class_mut(&mut classes, slot_size);
    if let Some(s) = class.dirty.pop().or_else(|| class.clean.pop()) {
        return Ok(s);
    }
    if class.cur >= class.end {
        reserve_slab(class)?;
    }
    let bottom = class.cur;
    install_guard(bottom)?;
    class.cur += slot_size;
    class.carved += 1;
    Ok(SlotStack {
        bottom,
        top: top_of(bottom, slot_size),
        slot_size,
    })
}

/// Initial stack pointer of the slot at `bottom` (its end minus the stagger).
pub(crate) fn top_of(bottom: usize, slot_size: usize) -> usize {
    bottom + slot_size - 64 * ((bottom / slot_size) % 32)
}

/// Returns a stack to the global allocator.
///
/// Past `GLOBAL_DIRTY_CAP` dirty stacks of a class, the oldest
/// `RELEASE_BATCH` have their pages released together (see [`release`]):
/// one `madvise` per stack costs a TLB shoot-down each (~12 µs here with
/// another worker running), which made releasing 1,000,000 goroutines at
/// once take seconds.
pub(crate) fn free(stack: SlotStack) {
    let slot_size = stack.slot_size;
    let mut classes = CLASSES.lock();
    let class = class_mut(&mut classes, slot_size);
    class.dirty.push(stack);
    if class.dirty.len() < GLOBAL_DIRTY_CAP + RELEASE_BATCH {
        return;
    }
    // The oldest (coldest) ones; the most recently freed stay for reuse.
    let batch: Vec<SlotStack> = class.dirty.drain(..RELEASE_BATCH).collect();
    drop(classes);
    release(&batch);
    for s in &batch {
        super::compact::after_release(s.bottom, s.slot_size, 2);
    }
    let mut classes = CLASSES.lock();
    class_mut(&mut classes, slot_size).clean.extend(batch);
}

/// Stacks whose pages are released together, in one `process_madvise`.
const RELEASE_BATCH: usize = 512;

/// Gives the pages of free stacks back to the kernel (their guards stay).
fn release(stacks: &[SlotStack]) {
    let iov: Vec<libc::iovec> = stacks
        .iter()
        .map(|s| libc::iovec {
            iov_base: (s.bottom + PAGE) as *mut libc::c_void,
            iov_len: s.slot_size - PAGE,
        })
        .collect();
    // SAFETY: each range is the usable part of a free slot (above its
    // guard), taken off the free list by our caller and holding no live
    // data.
    unsafe { discard(&iov) };
}

/// `MADV_DONTNEED` over every range of `iov`: one `process_madvise` call
/// per 1,024 ranges where the kernel allows it on the calling process
/// (through `PIDFD_SELF`, Linux 6.14+: nothing to open, right after a
/// `fork()` too; the kernel then flushes the TLBs once per call: ~1 µs per
/// stack here instead of ~12 µs for one `madvise` each with another worker
/// running), else one `madvise` per range. Allocation-free (the stack
/// compactor calls it while holding slots).
///
/// # Safety
///
/// * Every range is page aligned, mapped, and holds nothing anyone will
///   read again (its pages read as zeros, or fault, afterwards).
pub(crate) unsafe fn discard(iov: &[libc::iovec]) {
    /// `PIDFD_SELF_THREAD`: the calling thread (its memory is the process's).
    const PIDFD_SELF: libc::c_int = -10000;
    /// Cleared for good when the kernel says it cannot do this at all.
    static BATCHED: AtomicBool = AtomicBool::new(true);
    let mut done = 0;
    while BATCHED.load(Ordering::Relaxed) && done < iov.len() {
        let n = (iov.len() - done).min(1024); // IOV_MAX
                                              // SAFETY: the ranges satisfy our contract; `iov` is valid for `n`
                                              // entries from `done`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr().add(done),
                n,
                libc::MADV_DONTNEED,
                0,
            )
        };
        if r <= 0 {
            let e = io::Error::last_os_error().raw_os_error();
            if matches!(
                e,
                Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EPERM) | Some(libc::EBADF)
            ) {
                // No process_madvise, no PIDFD_SELF, no MADV_DONTNEED
                // through it, or a seccomp filter: one call per range from
                // now on.
                BATCHED.store(false, Ordering::Relaxed);
            }
            break;
        }
        // The kernel stops at the first range it cannot advise and returns
        // the bytes done so far; the rest goes one by one below (a range
        // advised twice is harmless).
        let mut bytes = r as usize;
        while done < iov.len() && bytes >= iov[done].iov_len {
            bytes -= iov[done].iov_len;
            done += 1;
        }
        if bytes > 0 {
            break;
        }
    }
    for v in &iov[done..] {
        // SAFETY: per our contract.
        unsafe { libc::madvise(v.iov_base, v.iov_len, libc::MADV_DONTNEED) };
    }
}

/// A worker's pool of warm stacks of the runtime's default slot size.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Slot size this pool keeps.
    slot_size: usize,
    /// Warm stacks, most recently freed last.
    stacks: Vec<SlotStack>,
}

impl StackPool {
    pub(crate) fn new(slot_size: usize) -> StackPool {
        StackPool {
            slot_size,
            stacks: Vec::new(),
        }
    }

    /// A stack of `slot_size`, from the pool when it has one.
    pub(crate) fn get(&mut self, slot_size: usize) -> io::Result<SlotStack> {
        if slot_size == self.slot_size {
            if let Some(s) = self.stacks.pop() {
                return Ok(s);
            }
        }
        alloc(slot_size)
    }

    /// Whether the pool holds no stack.
    pub(crate) fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Gives a stack back.
    pub(crate) fn put(&mut self, s: SlotStack) {
        if s.slot_size == self.slot_size && self.stacks.len() < WORKER_POOL_CAP {
            self.stacks.push(s);
        } else {
            free(s);
        }
    }

    /// Empties the pool into the global allocator.
    pub(crate) fn drain(&mut self) {
        for s in self.stacks.drain(..) {
            free(s);
        }
    }
}

/// Whether stack guards are `MADV_GUARD_INSTALL` markers (one mapping per
/// slab), as stack compaction requires.
pub(crate) fn guards_are_markers() -> bool {
    !USE_MPROTECT.load(Ordering::Relaxed)
}

/// The slab holding `addr`: `(index, start, end, slot_size)`, where `index`
/// is stable for the life of the process. Lock-free (the compaction fault
/// handler calls it).
pub(crate) fn slab_index(addr: usize) -> Option<(usize, usize, usize, usize)> {
    let n = NSLABS.load(Ordering::Acquire);
    for (i, slab) in SLABS.iter().enumerate().take(n) {
        let start = slab[0].load(Ordering::Relaxed);
        let end = slab[1].load(Ordering::Relaxed);
        if addr >= start && addr < end {
            return Some((i, start, end, slab[2].load(Ordering::Relaxed)));
        }
    }
    None
}

/// Stops carving new slots from the slab `[start, end)` (it is being
/// registered for stack compaction, where never-touched pages fault to the
/// handler); the next slot of its class comes from a fresh slab. Freed
/// slots of that slab are still reused.
pub(crate) fn stop_carving(start: usize, end: usize) {
    let mut classes = CLASSES.lock();
    for c in classes.iter_mut() {
        if c.end == end && c.cur >= start {
            c.cur = c.end;
        }
    }
}

/// If `addr` lies in the guard page of a slot, that slot's size.
/// Async-signal-safe: atomics only.
pub(crate) fn guard_hit(addr: usize) -> Option<usize> {
    let n = NSLABS.load(Ordering::Acquire);
    for slab in SLABS.iter().take(n) {
        let start = slab[0].load(Ordering::Relaxed);
        let end = slab[1].load(Ordering::Relaxed);
        if addr >= start && addr < end {
            let slot = slab[2].load(Ordering::Relaxed);
            // The guard is the first page of each slot; a fault a little
            // below a stack pointer can land anywhere in it.
            return if (addr - start) % slot < PAGE {
                Some(slot)
            } else {
                None
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_and_reject_huge() {
        assert_eq!(slot_size_for(1).unwrap(), MIN_STACK + PAGE);
        assert_eq!(slot_size_for(DEFAULT_STACK).unwrap(), DEFAULT_STACK + PAGE);
        assert_eq!(
            slot_size_for(DEFAULT_STACK + 1).unwrap(),
            DEFAULT_STACK + 2 * PAGE
        );
        assert!(slot_size_for(usize::MAX / 2).is_err());
    }

    #[test]
    fn slots_are_guarded_staggered_and_distinct() {
        let size = slot_size_for(64 * 1024).unwrap();
        let a = alloc(size).unwrap();
        let b = alloc(size).unwrap();
        assert_ne!(a.bottom, b.bottom);
        assert_eq!(a.top % 16, 0);
        assert!(guard_hit(a.bottom).is_some());
        assert!(guard_hit(a.bottom + PAGE).is_none());
        // The usable part is writable.
        // SAFETY: the byte lies in a slot we own, above the guard.
        unsafe { *((a.top - 8) as *mut u64) = 7 };
        free(a);
        free(b);
    }

    /// Whether the page holding `addr` is resident.
    fn resident(addr: usize) -> bool {
        let mut v = 0u8;
        // SAFETY: a page-aligned address inside a mapped slab; `v` receives
        // one byte per page.
        let r = unsafe { libc::mincore((addr & !(PAGE - 1)) as *mut libc::c_void, PAGE, &mut v) };
        assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
        v & 1 != 0
    }

    /// Past the dirty cap, the oldest free stacks lose their pages (in one
    /// batch); the most recently freed keep them; a released stack is
    /// usable again (fresh zero pages).
    #[test]
    fn free_stacks_past_the_cap_are_released_in_batches() {
        // A class of its own, so other tests' stacks do not mix in.
        let size = slot_size_for(72 * 1024).unwrap();
        let n = GLOBAL_DIRTY_CAP + RELEASE_BATCH;
        let stacks: Vec<SlotStack> = (0..n).map(|_| alloc(size).unwrap()).collect();
        let tops: Vec<usize> = stacks.iter().map(|s| s.top).collect();
        for &t in &tops {
            // SAFETY: the top word of a slot we own.
            unsafe { *((t - 8) as *mut u64) = 0xABCD };
            assert!(resident(t - 8));
        }
        for s in stacks {
            free(s);
        }
        // The first RELEASE_BATCH freed were released, the rest kept.
        assert!(!resident(tops[0] - 8));
        assert!(!resident(tops[RELEASE_BATCH - 1] - 8));
        assert!(resident(tops[RELEASE_BATCH] - 8));
        assert!(resident(tops[n - 1] - 8));
        {
            let classes = CLASSES.lock();
            let c = classes.iter().find(|c| c.slot_size == size).unwrap();
            assert_eq!(c.clean.len(), RELEASE_BATCH);
            assert_eq!(c.dirty.len(), GLOBAL_DIRTY_CAP);
        }
        // Take everything back: released stacks read as zeros and work.
        let again: Vec<SlotStack> = (0..n).map(|_| alloc(size).unwrap()).collect();
        let mut zeros = 0;
        for s in &again {
            // SAFETY: the top word of a slot we own.
            let v = unsafe { *((s.top - 8) as *const u64) };
            assert!(v == 0 || v == 0xABCD, "{v:#x}");
            zeros += (v == 0) as usize;
            // SAFETY: as above.
            unsafe { *((s.top - 8) as *mut u64) = 1 };
        }
        assert_eq!(zeros, RELEASE_BATCH);
        for s in again {
            free(s);
        }
    }
}

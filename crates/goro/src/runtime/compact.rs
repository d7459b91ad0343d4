//! Idle-stack compaction (docs/design.md, "Idle-stack compaction").
//!
//! The used part of a long-parked goroutine's stack (saved stack pointer to
//! top) is moved out of the stack slot into a small heap buffer and the pages
//! go back to the kernel. The address range stays reserved and is registered
//! with a `userfaultfd`, so *any* access to a compacted page, by any thread
//! (a `std::thread::scope` thread reading a parked goroutine's local, a
//! `goro::scope` child, a waiter record living on the stack, a syscall
//! writing into a stack buffer), blocks in the kernel until the bytes are
//! back: compaction is invisible. The home worker restores a goroutine
//! before it resumes it, and a channel operation about to write a compacted
//! goroutine's waiter record restores it first (`restore_before_touch`):
//! neither takes a fault round trip. A handler thread restores for every
//! other access. Pages below the saved range that are still resident (the
//! stack once ran deeper) are trimmed in the same pass.
//!
//! # Per-slot state machine (`SlotMeta::state`)
//!
//! ```text
//!            compact: CAS, home worker only,        restore: CAS by the owner (before resume),
//!            goroutine suspended                    a waker, or the fault handler
//!  RESIDENT ─────────────► COMPACTING ──────► COMPACTED ───────────────► RESTORING ──► RESIDENT
//!     ▲ │ CAS                    │ store(Release)          CAS                   │ store(Release)
//!     │ └──◄─ MOVE failed ───────┘                                               │
//!     │      handler lazy fill / owner buffer release: CAS RESIDENT → RESTORING  │
//!     └──────────────────────────────────────────────────────────────────────────┘
//!
//!  A waker whose scratch is too small for the stack gives the slot back
//!  untouched: RESTORING ──store──► COMPACTED.
//! ```
//!
//! * `RESIDENT`: nothing of the slot lives in a buffer. A missing page can
//!   still fault (a never-touched page of a registered slab): the handler
//!   zero-fills it while holding the slot in `RESTORING`, so no compaction
//!   can move pages out between its look at the state and its fill.
//! * `COMPACTING`: held by the home worker, on its scheduler stack. The used
//!   pages are moved out with `UFFDIO_MOVE` into the worker's holding area,
//!   copied into the buffer (allocated *before* the CAS), then published.
//!   The holder allocates nothing, takes no lock and never faults on
//!   registered memory: the holes a move leaves in the holding area (stack
//!   pages never touched) are filled with the zero page before the copy
//!   reads them, and a move refused with `EBUSY`/`EAGAIN` (a page COW-shared
//!   since a fork()) is undone and the slot released *before* the pages are
//!   write-faulted for a retry. So the handler's wait on this state is
//!   bounded.
//! * `COMPACTED`: the bytes `[lo, top)` are in `Saved::buf`; the pages
//!   `[page_lo, slot end)` are unpopulated.
//! * `RESTORING`: held by the one thread that won the CAS (the owner about
//!   to resume the goroutine, a channel operation about to write its waiter
//!   record, or the handler). It refills the pages with one `UFFDIO_COPY`,
//!   which also wakes every thread blocked on them. A waker or the handler
//!   leaves the buffer for the owner to free (`COMPACTED_BIT` stays set
//!   until the owner resumes the goroutine).
//!
//! A *wake* (unpark) of the goroutine never touches this word: it only makes
//! the goroutine runnable on its home worker, which restores it (if nobody
//! did) before switching to it. Compaction also runs only on the home
//! worker, between goroutines, so the owner never observes `COMPACTING`, no
//! wake is lost, and none races the copy. A waker's restore is an
//! optimisation of the fault path: it acts only on `COMPACTED` and leaves
//! every other state to the access that follows (which faults and waits).
//!
//! # Why the copy is consistent
//!
//! `UFFDIO_MOVE` atomically unmaps a stack page (with a TLB flush) and maps
//! the *same physical page* in the holding area: a store by another thread
//! either landed before the move (and is in the page copied from) or faults
//! afterwards and waits for a restore, which sees the copy. `UFFDIO_COPY`
//! never overwrites a present page, so a restore cannot clobber bytes stored
//! after an earlier restore. (The tempting `memcpy` + `MADV_DONTNEED` loses
//! a store made between the two: undefined behaviour from safe code.)
//!
//! # Registration, lazily
//!
//! Slabs are registered with the uffd only when the compactor first
//! compacts a slot in them (one ioctl). Their metadata (every slot
//! `RESIDENT`) is published *before* the registration, so the handler knows
//! every address that can fault. From then on a never-touched page of
//! that slab faults to the handler once (a goroutine growing deeper than
//! ever, or a stack whose pages were released), and the allocator stops
//! carving new slots from it: fresh goroutines start in unregistered slabs
//! at exactly today's cost. Programs with no goroutine parked past the
//! threshold never register anything.
//!
//! # When it is off
//!
//! [`probe`] turns compaction off, and says why, when the process cannot
//! open a userfaultfd that handles kernel-mode faults (with
//! `UFFD_USER_MODE_ONLY` a `read(2)` into a compacted buffer would fail with
//! `EFAULT`), when the kernel lacks `UFFDIO_MOVE` (Linux < 6.8) or
//! `MADV_GUARD_INSTALL` (Linux < 6.13), when the context switch stores
//! more than 4 KiB below the stack pointer it records (the depth is measured
//! in the running binary, at probe time, on a scratch coroutine, and the
//! margin kept below a saved stack pointer is twice that: it varies with the
//! optimisation level and debug assertions, so no constant is safe), and in
//! builds with `goro_bookkeeping_off` (no park times). Slabs are then never
//! registered.
//!
//! # Refused candidates
//!
//! A goroutine whose compaction is refused (stack deeper than the holding
//! area, slab not registrable, pages not movable) gets `SKIP_BIT` in its
//! saved stack pointer and is not looked at again before it runs; a pass
//! that compacts nothing always pushes the next scan into the future, so an
//! idle worker never spins on refusals.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use parking_lot::Mutex;

use super::goroutine::{GRef, Goroutine};
use super::stack;
use super::uffd::{self, Uffd, UffdMsg, PAGE};
use super::worker::Registry;

/// Slot states (see the module docs).
pub(crate) const RESIDENT: u8 = 0;
/// Held by the compacting home worker.
pub(crate) const COMPACTING: u8 = 1;
/// Bytes in the buffer, pages gone.
pub(crate) const COMPACTED: u8 = 2;
/// Held by a restorer (owner, waker or handler), or by the handler's lazy
/// fill.
pub(crate) const RESTORING: u8 = 3;

/// Most bytes the context switch may store below the saved stack pointer
/// for compaction to stay on: a deeper switch means an unexpected build
/// (sanitizer, unusual code generation), and guessing would lose bytes.
const MARGIN_CAP: usize = 4096;
/// Smallest margin kept below the saved stack pointer.
const MARGIN_MIN: usize = 128;
/// Bit of `Goroutine::saved_sp` marking a goroutine whose compaction was
/// refused (stack too deep, slab not registrable, pages not movable): it is
/// not a candidate again before it runs (its next switch out stores a fresh
/// stack pointer, which clears the bit). Set only by the home worker.
pub(crate) const SKIP_BIT: usize = 2;
/// The low bits of `saved_sp` that are marks, not address (stack pointers
/// are word aligned).
pub(crate) const SP_MARKS: usize = COMPACTED_BIT | SKIP_BIT;

/// How deep the context switch writes below the stack pointer recorded by
/// `goroutine::record_sp_and_suspend`, measured in this very binary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SwitchDepth {
    /// Deepest byte written below the recorded stack pointer (bytes).
    pub(crate) measured: usize,
    /// Bytes kept below the saved stack pointer when compacting: twice the
    /// measured depth, rounded up to 64, at least `MARGIN_MIN`.
    pub(crate) margin: usize,
}

/// The switch depth (measured once per process), or why compaction must
/// stay off. The depth depends on the code generation (optimisation level,
/// inlining, debug assertions, instrumentation), so no constant is safe:
/// bytes stored below the kept margin would be restored as zeros.
pub(crate) fn switch_depth() -> Result<SwitchDepth, &'static str> {
    static DEPTH: OnceLock<Result<SwitchDepth, String>> = OnceLock::new();
    match DEPTH.get_or_init(measure_switch_depth) {
        Ok(d) => Ok(*d),
        Err(e) => Err(e.as_str()),
    }
}

/// Bytes kept below the saved stack pointer (after a successful probe).
fn margin() -> usize {
    match switch_depth() {
        Ok(d) => {
            debug_assert!(d.margin >= d.measured);
            d.margin
        }
        Err(_) => unreachable!("compaction used without a successful probe"),
    }
}

/// A private anonymous mapping used as the stack of the measuring coroutine.
struct ScratchStack {
    base: usize,
    len: usize,
}

impl ScratchStack {
    fn new(len: usize) -> Option<ScratchStack> {
        // SAFETY: a fresh private anonymous mapping at a kernel-chosen address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(ScratchStack {
            base: p as usize,
            len,
        })
    }
}

impl Drop for ScratchStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the coroutine using it has completed.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

// SAFETY: `base + len` and `base` bound a mapped, writable, page-aligned
// (hence 16-byte aligned) region owned by this value for its whole life.
unsafe impl corosensei::stack::Stack for ScratchStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.base + self.len).expect("non-null mapping")
    }
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.base).expect("non-null mapping")
    }
}

/// Zeroes 16 KiB of stack below the caller's frame.
#[inline(never)]
fn scrub_below() {
    let z = std::hint::black_box([0u8; 16 * 1024]);
    std::hint::black_box(&z);
}

/// Runs `goroutine::record_sp_and_suspend` (the very code every goroutine
/// switches out through) on a zeroed scratch stack and finds the deepest
/// byte it wrote below the stack pointer it recorded.
fn measure_switch_depth() -> Result<SwitchDepth, String> {
    use super::goroutine::{record_sp_and_suspend, Switch};
    const LEN: usize = 256 * 1024;
    const SCAN_BYTES: usize = 2 * MARGIN_CAP;
    let stack = ScratchStack::new(LEN)
        .ok_or_else(|| format!("mmap: {}", std::io::Error::last_os_error()))?;
    let limit = stack.base;
    let sp = std::sync::Arc::new(AtomicUsize::new(0));
    let sp2 = sp.clone();
    let mut co: corosensei::Coroutine<(), Switch, (), ScratchStack> =
        corosensei::Coroutine::with_stack(stack, move |y, ()| {
            scrub_below();
            record_sp_and_suspend(&sp2, y, Switch::Park);
        });
    if !matches!(co.resume(()), corosensei::CoroutineResult::Yield(_)) {
        return Err("measuring the context switch: the probe did not switch out".into());
    }
    let s = sp.load(Ordering::Relaxed) & !SP_MARKS;
    let from = s.saturating_sub(SCAN_BYTES).max(limit);
    let mut lowest = s;
    for a in from..s {
        // SAFETY: `[limit, s)` lies in the scratch stack mapping, which the
        // suspended coroutine (on this thread) does not touch while we read.
        if unsafe { std::ptr::read_volatile(a as *const u8) } != 0 {
            lowest = a;
            break;
        }
    }
    let _ = co.resume(());
    let measured = s - lowest;
    if measured > MARGIN_CAP {
        return Err(format!(
            "the context switch writes {measured} bytes below the saved stack pointer \
             (more than {MARGIN_CAP}): this build's code generation is not supported"
        ));
    }
    let margin = (2 * measured).max(MARGIN_MIN).next_multiple_of(64);
    Ok(SwitchDepth { measured, margin })
}

/// Bit of `Goroutine::saved_sp` telling its home worker that the stack was
/// compacted (and may still be; the slot state says).
pub(crate) const COMPACTED_BIT: usize = 1;
/// Pages below a lazily filled stack page that the handler maps the zero
/// page under in the same round trip (128 KiB).
const LAZY_AHEAD: usize = 32;
/// Holding-area pages per worker: stacks using more are not compacted.
const HOLD_PAGES: usize = 256;
/// Most goroutines compacted per pass (a pass is ~2–5 µs per goroutine, so
/// runnable goroutines wait at most a few hundred µs).
pub(crate) const BATCH: usize = 64;
/// Registry entries looked at per pass at most (~50 µs): a pass runs when
/// the worker is about to sleep, and work that arrives meanwhile waits for
/// it (16 K entries per pass slowed spawn-heavy programs by half).
const SCAN: usize = 1024;

/// What a compacted slot keeps. Touched only by the holder of the slot's
/// `COMPACTING`/`RESTORING` state.
struct Saved {
    /// Lowest saved address.
    lo: usize,
    /// First page moved out (`lo` rounded down).
    page_lo: usize,
    /// End of the saved bytes (the goroutine's initial stack pointer).
    top: usize,
    /// End of the slot (page aligned).
    end: usize,
    /// `[lo, top)`. Allocated by the compactor before `COMPACTING`; never
    /// freed by the handler thread (it must not call the allocator).
    buf: Vec<u8>,
    /// Bytes accounted in `BYTES_SAVED` for this compaction.
    saved_bytes: usize,
}

/// Per-slot compaction state.
struct SlotMeta {
    /// `RESIDENT`, `COMPACTING`, `COMPACTED` or `RESTORING`.
    state: AtomicU8,
    /// Owned by whoever holds the state (see `Saved`).
    saved: UnsafeCell<Saved>,
}

/// Compaction state of one registered slab (leaked: slabs are never unmapped).
struct SlabMeta {
    start: usize,
    slot_size: usize,
    /// `REG_PENDING` from publication until `UFFDIO_REGISTER` returned,
    /// then `REG_OK` or `REG_FAILED` (a failed slab is never compacted).
    /// The meta is published before the registration, so the handler finds
    /// it for every fault the registration makes possible.
    registered: AtomicU8,
    slots: Box<[SlotMeta]>,
}

// SAFETY: `Saved` cells are only touched by the thread that holds their slot
// through the state machine (exclusive by CAS); the rest is atomic or
// immutable after publication.
unsafe impl Sync for SlabMeta {}

/// `SlabMeta::registered`: registration in progress.
const REG_PENDING: u8 = 0;
/// `SlabMeta::registered`: the slab is registered with the uffd.
const REG_OK: u8 = 1;
/// `SlabMeta::registered`: registration failed.
const REG_FAILED: u8 = 2;

/// `SlabMeta` per stack slab index (`stack::slab_index`), null until the
/// slab is first compacted into.
static METAS: [AtomicPtr<SlabMeta>; stack::MAX_SLABS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; stack::MAX_SLABS];

/// Holding areas `(start, end)` for the handler. The compactor fills the
/// holes a move leaves there before reading, so no fault is expected in a
/// holding area; the handler still serves one (zeros) rather than abort.
const MAX_HOLDERS: usize = 1024;
static HOLDERS: [[AtomicUsize; 2]; MAX_HOLDERS] =
    [const { [const { AtomicUsize::new(0) }; 2] }; MAX_HOLDERS];
static NHOLDERS: AtomicUsize = AtomicUsize::new(0);

/// Process-wide counters (see `debug::CompactionStats`).
pub(crate) struct Counters {
    pub(crate) compacted_now: AtomicU64,
    pub(crate) bytes_saved: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) owner_restores: AtomicU64,
    pub(crate) handler_restores: AtomicU64,
    pub(crate) waker_restores: AtomicU64,
    pub(crate) lazy_fills: AtomicU64,
    pub(crate) trimmed_bytes: AtomicU64,
    pub(crate) registered_slabs: AtomicU64,
    pub(crate) max_restore_ns: AtomicU64,
    /// Restore latency histogram (owner and waker restores): bucket `k`
    /// counts latencies in
    /// `[2^(k/4) .. 2^((k+1)/4))` ns (four buckets per power of two).
    pub(crate) restore_hist: [AtomicU64; 160],
}

pub(crate) static COUNTERS: Counters = Counters {
    compacted_now: AtomicU64::new(0),
    bytes_saved: AtomicU64::new(0),
    compactions: AtomicU64::new(0),
    skipped: AtomicU64::new(0),
    owner_restores: AtomicU64::new(0),
    handler_restores: AtomicU64::new(0),
    waker_restores: AtomicU64::new(0),
    lazy_fills: AtomicU64::new(0),
    trimmed_bytes: AtomicU64::new(0),
    registered_slabs: AtomicU64::new(0),
    max_restore_ns: AtomicU64::new(0),
    restore_hist: [const { AtomicU64::new(0) }; 160],
};

/// Histogram bucket of a latency in ns.
fn bucket(ns: u64) -> usize {
    let ns = ns.max(1);
    let log = 63 - ns.leading_zeros() as usize;
    let frac = if log >= 2 {
        ((ns >> (log - 2)) & 3) as usize
    } else {
        0
    };
    (log * 4 + frac).min(159)
}

/// Lower bound of bucket `k` in ns.
fn bucket_floor(k: usize) -> u64 {
    let log = k / 4;
    let frac = (k % 4) as u64;
    if log >= 2 {
        (1u64 << log) + (frac << (log - 2))
    } else {
        1u64 << log
    }
}

/// Median restore latency (owner and waker restores) in ns (bucket floor),
/// 0 without samples.
pub(crate) fn median_restore_ns() -> u64 {
    let counts: Vec<u64> = COUNTERS
        .restore_hist
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut acc = 0;
    for (k, c) in counts.iter().enumerate() {
        acc += c;
        if acc * 2 >= total {
            return bucket_floor(k);
        }
    }
    0
}

/// The process-wide machinery, once the probe succeeded.
struct Compactor {
    uffd: Uffd,
}

static COMPACTOR: OnceLock<Result<Compactor, String>> = OnceLock::new();

/// Whether compaction can run in this process; the reason if not. The first
/// call opens the userfaultfd and starts the handler thread.
pub(crate) fn probe() -> Result<(), &'static str> {
    match compactor() {
        Ok(_) => Ok(()),
        Err(e) => Err(e.as_str()),
    }
}

/// The probe's outcome if it ran (without running it: `debug::stats` must
/// not start the handler).
pub(crate) fn probe_result() -> Result<(), &'static str> {
    match COMPACTOR.get() {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.as_str()),
    }
}

fn compactor() -> &'static Result<Compactor, String> {
    COMPACTOR.get_or_init(|| {
        let c = open()?;
        std::thread::Builder::new()
            .name("goro-uffd".into())
            .spawn(handler_main)
            .map_err(|e| format!("cannot start the fault-handler thread: {e}"))?;
        Ok(c)
    })
}

fn open() -> Result<Compactor, String> {
    if std::env::var_os("GORO_STACK_COMPACTION_SIMULATE_UNAVAILABLE").is_some() {
        return Err(
            "userfaultfd unavailable (simulated by GORO_STACK_COMPACTION_SIMULATE_UNAVAILABLE)"
                .into(),
        );
    }
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err("not supported on this architecture".into());
    }
    if cfg!(goro_bookkeeping_off) {
        return Err("built with goro_bookkeeping_off: park times are not recorded".into());
    }
    switch_depth().map_err(|e| format!("cannot keep the context switch's stores: {e}"))?;
    let uffd = match Uffd::open(0, uffd::UFFD_FEATURE_MOVE) {
        Ok(u) => u,
        Err(e) => {
            let user_only = Uffd::open(uffd::UFFD_USER_MODE_ONLY, 0).is_ok();
            return Err(if user_only {
                format!(
                    "userfaultfd: {e}; only UFFD_USER_MODE_ONLY is allowed, where a kernel-mode access \
                     (a read(2) into a compacted stack buffer) would fail with EFAULT \
                     (needs CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)"
                )
            } else {
                format!(
                    "userfaultfd: {e} (needs Linux with CONFIG_USERFAULTFD, and CAP_SYS_PTRACE, \
                     vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)"
                )
            });
        }
    };
    if uffd.features & uffd::UFFD_FEATURE_MOVE == 0 {
        return Err("the kernel lacks UFFDIO_MOVE (Linux 6.8+)".into());
    }
    // Guards must be MADV_GUARD_INSTALL markers (one mapping per slab, which
    // registration keeps whole).
    // SAFETY: a fresh private anonymous mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: our fresh mapping; it holds no data.
    let g = unsafe { uffd::madvise(p as usize, PAGE, uffd::MADV_GUARD_INSTALL) };
    // SAFETY: unmapping our own probe mapping.
    unsafe { libc::munmap(p, 2 * PAGE) };
    if let Err(e) = g {
        return Err(format!(
            "the kernel lacks MADV_GUARD_INSTALL (Linux 6.13+): {e}"
        ));
    }
    Ok(Compactor { uffd })
}

fn the_uffd() -> &'static Uffd {
    match compactor() {
        Ok(c) => &c.uffd,
        Err(_) => unreachable!("compaction used without a successful probe"),
    }
}

/// Stack pointer at the call site (the goroutine's, in `suspend`).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; no memory access.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register; no memory access.
    unsafe {
        std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        sp = 0;
    }
    sp
}

/// The slot of `addr`: its slab's meta (null if never compacted into) and
/// index, plus the slot's bounds.
fn locate(addr: usize) -> Option<(&'static SlabMeta, usize)> {
    let (idx, start, _end, slot_size) = stack::slab_index(addr)?;
    let p = METAS[idx].load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: published entries are leaked `SlabMeta`s.
    let m = unsafe { &*p };
    Some((m, (addr - start) / slot_size))
}

/// The meta of the slab holding `addr`, registering the slab on first use.
/// None if the slab cannot be registered.
fn slab_for_compaction(addr: usize) -> Option<&'static SlabMeta> {
    let (idx, start, end, slot_size) = stack::slab_index(addr)?;
    let p = METAS[idx].load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: published entries are leaked `SlabMeta`s.
        let m = unsafe { &*p };
        match m.registered.load(Ordering::Acquire) {
            REG_OK => return Some(m),
            REG_FAILED => return None,
            // Another worker is registering it (holding the lock below).
            _ => {}
        }
    }
    // Only home workers get here, possibly two at once for one slab: the
    // lock makes one of them register it.
    static REGISTER: Mutex<()> = Mutex::new(());
    let _g = REGISTER.lock();
    let p = METAS[idx].load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: as above.
        let m = unsafe { &*p };
        // Settled: registration happens under this lock.
        return (m.registered.load(Ordering::Acquire) == REG_OK).then_some(m);
    }
    let n = (end - start) / slot_size;
    let slots = (0..n)
        .map(|_| SlotMeta {
            state: AtomicU8::new(RESIDENT),
            saved: UnsafeCell::new(Saved {
                lo: 0,
                page_lo: 0,
                top: 0,
                end: 0,
                buf: Vec::new(),
                saved_bytes: 0,
            }),
        })
        .collect();
    // No new goroutine starts in a registered slab: its never-touched pages
    // would each cost a trip through the handler.
    stack::stop_carving(start, end);
    // Huge pages would make every move split one; keep 4 KiB granularity.
    // SAFETY: advisory, contents unchanged.
    let _ = unsafe { uffd::madvise(start, end - start, libc::MADV_NOHUGEPAGE) };
    // Publish before registering: the handler must find the meta of any
    // fault the registration makes possible (a fault on an unknown address
    // aborts). Every slot starts RESIDENT, which is what the handler needs
    // to serve such a fault (a lazy fill).
    let m: &'static SlabMeta = Box::leak(Box::new(SlabMeta {
        start,
        slot_size,
        registered: AtomicU8::new(REG_PENDING),
        slots,
    }));
    METAS[idx].store(m as *const SlabMeta as *mut SlabMeta, Ordering::Release);
    // SAFETY: a stack slab (owned by the stack allocator, never unmapped);
    // its meta is published above, so the handler serves every fault in it.
    let ok = unsafe { the_uffd().register(start, end - start) }.is_ok();
    m.registered
        .store(if ok { REG_OK } else { REG_FAILED }, Ordering::Release);
    if ok {
        COUNTERS.registered_slabs.fetch_add(1, Ordering::Relaxed);
    }
    ok.then_some(m)
}

/// Set while a worker runs an idle pass (see `idle_pass`).
static COMPACTOR_BUSY: AtomicBool = AtomicBool::new(false);

/// A worker's compaction state (only its thread touches it).
#[derive(Default)]
pub(crate) struct Local {
    /// Holding area and restore scratch, created at the first compaction.
    area: RefCell<Option<Area>>,
    /// Registry index where the next scan starts.
    cursor: Cell<usize>,
    /// Coarse-clock ms before which no scan is worth it.
    next_scan_ms: Cell<u64>,
    /// Whether the last full sweep saw a parked goroutine not yet due.
    pending: Cell<bool>,
    /// The worker's switch counter at the last full sweep.
    switches_at_sweep: Cell<u64>,
    /// Earliest due time (coarse ms) of a parked goroutine not yet due that
    /// the passes of the current sweep saw, plus one; 0: none yet.
    sweep_earliest: Cell<u64>,
}

impl Local {
    /// When an idle worker should wake up to compact (coarse-clock ms): at
    /// the next scan if a goroutine was waiting to become due, or if
    /// goroutines ran since the last sweep (they may have parked).
    pub(crate) fn wake_at_ms(&self, switches: u64) -> Option<u64> {
        let next = self.next_scan_ms.get();
        if next == u64::MAX {
            return None;
        }
        (self.pending.get() || switches != self.switches_at_sweep.get()).then_some(next)
    }
}

/// A worker's holding area (registered with the uffd: it is the
/// `UFFDIO_MOVE` destination) and page-image scratch for restores.
struct Area {
    hold: usize,
    scratch: Vec<u8>,
}

/// Areas of workers that exited, for the next worker to reuse (holding
/// areas stay registered and listed for the handler).
static SPARE_AREAS: Mutex<Vec<Area>> = Mutex::new(Vec::new());

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(a) = self.area.get_mut().take() {
            SPARE_AREAS.lock().push(a);
        }
    }
}

impl Area {
    fn new() -> Option<Area> {
        if let Some(a) = SPARE_AREAS.lock().pop() {
            return Some(a);
        }
        let bytes = HOLD_PAGES * PAGE;
        // SAFETY: a fresh private anonymous mapping at a kernel-chosen address.
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
            return None;
        }
        let hold = p as usize;
        // SAFETY: our fresh mapping; advisory.
        let _ = unsafe { uffd::madvise(hold, bytes, libc::MADV_NOHUGEPAGE) };
        let n = NHOLDERS.load(Ordering::Relaxed);
        // SAFETY: our fresh mapping; only this worker's compactor touches it
        // (after filling any hole), and the handler serves a fault there as
        // zeros once it is listed in `HOLDERS` (nothing touches it before).
        if n >= MAX_HOLDERS || unsafe { the_uffd().register(hold, bytes) }.is_err() {
            // SAFETY: our mapping, never used.
            unsafe { libc::munmap(p, bytes) };
            return None;
        }
        let i = NHOLDERS.fetch_add(1, Ordering::AcqRel);
        if i >= MAX_HOLDERS {
            return None;
        }
        HOLDERS[i][0].store(hold, Ordering::Relaxed);
        HOLDERS[i][1].store(hold + bytes, Ordering::Release);
        Some(Area {
            hold,
            scratch: vec![0; bytes],
        })
    }
}

/// After `stack::free` released the pages of a slot, maps the shared zero
/// page over its top `pages` pages if its slab is registered, so that the
/// next goroutine to use the slot takes ordinary page faults there instead
/// of a trip through the fault handler each.
pub(crate) fn after_release(bottom: usize, slot_size: usize, pages: usize) {
    let Some((meta, _)) = locate(bottom) else {
        return;
    };
    if meta.registered.load(Ordering::Acquire) != REG_OK {
        return;
    }
    let n = pages.min(slot_size / PAGE - 1);
    // EEXIST (a page is present) is harmless: the slot is free, nobody
    // compacts it.
    // SAFETY: the pages of a free slot whose contents were just released:
    // zeros are what a fresh stack reads there.
    let _ = unsafe { the_uffd().zeropage(bottom + slot_size - n * PAGE, n * PAGE) };
}

fn in_holder(addr: usize) -> bool {
    let n = NHOLDERS.load(Ordering::Acquire).min(MAX_HOLDERS);
    HOLDERS.iter().take(n).any(|h| {
        let end = h[1].load(Ordering::Acquire);
        addr >= h[0].load(Ordering::Relaxed) && addr < end
    })
}

/// One compaction pass of an idle worker (`switches`: its switch counter):
/// compacts up to `BATCH` of its goroutines parked for at least `after_ms`,
/// in address order. Returns whether it compacted anything (then the caller
/// looks for work again before another pass).
pub(crate) fn idle_pass(
    local: &Local,
    registry: &Mutex<Registry>,
    after_ms: u64,
    switches: u64,
) -> bool {
    let now = super::goroutine::coarse_now_ms();
    if now < local.next_scan_ms.get() || !stack::guards_are_markers() {
        return false;
    }
    if probe().is_err() {
        local.next_scan_ms.set(u64::MAX);
        return false;
    }
    // One compacting worker at a time: each `UFFDIO_MOVE` flushes the TLB
    // of every CPU running this process, so two workers compacting at once
    // interrupt each other once per stack (an IPI costs ~10 µs on a VM:
    // a million stacks took ~10 s to 90 %); one at a time, with the others
    // asleep, 3.3 s. The others look again 20 ms later.
    if COMPACTOR_BUSY.swap(true, Ordering::Acquire) {
        local.next_scan_ms.set(now + 20);
        local.pending.set(true);
        return false;
    }
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            COMPACTOR_BUSY.store(false, Ordering::Release);
        }
    }
    let _busy = Release;
    let mut cands: Vec<(usize, GRef)> = Vec::with_capacity(BATCH);
    let mut earliest = u64::MAX;
    // Earliest not-yet-due seen after this pass wrapped to index 0: those
    // entries belong to the next sweep.
    let mut after_wrap = u64::MAX;
    let mut wrapped = false;
    {
        let reg = registry.lock();
        let n = reg.slots.len();
        let mut i = local.cursor.get().min(n);
        let mut looked = 0;
        while looked < SCAN.min(n) && cands.len() < BATCH {
            if i >= n {
                i = 0;
                wrapped = true;
            }
            if let Some(g) = &reg.slots[i] {
                if let Some(due) = candidate(g, after_ms) {
                    if due <= now {
                        cands.push((g.saved_sp.load(Ordering::Relaxed), g.clone()));
                    } else {
                        earliest = earliest.min(due);
                        if wrapped {
                            after_wrap = after_wrap.min(due);
                        }
                    }
                }
            }
            i += 1;
            looked += 1;
        }
        local.cursor.set(i);
        if looked >= n {
            wrapped = true;
        }
    }
    // A sweep takes many passes: what its earlier passes saw counts too;
    // what this one saw after wrapping starts the next sweep's record.
    let seen = local.sweep_earliest.get();
    if seen != 0 {
        earliest = earliest.min(seen - 1);
    }
    let carry = if wrapped { after_wrap } else { earliest };
    local
        .sweep_earliest
        .set(if carry == u64::MAX { 0 } else { carry + 1 });
    if cands.is_empty() {
        if wrapped {
            // A whole sweep found nothing due: no scan before the earliest
            // candidate is due (or a threshold from now).
            local.next_scan_ms.set(earliest.min(now + after_ms.max(1)));
            local.pending.set(earliest != u64::MAX);
            local.switches_at_sweep.set(switches);
        } else {
            // Part of a sweep, nothing due in it: the rest at the next
            // coarse tick, so a worker that idles often (a spawn-heavy
            // program) does not scan at every idle moment.
            local.next_scan_ms.set(now + 1);
            local.pending.set(true);
        }
        return false;
    }
    cands.sort_unstable_by_key(|c| c.0);
    let mut area = local.area.borrow_mut();
    if area.is_none() {
        *area = Area::new();
    }
    let Some(area) = area.as_mut() else {
        local.next_scan_ms.set(u64::MAX);
        return false;
    };
    if compact_batch(area, &cands) > 0 {
        return true;
    }
    // Nothing compacted (every candidate refused, and marked so, or held
    // for a moment by the handler): never leave the next scan in the past,
    // or an idle worker would spin on the same candidates.
    local.next_scan_ms.set(now + 1);
    local.pending.set(true);
    false
}

/// When `g` becomes due for compaction (coarse ms), if it is a candidate:
/// started, suspended by a park (not a yield), resident.
fn candidate(g: &Goroutine, after_ms: u64) -> Option<u64> {
    let sp = g.saved_sp.load(Ordering::Relaxed);
    if g.state.load(Ordering::Relaxed) != super::park::PARKED
        || g.tracing.load(Ordering::Relaxed)
        || sp == 0
        || sp & SP_MARKS != 0
    {
        return None;
    }
    Some(g.parked_at.load(Ordering::Relaxed).saturating_add(after_ms))
}

/// A stack moved into the holding area, not yet copied out.
struct Pending<'a> {
    slot: &'a SlotMeta,
    g: &'a GRef,
    /// Offset of `lo` in the holding area.
    off: usize,
    buf: Vec<u8>,
    /// Dead pages below the saved range to give back: `[trim_lo, page_lo)`
    /// (empty when `trim_lo == page_lo`), `trim_pages` of them resident.
    trim_lo: usize,
    page_lo: usize,
    trim_pages: usize,
}

/// One stack of a batch, planned before any slot is held.
struct Plan<'a> {
    slot: &'a SlotMeta,
    g: &'a GRef,
    lo: usize,
    page_lo: usize,
    top: usize,
    end: usize,
    buf: Vec<u8>,
    /// Lowest resident page below `page_lo` (== `page_lo`: none).
    trim_lo: usize,
    /// Resident pages in `[trim_lo, page_lo)`.
    trim_pages: usize,
}

/// The resident pages of `[base, page_lo)` (dead stack below a suspended
/// goroutine's saved range: what it used when it ran deeper): the lowest
/// one and how many, or `(page_lo, 0)`. `vec` is scratch for `mincore`.
fn resident_below(base: usize, page_lo: usize, vec: &mut Vec<u8>) -> (usize, usize) {
    if page_lo <= base {
        return (page_lo, 0);
    }
    let n = (page_lo - base) / PAGE;
    vec.clear();
    vec.resize(n, 0);
    // SAFETY: a mapped, page-aligned range of a stack slot; `vec` has one
    // byte per page. mincore never faults on the range itself.
    let r = unsafe { libc::mincore(base as *mut libc::c_void, n * PAGE, vec.as_mut_ptr()) };
    if r != 0 {
        return (page_lo, 0);
    }
    match vec.iter().position(|v| v & 1 != 0) {
        Some(first) => (
            base + first * PAGE,
            vec[first..].iter().filter(|v| *v & 1 != 0).count(),
        ),
        None => (page_lo, 0),
    }
}

/// Compacts the goroutines `cands` (suspended, pinned to this worker, which
/// is in its scheduler loop). Returns how many were compacted.
///
/// Everything that allocates or locks (slab registration, buffers) happens
/// before the first slot is taken: while a slot is `COMPACTING` the fault
/// handler may wait for it, and a thread blocked on that slot's pages may
/// hold an allocator lock.
fn compact_batch(area: &mut Area, cands: &[(usize, GRef)]) -> usize {
    let uffd = the_uffd();
    let mut plans: Vec<Plan<'_>> = Vec::with_capacity(cands.len());
    let mut mincore_vec = Vec::new();
    for (sp, g) in cands {
        let sp = *sp;
        let Some(meta) = slab_for_compaction(sp) else {
            mark_skipped(g);
            continue;
        };
        let i = (sp - meta.start) / meta.slot_size;
        let bottom = meta.start + i * meta.slot_size;
        let end = bottom + meta.slot_size;
        let top = stack::top_of(bottom, meta.slot_size);
        let lo = sp.saturating_sub(margin()).max(bottom + PAGE) & !15;
        let page_lo = lo & !(PAGE - 1);
        if top <= sp || top > end || (end - page_lo) / PAGE > HOLD_PAGES {
            mark_skipped(g);
            continue;
        }
        // Pages below the saved range that are still resident (the stack
        // once ran deeper) are trimmed too.
        let (trim_lo, trim_pages) = resident_below(bottom + PAGE, page_lo, &mut mincore_vec);
        plans.push(Plan {
            slot: &meta.slots[i],
            g,
            lo,
            page_lo,
            top,
            end,
            buf: Vec::with_capacity(top - lo),
            trim_lo,
            trim_pages,
        });
    }
    let mut done = 0;
    let mut used = 0usize; // holding-area pages in use
    let mut pending: Vec<Pending<'_>> = Vec::with_capacity(plans.len());
    let mut old_bufs: Vec<Vec<u8>> = Vec::with_capacity(plans.len());
    let mut trims: Vec<libc::iovec> = Vec::with_capacity(plans.len());
    for p in plans.iter_mut() {
        let npages = (p.end - p.page_lo) / PAGE;
        let len = npages * PAGE;
        if used + npages > HOLD_PAGES {
            done += finish(area, &mut pending, &mut used, &mut old_bufs, &mut trims);
        }
        let slot = p.slot;
        let mut retried = false;
        loop {
            if slot
                .state
                .compare_exchange(RESIDENT, COMPACTING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                // Held by the handler for a moment: try again at a later pass.
                break;
            }
            let dst = area.hold + used * PAGE;
            match move_out(uffd, dst, p.page_lo, len) {
                Ok(()) => {
                    // SAFETY: we hold the slot in COMPACTING: `saved` is ours.
                    let s = unsafe { &mut *slot.saved.get() };
                    s.lo = p.lo;
                    s.page_lo = p.page_lo;
                    s.top = p.top;
                    s.end = p.end;
                    pending.push(Pending {
                        slot,
                        g: p.g,
                        off: used * PAGE + (p.lo - p.page_lo),
                        buf: std::mem::take(&mut p.buf),
                        trim_lo: p.trim_lo,
                        page_lo: p.page_lo,
                        trim_pages: p.trim_pages,
                    });
                    used += npages;
                    break;
                }
                Err(busy) => {
                    // The pages are back (`move_out`); so is the slot.
                    slot.state.store(RESIDENT, Ordering::Release);
                    if busy && !retried {
                        // A page is COW-shared since a fork(), or the move
                        // raced a page-table change: take write faults that
                        // change no byte (exclusive again), then retry once.
                        // Faulting may need the handler (a never-touched
                        // page of the range), which may be waiting for a
                        // slot we hold: copy the pending stacks out first,
                        // so this thread holds no slot while it faults.
                        retried = true;
                        done += finish(area, &mut pending, &mut used, &mut old_bufs, &mut trims);
                        // SAFETY: write-faulting pages of a suspended stack
                        // does not change their contents; the slot is
                        // RESIDENT and no slot is held by this thread.
                        if unsafe { uffd::madvise(p.page_lo, len, uffd::MADV_POPULATE_WRITE) }
                            .is_ok()
                        {
                            continue;
                        }
                    }
                    mark_skipped(p.g);
                    break;
                }
            }
        }
    }
    done += finish(area, &mut pending, &mut used, &mut old_bufs, &mut trims);
    drop(old_bufs);
    done
}

/// Marks `g` (suspended, on this its home worker) as refused: not a
/// candidate again before it runs (see `SKIP_BIT`).
fn mark_skipped(g: &Goroutine) {
    let sp = g.saved_sp.load(Ordering::Relaxed);
    g.saved_sp.store(sp | SKIP_BIT, Ordering::Relaxed);
    COUNTERS.skipped.fetch_add(1, Ordering::Relaxed);
}

/// Moves the stack pages `[src, src+len)` into the holding area at `dst`
/// (the caller holds their slot in `COMPACTING`), then maps zero pages over
/// the holes the move left in the holding area (unpopulated stack pages),
/// so that copying out never faults: a fault there would need the handler,
/// which may be waiting for a slot this thread holds. On failure everything
/// that moved is back on the stack; `Err(true)` if the failure is transient
/// (`EBUSY`: a COW-shared page; `EAGAIN`: a racing page-table change).
fn move_out(uffd: &Uffd, dst: usize, src: usize, len: usize) -> Result<(), bool> {
    // SAFETY: the caller holds the slot of `[src, src+len)` in COMPACTING
    // (a thread touching those pages waits for the handler, which waits for
    // the slot); `dst` is this worker's empty holding area.
    if let Err(e) = unsafe { uffd.mov(dst, src, len) } {
        move_back(uffd, src, dst, e.done);
        return Err(matches!(
            e.err.raw_os_error(),
            Some(libc::EBUSY) | Some(libc::EAGAIN)
        ));
    }
    for page in (dst..dst + len).step_by(PAGE) {
        // SAFETY: a page of this worker's holding area left missing by the
        // move (an unpopulated stack page, which reads as zeros).
        if let Err(e) = unsafe { uffd.zeropage(page, PAGE) } {
            if e.err.raw_os_error() != Some(libc::EEXIST) {
                // Put everything back (holes and zero pages included).
                move_back(uffd, src, dst, len);
                return Err(false);
            }
        }
    }
    Ok(())
}

/// Moves `done` bytes back from the holding area to the stack after a
/// failed move (the stack pages are missing and registered: a move back
/// cannot fail but for a kernel bug, which would lose stack bytes).
fn move_back(uffd: &Uffd, page_lo: usize, dst: usize, done: usize) {
    if done > 0 {
        // SAFETY: the pages just moved out of the stack (whose slot the
        // caller still holds), back to where they were.
        if let Err(p) = unsafe { uffd.mov(page_lo, dst, done) } {
            eprintln!("goro: moving stack pages back failed: {}", p.err);
            std::process::abort();
        }
    }
}

/// Copies the moved stacks out of the holding area, publishes them as
/// `COMPACTED` and empties the holding area. Old buffers (left by handler
/// restores) go to `old_bufs`, dropped once no slot is `COMPACTING`.
fn finish(
    area: &mut Area,
    pending: &mut Vec<Pending<'_>>,
    used: &mut usize,
    old_bufs: &mut Vec<Vec<u8>>,
    trims: &mut Vec<libc::iovec>,
) -> usize {
    let n = pending.len();
    // Dead pages below the saved ranges go first, while the slots are still
    // held: their goroutines cannot run, so nothing can grow into them
    // meanwhile. One batched call (one TLB flush) for the whole batch;
    // `trims` has capacity for every stack of the batch (no allocation).
    trims.clear();
    let mut trimmed = 0;
    for p in pending.iter() {
        if p.trim_lo < p.page_lo {
            trims.push(libc::iovec {
                iov_base: p.trim_lo as *mut libc::c_void,
                iov_len: p.page_lo - p.trim_lo,
            });
            trimmed += p.trim_pages;
        }
    }
    if !trims.is_empty() {
        // SAFETY: each range lies below the saved stack pointer of a
        // suspended goroutine whose slot we hold, minus the margin the
        // switch writes into: dead frames no one may read (a pointer into
        // them would dangle). Missing afterwards, they are served by the
        // handler (zeros) if the goroutine grows that deep again.
        unsafe { stack::discard(trims) };
        COUNTERS
            .trimmed_bytes
            .fetch_add((trimmed * PAGE) as u64, Ordering::Relaxed);
    }
    for p in pending.iter_mut() {
        // SAFETY: slot held in COMPACTING by us.
        let s = unsafe { &mut *p.slot.saved.get() };
        let len = s.top - s.lo;
        // SAFETY: the holding area is private to this worker and every page
        // of the range is present (moved in, or a hole `move_out` filled
        // with the zero page), so this read never faults; `buf` has
        // capacity `len`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (area.hold + p.off) as *const u8,
                p.buf.as_mut_ptr(),
                len,
            );
            p.buf.set_len(len);
        }
        old_bufs.push(std::mem::replace(&mut s.buf, std::mem::take(&mut p.buf)));
        let moved = s.end - s.page_lo;
        s.saved_bytes = moved.saturating_sub(s.buf.capacity());
        COUNTERS
            .bytes_saved
            .fetch_add(s.saved_bytes as u64, Ordering::Relaxed);
        COUNTERS.compactions.fetch_add(1, Ordering::Relaxed);
        COUNTERS.compacted_now.fetch_add(1, Ordering::Relaxed);
        // Only the home worker (this thread) writes it.
        let sp = p.g.saved_sp.load(Ordering::Relaxed);
        p.g.saved_sp.store(sp | COMPACTED_BIT, Ordering::Relaxed);
        // Release: the buffer happens-before any restorer's read of it.
        p.slot.state.store(COMPACTED, Ordering::Release);
    }
    pending.clear();
    if *used > 0 {
        // SAFETY: the holding area is ours; its contents were copied out.
        unsafe {
            let _ = uffd::madvise(area.hold, *used * PAGE, libc::MADV_DONTNEED);
        }
        *used = 0;
    }
    n
}

/// Refills a slot from its buffer with one `UFFDIO_COPY` (which wakes every
/// thread blocked on those pages). The caller holds the slot in
/// `RESTORING`. Allocation-free (the handler calls it).
fn restore_locked(slot: &SlotMeta, scratch: &mut [u8]) {
    // SAFETY: the caller holds the slot in RESTORING.
    let s = unsafe { &mut *slot.saved.get() };
    let n = s.end - s.page_lo;
    let img = &mut scratch[..n];
    let off = s.lo - s.page_lo;
    // Below `lo` and above `top` nothing is live: zeros, not stale bytes.
    img[..off].fill(0);
    img[off..off + s.buf.len()].copy_from_slice(&s.buf);
    img[off + s.buf.len()..].fill(0);
    // SAFETY: the caller holds the slot in RESTORING: its pages are missing
    // and their bytes are the image built from the buffer above.
    if let Err(p) = unsafe { the_uffd().copy(s.page_lo, img.as_ptr() as usize, n) } {
        // A page of a compacted range is present: the state machine was
        // broken. Stack bytes would be lost; stop here.
        eprintln!(
            "goro: restoring a compacted stack failed after {} bytes: {}",
            p.done, p.err
        );
        std::process::abort();
    }
    COUNTERS
        .bytes_saved
        .fetch_sub(s.saved_bytes as u64, Ordering::Relaxed);
    COUNTERS.compacted_now.fetch_sub(1, Ordering::Relaxed);
    s.saved_bytes = 0;
}

/// Makes `g`'s stack resident before its home worker resumes it, if it was
/// compacted. Called only by the home worker, only when `g.compacted` is set
/// (the fast path is that one check, at the call site).
#[cold]
#[inline(never)]
pub(crate) fn restore_for_resume(g: &Goroutine, local: &Local) {
    let sp = g.saved_sp.load(Ordering::Relaxed) & !SP_MARKS;
    g.saved_sp.store(sp, Ordering::Relaxed);
    let Some((meta, i)) = locate(sp) else {
        return;
    };
    let slot = &meta.slots[i];
    let t0 = Instant::now();
    let mut restored = false;
    let old = loop {
        match slot.state.load(Ordering::Acquire) {
            COMPACTED => {
                if slot
                    .state
                    .compare_exchange(COMPACTED, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    let mut area = local.area.borrow_mut();
                    let scratch = &mut area
                        .as_mut()
                        .expect("a worker that compacted has an area")
                        .scratch;
                    restore_locked(slot, scratch);
                    restored = true;
                    // SAFETY: we hold the slot in RESTORING.
                    let b = std::mem::take(unsafe { &mut (*slot.saved.get()).buf });
                    slot.state.store(RESIDENT, Ordering::Release);
                    break b;
                }
            }
            RESIDENT => {
                // A waker or the handler restored it; release the buffer it
                // left (the handler never frees memory; a waker leaves it to
                // us too).
                if slot
                    .state
                    .compare_exchange(RESIDENT, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: we hold the slot in RESTORING.
                    let b = std::mem::take(unsafe { &mut (*slot.saved.get()).buf });
                    slot.state.store(RESIDENT, Ordering::Release);
                    break b;
                }
            }
            // A waker or the handler is restoring it, or the handler is
            // filling a page (a few ioctls).
            RESTORING => std::thread::yield_now(),
            _ => unreachable!("the owner saw its own goroutine's stack COMPACTING"),
        }
    };
    drop(old);
    if restored {
        let ns = t0.elapsed().as_nanos() as u64;
        COUNTERS.owner_restores.fetch_add(1, Ordering::Relaxed);
        COUNTERS.restore_hist[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        COUNTERS.max_restore_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// Makes the stack holding `addr` resident before this thread touches it,
/// if it is compacted: the restore happens here, inline (one
/// `UFFDIO_COPY`, ~2 µs), instead of through a fault and a round trip via
/// the handler thread (tens of µs of thread wake-ups). Called by whoever is
/// about to write a waiter record that lives on a parked goroutine's stack
/// (a channel claiming a `WaitCtx`). Purely an optimisation: an access
/// without it is still correct (it faults and the handler restores).
///
/// The fast path is one relaxed load while nothing is compacted in the
/// process, two while something is.
#[inline]
pub(crate) fn restore_before_touch(g: &Goroutine, addr: usize) {
    // The count first (a shared, rarely written line): nothing compacted in
    // the process means nothing to check. Then the goroutine's own mark,
    // set before its slot is published COMPACTED and cleared only by its
    // owner on resume; a stale view either way only costs the slow path or
    // a fault.
    if COUNTERS.compacted_now.load(Ordering::Relaxed) != 0
        && g.saved_sp.load(Ordering::Relaxed) & COMPACTED_BIT != 0
    {
        restore_for_waker(addr);
    }
}

/// Largest stack (pages from `page_lo` to the slot end) a waker restores
/// inline; deeper ones go through the fault path. Also the size of each
/// thread's scratch, so a waker keeps at most 64 KiB of it.
const WAKER_PAGES: usize = 16;

thread_local! {
    /// Page-image scratch for `restore_for_waker`, allocated (and zeroed)
    /// before a slot is taken, never while holding one.
    static WAKER_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Stack the inline restore needs below `restore_for_waker`'s frame
/// (`restore_locked`, the copies, the ioctl wrapper: well under this).
const WAKER_STACK_ROOM: usize = 4 * PAGE;

/// Makes sure the pages of the running stack just below the caller cannot
/// fault to the handler while it holds a slot; false if there is not
/// enough room left on this stack for the inline restore.
///
/// A waker may run on a goroutine stack in a registered slab with missing
/// pages just below it (trimmed, never touched, or released): faulting
/// there while holding another slot in `RESTORING` would wait for the
/// handler, which may itself be waiting for that slot. Reading each of
/// those pages first (no slot held) gets a missing one mapped (the zero
/// page; a later write is an ordinary copy-on-write fault, not a
/// userfault). Pages of a running stack do not go missing again: trimming
/// and moves act on suspended goroutines only, releases on free slots.
fn stack_room_ready() -> bool {
    let sp = stack_pointer();
    let Some((_, start, _, slot_size)) = stack::slab_index(sp) else {
        // A thread's own stack (plain thread, scheduler, pool): never
        // registered.
        return true;
    };
    let lowest = start + (sp - start) / slot_size * slot_size + PAGE; // above the guard
                                                                      // Leave the guard a page of slack: the restore path must not be what
                                                                      // overflows a small stack; the fault path needs no extra depth.
    if sp < lowest + WAKER_STACK_ROOM + PAGE {
        return false;
    }
    let mut a = (sp & !(PAGE - 1)) - PAGE;
    while a >= sp - WAKER_STACK_ROOM - PAGE {
        // SAFETY: a byte of the running goroutine's own stack slot, above
        // its guard (checked above): mapped and readable. Below the stack
        // pointer nothing is live and nobody else writes, so the read races
        // nothing; it only maps the page if it was missing.
        unsafe { std::ptr::read_volatile(a as *const u8) };
        a -= PAGE;
    }
    true
}

#[cold]
#[inline(never)]
fn restore_for_waker(addr: usize) {
    let Some((meta, i)) = locate(addr) else {
        return;
    };
    let slot = &meta.slots[i];
    let _ = WAKER_SCRATCH.try_with(|cell| {
        // Not reentrant; if it somehow is, the fault path serves the access.
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            return;
        };
        if scratch.is_empty() {
            // Allocate with no slot held (see the module docs).
            scratch.resize(WAKER_PAGES * PAGE, 0);
        }
        // Only a compacted stack is ours to restore: COMPACTING and
        // RESTORING belong to someone else for a bounded window, and the
        // access that follows faults and waits for them if it must.
        if slot.state.load(Ordering::Acquire) != COMPACTED {
            return;
        }
        // Our own stack must not fault while we hold the slot (above).
        if !stack_room_ready() {
            return;
        }
        let t0 = Instant::now();
        if slot
            .state
            .compare_exchange(COMPACTED, RESTORING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // SAFETY: we hold the slot in RESTORING.
        let n = unsafe {
            let s = &*slot.saved.get();
            s.end - s.page_lo
        };
        if n > scratch.len() {
            // Deeper than the scratch: give the slot back untouched (the
            // state it had, nothing else changed); the fault path serves it.
            slot.state.store(COMPACTED, Ordering::Release);
            return;
        }
        restore_locked(slot, &mut scratch);
        // The buffer stays for the owner to free when it next resumes the
        // goroutine (its `COMPACTED_BIT` is still set), as after a handler
        // restore.
        slot.state.store(RESIDENT, Ordering::Release);
        let ns = t0.elapsed().as_nanos() as u64;
        COUNTERS.waker_restores.fetch_add(1, Ordering::Relaxed);
        COUNTERS.restore_hist[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        COUNTERS.max_restore_ns.fetch_max(ns, Ordering::Relaxed);
    });
}

/// Body of the fault-handler thread. After start-up it never allocates,
/// takes no lock and prints nothing (a thread blocked on a compacted page
/// may hold the stdout lock, an allocator lock or any user lock); it touches
/// only its scratch, buffers and the uffd.
fn handler_main() {
    super::park::mark_internal_thread();
    let uffd = the_uffd();
    let mut scratch = vec![0u8; HOLD_PAGES * PAGE];
    let zero = vec![0u8; PAGE];
    let mut msgs = [UffdMsg::default(); 64];
    loop {
        let n = match uffd.read_msgs(&mut msgs) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) => {
                continue
            }
            Err(_) => std::process::abort(),
        };
        for m in &msgs[..n] {
            if m.event != uffd::UFFD_EVENT_PAGEFAULT {
                continue;
            }
            let addr = m.pf_address as usize;
            let write = m.pf_flags & uffd::UFFD_PAGEFAULT_FLAG_WRITE != 0;
            if let Some((meta, i)) = locate(addr) {
                let bottom = meta.start + i * meta.slot_size;
                on_fault(
                    uffd,
                    &meta.slots[i],
                    bottom,
                    addr,
                    write,
                    &mut scratch,
                    &zero,
                );
            } else if in_holder(addr) {
                // A holding-area page (not expected: `move_out` fills the
                // holes before the compactor reads): zeros by definition.
                fill(uffd, addr & !(PAGE - 1), write, &zero);
            } else {
                // Not ours: nothing sane to do; a thread would hang forever.
                std::process::abort();
            }
        }
    }
}

/// Maps a page of zeros at `page` (a fresh page for a write, the shared
/// zero page for a read); wakes the faulter if it is already there.
fn fill(uffd: &Uffd, page: usize, write: bool, zero: &[u8]) -> bool {
    // SAFETY: the caller (the handler) knows zeros are the page's contents:
    // a never-touched page of a slot it holds in RESTORING, or a holding-area
    // page; `zero` is a readable page of zeros.
    let r = unsafe {
        if write {
            uffd.copy(page, zero.as_ptr() as usize, PAGE)
        } else {
            uffd.zeropage(page, PAGE)
        }
    };
    if r.is_err() {
        // EEXIST: a stale message (filled meanwhile). A wake is harmless.
        let _ = uffd.wake(page, PAGE);
        return false;
    }
    true
}

/// Handles one missing fault at `addr` in `slot` (handler thread).
fn on_fault(
    uffd: &Uffd,
    slot: &SlotMeta,
    bottom: usize,
    addr: usize,
    write: bool,
    scratch: &mut [u8],
    zero: &[u8],
) {
    loop {
        match slot.state.load(Ordering::Acquire) {
            COMPACTED => {
                if slot
                    .state
                    .compare_exchange(COMPACTED, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    restore_locked(slot, scratch);
                    slot.state.store(RESIDENT, Ordering::Release);
                    COUNTERS.handler_restores.fetch_add(1, Ordering::Relaxed);
                    // The faulting page may lie outside the refilled range
                    // (below `page_lo`): look again; returning now would
                    // strand that faulter (its message is consumed).
                    continue;
                }
            }
            // Held by the compactor, the owner or a waker: bounded windows
            // (ioctls and copies between resident memory); wait and look
            // again.
            COMPACTING | RESTORING => std::thread::yield_now(),
            _ => {
                // RESIDENT: a never-touched page, or a stale message. Hold
                // the slot while filling, so no compaction moves pages out
                // between our look at the state and the fill (that would map
                // zeros over compacted data).
                if slot
                    .state
                    .compare_exchange(RESIDENT, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                let page = addr & !(PAGE - 1);
                // A stack grows down: first map the zero page under the
                // `LAZY_AHEAD` pages below this one (page-table entries
                // only, no memory), so the growth that follows takes
                // ordinary faults rather than a round trip through this
                // thread per page; then the faulting page itself, which
                // wakes the faulter. A present page in the range stops a
                // call (EEXIST): skip it and go on above it.
                let mut lo = page.saturating_sub(LAZY_AHEAD * PAGE).max(bottom + PAGE);
                while lo < page {
                    // SAFETY: pages of a slot we hold in RESTORING, which
                    // was RESIDENT: none of it lives in a buffer, so a
                    // missing page there reads as zeros (never touched,
                    // trimmed or released); present ones are left alone
                    // (UFFDIO_ZEROPAGE never overwrites).
                    match unsafe { uffd.zeropage(lo, page - lo) } {
                        Ok(()) => break,
                        Err(p) => lo += p.done + PAGE,
                    }
                }
                if fill(uffd, page, write, zero) {
                    COUNTERS.lazy_fills.fetch_add(1, Ordering::Relaxed);
                }
                slot.state.store(RESIDENT, Ordering::Release);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The margin measured at probe time covers everything the switch out
    /// stores below the stack pointer read in `suspend`: on a scrubbed
    /// stack, no byte below `saved_sp - margin` is written by the time the goroutine is
    /// switched out.
    #[test]
    fn margin_covers_the_switch() {
        let depth = switch_depth().expect("the switch depth is measurable");
        assert!(depth.margin >= depth.measured);
        assert!(depth.margin >= MARGIN_MIN && depth.margin % 64 == 0);
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        for _ in 0..20 {
            let (tx, rx) = crate::chan::bounded::<GRef>(1);
            let (wake_tx, wake_rx) = crate::chan::bounded::<()>(1);
            let h = rt.spawn(move || {
                scrub_below();
                tx.send(super::super::goroutine::current().unwrap())
                    .unwrap();
                scrub_below();
                super::super::goroutine::park_current(
                    super::super::park::WaitReason::Select,
                    std::panic::Location::caller(),
                    None,
                );
                wake_rx.recv().unwrap();
            });
            let g = rx.recv().unwrap();
            while g.state.load(Ordering::Acquire) != super::super::park::PARKED {
                std::thread::yield_now();
            }
            // The worker stores `saved_sp` before the switch completes;
            // give it a moment after the state flips.
            std::thread::sleep(std::time::Duration::from_millis(2));
            let sp = g.saved_sp.load(Ordering::Relaxed);
            let mut lowest = sp;
            for a in (sp - 8192..sp).rev() {
                // SAFETY: the goroutine's stack slot is mapped and it is
                // switched out; reading bytes there races nothing that
                // writes (its worker is idle).
                if unsafe { std::ptr::read_volatile(a as *const u8) } != 0 {
                    lowest = a;
                }
            }
            assert!(
                sp - lowest <= depth.measured,
                "the switch wrote {} bytes below the saved stack pointer, the probe measured {}",
                sp - lowest,
                depth.measured
            );
            assert!(sp - lowest <= depth.margin);
            super::super::goroutine::unpark(&g);
            wake_tx.send(()).unwrap();
            h.join().unwrap();
        }
    }

    #[test]
    fn histogram_buckets_are_monotonic() {
        let mut last = 0;
        for ns in [1u64, 2, 3, 5, 8, 100, 1000, 1500, 2000, 10_000, 1 << 40] {
            let b = bucket(ns);
            assert!(b >= last);
            assert!(bucket_floor(b) <= ns, "{ns}");
            last = b;
        }
    }
}

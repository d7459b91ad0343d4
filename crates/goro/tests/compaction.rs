//! Idle-stack compaction (`RuntimeBuilder::stack_compaction`): compacted
//! stacks are invisible to every thread. Each test uses a runtime with a
//! 20 ms threshold and waits until the goroutines it parked are compacted.
//! Where the process cannot compact (no userfaultfd), the tests check that
//! compaction is off and say so, and skip the rest.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_child_passed, child_command, is_child, run_child, within};
use goro::chan;
use goro::Runtime;

/// A runtime compacting after 20 ms.
fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .stack_compaction(Some(Duration::from_millis(20)))
        .build()
        .unwrap()
}

/// Whether this process compacts (checked inside a runtime).
fn available(rt: &Runtime) -> bool {
    let s = rt.block_on(goro::debug::stats).compaction;
    if let Some(why) = &s.unavailable {
        eprintln!("stack compaction unavailable here, test skipped: {why}");
        assert!(s.threshold.is_none());
        return false;
    }
    assert_eq!(s.threshold, Some(Duration::from_millis(20)));
    true
}

/// Runs `body` as the main goroutine of a compacting runtime with `workers`
/// workers, failing after `secs`; skipped (with a line saying why) where
/// compaction is unavailable.
fn on_compacting_runtime(workers: usize, secs: u64, body: impl FnOnce() + Send + 'static) {
    within(secs, move || {
        let rt = rt(workers);
        if !available(&rt) {
            return;
        }
        rt.block_on(body);
    });
}

/// In the child process `name` only: `body` as the main goroutine of a
/// runtime with `workers` workers compacting after 20 ms (skipped, with a
/// line saying why, where compaction is unavailable).
fn in_child_on_compacting_runtime(
    name: &str,
    workers: usize,
    body: impl FnOnce() + Send + 'static,
) {
    if !is_child(name) {
        return;
    }
    let rt = rt(workers);
    if available(&rt) {
        rt.block_on(body);
    }
}

/// Runs the test `name` of this binary as a child process (see
/// `common::is_child`) and fails if it failed.
fn child_passes(name: &str) {
    let out = run_child(&mut child_command(name));
    assert_child_passed(name, &out);
}

/// In a goroutine: waits until at least `n` goroutines of this runtime are
/// compacted (polling; the main goroutine sleeps in short steps so that it
/// is never parked long enough to count).
fn wait_compacted(n: usize) {
    let t0 = Instant::now();
    while goro::debug::compacted_goroutines() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "only {} of {n} goroutines compacted after 20 s",
            goro::debug::compacted_goroutines()
        );
        goro::time::sleep(Duration::from_millis(3));
    }
}

/// A value that points into itself.
struct SelfRef {
    data: [u64; 16],
    ptr: *const u64,
}

#[test]
fn pointers_into_compacted_stacks_survive() {
    on_compacting_runtime(2, 60, || {
        const N: u64 = 50;
        let at_start = goro::debug::stats().compaction.compactions;
        let mut wakers = Vec::new();
        let mut hs = Vec::new();
        for k in 0..N {
            let (tx, rx) = chan::bounded::<u64>(1);
            wakers.push(tx);
            hs.push(goro::go(move || {
                let mut arr = [0u64; 100];
                for (i, v) in arr.iter_mut().enumerate() {
                    *v = k * 1000 + i as u64;
                }
                let r = &mut arr; // &mut held across the park
                let mut sr = SelfRef {
                    data: [k; 16],
                    ptr: std::ptr::null(),
                };
                sr.ptr = &sr.data[7];
                let sr = black_box(&mut sr);
                let heap = Box::new(k * 7);
                let lref: &u64 = &r[50];
                let addr = lref as *const u64 as usize;
                let add = rx.recv().unwrap(); // parks: compacted here
                assert_eq!(lref as *const u64 as usize, addr);
                assert_eq!(*lref, k * 1000 + 50);
                for v in r.iter_mut() {
                    *v += add;
                }
                // SAFETY: `ptr` points into `sr.data`, which has not moved.
                let through = unsafe { *sr.ptr };
                assert_eq!(through, k);
                assert_eq!(*heap, k * 7);
                arr.iter().sum::<u64>()
            }));
        }
        wait_compacted(N as usize);
        let s = goro::debug::stats().compaction;
        assert!(s.compactions - at_start >= N, "{s:?}");
        assert!(s.compacted >= N, "{s:?}");
        assert!(s.bytes_saved > 0, "{s:?}");
        let restores = |s: &goro::debug::CompactionStats| {
            s.owner_restores + s.handler_restores + s.waker_restores
        };
        let before = restores(&s);
        for (k, tx) in wakers.iter().enumerate() {
            tx.send(k as u64).unwrap();
        }
        for (k, h) in hs.into_iter().enumerate() {
            let k = k as u64;
            let want: u64 = (0..100).map(|i| k * 1000 + i + k).sum();
            assert_eq!(h.join().unwrap(), want);
        }
        // The sends write into the receivers' waiter records, on their
        // compacted stacks: the sender restores those first.
        let s = goro::debug::stats().compaction;
        assert!(restores(&s) - before >= N, "{s:?}");
    });
}

/// The soundness trap: a std scoped thread reads AND writes the
/// locals of a goroutine parked (and compacted) inside `thread::scope`.
#[test]
fn scoped_thread_reads_and_writes_compacted_locals() {
    on_compacting_runtime(2, 60, || {
        const ROUNDS: u64 = 5;
        let handler_at_start = goro::debug::stats().compaction.handler_restores;
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (ack_tx, ack_rx) = chan::bounded::<u64>(1);
        let (resume_tx, resume_rx) = chan::bounded::<()>(1);
        let g = goro::go(move || {
            let mut local = [1u64; 512];
            std::thread::scope(|s| {
                let local = &mut local;
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        go_rx.recv().unwrap();
                        // The goroutine is parked and compacted now.
                        let sum: u64 = local.iter().sum();
                        assert_eq!(sum, 512 * (round + 1), "round {round}");
                        for v in local.iter_mut() {
                            *v = round + 2;
                        }
                        ack_tx.send(sum).unwrap();
                    }
                });
                for _ in 0..ROUNDS {
                    resume_rx.recv().unwrap(); // parks inside the scope
                }
            });
            local.iter().sum::<u64>()
        });
        for round in 0..ROUNDS {
            wait_compacted(1);
            go_tx.send(()).unwrap();
            assert_eq!(ack_rx.recv().unwrap(), 512 * (round + 1));
            // Wake the goroutine: it resumes on the restored stack and
            // parks again (to be compacted again).
            resume_tx.send(()).unwrap();
            goro::time::sleep(Duration::from_millis(5));
        }
        assert_eq!(g.join().unwrap(), 512 * (ROUNDS + 1));
        let s = goro::debug::stats().compaction;
        assert!(s.handler_restores > handler_at_start, "{s:?}");
    });
}

/// `goro::scope` children read and write their parent's stack while the
/// parent waits (parked, compacted) for them.
#[test]
fn scope_children_touch_compacted_parent() {
    within(60, || {
        let rt = rt(2);
        if !available(&rt) {
            return;
        }
        let total = rt.block_on(|| {
            let mut cells = [0u64; 64];
            let before = goro::debug::stats().compaction.compactions;
            goro::scope(|s| {
                for (i, c) in cells.iter_mut().enumerate() {
                    let _ = s.go(move || {
                        // Long enough for the parent to be compacted.
                        goro::time::sleep(Duration::from_millis(60 + i as u64));
                        *c += i as u64 + 1;
                    });
                }
            });
            let after = goro::debug::stats().compaction.compactions;
            assert!(after > before, "the parent was never compacted");
            cells.iter().sum::<u64>()
        });
        assert_eq!(total, (1..=64).sum::<u64>());
    });
}

/// Many park → compact → restore → resume cycles keep every value.
#[test]
fn many_compact_restore_cycles() {
    on_compacting_runtime(2, 120, || {
        const N: usize = 16;
        const CYCLES: u64 = 25;
        let mut txs = Vec::new();
        let mut hs = Vec::new();
        for k in 0..N as u64 {
            let (tx, rx) = chan::bounded::<()>(1);
            txs.push(tx);
            hs.push(goro::go(move || {
                let mut acc = [k; 200];
                for c in 0..CYCLES {
                    rx.recv().unwrap();
                    for (i, v) in acc.iter_mut().enumerate() {
                        assert_eq!(*v, k + c * i as u64, "cycle {c}");
                        *v += i as u64;
                    }
                }
                acc[199]
            }));
        }
        let before = goro::debug::stats().compaction;
        for _ in 0..CYCLES {
            wait_compacted(N);
            for tx in &txs {
                tx.send(()).unwrap();
            }
            goro::time::sleep(Duration::from_millis(2));
        }
        for (k, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), k as u64 + CYCLES * 199);
        }
        let after = goro::debug::stats().compaction;
        let restores = |s: &goro::debug::CompactionStats| {
            s.owner_restores + s.handler_restores + s.waker_restores
        };
        assert!(
            restores(&after) - restores(&before) >= N as u64 * CYCLES,
            "{after:?}"
        );
    });
}

/// Recurses `depth` frames of 1 KiB (touching each), returning the lowest
/// frame's address.
#[inline(never)]
fn go_deep(depth: u32) -> usize {
    let mut frame = [0u8; 1024];
    frame[depth as usize % 1024] = depth as u8;
    let here = black_box(&frame) as *const [u8; 1024] as usize;
    if depth == 0 {
        return here;
    }
    go_deep(depth - 1).min(here)
}

/// Whether the page holding `addr` is resident (`mincore`; never faults).
fn resident(addr: usize) -> bool {
    extern "C" {
        #[link_name = "mincore"]
        fn libc_mincore(addr: *mut u8, len: usize, vec: *mut u8) -> i32;
    }
    let mut v = 0u8;
    // SAFETY: a page-aligned address inside a mapped stack slot; one byte out.
    let r = unsafe { libc_mincore((addr & !4095) as *mut u8, 4096, &mut v) };
    assert_eq!(r, 0);
    v & 1 != 0
}

/// A stack that grew deep once and went idle is trimmed: the dead pages
/// below its saved range are given back along with the compaction (they
/// do not come back on restore), and the goroutine can grow that deep
/// again afterwards.
#[test]
fn stacks_that_grew_deep_once_are_trimmed() {
    on_compacting_runtime(2, 60, || {
        let (tx, rx) = chan::bounded::<u32>(1);
        let (addr_tx, addr_rx) = chan::bounded::<usize>(1);
        let before = goro::debug::stats().compaction.trimmed_bytes;
        let g = goro::go(move || {
            // ~160 KiB deep, then back up and park shallow.
            addr_tx.send(go_deep(150)).unwrap();
            let local = [7u64; 16];
            let again = rx.recv().unwrap();
            let low = go_deep(again);
            black_box(&local).iter().sum::<u64>() + (low != 0) as u64
        });
        let low = addr_rx.recv().unwrap();
        assert!(resident(low), "the deep page was touched");
        wait_compacted(1);
        assert!(!resident(low), "the dead deep page was not trimmed");
        assert!(!resident(low + 64 * 1024));
        let s = goro::debug::stats().compaction;
        assert!(s.trimmed_bytes - before >= 140 * 1024, "{s:?}");
        // Deep again after the restore: fresh zero pages.
        tx.send(150).unwrap();
        assert_eq!(g.join().unwrap(), 7 * 16 + 1);
    });
}

/// Child: a goroutine that reuses the slot of a compacted (so registered)
/// stack and grows deeper than the slot's previous user takes a round trip
/// through the fault handler per 128 KiB, not one per page.
#[test]
#[ignore = "helper: runs only as the child of growth_in_a_registered_slot_is_cheap"]
fn child_growth_in_registered_slot() {
    in_child_on_compacting_runtime("child_growth_in_registered_slot", 1, || {
        let (tx, rx) = chan::bounded::<()>(1);
        let first = goro::go(move || {
            let local = 1u64;
            rx.recv().unwrap();
            black_box(&local) as *const u64 as usize
        });
        wait_compacted(1);
        tx.send(()).unwrap();
        let a = first.join().unwrap();
        // Same worker, LIFO pool: a next goroutine gets that slot back
        // (its local lands within a few hundred bytes of the first one's;
        // another slot is 260 KiB away). Probe until one does; its slot
        // then goes back to the pool for the next spawn.
        let local_addr = || {
            goro::go(|| {
                let local = 2u64;
                black_box(&local) as *const u64 as usize
            })
            .join()
            .unwrap()
        };
        assert!(
            (0..20).any(|_| local_addr().abs_diff(a) < 64 * 1024),
            "no goroutine got the compacted slot back"
        );
        // Counted from here, on this goroutine's stack. 180 KiB of depth,
        // more than one fill maps ahead (128 KiB): a probe above may already
        // have taken the slot's first fault, so at least one is left.
        let before = goro::debug::stats().compaction.lazy_fills;
        let (b, low) = goro::go(|| {
            let local = 3u64;
            (black_box(&local) as *const u64 as usize, go_deep(180))
        })
        .join()
        .unwrap();
        let fills = goro::debug::stats().compaction.lazy_fills - before;
        assert!(b.abs_diff(a) < 64 * 1024, "not the compacted slot");
        assert!(b - low > 180 * 1024);
        assert!(fills >= 1, "the slab is registered: new pages fault");
        assert!(fills <= 3, "{fills} round trips for ~50 new pages");
    });
}

#[test]
fn growth_in_a_registered_slot_is_cheap() {
    child_passes("child_growth_in_registered_slot");
}

/// Child: wakers running on small goroutine stacks. A 16 KiB goroutine has
/// no room for the inline restore and leaves it to the fault path; a 64 KiB
/// one restores inline. Neither overflows its stack, and every value
/// arrives.
#[test]
#[ignore = "helper: runs only as the child of small_stack_wakers_work"]
fn child_small_stack_wakers() {
    in_child_on_compacting_runtime("child_small_stack_wakers", 2, || {
        const N: usize = 16;
        for stack in [16 * 1024, 64 * 1024] {
            let mut txs = Vec::new();
            let mut hs = Vec::new();
            for k in 0..N as u64 {
                let (tx, rx) = chan::bounded::<u64>(0);
                txs.push(tx);
                hs.push(goro::go(move || {
                    let local = [k; 32];
                    rx.recv().unwrap() + black_box(&local)[31]
                }));
            }
            wait_compacted(N);
            let before = goro::debug::stats().compaction;
            goro::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    for (k, tx) in txs.iter().enumerate() {
                        tx.send(k as u64).unwrap();
                    }
                })
                .unwrap()
                .join()
                .unwrap();
            for (k, h) in hs.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), 2 * k as u64);
            }
            let after = goro::debug::stats().compaction;
            let (w, h) = (
                after.waker_restores - before.waker_restores,
                after.handler_restores - before.handler_restores,
            );
            assert_eq!(w + h, N as u64, "{before:?} -> {after:?}");
            if stack == 16 * 1024 {
                assert_eq!(w, 0, "no room for the inline restore on 16 KiB");
            } else {
                assert_eq!(w, N as u64, "64 KiB has room for the inline restore");
            }
        }
    });
}

#[test]
fn small_stack_wakers_work() {
    child_passes("child_small_stack_wakers");
}

/// Regression (prototype bug 2): a foreign access to a never-touched page
/// below the compacted range of a slot must be served after the restore,
/// not stranded.
#[test]
fn foreign_access_below_the_compacted_range_is_served() {
    on_compacting_runtime(2, 60, || {
        let (tx, rx) = chan::bounded::<()>(1);
        let (addr_tx, addr_rx) = chan::bounded::<(usize, usize)>(1);
        let g = goro::go(move || {
            let local = 42u64;
            let here = &local as *const u64 as usize;
            // 64 KiB below the stack pointer: inside the 256 KiB slot,
            // never touched (dead stack memory, read as raw bytes).
            addr_tx.send((here, here - 64 * 1024)).unwrap();
            rx.recv().unwrap();
            black_box(&local);
            local
        });
        let (live, deep) = addr_rx.recv().unwrap();
        wait_compacted(1);
        let t = std::thread::spawn(move || {
            // SAFETY: both addresses lie in the goroutine's mapped stack
            // slot, which outlives this thread (joined below, before the
            // goroutine is woken); reading bytes there is defined.
            unsafe {
                let d = std::ptr::read_volatile(deep as *const u64);
                let l = std::ptr::read_volatile(live as *const u64);
                (d, l)
            }
        });
        let (d, l) = t.join().unwrap();
        assert_eq!(d, 0);
        assert_eq!(l, 42);
        tx.send(()).unwrap();
        assert_eq!(g.join().unwrap(), 42);
    });
}

/// Regression (prototype bug 1): the handler's lazy fill of a page of a
/// resident slot must not race a compaction of that slot. A thread keeps
/// touching fresh pages deep in a parked goroutine's slot while the slot is
/// compacted and restored over and over.
#[test]
fn lazy_fills_race_compactions() {
    on_compacting_runtime(1, 120, || {
        const CYCLES: u64 = 10;
        let (tx, rx) = chan::bounded::<()>(1);
        let (addr_tx, addr_rx) = chan::bounded::<usize>(1);
        let g = goro::go(move || {
            let mut counter = 0u64;
            addr_tx.send(&mut counter as *mut u64 as usize).unwrap();
            for _ in 0..CYCLES {
                rx.recv().unwrap();
            }
            black_box(&mut counter);
            counter
        });
        let addr = addr_rx.recv().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (st, wr) = (stop.clone(), writes.clone());
        let t = std::thread::spawn(move || {
            // SAFETY: `addr` is the goroutine's `counter`, alive until
            // the goroutine returns, which it cannot before this thread
            // is joined (it needs the last wake, sent after the join).
            // Only this thread writes it meanwhile, atomically; the
            // goroutine reads it after the join.
            let c = unsafe { &*(addr as *const AtomicU64) };
            let mut page = 1;
            while !st.load(Ordering::Relaxed) {
                c.fetch_add(1, Ordering::Relaxed);
                wr.fetch_add(1, Ordering::Relaxed);
                // Fresh pages deeper in the slot: lazy fills.
                let deep = (addr & !4095) - 4096 * (8 + page % 40);
                // SAFETY: inside the goroutine's stack slot, far below
                // its stack pointer: dead memory, read as bytes.
                black_box(unsafe { std::ptr::read_volatile(deep as *const u8) });
                page += 1;
                if page % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        for _ in 0..CYCLES - 1 {
            wait_compacted(1);
            tx.send(()).unwrap();
            goro::time::sleep(Duration::from_millis(2));
        }
        wait_compacted(1);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        tx.send(()).unwrap();
        assert_eq!(g.join().unwrap(), writes.load(Ordering::Relaxed));
    });
}

/// A `read(2)` by the kernel into a compacted stack buffer works (needs the
/// full, not user-mode-only, userfaultfd).
#[test]
fn kernel_writes_into_compacted_stack() {
    on_compacting_runtime(2, 60, || {
        let (tx, rx) = chan::bounded::<()>(1);
        let (addr_tx, addr_rx) = chan::bounded::<usize>(1);
        let g = goro::go(move || {
            let mut buf = [0u8; 64];
            addr_tx.send(buf.as_mut_ptr() as usize).unwrap();
            rx.recv().unwrap();
            black_box(&mut buf);
            buf
        });
        let addr = addr_rx.recv().unwrap();
        wait_compacted(1);
        let mut fds = [0; 2];
        // SAFETY: pipe with a valid 2-int array.
        assert_eq!(unsafe { libc_pipe(fds.as_mut_ptr()) }, 0);
        let msg = [7u8; 64];
        // SAFETY: writing 64 bytes from a live array to our pipe, then
        // reading them into the goroutine's parked buffer, which lives
        // until the goroutine is woken below.
        unsafe {
            assert_eq!(libc_write(fds[1], msg.as_ptr(), 64), 64);
            assert_eq!(libc_read(fds[0], addr as *mut u8, 64), 64);
            libc_close(fds[0]);
            libc_close(fds[1]);
        }
        tx.send(()).unwrap();
        assert_eq!(g.join().unwrap(), [7u8; 64]);
    });
}

extern "C" {
    #[link_name = "fork"]
    fn libc_fork() -> i32;
    #[link_name = "_exit"]
    fn libc_exit(code: i32) -> !;
    #[link_name = "usleep"]
    fn libc_usleep(usec: u32) -> i32;
    #[link_name = "waitpid"]
    fn libc_waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    #[link_name = "madvise"]
    fn libc_madvise(addr: *mut u8, len: usize, advice: i32) -> i32;
    #[link_name = "pipe"]
    fn libc_pipe(fds: *mut i32) -> i32;
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, n: usize) -> isize;
    #[link_name = "read"]
    fn libc_read(fd: i32, buf: *mut u8, n: usize) -> isize;
    #[link_name = "close"]
    fn libc_close(fd: i32) -> i32;
}

/// Recurses forever, about 1 KiB of stack per frame.
fn recurse_forever(depth: u64) -> u64 {
    let frame = black_box([depth; 128]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse_forever(depth + 1).wrapping_add(black_box(frame[(depth % 128) as usize]))
}

/// Child: a goroutine is compacted, restored, then overflows its stack.
#[test]
#[ignore = "helper: runs only as the child of overflow_after_restore_is_caught"]
fn child_overflow_after_restore() {
    if !is_child("child_overflow_after_restore") {
        return;
    }
    let rt = rt(1);
    if !available(&rt) {
        eprintln!("overflowed its stack (skipped: compaction unavailable) goroutine");
        std::process::abort();
    }
    rt.block_on(|| {
        let (tx, rx) = chan::bounded::<()>(1);
        let h = goro::Builder::new()
            .name("deep")
            .spawn(move || {
                rx.recv().unwrap();
                recurse_forever(0)
            })
            .unwrap();
        wait_compacted(1);
        tx.send(()).unwrap();
        let _ = h.join();
    });
    unreachable!("the overflow must end the process");
}

/// The guard page still catches an overflow after a compaction and restore.
#[test]
fn overflow_after_restore_is_caught() {
    let out = run_child(&mut child_command("child_overflow_after_restore"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child survived: {stderr}");
    assert!(stderr.contains("overflowed its stack"), "{stderr}");
    assert!(stderr.contains("goroutine"), "{stderr}");
}

/// Child: goroutines parked in every kind of channel wait are compacted,
/// then woken by channel operations from a goroutine and from a plain
/// thread. Runs alone in its process, so the process-wide counters are
/// exact: every wake restores inline in the waker, none via the handler.
#[test]
#[ignore = "helper: runs only as the child of channel_wakes_restore_in_the_waker"]
fn child_channel_wakes() {
    in_child_on_compacting_runtime("child_channel_wakes", 2, || {
        const N: usize = 40;
        // Unbuffered receive, buffered receive, select! over two channels,
        // unbuffered send, and a receive released by close.
        let mut to_recv = Vec::new();
        let mut to_select = Vec::new();
        let mut from_send = Vec::new();
        let mut to_close = Vec::new();
        let mut hs = Vec::new();
        for k in 0..N as u64 {
            let (tx, rx) = chan::bounded::<u64>(if k % 2 == 0 { 0 } else { 4 });
            to_recv.push(tx);
            hs.push(goro::go(move || {
                let local = [k; 32];
                let v = rx.recv().unwrap();
                black_box(&local).iter().sum::<u64>() + v
            }));
            let (a_tx, a_rx) = chan::bounded::<u64>(0);
            let (b_tx, b_rx) = chan::bounded::<u64>(0);
            to_select.push((a_tx, b_tx));
            hs.push(goro::go(move || {
                let local = [k; 32];
                let v = goro::select! {
                    recv(a_rx) -> v => v.unwrap(),
                    recv(b_rx) -> v => v.unwrap() * 2,
                };
                black_box(&local).iter().sum::<u64>() + v
            }));
            let (s_tx, s_rx) = chan::bounded::<u64>(0);
            from_send.push(s_rx);
            hs.push(goro::go(move || {
                let local = [k; 32];
                s_tx.send(k).unwrap();
                black_box(&local).iter().sum::<u64>() + k
            }));
            let (c_tx, c_rx) = chan::bounded::<u64>(0);
            to_close.push(c_tx);
            hs.push(goro::go(move || {
                let local = [k; 32];
                assert!(c_rx.recv().is_err());
                black_box(&local).iter().sum::<u64>() + 1
            }));
        }
        wait_compacted(4 * N);
        let before = goro::debug::stats().compaction;
        // Half the wakes from this goroutine, half from a plain thread.
        let (to_recv2, to_select2) = (to_recv.split_off(N / 2), to_select.split_off(N / 2));
        let (from_send2, to_close2) = (from_send.split_off(N / 2), to_close.split_off(N / 2));
        let wake = |to_recv: Vec<chan::Sender<u64>>,
                    to_select: Vec<(chan::Sender<u64>, chan::Sender<u64>)>,
                    from_send: Vec<chan::Receiver<u64>>,
                    to_close: Vec<chan::Sender<u64>>| {
            for (i, tx) in to_recv.iter().enumerate() {
                tx.send(i as u64).unwrap();
            }
            for (i, (a, b)) in to_select.iter().enumerate() {
                if i % 2 == 0 {
                    a.send(1).unwrap()
                } else {
                    b.send(1).unwrap()
                }
            }
            for rx in &from_send {
                rx.recv().unwrap();
            }
            for tx in &to_close {
                assert!(tx.close());
            }
        };
        let (done_tx, done_rx) = chan::bounded::<()>(1);
        std::thread::spawn(move || {
            wake(to_recv2, to_select2, from_send2, to_close2);
            done_tx.send(()).unwrap();
        });
        wake(to_recv, to_select, from_send, to_close);
        done_rx.recv().unwrap();
        for h in hs {
            assert!(h.join().unwrap() < u64::MAX);
        }
        let after = goro::debug::stats().compaction;
        let (w, h) = (
            after.waker_restores - before.waker_restores,
            after.handler_restores - before.handler_restores,
        );
        // Every woken goroutine was restored before anyone wrote its stack:
        // by the waker (claiming its waiter record), never by a fault.
        assert_eq!(h, 0, "{before:?} -> {after:?}");
        assert!(
            w >= 4 * N as u64,
            "{w} waker restores, {before:?} -> {after:?}"
        );
        assert_eq!(after.compacted, 0, "{after:?}");
    });
}

#[test]
fn channel_wakes_restore_in_the_waker() {
    child_passes("child_channel_wakes");
}

/// Child: compaction asked for where userfaultfd is unavailable.
#[test]
#[ignore = "helper: runs only as the child of off_when_unavailable_and_says_why"]
fn child_unavailable() {
    if !is_child("child_unavailable") {
        return;
    }
    let rt = rt(1);
    let s = rt.block_on(goro::debug::stats).compaction;
    assert!(s.threshold.is_none(), "{s:?}");
    let why = s.unavailable.expect("a reason");
    assert!(why.contains("simulated"), "{why}");
    assert!(rt
        .block_on(|| goro::debug::stats().to_prometheus())
        .contains("goro_stack_compaction_enabled 0"));
    // Goroutines still work, parked as long as you like.
    let v = rt.block_on(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = goro::go(move || rx.recv().unwrap() + 1);
        goro::time::sleep(Duration::from_millis(60));
        tx.send(41).unwrap();
        h.join().unwrap()
    });
    assert_eq!(v, 42);
}

/// Where the process cannot use userfaultfd, compaction is off and the
/// runtime says why, once, on stderr.
#[test]
fn off_when_unavailable_and_says_why() {
    let name = "child_unavailable";
    let out = run_child(child_command(name).env("GORO_STACK_COMPACTION_SIMULATE_UNAVAILABLE", "1"));
    assert_child_passed(name, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("goro: stack compaction off:").count(),
        1,
        "{stderr}"
    );
}

/// `GORO_STACK_COMPACTION=0` turns compaction off even when asked for.
#[test]
#[ignore = "helper: runs only as the child of env_switch_turns_it_off"]
fn child_env_off() {
    if !is_child("child_env_off") {
        return;
    }
    let rt = rt(1);
    let s = rt.block_on(goro::debug::stats).compaction;
    assert!(s.threshold.is_none(), "{s:?}");
}

#[test]
fn env_switch_turns_it_off() {
    let name = "child_env_off";
    let out = run_child(child_command(name).env("GORO_STACK_COMPACTION", "0"));
    assert_child_passed(name, &out);
}

/// Child: a runtime built with no compaction setting compacts after 1 s
/// where the process can (the default), and is off without a word where it
/// cannot.
#[test]
#[ignore = "helper: runs only as the child of default_is_on_after_one_second"]
fn child_default() {
    if !is_child("child_default") {
        return;
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let s = rt.block_on(goro::debug::stats).compaction;
    match s.unavailable {
        None => assert_eq!(s.threshold, Some(Duration::from_secs(1)), "{s:?}"),
        Some(_) => assert_eq!(s.threshold, None, "{s:?}"),
    }
    println!("threshold={:?}", s.threshold);
}

#[test]
fn default_is_on_after_one_second() {
    let name = "child_default";
    let out = run_child(child_command(name).env_remove("GORO_STACK_COMPACTION"));
    assert_child_passed(name, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("stack compaction off"), "{stderr}");
    // Where it is unavailable and nobody asked for it: off, and quiet.
    let out = run_child(
        child_command(name)
            .env_remove("GORO_STACK_COMPACTION")
            .env("GORO_STACK_COMPACTION_SIMULATE_UNAVAILABLE", "1"),
    );
    assert_child_passed(name, &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("threshold=None"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("stack compaction off"), "{stderr}");
}

/// Stress: goroutines parked, compacted, woken at random, while threads
/// read and write their stacks (through references they lent) the whole
/// time. Every value must survive. Long: `cargo test -- --ignored`.
#[test]
#[ignore = "stress test; run with --ignored"]
fn stress_foreign_access_while_compacting() {
    on_compacting_runtime(2, 300, || {
        const G: usize = 64;
        const ROUNDS: usize = 40;
        let at_start = goro::debug::stats().compaction;
        let stop = Arc::new(AtomicBool::new(false));
        let mut txs = Vec::new();
        let mut hs = Vec::new();
        let (addr_tx, addr_rx) = chan::bounded::<usize>(G);
        for k in 0..G as u64 {
            let (tx, rx) = chan::bounded::<()>(1);
            txs.push(tx);
            let addr_tx = addr_tx.clone();
            hs.push(goro::go(move || {
                let counters: [AtomicU64; 8] = Default::default();
                let mine = [k; 256];
                addr_tx.send(&counters as *const _ as usize).unwrap();
                let mut resumes = 0u64;
                while rx.recv().is_ok() {
                    resumes += 1;
                    assert!(mine.iter().all(|&v| v == k));
                }
                black_box(&mine);
                (
                    counters
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .sum::<u64>(),
                    resumes,
                )
            }));
        }
        let addrs: Vec<usize> = (0..G).map(|_| addr_rx.recv().unwrap()).collect();
        let total = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for t in 0..3 {
            let (addrs, stop, total) = (addrs.clone(), stop.clone(), total.clone());
            threads.push(std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let a = addrs[i % addrs.len()];
                    // SAFETY: each address is a goroutine's `counters`,
                    // alive until its channel closes, which happens
                    // after these threads are joined.
                    let c = unsafe { &*(a as *const [AtomicU64; 8]) };
                    c[i % 8].fetch_add(1, Ordering::Relaxed);
                    total.fetch_add(1, Ordering::Relaxed);
                    i = i.wrapping_mul(31).wrapping_add(7);
                    if i % 128 == 0 {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            }));
        }
        let mut rng = 12345u64;
        for _ in 0..ROUNDS {
            goro::time::sleep(Duration::from_millis(25));
            for tx in &txs {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if rng % 3 == 0 {
                    tx.send(()).unwrap();
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        drop(txs);
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap().0).sum();
        assert_eq!(sum, total.load(Ordering::Relaxed));
        let s = goro::debug::stats().compaction;
        eprintln!("{s:?}");
        assert!(
            s.handler_restores > at_start.handler_restores
                && s.owner_restores > at_start.owner_restores,
            "{at_start:?} -> {s:?}"
        );
    });
}

/// Uses about `depth` × 4 KiB of stack, then parks until `rx` delivers.
#[inline(never)]
fn deep_park(depth: u32, rx: &chan::Receiver<()>) -> u64 {
    let frame = black_box([depth as u64; 512]);
    if depth == 0 {
        rx.recv().unwrap();
        return frame[3];
    }
    deep_park(depth - 1, rx).wrapping_add(black_box(frame[(depth % 512) as usize]))
}

/// Child: a goroutine whose stack is too deep to compact is refused once,
/// then left alone until it runs again (no hot retry loop on an idle
/// worker), while a shallow one next to it is compacted.
#[test]
#[ignore = "helper: runs only as the child of refused_compaction_is_not_retried"]
fn child_refused_not_retried() {
    if !is_child("child_refused_not_retried") {
        return;
    }
    let rt = Runtime::builder()
        .workers(1)
        .stack_size(4 << 20)
        .stack_compaction(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    if !available(&rt) {
        return;
    }
    rt.block_on(|| {
        let (deep_tx, deep_rx) = chan::bounded::<()>(1);
        let (tx, rx) = chan::bounded::<u64>(1);
        // About 1.6 MiB of stack: more than a holding area takes.
        let deep = goro::go(move || deep_park(400, &deep_rx));
        let shallow = goro::go(move || {
            let v = black_box([5u64; 64]);
            rx.recv().unwrap() + v.iter().sum::<u64>()
        });
        wait_compacted(1);
        let before = goro::debug::stats().compaction.skipped;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(200) {
            goro::time::sleep(Duration::from_millis(3));
        }
        let s = goro::debug::stats().compaction;
        assert!(before >= 1, "the deep stack was not refused: {s:?}");
        assert!(
            s.skipped - before <= 2,
            "a refused goroutine was retried {} times in 200 ms: {s:?}",
            s.skipped - before
        );
        assert_eq!(goro::debug::compacted_goroutines(), 1, "{s:?}");
        tx.send(1).unwrap();
        assert_eq!(shallow.join().unwrap(), 1 + 5 * 64);
        deep_tx.send(()).unwrap();
        deep.join().unwrap();
    });
}

/// A refused compaction is not retried in a hot loop (process-wide
/// counters: run alone, in a child).
#[test]
fn refused_compaction_is_not_retried() {
    child_passes("child_refused_not_retried");
}

/// Stacks whose pages are COW-shared with a forked child (`UFFDIO_MOVE`
/// refuses them with `EBUSY`) are still compacted: the pages are moved back,
/// the slot released, the pages write-faulted (exclusive again) and the
/// move retried, and every byte survives.
#[test]
fn compacts_stacks_shared_with_a_forked_child() {
    on_compacting_runtime(1, 60, || {
        const N: u64 = 16;
        let mut wakers = Vec::new();
        let mut hs = Vec::new();
        for k in 0..N {
            let (tx, rx) = chan::bounded::<u64>(1);
            wakers.push(tx);
            hs.push(goro::go(move || {
                let mut arr = [0u64; 600];
                for (i, v) in arr.iter_mut().enumerate() {
                    *v = k * 10_000 + i as u64;
                }
                let arr = black_box(arr);
                let add = rx.recv().unwrap();
                arr.iter().map(|v| v + add).sum::<u64>()
            }));
        }
        goro::yield_now();
        // The child shares every stack page copy-on-write until it exits.
        // SAFETY: the child only sleeps and exits (async-signal-safe calls).
        let pid = unsafe { libc_fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                libc_usleep(1_000_000);
                libc_exit(0);
            }
        }
        wait_compacted(N as usize);
        for (k, tx) in wakers.iter().enumerate() {
            tx.send(k as u64).unwrap();
        }
        for (k, h) in hs.into_iter().enumerate() {
            let k = k as u64;
            let want: u64 = (0..600).map(|i| k * 10_000 + i + k).sum();
            assert_eq!(h.join().unwrap(), want);
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc_waitpid(pid, &mut status, 0) };
    });
}

/// Parks below a 64 KiB local whose pages are given back to the kernel
/// (`MADV_DONTNEED`) first: they are holes in the moved range.
#[inline(never)]
fn park_below_a_hole(rx: &chan::Receiver<u64>, k: u64) -> u64 {
    let mut hole = std::mem::MaybeUninit::<[u64; 8192]>::uninit();
    let p = black_box(hole.as_mut_ptr()) as *mut u64;
    // Stack probes touched every page of the frame: give the whole pages
    // inside `hole` back, so that they are missing when compacted.
    let start = (p as usize + 4095) & !4095;
    let end = (p as usize + 8 * 8192) & !4095;
    // SAFETY: whole pages inside `hole`, which is never read before it is
    // written again below.
    assert_eq!(unsafe { libc_madvise(start as *mut u8, end - start, 4) }, 0);
    let mine = black_box([k; 32]);
    let add = rx.recv().unwrap();
    // The hole is ordinary stack memory after the restore: write it all.
    for i in 0..8192 {
        // SAFETY: `p` points into `hole`, 8192 u64s on this frame.
        unsafe { p.add(i).write(k + i as u64) };
    }
    // SAFETY: every element was just written.
    let hole = unsafe { hole.assume_init() };
    hole[8191] + mine.iter().sum::<u64>() + add
}

/// Stacks whose compacted range holds missing pages (moved as holes, which
/// the compactor fills with the zero page before copying the stack out, so
/// that it never faults while holding a slot) are compacted, restored and
/// usable.
#[test]
fn stacks_with_untouched_pages_are_compacted() {
    on_compacting_runtime(2, 60, || {
        const N: u64 = 8;
        let mut wakers = Vec::new();
        let mut hs = Vec::new();
        for k in 0..N {
            let (tx, rx) = chan::bounded::<u64>(1);
            wakers.push(tx);
            hs.push(goro::go(move || park_below_a_hole(&rx, k)));
        }
        wait_compacted(N as usize);
        for (k, tx) in wakers.iter().enumerate() {
            tx.send(k as u64).unwrap();
        }
        for (k, h) in hs.into_iter().enumerate() {
            let k = k as u64;
            assert_eq!(h.join().unwrap(), k + 8191 + 32 * k + k);
        }
    });
}

/// Channel wakes racing compaction, restores and timeouts: receivers wait
/// with timeouts around the threshold (so an abort races a claim on a
/// compacted waiter record), senders on plain threads and goroutines pause
/// at random so receivers get compacted between values. Every value is
/// received exactly once and every receiver's locals survive.
fn channel_wakes_race_compaction(per_sender: u64) {
    on_compacting_runtime(2, 300, move || {
        const G: usize = 48;
        let before = goro::debug::stats().compaction;
        let mut txs = Vec::new();
        let mut hs = Vec::new();
        for k in 0..G as u64 {
            let (tx, rx) = chan::bounded::<u64>(if k % 3 == 0 { 0 } else { 1 });
            txs.push(tx);
            hs.push(goro::go(move || {
                let mine = [k; 200];
                let (mut sum, mut n) = (0u64, 0u64);
                let mut t = 5 + k % 40;
                loop {
                    match rx.recv_timeout(Duration::from_millis(t)) {
                        Ok(v) => {
                            sum += v;
                            n += 1;
                        }
                        Err(chan::RecvTimeoutError::Timeout) => {}
                        Err(chan::RecvTimeoutError::Closed) => break,
                    }
                    assert!(black_box(&mine).iter().all(|&v| v == k));
                    t = 5 + (t * 7 + 3) % 40;
                }
                (sum, n)
            }));
        }
        // Two plain threads and two goroutines send; each value is unique.
        let send_all = move |id: u64, txs: Vec<chan::Sender<u64>>, pause: &dyn Fn(u64)| {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ id;
            let (mut sum, mut n) = (0u64, 0u64);
            for i in 0..per_sender {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let v = id * 1_000_000 + i + 1;
                txs[(rng % txs.len() as u64) as usize].send(v).unwrap();
                sum += v;
                n += 1;
                if rng % 4 == 0 {
                    pause(rng % 35);
                }
            }
            (sum, n)
        };
        let (res_tx, res_rx) = chan::unbounded::<(u64, u64)>();
        for id in 0..4u64 {
            let (txs, res_tx) = (txs.clone(), res_tx.clone());
            if id < 2 {
                std::thread::spawn(move || {
                    let r = send_all(id, txs, &|ms| std::thread::sleep(Duration::from_millis(ms)));
                    res_tx.send(r).unwrap();
                });
            } else {
                drop(goro::go(move || {
                    let r = send_all(id, txs, &|ms| goro::time::sleep(Duration::from_millis(ms)));
                    res_tx.send(r).unwrap();
                }));
            }
        }
        drop((txs, res_tx));
        let (mut sent, mut nsent) = (0, 0);
        for (s, n) in res_rx.iter() {
            sent += s;
            nsent += n;
        }
        let (mut got, mut ngot) = (0, 0);
        for h in hs {
            let (s, n) = h.join().unwrap();
            got += s;
            ngot += n;
        }
        assert_eq!((ngot, got), (nsent, sent));
        let s = goro::debug::stats().compaction;
        eprintln!("{s:?}");
        assert!(
            s.compactions > before.compactions && s.waker_restores > before.waker_restores,
            "{before:?} -> {s:?}"
        );
    });
}

#[test]
fn channel_wakes_race_compaction_short() {
    channel_wakes_race_compaction(150);
}

#[test]
#[ignore = "stress test; run with --ignored"]
fn stress_channel_wakes_race_compaction() {
    channel_wakes_race_compaction(3000);
}

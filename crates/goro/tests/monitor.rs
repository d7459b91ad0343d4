//! The stuck-worker monitor: a goroutine that holds its worker without
//! parking is reported (once, through the hook), and work queued behind it
//! is taken by an idle worker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::Runtime;

/// The stall hook is process-wide: tests that set it run one at a time.
static HOOK: Mutex<()> = Mutex::new(());

/// Spins on the CPU for `d` of this thread's CPU time without any runtime
/// call (never parks). CPU time, not wall time: the monitor discounts time
/// the OS kept the thread off the CPU, so on a loaded machine a wall-clock
/// spin could look too short to report.
fn spin_for(d: Duration) {
    let start = Instant::now();
    let base = thread_cpu_time();
    while thread_cpu_time() - base < d && start.elapsed() < 50 * d {
        std::hint::spin_loop();
    }
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A goroutine spinning 50 ms is reported once, with its name, spawn site and
/// a duration of at least the 10 ms threshold; one that parks is not.
#[test]
fn a_goroutine_holding_its_worker_is_reported_once() {
    let _serial = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    goro::debug::set_stall_hook(move |rep| r.lock().unwrap().push(rep.clone()));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let spinner = rt.block_on(|| {
        let h = goro::Builder::new()
            .name("spinner")
            .spawn(|| spin_for(Duration::from_millis(50)))
            .unwrap();
        let id = h.id();
        // A well-behaved goroutine: sleeps (parks) in small steps.
        let sleeper = goro::go(|| {
            for _ in 0..10 {
                goro::time::sleep(Duration::from_millis(5));
            }
        });
        h.join().unwrap();
        sleeper.join().unwrap();
        id
    });
    drop(rt);
    goro::debug::reset_stall_hook();
    let reports = reports.lock().unwrap();
    let mine: Vec<_> = reports.iter().filter(|r| r.id == spinner).collect();
    assert_eq!(mine.len(), 1, "reported once: {reports:?}");
    let rep = mine[0];
    assert_eq!(rep.name.as_deref(), Some("spinner"));
    assert!(rep.held >= Duration::from_millis(10), "held {:?}", rep.held);
    assert!(
        rep.spawn_site.file().ends_with("monitor.rs"),
        "spawn site {}",
        rep.spawn_site
    );
    let text = rep.to_string();
    assert!(text.contains("goro::blocking"), "{text}");
    assert_eq!(reports.len(), 1, "only the spinner: {reports:?}");
}

/// A goroutine stuck in a blocking system call (here `std::thread::sleep`)
/// holds its worker just as a computing one does, though it uses no CPU:
/// it is reported too.
#[test]
fn a_goroutine_in_a_blocking_syscall_is_reported() {
    let _serial = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    goro::debug::set_stall_hook(move |rep| r.lock().unwrap().push(rep.clone()));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let id = rt.block_on(|| {
        let h = goro::go(|| std::thread::sleep(Duration::from_millis(60)));
        let id = h.id();
        h.join().unwrap();
        id
    });
    drop(rt);
    goro::debug::reset_stall_hook();
    let reports = reports.lock().unwrap();
    assert_eq!(
        reports.iter().filter(|r| r.id == id).count(),
        1,
        "reported once: {reports:?}"
    );
}

//! Test helpers: leak checks (uber-go/goleak's `VerifyNone`).
//!
//! `#[goro::test]` runs [`verify_none`]'s check on its runtime when the test
//! body returns; opt out with `#[goro::test(allow_leaks)]`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::debug::GoroutineInfo;
use crate::runtime::worker::Shared;

/// How long leaked goroutines get to finish before they count as leaks.
const GRACE: Duration = Duration::from_secs(1);

/// Panics, listing every goroutine of the current runtime other than the
/// caller that is still alive, after giving them up to a second (retrying
/// with backoff, as goleak does) to finish.
///
/// ```
/// let rt = goro::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let h = goro::go(|| 1 + 1);
///     h.join().unwrap();
///     goro::testing::verify_none(); // nothing left behind
/// });
/// ```
///
/// # Panics
///
/// With one line per leaked goroutine: id, name, wait reason, park site and
/// spawn site.
#[track_caller]
pub fn verify_none() {
    let rt = crate::runtime::current_shared();
    let me = crate::current_id();
    if let Err(report) = check(&rt, me.is_some() as usize) {
        panic!("{report}");
    }
}

/// Waits (with backoff, up to `GRACE`) until `rt` has at most `allowed` live
/// goroutines; otherwise describes the others.
pub(crate) fn check(rt: &Arc<Shared>, allowed: usize) -> Result<(), String> {
    let me = crate::current_id();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if rt.live.load(Ordering::Acquire) <= allowed {
            return Ok(());
        }
        if start.elapsed() >= GRACE {
            break;
        }
        crate::time::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    let leaked: Vec<GoroutineInfo> = crate::debug::goroutines_of(rt)
        .into_iter()
        .filter(|g| Some(g.id) != me)
        .collect();
    let live = rt.live.load(Ordering::Acquire).saturating_sub(allowed);
    let mut s = format!(
        "found {live} leaked goroutine(s) after waiting {} ms:\n",
        GRACE.as_millis()
    );
    for g in &leaked {
        let _ = write!(s, "  goroutine {}", g.id);
        if let Some(n) = &g.name {
            let _ = write!(s, " ({n})");
        }
        match (g.wait_reason, g.park_site) {
            (Some(r), Some(p)) => {
                let _ = write!(s, " [{r}] parked at {p}");
            }
            (Some(r), None) => {
                let _ = write!(s, " [{r}]");
            }
            _ => {
                let _ = write!(s, " [{}]", g.state);
            }
        }
        let _ = writeln!(s, ", created at {}", g.spawn_site);
    }
    if leaked.len() < live {
        let _ = writeln!(s, "  ({} not started yet)", live - leaked.len());
    }
    Err(s)
}

//! Seeing inside the runtime. For now: reports of goroutines that hold their
//! worker without parking (the stuck-worker monitor).

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::GoId;

/// A goroutine that has held its worker thread without parking for longer
/// than the monitor's threshold (10 ms): every other goroutine pinned to that
/// worker waited meanwhile.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StallReport {
    /// The goroutine.
    pub id: GoId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawn_site: &'static Location<'static>,
    /// How long it had held the worker when reported (it may still be).
    pub held: Duration,
    /// Index of the worker it holds.
    pub worker: usize,
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "goro: goroutine {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " ({n})")?;
        }
        write!(
            f,
            " has held worker {} for {} ms without parking (spawned at {}); \
             no other goroutine pinned to that worker can run meanwhile. \
             Move blocking or long CPU work into goro::blocking(..)",
            self.worker,
            self.held.as_millis(),
            self.spawn_site
        )
    }
}

type Hook = Arc<dyn Fn(&StallReport) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Replaces what happens when the monitor finds a stuck worker (by default
/// the report's `Display` goes to stderr). Reports come at most once per
/// goroutine and at most 10 per second.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// goro::debug::set_stall_hook(move |r| s.lock().unwrap().push(r.id));
/// # goro::debug::reset_stall_hook();
/// ```
pub fn set_stall_hook(hook: impl Fn(&StallReport) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
}

/// Restores the default stall report (a line on stderr).
pub fn reset_stall_hook() {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = None;
}

pub(crate) fn report_stall(r: &StallReport) {
    let hook = HOOK.read().unwrap_or_else(|e| e.into_inner()).clone();
    match hook {
        Some(h) => h(r),
        None => eprintln!("{r}"),
    }
}

//! Duplicate call suppression (Go's `golang.org/x/sync/singleflight`).
//!
//! A [`Group`] maps keys to calls in flight. The first caller for a key
//! (the *leader*) runs the function; callers that arrive while it runs
//! (*followers*) wait for its result instead of running their own. Once
//! the call finishes the key is forgotten, so a later call runs again.
//!
//! Protocol: the map sits behind a short std lock, held only to look up,
//! insert or remove a key, never while the function runs. Each call has a
//! result slot and a `done` channel that carries no value: the leader
//! fills the slot, removes the key, then closes `done`; followers park in
//! `recv` on `done` and read the slot once it is closed.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use goro::chan::{self, Receiver, Sender};

/// One call in flight.
struct Call<V> {
    /// The result: `None` until the leader is done; `Err` if it panicked.
    result: Mutex<Option<Result<V, String>>>,
    /// Closed by the leader after filling `result`.
    done_tx: Sender<()>,
    /// Followers wait on this.
    done_rx: Receiver<()>,
}

/// Suppresses concurrent duplicate calls for the same key.
///
/// ```
/// use goro_patterns::singleflight::Group;
/// let g: Group<&str, u32> = Group::new();
/// let (v, shared) = g.run("answer", || 42);
/// assert_eq!((v, shared), (42, false));
/// ```
pub struct Group<K, V> {
    /// Calls in flight by key.
    calls: Mutex<HashMap<K, Arc<Call<V>>>>,
}

impl<K, V> fmt::Debug for Group<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.calls.lock().map_or(0, |m| m.len());
        f.debug_struct("Group").field("in_flight", &n).finish()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for Group<K, V> {
    fn default() -> Self {
        Group::new()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Group<K, V> {
    /// An empty group.
    pub fn new() -> Group<K, V> {
        Group {
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` for `key` unless a call for `key` is already in flight, in
    /// which case it waits for that call's result. Returns the value and
    /// whether it came from another caller's run (true for followers; the
    /// leader gets false).
    ///
    /// # Panics
    ///
    /// If `f` panics, the leader's panic continues and every follower
    /// panics with a message naming it (as Go's singleflight re-panics in
    /// waiters).
    ///
    /// # Blocking
    ///
    /// A follower parks a goroutine (blocks a plain thread) until the
    /// leader is done.
    pub fn run<F: FnOnce() -> V>(&self, key: K, f: F) -> (V, bool) {
        let call = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = calls.get(&key) {
                let c = c.clone();
                drop(calls);
                let _ = c.done_rx.recv(); // Err once closed: the result is in
                let r = c.result.lock().unwrap_or_else(|e| e.into_inner()).clone();
                return match r {
                    Some(Ok(v)) => (v, true),
                    Some(Err(m)) => panic!("singleflight: the leader's call panicked: {m}"),
                    None => unreachable!("the leader fills the result before closing `done`"),
                };
            }
            let (done_tx, done_rx) = chan::bounded(0);
            let c = Arc::new(Call {
                result: Mutex::new(None),
                done_tx,
                done_rx,
            });
            calls.insert(key.clone(), c.clone());
            c
        };
        let r = catch_unwind(AssertUnwindSafe(f));
        *call.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(match &r {
            Ok(v) => Ok(v.clone()),
            Err(p) => Err(crate::pool::panic_message(&**p)),
        });
        {
            // Only our own entry: `forget` may have let a newer call in.
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            if calls.get(&key).is_some_and(|c| Arc::ptr_eq(c, &call)) {
                calls.remove(&key);
            }
        }
        call.done_tx.close();
        match r {
            Ok(v) => (v, false),
            Err(p) => resume_unwind(p),
        }
    }

    /// Forgets `key`: the next call for it runs `f` even if one is still in
    /// flight (whose followers still get its result).
    pub fn forget(&self, key: &K) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.calls.lock().map_or(0, |m| m.len())
    }
}

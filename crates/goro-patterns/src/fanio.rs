//! Fan-in and fan-out over channels.
//!
//! [`merge`] is Go's fan-in: one goroutine per input forwards into a shared
//! output, which closes once every input has closed. [`fan_out`] is Go's
//! fan-out: `n` goroutines take from one input (channels are
//! multi-consumer), apply a function and send into one output.
//!
//! Both stop early, without leaking, when the output's receiver is dropped:
//! a forwarder's next send fails and it returns. A forwarder parked in a
//! receive on an input that never closes and never sends again stays
//! parked; close your inputs (or drop their senders).

use goro::chan::{self, Receiver};

/// Merges `inputs` into one channel (fan-in). Values from one input keep
/// their order; values from different inputs interleave as they arrive.
/// The output closes when every input is closed and drained.
///
/// ```
/// use goro::chan;
/// let (a_tx, a) = chan::bounded(0);
/// let (b_tx, b) = chan::bounded(0);
/// let _ = goro::go(move || (0..3).for_each(|i| a_tx.send(i).unwrap()));
/// let _ = goro::go(move || (10..13).for_each(|i| b_tx.send(i).unwrap()));
/// let mut all: Vec<i32> = goro_patterns::merge([a, b]).iter().collect();
/// all.sort();
/// assert_eq!(all, [0, 1, 2, 10, 11, 12]);
/// ```
pub fn merge<T: Send + 'static>(inputs: impl IntoIterator<Item = Receiver<T>>) -> Receiver<T> {
    let (tx, out) = chan::bounded(0);
    for input in inputs {
        let tx = tx.clone();
        let _ = goro::Builder::new()
            .name("merge")
            .spawn(move || {
                for v in &input {
                    if tx.send(v).is_err() {
                        return; // nobody listens any more
                    }
                }
            })
            .unwrap_or_else(|e| panic!("goro_patterns::merge: cannot start a goroutine: {e}"));
    }
    out
}

/// Applies `f` to every value of `input` in `workers` goroutines (fan-out)
/// and sends the results into the returned channel (unordered). The output
/// closes when `input` is closed and drained and every worker is done.
///
/// ```
/// let (tx, rx) = goro::chan::bounded(0);
/// let _ = goro::go(move || (1..=100u64).for_each(|i| tx.send(i).unwrap()));
/// let sum: u64 = goro_patterns::fan_out(rx, 4, |x| x * 2).iter().sum();
/// assert_eq!(sum, 10_100);
/// ```
///
/// # Panics
///
/// If `workers` is 0. A panic in `f` ends that worker (and is printed as
/// a goroutine panic); the other workers carry on.
pub fn fan_out<T, U, F>(input: Receiver<T>, workers: usize, f: F) -> Receiver<U>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    assert!(
        workers > 0,
        "goro_patterns::fan_out: need at least one worker"
    );
    let f = std::sync::Arc::new(f);
    let (tx, out) = chan::bounded(workers);
    for _ in 0..workers {
        let (input, tx, f) = (input.clone(), tx.clone(), f.clone());
        let _ = goro::Builder::new()
            .name("fan-out")
            .spawn(move || {
                for v in &input {
                    if tx.send(f(v)).is_err() {
                        return;
                    }
                }
            })
            .unwrap_or_else(|e| panic!("goro_patterns::fan_out: cannot start a goroutine: {e}"));
    }
    out
}

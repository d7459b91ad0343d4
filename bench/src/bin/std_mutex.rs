//! mutex on OS threads: 1000 threads contend on one `std::sync::Mutex`, 1000
//! lock/unlock pairs each (1,000,000 in all); every critical section
//! increments the counter the mutex guards. Threads get 64 KiB stacks.
//! Counterpart of `mutex.rs` and `bench/go/mutex/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::Mutex;
use std::time::Instant;

const THREADS: usize = 1000;
const PER_THREAD: u64 = 1000;
const TOTAL: u64 = THREADS as u64 * PER_THREAD;

static COUNTER: Mutex<u64> = Mutex::new(0);

fn main() {
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(|| {
                    for _ in 0..PER_THREAD {
                        *COUNTER.lock().expect("mutex: poisoned") += 1;
                    }
                })
                .expect("mutex: cannot start a thread")
        })
        .collect();
    for t in threads {
        t.join().expect("mutex: a thread panicked");
    }
    let elapsed = start.elapsed();

    let got = *COUNTER.lock().expect("mutex: poisoned");
    assert_eq!(got, TOTAL, "mutex: wrong count");
    println!("RESULT mutex {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

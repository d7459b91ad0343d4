//! errgroup: an error group (with a context) runs 10,000 tasks that each do
//! one atomic add and return `Ok(())`, and waits for them; 10 rounds, a fresh
//! group each round. Measures group bookkeeping on top of goroutine spawn and
//! a WaitGroup-style wait. Counterpart of `bench/go/errgroup/main.go` (which
//! carries a minimal standard-library equivalent of Go's x/sync errgroup).
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use goro::context::Context;
use goro::errgroup::Group;

const TASKS: u64 = 10_000;
const ROUNDS: u64 = 10;

static TOTAL: AtomicU64 = AtomicU64::new(0);

#[goro::main]
fn main() {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let (group, ctx) = Group::<&'static str>::with_context(&Context::background());
        for i in 0..TASKS {
            group.go(move || {
                TOTAL.fetch_add(i, Ordering::Relaxed);
                Ok(())
            });
        }
        if let Err(e) = group.wait() {
            panic!("errgroup: wait returned {e}");
        }
        assert!(
            ctx.is_done(),
            "errgroup: the group's context is live after wait"
        );
    }
    let elapsed = start.elapsed();

    let want = ROUNDS * TASKS * (TASKS - 1) / 2;
    let got = TOTAL.load(Ordering::Relaxed);
    assert_eq!(got, want, "errgroup: wrong sum");
    println!("RESULT errgroup {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

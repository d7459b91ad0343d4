//! context_tree: builds a 1000-node 10-ary tree of cancellable contexts
//! (node i is `with_cancel` of node (i-1)/10; node 0 is `with_cancel` of
//! `background()`), cancels the root, and waits on every node's `done()`
//! channel; then drops every node's `CancelFunc`, which cancels as Go's
//! `defer cancel()` would (a no-op by then). 100 rounds. Measures context
//! creation and linking to a parent, and the propagation of a cancel down a
//! tree. Counterpart of `bench/go/context_tree/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::context::{self, CancelFunc, Context};

const NODES: usize = 1000;
const FANOUT: usize = 10;
const ROUNDS: usize = 100;

#[goro::main]
fn main() {
    let mut ctxs: Vec<Context> = Vec::with_capacity(NODES);
    let mut cancels: Vec<CancelFunc> = Vec::with_capacity(NODES);
    let mut closed = 0usize;

    let start = Instant::now();
    for _ in 0..ROUNDS {
        // The previous round's tree goes here (Go overwrites its slices).
        ctxs.clear();
        let (root, cancel) = Context::background().with_cancel();
        ctxs.push(root);
        cancels.push(cancel);
        for i in 1..NODES {
            let (ctx, cancel) = ctxs[(i - 1) / FANOUT].with_cancel();
            ctxs.push(ctx);
            cancels.push(cancel);
        }
        cancels[0].cancel();
        for ctx in &ctxs {
            // Blocks until the channel is closed; nothing is ever sent on it.
            ctx.done()
                .recv()
                .expect_err("context_tree: a value arrived on a done channel");
            closed += 1;
        }
        cancels.clear();
    }
    let elapsed = start.elapsed();

    assert_eq!(
        closed,
        ROUNDS * NODES,
        "context_tree: wrong number of done channels closed"
    );
    for (i, ctx) in ctxs.iter().enumerate() {
        assert_eq!(
            ctx.err(),
            Some(context::Error::Canceled),
            "context_tree: node {i} is not cancelled"
        );
    }
    println!("RESULT context_tree {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

//! Goroutine stacks: an infinite recursion hits the guard page and the process
//! dies with a report naming the goroutine (as Rust does for threads), and a
//! requested stack size is really available (DESIGN §2, API.md `stack_size`).
//!
//! A crash cannot be caught in-process, so each scenario re-runs this test
//! binary as a child process that executes one `#[ignore]`d helper test, selected
//! with `--exact` and switched on by an environment variable.

mod common;

use common::{assert_child_passed, child_command, is_child, run_child};
use goro::{Builder, Runtime};
use std::hint::black_box;

/// Recurses forever, using about 1 KiB of stack per frame.
fn recurse_forever(depth: u64) -> u64 {
    let frame = black_box([depth; 128]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse_forever(depth + 1).wrapping_add(black_box(frame[(depth % 128) as usize]))
}

/// Recurses until the stack pointer is `bytes` below where it started, then
/// returns; measured by address, so it does not depend on frame sizes.
fn use_stack(bytes: usize) -> u64 {
    let marker = 0u8; // a local: its address is the current stack depth
    let top = black_box(&marker) as *const u8 as usize;
    use_stack_from(top, bytes)
}

fn use_stack_from(top: usize, bytes: usize) -> u64 {
    let frame = black_box([1u64; 128]);
    let here = black_box(&frame) as *const [u64; 128] as usize;
    if top.saturating_sub(here) >= bytes {
        return frame[0];
    }
    use_stack_from(top, bytes).wrapping_add(black_box(frame[1]))
}

/// Child: a goroutine named "deep" recurses until it overflows.
#[test]
#[ignore = "helper: runs only as the child of goroutine_stack_overflow_is_reported"]
fn child_overflow_named_goroutine() {
    if !is_child("child_overflow_named_goroutine") {
        return;
    }
    let h = Builder::new()
        .name("deep")
        .spawn(|| recurse_forever(0))
        .unwrap();
    let _ = h.join();
    unreachable!("the overflow must end the process");
}

/// Child: a goroutine with an 8 MiB stack uses 4 MiB of it.
#[test]
#[ignore = "helper: runs only as the child of builder_stack_size_is_usable"]
fn child_big_builder_stack() {
    if !is_child("child_big_builder_stack") {
        return;
    }
    let h = Builder::new()
        .stack_size(8 << 20)
        .spawn(|| use_stack(4 << 20))
        .unwrap();
    assert!(h.join().unwrap() > 0);
}

/// Child: a runtime whose goroutines get 8 MiB stacks by default.
#[test]
#[ignore = "helper: runs only as the child of runtime_stack_size_is_usable"]
fn child_big_runtime_stack() {
    if !is_child("child_big_runtime_stack") {
        return;
    }
    let rt = Runtime::builder()
        .workers(2)
        .stack_size(8 << 20)
        .build()
        .unwrap();
    assert!(rt.spawn(|| use_stack(4 << 20)).join().unwrap() > 0);
    assert!(rt.block_on(|| use_stack(4 << 20)) > 0);
}

/// Go: "goroutine stack exceeds limit" is fatal; goro aborts with a report naming the goroutine.
#[test]
fn goroutine_stack_overflow_is_reported() {
    let out = run_child(&mut child_command("child_overflow_named_goroutine"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the child survived an infinite recursion: {:?}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("overflowed its stack"),
        "no overflow report ({:?}); stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("goroutine"),
        "report does not say goroutine:\n{stderr}"
    );
    assert!(
        stderr.contains("deep"),
        "report does not name the goroutine:\n{stderr}"
    );
}

/// Builder::stack_size(8 MiB) really gives that much stack (4 MiB of recursion is fine).
#[test]
fn builder_stack_size_is_usable() {
    let name = "child_big_builder_stack";
    assert_child_passed(name, &run_child(&mut child_command(name)));
}

/// RuntimeBuilder::stack_size sets the default stack for that runtime's goroutines.
#[test]
fn runtime_stack_size_is_usable() {
    let name = "child_big_runtime_stack";
    assert_child_passed(name, &run_child(&mut child_command(name)));
}

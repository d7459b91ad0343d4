//! Atomics used by the wake-up protocols, swappable for loom's.
//!
//! The protocols that decide whether a wake-up can be lost (the park token,
//! the waiter claim, the worker sleep handshake) use these types, so that
//! `RUSTFLAGS="--cfg goro_loom"` model-checks the very code that runs
//! (see `loom_models.rs`). Everything else uses `std` atomics directly.

#[cfg(goro_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize};
#[cfg(not(goro_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize};

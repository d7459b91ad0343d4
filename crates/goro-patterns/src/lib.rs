//! # goro-patterns — the production shapes of goroutine code, done once
//!
//! Worker pools, pipelines and actors, plus the small pieces they are made
//! of (fan-in, fan-out, concurrency and rate limits, duplicate-call
//! suppression), built only on [goro]'s public API and without `unsafe`.
//! Each one gets backpressure, cancellation, shutdown and error handling
//! right, so your code does not have to.
//!
//! ```
//! use goro_patterns::{Pipeline, Pool};
//!
//! // A worker pool: bounded queue, per-job results, panics contained.
//! let pool = Pool::new(4, 8);
//! let ok = pool.submit(|_ctx| 6 * 7).unwrap();
//! let bad = pool.submit(|_ctx| -> u32 { panic!("boom") }).unwrap();
//! assert_eq!(ok.join(), Ok(42));
//! assert!(bad.join().is_err()); // the worker carries on
//! pool.shutdown();
//!
//! // A pipeline: typed stages over bounded channels, first error wins.
//! let words = ["a", "bb", "ccc", "dddd"];
//! let total = Pipeline::<&str, String>::source(words)
//!     .stage("len", 2, |w| Ok(w.len()))
//!     .fold(0, |acc, n| Ok(acc + n))
//!     .unwrap();
//! assert_eq!(total, 10);
//! ```
//!
//! ## Components
//!
//! | module | what | Go's usual hand-written version |
//! |---|---|---|
//! | [`pool`] | [`Pool`]: fixed or min/max workers, bounded queue, `submit`/`try_submit`, [`JobHandle`], `shutdown`/`abort`, stats | `jobs := make(chan Job, n)` + `n` goroutines + a WaitGroup |
//! | [`pipeline`] | [`Pipeline`]: stages with their own concurrency, ordered or not, first error cancels all, per-stage stats | "Pipelines and cancellation" from the Go blog |
//! | [`actor`] | [`Actor`], [`Addr`] (`send`, `ask`), bounded mailbox, lifecycle hooks, supervision | a goroutine owning state + a `chan` of requests with reply channels |
//! | [`fanio`] | [`merge`] (fan-in), [`fan_out`] | the blog's `merge(cs ...<-chan int)` |
//! | [`limit`] | [`Limiter`] (bounded spawning), [`RateLimiter`] (token bucket) | `sem := make(chan struct{}, n)`; `x/time/rate` |
//! | [`singleflight`] | [`singleflight::Group`] | `x/sync/singleflight` |
//!
//! ## Coming from Go
//!
//! | Go | goro-patterns |
//! |---|---|
//! | `jobs <- job` into a buffered channel read by `n` workers | [`Pool::submit`] (waits while full), [`Pool::try_submit`] |
//! | `close(jobs); wg.Wait()` | [`Pool::shutdown`] (drains every accepted job) |
//! | `cancel()` + draining `jobs` by hand | [`Pool::abort`] (queued jobs report [`JobError::Cancelled`]) |
//! | `recover()` in each worker | built in: a panicking job is [`JobError::Panicked`], the worker carries on |
//! | `gen → sq → sq → merge` with a `done` channel | [`Pipeline::source`]`(..).stage(..).stage(..).collect()` |
//! | `errgroup.WithContext` around a pipeline | built in: the first error cancels every stage and is returned |
//! | `merge(cs ...)` | [`merge`] |
//! | `sem <- struct{}{}; go f(); <-sem` | [`Limiter::go`] |
//! | `rate.NewLimiter(r, b).Wait(ctx)` | [`RateLimiter::new`]`(r, b).wait_ctx(&ctx)` |
//! | `g.Do(key, fn)` | [`singleflight::Group::run`] |
//! | a goroutine + `chan Request{reply chan T}` | [`actor::spawn`], [`Addr::ask`] |
//!
//! ## Examples
//!
//! In the workspace's `examples/`: `etl` (a CSV pipeline with live
//! per-stage statistics), `chat` (a TCP chat server, one actor per room)
//! and `scraper` (a crawler with bounded concurrency, timeouts, retries and
//! a rate limit); each has a `--self-test`. `examples/throughput.rs` in
//! this crate measures the pool and a 4-stage pipeline against the same
//! shapes in Go (`examples/throughput.go`).
//!
//! ## Blocking
//!
//! Everything that waits here parks the calling goroutine (its worker
//! thread runs others) and blocks a plain OS thread, like goro itself.
//!
//! ## Panics
//!
//! Panics in jobs, stages and actors are caught and turned into errors (or
//! restarts); the panic hook still prints them, as for any Rust panic.

#![forbid(unsafe_code)]

pub mod actor;
pub mod fanio;
pub mod limit;
pub mod pipeline;
pub mod pool;
pub mod singleflight;

pub use actor::{Actor, Addr};
pub use fanio::{fan_out, merge};
pub use limit::{Limiter, Permit, RateLimiter};
pub use pipeline::{Pipeline, PipelineStats, StageStats};
pub use pool::{JobError, JobHandle, Pool, PoolBuilder, PoolStats, SubmitError};

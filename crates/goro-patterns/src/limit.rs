//! Bounds on concurrency and on rate.
//!
//! [`Limiter`] caps how many goroutines run at once (Go's
//! `sem := make(chan struct{}, n)` idiom, or errgroup's `SetLimit`), built
//! on a FIFO [`Semaphore`]. [`RateLimiter`] caps how many events happen per
//! second with a token bucket (Go's `golang.org/x/time/rate.Limiter`).
//!
//! The rate limiter's state — tokens available and when they were last
//! counted — sits behind one short std lock that is never held across a
//! sleep. A caller that finds no token *reserves* one anyway (the count
//! goes negative) and sleeps until it is due, so waiters are served in the
//! order they arrived and the bucket never hands out more than
//! `burst + rate × elapsed` tokens. A cancelled wait gives its token back.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::context::{self, Context};
use goro::sync::Semaphore;
use goro::JoinHandle;

/// State shared by a [`Limiter`] and its permits.
#[derive(Debug)]
struct LimiterInner {
    /// One unit per running goroutine (or held permit).
    sem: Semaphore,
    /// The bound.
    max: usize,
    /// Permits held now (for `in_flight`; Relaxed, statistics only).
    held: AtomicUsize,
}

/// Runs at most `n` goroutines (or holds at most `n` permits) at once.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use goro_patterns::Limiter;
///
/// let limiter = Limiter::new(3);
/// let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
/// for _ in 0..20 {
///     let (now, peak) = (now.clone(), peak.clone());
///     let _ = limiter.go(move || {
///         let n = now.fetch_add(1, Ordering::SeqCst) + 1;
///         peak.fetch_max(n, Ordering::SeqCst);
///         goro::time::sleep(std::time::Duration::from_millis(1));
///         now.fetch_sub(1, Ordering::SeqCst);
///     });
/// }
/// limiter.wait();
/// assert!(peak.load(Ordering::SeqCst) <= 3);
/// ```
#[derive(Debug, Clone)]
pub struct Limiter {
    /// Shared with permits and spawned goroutines.
    inner: Arc<LimiterInner>,
}

/// One unit of a [`Limiter`]; dropping it gives the unit back.
#[must_use = "dropping a Permit releases it at once"]
#[derive(Debug)]
pub struct Permit {
    /// The limiter it came from.
    inner: Arc<LimiterInner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.held.fetch_sub(1, Ordering::Relaxed);
        self.inner.sem.release(1);
    }
}

impl Limiter {
    /// A limiter of `n` concurrent units.
    ///
    /// # Panics
    ///
    /// If `n` is 0 (nothing could ever run).
    pub fn new(n: usize) -> Limiter {
        assert!(
            n > 0,
            "goro_patterns::Limiter::new: the bound must be at least 1"
        );
        Limiter {
            inner: Arc::new(LimiterInner {
                sem: Semaphore::new(n),
                max: n,
                held: AtomicUsize::new(0),
            }),
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Units held now (goroutines running plus permits held).
    pub fn in_flight(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// Makes a permit after the semaphore granted a unit.
    fn permit(&self) -> Permit {
        self.inner.held.fetch_add(1, Ordering::Relaxed);
        Permit {
            inner: self.inner.clone(),
        }
    }

    /// Waits for a unit (FIFO).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn acquire(&self) -> Permit {
        self.inner.sem.acquire(1);
        self.permit()
    }

    /// A unit if one is free now.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.inner.sem.try_acquire(1).then(|| self.permit())
    }

    /// Waits for a unit or for `ctx` to be done.
    ///
    /// # Errors
    ///
    /// The context's error if it is done first.
    pub fn acquire_ctx(&self, ctx: &Context) -> Result<Permit, context::Error> {
        self.inner.sem.acquire_ctx(ctx, 1)?;
        Ok(self.permit())
    }

    /// Waits for a unit, then runs `f` in a new goroutine that holds it
    /// until `f` returns or panics.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (blocks a plain thread) while `n` are running.
    pub fn go<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.acquire();
        goro::go(move || {
            let _permit = permit;
            f()
        })
    }

    /// Runs `f` in a new goroutine if a unit is free now; gives `f` back
    /// otherwise.
    ///
    /// # Errors
    ///
    /// `Err(f)` when all `n` units are taken.
    pub fn try_go<F, T>(&self, f: F) -> Result<JoinHandle<T>, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_acquire() {
            Some(permit) => Ok(goro::go(move || {
                let _permit = permit;
                f()
            })),
            None => Err(f),
        }
    }

    /// Waits until no unit is held (every goroutine started by `go` has
    /// ended). Goroutines started meanwhile may be waited for or not.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn wait(&self) {
        self.inner.sem.acquire(self.inner.max);
        self.inner.sem.release(self.inner.max);
    }
}

/// Token-bucket state.
#[derive(Debug)]
struct Bucket {
    /// Tokens available; negative when waiters have reserved future ones.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
///
/// Starts full. Each [`wait`](RateLimiter::wait) takes one token, sleeping
/// until one is due, so over any interval `t` at most `burst + rate × t`
/// calls return.
///
/// ```
/// use std::time::{Duration, Instant};
/// use goro_patterns::RateLimiter;
///
/// let rl = RateLimiter::new(100.0, 1); // one every 10 ms, no bursts
/// let start = Instant::now();
/// for _ in 0..6 {
///     rl.wait();
/// }
/// assert!(start.elapsed() >= Duration::from_millis(49));
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens per second.
    rate: f64,
    /// Bucket size.
    burst: f64,
    /// Tokens and the time they were counted (never held across a sleep).
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    /// `rate` tokens per second, bursts of up to `burst` tokens.
    ///
    /// # Panics
    ///
    /// If `rate` is not positive and finite or `burst` is 0.
    pub fn new(rate: f64, burst: usize) -> RateLimiter {
        assert!(
            rate.is_finite() && rate > 0.0,
            "goro_patterns::RateLimiter::new: rate must be positive"
        );
        assert!(
            burst > 0,
            "goro_patterns::RateLimiter::new: burst must be at least 1"
        );
        RateLimiter {
            rate,
            burst: burst as f64,
            bucket: Mutex::new(Bucket {
                tokens: burst as f64,
                last: Instant::now(),
            }),
        }
    }

    /// One token per `every`.
    pub fn every(every: Duration, burst: usize) -> RateLimiter {
        RateLimiter::new(1.0 / every.as_secs_f64(), burst)
    }

    /// Brings the bucket up to `now`.
    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        b.last = now;
    }

    /// Takes one token now, or reserves the next one: returns how long to
    /// wait for it.
    fn reserve(&self) -> Duration {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut b, Instant::now());
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Round up so the sleep never ends before the token is due.
            Duration::from_secs_f64(-b.tokens / self.rate) + Duration::from_micros(1)
        }
    }

    /// Takes a token if one is available now (Go's `Allow`).
    pub fn try_acquire(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut b, Instant::now());
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Waits for a token.
    ///
    /// # Blocking
    ///
    /// Sleeps (parks a goroutine, blocks a plain thread) until the token
    /// is due.
    pub fn wait(&self) {
        let d = self.reserve();
        if !d.is_zero() {
            goro::time::sleep(d);
        }
    }

    /// Waits for a token or for `ctx` to be done; a cancelled wait gives
    /// its reserved token back.
    ///
    /// # Errors
    ///
    /// The context's error if it is done first.
    pub fn wait_ctx(&self, ctx: &Context) -> Result<(), context::Error> {
        if let Some(e) = ctx.err() {
            return Err(e);
        }
        let d = self.reserve();
        if d.is_zero() {
            return Ok(());
        }
        let done = ctx.done();
        goro::select! {
            recv(goro::time::after(d)) -> _ => Ok(()),
            recv(done) -> _ => {
                let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
                b.tokens = (b.tokens + 1.0).min(self.burst);
                Err(ctx.err().unwrap_or(context::Error::Canceled))
            },
        }
    }

    /// Tokens available now (negative when waiters have reserved some).
    pub fn tokens(&self) -> f64 {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut b, Instant::now());
        b.tokens
    }
}

impl fmt::Display for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s (burst {})", self.rate, self.burst)
    }
}

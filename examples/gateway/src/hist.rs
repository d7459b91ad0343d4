//! A log-linear latency histogram with lock-free recording.
//!
//! Values are microseconds. Below 64 µs every value has its own bucket;
//! above, each power of two is split into 64 equal sub-buckets, so a
//! quantile read from the histogram is within 1/64 (≈1.6 %) of the true
//! value. Values up to about 2^40 µs (12 days) fit; larger ones are clamped.
//!
//! [`Histogram`] is shared by every connection goroutine (relaxed atomic
//! increments: no lock, no contention beyond the cache line of one bucket);
//! [`Snapshot`] is a plain copy that can be subtracted from a later one to
//! get the latencies of an interval (the live progress line does that).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Largest exponent kept.
const MAX_EXP: u32 = 40;
/// Number of buckets.
const BUCKETS: usize = (SUB as usize) * (MAX_EXP - SUB_BITS + 2) as usize;

/// The bucket of value `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = (63 - v.leading_zeros()).min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) - SUB; // 0..SUB
    ((shift as u64 + 1) * SUB + mantissa) as usize
}

/// The highest value that falls in bucket `i` (what quantiles report, so
/// they never understate).
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let mantissa = i % SUB + SUB;
    ((mantissa + 1) << shift) - 1
}

/// A histogram of latencies in microseconds, recorded concurrently.
#[derive(Debug)]
pub struct Histogram {
    /// Count per bucket.
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records one latency.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A copy of a [`Histogram`]'s counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Count per bucket.
    counts: Vec<u64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Snapshot {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The values recorded after `earlier` (a snapshot of the same
    /// histogram taken before this one).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }

    /// The `q`-quantile (0.0 ..= 1.0); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        // The smallest value with at least q of the values at or below it.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(upper(i));
            }
        }
        Duration::from_micros(upper(BUCKETS - 1))
    }

    /// The largest value recorded (to bucket precision); zero when empty.
    pub fn max(&self) -> Duration {
        match self.counts.iter().rposition(|&c| c > 0) {
            Some(i) => Duration::from_micros(upper(i)),
            None => Duration::ZERO,
        }
    }
}

/// Formats a latency compactly: `850µs`, `12.3ms`, `1.20s`.
pub fn fmt_latency(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in 0..100_000u64 {
            assert!(index(v) >= last, "v={v}");
            last = index(v);
        }
        for v in (0..100_000u64).chain((1..40).map(|e| 1u64 << e)) {
            let i = index(v);
            assert!(upper(i) >= v, "v={v} i={i} upper={}", upper(i));
            if v >= SUB {
                // Within 1/64 of the value.
                assert!(upper(i) - v <= v / SUB, "v={v} upper={}", upper(i));
            } else {
                assert_eq!(upper(i), v);
            }
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        let p50 = s.quantile(0.5).as_micros() as u64;
        assert!((500..=508).contains(&p50), "{p50}");
        let p99 = s.quantile(0.99).as_micros() as u64;
        assert!((990..=1006).contains(&p99), "{p99}");
        assert!(s.max().as_micros() >= 1000);
        let later = {
            h.record(Duration::from_millis(50));
            h.snapshot()
        };
        let d = later.since(&s);
        assert_eq!(d.count(), 1);
        assert!(d.quantile(0.5) >= Duration::from_millis(50));
        assert_eq!(Snapshot::default().quantile(0.5), Duration::ZERO);
    }
}

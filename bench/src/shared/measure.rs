//! What the memory workloads (parked, idle) read about their own process.

use std::time::Duration;

/// The process's resident set size in bytes (VmRSS in /proc/self/status).
pub fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("no /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("no VmRSS line in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("malformed VmRSS line in /proc/self/status");
    kib * 1024
}

/// How long the idle workloads leave their goroutines parked:
/// `IDLE_HOLD_MS` milliseconds, else `default_ms`.
#[allow(dead_code)] // parked programs only read the RSS
pub fn idle_hold(default_ms: u64) -> Duration {
    let ms = std::env::var("IDLE_HOLD_MS").map_or(default_ms, |v| {
        v.parse()
            .expect("IDLE_HOLD_MS must be a number of milliseconds")
    });
    Duration::from_millis(ms)
}

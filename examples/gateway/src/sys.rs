//! What the demo reads about processes from `/proc`: resident memory and
//! the open-file limit (no `unsafe`, no libc).

use std::fmt::Write as _;

/// Resident memory of process `pid` (or of this process for `None`), in
/// bytes; `None` if it cannot be read.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// This process's open-file limit, `(soft, hard)`; `None` when unlimited or
/// unreadable.
pub fn nofile_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..].split_whitespace();
    let soft = nums.next()?.parse().ok()?;
    let hard = nums.next()?.parse().ok()?;
    Some((soft, hard))
}

/// File descriptors open in this process now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// How many of `wanted` connections fit under this process's open-file
/// limit when `reserve` descriptors are needed for everything else. Prints
/// what to do when they do not all fit.
pub fn connections_that_fit(wanted: usize, reserve: usize, who: &str) -> usize {
    let Some((soft, hard)) = nofile_limit() else {
        return wanted;
    };
    let room = (soft as usize).saturating_sub(reserve);
    if wanted <= room {
        return wanted;
    }
    let mut msg = String::new();
    let _ = writeln!(
        msg,
        "{who}: the open-file limit is {soft} (hard limit {hard}); {wanted} connections need about {} descriptors.",
        wanted + reserve
    );
    if (hard as usize) < wanted + reserve {
        let _ = write!(
            msg,
            "  Raise the hard limit (as root: `ulimit -Hn {}` in the shell that starts this program, or `nofile` in /etc/security/limits.conf),\n  or ask for fewer with --connections.",
            wanted + reserve
        );
    } else {
        let _ = write!(
            msg,
            "  Raise the soft limit with `ulimit -n {hard}` before starting, or ask for fewer with --connections."
        );
    }
    let _ = write!(msg, "\n  Running with {room} connections.");
    eprintln!("{msg}");
    room
}

/// Formats a byte count: `812 KiB`, `245.1 MiB`.
pub fn fmt_bytes(b: u64) -> String {
    if b < 1024 * 1024 {
        format!("{} KiB", b / 1024)
    } else if b < 1024 * 1024 * 1024 {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Formats a count with thousands separators: `10,000`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    // Digits before the next separator.
    let mut group = match s.len() % 3 {
        0 => 3,
        r => r,
    };
    for c in s.chars() {
        if group == 0 {
            out.push(',');
            group = 3;
        }
        out.push(c);
        group -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        assert!(rss_bytes(None).unwrap() > 0);
        assert!(rss_bytes(Some(std::process::id())).unwrap() > 0);
        let (soft, hard) = nofile_limit().unwrap();
        assert!(soft <= hard);
        assert!(open_fds() > 0);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(10_000), "10,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_bytes(2048), "2 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}

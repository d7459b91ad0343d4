//! Stack overflow reports.
//!
//! A goroutine that runs off the bottom of its stack touches its slot's guard
//! page (see `stack.rs`) and takes a SIGSEGV. The handler runs on an
//! alternate signal stack (each worker installs one), recognises the guard
//! through the lock-free slab table, prints
//! `goroutine N (name) overflowed its stack (256 KiB)` with the spawn site and
//! aborts, as Rust does for a thread. Any other fault is handed to the handler
//! that was installed before ours (for example std's own overflow reporter).
//!
//! Everything the handler does is async-signal-safe: atomics, a thread-local
//! pointer read, `write(2)` and `abort`.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::Once;

use super::goroutine::Goroutine;
use super::stack;
use super::worker::current_goroutine_ptr;

/// Handlers that were installed before ours, by signal.
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static INSTALL: Once = Once::new();

/// Size of each worker's alternate signal stack.
const ALT_STACK: usize = 64 * 1024;

thread_local! {
    /// The alternate stack we mapped for this thread (unmapped at thread exit).
    static ALT: AltStack = const { AltStack(Cell::new(0)) };
}

struct AltStack(Cell<usize>);

impl Drop for AltStack {
    fn drop(&mut self) {
        let p = self.0.get();
        if p != 0 {
            let ss = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disabling this thread's alternate stack, then unmapping
            // the region we mapped for it in `install_for_thread`.
            unsafe {
                libc::sigaltstack(&ss, std::ptr::null_mut());
                libc::munmap(p as *mut libc::c_void, ALT_STACK);
            }
        }
    }
}

/// Installs the process-wide handler (once) and gives this thread an
/// alternate signal stack if it has none.
pub(crate) fn install_for_thread() {
    INSTALL.call_once(install_handler);
    let mut old = MaybeUninit::<libc::stack_t>::uninit();
    // SAFETY: querying the current alternate stack into valid memory.
    let r = unsafe { libc::sigaltstack(std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaltstack succeeded, so `old` is initialised.
    if r != 0 || unsafe { old.assume_init().ss_flags } & libc::SS_DISABLE == 0 {
        return; // failed to query, or the thread already has one (std's)
    }
    // SAFETY: a fresh anonymous mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ALT_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return;
    }
    let ss = libc::stack_t {
        ss_sp: p,
        ss_flags: 0,
        ss_size: ALT_STACK,
    };
    // SAFETY: `ss` describes the mapping just made, owned by this thread
    // until `AltStack::drop` disables and unmaps it.
    unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) };
    ALT.with(|a| a.0.set(p as usize));
}

fn install_handler() {
    for (sig, prev) in [
        (libc::SIGSEGV, std::ptr::addr_of_mut!(PREV_SEGV)),
        (libc::SIGBUS, std::ptr::addr_of_mut!(PREV_BUS)),
    ] {
        // SAFETY: a zeroed sigaction is a valid starting point; we set the
        // handler, flags and an empty mask, and `prev` receives the old one
        // (written once here, under `INSTALL`, before any fault can read it).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, (*prev).as_mut_ptr());
        }
    }
}

/// Writes `s` to stderr, ignoring errors.
fn write_err(s: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer.
    unsafe { libc::write(2, s.as_ptr() as *const libc::c_void, s.len()) };
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let g = current_goroutine_ptr();
    if !g.is_null() {
        if let Some(slot) = stack::guard_hit(addr) {
            // SAFETY: the worker keeps the current goroutine alive while it
            // runs, and the fault happened while it was running.
            report(unsafe { &*g }, slot);
            // SAFETY: abort is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    // Not ours: chain to the previous handler.
    let prev = if sig == libc::SIGBUS {
        std::ptr::addr_of!(PREV_BUS)
    } else {
        std::ptr::addr_of!(PREV_SEGV)
    };
    // SAFETY: `prev` was filled by `sigaction` before our handler could run.
    let prev = unsafe { (*prev).assume_init_ref() };
    if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
        // Restore the default and return: the fault repeats and kills us with
        // the right signal.
        // SAFETY: resetting a signal disposition.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(prev.sa_sigaction) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes only the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
        f(sig);
    }
}

fn report(g: &Goroutine, slot: usize) {
    let mut buf = [0u8; 20];
    write_err(b"\ngoroutine ");
    write_err(fmt_u64(g.id, &mut buf));
    if let Some(name) = &g.name {
        write_err(b" (");
        write_err(name.as_bytes());
        write_err(b")");
    }
    write_err(b" overflowed its stack (");
    write_err(fmt_u64(((slot - stack::PAGE) / 1024) as u64, &mut buf));
    write_err(b" KiB)\ngoroutine was spawned at ");
    write_err(g.spawn_site.file().as_bytes());
    write_err(b":");
    write_err(fmt_u64(g.spawn_site.line() as u64, &mut buf));
    write_err(b":");
    write_err(fmt_u64(g.spawn_site.column() as u64, &mut buf));
    write_err(b"\nfatal runtime error: goroutine stack overflow (use Builder::stack_size for a larger stack), aborting\n");
}

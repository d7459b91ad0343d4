//! Raw `userfaultfd(2)` bindings: just what stack compaction needs
//! (`compact.rs`).
//!
//! The `libc` crate has the syscall number but not the ioctl structures, so
//! they are written out here from `include/uapi/linux/userfaultfd.h`.
//! Multi-page ioctls that stop early report how far they got ([`Partial`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Page size the ioctls work in.
pub(crate) const PAGE: usize = 4096;

/// `_IOC(dir, 0xAA, nr, size)`.
const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (0xAA << 8) | nr
}
const IOWR: u64 = 3;
const IOR: u64 = 2;
const UFFDIO_API: u64 = ioc(IOWR, 0x3F, 24);
const UFFDIO_REGISTER: u64 = ioc(IOWR, 0x00, 32);
const UFFDIO_WAKE: u64 = ioc(IOR, 0x02, 16);
const UFFDIO_COPY: u64 = ioc(IOWR, 0x03, 40);
const UFFDIO_ZEROPAGE: u64 = ioc(IOWR, 0x04, 32);
const UFFDIO_MOVE: u64 = ioc(IOWR, 0x05, 40);
/// `/dev/userfaultfd` ioctl that creates a uffd: `_IO(0xAA, 0x00)`.
const USERFAULTFD_IOC_NEW: u64 = 0xAA << 8;

const UFFD_API: u64 = 0xAA;
/// `userfaultfd()` flag: handle only faults raised from user mode.
pub(crate) const UFFD_USER_MODE_ONLY: libc::c_int = 1;

/// Register for missing-page faults.
pub(crate) const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// `UFFDIO_MOVE`: tolerate unpopulated source pages.
pub(crate) const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u64 = 2;

/// Event code of a page fault message.
pub(crate) const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
/// Page fault message flag: the access was a write.
pub(crate) const UFFD_PAGEFAULT_FLAG_WRITE: u64 = 1;
/// `UFFDIO_MOVE` is supported (Linux 6.8+).
pub(crate) const UFFD_FEATURE_MOVE: u64 = 1 << 16;

/// `madvise` advice values newer than the `libc` crate.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `MADV_POPULATE_WRITE` (Linux 5.14+).
pub(crate) const MADV_POPULATE_WRITE: libc::c_int = 23;

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioRange {
    start: u64,
    len: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}
#[repr(C)]
#[derive(Default)]
struct UffdioMove {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    moved: i64,
}

/// One message read from the uffd (`struct uffd_msg`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct UffdMsg {
    /// `UFFD_EVENT_*`.
    pub(crate) event: u8,
    _r1: u8,
    _r2: u16,
    _r3: u32,
    /// `arg.pagefault.flags`
    pub(crate) pf_flags: u64,
    /// `arg.pagefault.address`
    pub(crate) pf_address: u64,
    _ptid: u32,
    _pad: u32,
}

/// Outcome of a multi-page ioctl that stopped early.
#[derive(Debug)]
pub(crate) struct Partial {
    /// Bytes done before the error.
    pub(crate) done: usize,
    /// The error.
    pub(crate) err: io::Error,
}

/// An initialised userfaultfd.
#[derive(Debug)]
pub(crate) struct Uffd {
    fd: OwnedFd,
    /// Features the kernel granted in `UFFDIO_API`.
    pub(crate) features: u64,
}

impl AsRawFd for Uffd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// `userfaultfd(flags)`, falling back to `/dev/userfaultfd` (access to that
/// node is how an administrator grants kernel-fault handling to a non-root
/// user). Returns the raw fd.
fn new_fd(flags: libc::c_int) -> io::Result<libc::c_int> {
    let fl = flags | libc::O_CLOEXEC;
    // SAFETY: plain syscall with an integer argument; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, fl) } as libc::c_int;
    if fd >= 0 {
        return Ok(fd);
    }
    let e = errno();
    // SAFETY: NUL-terminated path literal.
    let dev = unsafe { libc::open(c"/dev/userfaultfd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if dev < 0 {
        return Err(e);
    }
    // SAFETY: ioctl on the fd we just opened; the argument is the flags int.
    let fd = unsafe { libc::ioctl(dev, USERFAULTFD_IOC_NEW as _, fl) };
    let e2 = errno();
    // SAFETY: `dev` is ours and no longer needed.
    unsafe { libc::close(dev) };
    if fd < 0 {
        Err(e)
    } else {
        let _ = e2;
        Ok(fd)
    }
}

impl Uffd {
    /// Opens a uffd with `flags` (0 or `UFFD_USER_MODE_ONLY`) and performs
    /// the API handshake asking for `want` (granted: the supported subset).
    pub(crate) fn open(flags: libc::c_int, want: u64) -> io::Result<Uffd> {
        // The handshake may be done once per fd: learn the kernel's feature
        // set on a throwaway fd first.
        let avail = {
            let fd = new_fd(flags)?;
            let mut api = UffdioApi {
                api: UFFD_API,
                ..UffdioApi::default()
            };
            // SAFETY: valid struct; fd is ours and closed right after.
            let r = unsafe { libc::ioctl(fd, UFFDIO_API as _, &mut api) };
            let e = errno();
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            if r != 0 {
                return Err(e);
            }
            api.features
        };
        let fd = new_fd(flags)?;
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: want & avail,
            ioctls: 0,
        };
        // SAFETY: `api` is a valid, writable `struct uffdio_api`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) } != 0 {
            return Err(errno());
        }
        Ok(Uffd {
            fd,
            features: api.features,
        })
    }

    /// `UFFDIO_REGISTER` of `[start, start+len)` for missing faults.
    ///
    /// # Safety
    ///
    /// From then on every access to a missing page of the range blocks
    /// until this uffd's handler serves it: the caller must own the range
    /// and make sure the handler knows every address in it (a fault the
    /// handler cannot serve hangs the faulting thread).
    pub(crate) unsafe fn register(&self, start: usize, len: usize) -> io::Result<()> {
        let mut r = UffdioRegister {
            range: UffdioRange {
                start: start as u64,
                len: len as u64,
            },
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: valid struct; the kernel validates the range.
        if unsafe { libc::ioctl(self.as_raw_fd(), UFFDIO_REGISTER as _, &mut r) } != 0 {
            return Err(errno());
        }
        Ok(())
    }

    /// Wakes threads blocked on missing faults in the range.
    pub(crate) fn wake(&self, start: usize, len: usize) -> io::Result<()> {
        let mut r = UffdioRange {
            start: start as u64,
            len: len as u64,
        };
        // SAFETY: valid struct.
        if unsafe { libc::ioctl(self.as_raw_fd(), UFFDIO_WAKE as _, &mut r) } != 0 {
            return Err(errno());
        }
        Ok(())
    }

    /// `UFFDIO_COPY`: allocate pages at `dst` filled from `src` (readable
    /// memory of `len` bytes), atomically with respect to faults; wakes the
    /// threads blocked on them. Fails with `EEXIST` on a present page.
    ///
    /// # Safety
    ///
    /// The caller must own `[dst, dst+len)` (registered with this uffd) and
    /// hold whatever protocol makes the new contents correct there (what was
    /// missing becomes `src`'s bytes, visible to every thread).
    pub(crate) unsafe fn copy(&self, dst: usize, src: usize, len: usize) -> Result<(), Partial> {
        let mut c = UffdioCopy {
            dst: dst as u64,
            src: src as u64,
            len: len as u64,
            mode: 0,
            copy: 0,
        };
        // SAFETY: valid struct; the kernel reads `src` with copy_from_user.
        if unsafe { libc::ioctl(self.as_raw_fd(), UFFDIO_COPY as _, &mut c) } != 0 {
            return Err(Partial {
                done: c.copy.max(0) as usize,
                err: errno(),
            });
        }
        Ok(())
    }

    /// `UFFDIO_ZEROPAGE`: map the shared zero page over missing pages.
    ///
    /// # Safety
    ///
    /// The caller must own `[start, start+len)` (registered with this uffd)
    /// and know that zeros are the right contents of its missing pages (not
    /// bytes kept elsewhere, e.g. a compacted stack's buffer).
    pub(crate) unsafe fn zeropage(&self, start: usize, len: usize) -> Result<(), Partial> {
        let mut z = UffdioZeropage {
            range: UffdioRange {
                start: start as u64,
                len: len as u64,
            },
            mode: 0,
            zeropage: 0,
        };
        // SAFETY: valid struct.
        if unsafe { libc::ioctl(self.as_raw_fd(), UFFDIO_ZEROPAGE as _, &mut z) } != 0 {
            return Err(Partial {
                done: z.zeropage.max(0) as usize,
                err: errno(),
            });
        }
        Ok(())
    }

    /// `UFFDIO_MOVE` (Linux 6.8+): remap the pages of `[src, src+len)` to
    /// `dst` without copying; `src` becomes unpopulated, so later accesses
    /// there raise missing faults. `dst` must be unpopulated and registered
    /// with this uffd.
    ///
    /// # Safety
    ///
    /// The caller must own both ranges, and hold whatever protocol keeps
    /// every thread from relying on `src`'s contents while they live at
    /// `dst` (accesses to `src` fault to this uffd's handler, which must be
    /// able to serve them).
    pub(crate) unsafe fn mov(&self, dst: usize, src: usize, len: usize) -> Result<(), Partial> {
        let mut m = UffdioMove {
            dst: dst as u64,
            src: src as u64,
            len: len as u64,
            mode: UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES,
            moved: 0,
        };
        // SAFETY: valid struct; the kernel validates both ranges.
        if unsafe { libc::ioctl(self.as_raw_fd(), UFFDIO_MOVE as _, &mut m) } != 0 {
            return Err(Partial {
                done: m.moved.max(0) as usize,
                err: errno(),
            });
        }
        Ok(())
    }

    /// Blocking read of up to `buf.len()` messages; returns how many.
    pub(crate) fn read_msgs(&self, buf: &mut [UffdMsg]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its whole length; UffdMsg is plain data.
        let n = unsafe {
            libc::read(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                std::mem::size_of_val(buf),
            )
        };
        if n < 0 {
            return Err(errno());
        }
        Ok(n as usize / std::mem::size_of::<UffdMsg>())
    }
}

/// `madvise` returning `io::Result`.
///
/// # Safety
///
/// The caller must own `[addr, addr+len)` and must not need its contents
/// after a destructive advice.
pub(crate) unsafe fn madvise(addr: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: forwarded contract.
    if unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) } != 0 {
        return Err(errno());
    }
    Ok(())
}

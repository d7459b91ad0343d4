//! What every socket type shares, written once: deadline and timeout
//! methods, `Read`/`Write` for a stream and for a reference to it, and the
//! fd traits.

/// The Go-style deadline and std-style timeout methods of a socket whose
/// `io` field is an `IoSource`.
macro_rules! deadline_methods {
    () => {
        /// Sets the deadline of reads (Go's `SetReadDeadline`): reads after
        /// it, and one blocked now, fail with `TimedOut`. `None` clears it.
        pub fn set_read_deadline(&self, d: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_read_deadline(d);
            Ok(())
        }

        /// Sets the deadline of writes (Go's `SetWriteDeadline`).
        pub fn set_write_deadline(&self, d: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_write_deadline(d);
            Ok(())
        }

        /// Sets both deadlines (Go's `SetDeadline`).
        pub fn set_deadline(&self, d: Option<std::time::Instant>) -> std::io::Result<()> {
            self.io.set_read_deadline(d);
            self.io.set_write_deadline(d);
            Ok(())
        }

        /// Limits each read call to `t` (std's `set_read_timeout`).
        ///
        /// # Errors
        ///
        /// `InvalidInput` for a zero duration, as std.
        pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_read_timeout(t)
        }

        /// Limits each write call to `t` (std's `set_write_timeout`).
        ///
        /// # Errors
        ///
        /// `InvalidInput` for a zero duration, as std.
        pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_write_timeout(t)
        }

        /// The per-call read timeout.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.io.read_timeout())
        }

        /// The per-call write timeout.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.io.write_timeout())
        }
    };
}

/// `AsRawFd` and `AsFd` for a socket whose `io` field is an `IoSource`.
macro_rules! fd_impls {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.get_ref().as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the fd stays open as long as `self` is borrowed.
                unsafe {
                    std::os::fd::BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(self))
                }
            }
        }
    };
}

/// `Read` and `Write` for a stream and for `&` the stream (one goroutine may
/// read while another writes), over its `read_impl`/`write_impl` methods.
macro_rules! stream_io_impls {
    ($t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.read_impl(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.read_vectored_impl(bufs)
            }
        }

        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.read_impl(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.read_vectored_impl(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.write_impl(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.write_vectored_impl(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.write_impl(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.write_vectored_impl(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

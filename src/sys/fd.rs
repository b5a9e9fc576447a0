//! The one descriptor the standard library cannot make: an eventfd, the
//! cheapest way for the runtime thread to wake the Perl thread's loop (a
//! counter in the kernel; no socket buffers to allocate and free).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A non-blocking, close-on-exec eventfd with a count of zero.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns, so OwnedFd may take it over.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

//! The wake-up path from the runtime thread to the Perl thread: a socket pair
//! whose read end the .pm watches with `EV::io`. The writer sends a byte only
//! when the completion queue goes from empty to non-empty (the `armed` flag),
//! so a busy runtime costs one wakeup per batch, and an idle one none.

use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Notifier {
    armed: AtomicBool,
    writer: UnixStream,
}

pub struct Receiver {
    reader: UnixStream,
}

pub fn pair() -> std::io::Result<(Notifier, Receiver)> {
    let (reader, writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    writer.set_nonblocking(true)?;
    Ok((
        Notifier {
            armed: AtomicBool::new(false),
            writer,
        },
        Receiver { reader },
    ))
}

impl Notifier {
    /// Called after pushing a completion (any thread).
    pub fn signal(&self) {
        if !self.armed.swap(true, Ordering::AcqRel) {
            self.force();
        }
    }

    /// Makes the fd readable regardless of the flag (a bounded drain that
    /// left work behind uses it so the loop comes back).
    pub fn force(&self) {
        // A full socket buffer already means "readable": WouldBlock is fine.
        let _ = (&self.writer).write(&[1u8]);
    }

    /// Called by the drain before it empties the queue: later pushes signal again.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Receiver {
    pub fn fd(&self) -> RawFd {
        self.reader.as_raw_fd()
    }

    /// Empties the socket so the fd stops being readable.
    pub fn clear(&self) {
        let mut buf = [0u8; 256];
        while let Ok(n) = (&self.reader).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads what is there; the socket is non-blocking.
    fn pending_bytes(r: &Receiver) -> usize {
        let mut b = [0u8; 64];
        (&r.reader).read(&mut b).unwrap_or(0)
    }

    #[test]
    fn signals_once_per_batch() {
        let (n, r) = pair().unwrap();
        assert_eq!(pending_bytes(&r), 0);
        n.signal();
        n.signal();
        n.signal();
        assert_eq!(pending_bytes(&r), 1, "three signals, one byte");
        n.signal();
        assert_eq!(pending_bytes(&r), 0, "still armed: no new byte");
        n.disarm();
        n.signal();
        n.force();
        r.clear();
        assert_eq!(pending_bytes(&r), 0, "clear empties the socket");
    }
}

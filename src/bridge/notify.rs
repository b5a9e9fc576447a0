//! The wake-up path from the runtime thread to the Perl thread: an eventfd
//! that the .pm watches with `EV::io`. The writer adds to its count only
//! when the completion queue goes from empty to non-empty (the `armed` flag),
//! so a busy runtime costs one wakeup per batch, and an idle one none.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Notifier {
    armed: AtomicBool,
    writer: File,
}

pub struct Receiver {
    reader: File,
}

pub fn pair() -> std::io::Result<(Notifier, Receiver)> {
    let reader = File::from(crate::sys::fd::eventfd()?);
    let writer = reader.try_clone()?;
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
        // A count at its maximum already means "readable": WouldBlock is fine.
        let _ = (&self.writer).write(&1u64.to_ne_bytes());
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

    /// Resets the count so the fd stops being readable.
    pub fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = (&self.reader).read(&mut count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count, which reading resets; the fd is non-blocking (0 when unset).
    fn wakeups(r: &Receiver) -> usize {
        let mut b = [0u8; 8];
        match (&r.reader).read(&mut b) {
            Ok(8) => u64::from_ne_bytes(b) as usize,
            _ => 0,
        }
    }

    #[test]
    fn signals_once_per_batch() {
        let (n, r) = pair().unwrap();
        assert_eq!(wakeups(&r), 0);
        n.signal();
        n.signal();
        n.signal();
        assert_eq!(wakeups(&r), 1, "three signals, one wakeup");
        n.signal();
        assert_eq!(wakeups(&r), 0, "still armed: no new wakeup");
        n.disarm();
        n.signal();
        n.force();
        r.clear();
        assert_eq!(wakeups(&r), 0, "clear resets the count");
    }
}

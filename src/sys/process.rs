//! The current process id without a system call per request: cached, and
//! forgotten in a forked child through a `pthread_atfork` handler (Perl's
//! `fork` is the C library's fork, so the handler always runs).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

static PID: AtomicU32 = AtomicU32::new(0);
static HOOK: Once = Once::new();

extern "C" fn forgotten_in_child() {
    PID.store(0, Ordering::SeqCst);
}

/// Installs the fork hook (idempotent).
pub fn install() {
    HOOK.call_once(|| {
        // SAFETY: registers a plain extern "C" fn that only stores to an
        // atomic, which is async-signal-safe as a fork child handler must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(forgotten_in_child));
        }
    });
}

/// This process's id.
pub fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// Blocks SIGPIPE for the calling thread and the threads it starts. Perl
/// leaves SIGPIPE at its default (terminate), and the transport writes to
/// sockets with `writev`, which cannot ask for MSG_NOSIGNAL: a member that
/// dies mid-write would otherwise kill the whole program. Blocked, the
/// signal stays pending on the runtime thread and the write fails with EPIPE.
pub fn block_sigpipe() {
    // SAFETY: plain libc calls on a local, zero-initialised sigset_t; the
    // mask change affects only the calling thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

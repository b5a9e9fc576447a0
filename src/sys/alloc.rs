//! Tuning of the engine's allocator (mimalloc, see Cargo.toml's features).
//!
//! mimalloc hands memory that stays free for `purge_delay` milliseconds
//! back to the kernel (1 s by default). Under steady load the runtime
//! thread's allocations are freed on the Perl thread in bursts, so with the
//! default the same pages are returned and faulted in (zeroed, often as
//! 2 MB huge pages) again and again: over 100k pipelined puts that was
//! several page faults per thousand requests and a visible share of the
//! runtime thread's CPU. Ten seconds keeps the working set mapped while a
//! program is busy and still returns memory after a burst.

use std::ffi::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc.h (v3) `enum mi_option_e`.
const PURGE_DELAY: c_int = 15;

/// The delay set at boot, in milliseconds.
pub const PURGE_DELAY_MS: c_long = 10_000;

extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Sets the purge delay (idempotent). Called from the module's boot, on the
/// main thread, before any runtime thread exists.
pub fn tune() {
    // SAFETY: plain setter of the statically linked mimalloc; mimalloc
    // documents the option setters as not thread safe, and this runs at
    // boot while the process has no runtime thread yet.
    unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
}

/// The purge delay mimalloc uses now, in milliseconds.
#[cfg(test)]
fn purge_delay() -> c_long {
    // SAFETY: plain getter of the statically linked mimalloc.
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn option_15_is_the_purge_delay() {
        // v3's default purge delay is 1000 ms; no other option of that enum
        // defaults to 1000, so this pins the index to the right option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(super::purge_delay(), 1000);
        }
        super::tune();
        assert_eq!(super::purge_delay(), super::PURGE_DELAY_MS);
    }
}

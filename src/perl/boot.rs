//! The module's boot function, the symbol XSLoader calls: `perl_boot!`
//! defines it, and it hands the interpreter to the module's own `init`,
//! which defines the module's xsubs from its table (`define`).

use std::ffi::{c_void, CString};

use super::ffi::{self, Pi};
use super::sv::Perl;
use super::xsub::{dispatch, Xsub};

/// Defines every sub of `table` (file `Etcd.so`); each CV keeps a pointer
/// to its row, which `dispatch` follows on every call.
pub fn define(p: &Perl, table: &'static [Xsub]) {
    for x in table {
        let name = CString::new(x.name).expect("xsub names have no NUL");
        let row: *const Xsub = x;
        // SAFETY: `p` is the running interpreter on its thread; newXS copies
        // the name, keeps the static file name, and the row is 'static.
        unsafe {
            ffi::ev_etcd_newxs(
                p.raw_interp(),
                name.as_ptr(),
                dispatch,
                c"Etcd.so".as_ptr(),
                row.cast::<c_void>(),
            );
        }
    }
}

/// The body of the boot xsub: pops XSLoader's mark, runs `init`, and
/// restores the stack.
///
/// # Safety
/// Must be called from the boot xsub with the interpreter Perl passed to
/// it (null on a non-MULTIPLICITY perl).
pub unsafe fn boot(pi: Pi, init: fn(&Perl)) {
    // SAFETY: the mark pushed by XSLoader's call is popped here and the
    // stack restored by xs_boot_epilog, on the live interpreter.
    unsafe {
        let ax = ffi::ev_etcd_popmark(pi) + 1;
        init(&Perl::enter(pi));
        ffi::ev_etcd_xs_boot_epilog(pi, ax);
    }
}

/// Defines the module's boot function `$sym` (`boot_EV__Etcd`), with the
/// signature the target perl expects, running `$init(&Perl)`.
#[macro_export]
macro_rules! perl_boot {
    ($sym:ident, $init:path) => {
        /// The boot xsub.
        ///
        /// # Safety
        /// Called by Perl (XSLoader) only.
        #[cfg(perl_multiplicity)]
        #[no_mangle]
        pub unsafe extern "C" fn $sym(pi: $crate::perl::ffi::Pi, _cv: *mut $crate::perl::ffi::CV) {
            // SAFETY: Perl calls the boot xsub with its interpreter.
            unsafe { $crate::perl::boot::boot(pi, $init) }
        }

        /// The boot xsub.
        ///
        /// # Safety
        /// Called by Perl (XSLoader) only.
        #[cfg(not(perl_multiplicity))]
        #[no_mangle]
        pub unsafe extern "C" fn $sym(_cv: *mut $crate::perl::ffi::CV) {
            // SAFETY: Perl calls the boot xsub; no interpreter pointer on this perl.
            unsafe { $crate::perl::boot::boot(std::ptr::null_mut(), $init) }
        }
    };
}

//! `boot_EV__Etcd`, the symbol XSLoader calls: defines one `extern "C"`
//! entry point per xsub body (src/xs/) and registers them with Perl.

use std::ffi::CStr;

use super::ffi::{self, Pi, XsubFn};
use crate::xs;

crate::xsubs! {
    xs_new => xs::client::new;
    xs_destroy => xs::client::destroy;
    xs_fd => xs::client::fd;
    xs_drain => xs::client::drain;
    xs_flush => xs::client::flush;
    xs_shutdown => xs::client::shutdown;
    xs_health_tick => xs::client::health_tick;
    xs_get => xs::kv::get;
    xs_put => xs::kv::put;
    xs_delete => xs::kv::delete;
    xs_compact => xs::kv::compact;
    xs_txn => xs::kv::txn;
    xs_status => xs::maintenance::status;
}

const TABLE: &[(&CStr, XsubFn)] = &[
    (c"EV::Etcd::_new", xs_new),
    (c"EV::Etcd::DESTROY", xs_destroy),
    (c"EV::Etcd::_fd", xs_fd),
    (c"EV::Etcd::_drain", xs_drain),
    (c"EV::Etcd::_flush", xs_flush),
    (c"EV::Etcd::_shutdown", xs_shutdown),
    (c"EV::Etcd::_health_tick", xs_health_tick),
    (c"EV::Etcd::get", xs_get),
    (c"EV::Etcd::put", xs_put),
    (c"EV::Etcd::delete", xs_delete),
    (c"EV::Etcd::compact", xs_compact),
    (c"EV::Etcd::_txn", xs_txn),
    (c"EV::Etcd::status", xs_status),
];

unsafe fn boot(pi: Pi) {
    // SAFETY: called from boot_EV__Etcd with the live interpreter; the mark
    // pushed by XSLoader's call is popped here and the stack restored by
    // xs_boot_epilog; names and the file name are static NUL-terminated strings.
    unsafe {
        super::process::install();
        let ax = ffi::ev_etcd_popmark(pi) + 1;
        for (name, f) in TABLE {
            ffi::ev_etcd_newxs(pi, name.as_ptr(), *f, c"Etcd.so".as_ptr());
        }
        ffi::ev_etcd_xs_boot_epilog(pi, ax);
    }
}

#[cfg(perl_multiplicity)]
#[no_mangle]
pub unsafe extern "C" fn boot_EV__Etcd(pi: Pi, _cv: *mut ffi::CV) {
    // SAFETY: Perl calls the boot xsub with its interpreter.
    unsafe { boot(pi) }
}

#[cfg(not(perl_multiplicity))]
#[no_mangle]
pub unsafe extern "C" fn boot_EV__Etcd(_cv: *mut ffi::CV) {
    // SAFETY: Perl calls the boot xsub; no interpreter pointer on this perl.
    unsafe { boot(std::ptr::null_mut()) }
}

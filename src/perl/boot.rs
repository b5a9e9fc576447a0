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
    xs_get => xs::kv::get;
    xs_put => xs::kv::put;
    xs_delete => xs::kv::delete;
    xs_compact => xs::kv::compact;
    xs_txn => xs::kv::txn;
    xs_status => xs::maintenance::status;
    xs_watch => xs::watch::watch;
    xs_watch_cancel => xs::watch::cancel;
    xs_watch_progress => xs::watch::request_progress;
    xs_lease_grant => xs::lease::grant;
    xs_lease_revoke => xs::lease::revoke;
    xs_lease_time_to_live => xs::lease::time_to_live;
    xs_lease_leases => xs::lease::leases;
    xs_lock => xs::lock::lock;
    xs_unlock => xs::lock::unlock;
    xs_election_campaign => xs::election::campaign;
    xs_election_proclaim => xs::election::proclaim;
    xs_election_leader => xs::election::leader;
    xs_election_resign => xs::election::resign;
}

const TABLE: &[(&CStr, XsubFn)] = &[
    (c"EV::Etcd::_new", xs_new),
    (c"EV::Etcd::DESTROY", xs_destroy),
    (c"EV::Etcd::_fd", xs_fd),
    (c"EV::Etcd::_drain", xs_drain),
    (c"EV::Etcd::_flush", xs_flush),
    (c"EV::Etcd::_shutdown", xs_shutdown),
    (c"EV::Etcd::get", xs_get),
    (c"EV::Etcd::put", xs_put),
    (c"EV::Etcd::delete", xs_delete),
    (c"EV::Etcd::compact", xs_compact),
    (c"EV::Etcd::_txn", xs_txn),
    (c"EV::Etcd::status", xs_status),
    (c"EV::Etcd::watch", xs_watch),
    (c"EV::Etcd::Watch::cancel", xs_watch_cancel),
    (c"EV::Etcd::Watch::request_progress", xs_watch_progress),
    (c"EV::Etcd::lease_grant", xs_lease_grant),
    (c"EV::Etcd::lease_revoke", xs_lease_revoke),
    (c"EV::Etcd::lease_time_to_live", xs_lease_time_to_live),
    (c"EV::Etcd::lease_leases", xs_lease_leases),
    (c"EV::Etcd::lock", xs_lock),
    (c"EV::Etcd::unlock", xs_unlock),
    (c"EV::Etcd::election_campaign", xs_election_campaign),
    (c"EV::Etcd::election_proclaim", xs_election_proclaim),
    (c"EV::Etcd::election_leader", xs_election_leader),
    (c"EV::Etcd::election_resign", xs_election_resign),
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

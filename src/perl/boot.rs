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
    xs_lease_keepalive => xs::lease::keepalive;
    xs_keepalive_start => xs::lease::keepalive_start;
    xs_keepalive_stop => xs::lease::keepalive_stop;
    xs_observe => xs::election::observe;
    xs_observe_cancel => xs::election::observe_cancel;
    xs_snapshot => xs::maintenance::snapshot;
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
    xs_member_list => xs::cluster::member_list;
    xs_member_add => xs::cluster::member_add;
    xs_member_remove => xs::cluster::member_remove;
    xs_member_update => xs::cluster::member_update;
    xs_member_promote => xs::cluster::member_promote;
    xs_alarm => xs::maintenance::alarm;
    xs_defragment => xs::maintenance::defragment;
    xs_hash_kv => xs::maintenance::hash_kv;
    xs_move_leader => xs::maintenance::move_leader;
    xs_auth_status => xs::maintenance::auth_status;
    xs_authenticate => xs::auth::authenticate;
    xs_auth_enable => xs::auth::auth_enable;
    xs_auth_disable => xs::auth::auth_disable;
    xs_user_add => xs::auth::user_add;
    xs_user_delete => xs::auth::user_delete;
    xs_user_change_password => xs::auth::user_change_password;
    xs_user_get => xs::auth::user_get;
    xs_user_list => xs::auth::user_list;
    xs_user_grant_role => xs::auth::user_grant_role;
    xs_user_revoke_role => xs::auth::user_revoke_role;
    xs_role_add => xs::auth::role_add;
    xs_role_delete => xs::auth::role_delete;
    xs_role_get => xs::auth::role_get;
    xs_role_list => xs::auth::role_list;
    xs_role_grant_permission => xs::auth::role_grant_permission;
    xs_role_revoke_permission => xs::auth::role_revoke_permission;
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
    (c"EV::Etcd::lease_keepalive", xs_lease_keepalive),
    (c"EV::Etcd::lease_keepalive_start", xs_keepalive_start),
    (c"EV::Etcd::Keepalive::stop", xs_keepalive_stop),
    (c"EV::Etcd::election_observe", xs_observe),
    (c"EV::Etcd::Observe::cancel", xs_observe_cancel),
    (c"EV::Etcd::snapshot", xs_snapshot),
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
    (c"EV::Etcd::member_list", xs_member_list),
    (c"EV::Etcd::member_add", xs_member_add),
    (c"EV::Etcd::member_remove", xs_member_remove),
    (c"EV::Etcd::member_update", xs_member_update),
    (c"EV::Etcd::member_promote", xs_member_promote),
    (c"EV::Etcd::alarm", xs_alarm),
    (c"EV::Etcd::defragment", xs_defragment),
    (c"EV::Etcd::hash_kv", xs_hash_kv),
    (c"EV::Etcd::move_leader", xs_move_leader),
    (c"EV::Etcd::auth_status", xs_auth_status),
    (c"EV::Etcd::authenticate", xs_authenticate),
    (c"EV::Etcd::auth_enable", xs_auth_enable),
    (c"EV::Etcd::auth_disable", xs_auth_disable),
    (c"EV::Etcd::user_add", xs_user_add),
    (c"EV::Etcd::user_delete", xs_user_delete),
    (c"EV::Etcd::user_change_password", xs_user_change_password),
    (c"EV::Etcd::user_get", xs_user_get),
    (c"EV::Etcd::user_list", xs_user_list),
    (c"EV::Etcd::user_grant_role", xs_user_grant_role),
    (c"EV::Etcd::user_revoke_role", xs_user_revoke_role),
    (c"EV::Etcd::role_add", xs_role_add),
    (c"EV::Etcd::role_delete", xs_role_delete),
    (c"EV::Etcd::role_get", xs_role_get),
    (c"EV::Etcd::role_list", xs_role_list),
    (c"EV::Etcd::role_grant_permission", xs_role_grant_permission),
    (
        c"EV::Etcd::role_revoke_permission",
        xs_role_revoke_permission,
    ),
];

unsafe fn boot(pi: Pi) {
    #[cfg(feature = "mimalloc")]
    super::alloc::tune();
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

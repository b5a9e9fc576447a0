//! Every Perl sub of the module, one row each: its name under `EV::Etcd::`,
//! its kind and its body. The boot function defines them all from this
//! table; `_unary_methods` tells Perl (EV::Etcd::Future, the tests'
//! catalogue) which methods answer once.

use crate::perl::{Perl, Sv, XsResult, Xsub};

use super::{auth, client, cluster, election, kv, lease, lock, maintenance, watch};

/// What a sub is, for the lists Perl reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client method whose callback is called once.
    Unary,
    /// The body of a unary client method that the .pm defines as a
    /// wrapper: the method's name is the sub's without its leading `_`.
    WrappedUnary,
    /// A client method that streams (its callback runs many times) or
    /// returns a handle.
    Stream,
    /// A method of a handle, a client method that answers at once
    /// (`set_endpoints`), or the .pm's plumbing.
    Internal,
}

macro_rules! surface {
    ($($kind:ident $name:literal => $body:path;)*) => {
        /// The subs to define at boot.
        pub static XSUBS: &[Xsub] = &[
            $(Xsub { name: concat!("EV::Etcd::", $name), body: $body },)*
        ];
        const KINDS: &[(&str, Kind)] = &[$(($name, Kind::$kind),)*];
    };
}

surface! {
    Internal "_new" => client::new;
    Internal "DESTROY" => client::destroy;
    Internal "_fd" => client::fd;
    Internal "_drain" => client::drain;
    Internal "_flush" => client::flush;
    Internal "_trace" => client::trace;
    Internal "_shutdown" => client::shutdown;
    Internal "_health_tick" => client::health_tick;
    Internal "_unary_methods" => unary_methods;
    Internal "_endpoints" => client::endpoints;
    Internal "set_endpoints" => client::set_endpoints;
    Internal "_prefix_end" => kv::prefix_end;
    Internal "stats" => client::stats;
    Unary "get" => kv::get;
    Unary "put" => kv::put;
    Unary "delete" => kv::delete;
    Unary "compact" => kv::compact;
    WrappedUnary "_txn" => kv::txn;
    Unary "status" => maintenance::status;
    Unary "lease_keepalive" => lease::keepalive;
    Stream "lease_keepalive_start" => lease::keepalive_start;
    Internal "Keepalive::stop" => lease::keepalive_stop;
    Stream "election_observe" => election::observe;
    Internal "Observe::cancel" => election::observe_cancel;
    Stream "snapshot" => maintenance::snapshot;
    Stream "watch" => watch::watch;
    Internal "Watch::cancel" => watch::cancel;
    Internal "Watch::request_progress" => watch::request_progress;
    Unary "lease_grant" => lease::grant;
    Unary "lease_revoke" => lease::revoke;
    Unary "lease_time_to_live" => lease::time_to_live;
    Unary "lease_leases" => lease::leases;
    Unary "lock" => lock::lock;
    Internal "Request::cancel" => lock::cancel;
    Unary "unlock" => lock::unlock;
    Unary "election_campaign" => election::campaign;
    Unary "election_proclaim" => election::proclaim;
    Unary "election_leader" => election::leader;
    Unary "election_resign" => election::resign;
    Unary "member_list" => cluster::member_list;
    Unary "member_add" => cluster::member_add;
    Unary "member_remove" => cluster::member_remove;
    Unary "member_update" => cluster::member_update;
    Unary "member_promote" => cluster::member_promote;
    Unary "alarm" => maintenance::alarm;
    Unary "defragment" => maintenance::defragment;
    Unary "hash" => maintenance::hash;
    Unary "hash_kv" => maintenance::hash_kv;
    Unary "move_leader" => maintenance::move_leader;
    Unary "downgrade" => maintenance::downgrade;
    Unary "auth_status" => maintenance::auth_status;
    Unary "authenticate" => auth::authenticate;
    Unary "auth_enable" => auth::auth_enable;
    Unary "auth_disable" => auth::auth_disable;
    Unary "user_add" => auth::user_add;
    Unary "user_delete" => auth::user_delete;
    Unary "user_change_password" => auth::user_change_password;
    Unary "user_get" => auth::user_get;
    Unary "user_list" => auth::user_list;
    Unary "user_grant_role" => auth::user_grant_role;
    Unary "user_revoke_role" => auth::user_revoke_role;
    Unary "role_add" => auth::role_add;
    Unary "role_delete" => auth::role_delete;
    Unary "role_get" => auth::role_get;
    Unary "role_list" => auth::role_list;
    Unary "role_grant_permission" => auth::role_grant_permission;
    Unary "role_revoke_permission" => auth::role_revoke_permission;
}

/// `EV::Etcd::_unary_methods()`: the client methods that answer once, in
/// table order.
fn unary_methods<'a>(p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    let names: Vec<&str> = KINDS
        .iter()
        .filter_map(|&(n, k)| match k {
            Kind::Unary => Some(n),
            Kind::WrappedUnary => n.strip_prefix('_'),
            Kind::Stream | Kind::Internal => None,
        })
        .collect();
    let mut av = p.new_array(names.len());
    for n in names {
        av.push(p.new_bytes(n.as_bytes()));
    }
    Ok(Some(av.finish()))
}

/// The module's boot (`boot_EV__Etcd`): process-wide setup, then every sub.
pub fn init(p: &Perl) {
    #[cfg(feature = "mimalloc")]
    crate::sys::alloc::tune();
    crate::sys::process::install();
    crate::perl::boot::define(p, XSUBS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_once() {
        let mut names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a sub is listed twice");
        assert_eq!(XSUBS.len(), n);
        assert!(KINDS.iter().any(|&(n, k)| n == "get" && k == Kind::Unary));
        assert!(KINDS
            .iter()
            .all(|&(n, k)| k != Kind::Unary || !n.contains("::")));
    }
}

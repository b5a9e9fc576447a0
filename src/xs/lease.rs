//! Lease methods (POD "LEASES AND KEEPALIVE"): lease_grant, lease_revoke, lease_time_to_live
//! and lease_leases. Decodes Perl arguments into plain requests and submits
//! them; croaks on bad arguments. Perl thread only.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts};

/// `lease_grant($ttl, [\%opts,] $cb)`: `{ id => N }` asks for that lease id.
pub fn grant<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "lease_grant(client, ttl, callback)")?;
    let opts = (a.len() == 4).then(|| a[2]);
    let r = rpc::LeaseGrantRequest {
        ttl: p.iv(a[1]),
        id: Opts::new(p, opts).int("id").unwrap_or(0),
    };
    callbacks::submit(p, id, Call::LeaseGrant(r), cb)?;
    Ok(None)
}

pub fn revoke<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "lease_revoke(client, lease_id, callback)")?;
    let r = rpc::LeaseRevokeRequest { id: p.iv(a[1]) };
    callbacks::submit(p, id, Call::LeaseRevoke(r), cb)?;
    Ok(None)
}

pub fn time_to_live<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(
        p,
        a,
        1,
        "lease_time_to_live($lease_id, [\\%opts,] $callback)",
    )?;
    let cb = args::reply(p, cb, opts, "lease_time_to_live")?;
    let r = rpc::LeaseTimeToLiveRequest {
        id: p.iv(a[1]),
        keys: Opts::new(p, opts).flag("keys"),
    };
    callbacks::submit(p, id, Call::LeaseTimeToLive(r), cb)?;
    Ok(None)
}

pub fn leases<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "lease_leases(client, callback)")?;
    let r = rpc::LeaseLeasesRequest {};
    callbacks::submit(p, id, Call::LeaseLeases(r), cb)?;
    Ok(None)
}

/// `lease_keepalive($lease_id, $cb)`: one request, one callback (POD "lease_keepalive").
pub fn keepalive<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 3, "lease_keepalive(client, lease_id, callback)")?;
    callbacks::lease_keepalive(p, id, p.iv(a[1]), cb)?;
    Ok(None)
}

const KEEPALIVE: &str = "EV::Etcd::Keepalive";

/// `lease_keepalive_start($lease_id, [\%opts,] [$cb])` (POD "lease_keepalive_start"):
/// renews every TTL/3 until `stop`; `$cb` gets each renewal, option
/// `on_lost` the one error that ends it.
pub fn keepalive_start<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    const USAGE: &str = "Usage: $client->lease_keepalive_start($lease_id, [\\%opts,] [$callback])";
    if a.len() < 2 || a.len() > 4 {
        return Err(USAGE.into());
    }
    let client = args::client(p, a[0])?;
    let mut rest = &a[2..];
    let mut cb = None;
    if let Some((last, before)) = rest.split_last() {
        if p.is_code_ref(*last) || !p.is_defined(*last) && !before.is_empty() {
            cb = p
                .is_defined(*last)
                .then(|| args::callback(p, *last))
                .transpose()?;
            rest = before;
        }
    }
    let opts = match rest {
        [] => None,
        [o] if p.hash_ref(*o).is_some() => Some(*o),
        [o] if !p.is_defined(*o) => None,
        [o] if p.is_ref(*o) => {
            return Err("lease_keepalive_start: options must be a hash reference".into())
        }
        [_] => return Err("callback must be a code reference".into()),
        _ => return Err(USAGE.into()),
    };
    let o = Opts::new(p, opts);
    let on_lost = match o.get("on_lost") {
        None => None,
        Some(v) if p.is_code_ref(v) => Some(p.keep(v)),
        Some(_) => return Err("lease_keepalive_start: on_lost must be a code reference".into()),
    };
    let req = callbacks::keepalive_start(p, client, p.iv(a[1]), cb, on_lost)?;
    Ok(Some(p.new_object(req, KEEPALIVE).0))
}

/// `$keepalive->stop`: renewals end; nothing is called back.
pub fn keepalive_stop<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 1 {
        return Err("Usage: EV::Etcd::Keepalive::stop(keepalive)".into());
    }
    let req = args::handle(p, a[0], KEEPALIVE, "keepalive")?;
    callbacks::stop_keepalive(p, req)?;
    Ok(None)
}

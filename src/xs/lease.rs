//! Lease methods (API.md 6.2): lease_grant, lease_revoke, lease_time_to_live
//! and lease_leases. Decodes Perl arguments into plain requests and submits
//! them; croaks on bad arguments. Perl thread only.
#![forbid(unsafe_code)]

use crate::bridge;
use crate::etcd::call::Call;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts};

pub fn grant<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 3, "lease_grant(client, ttl, callback)")?;
    let r = rpc::LeaseGrantRequest {
        ttl: p.iv(a[1]),
        id: 0,
    };
    bridge::submit(p, id, "lease_grant", Call::LeaseGrant(r), cb)?;
    Ok(None)
}

pub fn revoke<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 3, "lease_revoke(client, lease_id, callback)")?;
    let r = rpc::LeaseRevokeRequest { id: p.iv(a[1]) };
    bridge::submit(p, id, "lease_revoke", Call::LeaseRevoke(r), cb)?;
    Ok(None)
}

pub fn time_to_live<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(
        p,
        a,
        1,
        "lease_time_to_live($lease_id, [\\%opts,] $callback)",
    )?;
    let cb = args::callback(p, cb)?;
    let r = rpc::LeaseTimeToLiveRequest {
        id: p.iv(a[1]),
        keys: Opts::new(p, opts).flag("keys"),
    };
    bridge::submit(p, id, "lease_ttl", Call::LeaseTimeToLive(r), cb)?;
    Ok(None)
}

pub fn leases<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 2, "lease_leases(client, callback)")?;
    let r = rpc::LeaseLeasesRequest {};
    bridge::submit(p, id, "lease_leases", Call::LeaseLeases(r), cb)?;
    Ok(None)
}

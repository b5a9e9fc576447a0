//! Election methods, unary parts (POD "ELECTION METHODS"): election_campaign,
//! election_proclaim, election_leader and election_resign. Perl thread only.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::v3electionpb as pb;
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Res};

/// A leader-key hash (POD "election_campaign") as returned by `election_campaign`;
/// missing or undefined fields are empty or 0.
fn leader_key(p: &Perl, sv: Sv) -> Res<pb::LeaderKey> {
    let hv = p.hash_ref(sv).ok_or("leader must be a hash reference")?;
    let bytes = |k| {
        p.hv_defined(hv, k)
            .map(|v| args::key(p, v))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let int = |k| p.hv_defined(hv, k).map(|v| p.iv(v)).unwrap_or(0);
    Ok(pb::LeaderKey {
        name: bytes("name")?,
        key: bytes("key")?,
        rev: int("rev"),
        lease: int("lease"),
    })
}

pub fn campaign<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        5,
        "election_campaign(client, name, lease_id, value, callback)",
    )?;
    let r = pb::CampaignRequest {
        name: args::key(p, a[1])?,
        lease: p.iv(a[2]),
        value: args::value(p, a[3])?,
    };
    let req = callbacks::submit_cancellable(p, id, Call::Campaign(r), cb)?;
    Ok(Some(p.new_object(req, super::lock::REQUEST).0))
}

pub fn proclaim<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        4,
        "election_proclaim(client, leader, value, callback)",
    )?;
    // The reference checks the value size before the leader type.
    let value = args::value(p, a[2])?;
    let r = pb::ProclaimRequest {
        leader: Some(leader_key(p, a[1])?),
        value,
    };
    callbacks::submit(p, id, Call::Proclaim(r), cb)?;
    Ok(None)
}

pub fn leader<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "election_leader(client, name, callback)")?;
    let r = pb::LeaderRequest {
        name: args::key(p, a[1])?,
    };
    callbacks::submit(p, id, Call::Leader(r), cb)?;
    Ok(None)
}

pub fn resign<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "election_resign(client, leader, callback)")?;
    let r = pb::ResignRequest {
        leader: Some(leader_key(p, a[1])?),
    };
    callbacks::submit(p, id, Call::Resign(r), cb)?;
    Ok(None)
}

const OBSERVE: &str = "EV::Etcd::Observe";

/// `election_observe($name, $cb, [\%opts])`: the options come after the
/// callback (POD "election_observe"). Returns a handle with `cancel`.
pub fn observe<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 3 && a.len() != 4 {
        return Err("Usage: EV::Etcd::election_observe(client, name, callback, [opts])".into());
    }
    let client = args::client(p, a[0])?;
    let name = args::key(p, a[1])?;
    let cb = args::callback(p, a[2])?;
    let o = super::args::Opts::new(p, a.get(3).copied());
    let auto_reconnect = !o.exists("auto_reconnect") || o.flag("auto_reconnect");
    let req = callbacks::observe(p, client, name, auto_reconnect, cb)?;
    Ok(Some(p.new_object(req, OBSERVE).0))
}

/// `$observe->cancel($cb)`: like a watch's cancel.
pub fn observe_cancel<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 2 {
        return Err("Usage: EV::Etcd::Observe::cancel(observe, callback)".into());
    }
    let req = args::handle(p, a[0], OBSERVE, "observe")?;
    let cb = args::callback(p, a[1])?;
    callbacks::cancel_observe(p, req, cb)?;
    Ok(None)
}

//! Response hashes of the lease, lock and election methods (POD "LEASES
//! AND KEEPALIVE", "LOCK METHODS", "ELECTION METHODS"), dispatched from
//! `convert::reply` through `ToPerl`. Perl thread only.

use crate::etcd::pb::etcdserverpb as rpc;
use crate::etcd::pb::{v3electionpb as election, v3lockpb as lock};

use super::{kv, to_perl_by, with_header, ToPerl};
use crate::perl::{NewSv, Perl};

pub fn grant(p: &Perl, r: &rpc::LeaseGrantResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.iv("id", r.id).iv("ttl", r.ttl);
    hv.finish()
}

/// `keys` only when at least one key is attached (the server sends none
/// unless they were asked for).
pub fn time_to_live(p: &Perl, r: &rpc::LeaseTimeToLiveResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.iv("id", r.id)
        .iv("ttl", r.ttl)
        .iv("granted_ttl", r.granted_ttl);
    if !r.keys.is_empty() {
        let mut av = p.new_array(r.keys.len());
        for k in &r.keys {
            av.push(p.new_bytes(k));
        }
        hv.put("keys", av.finish());
    }
    hv.finish()
}

pub fn leases(p: &Perl, r: &rpc::LeaseLeasesResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    let mut av = p.new_array(r.leases.len());
    for l in &r.leases {
        let mut one = p.new_hash();
        one.iv("id", l.id);
        av.push(one.finish());
    }
    hv.put("leases", av.finish());
    hv.finish()
}

pub fn lock(p: &Perl, r: &lock::LockResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.bytes("key", &r.key);
    hv.finish()
}

/// The leader-key hash of POD "election_campaign".
fn leader_key(p: &Perl, k: &election::LeaderKey) -> NewSv {
    let mut hv = p.new_hash();
    hv.bytes("name", &k.name)
        .bytes("key", &k.key)
        .iv("rev", k.rev)
        .iv("lease", k.lease);
    hv.finish()
}

pub fn campaign(p: &Perl, r: &election::CampaignResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.put(
        "leader",
        leader_key(p, r.leader.as_ref().unwrap_or(&Default::default())),
    );
    hv.finish()
}

pub fn leader(p: &Perl, r: &election::LeaderResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.put("kv", kv(p, r.kv.as_ref().unwrap_or(&Default::default())));
    hv.finish()
}

to_perl_by!(
    rpc::LeaseGrantResponse => grant,
    rpc::LeaseTimeToLiveResponse => time_to_live,
    rpc::LeaseLeasesResponse => leases,
    lock::LockResponse => lock,
    election::CampaignResponse => campaign,
    election::LeaderResponse => leader,
);

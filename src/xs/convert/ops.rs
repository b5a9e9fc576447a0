//! Response hashes of the operator methods (POD "MAINTENANCE METHODS",
//! "CLUSTER METHODS", "AUTH METHODS"): cluster, maintenance (beyond
//! status) and auth replies. Dispatched from
//! `convert::reply` through `ToPerl`. Perl thread only.

use crate::etcd::pb::authpb::{self, permission::Type as PermType};
use crate::etcd::pb::etcdserverpb::{self as rpc, AlarmType};

use super::{to_perl_by, with_header, ToPerl};
use crate::perl::{NewSv, Perl};

fn strings(p: &Perl, list: &[String]) -> NewSv {
    let mut av = p.new_array(list.len());
    for s in list {
        av.push(p.new_bytes(s.as_bytes()));
    }
    av.finish()
}

/// The member hash (POD "member_list"): `name` only when the member has one.
fn member(p: &Perl, m: &rpc::Member) -> NewSv {
    let mut hv = p.new_hash();
    hv.uv("id", m.id);
    if !m.name.is_empty() {
        hv.bytes("name", m.name.as_bytes());
    }
    hv.bool("is_learner", m.is_learner)
        .put("peer_urls", strings(p, &m.peer_ur_ls))
        .put("client_urls", strings(p, &m.client_ur_ls));
    hv.finish()
}

fn members(p: &Perl, h: &Option<rpc::ResponseHeader>, list: &[rpc::Member]) -> NewSv {
    let mut hv = with_header(p, h);
    hv.put("members", member_list(p, list));
    hv.finish()
}

fn member_list(p: &Perl, list: &[rpc::Member]) -> NewSv {
    let mut av = p.new_array(list.len());
    for m in list {
        av.push(member(p, m));
    }
    av.finish()
}

fn alarms(p: &Perl, r: &rpc::AlarmResponse) -> NewSv {
    let mut list = p.new_array(r.alarms.len());
    for a in &r.alarms {
        let name = match AlarmType::try_from(a.alarm) {
            Ok(AlarmType::None) => "NONE",
            Ok(AlarmType::Nospace) => "NOSPACE",
            Ok(AlarmType::Corrupt) => "CORRUPT",
            Err(_) => "UNKNOWN",
        };
        let mut one = p.new_hash();
        one.uv("member_id", a.member_id)
            .iv("alarm", i64::from(a.alarm))
            .bytes("alarm_type", name.as_bytes());
        list.push(one.finish());
    }
    let mut hv = with_header(p, &r.header);
    hv.put("alarms", list.finish());
    hv.finish()
}

fn permission(p: &Perl, perm: &authpb::Permission) -> NewSv {
    let name = match PermType::try_from(perm.perm_type) {
        Ok(PermType::Read) => "READ",
        Ok(PermType::Write) => "WRITE",
        Ok(PermType::Readwrite) => "READWRITE",
        Err(_) => "UNKNOWN",
    };
    let mut hv = p.new_hash();
    hv.bytes("perm_type", name.as_bytes());
    if !perm.key.is_empty() {
        hv.bytes("key", &perm.key);
    }
    if !perm.range_end.is_empty() {
        hv.bytes("range_end", &perm.range_end);
    }
    hv.finish()
}

/// `header` plus one array of strings under `key`.
fn named_list(p: &Perl, h: &Option<rpc::ResponseHeader>, key: &str, list: &[String]) -> NewSv {
    let mut hv = with_header(p, h);
    hv.put(key, strings(p, list));
    hv.finish()
}

macro_rules! members_of {
    ($($t:ty),*) => {
        $(impl ToPerl for $t {
            fn to_perl(&self, p: &Perl) -> NewSv {
                members(p, &self.header, &self.members)
            }
        })*
    };
}

members_of!(
    rpc::MemberListResponse,
    rpc::MemberRemoveResponse,
    rpc::MemberUpdateResponse,
    rpc::MemberPromoteResponse
);

impl ToPerl for rpc::MemberAddResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        if let Some(m) = &self.member {
            hv.put("member", member(p, m));
        }
        hv.put("members", member_list(p, &self.members));
        hv.finish()
    }
}

to_perl_by!(rpc::AlarmResponse => alarms);

impl ToPerl for rpc::HashResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        hv.uv("hash", u64::from(self.hash));
        hv.finish()
    }
}

impl ToPerl for rpc::HashKvResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        hv.uv("hash", u64::from(self.hash))
            .iv("compact_revision", self.compact_revision);
        // Sent by newer servers only (the revision the hash covers).
        if self.hash_revision != 0 {
            hv.iv("hash_revision", self.hash_revision);
        }
        hv.finish()
    }
}

impl ToPerl for rpc::DowngradeResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        hv.bytes("version", self.version.as_bytes());
        hv.finish()
    }
}

impl ToPerl for rpc::AuthStatusResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        hv.bool("enabled", self.enabled)
            .uv("auth_revision", self.auth_revision);
        hv.finish()
    }
}

impl ToPerl for rpc::AuthenticateResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut hv = with_header(p, &self.header);
        hv.bytes("token", self.token.as_bytes());
        hv.finish()
    }
}

impl ToPerl for rpc::AuthUserGetResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        named_list(p, &self.header, "roles", &self.roles)
    }
}

impl ToPerl for rpc::AuthUserListResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        named_list(p, &self.header, "users", &self.users)
    }
}

impl ToPerl for rpc::AuthRoleListResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        named_list(p, &self.header, "roles", &self.roles)
    }
}

impl ToPerl for rpc::AuthRoleGetResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        let mut list = p.new_array(self.perm.len());
        for perm in &self.perm {
            list.push(permission(p, perm));
        }
        let mut hv = with_header(p, &self.header);
        hv.put("perm", list.finish());
        hv.finish()
    }
}

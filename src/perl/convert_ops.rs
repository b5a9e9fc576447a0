//! Response hashes of the operator methods (POD "MAINTENANCE METHODS", "CLUSTER METHODS", "AUTH METHODS"): cluster,
//! maintenance (beyond status) and auth replies. Dispatched from
//! `convert::reply`. Perl thread only.

use crate::etcd::call::Reply;
use crate::etcd::pb::authpb::{self, permission::Type as PermType};
use crate::etcd::pb::etcdserverpb::{self as rpc, AlarmType};

use super::convert::with_header;
use super::sv::{NewSv, Perl};

fn strings(p: &Perl, list: &[String]) -> NewSv {
    let mut av = p.new_array(list.len());
    for s in list {
        av.push(p.new_bytes(s.as_bytes()));
    }
    av.finish()
}

/// The member hash (4.4): `name` only when the member has one.
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

/// The response hash of an operator reply; `None` for the replies that
/// `convert::reply` handles itself.
pub fn reply(p: &Perl, r: &Reply) -> Option<NewSv> {
    let header_only = |h| Some(with_header(p, h).finish());
    match r {
        Reply::MemberList(x) => Some(members(p, &x.header, &x.members)),
        Reply::MemberAdd(x) => {
            let mut hv = with_header(p, &x.header);
            if let Some(m) = &x.member {
                hv.put("member", member(p, m));
            }
            hv.put("members", member_list(p, &x.members));
            Some(hv.finish())
        }
        Reply::MemberRemove(x) => Some(members(p, &x.header, &x.members)),
        Reply::MemberUpdate(x) => Some(members(p, &x.header, &x.members)),
        Reply::MemberPromote(x) => Some(members(p, &x.header, &x.members)),
        Reply::Alarm(x) => Some(alarms(p, x)),
        Reply::Defragment(x) => header_only(&x.header),
        Reply::MoveLeader(x) => header_only(&x.header),
        Reply::HashKv(x) => {
            let mut hv = with_header(p, &x.header);
            hv.uv("hash", u64::from(x.hash))
                .iv("compact_revision", x.compact_revision);
            // Sent by newer servers only (the revision the hash covers).
            if x.hash_revision != 0 {
                hv.iv("hash_revision", x.hash_revision);
            }
            Some(hv.finish())
        }
        Reply::AuthStatus(x) => {
            let mut hv = with_header(p, &x.header);
            hv.bool("enabled", x.enabled)
                .uv("auth_revision", x.auth_revision);
            Some(hv.finish())
        }
        Reply::Authenticate(x) => {
            let mut hv = with_header(p, &x.header);
            hv.bytes("token", x.token.as_bytes());
            Some(hv.finish())
        }
        Reply::AuthEnable(x) => header_only(&x.header),
        Reply::AuthDisable(x) => header_only(&x.header),
        Reply::UserAdd(x) => header_only(&x.header),
        Reply::UserDelete(x) => header_only(&x.header),
        Reply::UserChangePassword(x) => header_only(&x.header),
        Reply::UserGrantRole(x) => header_only(&x.header),
        Reply::UserRevokeRole(x) => header_only(&x.header),
        Reply::RoleAdd(x) => header_only(&x.header),
        Reply::RoleDelete(x) => header_only(&x.header),
        Reply::RoleGrantPermission(x) => header_only(&x.header),
        Reply::RoleRevokePermission(x) => header_only(&x.header),
        Reply::UserGet(x) => Some(named_list(p, &x.header, "roles", &x.roles)),
        Reply::UserList(x) => Some(named_list(p, &x.header, "users", &x.users)),
        Reply::RoleList(x) => Some(named_list(p, &x.header, "roles", &x.roles)),
        Reply::RoleGet(x) => {
            let mut list = p.new_array(x.perm.len());
            for perm in &x.perm {
                list.push(permission(p, perm));
            }
            let mut hv = with_header(p, &x.header);
            hv.put("perm", list.finish());
            Some(hv.finish())
        }
        _ => None,
    }
}

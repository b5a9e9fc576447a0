//! Cluster methods (POD "CLUSTER METHODS"): member_list, member_add, member_remove,
//! member_update, member_promote. Member ids are unsigned 64-bit integers.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts};

pub fn member_list<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "member_list(client, callback)")?;
    let call = Call::MemberList(rpc::MemberListRequest::default());
    callbacks::submit(p, id, call, cb)?;
    Ok(None)
}

pub fn member_add<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) =
        args::optional_form(p, a, 1, "member_add(\\@peer_urls, [\\%opts,] $callback)")?;
    let cb = args::reply(
        p,
        cb,
        opts,
        "member_add(\\@peer_urls, [\\%opts,] $callback)",
    )?;
    let r = rpc::MemberAddRequest {
        peer_ur_ls: args::url_list(p, a[1])?,
        is_learner: Opts::new(p, opts).flag("is_learner"),
    };
    callbacks::submit(p, id, Call::MemberAdd(r), cb)?;
    Ok(None)
}

pub fn member_remove<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "member_remove(client, member_id, callback)")?;
    let r = rpc::MemberRemoveRequest { id: p.uv(a[1]) };
    callbacks::submit(p, id, Call::MemberRemove(r), cb)?;
    Ok(None)
}

pub fn member_update<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        4,
        "member_update(client, member_id, peer_urls, callback)",
    )?;
    let urls = args::url_list(p, a[2])?;
    if urls.is_empty() {
        // etcd 3.4 accepts the request and then crashes on it.
        return Err("member_update: peer_urls must not be empty".into());
    }
    let r = rpc::MemberUpdateRequest {
        id: p.uv(a[1]),
        peer_ur_ls: urls,
    };
    callbacks::submit(p, id, Call::MemberUpdate(r), cb)?;
    Ok(None)
}

pub fn member_promote<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "member_promote(client, member_id, callback)")?;
    let r = rpc::MemberPromoteRequest { id: p.uv(a[1]) };
    callbacks::submit(p, id, Call::MemberPromote(r), cb)?;
    Ok(None)
}

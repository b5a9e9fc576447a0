//! Lock methods (POD "LOCK METHODS"): lock and unlock over etcd's v3lock service.
//! A blocked `lock` is bounded by the client's `timeout` like any unary
//! call, and is never retried once it may have reached the server. Perl
//! thread only.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::v3lockpb as pb;
use crate::perl::{Perl, Sv, XsResult};

use super::args;

pub fn lock<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 4, "lock(client, name, lease_id, callback)")?;
    let r = pb::LockRequest {
        name: args::key(p, a[1])?,
        lease: p.iv(a[2]),
    };
    callbacks::submit(p, id, Call::Lock(r), cb)?;
    Ok(None)
}

pub fn unlock<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::fixed_form(p, a, 3, "unlock(client, key, callback)")?;
    let r = pb::UnlockRequest {
        key: args::key(p, a[1])?,
    };
    callbacks::submit(p, id, Call::Unlock(r), cb)?;
    Ok(None)
}

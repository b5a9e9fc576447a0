//! Lock methods (POD "LOCK METHODS"): lock and unlock over etcd's v3lock service.
//! A blocked `lock` is bounded by its `timeout` (the client's, or its own)
//! like any unary call, is never retried once it may have reached the
//! server, and returns a handle that can cancel it. Perl thread only.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::v3lockpb as pb;
use crate::perl::{Perl, Sv, XsResult};

use super::args;

pub fn lock<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 4, "lock(client, name, lease_id, callback)")?;
    let r = pb::LockRequest {
        name: args::key(p, a[1])?,
        lease: p.iv(a[2]),
    };
    let req = callbacks::submit_cancellable(p, id, Call::Lock(r), cb)?;
    Ok(Some(p.new_object(req, REQUEST).0))
}

/// The class of the handle `lock` and `election_campaign` return.
pub const REQUEST: &str = "EV::Etcd::Request";

/// `$request->cancel`: true when the lock or campaign was still waiting
/// for its answer (its callback then gets CANCELLED), false when it has
/// been answered or cancelled already.
pub fn cancel<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 1 {
        return Err("Usage: EV::Etcd::Request::cancel(request)".into());
    }
    let req = args::handle(p, a[0], REQUEST, "request")?;
    let pending = callbacks::cancel_call(p, req)?;
    Ok(Some(p.new_iv(i64::from(pending))))
}

pub fn unlock<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "unlock(client, key, callback)")?;
    let r = pb::UnlockRequest {
        key: args::key(p, a[1])?,
    };
    callbacks::submit(p, id, Call::Unlock(r), cb)?;
    Ok(None)
}

//! Maintenance methods (API.md 6.6): status.
#![forbid(unsafe_code)]

use crate::bridge;
use crate::etcd::call::Call;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::perl::{Perl, Sv, XsResult};

use super::args;

pub fn status<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 2, "status(client, callback)")?;
    let id = args::client(p, a[0])?;
    let cb = args::callback(p, a[1])?;
    bridge::submit(p, id, "status", Call::Status(rpc::StatusRequest {}), cb)?;
    Ok(None)
}

//! Maintenance methods (POD "MAINTENANCE METHODS"): status, alarm, defragment, hash, hash_kv,
//! move_leader, auth_status, snapshot.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::etcdserverpb::{self as rpc, alarm_request::AlarmAction, AlarmType};
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts};

pub fn status<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "status(client, callback)")?;
    callbacks::submit(p, id, Call::Status(rpc::StatusRequest {}), cb)?;
    Ok(None)
}

pub fn alarm<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(p, a, 1, "alarm($action, [\\%opts,] $callback)")?;
    let cb = args::reply(p, cb, opts, "alarm($action, [\\%opts,] $callback)")?;
    let word = p.text(a[1]);
    let action = match word.to_ascii_uppercase().as_str() {
        "GET" => AlarmAction::Get,
        "ACTIVATE" => AlarmAction::Activate,
        "DEACTIVATE" => AlarmAction::Deactivate,
        _ => {
            return Err(format!(
                "Invalid alarm action: {word} (expected GET, ACTIVATE, or DEACTIVATE)"
            ))
        }
    };
    let o = Opts::new(p, opts);
    let alarm = match o.text("alarm").map(|t| t.to_ascii_uppercase()).as_deref() {
        Some("NOSPACE") => AlarmType::Nospace,
        Some("CORRUPT") => AlarmType::Corrupt,
        _ => AlarmType::None,
    };
    let r = rpc::AlarmRequest {
        action: action as i32,
        member_id: o.uint("member_id").unwrap_or(0),
        alarm: alarm as i32,
    };
    callbacks::submit(p, id, Call::Alarm(r), cb)?;
    Ok(None)
}

pub fn defragment<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "defragment(client, callback)")?;
    let call = Call::Defragment(rpc::DefragmentRequest {});
    callbacks::submit(p, id, call, cb)?;
    Ok(None)
}

/// `hash($cb)`: the hash of the member's whole backend database.
pub fn hash<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "hash(client, callback)")?;
    callbacks::submit(p, id, Call::Hash(rpc::HashRequest {}), cb)?;
    Ok(None)
}

/// `hash_kv([$revision,] [\%opts,] $cb)`: revision 0 or omitted means the
/// latest.
pub fn hash_kv<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let usage = "hash_kv([$revision,] $callback)";
    let is_hash = |i: usize| p.hash_ref(a[i]).is_some();
    let (rev, opts) = match a.len() {
        2 => (None, None),
        3 if is_hash(1) => (None, Some(a[1])),
        3 => (Some(a[1]), None),
        4 if is_hash(2) => (Some(a[1]), Some(a[2])),
        _ => return Err(format!("Usage: $client->{usage}")),
    };
    let id = args::client(p, a[0])?;
    let cb = args::reply(p, a[a.len() - 1], opts, usage)?;
    let r = rpc::HashKvRequest {
        revision: rev.map(|v| p.iv(v)).unwrap_or(0),
    };
    callbacks::submit(p, id, Call::HashKv(r), cb)?;
    Ok(None)
}

pub fn move_leader<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "move_leader(client, target_id, callback)")?;
    let r = rpc::MoveLeaderRequest {
        target_id: p.uv(a[1]),
    };
    callbacks::submit(p, id, Call::MoveLeader(r), cb)?;
    Ok(None)
}

/// `downgrade($action, $version, [\%opts,] $cb)`: etcd 3.5's cluster
/// downgrade (POD "downgrade").
pub fn downgrade<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    use rpc::downgrade_request::DowngradeAction;
    let (id, cb) = args::request_form(p, a, 4, "downgrade(client, action, version, callback)")?;
    let word = p.text(a[1]);
    let action = match word.to_ascii_uppercase().as_str() {
        "VALIDATE" => DowngradeAction::Validate,
        "ENABLE" => DowngradeAction::Enable,
        "CANCEL" => DowngradeAction::Cancel,
        _ => {
            return Err(format!(
                "downgrade: invalid action: {word} (expected validate, enable or cancel)"
            ))
        }
    };
    let version = if p.is_defined(a[2]) {
        p.text(a[2])
    } else {
        String::new()
    };
    let r = rpc::DowngradeRequest {
        action: action as i32,
        version,
    };
    callbacks::submit(p, id, Call::Downgrade(r), cb)?;
    Ok(None)
}

/// Answered from a probe on servers without the AuthStatus RPC (etcd 3.4),
/// see src/etcd/auth.rs.
pub fn auth_status<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "auth_status(client, callback)")?;
    let call = Call::AuthStatus(rpc::AuthStatusRequest {});
    callbacks::submit(p, id, call, cb)?;
    Ok(None)
}

/// `snapshot($file_or_callback, [\%opts,] $cb)`: the backend database,
/// written to a file or handed over chunk by chunk; `$cb` gets `{ header,
/// size, file }`. `endpoint` in the options names the member to ask.
pub fn snapshot<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    const USAGE: &str = "snapshot(client, file_or_callback, callback)";
    let (id, cb) = args::fixed_form(p, a, a.len().clamp(3, 4), USAGE)?;
    let member = match a.get(2).filter(|_| a.len() == 4) {
        None => None,
        Some(&o) if p.hash_ref(o).is_some() => args::Opts::new(p, Some(o)).text("endpoint"),
        Some(_) => return Err(format!("Usage: EV::Etcd::{USAGE}")),
    };
    let t = a[1];
    let (target, on_chunk) = if p.is_code_ref(t) {
        (crate::etcd::snapshot::Target::Chunks, Some(p.keep(t)))
    } else if p.is_defined(t) && !p.is_ref(t) && !p.bytes(t).is_empty() {
        let name = p.bytes(t);
        if name.contains(&0) {
            return Err("snapshot: file name contains a NUL byte".into());
        }
        use std::os::unix::ffi::OsStringExt;
        let path = std::path::PathBuf::from(std::ffi::OsString::from_vec(name));
        (crate::etcd::snapshot::Target::File(path), None)
    } else {
        return Err("snapshot: target must be a file name or a code reference".into());
    };
    callbacks::snapshot(p, id, target, on_chunk, cb, member)?;
    Ok(None)
}

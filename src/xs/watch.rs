//! Watch methods (POD "WATCHES"): `watch` and the `EV::Etcd::Watch`
//! handle's `cancel` and `request_progress`.

use super::callbacks;
use crate::etcd::pb::etcdserverpb::watch_create_request::FilterType;
use crate::etcd::watch::WatchSpec;
use crate::perl::{Perl, Sv, XsResult};

use super::args::optional_form;
use super::args::{self, Opts, Res};
use super::kv::range_end;

const HANDLE: &str = "EV::Etcd::Watch";

pub fn watch<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = optional_form(p, a, 1, "watch($key, [\\%opts,] $callback)")?;
    let cb = args::callback(p, cb)?;
    let o = Opts::new(p, opts);
    let key = args::key(p, a[1])?;
    let spec = WatchSpec {
        range_end: range_end(&o, &key, id)?,
        key,
        start_revision: o.int("start_revision").unwrap_or(0).max(0),
        prev_kv: o.flag("prev_kv"),
        progress_notify: o.flag("progress_notify"),
        filters: filters(&o)?,
        watch_id: o.int("watch_id"),
        // Presence decides: an existing key (even undef) is taken for its truth.
        auto_reconnect: !o.exists("auto_reconnect") || o.flag("auto_reconnect"),
    };
    let req = callbacks::watch(p, id, spec, cb)?;
    Ok(Some(p.new_object(req, HANDLE).0))
}

fn filters(o: &Opts) -> Res<Vec<i32>> {
    let Some(v) = o.get("filters") else {
        return Ok(Vec::new());
    };
    let p = o.p;
    let list = p
        .array_ref(v)
        .ok_or("watch: filters must be an array reference")?;
    let mut out = Vec::new();
    for i in 0..p.av_len(list) {
        let name = p.av_get(list, i).map(|s| p.text(s)).unwrap_or_default();
        let f = match name.to_ascii_lowercase().as_str() {
            "noput" => FilterType::Noput,
            "nodelete" => FilterType::Nodelete,
            _ => {
                return Err(format!(
                    "watch: unknown filter '{name}' (expected noput or nodelete)"
                ))
            }
        };
        out.push(f as i32);
    }
    Ok(out)
}

fn handle<'a>(p: &Perl<'a>, sv: Sv<'a>) -> Res<u64> {
    args::handle(p, sv, HANDLE, "watch")
}

/// `$watch->cancel($cb)`: `$cb->({}, undef)` runs once, from the loop.
pub fn cancel<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 2 {
        return Err("Usage: EV::Etcd::Watch::cancel(watch, callback)".into());
    }
    let req = handle(p, a[0])?;
    let cb = args::callback(p, a[1])?;
    callbacks::cancel_watch(p, req, cb)?;
    Ok(None)
}

/// `$watch->request_progress`: the server answers with a progress message
/// (an empty `events` list whose header revision says how far it has sent).
pub fn request_progress<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    if a.len() != 1 {
        return Err("Usage: EV::Etcd::Watch::request_progress(watch)".into());
    }
    let req = handle(p, a[0])?;
    callbacks::check_stream(req)?;
    callbacks::watch_progress(req);
    Ok(None)
}

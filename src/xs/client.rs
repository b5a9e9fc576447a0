//! Client lifecycle xsubs: the constructor's option decoding (POD "new"),
//! DESTROY, and the loop plumbing the .pm uses (notify fd, drain, END).

use std::time::Duration;

use super::callbacks;
use crate::etcd::auth::Credentials;
use crate::etcd::client::{Config, Liveness};
use crate::etcd::endpoints::EndpointStates;
use crate::etcd::retry::Limits;
use crate::etcd::tls::{self, Tls, TlsPaths};
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts};

const DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";
/// `max_pending` (POD "BACKPRESSURE"): completions waiting for the Perl
/// thread beyond which watch streams stop reading.
const DEFAULT_MAX_PENDING: usize = 1000;

/// `max_pending_bytes`: the same in bytes of keys and values.
const DEFAULT_MAX_PENDING_BYTES: usize = 8 << 20;

/// Option `k`: a whole number from 1 to 2**40 (`unit` names it in the
/// croak), `default` when absent.
fn whole(o: &Opts, k: &str, default: usize, unit: &str) -> Result<usize, String> {
    let Some(v) = o.get(k) else {
        return Ok(default);
    };
    let n = args::number(o.p, v);
    if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= (1u64 << 40) as f64 {
        Ok(n as usize)
    } else {
        Err(format!(
            "EV::Etcd->new: {k} must be a whole number of {unit}, at least 1"
        ))
    }
}

/// `EV_ETCD_DEBUG` set to anything but "" or "0": events go to STDERR.
fn debug_wanted() -> bool {
    std::env::var_os("EV_ETCD_DEBUG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Ten years: keeps `now + timeout` representable.
const MAX_TIMEOUT: i64 = 10 * 365 * 86_400;

/// `EV::Etcd::_new(\%opts)`: the .pm flattens `new(%options)` into a hash.
pub fn new<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let o = Opts::new(p, a.first().copied());
    let mut endpoints = Vec::new();
    if let Some(list) =
        o.hv.and_then(|h| p.hv_get(h, "endpoints"))
            .and_then(|v| p.array_ref(v))
    {
        for i in 0..p.av_len(list) {
            let ep = match p.av_get(list, i) {
                Some(v) if p.is_string(v) => {
                    String::from_utf8_lossy(&args::url(p, v)?).into_owned()
                }
                _ => DEFAULT_ENDPOINT.to_owned(),
            };
            endpoints.push(ep);
        }
    }
    if endpoints.is_empty() {
        endpoints.push(DEFAULT_ENDPOINT.to_owned());
    }
    // Whole seconds, at least 1; a huge value means "practically never".
    let timeout = o.int("timeout").unwrap_or(30).clamp(1, MAX_TIMEOUT) as u64;
    let max_retries = o
        .int("max_retries")
        .unwrap_or(3)
        .clamp(0, i64::from(u32::MAX)) as u32;
    let auth_token = o
        .get("auth_token")
        .filter(|v| p.is_string(*v))
        .map(|v| p.text(v))
        .filter(|t| !t.is_empty());
    // `user` and `password` (POD "AUTHENTICATION"): the user must be a non-empty
    // string; the password is required with it.
    let credentials = match (o.get("user").filter(|v| p.is_string(*v)), o.get("password")) {
        (Some(u), Some(pw)) => Some(Credentials {
            user: args::name_text(p, u)?,
            password: args::password_text(p, pw)?,
        })
        .filter(|c| !c.user.is_empty()),
        _ => None,
    };
    let max_recv_size = o.int("max_recv_size").unwrap_or(0).max(0) as usize;
    // `namespace` (src/etcd/namespace.rs): a byte string; a reference is a
    // mistake, not a prefix like "ARRAY(0x...)".
    if o.get("namespace").is_some_and(|v| p.is_ref(v)) {
        return Err("EV::Etcd->new: namespace must be a string".into());
    }
    let namespace = o.key("namespace")?.unwrap_or_default();
    let tls = tls_option(p, &o, &endpoints).map_err(|m| format!("EV::Etcd->new: {m}"))?;
    let state = EndpointStates::new(endpoints.clone());
    // POD "PARTITIONS AND LEADER LOSS": on unless turned off.
    let require_leader = o.get("require_leader").is_none_or(|v| p.truthy(v));
    let liveness = liveness_option(&o)?;
    // 0 turns the check off; whole seconds otherwise.
    let leader_check = o
        .int("leader_check_interval")
        .unwrap_or(1)
        .clamp(0, MAX_TIMEOUT) as u64;
    // 0 (the default): no syncing; whole seconds otherwise.
    let auto_sync = o
        .int("auto_sync_interval")
        .unwrap_or(0)
        .clamp(0, MAX_TIMEOUT) as u64;
    let backoff = backoff_option(&o)?;
    let on_event = match o.get("on_event") {
        None => None,
        Some(v) if p.is_code_ref(v) => Some(p.keep(v)),
        Some(_) => return Err("EV::Etcd->new: on_event must be a code reference".into()),
    };
    let max_pending = whole(&o, "max_pending", DEFAULT_MAX_PENDING, "completions")?;
    let max_pending_bytes = whole(&o, "max_pending_bytes", DEFAULT_MAX_PENDING_BYTES, "bytes")?;
    state.events().listen(on_event.is_some(), debug_wanted());
    let cfg = Config {
        endpoints,
        timeout: Duration::from_secs(timeout),
        max_retries,
        auth_token,
        credentials,
        max_recv_size,
        namespace,
        tls,
        state,
        require_leader,
        liveness,
        leader_check_interval: Duration::from_secs(leader_check),
        auto_sync_interval: Duration::from_secs(auto_sync),
        backoff,
        max_pending,
        max_pending_bytes,
        backlog: None,
    };
    p.check()?;
    let id = callbacks::new_client(cfg, on_event)?;
    let (obj, tag) = p.new_object(id, "EV::Etcd");
    callbacks::set_client_tag(id, tag);
    Ok(Some(obj))
}

/// `retry_backoff_min`, `retry_backoff_max` (POD "RETRIES AND FAILOVER"):
/// seconds, fractions allowed.
fn backoff_option(o: &Opts) -> Result<Limits, String> {
    let d = Limits::default();
    let secs = |k: &str, default: Duration| match o.get(k) {
        None => Ok(default),
        Some(v) => {
            let n = args::number(o.p, v);
            if n.is_finite() && n > 0.0 && n <= 3600.0 {
                Ok(Duration::from_secs_f64(n))
            } else {
                Err(format!(
                    "EV::Etcd->new: {k} must be a number of seconds above 0, at most 3600"
                ))
            }
        }
    };
    let floor = secs("retry_backoff_min", d.floor)?;
    let cap = secs("retry_backoff_max", d.cap.max(floor))?;
    if cap < floor {
        return Err("EV::Etcd->new: retry_backoff_max is below retry_backoff_min".into());
    }
    Ok(Limits { floor, cap })
}

/// `keepalive_time`, `keepalive_timeout` (whole seconds, at least 1) and
/// `keepalive_while_idle`: the connections' HTTP/2 pings (POD "new").
fn liveness_option(o: &Opts) -> Result<Liveness, String> {
    let d = Liveness::default();
    let secs = |k: &str, default: Duration| match o.int(k) {
        None => Ok(default),
        Some(n) if (1..=MAX_TIMEOUT).contains(&n) => Ok(Duration::from_secs(n as u64)),
        Some(_) => Err(format!(
            "EV::Etcd->new: {k} must be a whole number of seconds, at least 1"
        )),
    };
    Ok(Liveness {
        time: secs("keepalive_time", d.time)?,
        timeout: secs("keepalive_timeout", d.timeout)?,
        while_idle: o.flag("keepalive_while_idle"),
    })
}

/// The `tls => { ca_file, cert_file, key_file, server_name }` option
/// (POD "TLS"): the files are read now, so a bad one croaks in `new`.
/// `Some` when the client speaks TLS (the option, or https:// endpoints).
fn tls_option(p: &Perl, o: &Opts, endpoints: &[String]) -> Result<Option<Tls>, String> {
    let t = o.get("tls").map(|v| Opts::new(p, Some(v)));
    if let Some(t) = &t {
        if t.hv.is_none() {
            return Err("tls must be a hash reference".into());
        }
    }
    if !tls::uses_tls(endpoints, t.is_some())? {
        return Ok(None);
    }
    let paths = match t {
        Some(t) => TlsPaths {
            ca_file: t.text("ca_file"),
            cert_file: t.text("cert_file"),
            key_file: t.text("key_file"),
            server_name: t.text("server_name"),
        },
        None => TlsPaths::default(),
    };
    Tls::load(&paths).map(Some)
}

/// `DESTROY`: outstanding callbacks are dropped silently (POD "DESTRUCTION"). Safe
/// from inside the client's own callbacks: nothing of the running callback
/// is borrowed while it runs.
pub fn destroy<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    // A forged object holding a live client's id must not destroy it.
    let id = a.first().and_then(|s| p.object_id(*s));
    if let Some(id) = id.and_then(|(id, tag)| callbacks::client_tag_ok(id, tag).then_some(id)) {
        callbacks::drop_client(p, id);
        if crate::perl::sv::perl_alive() {
            p.call_named(c"EV::Etcd::_health_stop", id as i64);
        }
    }
    Ok(None)
}

/// `_health_tick($client, $interval)`: one tick of the health monitor the
/// .pm's timer runs; `[$is_healthy, $endpoint]` on a change, else undef.
pub fn health_tick<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 2, "_health_tick(client, interval)")?;
    let id = args::client(p, a[0])?;
    let limit = Duration::from_secs(p.iv(a[1]).clamp(1, 5) as u64);
    Ok(callbacks::health_tick(id, limit).map(|(healthy, ep)| {
        let mut av = p.new_array(2);
        av.push(p.new_iv(i64::from(healthy)))
            .push(p.new_bytes(ep.as_bytes()));
        av.finish()
    }))
}

/// `_endpoints($client)`: the endpoint list, as an array reference (the
/// .pm's `endpoints` returns it as a list).
pub fn endpoints<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 1, "endpoints(client)")?;
    let id = args::client(p, a[0])?;
    let (names, _) = callbacks::endpoints(id)?;
    let mut av = p.new_array(names.len());
    for n in &names {
        av.push(p.new_bytes(n.as_bytes()));
    }
    Ok(Some(av.finish()))
}

/// `$client->set_endpoints(\@endpoints)`: a non-empty array reference of
/// `host:port` or URL strings, of the client's kind (TLS or not).
pub fn set_endpoints<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 2, "set_endpoints(client, endpoints)")?;
    let id = args::client(p, a[0])?;
    let bad = "EV::Etcd::set_endpoints: endpoints must be a non-empty array reference of strings";
    let list = p.array_ref(a[1]).ok_or(bad)?;
    let mut names: Vec<String> = Vec::new();
    for i in 0..p.av_len(list) {
        match p.av_get(list, i) {
            Some(v) if p.is_string(v) => {
                let n = String::from_utf8_lossy(&args::url(p, v)?).into_owned();
                if n.is_empty() {
                    return Err(bad.into());
                }
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            _ => return Err(bad.into()),
        }
    }
    if names.is_empty() {
        return Err(bad.into());
    }
    let (_, tls) = callbacks::endpoints(id)?;
    let https = tls::uses_tls(&names, tls).map_err(|m| format!("EV::Etcd::set_endpoints: {m}"))?;
    if https != tls {
        return Err(format!(
            "EV::Etcd::set_endpoints: the client was created {}, these endpoints need it {}",
            if tls { "with TLS" } else { "without TLS" },
            if https { "with TLS" } else { "without TLS" },
        ));
    }
    p.check()?;
    callbacks::set_endpoints(id, names)?;
    Ok(None)
}

/// `$client->stats`: the client's counters (POD "EVENTS AND COUNTERS").
pub fn stats<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 1, "stats(client)")?;
    let id = args::client(p, a[0])?;
    let s = callbacks::stats(id)?;
    let mut hv = p.new_hash();
    hv.uv("requests", s.requests)
        .uv("retries", s.retries)
        .uv("failovers", s.failovers)
        .uv("reconnects", s.reconnects)
        .uv("relogins", s.relogins)
        .uv("in_flight", s.in_flight)
        .uv("watches", s.watches)
        .uv("keepalives", s.keepalives)
        .uv("queued", s.queued)
        .uv("bytes_in", s.bytes_in)
        .uv("bytes_out", s.bytes_out);
    Ok(Some(hv.finish()))
}

/// `_fd()`: the notify fd (starts the runtime thread on first use).
pub fn fd<'a>(p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    let fd = callbacks::notify_fd()?;
    Ok(Some(p.new_iv(i64::from(fd))))
}

/// `_drain()`: runs the callbacks of everything that completed. False
/// (and nothing run) in a forked child, whose watcher then stops.
pub fn drain<'a>(p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    let ours = callbacks::drain(p);
    Ok(Some(p.new_iv(i64::from(ours))))
}

/// `_trace()`: with the `trace` feature, `[count, [stage, mean ns], ...]`
/// for the requests since the last call (src/trace.rs); an empty
/// list without it.
pub fn trace<'a>(p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    let (gaps, n) = crate::trace::report();
    let mut av = p.new_array(gaps.len() + 1);
    if !gaps.is_empty() {
        av.push(p.new_uv(n));
    }
    for (stage, ns) in gaps {
        let mut pair = p.new_array(2);
        pair.push(p.new_bytes(stage.as_bytes()));
        pair.push(p.new_uv(ns.round() as u64));
        av.push(pair.finish());
    }
    Ok(Some(av.finish()))
}

/// `_flush()`: sends requests buffered by callbacks (prepare watcher).
/// False in a forked child, like `_drain`.
pub fn flush<'a>(p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    if !callbacks::ours() {
        return Ok(Some(p.new_iv(0)));
    }
    callbacks::flush();
    callbacks::wait_for_answer();
    Ok(Some(p.new_iv(1)))
}

/// `_shutdown()`: END-time teardown.
pub fn shutdown<'a>(_p: &Perl<'a>, _a: &[Sv<'a>]) -> XsResult {
    callbacks::shutdown();
    Ok(None)
}

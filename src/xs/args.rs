//! Argument decoding shared by every method: the client invocant, the
//! callback, usage checks, size limits (POD "ERRORS") and option lookups.
//! Perl thread only; returns croak messages as `Err(String)`.

use std::time::Duration;

use crate::perl::{Hv, Perl, Sv, SvBox};

pub const MAX_KEY: usize = 1_048_576;
pub const MAX_VALUE: usize = 1_048_576;
pub const MAX_NAME: usize = 256;
pub const MAX_PASSWORD: usize = 4096;
pub const MAX_URL: usize = 2048;

pub type Res<T> = Result<T, String>;

/// The client id behind the invocant.
pub fn client<'a>(p: &Perl<'a>, sv: Sv<'a>) -> Res<u64> {
    if !p.derived_from(sv, "EV::Etcd") {
        return Err("client is not of type EV::Etcd".into());
    }
    match p.object_id(sv) {
        Some((id, tag)) if super::callbacks::client_tag_ok(id, tag) => Ok(id),
        _ => Err("client is not of type EV::Etcd".into()),
    }
}

/// The request id behind a handle object (`EV::Etcd::Watch` and the like);
/// `what` names it in the croak: "watch is not of type EV::Etcd::Watch".
pub fn handle<'a>(p: &Perl<'a>, sv: Sv<'a>, class: &str, what: &str) -> Res<u64> {
    if !p.derived_from(sv, class) {
        return Err(format!("{what} is not of type {class}"));
    }
    p.object_id(sv)
        .map(|(id, _)| id)
        .ok_or_else(|| format!("{what} is not of type {class}"))
}

pub fn callback(p: &Perl, sv: Sv) -> Res<SvBox> {
    if p.is_code_ref(sv) {
        Ok(p.keep(sv))
    } else {
        Err("callback must be a code reference".into())
    }
}

/// Fixed-arity methods: `Usage: EV::Etcd::NAME(client, ...)`.
pub fn fixed(args: &[Sv], n: usize, usage: &str) -> Res<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("Usage: EV::Etcd::{usage}"))
    }
}

/// The usual start of a fixed-arity method: the count, then the invocant,
/// then the callback (always the last argument).
pub fn fixed_form(p: &Perl, a: &[Sv], n: usize, usage: &str) -> Res<(u64, SvBox)> {
    fixed(a, n, usage)?;
    let id = client(p, a[0])?;
    let cb = callback(p, a[n - 1])?;
    Ok((id, cb))
}

/// A unary call's callback and its per-call options (POD "PER-CALL
/// OPTIONS"): `timeout` replaces the client's for this call.
pub struct Reply {
    pub cb: SvBox,
    pub timeout: Option<Duration>,
    /// `endpoint`: the member to ask, with no failover (maintenance calls).
    pub endpoint: Option<String>,
}

/// The methods that take `endpoint` (POD "One member at a time").
const PER_MEMBER: &[&str] = &[
    "status",
    "defragment",
    "hash",
    "hash_kv",
    "alarm",
    "snapshot",
];

/// The callback `cb` and the per-call options read from `opts` (if it is
/// a hash reference) for method `usage` (its name is what precedes `(`).
pub fn reply<'a>(p: &Perl<'a>, cb: Sv<'a>, opts: Option<Sv<'a>>, usage: &str) -> Res<Reply> {
    let o = Opts::new(p, opts);
    let method = usage.split(['(', ' ']).next().unwrap_or(usage);
    let timeout = match o.get("timeout") {
        None => None,
        Some(v) => Some(
            seconds(number(p, v))
                .ok_or_else(|| format!("{method}: timeout must be a positive number of seconds"))?,
        ),
    };
    let endpoint = match o.get("endpoint") {
        None => None,
        Some(_) if !PER_MEMBER.contains(&method) => {
            return Err(format!(
                "{method}: endpoint is an option of {} only",
                PER_MEMBER.join(", ")
            ))
        }
        Some(v) => Some(p.text(v)),
    };
    Ok(Reply {
        cb: callback(p, cb)?,
        timeout,
        endpoint,
    })
}

/// A number given as a string is parsed here (no "isn't numeric"
/// warning for a value that is refused anyway); others are read as Perl
/// numbers.
pub(crate) fn number<'a>(p: &Perl<'a>, v: Sv<'a>) -> f64 {
    if p.is_string(v) {
        p.text(v).trim().parse().unwrap_or(f64::NAN)
    } else {
        p.nv(v)
    }
}

/// A per-call timeout: positive and finite, at most ten years (the
/// client's own bound).
fn seconds(v: f64) -> Option<Duration> {
    const MAX: f64 = 10.0 * 365.0 * 86_400.0;
    (v.is_finite() && v > 0.0).then(|| Duration::from_secs_f64(v.min(MAX)))
}

/// Fixed-arity unary methods, which also take an options hash before the
/// callback: `(client, fixed..., [\%opts,] cb)` with `n` counting the
/// client and the callback. Any other count, or an extra argument that is
/// not a hash reference, croaks with the method's usage.
pub fn request_form(p: &Perl, a: &[Sv], n: usize, usage: &str) -> Res<(u64, Reply)> {
    let opts = match a.len() {
        len if len == n => None,
        len if len == n + 1 && p.hash_ref(a[n - 1]).is_some() => Some(a[n - 1]),
        _ => return Err(format!("Usage: EV::Etcd::{usage}")),
    };
    let id = client(p, a[0])?;
    let r = reply(p, a[a.len() - 1], opts, usage)?;
    Ok((id, r))
}

/// Splits `(client, fixed..., [opts,] cb)` for optional-options methods.
pub fn optional_form<'a>(
    p: &Perl<'a>,
    a: &[Sv<'a>],
    fixed: usize,
    usage: &str,
) -> Res<(u64, Option<Sv<'a>>, Sv<'a>)> {
    let id = client(
        p,
        a.first()
            .copied()
            .ok_or_else(|| format!("Usage: $client->{usage}"))?,
    )?;
    let n = a.len() - 1;
    if n != fixed + 1 && n != fixed + 2 {
        return Err(format!("Usage: $client->{usage}"));
    }
    let cb = a[a.len() - 1];
    let opts = (n == fixed + 2).then(|| a[a.len() - 2]);
    Ok((id, opts, cb))
}

fn limited(p: &Perl, sv: Sv, max: usize, what: &str) -> Res<Vec<u8>> {
    let b = p.bytes(sv);
    if b.len() > max {
        Err(format!("{what} too large: {} bytes (max {max})", b.len()))
    } else {
        Ok(b)
    }
}

pub fn key(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    limited(p, sv, MAX_KEY, "key")
}

pub fn value(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    limited(p, sv, MAX_VALUE, "value")
}

pub fn name(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    limited(p, sv, MAX_NAME, "username")
}

pub fn password(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    limited(p, sv, MAX_PASSWORD, "password")
}

pub fn url(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    limited(p, sv, MAX_URL, "peer URL")
}

/// A user or role name as the text etcd expects: at most 256 bytes, cut at
/// the first NUL (as the reference's C strings are), invalid UTF-8 replaced.
pub fn name_text(p: &Perl, sv: Sv) -> Res<String> {
    Ok(c_text(name(p, sv)?))
}

/// A password as text, same rules as `name_text` with the 4096-byte limit.
pub fn password_text(p: &Perl, sv: Sv) -> Res<String> {
    Ok(c_text(password(p, sv)?))
}

fn c_text(mut b: Vec<u8>) -> String {
    if let Some(nul) = b.iter().position(|&c| c == 0) {
        b.truncate(nul);
    }
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A list of peer URLs: an array reference (else `peer_urls must be an
/// array reference`) of strings of at most 2048 bytes each.
pub fn url_list(p: &Perl, sv: Sv) -> Res<Vec<String>> {
    let av = p
        .array_ref(sv)
        .ok_or("peer_urls must be an array reference")?;
    (0..p.av_len(av))
        .map(|i| match p.av_get(av, i) {
            Some(v) => url(p, v).map(|b| String::from_utf8_lossy(&b).into_owned()),
            None => Ok(String::new()),
        })
        .collect()
}

/// Option readers over an optional options hash.
#[derive(Clone, Copy)]
pub struct Opts<'a, 'p> {
    pub p: &'p Perl<'a>,
    pub hv: Option<Hv<'a>>,
}

impl<'a, 'p> Opts<'a, 'p> {
    pub fn new(p: &'p Perl<'a>, sv: Option<Sv<'a>>) -> Opts<'a, 'p> {
        Opts {
            p,
            hv: sv.and_then(|s| p.hash_ref(s)),
        }
    }

    pub fn get(&self, k: &str) -> Option<Sv<'a>> {
        self.hv.and_then(|h| self.p.hv_defined(h, k))
    }

    pub fn exists(&self, k: &str) -> bool {
        self.hv.map(|h| self.p.hv_exists(h, k)).unwrap_or(false)
    }

    pub fn flag(&self, k: &str) -> bool {
        self.hv
            .and_then(|h| self.p.hv_get(h, k))
            .map(|v| self.p.truthy(v))
            .unwrap_or(false)
    }

    pub fn int(&self, k: &str) -> Option<i64> {
        self.get(k).map(|v| self.p.iv(v))
    }

    pub fn uint(&self, k: &str) -> Option<u64> {
        self.get(k).map(|v| self.p.uv(v))
    }

    pub fn text(&self, k: &str) -> Option<String> {
        self.get(k).map(|v| self.p.text(v))
    }

    pub fn key(&self, k: &str) -> Res<Option<Vec<u8>>> {
        self.get(k).map(|v| key(self.p, v)).transpose()
    }
}

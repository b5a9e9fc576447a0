//! KV methods (POD "KV METHODS"): get, put, delete, compact and the internal
//! `_txn` behind the .pm's `txn` wrapper. Decodes Perl arguments into plain
//! prost requests and submits them; croaks on bad arguments.

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::kv::prefix_range_end;
use crate::etcd::pb::etcdserverpb::{self as rpc, compare, range_request, request_op};
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Opts, Res};

/// `range_end` wins over `prefix`; a prefix of the empty key adds nothing,
/// except on a namespaced client of `id`, where it is the whole namespace
/// ("\0": every key from the namespace's start; src/etcd/namespace.rs).
pub fn range_end(o: &Opts, key: &[u8], id: u64) -> Res<Vec<u8>> {
    if let Some(end) = o.key("range_end")? {
        return Ok(end);
    }
    if o.flag("prefix") {
        if !key.is_empty() {
            return Ok(prefix_range_end(key));
        }
        if callbacks::namespaced(id) {
            return Ok(vec![0]);
        }
    }
    Ok(Vec::new())
}

/// `_prefix_end($key)`: the range end of every key that starts with the
/// bytes of `$key` (`prefix_range_end`), for get_all's pages, which keep
/// one end while their start key moves.
pub fn prefix_end<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    args::fixed(a, 1, "_prefix_end(key)")?;
    Ok(Some(p.new_bytes(&prefix_range_end(&p.bytes(a[0])))))
}

/// A range request for `key` with the options of `get` (POD "get"), for
/// `get` and a txn's `request_range`.
fn range_request(o: &Opts, key: Vec<u8>, id: u64) -> Res<rpc::RangeRequest> {
    let mut r = rpc::RangeRequest {
        range_end: range_end(o, &key, id)?,
        key,
        ..Default::default()
    };
    r.limit = o.int("limit").unwrap_or(0);
    r.revision = o.int("revision").unwrap_or(0);
    r.keys_only = o.flag("keys_only");
    r.count_only = o.flag("count_only");
    r.serializable = o.flag("serializable");
    r.sort_order = match o.text("sort_order").as_deref() {
        Some("ascend" | "ASCEND") => range_request::SortOrder::Ascend,
        Some("descend" | "DESCEND") => range_request::SortOrder::Descend,
        _ => range_request::SortOrder::None,
    } as i32;
    r.sort_target = match o.text("sort_target").as_deref() {
        Some("version" | "VERSION") => range_request::SortTarget::Version,
        Some("create" | "CREATE") => range_request::SortTarget::Create,
        Some("mod" | "MOD") => range_request::SortTarget::Mod,
        Some("value" | "VALUE") => range_request::SortTarget::Value,
        _ => range_request::SortTarget::Key,
    } as i32;
    r.min_mod_revision = o.int("min_mod_revision").unwrap_or(0);
    r.max_mod_revision = o.int("max_mod_revision").unwrap_or(0);
    r.min_create_revision = o.int("min_create_revision").unwrap_or(0);
    r.max_create_revision = o.int("max_create_revision").unwrap_or(0);
    Ok(r)
}

/// A put request with the options of `put`, for `put` and a txn's `request_put`.
fn put_request(o: &Opts, key: Vec<u8>, value: Vec<u8>) -> rpc::PutRequest {
    rpc::PutRequest {
        key,
        value,
        lease: o.int("lease").unwrap_or(0),
        prev_kv: o.flag("prev_kv"),
        ignore_value: o.flag("ignore_value"),
        ignore_lease: o.flag("ignore_lease"),
    }
}

/// A delete request with the options of `delete`, for `delete` and a txn's
/// `request_delete_range`.
fn delete_request(o: &Opts, key: Vec<u8>, id: u64) -> Res<rpc::DeleteRangeRequest> {
    Ok(rpc::DeleteRangeRequest {
        range_end: range_end(o, &key, id)?,
        key,
        prev_kv: o.flag("prev_kv"),
    })
}

pub fn get<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(p, a, 1, "get($key, [\\%opts,] $callback)")?;
    let cb = args::reply(p, cb, opts, "get($key, [\\%opts,] $callback)")?;
    let o = Opts::new(p, opts);
    let r = range_request(&o, args::key(p, a[1])?, id)?;
    callbacks::submit(p, id, Call::Range(r), cb)?;
    Ok(None)
}

pub fn put<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(p, a, 2, "put($key, $value, [\\%opts,] $callback)")?;
    let cb = args::reply(p, cb, opts, "put($key, $value, [\\%opts,] $callback)")?;
    let o = Opts::new(p, opts);
    let r = put_request(&o, args::key(p, a[1])?, args::value(p, a[2])?);
    callbacks::submit(p, id, Call::Put(r), cb)?;
    Ok(None)
}

pub fn delete<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(p, a, 1, "delete($key, [\\%opts,] $callback)")?;
    let cb = args::reply(p, cb, opts, "delete($key, [\\%opts,] $callback)")?;
    let o = Opts::new(p, opts);
    let r = delete_request(&o, args::key(p, a[1])?, id)?;
    callbacks::submit(p, id, Call::DeleteRange(r), cb)?;
    Ok(None)
}

pub fn compact<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, opts, cb) = args::optional_form(p, a, 1, "compact($revision, [\\%opts,] $callback)")?;
    let cb = args::reply(p, cb, opts, "compact($revision, [\\%opts,] $callback)")?;
    let o = Opts::new(p, opts);
    let r = rpc::CompactionRequest {
        revision: p.iv(a[1]),
        physical: o.flag("physical"),
    };
    callbacks::submit(p, id, Call::Compact(r), cb)?;
    Ok(None)
}

/// A text field of a txn entry: strings and (harmlessly) numbers.
fn field<'a>(p: &Perl<'a>, hv: crate::perl::Hv<'a>, k: &str) -> Option<Sv<'a>> {
    p.hv_defined(hv, k).filter(|v| !p.is_ref(*v))
}

fn compare_entry(p: &Perl, sv: Sv) -> Res<rpc::Compare> {
    use compare::{CompareResult as CR, CompareTarget as CT, TargetUnion as TU};
    let hv = p
        .hash_ref(sv)
        .ok_or("txn: compare entries must be hash references")?;
    let mut c = rpc::Compare::default();
    if let Some(k) = field(p, hv, "key") {
        c.key = args::key(p, k)?;
    }
    if let Some(e) = field(p, hv, "range_end") {
        c.range_end = args::key(p, e)?;
    }
    // Operands in the documented order: the last one present wins.
    let mut inferred = None;
    if let Some(v) = p.hv_defined(hv, "version") {
        c.target_union = Some(TU::Version(p.iv(v)));
        inferred = Some(CT::Version);
    }
    if let Some(v) = p.hv_defined(hv, "create_revision") {
        c.target_union = Some(TU::CreateRevision(p.iv(v)));
        inferred = Some(CT::Create);
    }
    if let Some(v) = p.hv_defined(hv, "mod_revision") {
        c.target_union = Some(TU::ModRevision(p.iv(v)));
        inferred = Some(CT::Mod);
    }
    if let Some(v) = field(p, hv, "value") {
        c.target_union = Some(TU::Value(args::value(p, v)?));
        inferred = Some(CT::Value);
    }
    if let Some(v) = p.hv_defined(hv, "lease") {
        c.target_union = Some(TU::Lease(p.iv(v)));
        inferred = Some(CT::Lease);
    }
    let target = match p.hv_defined(hv, "target").map(|v| p.text(v)).as_deref() {
        Some("version" | "VERSION") => Some(CT::Version),
        Some("create" | "CREATE") => Some(CT::Create),
        Some("mod" | "MOD") => Some(CT::Mod),
        Some("value" | "VALUE") => Some(CT::Value),
        Some("lease" | "LEASE") => Some(CT::Lease),
        _ => None,
    }
    .or(inferred)
    .unwrap_or(CT::Version);
    if c.target_union.is_none() {
        c.target_union = Some(match target {
            CT::Version => TU::Version(0),
            CT::Create => TU::CreateRevision(0),
            CT::Mod => TU::ModRevision(0),
            CT::Value => TU::Value(Vec::new()),
            CT::Lease => TU::Lease(0),
        });
    }
    c.target = target as i32;
    c.result = match p.hv_defined(hv, "result").map(|v| p.text(v)).as_deref() {
        Some("!=" | "NOT_EQUAL") => CR::NotEqual,
        Some("<" | "LESS") => CR::Less,
        Some(">" | "GREATER") => CR::Greater,
        _ => CR::Equal,
    } as i32;
    Ok(c)
}

/// How deep transactions may nest inside each other (a structure that
/// contains itself must croak, not exhaust the stack).
const MAX_TXN_DEPTH: usize = 32;

/// One operation of a txn (POD "txn"): a hash with one key naming the
/// operation, whose hash holds `key` and the options of the method of the
/// same kind; `request_txn` nests a transaction.
fn request_op(p: &Perl, id: u64, sv: Sv, depth: usize) -> Res<rpc::RequestOp> {
    use request_op::Request as R;
    let Some(hv) = p.hash_ref(sv) else {
        return Ok(rpc::RequestOp { request: None });
    };
    // The operation's own hash, as options (`key` is one of them).
    let inner = |names: [&str; 2]| {
        let present = names.iter().find_map(|n| p.hv_get(hv, n))?;
        Some(Opts {
            p,
            hv: p.hash_ref(present),
        })
    };
    let key_of = |o: &Opts| {
        o.hv.and_then(|h| field(p, h, "key"))
            .map(|k| args::key(p, k))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let request = if let Some(o) = inner(["request_range", "range"]) {
        o.hv.map(|_| Ok::<_, String>(R::RequestRange(range_request(&o, key_of(&o)?, id)?)))
            .transpose()?
    } else if let Some(o) = inner(["request_put", "put"]) {
        o.hv.map(|h| {
            let value = field(p, h, "value")
                .map(|v| args::value(p, v))
                .transpose()?
                .unwrap_or_default();
            Ok::<_, String>(R::RequestPut(put_request(&o, key_of(&o)?, value)))
        })
        .transpose()?
    } else if let Some(o) = inner(["request_delete_range", "delete"]) {
        o.hv.map(|_| Ok::<_, String>(R::RequestDeleteRange(delete_request(&o, key_of(&o)?, id)?)))
            .transpose()?
    } else if let Some(o) = inner(["request_txn", "txn"]) {
        if depth >= MAX_TXN_DEPTH {
            return Err(format!(
                "txn: transactions nested more than {MAX_TXN_DEPTH} deep"
            ));
        }
        o.hv.map(|h| Ok::<_, String>(R::RequestTxn(txn_request(p, id, h, depth + 1)?)))
            .transpose()?
    } else {
        None
    };
    Ok(rpc::RequestOp { request })
}

/// A nested transaction: `{ compare => [...], success => [...], failure => [...] }`.
fn txn_request<'a>(
    p: &Perl<'a>,
    id: u64,
    h: crate::perl::Hv<'a>,
    depth: usize,
) -> Res<rpc::TxnRequest> {
    let part = |k| p.hv_get(h, k).unwrap_or_else(|| p.undef());
    Ok(rpc::TxnRequest {
        compare: list(p, part("compare"), compare_entry)?,
        success: list(p, part("success"), |p, v| request_op(p, id, v, depth))?,
        failure: list(p, part("failure"), |p, v| request_op(p, id, v, depth))?,
    })
}

fn list<T>(p: &Perl, sv: Sv, each: impl Fn(&Perl, Sv) -> Res<T>) -> Res<Vec<T>> {
    let Some(av) = p.array_ref(sv) else {
        return Ok(Vec::new());
    };
    (0..p.av_len(av))
        .map(|i| match p.av_get(av, i) {
            Some(v) => each(p, v),
            None => each(p, p.undef()),
        })
        .collect()
}

/// `_txn($client, \@compare, \@success, \@failure, [\%opts,] $cb)`.
pub fn txn<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 5, "txn(client, compare, success, failure, callback)")?;
    let r = rpc::TxnRequest {
        compare: list(p, a[1], compare_entry)?,
        success: list(p, a[2], |p, v| request_op(p, id, v, 0))?,
        failure: list(p, a[3], |p, v| request_op(p, id, v, 0))?,
    };
    callbacks::submit(p, id, Call::Txn(r), cb)?;
    Ok(None)
}

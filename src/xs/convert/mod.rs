//! Builds the Perl response and error hashes (POD "RESPONSES" and "ERRORS") from
//! the engine's plain Rust replies. The single owner of response shapes.
//! Perl thread only (every function takes the `Perl` token).

use crate::etcd::call::Reply;
use crate::etcd::error::Error;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::etcd::pb::mvccpb;
use crate::etcd::pb::{v3electionpb as election, v3lockpb as lock};

use crate::perl::sv::Shape;

mod events;
mod lease;
mod ops;
use crate::perl::{NewSv, Perl};
pub use events::event;

static HEADER: Shape<4> = Shape(["cluster_id", "member_id", "revision", "raft_term"]);

pub fn header(p: &Perl, h: &rpc::ResponseHeader) -> NewSv {
    p.shaped(
        &HEADER,
        [
            Some(p.new_uv(h.cluster_id)),
            Some(p.new_uv(h.member_id)),
            Some(p.new_iv(h.revision)),
            Some(p.new_uv(h.raft_term)),
        ],
    )
}

static KV: Shape<6> = Shape([
    "key",
    "value",
    "create_revision",
    "mod_revision",
    "version",
    "lease",
]);

pub fn kv(p: &Perl, kv: &mvccpb::KeyValue) -> NewSv {
    p.shaped(
        &KV,
        [
            Some(p.new_bytes(&kv.key)),
            Some(p.new_bytes(&kv.value)),
            Some(p.new_iv(kv.create_revision)),
            Some(p.new_iv(kv.mod_revision)),
            Some(p.new_iv(kv.version)),
            Some(p.new_iv(kv.lease)),
        ],
    )
}

pub fn kv_list(p: &Perl, kvs: &[mvccpb::KeyValue]) -> NewSv {
    let mut av = p.new_array(kvs.len());
    for k in kvs {
        av.push(kv(p, k));
    }
    av.finish()
}

/// A response hash that starts with the `header` (when the server sent one).
pub(super) fn with_header<'p, 'a>(
    p: &'p Perl<'a>,
    h: &Option<rpc::ResponseHeader>,
) -> crate::perl::sv::HashBuilder<'p, 'a> {
    let mut hv = p.new_hash();
    if let Some(h) = header_of(p, h) {
        hv.put("header", h);
    }
    hv
}

static RANGE: Shape<4> = Shape(["header", "kvs", "more", "count"]);

/// The `header` value of a response (absent when the server sent none).
fn header_of(p: &Perl, h: &Option<rpc::ResponseHeader>) -> Option<NewSv> {
    h.as_ref().map(|h| header(p, h))
}

fn range(p: &Perl, r: &rpc::RangeResponse) -> NewSv {
    p.shaped(
        &RANGE,
        [
            header_of(p, &r.header),
            Some(kv_list(p, &r.kvs)),
            Some(p.new_iv(i64::from(r.more))),
            Some(p.new_iv(r.count)),
        ],
    )
}

static PUT: Shape<1> = Shape(["header"]);
static PUT_PREV: Shape<2> = Shape(["header", "prev_kv"]);

fn put(p: &Perl, r: &rpc::PutResponse) -> NewSv {
    let h = header_of(p, &r.header);
    match &r.prev_kv {
        None => p.shaped(&PUT, [h]),
        Some(prev) => p.shaped(&PUT_PREV, [h, Some(kv(p, prev))]),
    }
}

fn delete_range(p: &Perl, r: &rpc::DeleteRangeResponse, always_prev: bool) -> NewSv {
    let mut hv = with_header(p, &r.header);
    hv.iv("deleted", r.deleted);
    if always_prev || !r.prev_kvs.is_empty() {
        hv.put("prev_kvs", kv_list(p, &r.prev_kvs));
    }
    hv.finish()
}

fn txn(p: &Perl, r: &rpc::TxnResponse) -> NewSv {
    use rpc::response_op::Response as R;
    let mut hv = with_header(p, &r.header);
    let mut list = p.new_array(r.responses.len());
    for op in &r.responses {
        let mut one = p.new_hash();
        match &op.response {
            Some(R::ResponseRange(x)) => {
                one.put("response_range", range(p, x));
            }
            Some(R::ResponsePut(x)) => {
                one.put("response_put", put(p, x));
            }
            Some(R::ResponseDeleteRange(x)) => {
                one.put("response_delete_range", delete_range(p, x, true));
            }
            Some(R::ResponseTxn(x)) => {
                one.put("response_txn", txn(p, x));
            }
            None => {}
        }
        list.push(one.finish());
    }
    hv.bool("succeeded", r.succeeded)
        .put("responses", list.finish());
    hv.finish()
}

fn status(p: &Perl, r: &rpc::StatusResponse) -> NewSv {
    let mut hv = with_header(p, &r.header);
    if !r.version.is_empty() {
        hv.bytes("version", r.version.as_bytes());
    }
    hv.iv("db_size", r.db_size)
        .uv("leader", r.leader)
        .uv("raft_index", r.raft_index)
        .uv("raft_term", r.raft_term)
        .uv("raft_applied_index", r.raft_applied_index)
        .iv("db_size_in_use", r.db_size_in_use)
        .bool("is_learner", r.is_learner);
    if !r.errors.is_empty() {
        let mut av = p.new_array(r.errors.len());
        for e in &r.errors {
            av.push(p.new_bytes(e.as_bytes()));
        }
        hv.put("errors", av.finish());
    }
    // Sent by etcd 3.6 and later only: present when the server sends them.
    if !r.storage_version.is_empty() {
        hv.bytes("storage_version", r.storage_version.as_bytes());
    }
    if r.db_size_quota > 0 {
        hv.iv("db_size_quota", r.db_size_quota);
    }
    if let Some(d) = &r.downgrade_info {
        let mut di = p.new_hash();
        di.bool("enabled", d.enabled)
            .bytes("target_version", d.target_version.as_bytes());
        hv.put("downgrade_info", di.finish());
    }
    hv.finish()
}

/// A response message as the hash its callback receives.
pub trait ToPerl {
    fn to_perl(&self, p: &Perl) -> NewSv;
}

/// Responses that carry nothing but their header.
macro_rules! header_only {
    ($($t:ty),* $(,)?) => {
        $(impl ToPerl for $t {
            fn to_perl(&self, p: &Perl) -> NewSv {
                with_header(p, &self.header).finish()
            }
        })*
    };
}

header_only!(
    rpc::CompactionResponse,
    rpc::LeaseRevokeResponse,
    lock::UnlockResponse,
    election::ProclaimResponse,
    election::ResignResponse,
    rpc::DefragmentResponse,
    rpc::MoveLeaderResponse,
    rpc::AuthEnableResponse,
    rpc::AuthDisableResponse,
    rpc::AuthUserAddResponse,
    rpc::AuthUserDeleteResponse,
    rpc::AuthUserChangePasswordResponse,
    rpc::AuthUserGrantRoleResponse,
    rpc::AuthUserRevokeRoleResponse,
    rpc::AuthRoleAddResponse,
    rpc::AuthRoleDeleteResponse,
    rpc::AuthRoleGrantPermissionResponse,
    rpc::AuthRoleRevokePermissionResponse,
);

/// Responses whose hash a function of this module's family builds.
macro_rules! to_perl_by {
    ($($t:ty => $f:path),* $(,)?) => {
        $(impl ToPerl for $t {
            fn to_perl(&self, p: &Perl) -> NewSv {
                $f(p, self)
            }
        })*
    };
}
pub(super) use to_perl_by;

to_perl_by!(
    rpc::RangeResponse => range,
    rpc::PutResponse => put,
    rpc::TxnResponse => txn,
    rpc::StatusResponse => status,
);

impl ToPerl for rpc::DeleteRangeResponse {
    fn to_perl(&self, p: &Perl) -> NewSv {
        delete_range(p, self, false)
    }
}

/// The response dispatch, generated from the call table's rows: one arm
/// per unary RPC, then the stream messages.
macro_rules! reply_dispatch {
    ($($v:ident($req:ty => $resp:ty) = $svc:ident.$m:ident, $class:ident, $label:literal;)*) => {
        /// The response hash handed to a callback.
        pub fn reply(p: &Perl, r: &Reply) -> NewSv {
            match r {
                $(Reply::$v(x) => <$resp as ToPerl>::to_perl(x, p),)*
                Reply::Watch(x) => watch(p, x),
                Reply::SnapshotChunk(b) => p.new_bytes(b),
                Reply::Snapshot(d) => {
                    let mut hv = with_header(p, &d.header);
                    hv.uv("size", d.size);
                    if let Some(f) = &d.file {
                        hv.bytes("file", f.as_os_str().as_encoded_bytes());
                    }
                    if let Some(v) = &d.version {
                        hv.bytes("version", v.as_bytes());
                    }
                    hv.finish()
                }
                Reply::KeepAlive(x) => {
                    let mut hv = with_header(p, &x.header);
                    hv.iv("id", x.id).iv("ttl", x.ttl);
                    hv.finish()
                }
            }
        }
    };
}

crate::unary_rpc_table!(reply_dispatch);

static EVENT: Shape<2> = Shape(["type", "kv"]);
static EVENT_PREV: Shape<3> = Shape(["type", "kv", "prev_kv"]);
static WATCH: Shape<6> = Shape([
    "header",
    "watch_id",
    "created",
    "canceled",
    "compact_revision",
    "events",
]);

/// One watch message (POD "watch"); cancellations never get here.
fn watch(p: &Perl, r: &rpc::WatchResponse) -> NewSv {
    watch_with(p, r, &r.events)
}

/// `watch` of a message the caller gives up: each event's keys and
/// values are freed as soon as they are copied, so a large message is
/// never held twice in full (POD "BACKPRESSURE").
pub fn watch_owned(p: &Perl, mut r: rpc::WatchResponse) -> NewSv {
    let events = std::mem::take(&mut r.events);
    watch_with(p, &r, events)
}

fn watch_with<E: std::borrow::Borrow<mvccpb::Event>>(
    p: &Perl,
    r: &rpc::WatchResponse,
    list: impl IntoIterator<Item = E, IntoIter: ExactSizeIterator>,
) -> NewSv {
    let list = list.into_iter();
    let mut events = p.new_array(list.len());
    for e in list {
        let e = e.borrow();
        let put = e.r#type == mvccpb::event::EventType::Put as i32;
        let kind = Some(p.new_bytes(if put { b"PUT" } else { b"DELETE" }));
        let k = e.kv.as_ref().map(|k| kv(p, k));
        events.push(match &e.prev_kv {
            None => p.shaped(&EVENT, [kind, k]),
            Some(prev) => p.shaped(&EVENT_PREV, [kind, k, Some(kv(p, prev))]),
        });
    }
    p.shaped(
        &WATCH,
        [
            header_of(p, &r.header),
            Some(p.new_iv(r.watch_id)),
            Some(p.new_iv(i64::from(r.created))),
            Some(p.new_iv(0)),
            Some(p.new_iv(r.compact_revision)),
            Some(events.finish()),
        ],
    )
}

/// The five-key error hash of POD "ERRORS".
pub fn error(p: &Perl, e: &Error, label: &str) -> NewSv {
    let mut hv = p.new_hash();
    // etcd before 3.5 does not know the call at all.
    let message = if label == "downgrade" && e.code == tonic::Code::Unimplemented {
        format!(
            "downgrade needs etcd 3.5 or later (the server said: {})",
            e.message
        )
    } else {
        e.message.clone()
    };
    hv.iv("code", i64::from(e.code as i32))
        .bytes("status", e.status_name().as_bytes())
        .bytes("message", message.as_bytes())
        .bytes(
            "source",
            if e.internal {
                b"internal"
            } else {
                label.as_bytes()
            },
        )
        .bool("retryable", e.retryable());
    if let Some(rev) = e.compact_revision {
        hv.iv("compact_revision", rev);
    }
    hv.finish()
}

//! Key namespaces (the constructor's `namespace` option), following the
//! rules of etcd's Go client package `clientv3/namespace`: every key and
//! range a request names is moved under the prefix, and the prefix is taken
//! off every key a reply or a watch event carries, so a namespaced client
//! sees only its own part of the keyspace, with the prefix invisible.
//!
//! Rules of a range [key, range_end) under prefix P:
//! - a key becomes P + key; a range_end becomes P + range_end;
//! - a range_end of "\0" ("every key >= key") becomes the end of P's
//!   prefix range, so it stops at the namespace's edge;
//! - an empty key with an empty range_end is left alone, so etcd still
//!   answers "key is not provided" as it does without a namespace;
//!   an empty key with range_end "\0" covers the whole namespace.
//!
//! Election observations (src/etcd/observe.rs) prefix the name and strip
//! the leader key like `election_leader`.
//! Compaction, leases, cluster, maintenance and auth calls are not keyed
//! and pass unchanged (auth permissions name real keys on purpose). Keys of
//! a lease outside the namespace are dropped from `lease_time_to_live`.
//! Pure Rust, runtime thread.

use super::call::{Call, Reply};
use super::kv::prefix_range_end;
use super::pb::etcdserverpb as rpc;
use super::pb::mvccpb as mvcc;
use super::pb::v3electionpb as election;
use super::watch::WatchSpec;

use rpc::request_op::Request as Op;
use rpc::response_op::Response as OpReply;

/// A key prefix; the empty prefix changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: Vec<u8>,
}

impl Namespace {
    pub fn new(prefix: Vec<u8>) -> Namespace {
        Namespace { prefix }
    }

    pub fn is_empty(&self) -> bool {
        self.prefix.is_empty()
    }

    fn key(&self, key: &mut Vec<u8>) {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(key);
        *key = k;
    }

    /// Moves the range [key, end) under the prefix (see the module rules).
    fn range(&self, key: &mut Vec<u8>, end: &mut Vec<u8>) {
        if key.is_empty() && end.is_empty() {
            return;
        }
        if end.as_slice() == b"\0" {
            *end = prefix_range_end(&self.prefix);
        } else if !end.is_empty() {
            self.key(end);
        }
        self.key(key);
    }

    /// A name (election) as it goes to etcd.
    pub fn prefixed(&self, name: &[u8]) -> Vec<u8> {
        let mut n = name.to_vec();
        self.key(&mut n);
        n
    }

    /// Takes the prefix off `key`; false when the key is outside.
    fn unkey(&self, key: &mut Vec<u8>) -> bool {
        if !key.starts_with(&self.prefix) {
            return false;
        }
        key.drain(..self.prefix.len());
        true
    }

    fn unkv(&self, kv: &mut Option<mvcc::KeyValue>) {
        if let Some(kv) = kv {
            self.unkey(&mut kv.key);
        }
    }

    fn unkvs(&self, kvs: &mut [mvcc::KeyValue]) {
        for kv in kvs {
            self.unkey(&mut kv.key);
        }
    }

    fn leader(&self, l: &mut Option<election::LeaderKey>) {
        if let Some(l) = l {
            self.key(&mut l.name);
            self.key(&mut l.key);
        }
    }

    fn unleader(&self, l: &mut Option<election::LeaderKey>) {
        if let Some(l) = l {
            self.unkey(&mut l.name);
            self.unkey(&mut l.key);
        }
    }

    /// The request as it goes to etcd.
    pub fn apply(&self, mut call: Call) -> Call {
        if self.is_empty() {
            return call;
        }
        match &mut call {
            Call::Range(r) => self.range(&mut r.key, &mut r.range_end),
            Call::Put(r) => self.range(&mut r.key, &mut Vec::new()),
            Call::DeleteRange(r) => self.range(&mut r.key, &mut r.range_end),
            Call::Txn(t) => self.txn(t),
            Call::Lock(r) => self.key(&mut r.name),
            Call::Unlock(r) => self.key(&mut r.key),
            Call::Campaign(r) => self.key(&mut r.name),
            Call::Proclaim(r) => self.leader(&mut r.leader),
            Call::Leader(r) => self.key(&mut r.name),
            Call::Resign(r) => self.leader(&mut r.leader),
            // No keys in these requests.
            Call::Compact(_)
            | Call::LeaseGrant(_)
            | Call::LeaseRevoke(_)
            | Call::LeaseTimeToLive(_)
            | Call::LeaseLeases(_)
            | Call::Status(_)
            | Call::Alarm(_)
            | Call::Defragment(_)
            | Call::Hash(_)
            | Call::HashKv(_)
            | Call::MoveLeader(_)
            | Call::Downgrade(_)
            | Call::MemberList(_)
            | Call::MemberAdd(_)
            | Call::MemberRemove(_)
            | Call::MemberUpdate(_)
            | Call::MemberPromote(_)
            | Call::AuthStatus(_)
            | Call::Authenticate(_)
            | Call::AuthEnable(_)
            | Call::AuthDisable(_)
            | Call::UserAdd(_)
            | Call::UserDelete(_)
            | Call::UserChangePassword(_)
            | Call::UserGet(_)
            | Call::UserList(_)
            | Call::UserGrantRole(_)
            | Call::UserRevokeRole(_)
            | Call::RoleAdd(_)
            | Call::RoleDelete(_)
            | Call::RoleGet(_)
            | Call::RoleList(_)
            // Permissions name raw key ranges, as etcd's Go client leaves them.
            | Call::RoleGrantPermission(_)
            | Call::RoleRevokePermission(_) => {}
        }
        call
    }

    fn txn(&self, t: &mut rpc::TxnRequest) {
        for c in &mut t.compare {
            self.range(&mut c.key, &mut c.range_end);
        }
        for op in t.success.iter_mut().chain(t.failure.iter_mut()) {
            match &mut op.request {
                Some(Op::RequestRange(r)) => self.range(&mut r.key, &mut r.range_end),
                Some(Op::RequestPut(r)) => self.range(&mut r.key, &mut Vec::new()),
                Some(Op::RequestDeleteRange(r)) => self.range(&mut r.key, &mut r.range_end),
                Some(Op::RequestTxn(t)) => self.txn(t),
                None => {}
            }
        }
    }

    /// The reply as the caller sees it.
    pub fn strip(&self, reply: &mut Reply) {
        if self.is_empty() {
            return;
        }
        match reply {
            Reply::Range(r) => self.unkvs(&mut r.kvs),
            Reply::Put(r) => self.unkv(&mut r.prev_kv),
            Reply::DeleteRange(r) => self.unkvs(&mut r.prev_kvs),
            Reply::Txn(t) => self.untxn(t),
            Reply::Watch(w) => self.events(&mut w.events),
            Reply::LeaseTimeToLive(r) => r.keys.retain_mut(|k| self.unkey(k)),
            Reply::Lock(r) => {
                self.unkey(&mut r.key);
            }
            Reply::Campaign(r) => self.unleader(&mut r.leader),
            Reply::Leader(r) => self.unkv(&mut r.kv),
            // No keys in these replies.
            Reply::Compact(_)
            | Reply::Status(_)
            | Reply::KeepAlive(_)
            | Reply::SnapshotChunk(_)
            | Reply::Snapshot(_)
            | Reply::LeaseGrant(_)
            | Reply::LeaseRevoke(_)
            | Reply::LeaseLeases(_)
            | Reply::Unlock(_)
            | Reply::Proclaim(_)
            | Reply::Resign(_)
            | Reply::MemberList(_)
            | Reply::MemberAdd(_)
            | Reply::MemberRemove(_)
            | Reply::MemberUpdate(_)
            | Reply::MemberPromote(_)
            | Reply::Alarm(_)
            | Reply::Defragment(_)
            | Reply::Hash(_)
            | Reply::HashKv(_)
            | Reply::MoveLeader(_)
            | Reply::Downgrade(_)
            | Reply::AuthStatus(_)
            | Reply::Authenticate(_)
            | Reply::AuthEnable(_)
            | Reply::AuthDisable(_)
            | Reply::UserAdd(_)
            | Reply::UserDelete(_)
            | Reply::UserChangePassword(_)
            | Reply::UserGet(_)
            | Reply::UserList(_)
            | Reply::UserGrantRole(_)
            | Reply::UserRevokeRole(_)
            | Reply::RoleAdd(_)
            | Reply::RoleDelete(_)
            | Reply::RoleGet(_)
            | Reply::RoleList(_)
            | Reply::RoleGrantPermission(_)
            | Reply::RoleRevokePermission(_) => {}
        }
    }

    fn untxn(&self, t: &mut rpc::TxnResponse) {
        for op in &mut t.responses {
            match &mut op.response {
                Some(OpReply::ResponseRange(r)) => self.unkvs(&mut r.kvs),
                Some(OpReply::ResponsePut(r)) => self.unkv(&mut r.prev_kv),
                Some(OpReply::ResponseDeleteRange(r)) => self.unkvs(&mut r.prev_kvs),
                Some(OpReply::ResponseTxn(t)) => self.untxn(t),
                None => {}
            }
        }
    }

    fn events(&self, events: &mut [mvcc::Event]) {
        for e in events {
            self.unkv(&mut e.kv);
            self.unkv(&mut e.prev_kv);
        }
    }

    /// A watch as it is created on etcd.
    pub fn watch(&self, mut spec: WatchSpec) -> WatchSpec {
        if !self.is_empty() {
            self.range(&mut spec.key, &mut spec.range_end);
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::new(b"/app/".to_vec())
    }

    fn range(key: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let call = ns().apply(Call::Range(rpc::RangeRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            ..Default::default()
        }));
        match call {
            Call::Range(r) => (r.key, r.range_end),
            _ => unreachable!(),
        }
    }

    fn kv(key: &[u8]) -> mvcc::KeyValue {
        mvcc::KeyValue {
            key: key.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(range(b"a", b""), (b"/app/a".to_vec(), b"".to_vec()));
        assert_eq!(range(b"a", b"b"), (b"/app/a".to_vec(), b"/app/b".to_vec()));
        // "every key >= a" stops at the namespace's edge
        assert_eq!(range(b"a", b"\0"), (b"/app/a".to_vec(), b"/app0".to_vec()));
        // the empty key with "\0": the whole namespace
        assert_eq!(range(b"", b"\0"), (b"/app/".to_vec(), b"/app0".to_vec()));
        // the empty key alone stays empty: etcd says "key is not provided"
        assert_eq!(range(b"", b""), (b"".to_vec(), b"".to_vec()));
        let all_ff = Namespace::new(vec![0xff]);
        let Call::Range(r) = all_ff.apply(Call::Range(rpc::RangeRequest {
            key: b"k".to_vec(),
            range_end: b"\0".to_vec(),
            ..Default::default()
        })) else {
            unreachable!()
        };
        assert_eq!((r.key, r.range_end), (b"\xffk".to_vec(), b"\0".to_vec()));
    }

    #[test]
    fn empty_namespace_changes_nothing() {
        let n = Namespace::default();
        let Call::Range(r) = n.apply(Call::Range(rpc::RangeRequest {
            key: b"a".to_vec(),
            range_end: b"\0".to_vec(),
            ..Default::default()
        })) else {
            unreachable!()
        };
        assert_eq!((r.key, r.range_end), (b"a".to_vec(), b"\0".to_vec()));
        let mut reply = Reply::Range(rpc::RangeResponse {
            kvs: vec![kv(b"/app/a")],
            ..Default::default()
        });
        n.strip(&mut reply);
        let Reply::Range(r) = reply else {
            unreachable!()
        };
        assert_eq!(r.kvs[0].key, b"/app/a");
    }

    #[test]
    fn txn_compares_ops_and_replies() {
        let op = |r| rpc::RequestOp { request: Some(r) };
        let call = ns().apply(Call::Txn(rpc::TxnRequest {
            compare: vec![rpc::Compare {
                key: b"c".to_vec(),
                range_end: b"\0".to_vec(),
                ..Default::default()
            }],
            success: vec![
                op(Op::RequestPut(rpc::PutRequest {
                    key: b"p".to_vec(),
                    ..Default::default()
                })),
                op(Op::RequestTxn(rpc::TxnRequest {
                    failure: vec![op(Op::RequestDeleteRange(rpc::DeleteRangeRequest {
                        key: b"d".to_vec(),
                        range_end: b"e".to_vec(),
                        ..Default::default()
                    }))],
                    ..Default::default()
                })),
            ],
            failure: vec![op(Op::RequestRange(rpc::RangeRequest {
                key: b"r".to_vec(),
                ..Default::default()
            }))],
        }));
        let Call::Txn(t) = call else { unreachable!() };
        assert_eq!(t.compare[0].key, b"/app/c");
        assert_eq!(t.compare[0].range_end, b"/app0");
        let Some(Op::RequestPut(p)) = &t.success[0].request else {
            unreachable!()
        };
        assert_eq!(p.key, b"/app/p");
        let Some(Op::RequestTxn(inner)) = &t.success[1].request else {
            unreachable!()
        };
        let Some(Op::RequestDeleteRange(d)) = &inner.failure[0].request else {
            unreachable!()
        };
        assert_eq!(
            (&d.key[..], &d.range_end[..]),
            (&b"/app/d"[..], &b"/app/e"[..])
        );
        let Some(Op::RequestRange(r)) = &t.failure[0].request else {
            unreachable!()
        };
        assert_eq!(r.key, b"/app/r");

        let rop = |r| rpc::ResponseOp { response: Some(r) };
        let mut reply = Reply::Txn(rpc::TxnResponse {
            responses: vec![
                rop(OpReply::ResponseRange(rpc::RangeResponse {
                    kvs: vec![kv(b"/app/a"), kv(b"/app/b")],
                    ..Default::default()
                })),
                rop(OpReply::ResponsePut(rpc::PutResponse {
                    prev_kv: Some(kv(b"/app/p")),
                    ..Default::default()
                })),
                rop(OpReply::ResponseTxn(rpc::TxnResponse {
                    responses: vec![rop(OpReply::ResponseDeleteRange(
                        rpc::DeleteRangeResponse {
                            prev_kvs: vec![kv(b"/app/d")],
                            ..Default::default()
                        },
                    ))],
                    ..Default::default()
                })),
            ],
            ..Default::default()
        });
        ns().strip(&mut reply);
        let Reply::Txn(t) = reply else { unreachable!() };
        let keys: Vec<Vec<u8>> = t
            .responses
            .iter()
            .flat_map(|r| match &r.response {
                Some(OpReply::ResponseRange(r)) => r.kvs.iter().map(|k| k.key.clone()).collect(),
                Some(OpReply::ResponsePut(r)) => vec![r.prev_kv.clone().unwrap().key],
                Some(OpReply::ResponseTxn(t)) => match &t.responses[0].response {
                    Some(OpReply::ResponseDeleteRange(d)) => vec![d.prev_kvs[0].key.clone()],
                    _ => vec![],
                },
                _ => vec![],
            })
            .collect();
        assert_eq!(
            keys,
            vec![b"a".to_vec(), b"b".to_vec(), b"p".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn locks_elections_leases_and_watches() {
        let Call::Lock(l) = ns().apply(Call::Lock(Default::default())) else {
            unreachable!()
        };
        assert_eq!(l.name, b"/app/");
        let leader = || {
            Some(election::LeaderKey {
                name: b"e".to_vec(),
                key: b"e/1".to_vec(),
                ..Default::default()
            })
        };
        let Call::Proclaim(p) = ns().apply(Call::Proclaim(election::ProclaimRequest {
            leader: leader(),
            value: b"v".to_vec(),
        })) else {
            unreachable!()
        };
        let l = p.leader.unwrap();
        assert_eq!(
            (l.name, l.key, p.value),
            (b"/app/e".to_vec(), b"/app/e/1".to_vec(), b"v".to_vec())
        );

        let mut r = Reply::Campaign(election::CampaignResponse {
            leader: Some(election::LeaderKey {
                name: b"/app/e".to_vec(),
                key: b"/app/e/1".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        });
        ns().strip(&mut r);
        let Reply::Campaign(c) = r else {
            unreachable!()
        };
        assert_eq!(c.leader, leader());

        let mut r = Reply::LeaseTimeToLive(rpc::LeaseTimeToLiveResponse {
            keys: vec![b"/app/a".to_vec(), b"/other".to_vec()],
            ..Default::default()
        });
        ns().strip(&mut r);
        let Reply::LeaseTimeToLive(t) = r else {
            unreachable!()
        };
        assert_eq!(t.keys, vec![b"a".to_vec()], "keys outside are not shown");

        let spec = ns().watch(WatchSpec {
            key: b"w".to_vec(),
            range_end: b"\0".to_vec(),
            ..Default::default()
        });
        assert_eq!(
            (spec.key, spec.range_end),
            (b"/app/w".to_vec(), b"/app0".to_vec())
        );
        let mut r = Reply::Watch(rpc::WatchResponse {
            events: vec![mvcc::Event {
                kv: Some(kv(b"/app/w1")),
                prev_kv: Some(kv(b"/app/w1")),
                ..Default::default()
            }],
            ..Default::default()
        });
        ns().strip(&mut r);
        let Reply::Watch(w) = r else { unreachable!() };
        assert_eq!(w.events[0].kv.as_ref().unwrap().key, b"w1");
        assert_eq!(w.events[0].prev_kv.as_ref().unwrap().key, b"w1");
    }
}

//! One unary etcd RPC as plain data (`Call`), its answer (`Reply`), the
//! retry class of each, and how each is sent over a tonic channel. The
//! request and reply are the prost messages themselves: owned data that
//! crosses from the Perl thread to the runtime thread and back.

use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::error::Error;
use super::pb::etcdserverpb as rpc;
use super::pb::{v3electionpb as election, v3lockpb as lock};
use super::retry::RetryClass;

use election::election_client::ElectionClient;
use lock::lock_client::LockClient;
use rpc::auth_client::AuthClient;
use rpc::cluster_client::ClusterClient;
use rpc::kv_client::KvClient;
use rpc::lease_client::LeaseClient;
use rpc::maintenance_client::MaintenanceClient;

/// The table of unary RPCs: one row each, `Variant(Request => Response) =
/// ServiceClient.method, retry class, error source;`. It generates `Call`,
/// the unary part of `Reply`, `Call::exec`, the row's retry class and the
/// error source; every `match` over `Call` or `Reply` elsewhere lists the
/// variants without a wildcard, so a new row does not compile until each
/// place (namespace, response shape) decides what it does with it.
macro_rules! unary_rpcs {
    ($($v:ident($req:ty => $resp:ty) = $svc:ident.$m:ident, $class:ident, $label:literal;)*) => {
        /// A unary request.
        #[derive(Debug, Clone)]
        pub enum Call {
            $($v($req),)*
        }

        /// The answer to a `Call`, variant for variant, and the messages of
        /// the streams.
        #[derive(Debug, Clone)]
        pub enum Reply {
            $($v($resp),)*
            /// One message of a watch (never the answer to a `Call`).
            Watch(rpc::WatchResponse),
            /// One keepalive answer (lease_keepalive, managed keepalives).
            KeepAlive(rpc::LeaseKeepAliveResponse),
            /// A piece of a snapshot streamed to the caller.
            SnapshotChunk(Vec<u8>),
            /// The end of a snapshot.
            Snapshot(Box<super::snapshot::Finished>),
        }

        impl Call {
            /// The retry class of the call's row.
            fn row_class(&self) -> RetryClass {
                match self {
                    $(Call::$v(_) => $class,)*
                }
            }

            /// The `source` its errors report.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Call::$v(_) => $label,)*
                }
            }

            /// Whether the member must have a leader to take it (the
            /// row's service, `Service::NEEDS_LEADER`).
            pub fn needs_leader(&self) -> bool {
                match self {
                    $(Call::$v(_) => <$svc<Channel> as Service>::NEEDS_LEADER,)*
                }
            }

            /// Sends the call once over `ch`.
            pub async fn exec(self, ch: Channel, o: &CallOpts) -> Result<Reply, Status> {
                let max = if o.max_recv == 0 {
                    usize::MAX
                } else {
                    o.max_recv
                };
                let leader = self.needs_leader();
                match self {
                    $(Call::$v(r) => $svc::new(ch)
                        .max_decoding_message_size(max)
                        .max_encoding_message_size(usize::MAX)
                        .$m(o.request_for(r, leader))
                        .await
                        .map(|r| Reply::$v(r.into_inner())),)*
                }
            }
        }
    };
}

/// An etcd service, by its gRPC client: whether its calls need a member
/// with a leader. With `require_leader` (POD "PARTITIONS AND LEADER LOSS")
/// they carry etcd's `hasleader` metadata, so a member cut off from its
/// leader refuses them at once ("etcdserver: no leader", before anything
/// enters raft) instead of holding them; the maintenance and cluster
/// services answer for the member itself and carry none.
pub trait Service {
    const NEEDS_LEADER: bool;
}

/// Each service's `NEEDS_LEADER`.
macro_rules! services {
    ($($svc:ident: $needs:literal,)*) => {
        $(impl<T> Service for $svc<T> {
            const NEEDS_LEADER: bool = $needs;
        })*
    };
}

services! {
    KvClient: true,
    LeaseClient: true,
    LockClient: true,
    ElectionClient: true,
    AuthClient: true,
    MaintenanceClient: false,
    ClusterClient: false,
}

/// Retry classes of the rows: R (a read, repeatable), W (a write, at most once).
use RetryClass::{AtMostOnce as W, Idempotent as R};

/// The rows of the table, handed to the macro `$then` (`unary_rpcs` here;
/// the Perl side generates its response dispatch from the same rows).
/// Paths in the rows (`rpc::`, `lock::`, `election::`) resolve where
/// `$then` expands.
#[macro_export]
macro_rules! unary_rpc_table {
    ($then:ident) => {
        $then! {
            Range(rpc::RangeRequest => rpc::RangeResponse) = KvClient.range, R, "range";
            Put(rpc::PutRequest => rpc::PutResponse) = KvClient.put, W, "put";
            DeleteRange(rpc::DeleteRangeRequest => rpc::DeleteRangeResponse) = KvClient.delete_range, W, "delete";
            Txn(rpc::TxnRequest => rpc::TxnResponse) = KvClient.txn, W, "txn";
            Compact(rpc::CompactionRequest => rpc::CompactionResponse) = KvClient.compact, W, "compact";
            LeaseGrant(rpc::LeaseGrantRequest => rpc::LeaseGrantResponse) = LeaseClient.lease_grant, W, "lease_grant";
            LeaseRevoke(rpc::LeaseRevokeRequest => rpc::LeaseRevokeResponse) = LeaseClient.lease_revoke, W, "lease_revoke";
            LeaseTimeToLive(rpc::LeaseTimeToLiveRequest => rpc::LeaseTimeToLiveResponse) = LeaseClient.lease_time_to_live, R, "lease_ttl";
            LeaseLeases(rpc::LeaseLeasesRequest => rpc::LeaseLeasesResponse) = LeaseClient.lease_leases, R, "lease_leases";
            Lock(lock::LockRequest => lock::LockResponse) = LockClient.lock, W, "lock";
            Unlock(lock::UnlockRequest => lock::UnlockResponse) = LockClient.unlock, W, "unlock";
            Campaign(election::CampaignRequest => election::CampaignResponse) = ElectionClient.campaign, W, "campaign";
            Proclaim(election::ProclaimRequest => election::ProclaimResponse) = ElectionClient.proclaim, W, "proclaim";
            Leader(election::LeaderRequest => election::LeaderResponse) = ElectionClient.leader, R, "leader";
            Resign(election::ResignRequest => election::ResignResponse) = ElectionClient.resign, W, "resign";
            Status(rpc::StatusRequest => rpc::StatusResponse) = MaintenanceClient.status, R, "status";
            Alarm(rpc::AlarmRequest => rpc::AlarmResponse) = MaintenanceClient.alarm, W, "alarm";
            Defragment(rpc::DefragmentRequest => rpc::DefragmentResponse) = MaintenanceClient.defragment, W, "defragment";
            Hash(rpc::HashRequest => rpc::HashResponse) = MaintenanceClient.hash, R, "hash";
            HashKv(rpc::HashKvRequest => rpc::HashKvResponse) = MaintenanceClient.hash_kv, R, "hash_kv";
            MoveLeader(rpc::MoveLeaderRequest => rpc::MoveLeaderResponse) = MaintenanceClient.move_leader, W, "move_leader";
            Downgrade(rpc::DowngradeRequest => rpc::DowngradeResponse) = MaintenanceClient.downgrade, W, "downgrade";
            MemberList(rpc::MemberListRequest => rpc::MemberListResponse) = ClusterClient.member_list, R, "member_list";
            MemberAdd(rpc::MemberAddRequest => rpc::MemberAddResponse) = ClusterClient.member_add, W, "member_add";
            MemberRemove(rpc::MemberRemoveRequest => rpc::MemberRemoveResponse) = ClusterClient.member_remove, W, "member_remove";
            MemberUpdate(rpc::MemberUpdateRequest => rpc::MemberUpdateResponse) = ClusterClient.member_update, W, "member_update";
            MemberPromote(rpc::MemberPromoteRequest => rpc::MemberPromoteResponse) = ClusterClient.member_promote, W, "member_promote";
            AuthStatus(rpc::AuthStatusRequest => rpc::AuthStatusResponse) = AuthClient.auth_status, R, "auth_status";
            Authenticate(rpc::AuthenticateRequest => rpc::AuthenticateResponse) = AuthClient.authenticate, W, "authenticate";
            AuthEnable(rpc::AuthEnableRequest => rpc::AuthEnableResponse) = AuthClient.auth_enable, W, "rpc";
            AuthDisable(rpc::AuthDisableRequest => rpc::AuthDisableResponse) = AuthClient.auth_disable, W, "rpc";
            UserAdd(rpc::AuthUserAddRequest => rpc::AuthUserAddResponse) = AuthClient.user_add, W, "rpc";
            UserDelete(rpc::AuthUserDeleteRequest => rpc::AuthUserDeleteResponse) = AuthClient.user_delete, W, "rpc";
            UserChangePassword(rpc::AuthUserChangePasswordRequest => rpc::AuthUserChangePasswordResponse) = AuthClient.user_change_password, W, "rpc";
            UserGet(rpc::AuthUserGetRequest => rpc::AuthUserGetResponse) = AuthClient.user_get, R, "rpc";
            UserList(rpc::AuthUserListRequest => rpc::AuthUserListResponse) = AuthClient.user_list, R, "rpc";
            UserGrantRole(rpc::AuthUserGrantRoleRequest => rpc::AuthUserGrantRoleResponse) = AuthClient.user_grant_role, W, "rpc";
            UserRevokeRole(rpc::AuthUserRevokeRoleRequest => rpc::AuthUserRevokeRoleResponse) = AuthClient.user_revoke_role, W, "rpc";
            RoleAdd(rpc::AuthRoleAddRequest => rpc::AuthRoleAddResponse) = AuthClient.role_add, W, "rpc";
            RoleDelete(rpc::AuthRoleDeleteRequest => rpc::AuthRoleDeleteResponse) = AuthClient.role_delete, W, "rpc";
            RoleGet(rpc::AuthRoleGetRequest => rpc::AuthRoleGetResponse) = AuthClient.role_get, R, "rpc";
            RoleList(rpc::AuthRoleListRequest => rpc::AuthRoleListResponse) = AuthClient.role_list, R, "rpc";
            RoleGrantPermission(rpc::AuthRoleGrantPermissionRequest => rpc::AuthRoleGrantPermissionResponse) = AuthClient.role_grant_permission, W, "rpc";
            RoleRevokePermission(rpc::AuthRoleRevokePermissionRequest => rpc::AuthRoleRevokePermissionResponse) = AuthClient.role_revoke_permission, W, "rpc";
        }
    };
}

unary_rpc_table!(unary_rpcs);

impl Reply {
    /// A reply the server sent successfully but that still reports a
    /// failure: a lease grant with a non-empty `error` field (POD "lease_grant").
    pub fn checked(self) -> Result<Reply, Error> {
        match self {
            Reply::LeaseGrant(r) if !r.error.is_empty() => Err(Error::internal(r.error)),
            r => Ok(r),
        }
    }

    /// The call that gives back what a granted lock or campaign holds
    /// (unlock its key, resign its leadership); `None` for any other reply.
    pub fn release(self) -> Option<Call> {
        match self {
            Reply::Lock(r) => Some(Call::Unlock(lock::UnlockRequest { key: r.key })),
            Reply::Campaign(r) => Some(Call::Resign(election::ResignRequest { leader: r.leader })),
            _ => None,
        }
    }
}

/// Per-call transport settings.
#[derive(Clone, Default)]
pub struct CallOpts {
    pub token: Option<AsciiMetadataValue>,
    pub max_recv: usize,
    /// Calls and streams that need a leader say so (`Service`).
    pub require_leader: bool,
}

/// etcd's metadata for "refuse this unless you have a leader"
/// (`rpctypes.MetadataRequireLeaderKey` / `MetadataHasLeader`): the server
/// checks it before a unary call or a stream starts, and cancels such a
/// stream with "etcdserver: no leader" once the member has had no leader
/// for three election timeouts.
const REQUIRE_LEADER: (&str, &str) = ("hasleader", "true");

impl CallOpts {
    /// A request of a leader-bound service (the streams: watch, keepalive,
    /// observe) carrying the token (if any) as `authorization` metadata.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        self.request_for(msg, true)
    }

    /// A request carrying the token, and the require-leader metadata when
    /// `needs_leader` and the client requires a leader.
    pub fn request_for<T>(&self, msg: T, needs_leader: bool) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        if needs_leader && self.require_leader {
            let (k, v) = REQUIRE_LEADER;
            r.metadata_mut()
                .insert(k, AsciiMetadataValue::from_static(v));
        }
        r
    }
}

impl Call {
    /// Retry class (POD "RETRIES AND FAILOVER"): reads are repeatable,
    /// writes at-most-once; an alarm GET and a txn of reads only are reads.
    pub fn class(&self) -> RetryClass {
        match self {
            Call::Alarm(a) if a.action == rpc::alarm_request::AlarmAction::Get as i32 => {
                RetryClass::Idempotent
            }
            Call::Downgrade(d)
                if d.action == rpc::downgrade_request::DowngradeAction::Validate as i32 =>
            {
                RetryClass::Idempotent
            }
            Call::Txn(t) if t.success.iter().chain(&t.failure).all(is_read_op) => {
                RetryClass::Idempotent
            }
            _ => self.row_class(),
        }
    }

    /// True for calls the server may rightly hold until their deadline
    /// (a lock or campaign waiting its turn): their timeout says nothing
    /// about the member.
    pub fn may_block(&self) -> bool {
        matches!(self, Call::Lock(_) | Call::Campaign(_))
    }

    /// The key a waiting lock or campaign holds on the server: etcd's lock
    /// and election services put `name/` and the lease id in hex (Go's
    /// `concurrency` package, which they run). Deleting it withdraws the
    /// request, and releases what the server granted.
    pub fn held_key(&self) -> Option<Vec<u8>> {
        let (name, lease) = match self {
            Call::Lock(r) => (&r.name, r.lease),
            Call::Campaign(r) => (&r.name, r.lease),
            _ => return None,
        };
        let mut key = name.clone();
        key.extend_from_slice(format!("/{lease:x}").as_bytes());
        Some(key)
    }
}

/// A range, or a nested txn of reads only.
fn is_read_op(op: &rpc::RequestOp) -> bool {
    use rpc::request_op::Request;
    match &op.request {
        Some(Request::RequestRange(_)) => true,
        Some(Request::RequestTxn(t)) => t.success.iter().chain(&t.failure).all(is_read_op),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        use rpc::request_op::Request;
        let op = |r| rpc::RequestOp { request: Some(r) };
        let read = op(Request::RequestRange(Default::default()));
        let write = op(Request::RequestPut(Default::default()));
        let txn = |s: Vec<rpc::RequestOp>, f: Vec<rpc::RequestOp>| {
            Call::Txn(rpc::TxnRequest {
                success: s,
                failure: f,
                ..Default::default()
            })
        };
        let nested = |s: Vec<rpc::RequestOp>, f: Vec<rpc::RequestOp>| {
            op(Request::RequestTxn(rpc::TxnRequest {
                success: s,
                failure: f,
                ..Default::default()
            }))
        };
        use rpc::alarm_request::AlarmAction;
        let alarm = |a: AlarmAction| {
            Call::Alarm(rpc::AlarmRequest {
                action: a as i32,
                ..Default::default()
            })
        };
        let cases = [
            (Call::Range(Default::default()), RetryClass::Idempotent),
            (Call::Status(Default::default()), RetryClass::Idempotent),
            (Call::Put(Default::default()), RetryClass::AtMostOnce),
            (
                Call::DeleteRange(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (Call::Compact(Default::default()), RetryClass::AtMostOnce),
            (
                Call::LeaseTimeToLive(Default::default()),
                RetryClass::Idempotent,
            ),
            (
                Call::LeaseLeases(Default::default()),
                RetryClass::Idempotent,
            ),
            (Call::Leader(Default::default()), RetryClass::Idempotent),
            (Call::LeaseGrant(Default::default()), RetryClass::AtMostOnce),
            (
                Call::LeaseRevoke(Default::default()),
                RetryClass::AtMostOnce,
            ),
            // a lock or campaign that may have reached the server is never replayed
            (Call::Lock(Default::default()), RetryClass::AtMostOnce),
            (Call::Unlock(Default::default()), RetryClass::AtMostOnce),
            (Call::Campaign(Default::default()), RetryClass::AtMostOnce),
            (Call::Proclaim(Default::default()), RetryClass::AtMostOnce),
            (Call::Resign(Default::default()), RetryClass::AtMostOnce),
            (
                txn(vec![read.clone()], vec![read.clone()]),
                RetryClass::Idempotent,
            ),
            // a nested txn counts by its own operations
            (
                txn(vec![nested(vec![read.clone()], vec![read.clone()])], vec![]),
                RetryClass::Idempotent,
            ),
            (
                txn(
                    vec![nested(vec![read.clone()], vec![write.clone()])],
                    vec![],
                ),
                RetryClass::AtMostOnce,
            ),
            (txn(vec![read], vec![write]), RetryClass::AtMostOnce),
            (Call::MemberList(Default::default()), RetryClass::Idempotent),
            (Call::MemberAdd(Default::default()), RetryClass::AtMostOnce),
            (
                Call::MemberRemove(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (
                Call::MemberUpdate(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (
                Call::MemberPromote(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (alarm(AlarmAction::Get), RetryClass::Idempotent),
            (alarm(AlarmAction::Activate), RetryClass::AtMostOnce),
            (alarm(AlarmAction::Deactivate), RetryClass::AtMostOnce),
            (Call::Defragment(Default::default()), RetryClass::AtMostOnce),
            (Call::HashKv(Default::default()), RetryClass::Idempotent),
            (Call::Hash(Default::default()), RetryClass::Idempotent),
            (Call::MoveLeader(Default::default()), RetryClass::AtMostOnce),
            (Call::Downgrade(Default::default()), RetryClass::Idempotent),
            (Call::AuthStatus(Default::default()), RetryClass::Idempotent),
            (
                Call::Authenticate(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (Call::AuthEnable(Default::default()), RetryClass::AtMostOnce),
            (
                Call::AuthDisable(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (Call::UserAdd(Default::default()), RetryClass::AtMostOnce),
            (Call::UserDelete(Default::default()), RetryClass::AtMostOnce),
            (
                Call::UserChangePassword(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (Call::UserGet(Default::default()), RetryClass::Idempotent),
            (Call::UserList(Default::default()), RetryClass::Idempotent),
            (
                Call::UserGrantRole(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (
                Call::UserRevokeRole(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (Call::RoleAdd(Default::default()), RetryClass::AtMostOnce),
            (Call::RoleDelete(Default::default()), RetryClass::AtMostOnce),
            (Call::RoleGet(Default::default()), RetryClass::Idempotent),
            (Call::RoleList(Default::default()), RetryClass::Idempotent),
            (
                Call::RoleGrantPermission(Default::default()),
                RetryClass::AtMostOnce,
            ),
            (
                Call::RoleRevokePermission(Default::default()),
                RetryClass::AtMostOnce,
            ),
        ];
        for (call, want) in cases {
            assert_eq!(call.class(), want, "{call:?}");
        }
    }

    #[test]
    fn lease_grant_error_field_is_an_internal_error() {
        let bad = Reply::LeaseGrant(rpc::LeaseGrantResponse {
            error: "lease already exists".into(),
            ..Default::default()
        });
        assert_eq!(
            bad.checked().unwrap_err(),
            Error::internal("lease already exists")
        );
        let good = Reply::LeaseGrant(rpc::LeaseGrantResponse {
            id: 7,
            ttl: 5,
            ..Default::default()
        });
        assert!(matches!(good.checked(), Ok(Reply::LeaseGrant(r)) if r.id == 7));
    }

    #[test]
    fn release_gives_back_a_grant() {
        let lock = Reply::Lock(lock::LockResponse {
            key: b"name/1f".to_vec(),
            ..Default::default()
        });
        assert!(matches!(lock.release(), Some(Call::Unlock(r)) if r.key == b"name/1f"));
        let leader = election::LeaderKey {
            name: b"e".to_vec(),
            key: b"e/2a".to_vec(),
            rev: 5,
            lease: 42,
        };
        let won = Reply::Campaign(election::CampaignResponse {
            leader: Some(leader.clone()),
            ..Default::default()
        });
        assert!(matches!(won.release(), Some(Call::Resign(r)) if r.leader == Some(leader)));
        assert!(Reply::Put(Default::default()).release().is_none());
        assert!(Reply::Unlock(Default::default()).release().is_none());
    }
}

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

/// A unary request.
#[derive(Debug, Clone)]
pub enum Call {
    Range(rpc::RangeRequest),
    Put(rpc::PutRequest),
    DeleteRange(rpc::DeleteRangeRequest),
    Txn(rpc::TxnRequest),
    Compact(rpc::CompactionRequest),
    Status(rpc::StatusRequest),
    LeaseGrant(rpc::LeaseGrantRequest),
    LeaseRevoke(rpc::LeaseRevokeRequest),
    LeaseTimeToLive(rpc::LeaseTimeToLiveRequest),
    LeaseLeases(rpc::LeaseLeasesRequest),
    Lock(lock::LockRequest),
    Unlock(lock::UnlockRequest),
    Campaign(election::CampaignRequest),
    Proclaim(election::ProclaimRequest),
    Leader(election::LeaderRequest),
    Resign(election::ResignRequest),
    MemberList(rpc::MemberListRequest),
    MemberAdd(rpc::MemberAddRequest),
    MemberRemove(rpc::MemberRemoveRequest),
    MemberUpdate(rpc::MemberUpdateRequest),
    MemberPromote(rpc::MemberPromoteRequest),
    Alarm(rpc::AlarmRequest),
    Defragment(rpc::DefragmentRequest),
    HashKv(rpc::HashKvRequest),
    MoveLeader(rpc::MoveLeaderRequest),
    AuthStatus(rpc::AuthStatusRequest),
    Authenticate(rpc::AuthenticateRequest),
    AuthEnable(rpc::AuthEnableRequest),
    AuthDisable(rpc::AuthDisableRequest),
    UserAdd(rpc::AuthUserAddRequest),
    UserDelete(rpc::AuthUserDeleteRequest),
    UserChangePassword(rpc::AuthUserChangePasswordRequest),
    UserGet(rpc::AuthUserGetRequest),
    UserList(rpc::AuthUserListRequest),
    UserGrantRole(rpc::AuthUserGrantRoleRequest),
    UserRevokeRole(rpc::AuthUserRevokeRoleRequest),
    RoleAdd(rpc::AuthRoleAddRequest),
    RoleDelete(rpc::AuthRoleDeleteRequest),
    RoleGet(rpc::AuthRoleGetRequest),
    RoleList(rpc::AuthRoleListRequest),
    RoleGrantPermission(rpc::AuthRoleGrantPermissionRequest),
    RoleRevokePermission(rpc::AuthRoleRevokePermissionRequest),
}

/// The answer to a `Call`, variant for variant.
#[derive(Debug, Clone)]
pub enum Reply {
    Range(rpc::RangeResponse),
    Put(rpc::PutResponse),
    DeleteRange(rpc::DeleteRangeResponse),
    Txn(rpc::TxnResponse),
    Compact(rpc::CompactionResponse),
    Status(rpc::StatusResponse),
    /// One message of a watch (never the answer to a `Call`).
    Watch(rpc::WatchResponse),
    /// One keepalive answer (lease_keepalive, managed keepalives).
    KeepAlive(rpc::LeaseKeepAliveResponse),
    /// A piece of a snapshot streamed to the caller.
    SnapshotChunk(Vec<u8>),
    /// The end of a snapshot.
    Snapshot(Box<super::snapshot::Done>),
    LeaseGrant(rpc::LeaseGrantResponse),
    LeaseRevoke(rpc::LeaseRevokeResponse),
    LeaseTimeToLive(rpc::LeaseTimeToLiveResponse),
    LeaseLeases(rpc::LeaseLeasesResponse),
    Lock(lock::LockResponse),
    Unlock(lock::UnlockResponse),
    Campaign(election::CampaignResponse),
    Proclaim(election::ProclaimResponse),
    Leader(election::LeaderResponse),
    Resign(election::ResignResponse),
    MemberList(rpc::MemberListResponse),
    MemberAdd(rpc::MemberAddResponse),
    MemberRemove(rpc::MemberRemoveResponse),
    MemberUpdate(rpc::MemberUpdateResponse),
    MemberPromote(rpc::MemberPromoteResponse),
    Alarm(rpc::AlarmResponse),
    Defragment(rpc::DefragmentResponse),
    HashKv(rpc::HashKvResponse),
    MoveLeader(rpc::MoveLeaderResponse),
    AuthStatus(rpc::AuthStatusResponse),
    Authenticate(rpc::AuthenticateResponse),
    AuthEnable(rpc::AuthEnableResponse),
    AuthDisable(rpc::AuthDisableResponse),
    UserAdd(rpc::AuthUserAddResponse),
    UserDelete(rpc::AuthUserDeleteResponse),
    UserChangePassword(rpc::AuthUserChangePasswordResponse),
    UserGet(rpc::AuthUserGetResponse),
    UserList(rpc::AuthUserListResponse),
    UserGrantRole(rpc::AuthUserGrantRoleResponse),
    UserRevokeRole(rpc::AuthUserRevokeRoleResponse),
    RoleAdd(rpc::AuthRoleAddResponse),
    RoleDelete(rpc::AuthRoleDeleteResponse),
    RoleGet(rpc::AuthRoleGetResponse),
    RoleList(rpc::AuthRoleListResponse),
    RoleGrantPermission(rpc::AuthRoleGrantPermissionResponse),
    RoleRevokePermission(rpc::AuthRoleRevokePermissionResponse),
}

impl Reply {
    /// A reply the server sent successfully but that still reports a
    /// failure: a lease grant with a non-empty `error` field (POD "lease_grant").
    pub fn checked(self) -> Result<Reply, Error> {
        match self {
            Reply::LeaseGrant(r) if !r.error.is_empty() => Err(Error::internal(r.error)),
            r => Ok(r),
        }
    }
}

/// Per-call transport settings.
#[derive(Clone, Default)]
pub struct CallOpts {
    pub token: Option<AsciiMetadataValue>,
    pub max_recv: usize,
}

impl CallOpts {
    /// A request carrying the token (if any) as `authorization` metadata;
    /// streams build their opening request with it too.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        r
    }
}

impl Call {
    /// Retry class (POD "RETRIES AND FAILOVER"): reads are repeatable, writes at-most-once.
    pub fn class(&self) -> RetryClass {
        match self {
            Call::Range(_)
            | Call::Status(_)
            | Call::LeaseTimeToLive(_)
            | Call::LeaseLeases(_)
            | Call::Leader(_)
            | Call::MemberList(_)
            | Call::HashKv(_)
            | Call::AuthStatus(_)
            | Call::UserGet(_)
            | Call::UserList(_)
            | Call::RoleGet(_)
            | Call::RoleList(_) => RetryClass::Idempotent,
            Call::Alarm(a) if a.action == rpc::alarm_request::AlarmAction::Get as i32 => {
                RetryClass::Idempotent
            }
            Call::Txn(t) if t.success.iter().chain(&t.failure).all(is_read_op) => {
                RetryClass::Idempotent
            }
            _ => RetryClass::AtMostOnce,
        }
    }

    /// True for calls the server may rightly hold until their deadline
    /// (a lock or campaign waiting its turn): their timeout says nothing
    /// about the member.
    pub fn may_block(&self) -> bool {
        matches!(self, Call::Lock(_) | Call::Campaign(_))
    }

    /// Sends the call once over `ch`.
    pub async fn exec(self, ch: Channel, o: &CallOpts) -> Result<Reply, Status> {
        use election::election_client::ElectionClient;
        use lock::lock_client::LockClient;
        use rpc::auth_client::AuthClient;
        use rpc::cluster_client::ClusterClient;
        use rpc::kv_client::KvClient;
        use rpc::lease_client::LeaseClient;
        use rpc::maintenance_client::MaintenanceClient;
        let max = if o.max_recv == 0 {
            usize::MAX
        } else {
            o.max_recv
        };
        // One unary RPC of any service: `rpc!(ServiceClient, method, request, Variant)`.
        macro_rules! rpc {
            ($svc:ident, $m:ident, $req:expr, $v:ident) => {
                $svc::new(ch)
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(usize::MAX)
                    .$m(o.request($req))
                    .await
                    .map(|r| Reply::$v(r.into_inner()))
            };
        }
        macro_rules! kv {
            ($m:ident, $req:expr, $v:ident) => {
                rpc!(KvClient, $m, $req, $v)
            };
        }
        match self {
            Call::Range(r) => kv!(range, r, Range),
            Call::Put(r) => kv!(put, r, Put),
            Call::DeleteRange(r) => kv!(delete_range, r, DeleteRange),
            Call::Txn(r) => kv!(txn, r, Txn),
            Call::Compact(r) => kv!(compact, r, Compact),
            Call::LeaseGrant(r) => rpc!(LeaseClient, lease_grant, r, LeaseGrant),
            Call::LeaseRevoke(r) => rpc!(LeaseClient, lease_revoke, r, LeaseRevoke),
            Call::LeaseTimeToLive(r) => {
                rpc!(LeaseClient, lease_time_to_live, r, LeaseTimeToLive)
            }
            Call::LeaseLeases(r) => rpc!(LeaseClient, lease_leases, r, LeaseLeases),
            Call::Lock(r) => rpc!(LockClient, lock, r, Lock),
            Call::Unlock(r) => rpc!(LockClient, unlock, r, Unlock),
            Call::Campaign(r) => rpc!(ElectionClient, campaign, r, Campaign),
            Call::Proclaim(r) => rpc!(ElectionClient, proclaim, r, Proclaim),
            Call::Leader(r) => rpc!(ElectionClient, leader, r, Leader),
            Call::Resign(r) => rpc!(ElectionClient, resign, r, Resign),
            Call::Status(r) => rpc!(MaintenanceClient, status, r, Status),
            Call::MemberList(r) => rpc!(ClusterClient, member_list, r, MemberList),
            Call::MemberAdd(r) => rpc!(ClusterClient, member_add, r, MemberAdd),
            Call::MemberRemove(r) => rpc!(ClusterClient, member_remove, r, MemberRemove),
            Call::MemberUpdate(r) => rpc!(ClusterClient, member_update, r, MemberUpdate),
            Call::MemberPromote(r) => rpc!(ClusterClient, member_promote, r, MemberPromote),
            Call::Alarm(r) => rpc!(MaintenanceClient, alarm, r, Alarm),
            Call::Defragment(r) => rpc!(MaintenanceClient, defragment, r, Defragment),
            Call::HashKv(r) => rpc!(MaintenanceClient, hash_kv, r, HashKv),
            Call::MoveLeader(r) => rpc!(MaintenanceClient, move_leader, r, MoveLeader),
            Call::AuthStatus(r) => rpc!(AuthClient, auth_status, r, AuthStatus),
            Call::Authenticate(r) => rpc!(AuthClient, authenticate, r, Authenticate),
            Call::AuthEnable(r) => rpc!(AuthClient, auth_enable, r, AuthEnable),
            Call::AuthDisable(r) => rpc!(AuthClient, auth_disable, r, AuthDisable),
            Call::UserAdd(r) => rpc!(AuthClient, user_add, r, UserAdd),
            Call::UserDelete(r) => rpc!(AuthClient, user_delete, r, UserDelete),
            Call::UserChangePassword(r) => {
                rpc!(AuthClient, user_change_password, r, UserChangePassword)
            }
            Call::UserGet(r) => rpc!(AuthClient, user_get, r, UserGet),
            Call::UserList(r) => rpc!(AuthClient, user_list, r, UserList),
            Call::UserGrantRole(r) => rpc!(AuthClient, user_grant_role, r, UserGrantRole),
            Call::UserRevokeRole(r) => rpc!(AuthClient, user_revoke_role, r, UserRevokeRole),
            Call::RoleAdd(r) => rpc!(AuthClient, role_add, r, RoleAdd),
            Call::RoleDelete(r) => rpc!(AuthClient, role_delete, r, RoleDelete),
            Call::RoleGet(r) => rpc!(AuthClient, role_get, r, RoleGet),
            Call::RoleList(r) => rpc!(AuthClient, role_list, r, RoleList),
            Call::RoleGrantPermission(r) => {
                rpc!(AuthClient, role_grant_permission, r, RoleGrantPermission)
            }
            Call::RoleRevokePermission(r) => {
                rpc!(AuthClient, role_revoke_permission, r, RoleRevokePermission)
            }
        }
    }
}

fn is_read_op(op: &rpc::RequestOp) -> bool {
    matches!(op.request, Some(rpc::request_op::Request::RequestRange(_)))
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
            (Call::MoveLeader(Default::default()), RetryClass::AtMostOnce),
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
}

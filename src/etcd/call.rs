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
}

impl Reply {
    /// A reply the server sent successfully but that still reports a
    /// failure: a lease grant with a non-empty `error` field (API.md 5.3).
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
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        r
    }
}

impl Call {
    /// Retry class (API.md 16.2): reads are repeatable, writes at-most-once.
    pub fn class(&self) -> RetryClass {
        match self {
            Call::Range(_)
            | Call::Status(_)
            | Call::LeaseTimeToLive(_)
            | Call::LeaseLeases(_)
            | Call::Leader(_) => RetryClass::Idempotent,
            Call::Txn(t) if t.success.iter().chain(&t.failure).all(is_read_op) => {
                RetryClass::Idempotent
            }
            _ => RetryClass::AtMostOnce,
        }
    }

    /// Sends the call once over `ch`.
    pub async fn exec(self, ch: Channel, o: &CallOpts) -> Result<Reply, Status> {
        use election::election_client::ElectionClient;
        use lock::lock_client::LockClient;
        use rpc::kv_client::KvClient;
        use rpc::lease_client::LeaseClient;
        use rpc::maintenance_client::MaintenanceClient;
        let max = if o.max_recv == 0 {
            usize::MAX
        } else {
            o.max_recv
        };
        macro_rules! unary {
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
                unary!(KvClient, $m, $req, $v)
            };
        }
        match self {
            Call::Range(r) => kv!(range, r, Range),
            Call::Put(r) => kv!(put, r, Put),
            Call::DeleteRange(r) => kv!(delete_range, r, DeleteRange),
            Call::Txn(r) => kv!(txn, r, Txn),
            Call::Compact(r) => kv!(compact, r, Compact),
            Call::Status(r) => MaintenanceClient::new(ch)
                .max_decoding_message_size(max)
                .status(o.request(r))
                .await
                .map(|r| Reply::Status(r.into_inner())),
            Call::LeaseGrant(r) => unary!(LeaseClient, lease_grant, r, LeaseGrant),
            Call::LeaseRevoke(r) => unary!(LeaseClient, lease_revoke, r, LeaseRevoke),
            Call::LeaseTimeToLive(r) => {
                unary!(LeaseClient, lease_time_to_live, r, LeaseTimeToLive)
            }
            Call::LeaseLeases(r) => unary!(LeaseClient, lease_leases, r, LeaseLeases),
            Call::Lock(r) => unary!(LockClient, lock, r, Lock),
            Call::Unlock(r) => unary!(LockClient, unlock, r, Unlock),
            Call::Campaign(r) => unary!(ElectionClient, campaign, r, Campaign),
            Call::Proclaim(r) => unary!(ElectionClient, proclaim, r, Proclaim),
            Call::Leader(r) => unary!(ElectionClient, leader, r, Leader),
            Call::Resign(r) => unary!(ElectionClient, resign, r, Resign),
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

//! One unary etcd RPC as plain data (`Call`), its answer (`Reply`), the
//! retry class of each, and how each is sent over a tonic channel. The
//! request and reply are the prost messages themselves: owned data that
//! crosses from the Perl thread to the runtime thread and back.

use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::pb::etcdserverpb as rpc;
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
}

/// Per-call transport settings.
#[derive(Clone, Default)]
pub struct CallOpts {
    pub token: Option<AsciiMetadataValue>,
    pub max_recv: usize,
}

impl CallOpts {
    fn request<T>(&self, msg: T) -> Request<T> {
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
            Call::Range(_) | Call::Status(_) => RetryClass::Idempotent,
            Call::Txn(t) if t.success.iter().chain(&t.failure).all(is_read_op) => {
                RetryClass::Idempotent
            }
            _ => RetryClass::AtMostOnce,
        }
    }

    /// True for calls the server may rightly hold until their deadline
    /// (a lock or campaign waiting its turn): their timeout says nothing
    /// about the member. None of the calls so far.
    pub fn may_block(&self) -> bool {
        false
    }

    /// Sends the call once over `ch`.
    pub async fn exec(self, ch: Channel, o: &CallOpts) -> Result<Reply, Status> {
        use rpc::kv_client::KvClient;
        use rpc::maintenance_client::MaintenanceClient;
        let max = if o.max_recv == 0 {
            usize::MAX
        } else {
            o.max_recv
        };
        macro_rules! kv {
            ($m:ident, $req:expr, $v:ident) => {
                KvClient::new(ch)
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(usize::MAX)
                    .$m(o.request($req))
                    .await
                    .map(|r| Reply::$v(r.into_inner()))
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
                txn(vec![read.clone()], vec![read.clone()]),
                RetryClass::Idempotent,
            ),
            (txn(vec![read], vec![write]), RetryClass::AtMostOnce),
        ];
        for (call, want) in cases {
            assert_eq!(call.class(), want, "{call:?}");
        }
    }
}

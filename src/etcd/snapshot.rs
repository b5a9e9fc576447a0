//! `snapshot` (POD "snapshot"): streams the member's backend
//! database to a file or, chunk by chunk, to the caller. A file is written
//! under a temporary name beside the target, synced and renamed into place
//! only when the whole stream arrived, so a failed snapshot never leaves a
//! partial file under the requested name. The stream may take long: instead
//! of one deadline, each message must arrive within the client's `timeout`.
//! Runs on the runtime thread; knows nothing of Perl.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::time::Instant;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::etcdserverpb as rpc;
use super::stream::ReqSink;

pub enum Target {
    File(PathBuf),
    Chunks,
}

/// The end of a snapshot: what the final callback reports.
#[derive(Debug, Clone)]
pub struct Done {
    pub header: Option<rpc::ResponseHeader>,
    pub size: u64,
    pub file: Option<PathBuf>,
}

pub async fn snapshot(client: Arc<Client>, target: Target, sink: ReqSink) {
    let result = run(&client, target, &sink).await;
    sink(result.map(|d| Reply::Snapshot(Box::new(d))), true);
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::internal(format!("snapshot: cannot {what} {}: {e}", path.display()))
}

async fn run(client: &Client, target: Target, sink: &ReqSink) -> Result<Done, Error> {
    use rpc::maintenance_client::MaintenanceClient;
    let idle = client.cfg.timeout;
    let (opts, _) = client.call_opts(Instant::now() + idle).await?;
    let endpoint = client.endpoints.current();
    let ch = client
        .endpoints
        .channel(endpoint)
        .map_err(|m| Error::new(error::UNAVAILABLE, m))?;
    let mut out = match &target {
        Target::File(path) => {
            let mut tmp = path.clone().into_os_string();
            tmp.push(".part");
            let tmp = PathBuf::from(tmp);
            let f = std::fs::File::create(&tmp).map_err(|e| io_error("create", &tmp, e))?;
            Some((f, tmp, path.clone()))
        }
        Target::Chunks => None,
    };
    let result = async {
        let mut mc = MaintenanceClient::new(ch).max_decoding_message_size(usize::MAX);
        let call = mc.snapshot(opts.request(rpc::SnapshotRequest {}));
        let mut stream = match tokio::time::timeout(idle, call).await {
            Err(_) => return Err(Error::deadline()),
            Ok(Err(s)) => {
                if error::never_sent(&s) || s.code() == tonic::Code::Unavailable {
                    client.endpoints.failover(endpoint);
                }
                return Err(Error::from_status(&s));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let mut done = Done {
            header: None,
            size: 0,
            file: None,
        };
        loop {
            let m = match tokio::time::timeout(idle, stream.message()).await {
                Err(_) => return Err(Error::deadline()),
                Ok(Err(s)) => return Err(Error::from_status(&s)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(m))) => m,
            };
            if m.header.is_some() {
                done.header = m.header;
            }
            done.size += m.blob.len() as u64;
            match &mut out {
                Some((f, tmp, _)) => f
                    .write_all(&m.blob)
                    .map_err(|e| io_error("write", tmp, e))?,
                None if !m.blob.is_empty() => sink(Ok(Reply::SnapshotChunk(m.blob)), false),
                None => {}
            }
        }
        if done.size == 0 {
            return Err(Error::internal("snapshot: the server sent no data"));
        }
        Ok(done)
    }
    .await;
    match (result, out) {
        (Ok(mut done), Some((f, tmp, path))) => {
            f.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
            drop(f);
            std::fs::rename(&tmp, &path).map_err(|e| io_error("rename into place", &path, e))?;
            done.file = Some(path);
            Ok(done)
        }
        (Err(e), Some((f, tmp, _))) => {
            drop(f);
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
        (r, None) => r,
    }
}

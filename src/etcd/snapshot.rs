//! `snapshot` (POD "snapshot"): streams the member's backend
//! database to a file or, chunk by chunk, to the caller. A file is written
//! under a temporary name beside the target, synced and renamed into place
//! only when the whole stream arrived, so a failed snapshot never leaves a
//! partial file under the requested name. The stream may take long: instead
//! of one deadline, each message must arrive within the client's `timeout`.
//! Runs on the runtime thread, except the file's creation, writes, sync and
//! rename, which run on tokio's blocking pool (`FileWriter`), so a large
//! snapshot on a slow disk never stalls the other calls and keepalives;
//! knows nothing of Perl.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::etcdserverpb as rpc;
use super::stream::{self, ReqSink};

pub enum Target {
    File(PathBuf),
    Chunks,
}

/// The end of a snapshot: what the final callback reports.
#[derive(Debug, Clone)]
pub struct Finished {
    pub header: Option<rpc::ResponseHeader>,
    pub size: u64,
    pub file: Option<PathBuf>,
    /// The server's version, when it says (etcd 3.6 and later).
    pub version: Option<String>,
}

/// etcd ends the stream with the SHA-256 of the database before it (the
/// server's `maintenanceServer.Snapshot`; `etcdutl snapshot restore`
/// checks it). The check runs as the data passes: all but the latest 32
/// bytes go into the digest.
pub struct Checksum {
    digest: ring::digest::Context,
    tail: Vec<u8>,
}

const SUM: usize = 32;

impl Default for Checksum {
    fn default() -> Checksum {
        Checksum {
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            tail: Vec::with_capacity(2 * SUM),
        }
    }
}

impl Checksum {
    pub fn update(&mut self, chunk: &[u8]) {
        if chunk.len() >= SUM {
            self.digest.update(&self.tail);
            let (body, last) = chunk.split_at(chunk.len() - SUM);
            self.digest.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > SUM {
                let over = self.tail.len() - SUM;
                self.digest.update(&self.tail[..over]);
                self.tail.drain(..over);
            }
        }
    }

    /// Whether the last 32 bytes are the SHA-256 of everything before.
    pub fn verify(self) -> bool {
        self.tail.len() == SUM && self.digest.finish().as_ref() == self.tail.as_slice()
    }
}

pub async fn snapshot(client: Arc<Client>, target: Target, member: Option<String>, sink: ReqSink) {
    let result = Client::on_member(member, run(&client, target, &sink)).await;
    sink(result.map(|d| Reply::Snapshot(Box::new(d))), true);
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("snapshot: cannot {what} {}: {e}", path.display()))
}

enum Piece {
    Data(Vec<u8>),
    /// Everything arrived: sync, close and rename into place.
    Commit,
}

/// The snapshot file, written on tokio's blocking pool: chunks go through
/// a bounded channel (the stream waits while the disk is behind), and the
/// file is renamed into place only on `Commit`; otherwise the partial file
/// is removed.
struct FileWriter {
    tx: mpsc::Sender<Piece>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl FileWriter {
    /// Creates `path`.part (an error names it) and starts the writer.
    async fn create(path: PathBuf) -> Result<FileWriter, Error> {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".part");
        let tmp = PathBuf::from(tmp);
        let (file, tmp) = tokio::task::spawn_blocking(move || match File::create(&tmp) {
            Ok(f) => Ok((f, tmp)),
            Err(e) => Err(io_error("create", &tmp, e)),
        })
        .await
        .map_err(|e| Error::internal(format!("snapshot: {e}")))??;
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::task::spawn_blocking(move || {
            let r = write_out(file, &tmp, &path, rx);
            if !matches!(r, Ok(true)) {
                let _ = std::fs::remove_file(&tmp);
            }
            r.map(|_| ())
        });
        Ok(FileWriter { tx, task })
    }

    /// Hands a chunk to the writer; false when it has stopped (an I/O
    /// error, which `finish` reports).
    async fn write(&self, blob: Vec<u8>) -> bool {
        self.tx.send(Piece::Data(blob)).await.is_ok()
    }

    /// Commits the file (or, without `commit`, removes it) and reports the
    /// writer's outcome.
    async fn finish(self, commit: bool) -> Result<(), Error> {
        if commit {
            let _ = self.tx.send(Piece::Commit).await;
        }
        drop(self.tx);
        self.task
            .await
            .unwrap_or_else(|e| Err(Error::internal(format!("snapshot: {e}"))))
    }
}

/// The writer's loop (blocking pool): true once the file is in place,
/// false when the stream ended without a commit.
fn write_out(
    mut f: File,
    tmp: &Path,
    path: &Path,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<bool, Error> {
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Data(b) => f.write_all(&b).map_err(|e| io_error("write", tmp, e))?,
            Piece::Commit => {
                f.sync_all().map_err(|e| io_error("sync", tmp, e))?;
                drop(f);
                std::fs::rename(tmp, path).map_err(|e| io_error("rename into place", path, e))?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

async fn run(client: &Client, target: Target, sink: &ReqSink) -> Result<Finished, Error> {
    use rpc::maintenance_client::MaintenanceClient;
    let idle = client.cfg.timeout;
    let o = stream::open(client)
        .await
        .map_err(|l| Error::from_status(&l.status))?;
    let out = match &target {
        Target::File(path) => Some(FileWriter::create(path.clone()).await?),
        Target::Chunks => None,
    };
    let result = async {
        let mut mc = MaintenanceClient::new(o.ch).max_decoding_message_size(usize::MAX);
        let call = mc.snapshot(o.opts.request_for(rpc::SnapshotRequest {}, false));
        let mut stream = match tokio::time::timeout(idle, call).await {
            Err(_) => return Err(Error::deadline()),
            Ok(Err(s)) => {
                // A snapshot of one member moves nobody elsewhere.
                if !matches!(client.pinned(), Ok(Some(_))) {
                    client.fail_over_if_unreachable(o.endpoint, &s);
                }
                return Err(Error::from_status(&s));
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let mut done = Finished {
            header: None,
            size: 0,
            file: None,
            version: None,
        };
        let mut sum = Checksum::default();
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
            if !m.version.is_empty() {
                done.version = Some(m.version);
            }
            done.size += m.blob.len() as u64;
            sum.update(&m.blob);
            let taken = match &out {
                Some(w) => w.write(m.blob).await,
                None => {
                    if !m.blob.is_empty() {
                        sink(Ok(Reply::SnapshotChunk(m.blob)), false);
                    }
                    true
                }
            };
            if !taken {
                break; // the writer stopped: `finish` reports its error
            }
        }
        if done.size == 0 {
            return Err(Error::internal("snapshot: the server sent no data"));
        }
        // A stream cut or altered on the way: no file is put in place.
        if !sum.verify() {
            return Err(Error::new(
                error::DATA_LOSS,
                "snapshot: the data does not match the SHA-256 the server sent with it",
            ));
        }
        Ok(done)
    }
    .await;
    match (result, out) {
        (Ok(mut done), Some(w)) => {
            w.finish(true).await?;
            done.file = match target {
                Target::File(path) => Some(path),
                Target::Chunks => None,
            };
            Ok(done)
        }
        (Err(e), Some(w)) => {
            let _ = w.finish(false).await;
            Err(e)
        }
        (r, None) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .to_vec()
    }

    #[test]
    fn checksum_in_any_chunking() {
        let db: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stream = db.clone();
        stream.extend_from_slice(&sha(&db));
        for size in [1, 5, 31, 32, 33, 64, 1000, 20_000] {
            let mut c = Checksum::default();
            stream.chunks(size).for_each(|ch| c.update(ch));
            assert!(c.verify(), "chunks of {size}");
        }
        // the server's way: the data, then the sum as a message of its own
        let mut c = Checksum::default();
        c.update(&db);
        c.update(&sha(&db));
        assert!(c.verify());
        // one byte altered, the sum cut short, or no sum at all
        let mut bad = stream.clone();
        bad[5000] ^= 1;
        let mut c = Checksum::default();
        c.update(&bad);
        assert!(!c.verify(), "altered");
        let mut c = Checksum::default();
        c.update(&stream[..stream.len() - 1]);
        assert!(!c.verify(), "cut");
        let mut c = Checksum::default();
        c.update(&db);
        assert!(!c.verify(), "without its sum");
        assert!(!Checksum::default().verify(), "nothing");
    }
}

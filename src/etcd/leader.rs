//! Noticing a member without a leader before etcd does (POD "PARTITIONS AND
//! LEADER LOSS"). etcd ends the leader-bound streams of a member only after
//! three election timeouts without a leader; while a client has streams
//! open, it asks its current member for its status every
//! `leader_check_interval` (one cheap Maintenance/Status call, answered by
//! the member itself) and, when the member reports no leader, marks it down,
//! fails over, and tells the streams on it to move. Runs on the runtime
//! thread; knows nothing of Perl.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use super::call::{Call, Reply};
use super::client::Client;
use super::endpoints::Conn;

/// What the streams of one client share about leader loss.
pub struct LeaderWatch {
    /// Stream sessions that the server took and that are still open.
    open: AtomicUsize,
    /// `(n, endpoint)`: the n-th member found without a leader.
    lost: watch::Sender<(u64, usize)>,
}

impl Default for LeaderWatch {
    fn default() -> LeaderWatch {
        LeaderWatch {
            open: AtomicUsize::new(0),
            lost: watch::channel((0, usize::MAX)).0,
        }
    }
}

/// Counts an open stream session while it lives.
pub struct OpenStream<'a>(&'a LeaderWatch);

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LeaderWatch {
    pub fn stream_open(&self) -> OpenStream<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenStream(self)
    }

    fn streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Where a stream learns of members found without a leader.
    pub fn subscribe(&self) -> watch::Receiver<(u64, usize)> {
        self.lost.subscribe()
    }

    fn report(&self, endpoint: usize) {
        self.lost.send_modify(|(n, e)| {
            *n += 1;
            *e = endpoint;
        });
    }
}

impl Client {
    /// Endpoint `idx` answered that it has no leader: requests and streams
    /// leave it.
    pub fn leaderless(&self, idx: usize) {
        self.endpoints.state().set_conn(idx, Conn::Down);
        self.endpoints.failover(idx);
        self.leader.report(idx);
    }
}

/// Whether a status answer shows a member without a leader.
pub fn has_no_leader(reply: &Reply) -> bool {
    matches!(reply, Reply::Status(s) if s.leader == 0)
}

/// The check, for the client's life (the caller ends it with the client).
pub async fn check(client: Arc<Client>) {
    let every = client.cfg.leader_check_interval;
    if every.is_zero() || !client.cfg.require_leader {
        return;
    }
    loop {
        tokio::time::sleep(every).await;
        if client.leader.streams() == 0 {
            continue;
        }
        let idx = client.endpoints.current();
        let Ok(ch) = client.endpoints.channel(idx) else {
            continue;
        };
        let status = Call::Status(Default::default());
        let opts = client.current_opts().0;
        // An unanswered check says nothing new: the connection's liveness
        // ping and the calls' timeouts cover a member that does not answer.
        if let Ok(Ok(reply)) = tokio::time::timeout(every, status.exec(ch, &opts)).await {
            if has_no_leader(&reply) {
                client.leaderless(idx);
            }
        }
    }
}

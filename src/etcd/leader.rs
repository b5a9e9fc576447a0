//! Following the cluster: `auto_sync_interval` (below), and noticing a
//! member without a leader before etcd does (POD "PARTITIONS AND
//! LEADER LOSS"). etcd ends the leader-bound streams of a member only after
//! three election timeouts without a leader; while a client has streams
//! open, it asks its current member for its status every
//! `leader_check_interval` (one cheap Maintenance/Status call, answered by
//! the member itself) and, when the member reports no leader, marks it down,
//! fails over, and tells the streams on it to move (as it does when the
//! endpoint list changes: `Client::set_endpoints`). Runs on the runtime
//! thread; knows nothing of Perl.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::call::{Call, Reply};
use super::client::Client;
use super::endpoints::Conn;

/// What the streams of one client share about leader loss.
pub struct LeaderWatch {
    /// Stream sessions that the server took and that are still open, by
    /// endpoint.
    open: Mutex<HashMap<String, usize>>,
    /// `(n, name)`: the n-th move: the endpoint found without a leader
    /// (empty: the endpoint list changed).
    lost: watch::Sender<(u64, String)>,
    /// A stream session opened (the check waits for one: an idle client
    /// has no timer running).
    opened: tokio::sync::Notify,
}

impl Default for LeaderWatch {
    fn default() -> LeaderWatch {
        LeaderWatch {
            open: Mutex::new(HashMap::new()),
            lost: watch::channel((0, String::new())).0,
            opened: tokio::sync::Notify::new(),
        }
    }
}

/// Counts an open stream session on its endpoint while it lives.
pub struct OpenStream<'a>(&'a LeaderWatch, String);

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        let mut open = self.0.streams();
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

impl LeaderWatch {
    /// A stream session on endpoint `name` is open.
    pub fn stream_open(&self, name: &str) -> OpenStream<'_> {
        *self.streams().entry(name.to_owned()).or_default() += 1;
        self.opened.notify_one();
        OpenStream(self, name.to_owned())
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any stream session is open.
    fn any_stream(&self) -> bool {
        !self.streams().is_empty()
    }

    /// The endpoints that streams are open on.
    fn stream_endpoints(&self) -> Vec<String> {
        self.streams().keys().cloned().collect()
    }

    /// Where a stream learns of members to leave.
    pub fn subscribe(&self) -> watch::Receiver<(u64, String)> {
        self.lost.subscribe()
    }

    /// Streams on endpoint `name` move; with an empty name, streams on an
    /// endpoint no longer listed do.
    pub fn report(&self, name: String) {
        self.lost.send_modify(|(n, e)| {
            *n += 1;
            *e = name;
        });
    }
}

impl Client {
    /// Endpoint `idx` answered that it has no leader: requests and streams
    /// leave it.
    pub fn leaderless(&self, idx: usize) {
        self.endpoints.state().set_conn(idx, Conn::Down);
        self.endpoints.failover(idx, || {
            format!("{} (found by the leader check)", super::error::NO_LEADER)
        });
        self.leader.report(self.endpoints.name(idx));
    }
}

impl Client {
    /// Replaces the endpoint list (`auto_sync_interval`).
    pub fn set_endpoints(&self, names: Vec<String>) {
        if self.endpoints.state().replace(names) {
            self.endpoints_changed();
        }
    }

    /// The endpoint list was replaced (here or by `set_endpoints` on the
    /// Perl thread): the channels of endpoints no longer listed go, and
    /// streams on them move to the current endpoint.
    pub fn endpoints_changed(&self) {
        self.endpoints.prune();
        self.leader.report(String::new());
    }
}

/// Whether a status answer shows a member without a leader.
pub fn has_no_leader(reply: &Reply) -> bool {
    matches!(reply, Reply::Status(s) if s.leader == 0)
}

/// The check, for the client's life (the caller ends it with the client);
/// it sleeps without a timer while no stream is open.
pub async fn check(client: Arc<Client>) {
    let every = client.cfg.leader_check_interval;
    if every.is_zero() || !client.cfg.require_leader {
        return;
    }
    loop {
        // No stream, nothing to check: no timer either until one opens.
        if !client.leader.any_stream() {
            client.leader.opened.notified().await;
            continue;
        }
        tokio::time::sleep(every).await;
        // The members the streams are on (not only the current endpoint:
        // calls may have moved on while the streams stayed).
        for name in client.leader.stream_endpoints() {
            let Some(idx) = client.endpoints.state().position(&name) else {
                continue;
            };
            let Ok(ch) = client.endpoints.channel(idx) else {
                continue;
            };
            let status = Call::Status(Default::default());
            let opts = client.current_opts().0;
            // An unanswered check says nothing new: the connection's
            // liveness ping and the calls' timeouts cover a member that
            // does not answer.
            if let Ok(Ok(reply)) = tokio::time::timeout(every, status.exec(ch, &opts)).await {
                if has_no_leader(&reply) {
                    client.leaderless(idx);
                }
            }
        }
    }
}

/// `auto_sync_interval`: every so often, the cluster's member list replaces
/// the endpoint list: the client URLs of its started voting members (as
/// Go's clientv3 `Sync`), in the style of the list the client was given
/// (with or without the scheme); URLs of the other scheme than the
/// client's (TLS or not) are left out. An answer that yields no URL, or no
/// answer, leaves the list as it is.
pub async fn auto_sync(client: Arc<Client>) {
    let every = client.cfg.auto_sync_interval;
    if every.is_zero() {
        return;
    }
    loop {
        tokio::time::sleep(every).await;
        let deadline = tokio::time::Instant::now() + client.cfg.timeout;
        let call = Call::MemberList(Default::default());
        if let Ok(Reply::MemberList(r)) = client.unary(call, deadline).await {
            let with_scheme = client.endpoints.name(0).contains("://");
            let urls = client_urls(&r.members, client.endpoints.tls(), with_scheme);
            if !urls.is_empty() {
                client.set_endpoints(urls);
            }
        }
    }
}

/// The client URLs of the started voting members among `members`, for a
/// client with TLS or without, with the scheme or without.
pub fn client_urls(
    members: &[super::pb::etcdserverpb::Member],
    tls: bool,
    with_scheme: bool,
) -> Vec<String> {
    let scheme = if tls { "https://" } else { "http://" };
    let mut urls: Vec<String> = Vec::new();
    for m in members
        .iter()
        .filter(|m| !m.is_learner && !m.name.is_empty())
    {
        for u in &m.client_ur_ls {
            let Some(bare) = u.strip_prefix(scheme) else {
                continue;
            };
            let url = if with_scheme {
                u.clone()
            } else {
                bare.to_owned()
            };
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::pb::etcdserverpb::Member;

    #[test]
    fn client_urls_of_started_voting_members() {
        let m = |name: &str, learner: bool, urls: &[&str]| Member {
            name: name.into(),
            is_learner: learner,
            client_ur_ls: urls.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        };
        let members = [
            m(
                "a",
                false,
                &["http://10.0.0.1:2379", "https://10.0.0.1:2380"],
            ),
            m("b", true, &["http://10.0.0.2:2379"]),
            m("", false, &[]),
            m(
                "c",
                false,
                &["http://10.0.0.3:2379", "http://10.0.0.1:2379"],
            ),
        ];
        assert_eq!(
            client_urls(&members, false, false),
            ["10.0.0.1:2379", "10.0.0.3:2379"]
        );
        assert_eq!(
            client_urls(&members, false, true),
            ["http://10.0.0.1:2379", "http://10.0.0.3:2379"]
        );
        assert_eq!(client_urls(&members, true, true), ["https://10.0.0.1:2380"]);
    }
}

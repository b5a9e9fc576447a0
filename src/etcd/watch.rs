//! The watch engine of one client (POD "WATCHES"). Every watch of the
//! client shares one gRPC Watch stream; creates go out in order and etcd
//! answers them in order, so the n-th `created` reply belongs to the n-th
//! create sent. Each watch remembers where delivery stopped (the revision
//! after its last delivered event, or after its creation revision for a
//! watch "from now"); after a stream loss every watch is re-created from
//! there on a new stream, after a backoff, so nothing is skipped and nothing
//! is delivered twice. Runs on the runtime thread; knows nothing of Perl.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::etcdserverpb as rpc;
use super::stream::{self, Opened, Opening, Session, Sink};

use rpc::watch_request::RequestUnion;

/// What the caller asked to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// 0: from now.
    pub start_revision: i64,
    pub prev_kv: bool,
    pub progress_notify: bool,
    /// `rpc::watch_create_request::FilterType` values.
    pub filters: Vec<i32>,
    /// Reported as `watch_id` in every response instead of the server's id.
    pub watch_id: Option<i64>,
    pub auto_reconnect: bool,
}

/// Requests to the engine, in the order the Perl thread issued them.
pub enum Cmd {
    Create { req: u64, seq: u64, spec: WatchSpec },
    Cancel { req: u64 },
    Progress { req: u64 },
}

/// Orders unary calls after watch creations: a request issued after
/// `watch()` returned waits until that watch exists on the server, so the
/// watch sees what the request writes. Creations are acknowledged as they
/// are answered (or fail, or are cancelled); a waiter is woken once every
/// creation issued before it is acknowledged. Shared by the runtime thread's
/// job handler and the client's watch engine.
#[derive(Clone, Default)]
pub struct Barrier(Arc<Mutex<BarrierState>>);

#[derive(Default)]
struct BarrierState {
    issued: u64,
    acked: u64,
    open: BTreeSet<u64>,
    waiters: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

impl Barrier {
    fn state(&self) -> std::sync::MutexGuard<'_, BarrierState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number of a new watch creation.
    pub fn next(&self) -> u64 {
        let mut s = self.state();
        s.issued += 1;
        let seq = s.issued;
        s.open.insert(seq);
        seq
    }

    /// Resolves once every creation issued so far is acknowledged; None
    /// when nothing is outstanding. A dropped sender also means "go on".
    pub fn wait(&self) -> Option<oneshot::Receiver<()>> {
        let mut s = self.state();
        if s.open.is_empty() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let at = s.issued;
        s.waiters.entry(at).or_default().push(tx);
        Some(rx)
    }

    pub fn ack(&self, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        let ready = {
            let mut s = self.state();
            s.open.remove(&seq);
            let through = match s.open.first() {
                Some(first) => first - 1,
                None => s.issued,
            };
            if through <= s.acked {
                return;
            }
            s.acked = through;
            let later = s.waiters.split_off(&(through + 1));
            std::mem::replace(&mut s.waiters, later)
        };
        for tx in ready.into_values().flatten() {
            let _ = tx.send(());
        }
    }

    #[cfg(test)]
    fn acked(&self) -> u64 {
        self.state().acked
    }
}

struct Watch {
    spec: WatchSpec,
    /// Creation not yet acknowledged (see `Barrier`).
    seq: Option<u64>,
    /// Where the next (re-)creation starts; 0 before a "from now" watch is
    /// first created.
    next_rev: i64,
    /// Seen a `created` reply at least once.
    established: bool,
    /// The `watch_id` reported to the caller.
    report_id: Option<i64>,
    /// The server's id for it on the current stream.
    server_id: Option<i64>,
    /// A fragmented response being reassembled.
    partial: Option<rpc::WatchResponse>,
}

pub struct Engine {
    client: Arc<Client>,
    sink: Sink,
    acks: Barrier,
    watches: BTreeMap<u64, Watch>,
    /// Server watch id -> request id, on the current stream.
    by_id: HashMap<i64, u64>,
    /// Requests whose `created` reply is awaited, in send order.
    creating: VecDeque<u64>,
    /// Watches waiting for the answer to their progress request.
    progress: VecDeque<u64>,
    tx: Option<mpsc::UnboundedSender<rpc::WatchRequest>>,
    /// Some watch got its `created` reply on the current stream.
    live: bool,
}

impl Engine {
    pub fn new(client: Arc<Client>, sink: Sink, barrier: Barrier) -> Engine {
        Engine {
            client,
            sink,
            acks: barrier,
            watches: BTreeMap::new(),
            by_id: HashMap::new(),
            creating: VecDeque::new(),
            progress: VecDeque::new(),
            tx: None,
            live: false,
        }
    }

    /// Serves commands until the client goes away (`stream::supervise`).
    pub async fn run(self, cmds: mpsc::UnboundedReceiver<Cmd>) {
        stream::supervise(self, cmds).await
    }

    fn reset_stream(&mut self) {
        self.tx = None;
        self.by_id.clear();
        self.creating.clear();
        self.progress.clear();
        for w in self.watches.values_mut() {
            w.partial = None;
            w.server_id = None;
        }
    }

    fn send(&self, r: RequestUnion) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(rpc::WatchRequest {
                request_union: Some(r),
            });
        }
    }

    fn send_create(&mut self, req: u64) {
        let Some(w) = self.watches.get(&req) else {
            return;
        };
        if self.tx.is_none() {
            return;
        }
        let s = &w.spec;
        self.send(RequestUnion::CreateRequest(rpc::WatchCreateRequest {
            key: s.key.clone(),
            range_end: s.range_end.clone(),
            start_revision: w.next_rev,
            progress_notify: s.progress_notify,
            filters: s.filters.clone(),
            prev_kv: s.prev_kv,
            watch_id: 0,
            fragment: true,
        }));
        self.creating.push_back(req);
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Create { req, seq, spec } => {
                let spec = self.client.ns.watch(spec);
                self.watches.insert(
                    req,
                    Watch {
                        next_rev: spec.start_revision.max(0),
                        spec,
                        seq: Some(seq),
                        established: false,
                        report_id: None,
                        server_id: None,
                        partial: None,
                    },
                );
                self.send_create(req);
            }
            Cmd::Cancel { req } => {
                let Some(w) = self.watches.remove(&req) else {
                    return;
                };
                self.acks.ack(w.seq);
                if let Some(id) = w.server_id {
                    self.by_id.remove(&id);
                    self.send(RequestUnion::CancelRequest(rpc::WatchCancelRequest {
                        watch_id: id,
                    }));
                }
            }
            Cmd::Progress { req } => {
                if self.tx.is_some() && self.watches.contains_key(&req) {
                    self.send(RequestUnion::ProgressRequest(rpc::WatchProgressRequest {}));
                    self.progress.push_back(req);
                }
            }
        }
    }

    /// Ends a watch with an error: its last callback.
    fn finish(&mut self, req: u64, e: Error) {
        if let Some(w) = self.watches.remove(&req) {
            self.acks.ack(w.seq);
            (self.sink)(req, Err(e), true);
        }
    }

    fn deliver(&self, req: u64, mut m: rpc::WatchResponse) {
        if let Some(w) = self.watches.get(&req) {
            m.watch_id = w.report_id.unwrap_or(m.watch_id);
            let mut reply = Reply::Watch(m);
            self.client.ns.strip(&mut reply);
            (self.sink)(req, Ok(reply), false);
        }
    }

    /// A message of the stream; `Some` when the stream is to be reopened
    /// with a renewed token.
    fn on_response(&mut self, m: rpc::WatchResponse, s: &Session<'_>) -> Option<Status> {
        if m.created {
            return self.on_created(m, s);
        }
        self.on_events(m);
        None
    }

    fn on_events(&mut self, m: rpc::WatchResponse) {
        if m.watch_id == -1 {
            // The answer to a progress request (etcd sends it for the whole
            // stream): it goes to the watch that asked.
            if let Some(req) = self.progress.pop_front() {
                self.deliver(req, m);
            }
            return;
        }
        let Some(&req) = self.by_id.get(&m.watch_id) else {
            return; // a late message of a cancelled watch
        };
        if m.canceled {
            self.by_id.remove(&m.watch_id);
            return self.finish(req, cancelled(&m));
        }
        let Some(w) = self.watches.get_mut(&req) else {
            return;
        };
        if m.fragment {
            match &mut w.partial {
                Some(p) => p.events.extend(m.events),
                None => w.partial = Some(m),
            }
            return;
        }
        let mut m = match w.partial.take() {
            Some(mut p) => {
                p.events.extend(m.events);
                p.header = m.header;
                p.fragment = false;
                p
            }
            None => m,
        };
        let revision = m.header.as_ref().map(|h| h.revision).unwrap_or(0);
        if m.events.is_empty() {
            // A progress notification: everything up to `revision` is sent.
            w.next_rev = w.next_rev.max(revision + 1);
        } else {
            let floor = w.next_rev;
            m.events
                .retain(|e| e.kv.as_ref().map_or(0, |k| k.mod_revision) >= floor);
            match m.events.last().and_then(|e| e.kv.as_ref()) {
                Some(kv) => w.next_rev = kv.mod_revision + 1,
                None => return, // only repeats of what was delivered
            }
        }
        self.deliver(req, m);
    }

    fn on_created(&mut self, m: rpc::WatchResponse, s: &Session<'_>) -> Option<Status> {
        let req = self.creating.pop_front()?;
        let Some(w) = self.watches.get_mut(&req) else {
            // Cancelled while its creation was on the way.
            if !m.canceled {
                self.send(RequestUnion::CancelRequest(rpc::WatchCancelRequest {
                    watch_id: m.watch_id,
                }));
            }
            return None;
        };
        if m.canceled {
            let e = cancelled(&m);
            if s.renews(&self.client, &e) {
                // Refused for a token that a restart or an auth change may
                // have voided: kept, and every watch is created again, from
                // where its delivery stopped, on a stream with a new token.
                return Some(Status::unauthenticated(e.message));
            }
            self.finish(req, e);
            return None;
        }
        self.live = true;
        w.established = true;
        self.acks.ack(w.seq.take());
        if w.report_id.is_none() {
            w.report_id = Some(w.spec.watch_id.unwrap_or(m.watch_id));
        }
        if w.next_rev == 0 {
            // "From now" is pinned to the revision the watch was created at.
            w.next_rev = m.header.as_ref().map(|h| h.revision).unwrap_or(0) + 1;
        }
        w.server_id = Some(m.watch_id);
        self.by_id.insert(m.watch_id, req);
        self.deliver(req, m);
        None
    }
}

impl stream::Engine for Engine {
    type Cmd = Cmd;
    type Message = rpc::WatchResponse;
    const NAME: &'static str = "watch";

    fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn idle(&self) -> bool {
        self.watches.is_empty()
    }

    fn command(&mut self, c: Cmd) {
        Engine::command(self, c)
    }

    fn open(&mut self, o: &Opening) -> Opened<Self::Message> {
        use rpc::watch_client::WatchClient;
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx = Some(tx);
        self.live = false;
        for req in self.watches.keys().copied().collect::<Vec<_>>() {
            self.send_create(req);
        }
        let max = if o.opts.max_recv == 0 {
            usize::MAX
        } else {
            o.opts.max_recv
        };
        let mut wc = WatchClient::new(o.ch.clone()).max_decoding_message_size(max);
        let req = o.opts.request(UnboundedReceiverStream::new(rx));
        Box::pin(async move { wc.watch(req).await })
    }

    fn message(&mut self, m: Self::Message, s: &Session<'_>) -> Option<Status> {
        self.on_response(m, s)
    }

    fn yields(&self) -> bool {
        true
    }

    fn revision(&self) -> i64 {
        self.watches
            .values()
            .map(|w| w.next_rev - 1)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn closed(&mut self) -> bool {
        self.reset_stream();
        std::mem::take(&mut self.live)
    }

    fn fail_all(&mut self, e: Error) {
        for req in self.watches.keys().copied().collect::<Vec<_>>() {
            self.finish(req, e.clone());
        }
    }

    /// After a loss: with `refused` (no endpoint took a stream) the watches
    /// that never existed fail with the setup error; established watches
    /// that are not to reconnect end.
    fn give_up(&mut self, refused: bool) {
        let max_retries = self.client.cfg.max_retries;
        let ended: Vec<(u64, Error)> = self
            .watches
            .iter()
            .filter_map(|(&req, w)| {
                if !w.established {
                    let setup = Error::new(error::INTERNAL, "Watch setup failed");
                    return refused.then_some((req, setup));
                }
                let stays = w.spec.auto_reconnect && max_retries != 0;
                let gone = Error::new(error::UNAVAILABLE, "Watch stream ended");
                (!stays).then_some((req, gone))
            })
            .collect();
        for (req, e) in ended {
            self.finish(req, e);
        }
    }
}

/// The error of a watch cancelled by the server (POD "Compaction and server-side cancellation").
fn cancelled(m: &rpc::WatchResponse) -> Error {
    if m.compact_revision > 0 {
        let mut e = Error::new(
            error::CANCELLED,
            format!(
                "required revision has been compacted (compact revision {})",
                m.compact_revision
            ),
        );
        e.compact_revision = Some(m.compact_revision);
        return e;
    }
    let reason = if m.cancel_reason.is_empty() {
        "Watch cancelled"
    } else {
        &m.cancel_reason
    };
    Error::new(error::CANCELLED, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_releases_waiters_once_their_prefix_is_answered() {
        let b = Barrier::default();
        assert!(b.wait().is_none(), "nothing issued: no wait");
        let (s1, s2) = (b.next(), b.next());
        let mut w2 = b.wait().unwrap();
        let s3 = b.next();
        let mut w3 = b.wait().unwrap();
        b.ack(Some(s2));
        assert_eq!(b.acked(), 0);
        assert!(w2.try_recv().is_err());
        b.ack(Some(s1));
        assert_eq!(b.acked(), 2);
        assert!(w2.try_recv().is_ok(), "waiter after 2 creations released");
        assert!(w3.try_recv().is_err(), "waiter after 3 still waits");
        b.ack(None);
        b.ack(Some(s3));
        assert!(w3.try_recv().is_ok());
        assert!(b.wait().is_none());
    }

    /// One step of a random schedule: create a watch, register a waiting
    /// request, or answer the creation with this index among those issued.
    #[derive(Debug, Clone)]
    enum Step {
        Create,
        Wait,
        Ack(usize),
        AckNone,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(Step::Create),
            2 => Just(Step::Wait),
            3 => any::<usize>().prop_map(Step::Ack),
            1 => Just(Step::AckNone),
        ]
    }

    proptest::proptest! {
        /// Whatever the order creations are answered in (duplicates too), a
        /// waiting request is released exactly when every creation issued
        /// before it has been answered: never earlier (it would miss its
        /// watch's events), never later (it would stall).
        #[test]
        fn barrier_releases_exactly_when_its_prefix_is_answered(
            steps in proptest::collection::vec(step(), 0..200)
        ) {
            let b = Barrier::default();
            let mut issued: Vec<u64> = Vec::new();
            let mut answered = std::collections::BTreeSet::new();
            let mut waiters: Vec<(u64, oneshot::Receiver<()>, bool)> = Vec::new();
            for st in steps {
                match st {
                    Step::Create => issued.push(b.next()),
                    Step::Wait => match b.wait() {
                        Some(rx) => waiters.push((issued.len() as u64, rx, false)),
                        None => proptest::prop_assert!(
                            issued.iter().all(|s| answered.contains(s)),
                            "no wait although a creation is unanswered"
                        ),
                    },
                    Step::Ack(i) if !issued.is_empty() => {
                        let seq = issued[i % issued.len()];
                        answered.insert(seq);
                        b.ack(Some(seq));
                    }
                    Step::Ack(_) => {}
                    Step::AckNone => b.ack(None),
                }
                for (at, rx, done) in waiters.iter_mut() {
                    let due = (1..=*at).all(|s| answered.contains(&s));
                    if !*done {
                        let released = rx.try_recv().is_ok();
                        proptest::prop_assert_eq!(released, due, "waiter after {} creations", at);
                        *done = released;
                    }
                }
            }
            for s in issued.clone() {
                b.ack(Some(s));
            }
            for (_, mut rx, done) in waiters {
                proptest::prop_assert!(done || rx.try_recv().is_ok(), "a waiter was never released");
            }
            proptest::prop_assert!(b.wait().is_none());
        }
    }

    #[test]
    fn compaction_error_carries_the_revision() {
        let m = rpc::WatchResponse {
            canceled: true,
            compact_revision: 7,
            ..Default::default()
        };
        let e = cancelled(&m);
        assert_eq!((e.code, e.compact_revision), (error::CANCELLED, Some(7)));
        assert!(e.message.contains("compacted"));
        let m = rpc::WatchResponse {
            canceled: true,
            ..Default::default()
        };
        assert_eq!(cancelled(&m).message, "Watch cancelled");
    }
}

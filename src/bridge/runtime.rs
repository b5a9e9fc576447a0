//! The runtime thread: one tokio current-thread runtime per process, started
//! with the first client. It receives plain-Rust jobs, runs each client's
//! calls, and pushes completions onto a crossbeam channel, waking the Perl
//! thread through the notifier. Nothing Perl-shaped ever reaches it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::etcd::backlog::Backlog;
use crate::etcd::call::{Call, Reply};
use crate::etcd::client::{Client, Config};
use crate::etcd::connector;
use crate::etcd::error::Error;
use crate::etcd::events::Counters;
use crate::etcd::keepalive::{self as ka, Keeper};
use crate::etcd::leader;
use crate::etcd::observe;
use crate::etcd::snapshot;
use crate::etcd::stream;
use crate::etcd::watch::{self as w, Barrier};

use super::linger::{self, Activity, Rest};
use super::notify::Notifier;
use super::IdMap;
use crate::trace::{self, Stage};

/// Work sent from the Perl thread.
pub enum Job {
    NewClient {
        id: u64,
        /// Boxed: the jobs sent per request stay small.
        cfg: Box<Config>,
    },
    DropClient {
        id: u64,
    },
    Unary {
        client: u64,
        req: u64,
        call: Call,
        deadline: std::time::Instant,
        /// A deadline of the call's own (a per-call `timeout`): the call
        /// runs alone, not in a group that shares one timer.
        solo: bool,
        /// Fires (or is dropped) when the caller cancels a lock or
        /// campaign: the call is abandoned, its key on the server deleted
        /// (`Call::held_key`), and CANCELLED reported.
        cancel: Option<tokio::sync::oneshot::Receiver<()>>,
        /// The one endpoint to ask (a per-member maintenance call).
        member: Option<String>,
    },
    /// A command for the client's watch engine.
    Watch {
        client: u64,
        cmd: w::Cmd,
    },
    /// A command for the client's lease keeper.
    Keepalive {
        client: u64,
        cmd: ka::Cmd,
    },
    /// Starts an election observation.
    Observe {
        client: u64,
        req: u64,
        name: Vec<u8>,
        auto_reconnect: bool,
    },
    ObserveCancel {
        client: u64,
        req: u64,
    },
    /// Streams the backend snapshot to a file or to the caller.
    Snapshot {
        client: u64,
        req: u64,
        target: snapshot::Target,
        /// The one endpoint to ask (`{ endpoint => ... }`).
        member: Option<String>,
    },
    /// The health monitor found `endpoint` down: try to reach it once.
    Probe {
        client: u64,
        endpoint: usize,
        limit: std::time::Duration,
    },
    /// The Perl thread replaced the client's endpoint list.
    EndpointsChanged {
        client: u64,
    },
    /// Jobs issued together (by callbacks of one drain), in issue order.
    Batch(Vec<Job>),
}

/// A finished piece of work, sent back to the Perl thread. A stream sends
/// several; `last` marks the final one of a request.
pub struct Completion {
    pub req: u64,
    pub result: Result<Reply, Error>,
    pub last: bool,
}

impl Completion {
    /// The bytes of keys and values a watch response carries, counted in
    /// the backlog while it waits (POD "BACKPRESSURE"); 0 for the rest.
    pub fn weight(&self) -> usize {
        let Ok(Reply::Watch(r)) = &self.result else {
            return 0;
        };
        let kv = |k: &Option<crate::etcd::pb::mvccpb::KeyValue>| {
            k.as_ref().map_or(0, |k| k.key.len() + k.value.len())
        };
        r.events.iter().map(|e| kv(&e.kv) + kv(&e.prev_kv)).sum()
    }
}

struct ClientTasks {
    client: Arc<Client>,
    closed: watch::Sender<bool>,
    /// The watch engine, started by the first watch.
    watches: Option<mpsc::UnboundedSender<w::Cmd>>,
    barrier: Barrier,
    /// The lease keeper, started by the first keepalive.
    keeper: Option<mpsc::UnboundedSender<ka::Cmd>>,
    /// Running observations; dropping a sender stops its task.
    observes: HashMap<u64, tokio::sync::oneshot::Sender<()>>,
}

/// A sink that turns engine results into completions.
fn sink(done: &Completions) -> stream::Sink {
    let done = done.clone();
    Arc::new(move |req, result, last| done.send(Completion { req, result, last }))
}

/// The same for a task that serves request `req` alone.
fn req_sink(done: &Completions, req: u64) -> stream::ReqSink {
    let done = done.clone();
    Box::new(move |result, last| done.send(Completion { req, result, last }))
}

impl ClientTasks {
    /// Runs `work` until it ends or the client goes away.
    fn spawn_until_closed(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut closed = self.closed.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = closed.wait_for(|c| *c) => {}
                _ = work => {}
            }
        });
    }

    fn keeper(&mut self, done: &Completions) -> &mpsc::UnboundedSender<ka::Cmd> {
        let client = &self.client;
        self.keeper.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(Keeper::new(client.clone(), sink(done)).run(rx));
            tx
        })
    }

    fn watch_engine(&mut self, done: &Completions) -> &mpsc::UnboundedSender<w::Cmd> {
        let (client, barrier) = (&self.client, &self.barrier);
        self.watches.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let engine = w::Engine::new(client.clone(), sink(done), barrier.clone());
            tokio::spawn(engine.run(rx));
            tx
        })
    }
}

/// Starts the runtime thread. Returns the job sender.
pub fn spawn(
    done: crossbeam_channel::Sender<Completion>,
    notify: Arc<Notifier>,
    activity: Arc<Activity>,
    backlog: Arc<Backlog>,
) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let linger = activity.clone();
    let again = Arc::new(tokio::sync::Notify::new());
    let look_again = again.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // The flushes put off (src/etcd/connector.rs) go out when the
        // runtime has nothing left to run; after lingering, unless a job
        // came meanwhile (what it writes then joins them: the ping
        // acknowledgement owed since the last answer leaves with the
        // next request). While the answer to the one call outstanding is
        // due, the runtime yields and polls its sockets again instead of
        // sleeping: the waiting task woken here keeps it from blocking.
        .on_thread_park(move || match linger.before_park() {
            Rest::JobCame => {}
            Rest::Sleep => {
                connector::release_held();
            }
            Rest::Await => {
                if !connector::release_held() {
                    std::thread::yield_now();
                    look_again.notify_one();
                }
            }
        })
        .build()?;
    std::thread::Builder::new()
        .name("ev-etcd-runtime".into())
        .spawn(move || {
            crate::sys::process::block_sigpipe();
            connector::flush_at_park();
            rt.block_on(async move {
                tokio::spawn(waiting(again));
                serve(rx, done, notify, activity, backlog).await
            })
        })?;
    Ok(tx)
}

/// Completion side of the runtime: pushes results and coalesces wakeups of
/// the Perl thread: the flusher task runs after the tasks woken in the same
/// turn, so one burst of replies costs one write on the notify fd.
#[derive(Clone)]
struct Completions {
    tx: crossbeam_channel::Sender<Completion>,
    flush: Arc<tokio::sync::Notify>,
    notify: Arc<Notifier>,
    backlog: Arc<Backlog>,
}

impl Completions {
    fn send(&self, c: Completion) {
        trace::stamp(Stage::Queued);
        self.backlog.add(c.weight());
        if self.tx.send(c).is_ok() {
            self.flush.notify_one();
        }
    }

    /// The answer to unary call `counted`. The answer to the last call
    /// outstanding wakes the Perl thread at once: no other answer is due
    /// to share the wakeup with, so the flusher's wait is not worth it.
    fn answer(&self, c: Completion, counted: linger::Call) {
        trace::stamp(Stage::Queued);
        if self.tx.send(c).is_err() {
            return;
        }
        if counted.finish() {
            trace::stamp(Stage::Signal);
            self.notify.signal();
        } else {
            self.flush.notify_one();
        }
    }
}

/// Woken by the park hook while an answer is due (linger.rs
/// `Rest::Await`): a task to run means the runtime polls its sockets
/// without blocking, then comes back to the hook.
async fn waiting(again: Arc<tokio::sync::Notify>) {
    loop {
        again.notified().await;
    }
}

async fn flusher(flush: Arc<tokio::sync::Notify>, notify: Arc<Notifier>) {
    loop {
        flush.notified().await;
        tokio::task::yield_now().await;
        trace::stamp(Stage::Signal);
        notify.signal();
    }
}

async fn serve(
    mut rx: mpsc::UnboundedReceiver<Job>,
    done: crossbeam_channel::Sender<Completion>,
    notify: Arc<Notifier>,
    activity: Arc<Activity>,
    backlog: Arc<Backlog>,
) {
    let flush = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(flusher(flush.clone(), notify.clone()));
    let done = Completions {
        tx: done,
        flush,
        notify,
        backlog,
    };
    let mut clients: IdMap<ClientTasks> = IdMap::default();
    let mut batch = Vec::with_capacity(256);
    let mut groups = Groups::default();
    while rx.recv_many(&mut batch, 256).await > 0 {
        for job in batch.drain(..) {
            handle(job, &mut clients, &done, &mut groups, &activity);
        }
        groups.start(&done);
    }
}

/// Unary calls that arrived together, by client: each client's group runs
/// in one task with one timer (`run_group`), where a task and a timer per
/// call would cost more than the call's own work on the runtime thread.
#[derive(Default)]
struct Groups(Vec<Group>);

struct Group {
    client: Arc<Client>,
    id: u64,
    /// Each call with its request id and the guard that counts it held.
    calls: Vec<(u64, Call, linger::Call)>,
    /// The latest of the calls' deadlines (they reached the runtime
    /// together, so they differ by the time between their issue).
    deadline: std::time::Instant,
}

impl Groups {
    fn add(
        &mut self,
        live: &ClientTasks,
        id: u64,
        req: u64,
        call: Call,
        deadline: std::time::Instant,
        held: linger::Call,
    ) {
        let at = match self.0.iter().position(|g| g.id == id) {
            Some(i) => i,
            None => {
                self.0.push(Group {
                    client: live.client.clone(),
                    id,
                    calls: Vec::new(),
                    deadline,
                });
                self.0.len() - 1
            }
        };
        let g = &mut self.0[at];
        g.calls.push((req, call, held));
        g.deadline = g.deadline.max(deadline);
    }

    fn start(&mut self, done: &Completions) {
        for g in self.0.drain(..) {
            tokio::spawn(run_group(g, done.clone()));
        }
    }
}

/// Runs a group's calls concurrently, reporting each as it ends; whatever
/// is still running at the deadline is dropped (its streams reset) and
/// reported as DEADLINE_EXCEEDED, as `Client::send` does for one call.
async fn run_group(g: Group, done: Completions) {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Group {
        client,
        calls,
        deadline,
        ..
    } = g;
    let deadline = tokio::time::Instant::from_std(deadline);
    let at: Arc<[AtomicUsize]> = calls
        .iter()
        .map(|_| AtomicUsize::new(crate::etcd::client::NO_ENDPOINT))
        .collect();
    let mut open: Vec<Option<(u64, linger::Call)>> = Vec::with_capacity(calls.len());
    // Groupable clients have no token: one set of call options serves all.
    let opts = Arc::new(client.current_opts().0);
    let mut running: FuturesUnordered<_> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (req, call, held))| {
            open.push(Some((req, held)));
            let (client, at, opts) = (client.clone(), at.clone(), opts.clone());
            async move {
                trace::stamp(Stage::Send);
                let r = client.unary_grouped(call, &opts, deadline, &at[i]).await;
                trace::stamp(Stage::Answer);
                (i, r)
            }
        })
        .collect();
    let expired = tokio::time::sleep_until(deadline);
    tokio::pin!(expired);
    loop {
        tokio::select! {
            biased;
            next = running.next() => match next {
                Some((i, result)) => {
                    if let Some((req, held)) = open[i].take() {
                        done.answer(Completion { req, result, last: true }, held);
                    }
                }
                None => return,
            },
            _ = &mut expired => break,
        }
    }
    drop(running);
    for (i, entry) in open.into_iter().enumerate() {
        if let Some((req, held)) = entry {
            client.unanswered(at[i].load(Ordering::Relaxed));
            let c = Completion {
                req,
                result: Err(Error::deadline()),
                last: true,
            };
            done.answer(c, held);
        }
    }
}

fn handle(
    job: Job,
    clients: &mut IdMap<ClientTasks>,
    done: &Completions,
    groups: &mut Groups,
    activity: &Arc<Activity>,
) {
    match job {
        Job::Batch(jobs) => {
            for j in jobs {
                handle(j, clients, done, groups, activity);
            }
        }
        Job::NewClient { id, cfg } => {
            let (closed, _) = watch::channel(false);
            let tasks = ClientTasks {
                client: Arc::new(Client::new(*cfg)),
                closed,
                watches: None,
                barrier: Barrier::default(),
                keeper: None,
                observes: HashMap::new(),
            };
            let notify = done.notify.clone();
            let wake = move || notify.signal();
            tasks.client.events().set_wake(Box::new(wake));
            tasks.spawn_until_closed(leader::check(tasks.client.clone()));
            tasks.spawn_until_closed(leader::auto_sync(tasks.client.clone()));
            clients.insert(id, tasks);
        }
        Job::Keepalive { client, cmd } => {
            if let Some(live) = clients.get_mut(&client) {
                let _ = live.keeper(done).send(cmd);
            }
        }
        Job::Observe {
            client,
            req,
            name,
            auto_reconnect,
        } => {
            let Some(live) = clients.get_mut(&client) else {
                return;
            };
            let (stop, stopped) = tokio::sync::oneshot::channel();
            live.observes.insert(req, stop);
            tokio::spawn(observe::observe(
                live.client.clone(),
                name,
                auto_reconnect,
                req_sink(done, req),
                stopped,
            ));
        }
        Job::Snapshot {
            client,
            req,
            target,
            member,
        } => {
            let Some(live) = clients.get(&client) else {
                return;
            };
            let sink = req_sink(done, req);
            let work = snapshot::snapshot(live.client.clone(), target, member, sink);
            live.spawn_until_closed(work);
        }
        Job::ObserveCancel { client, req } => {
            if let Some(live) = clients.get_mut(&client) {
                live.observes.remove(&req);
            }
        }
        Job::Watch { client, mut cmd } => {
            let Some(live) = clients.get_mut(&client) else {
                return;
            };
            if let w::Cmd::Create { seq, .. } = &mut cmd {
                *seq = live.barrier.next();
            }
            let _ = live.watch_engine(done).send(cmd);
        }
        Job::DropClient { id } => {
            if let Some(live) = clients.remove(&id) {
                let _ = live.closed.send(true);
                live.client.close();
            }
        }
        Job::EndpointsChanged { client } => {
            if let Some(live) = clients.get(&client) {
                live.client.endpoints_changed();
            }
        }
        Job::Probe {
            client,
            endpoint,
            limit,
        } => {
            let Some(live) = clients.get(&client) else {
                return;
            };
            let c = live.client.clone();
            live.spawn_until_closed(async move { c.probe(endpoint, limit).await });
        }
        Job::Unary {
            client,
            req,
            call,
            deadline,
            solo,
            cancel,
            member,
        } => {
            trace::stamp(Stage::Pickup);
            let Some(live) = clients.get(&client) else {
                return;
            };
            let counted = activity.call();
            Counters::add(&live.client.events().counters.requests, 1);
            // Ordered after the watches created before it (see Barrier).
            let barrier = live.barrier.wait();
            if barrier.is_none() && !solo && cancel.is_none() && live.client.groupable(&call) {
                groups.add(live, client, req, call, deadline, counted);
                return;
            }
            // Calls are sent in the order they were made.
            groups.start(done);
            let c = live.client.clone();
            // A call the server may hold for long (lock, campaign) is
            // abandoned when the client goes; others just run out.
            let mut closed = call.may_block().then(|| live.closed.subscribe());
            let held = cancel.as_ref().and_then(|_| call.held_key());
            let done = done.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::from_std(deadline);
                let started = std::sync::atomic::AtomicBool::new(false);
                let run = async {
                    started.store(true, std::sync::atomic::Ordering::Relaxed);
                    // A deadline already past (a tiny per-call timeout):
                    // nothing is sent.
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Error::deadline());
                    }
                    if let Some(wait) = barrier {
                        if tokio::time::timeout_at(deadline, wait).await.is_err() {
                            return Err(Error::deadline());
                        }
                    }
                    // Boxed: the spawned future stays small (no large copies).
                    match member {
                        None => Box::pin(c.unary(call, deadline)).await,
                        Some(ep) => Box::pin(c.unary_on(ep, call, deadline)).await,
                    }
                };
                let closing = async {
                    match closed.as_mut() {
                        Some(closed) => drop(closed.wait_for(|c| *c).await),
                        None => std::future::pending().await,
                    }
                };
                let cancelled = async {
                    match cancel {
                        // Sent, or dropped with its request: either way
                        // nobody waits for the answer any more.
                        Some(rx) => drop(rx.await),
                        None => std::future::pending().await,
                    }
                };
                let (mut run, mut closing) = (Box::pin(run), Box::pin(closing));
                let result = tokio::select! {
                    biased;
                    _ = &mut closing => return,
                    _ = cancelled => None,
                    r = &mut run => Some(r),
                };
                let Some(result) = result else {
                    // Cancelled: the key goes, the caller hears so at once,
                    // and the call itself goes on (a lock the server is
                    // granting this moment would otherwise be put back
                    // after the delete): what it is granted is given back.
                    if let Some(key) = held {
                        withdraw(&c, key, c.cfg.timeout).await;
                    }
                    let c2 = Completion {
                        req,
                        result: Err(Error::cancelled()),
                        last: true,
                    };
                    done.answer(c2, counted);
                    // Never sent: nothing can be granted.
                    if !started.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    tokio::select! {
                        biased;
                        _ = &mut closing => {}
                        r = &mut run => {
                            if let Ok(granted) = r {
                                give_back(&c, granted).await;
                            }
                        }
                    }
                    return;
                };
                // A lock or campaign that ran out of time: its key goes
                // before the caller hears of it, so the abandoned request
                // cannot be granted behind its back (the server also drops
                // it when it sees the stream reset, but later). Briefly: a
                // cluster out of reach must not delay the answer much.
                if let (Some(key), Err(e)) = (held, &result) {
                    if e.code == crate::etcd::error::DEADLINE_EXCEEDED {
                        withdraw(&c, key, WITHDRAW_AFTER_TIMEOUT).await;
                    }
                }
                done.answer(
                    Completion {
                        req,
                        result,
                        last: true,
                    },
                    counted,
                );
            });
        }
    }
}

/// Releases what a cancelled lock or campaign was granted (unlock,
/// resign), bounded by the client's timeout.
async fn give_back(c: &Client, granted: Reply) {
    let Some(release) = granted.release() else {
        return;
    };
    let _ = c
        .unary(release, tokio::time::Instant::now() + c.cfg.timeout)
        .await;
}

/// How long a lock or campaign that ran out of time may spend deleting
/// its key before its callback hears of the timeout.
const WITHDRAW_AFTER_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Deletes the key a cancelled or timed-out lock or campaign held or
/// waited with, so the server neither grants it later nor keeps what it
/// granted. Bounded by `limit`; failing that, the key goes with its lease.
async fn withdraw(c: &Client, key: Vec<u8>, limit: std::time::Duration) {
    use crate::etcd::pb::etcdserverpb::DeleteRangeRequest;
    let deadline = tokio::time::Instant::now() + limit;
    let del = Call::DeleteRange(DeleteRangeRequest {
        key,
        ..Default::default()
    });
    let _ = c.unary(del, deadline).await;
}

//! The thread boundary. The runtime side lives in runtime.rs; this file is
//! the Perl-thread side: the process's one bridge (job sender, completion
//! queue, notify fd), the registry of clients and of outstanding callbacks,
//! and the drain that turns completions into callback calls. Everything
//! here runs on the Perl thread; borrows of the registry are never held
//! while Perl code runs, so callbacks may re-enter freely (new requests,
//! destroying the client, nested loops).
#![forbid(unsafe_code)]

pub mod notify;
pub mod runtime;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::etcd::call::Call;
use crate::etcd::client::Config;
use crate::etcd::endpoints::EndpointStates;
use crate::etcd::health::Monitor;
use crate::etcd::keepalive::Cmd as KeepaliveCmd;
use crate::etcd::watch::{Cmd as WatchCmd, WatchSpec};
use crate::perl::convert;
use crate::perl::{NewSv, Perl, SvBox};

use runtime::{Completion, Job};

/// Completions handled per drain before yielding back to the loop.
const MAX_BATCH: usize = 4096;

/// Requests issued by callbacks go out at least this often during a long
/// drain, so the first ones do not wait for the whole batch.
const FLUSH_EVERY: usize = 32;

struct Bridge {
    jobs: UnboundedSender<Job>,
    done_rx: crossbeam_channel::Receiver<Completion>,
    notify: Arc<notify::Notifier>,
    wake: notify::Receiver,
    pid: u32,
}

impl Bridge {
    fn send(&self, job: Job) -> Result<(), String> {
        self.jobs
            .send(job)
            .map_err(|_| "EV::Etcd: the runtime thread is gone".to_owned())
    }

    fn start() -> std::io::Result<Bridge> {
        let (n, wake) = notify::pair()?;
        let notify = Arc::new(n);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let jobs = runtime::spawn(done_tx, notify.clone())?;
        Ok(Bridge {
            jobs,
            done_rx,
            notify,
            wake,
            pid: crate::sys::process::pid(),
        })
    }
}

/// What a client entry on the Perl side remembers.
struct ClientEntry {
    /// Address of the Perl object's inner scalar (`set_client_tag`): a
    /// forged object with the same id is not this client.
    tag: usize,
    pid: u32,
    timeout: Duration,
    namespaced: bool,
    endpoints: Vec<String>,
    state: Arc<EndpointStates>,
    monitor: Monitor,
}

/// An outstanding request or stream: its callback and its error `source`
/// label. The callback is shared so a stream's callback can run while its
/// entry stays registered (and may be cancelled from inside the callback).
struct Pending {
    client: u64,
    cb: Option<Rc<SvBox>>,
    /// Called instead of `cb` with `($error)` when the stream ends with an
    /// error (a managed keepalive's `on_lost`).
    on_err: Option<Rc<SvBox>>,
    /// Called instead of `cb` with `($item)` for each message before the
    /// last (a snapshot's chunks).
    on_item: Option<Rc<SvBox>>,
    label: &'static str,
}

/// Hashes the ids this module hands out (sequential numbers) with one
/// multiplication: SipHash's resistance to chosen keys buys nothing here,
/// and these maps are consulted several times per request.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct Registry {
    bridge: Option<Bridge>,
    clients: IdMap<ClientEntry>,
    pending: IdMap<Pending>,
    next_id: u64,
    keepalive_on: bool,
    /// Jobs issued by callbacks during a drain, sent as one batch when the
    /// drain ends (or when the loop is about to block: `flush`), so a burst
    /// of completions yields one wakeup of the runtime, not one per request.
    outbox: Vec<Job>,
    draining: u32,
    /// Callbacks due on the next drain with `({}, undef)` (cancel).
    deferred: VecDeque<SvBox>,
    /// In a forked child: ids up to this one were issued by an ancestor.
    inherited_below: u64,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|m| f(&mut m.borrow_mut()))
}

/// What a forked child inherited from its parent's bridge and must neither
/// call nor send: the parent's outstanding callbacks, its cancel callbacks
/// and its unsent jobs.
type Inherited = (Vec<Pending>, VecDeque<SvBox>, Vec<Job>);

/// The notify fd of this process's bridge, starting the bridge (and its
/// runtime thread) on first use, and again in a forked child.
pub fn notify_fd() -> Result<RawFd, String> {
    let (fd, inherited) = with(|m| {
        let pid = crate::sys::process::pid();
        let mut inherited: Option<Inherited> = None;
        if m.bridge.as_ref().map(|b| b.pid) != Some(pid) {
            // A bridge inherited over fork has no runtime thread: replace it
            // (its sockets close; the dead thread's handles are not touched).
            if let Some(old) = m.bridge.take() {
                std::mem::forget(old.jobs);
                // The parent's requests will never complete here: forget
                // them, or the child's loop would be kept alive by them
                // forever (and its cancel callbacks would run in the child).
                // Everything with an id up to here belongs to the parent.
                m.inherited_below = m.next_id;
                m.keepalive_on = false;
                inherited = Some((
                    m.pending.drain().map(|(_, v)| v).collect(),
                    std::mem::take(&mut m.deferred),
                    std::mem::take(&mut m.outbox),
                ));
            }
            m.bridge = Some(
                Bridge::start()
                    .map_err(|e| format!("EV::Etcd: cannot start the runtime thread: {e}"))?,
            );
        }
        Ok::<_, String>((
            m.bridge.as_ref().map(|b| b.wake.fd()).unwrap_or(-1),
            inherited,
        ))
    })?;
    // Released outside the borrow: freeing a closure may run DESTROY code.
    drop(inherited);
    Ok(fd)
}

/// Registers a new client and hands its settings to the runtime.
pub fn new_client(cfg: Config) -> Result<u64, String> {
    notify_fd()?;
    with(|m| {
        m.next_id += 1;
        let id = m.next_id;
        m.clients.insert(
            id,
            ClientEntry {
                tag: 0,
                pid: crate::sys::process::pid(),
                timeout: cfg.timeout,
                namespaced: !cfg.namespace.is_empty(),
                endpoints: cfg.endpoints.clone(),
                state: cfg.state.clone(),
                monitor: Monitor::new(&cfg.state),
            },
        );
        let b = m.bridge.as_ref().ok_or("EV::Etcd: no runtime")?;
        b.send(Job::NewClient { id, cfg })?;
        Ok(id)
    })
}

/// Forgets a client: its outstanding callbacks are dropped without being
/// called (POD "DESTRUCTION") and the runtime cancels its work.
pub fn drop_client(p: &Perl, id: u64) {
    let dropped: Vec<Pending> = with(|m| {
        let Some(entry) = m.clients.remove(&id) else {
            return Vec::new();
        };
        if entry.pid == crate::sys::process::pid() {
            if let Some(b) = &m.bridge {
                let _ = b.send(Job::DropClient { id });
            }
        }
        let reqs: Vec<u64> = m
            .pending
            .iter()
            .filter(|(_, v)| v.client == id)
            .map(|(k, _)| *k)
            .collect();
        reqs.into_iter()
            .filter_map(|r| m.pending.remove(&r))
            .collect()
    });
    // Released outside the borrow: freeing a closure may run DESTROY code.
    drop(dropped);
    sync_keepalive(p);
}

/// Records the identity of client `id`'s Perl object.
pub fn set_client_tag(id: u64, tag: usize) {
    with(|m| {
        if let Some(c) = m.clients.get_mut(&id) {
            c.tag = tag;
        }
    });
}

/// False when `id` names a live client whose object is another one (a
/// forged `bless \$id, 'EV::Etcd'`); true otherwise.
pub fn client_tag_ok(id: u64, tag: usize) -> bool {
    with(|m| m.clients.get(&id).is_none_or(|c| c.tag == tag))
}

/// Checks that `id` is a live client of this process.
pub fn check_client(id: u64) -> Result<(), String> {
    with(|m| live_client(m, id).map(|_| ()))
}

fn live_client(m: &Registry, id: u64) -> Result<&ClientEntry, String> {
    match m.clients.get(&id) {
        None => Err("EV::Etcd: client has been destroyed".to_owned()),
        Some(c) if c.pid != crate::sys::process::pid() => Err(format!(
            "EV::Etcd: this client was created in process {} and cannot be used after fork; create a new client in the child",
            c.pid
        )),
        Some(c) => Ok(c),
    }
}

/// Whether the client has a namespace (a prefix of the empty key then
/// means the whole namespace, see src/xs/kv.rs `range_end`).
pub fn namespaced(client: u64) -> bool {
    with(|m| m.clients.get(&client).is_some_and(|c| c.namespaced))
}

/// Sends a unary call; `cb` is called once, from the loop, with the result
/// (errors name the call's source, from its row of the call table).
pub fn submit(p: &Perl, client: u64, call: Call, cb: SvBox) -> Result<(), String> {
    let now = Instant::now();
    enqueue_with(p, client, call.label(), Some(cb), None, |req, timeout| {
        Job::Unary {
            client,
            req,
            call,
            deadline: now + timeout,
        }
    })?;
    Ok(())
}

/// Registers `cb` under a new request id and sends the job `make` builds
/// for it (buffered while a drain runs). Returns the request id.
fn enqueue(
    p: &Perl,
    client: u64,
    label: &'static str,
    cb: SvBox,
    make: impl FnOnce(u64) -> Job,
) -> Result<u64, String> {
    enqueue_with(p, client, label, Some(cb), None, |req, _| make(req))
}

/// `enqueue` with an optional callback and error callback; `make` gets the
/// request id and the client's timeout.
fn enqueue_with(
    p: &Perl,
    client: u64,
    label: &'static str,
    cb: Option<SvBox>,
    on_err: Option<SvBox>,
    make: impl FnOnce(u64, Duration) -> Job,
) -> Result<u64, String> {
    // An argument whose conversion died was read as "0": send nothing.
    p.check()?;
    let req = with(|m| {
        let timeout = live_client(m, client)?.timeout;
        m.next_id += 1;
        let req = m.next_id;
        queue(m, make(req, timeout))?;
        m.pending.insert(
            req,
            Pending {
                client,
                cb: cb.map(Rc::new),
                on_err: on_err.map(Rc::new),
                on_item: None,
                label,
            },
        );
        Ok::<_, String>(req)
    })?;
    sync_keepalive(p);
    Ok(req)
}

/// Sends a job that carries no callback of its own (buffered like the rest).
fn send_plain(job: Job) {
    with(|m| {
        let _ = queue(m, job);
    });
}

/// Starts a watch; `cb` gets every message until the watch ends. Returns
/// the request id the watch handle holds.
pub fn watch(p: &Perl, client: u64, spec: WatchSpec, cb: SvBox) -> Result<u64, String> {
    enqueue(p, client, "watch", cb, |req| Job::Watch {
        client,
        cmd: WatchCmd::Create { req, seq: 0, spec },
    })
}

/// Checks that the stream `req` (a watch, observe or keepalive handle) was
/// started by this process: a handle inherited over fork belongs to the
/// parent's runtime.
pub fn check_stream(req: u64) -> Result<(), String> {
    with(|m| {
        let pid = crate::sys::process::pid();
        let ours = m.bridge.as_ref().map(|b| b.pid) == Some(pid) && req > m.inherited_below;
        if ours {
            Ok(())
        } else {
            Err("EV::Etcd: this handle was created in another process and cannot be used after fork; create a new client in the child".to_owned())
        }
    })
}

/// `$watch->cancel($cb)`: no callback of the watch runs after this;
/// `cb({}, undef)` runs once from the loop, whatever state the watch is in.
pub fn cancel_watch(p: &Perl, req: u64, cb: SvBox) -> Result<(), String> {
    cancel_stream(
        p,
        req,
        ("watch", "watch is not of type EV::Etcd::Watch"),
        Some(cb),
        |client| Job::Watch {
            client,
            cmd: WatchCmd::Cancel { req },
        },
    )
}

/// `$observe->cancel($cb)`, like a watch's.
pub fn cancel_observe(p: &Perl, req: u64, cb: SvBox) -> Result<(), String> {
    cancel_stream(
        p,
        req,
        ("observe", "observe is not of type EV::Etcd::Observe"),
        Some(cb),
        |client| Job::ObserveCancel { client, req },
    )
}

/// `$keepalive->stop`: renewals end; nothing is called back.
pub fn stop_keepalive(p: &Perl, req: u64) -> Result<(), String> {
    cancel_stream(
        p,
        req,
        ("keepalive", "keepalive is not of type EV::Etcd::Keepalive"),
        None,
        |client| Job::Keepalive {
            client,
            cmd: KeepaliveCmd::Stop { req },
        },
    )
}

/// Ends stream `req` on the Perl side at once (no callback of it runs
/// after this), tells the runtime with the job `stop` builds, and queues
/// `cb({}, undef)` for the next drain.
fn cancel_stream(
    p: &Perl,
    req: u64,
    (label, not_this): (&'static str, &'static str),
    cb: Option<SvBox>,
    stop: impl FnOnce(u64) -> Job,
) -> Result<(), String> {
    check_stream(req)?;
    // A forged handle must not end another request (a unary call would
    // then never be called back) or a client.
    let other = with(|m| {
        m.clients.contains_key(&req) || m.pending.get(&req).is_some_and(|pd| pd.label != label)
    });
    if other {
        return Err(not_this.to_owned());
    }
    // An argument whose conversion died: do nothing.
    p.check()?;
    let gone = with(|m| {
        let gone = m.pending.remove(&req);
        if let Some(cb) = cb {
            m.deferred.push_back(cb);
            if let Some(b) = &m.bridge {
                b.notify.force();
            }
        }
        gone
    });
    if let Some(pd) = &gone {
        if with(|m| m.clients.contains_key(&pd.client)) {
            send_plain(stop(pd.client));
        }
    }
    drop(gone);
    sync_keepalive(p);
    Ok(())
}

/// `lease_keepalive`: one request, one callback.
pub fn lease_keepalive(p: &Perl, client: u64, id: i64, cb: SvBox) -> Result<(), String> {
    enqueue(p, client, "keepalive", cb, |req| Job::Keepalive {
        client,
        cmd: KeepaliveCmd::Once { req, id },
    })?;
    Ok(())
}

/// `lease_keepalive_start`: renewals until stopped or lost. Returns the
/// request id the handle holds.
pub fn keepalive_start(
    p: &Perl,
    client: u64,
    id: i64,
    cb: Option<SvBox>,
    on_lost: Option<SvBox>,
) -> Result<u64, String> {
    enqueue_with(p, client, "keepalive", cb, on_lost, |req, _| {
        Job::Keepalive {
            client,
            cmd: KeepaliveCmd::Start { req, id },
        }
    })
}

/// `snapshot`: `on_chunk` (if any) gets each piece, `cb` the end.
pub fn snapshot(
    p: &Perl,
    client: u64,
    target: crate::etcd::snapshot::Target,
    on_chunk: Option<SvBox>,
    cb: SvBox,
) -> Result<(), String> {
    let req = enqueue(p, client, "snapshot", cb, |req| Job::Snapshot {
        client,
        req,
        target,
    })?;
    with(|m| {
        if let Some(pd) = m.pending.get_mut(&req) {
            pd.on_item = on_chunk.map(Rc::new);
        }
    });
    Ok(())
}

/// `election_observe`: the leader's changes until cancelled.
pub fn observe(
    p: &Perl,
    client: u64,
    name: Vec<u8>,
    auto_reconnect: bool,
    cb: SvBox,
) -> Result<u64, String> {
    enqueue(p, client, "observe", cb, |req| Job::Observe {
        client,
        req,
        name,
        auto_reconnect,
    })
}

/// `$watch->request_progress`: asks the server for a progress message.
pub fn watch_progress(req: u64) {
    if let Some(client) = with(|m| m.pending.get(&req).map(|pd| pd.client)) {
        send_plain(Job::Watch {
            client,
            cmd: WatchCmd::Progress { req },
        });
    }
}

/// One tick of a client's health monitor (POD "HEALTH MONITORING"), run by the .pm's
/// timer: `Some((healthy, endpoint))` when the state changed. A down
/// endpoint gets one background probe of at most `limit`.
pub fn health_tick(client: u64, limit: Duration) -> Option<(bool, String)> {
    check_client(client).ok()?;
    with(|m| {
        let c = m.clients.get_mut(&client)?;
        let t = c.monitor.tick(&c.state);
        let name = c.endpoints.get(t.endpoint).cloned().unwrap_or_default();
        if t.probe {
            let job = Job::Probe {
                client,
                endpoint: t.endpoint,
                limit,
            };
            if let Some(b) = &m.bridge {
                let _ = b.send(job);
            }
        }
        let host_port = name
            .strip_prefix("https://")
            .or_else(|| name.strip_prefix("http://"))
            .unwrap_or(&name)
            .to_owned();
        t.change.map(|h| (h, host_port))
    })
}

/// Keeps the loop alive exactly while something is outstanding (a request,
/// a stream, or a callback due on the next drain).
fn sync_keepalive(p: &Perl) {
    let change = with(|m| {
        let want = !m.pending.is_empty() || !m.deferred.is_empty();
        (want != m.keepalive_on).then(|| {
            m.keepalive_on = want;
            want
        })
    });
    if let Some(on) = change {
        if crate::perl::sv::perl_alive() {
            p.call_named(c"EV::Etcd::_keepalive", i64::from(on));
        }
    }
}

/// Sends `job` now, or with the batch when a drain is running.
fn queue(m: &mut Registry, job: Job) -> Result<(), String> {
    if m.draining > 0 {
        m.outbox.push(job);
        Ok(())
    } else {
        m.bridge.as_ref().ok_or("EV::Etcd: no runtime")?.send(job)
    }
}

/// Sends the jobs buffered during a drain. Also called by the .pm's prepare
/// watcher, so a callback that runs a nested loop never waits on its own
/// unsent request.
pub fn flush() {
    with(|m| {
        if !m.outbox.is_empty() {
            let batch = std::mem::take(&mut m.outbox);
            if let Some(b) = &m.bridge {
                let _ = b.send(Job::Batch(batch));
            }
        }
    });
}

/// Runs the callbacks of every completion that has arrived (called by the
/// `EV::io` watcher on the notify fd).
pub fn drain(p: &Perl) {
    with(|m| m.draining += 1);
    run_deferred(p);
    drain_batch(p);
    run_deferred(p);
    with(|m| m.draining -= 1);
    flush();
    sync_keepalive(p);
}

fn run_deferred(p: &Perl) {
    while let Some(cb) = with(|m| m.deferred.pop_front()) {
        p.call_cb(&cb, vec![p.new_hash().finish(), NewSv::undef()]);
    }
}

fn drain_batch(p: &Perl) {
    let ok = with(|m| match &m.bridge {
        Some(b) if b.pid == crate::sys::process::pid() => {
            b.wake.clear();
            b.notify.disarm();
            true
        }
        _ => false,
    });
    if !ok {
        return;
    }
    for i in 0..MAX_BATCH {
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            flush();
        }
        let next = with(|m| {
            let done = m.bridge.as_ref()?.done_rx.try_recv().ok()?;
            let entry = if done.last {
                m.pending
                    .remove(&done.req)
                    .map(|pd| (pd.cb, pd.on_err, pd.on_item, pd.label))
            } else {
                m.pending.get(&done.req).map(|pd| {
                    (
                        pd.cb.clone(),
                        pd.on_err.clone(),
                        pd.on_item.clone(),
                        pd.label,
                    )
                })
            };
            Some((done, entry))
        });
        let Some((done, entry)) = next else { return };
        let Some((cb, on_err, on_item, label)) = entry else {
            continue;
        };
        let (cb, args) = match (&done.result, on_err, on_item) {
            (Err(e), Some(f), _) => (Some(f), vec![convert::error(p, e, label)]),
            (Ok(reply), _, Some(f)) if !done.last => (Some(f), vec![convert::reply(p, reply)]),
            (Ok(reply), _, _) => (cb, vec![convert::reply(p, reply), NewSv::undef()]),
            (Err(e), None, _) => (cb, vec![NewSv::undef(), convert::error(p, e, label)]),
        };
        drop(done);
        if let Some(cb) = &cb {
            p.call_cb(cb, args);
        }
        drop(cb);
    }
    // Work left behind: make the fd readable again so the loop comes back.
    with(|m| {
        if let Some(b) = &m.bridge {
            b.notify.force();
        }
    });
}

/// END-time teardown: releases every stored callback while the interpreter
/// is still whole; later drops leak instead of touching a dying interpreter.
pub fn shutdown() {
    let pending: Vec<Pending> = with(|m| m.pending.drain().map(|(_, v)| v).collect());
    let deferred: Vec<SvBox> = with(|m| m.deferred.drain(..).collect());
    drop(pending);
    drop(deferred);
    crate::perl::mark_perl_dead();
}

//! The Perl thread's registry: the process's bridge, the clients, and each
//! outstanding request's kind and callbacks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::{Bridge, IdMap, Job};
use crate::etcd::client::Config;
use crate::etcd::endpoints::EndpointStates;
use crate::etcd::events::Stamped;
use crate::etcd::health::Monitor;
use crate::perl::{Perl, SvBox};

/// What a client entry on the Perl side remembers.
pub(super) struct ClientEntry {
    /// Address of the Perl object's inner scalar (`set_client_tag`): a
    /// forged object with the same id is not this client.
    tag: usize,
    pub pid: u32,
    pub timeout: Duration,
    namespaced: bool,
    tls: bool,
    state: Arc<EndpointStates>,
    monitor: Monitor,
    /// `on_event` (POD "EVENTS AND COUNTERS").
    on_event: Option<Rc<SvBox>>,
}

/// What an outstanding request is: it names the error's `source`, and a
/// stream handle may end only a request of its own kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// A unary call, by its row's label in the call table.
    Unary(&'static str),
    Watch,
    Observe,
    /// `lease_keepalive`: one request, one answer.
    KeepaliveOnce,
    /// `lease_keepalive_start`: renewals until stopped or lost.
    Keepalive,
    Snapshot,
}

impl Kind {
    /// The `source` of its errors.
    pub fn source(self) -> &'static str {
        match self {
            Kind::Unary(label) => label,
            Kind::Watch => "watch",
            Kind::Observe => "observe",
            Kind::KeepaliveOnce | Kind::Keepalive => "keepalive",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// Where an outstanding request's results go. The callbacks are shared so
/// a stream's callback can run while its entry stays registered (and may be
/// cancelled from inside the callback).
#[derive(Clone)]
pub(super) enum Delivery {
    /// `cb($result, undef)` or `cb(undef, $error)`, for every message.
    Callback(Rc<SvBox>),
    /// A managed keepalive: each renewal to `cb($result, undef)`; the end
    /// to `on_lost($error)`, or without it to `cb(undef, $error)`.
    Keepalive {
        cb: Option<Rc<SvBox>>,
        on_lost: Option<Rc<SvBox>>,
    },
    /// A snapshot: each chunk to `on_chunk($chunk)`, the end to `cb`.
    Snapshot {
        cb: Rc<SvBox>,
        on_chunk: Option<Rc<SvBox>>,
    },
}

/// An outstanding request or stream.
pub(super) struct Pending {
    pub client: u64,
    pub kind: Kind,
    pub delivery: Delivery,
    /// A lock or campaign that may be cancelled: the runtime's end of it
    /// (taken by `cancel`).
    pub cancel: Option<tokio::sync::oneshot::Sender<()>>,
    /// `cancel` was called: whatever the call's answer, its callback gets
    /// CANCELLED, and a lock or leadership it was granted is released.
    pub cancelled: bool,
    /// Counted by the waiter (wait.rs): a call whose answer is due.
    pub due: bool,
}

#[derive(Default)]
pub(super) struct Registry {
    pub bridge: Option<Bridge>,
    pub clients: IdMap<ClientEntry>,
    pub pending: IdMap<Pending>,
    pub next_id: u64,
    keepalive_on: bool,
    /// Jobs issued by callbacks during a drain, sent as one batch when the
    /// drain ends (or when the loop is about to block: `flush`), so a burst
    /// of completions yields one wakeup of the runtime, not one per request.
    pub outbox: Vec<Job>,
    pub draining: u32,
    /// Callbacks due on the next drain with `({}, undef)` (cancel).
    pub deferred: VecDeque<SvBox>,
    /// In a forked child: ids up to this one were issued by an ancestor.
    inherited_below: u64,
    /// Clients with an `on_event` listener.
    pub listeners: usize,
    /// The calls whose answer the loop may wait for (wait.rs).
    pub waiter: super::wait::Waiter,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

pub(super) fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
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
        let mut inherited: Option<Inherited> = None;
        if !m.bridge.as_ref().is_some_and(Bridge::ours) {
            // A bridge inherited over fork has no runtime thread: replace it
            // (its sockets close; the dead thread's handles are not touched).
            if let Some(old) = m.bridge.take() {
                old.abandon();
                // The parent's requests will never complete here: forget
                // them, or the child's loop would be kept alive by them
                // forever (and its cancel callbacks would run in the child).
                // Everything with an id up to here belongs to the parent.
                m.inherited_below = m.next_id;
                m.keepalive_on = false;
                m.waiter = Default::default();
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
        Ok::<_, String>((m.bridge.as_ref().map_or(-1, Bridge::fd), inherited))
    })?;
    // Released outside the borrow: freeing a closure may run DESTROY code.
    drop(inherited);
    Ok(fd)
}

/// Registers a new client and hands its settings to the runtime.
pub fn new_client(mut cfg: Config, on_event: Option<SvBox>) -> Result<u64, String> {
    notify_fd()?;
    with(|m| {
        m.next_id += 1;
        let id = m.next_id;
        m.listeners += usize::from(on_event.is_some());
        m.clients.insert(
            id,
            ClientEntry {
                tag: 0,
                pid: crate::sys::process::pid(),
                timeout: cfg.timeout,
                namespaced: !cfg.namespace.is_empty(),
                tls: cfg.tls.is_some(),
                state: cfg.state.clone(),
                monitor: Monitor::new(&cfg.state),
                on_event: on_event.map(Rc::new),
            },
        );
        let b = m.bridge.as_ref().ok_or("EV::Etcd: no runtime")?;
        cfg.backlog = Some(b.backlog());
        b.send(Job::NewClient {
            id,
            cfg: Box::new(cfg),
        })?;
        Ok(id)
    })
}

/// Forgets a client: its outstanding callbacks are dropped without being
/// called (POD "DESTRUCTION") and the runtime cancels its work.
pub fn drop_client(p: &Perl, id: u64) {
    let dropped: (Vec<Pending>, Option<Rc<SvBox>>) = with(|m| {
        let Some(mut entry) = m.clients.remove(&id) else {
            return (Vec::new(), None);
        };
        let on_event = entry.on_event.take();
        m.listeners -= usize::from(on_event.is_some());
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
        let pending: Vec<Pending> = reqs
            .into_iter()
            .filter_map(|r| m.pending.remove(&r))
            .collect();
        for _ in pending.iter().filter(|pd| pd.due) {
            m.waiter.forget();
        }
        (pending, on_event)
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

pub(super) fn live_client(m: &Registry, id: u64) -> Result<&ClientEntry, String> {
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

/// The client's endpoint list and whether it speaks TLS.
pub fn endpoints(id: u64) -> Result<(Vec<String>, bool), String> {
    with(|m| live_client(m, id).map(|c| (c.state.names(), c.tls)))
}

/// Replaces the client's endpoint list (checked by the caller); the runtime
/// then lets go of the endpoints no longer listed.
pub fn set_endpoints(id: u64, names: Vec<String>) -> Result<(), String> {
    with(|m| {
        if live_client(m, id)?.state.replace(names) {
            super::submit::queue(m, Job::EndpointsChanged { client: id })?;
        }
        Ok(())
    })
}

/// Checks that the stream `req` (a watch, observe or keepalive handle) was
/// started by this process: a handle inherited over fork belongs to the
/// parent's runtime.
pub fn check_stream(req: u64) -> Result<(), String> {
    with(|m| {
        let ours = m.bridge.as_ref().is_some_and(Bridge::ours) && req > m.inherited_below;
        if ours {
            Ok(())
        } else {
            Err("EV::Etcd: this handle was created in another process and cannot be used after fork; create a new client in the child".to_owned())
        }
    })
}

/// One tick of a client's health monitor (POD "HEALTH MONITORING"), run by
/// the .pm's timer: `Some((healthy, endpoint))` when the state changed. A
/// down endpoint gets one background probe of at most `limit`.
pub fn health_tick(client: u64, limit: Duration) -> Option<(bool, String)> {
    check_client(client).ok()?;
    with(|m| {
        let c = m.clients.get_mut(&client)?;
        let t = c.monitor.tick(&c.state);
        let name = c.state.name(t.endpoint);
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

/// The events queued for clients with an `on_event` listener, with the
/// listener. Nothing is looked at while no client listens.
pub(super) fn due_events() -> Vec<(Rc<SvBox>, Vec<Stamped>)> {
    with(|m| {
        if m.listeners == 0 {
            return Vec::new();
        }
        m.clients
            .values()
            .filter_map(|c| {
                let cb = c.on_event.clone()?;
                let events = c.state.events().take();
                (!events.is_empty()).then_some((cb, events))
            })
            .collect()
    })
}

/// Takes the `on_event` listeners (END-time teardown).
pub(super) fn take_listeners() -> Vec<Rc<SvBox>> {
    with(|m| {
        m.listeners = 0;
        m.clients
            .values_mut()
            .filter_map(|c| c.on_event.take())
            .collect()
    })
}

/// What `stats` reports of a client (POD "EVENTS AND COUNTERS").
pub struct Stats {
    pub requests: u64,
    pub retries: u64,
    pub failovers: u64,
    pub reconnects: u64,
    pub relogins: u64,
    pub in_flight: u64,
    pub watches: u64,
    pub keepalives: u64,
    pub queued: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The counters of client `id`, with what this thread knows of it: its
/// outstanding requests and streams, and the completions waiting for the
/// drain (the process's, shared by its clients).
pub fn stats(id: u64) -> Result<Stats, String> {
    use crate::etcd::events::Counters as C;
    with(|m| {
        let c = live_client(m, id)?;
        let counters = &c.state.events().counters;
        let mut s = Stats {
            requests: C::get(&counters.requests),
            retries: C::get(&counters.retries),
            failovers: c.state.failovers(),
            reconnects: C::get(&counters.reconnects),
            relogins: C::get(&counters.relogins),
            in_flight: 0,
            watches: 0,
            keepalives: 0,
            queued: m.bridge.as_ref().map_or(0, |b| b.queued() as u64),
            bytes_in: C::get(&counters.bytes_in),
            bytes_out: C::get(&counters.bytes_out),
        };
        for pd in m.pending.values().filter(|pd| pd.client == id) {
            match pd.kind {
                Kind::Unary(_) | Kind::KeepaliveOnce => s.in_flight += 1,
                Kind::Watch => s.watches += 1,
                Kind::Keepalive => s.keepalives += 1,
                Kind::Observe | Kind::Snapshot => {}
            }
        }
        Ok(s)
    })
}

/// Keeps the loop alive exactly while something is outstanding (a request,
/// a stream, or a callback due on the next drain).
pub(super) fn sync_keepalive(p: &Perl) {
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

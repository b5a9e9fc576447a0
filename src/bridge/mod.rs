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
use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::etcd::call::Call;
use crate::etcd::client::Config;
use crate::etcd::endpoints::State;
use crate::etcd::health::Monitor;
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
            pid: crate::perl::process::pid(),
        })
    }
}

/// What a client entry on the Perl side remembers.
struct ClientEntry {
    pid: u32,
    timeout: Duration,
    endpoints: Vec<String>,
    state: Arc<State>,
    monitor: Monitor,
}

/// An outstanding unary request: its callback and its error `source` label.
struct Pending {
    client: u64,
    cb: SvBox,
    label: &'static str,
}

#[derive(Default)]
struct Main {
    bridge: Option<Bridge>,
    clients: HashMap<u64, ClientEntry>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    keepalive_on: bool,
    /// Jobs issued by callbacks during a drain, sent as one batch when the
    /// drain ends (or when the loop is about to block: `flush`), so a burst
    /// of completions yields one wakeup of the runtime, not one per request.
    outbox: Vec<Job>,
    draining: u32,
}

thread_local! {
    static MAIN: RefCell<Main> = RefCell::new(Main::default());
}

fn with<R>(f: impl FnOnce(&mut Main) -> R) -> R {
    MAIN.with(|m| f(&mut m.borrow_mut()))
}

/// The notify fd of this process's bridge, starting the bridge (and its
/// runtime thread) on first use, and again in a forked child.
pub fn notify_fd() -> Result<RawFd, String> {
    with(|m| {
        let pid = crate::perl::process::pid();
        if m.bridge.as_ref().map(|b| b.pid) != Some(pid) {
            // A bridge inherited over fork has no runtime thread: replace it
            // (its sockets close; the dead thread's handles are not touched).
            if let Some(old) = m.bridge.take() {
                std::mem::forget(old.jobs);
            }
            m.bridge = Some(
                Bridge::start()
                    .map_err(|e| format!("EV::Etcd: cannot start the runtime thread: {e}"))?,
            );
        }
        Ok(m.bridge.as_ref().map(|b| b.wake.fd()).unwrap_or(-1))
    })
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
                pid: crate::perl::process::pid(),
                timeout: cfg.timeout,
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
/// called (API.md 8.1) and the runtime cancels its work.
pub fn drop_client(p: &Perl, id: u64) {
    let dropped: Vec<Pending> = with(|m| {
        let Some(entry) = m.clients.remove(&id) else {
            return Vec::new();
        };
        if entry.pid == crate::perl::process::pid() {
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

/// Checks that `id` is a live client of this process.
pub fn check_client(id: u64) -> Result<(), String> {
    with(|m| {
        match m.clients.get(&id) {
        None => Err("EV::Etcd: client has been destroyed".to_owned()),
        Some(c) if c.pid != crate::perl::process::pid() => Err(format!(
            "EV::Etcd: this client was created in process {} and cannot be used after fork; create a new client in the child",
            c.pid
        )),
        Some(_) => Ok(()),
    }
    })
}

/// Sends a unary call; `cb` is called once, from the loop, with the result.
pub fn submit(
    p: &Perl,
    client: u64,
    label: &'static str,
    call: Call,
    cb: SvBox,
) -> Result<(), String> {
    check_client(client)?;
    let turn_on = with(|m| {
        let timeout = m
            .clients
            .get(&client)
            .map(|c| c.timeout)
            .unwrap_or(Duration::from_secs(30));
        m.next_id += 1;
        let req = m.next_id;
        let b = m.bridge.as_ref().ok_or("EV::Etcd: no runtime")?;
        let deadline = Instant::now() + timeout;
        let job = Job::Unary {
            client,
            req,
            call,
            deadline,
        };
        if m.draining > 0 {
            m.outbox.push(job);
        } else {
            b.send(job)?;
        }
        m.pending.insert(req, Pending { client, cb, label });
        let turn_on = !m.keepalive_on;
        m.keepalive_on = true;
        Ok::<bool, String>(turn_on)
    })?;
    if turn_on {
        p.call_named(c"EV::Etcd::_keepalive", 1);
    }
    Ok(())
}

/// One tick of a client's health monitor (API.md 9), run by the .pm's
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

/// Lets the loop exit once nothing is outstanding.
fn sync_keepalive(p: &Perl) {
    let turn_off = with(|m| {
        let off = m.keepalive_on && m.pending.is_empty();
        if off {
            m.keepalive_on = false;
        }
        off
    });
    if turn_off && crate::perl::sv::perl_alive() {
        p.call_named(c"EV::Etcd::_keepalive", 0);
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
    drain_batch(p);
    with(|m| m.draining -= 1);
    flush();
    sync_keepalive(p);
}

fn drain_batch(p: &Perl) {
    let ok = with(|m| match &m.bridge {
        Some(b) if b.pid == crate::perl::process::pid() => {
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
        let next = with(|m| m.bridge.as_ref().and_then(|b| b.done_rx.try_recv().ok()));
        let Some(done) = next else { return };
        let Some(pending) = with(|m| m.pending.remove(&done.req)) else {
            continue;
        };
        let args = match &done.result {
            Ok(reply) => vec![convert::reply(p, reply), NewSv::undef()],
            Err(e) => vec![NewSv::undef(), convert::error(p, e, pending.label)],
        };
        drop(done);
        p.call_cb(&pending.cb, args);
        drop(pending);
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
    drop(pending);
    crate::perl::mark_perl_dead();
}

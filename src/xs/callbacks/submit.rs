//! Requests from the Perl thread: each registers its callbacks under a new
//! request id and sends its job to the runtime (buffered while a drain
//! runs); stream handles end their stream here.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bridge::Job;
use crate::etcd::call::Call;
use crate::etcd::keepalive::Cmd as KeepaliveCmd;
use crate::etcd::snapshot::Target;
use crate::etcd::watch::{Cmd as WatchCmd, WatchSpec};
use crate::perl::{Perl, SvBox};
use crate::xs::args::Reply;

use super::registry::{live_client, sync_keepalive, with, Delivery, Kind, Pending, Registry};

/// Sends a unary call; `reply.cb` is called once, from the loop, with the
/// result (errors name the call's source, from its row of the call table).
/// Returns the request id.
pub fn submit(p: &Perl, client: u64, call: Call, reply: Reply) -> Result<u64, String> {
    submit_call(p, client, call, reply, false)
}

/// `submit` for a lock or campaign, which `cancel_call` may cancel.
pub fn submit_cancellable(p: &Perl, client: u64, call: Call, reply: Reply) -> Result<u64, String> {
    submit_call(p, client, call, reply, true)
}

fn submit_call(
    p: &Perl,
    client: u64,
    call: Call,
    reply: Reply,
    cancellable: bool,
) -> Result<u64, String> {
    let now = Instant::now();
    let kind = Kind::Unary(call.label());
    let (tx, rx) = match cancellable {
        true => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let own = reply.timeout;
    let member = reply.endpoint;
    crate::trace::stamp(crate::trace::Stage::Submit);
    enqueue(p, client, kind, callback(reply.cb), tx, |req, timeout| {
        Job::Unary {
            client,
            req,
            call,
            deadline: now + own.unwrap_or(timeout),
            solo: own.is_some() || member.is_some(),
            cancel: rx,
            member,
        }
    })
}

/// `$request->cancel`: the lock or campaign `req` is abandoned; its
/// callback gets CANCELLED once, from the loop. False when the request has
/// already been answered (or cancelled).
pub fn cancel_call(p: &Perl, req: u64) -> Result<bool, String> {
    super::check_stream(req)?;
    let not_this = "request is not of type EV::Etcd::Request";
    let other = with(|m| {
        m.clients.contains_key(&req)
            || m.pending
                .get(&req)
                .is_some_and(|pd| !matches!(pd.kind, Kind::Unary(_)))
    });
    if other {
        return Err(not_this.to_owned());
    }
    p.check()?;
    Ok(with(|m| {
        let Some(pd) = m.pending.get_mut(&req) else {
            return false;
        };
        let Some(tx) = pd.cancel.take() else {
            return false;
        };
        // Refused when the call has ended: its answer is on its way, and
        // the drain turns it into CANCELLED.
        let _ = tx.send(());
        pd.cancelled = true;
        true
    }))
}

fn callback(cb: SvBox) -> Delivery {
    Delivery::Callback(Rc::new(cb))
}

/// Registers `delivery` under a new request id and sends the job `make`
/// builds for it from the request id and the client's timeout. Returns the
/// request id.
fn enqueue(
    p: &Perl,
    client: u64,
    kind: Kind,
    delivery: Delivery,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
    make: impl FnOnce(u64, Duration) -> Job,
) -> Result<u64, String> {
    // An argument whose conversion died was read as "0": send nothing.
    p.check()?;
    let req = with(|m| {
        let timeout = live_client(m, client)?.timeout;
        m.next_id += 1;
        let req = m.next_id;
        queue(m, make(req, timeout))?;
        // A lock or campaign (cancellable) waits for others: not due.
        let due = cancel.is_none() && matches!(kind, Kind::Unary(_) | Kind::KeepaliveOnce);
        if due {
            m.waiter.started();
        }
        let pending = Pending {
            client,
            kind,
            delivery,
            cancel,
            cancelled: false,
            due,
        };
        m.pending.insert(req, pending);
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
    enqueue(p, client, Kind::Watch, callback(cb), None, |req, _| {
        Job::Watch {
            client,
            cmd: WatchCmd::Create { req, seq: 0, spec },
        }
    })
}

/// `$watch->cancel($cb)`: no callback of the watch runs after this;
/// `cb({}, undef)` runs once from the loop, whatever state the watch is in.
pub fn cancel_watch(p: &Perl, req: u64, cb: SvBox) -> Result<(), String> {
    let not_this = "watch is not of type EV::Etcd::Watch";
    cancel_stream(p, req, (Kind::Watch, not_this), Some(cb), |client| {
        Job::Watch {
            client,
            cmd: WatchCmd::Cancel { req },
        }
    })
}

/// `$observe->cancel($cb)`, like a watch's.
pub fn cancel_observe(p: &Perl, req: u64, cb: SvBox) -> Result<(), String> {
    let not_this = "observe is not of type EV::Etcd::Observe";
    cancel_stream(p, req, (Kind::Observe, not_this), Some(cb), |client| {
        Job::ObserveCancel { client, req }
    })
}

/// `$keepalive->stop`: renewals end; nothing is called back.
pub fn stop_keepalive(p: &Perl, req: u64) -> Result<(), String> {
    let not_this = "keepalive is not of type EV::Etcd::Keepalive";
    cancel_stream(p, req, (Kind::Keepalive, not_this), None, |client| {
        Job::Keepalive {
            client,
            cmd: KeepaliveCmd::Stop { req },
        }
    })
}

/// Ends stream `req` on the Perl side at once (no callback of it runs
/// after this), tells the runtime with the job `stop` builds, and queues
/// `cb({}, undef)` for the next drain.
fn cancel_stream(
    p: &Perl,
    req: u64,
    (kind, not_this): (Kind, &'static str),
    cb: Option<SvBox>,
    stop: impl FnOnce(u64) -> Job,
) -> Result<(), String> {
    super::check_stream(req)?;
    // A forged handle must not end another request (a unary call would
    // then never be called back) or a client.
    let other = with(|m| {
        m.clients.contains_key(&req) || m.pending.get(&req).is_some_and(|pd| pd.kind != kind)
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
                b.wake_again();
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
    let kind = Kind::KeepaliveOnce;
    enqueue(p, client, kind, callback(cb), None, |req, _| {
        Job::Keepalive {
            client,
            cmd: KeepaliveCmd::Once { req, id },
        }
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
    let delivery = Delivery::Keepalive {
        cb: cb.map(Rc::new),
        on_lost: on_lost.map(Rc::new),
    };
    enqueue(p, client, Kind::Keepalive, delivery, None, |req, _| {
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
    target: Target,
    on_chunk: Option<SvBox>,
    cb: SvBox,
    member: Option<String>,
) -> Result<(), String> {
    let delivery = Delivery::Snapshot {
        cb: Rc::new(cb),
        on_chunk: on_chunk.map(Rc::new),
    };
    enqueue(p, client, Kind::Snapshot, delivery, None, |req, _| {
        Job::Snapshot {
            client,
            req,
            target,
            member,
        }
    })?;
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
    enqueue(p, client, Kind::Observe, callback(cb), None, |req, _| {
        Job::Observe {
            client,
            req,
            name,
            auto_reconnect,
        }
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

/// Sends `job` now, or with the batch when a drain is running.
pub(super) fn queue(m: &mut Registry, job: Job) -> Result<(), String> {
    if m.draining > 0 {
        m.outbox.push(job);
        Ok(())
    } else {
        m.bridge.as_ref().ok_or("EV::Etcd: no runtime")?.send(job)
    }
}

//! The drain: on the Perl thread, from the `EV::io` watcher on the notify
//! fd, each completion that arrived becomes a call of its request's
//! callback, with the response or error built as Perl values.

use std::rc::Rc;

use crate::bridge::{Completion, Job};
use crate::etcd::call::Reply;
use crate::etcd::error::Error;
use crate::perl::{NewSv, Perl, SvBox};
use crate::xs::convert;

use super::registry::{sync_keepalive, with, Delivery, Kind, Pending, Registry};

/// Completions handled per drain before yielding back to the loop.
const MAX_BATCH: usize = 4096;

/// Requests issued by callbacks go out at least this often during a long
/// drain, so the first ones do not wait for the whole batch.
const FLUSH_EVERY: usize = 32;

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
/// `EV::io` watcher on the notify fd). False, with nothing run, in a child
/// forked with a client (`ours`).
pub fn drain(p: &Perl) -> bool {
    if !ours() {
        return false;
    }
    crate::trace::stamp(crate::trace::Stage::Wakeup);
    with(|m| m.draining += 1);
    run_deferred(p);
    drain_batch(p);
    run_deferred(p);
    deliver_events(p);
    with(|m| m.draining -= 1);
    flush();
    sync_keepalive(p);
    true
}

/// Calls `on_event` with each event its client queued (POD "EVENTS AND
/// COUNTERS").
fn deliver_events(p: &Perl) {
    for (cb, events) in super::registry::due_events() {
        for e in &events {
            p.call_cb(&cb, vec![convert::event(p, e)]);
        }
    }
}

fn run_deferred(p: &Perl) {
    while let Some(cb) = with(|m| m.deferred.pop_front()) {
        p.call_cb(&cb, vec![p.new_hash().finish(), NewSv::undef()]);
    }
}

/// The callback a completion goes to, and its arguments.
fn arguments(
    p: &Perl,
    done: &mut Completion,
    kind: Kind,
    delivery: Delivery,
) -> Option<(Rc<SvBox>, Vec<NewSv>)> {
    let error = |e: &Error| convert::error(p, e, kind.source());
    let pair = |cb, result: &mut Result<Reply, Error>| match result {
        // Taken: its values are freed as they are copied.
        Ok(Reply::Watch(w)) => (
            cb,
            vec![convert::watch_owned(p, std::mem::take(w)), NewSv::undef()],
        ),
        Ok(reply) => (cb, vec![convert::reply(p, reply), NewSv::undef()]),
        Err(e) => (cb, vec![NewSv::undef(), error(e)]),
    };
    let last = done.last;
    Some(match (delivery, &mut done.result) {
        (Delivery::Callback(cb), r) => pair(cb, r),
        (
            Delivery::Keepalive {
                on_lost: Some(f), ..
            },
            Err(e),
        ) => (f, vec![error(e)]),
        (Delivery::Keepalive { cb, .. }, r) => pair(cb?, r),
        (
            Delivery::Snapshot {
                on_chunk: Some(f), ..
            },
            Ok(chunk),
        ) if !last => (f, vec![convert::reply(p, chunk)]),
        (Delivery::Snapshot { cb, .. }, r) => pair(cb, r),
    })
}

fn drain_batch(p: &Perl) {
    if !with(|m| m.bridge.as_ref().map(|b| b.rearm()).is_some()) {
        return;
    }
    for i in 0..MAX_BATCH {
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            flush();
            progress();
        }
        let next = with(|m| {
            let mut done = m.bridge.as_ref()?.next()?;
            let entry = if done.last {
                m.pending.remove(&done.req).map(|pd| {
                    if pd.due {
                        m.waiter.answered();
                    }
                    if pd.cancelled {
                        withdraw(m, pd.client, &mut done);
                    }
                    (pd.kind, pd.delivery)
                })
            } else {
                m.pending
                    .get(&done.req)
                    .map(|pd| (pd.kind, pd.delivery.clone()))
            };
            Some((done, entry))
        });
        let Some((done, entry)) = next else {
            progress();
            return;
        };
        let Some((kind, delivery)) = entry else {
            continue;
        };
        let mut done = done;
        let call = arguments(p, &mut done, kind, delivery);
        drop(done);
        if let Some((cb, args)) = call {
            crate::trace::close();
            p.call_cb(&cb, args);
        }
    }
    // Work left behind: make the fd readable again so the loop comes back.
    with(|m| {
        if let Some(b) = &m.bridge {
            b.wake_again();
        }
    });
}

/// Tells streams paused by backpressure that the queue went down.
fn progress() {
    with(|m| {
        if let Some(b) = &m.bridge {
            b.progress();
        }
    });
}

/// The answer of a lock or campaign cancelled after it was sent: the
/// callback gets CANCELLED instead, and what the server granted is given
/// back (unlock, resign) by a request whose answer nobody waits for.
fn withdraw(m: &mut Registry, client: u64, done: &mut Completion) {
    let result = std::mem::replace(&mut done.result, Err(Error::cancelled()));
    let Some(release) = result.ok().and_then(Reply::release) else {
        return;
    };
    let Some(timeout) = m.clients.get(&client).map(|c| c.timeout) else {
        return;
    };
    m.next_id += 1;
    let job = Job::Unary {
        client,
        req: m.next_id,
        call: release,
        deadline: std::time::Instant::now() + timeout,
        solo: false,
        cancel: None,
        member: None,
    };
    let _ = super::submit::queue(m, job);
}

/// Whether the notify fd the watchers watch is this process's (false in a
/// child forked with a client: its watchers, inherited, stop themselves
/// rather than drain the parent's queue).
pub fn ours() -> bool {
    with(|m| m.bridge.as_ref().is_none_or(|b| b.ours()))
}

/// END-time teardown: releases every stored callback while the interpreter
/// is still whole; later drops leak instead of touching a dying interpreter.
pub fn shutdown() {
    let pending: Vec<Pending> = with(|m| {
        m.waiter = Default::default();
        m.pending.drain().map(|(_, v)| v).collect()
    });
    let deferred: Vec<SvBox> = with(|m| m.deferred.drain(..).collect());
    let listeners = super::registry::take_listeners();
    drop(pending);
    drop(deferred);
    drop(listeners);
    crate::perl::mark_perl_dead();
}

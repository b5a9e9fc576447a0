//! Lease keepalives of one client (POD "LEASES AND KEEPALIVE") over one shared
//! LeaseKeepAlive stream.
//!
//! - A one-shot keepalive sends one request and reports the one answer.
//! - A managed keepalive renews its lease every TTL/3 for as long as it runs,
//!   reports each renewal, and ends with exactly one "lost" error when the
//!   server says the lease is gone (TTL 0) or when no renewal got through
//!   before the lease's TTL ran out (the reaper). It survives stream losses:
//!   the stream is reopened with backoff and renewals go on.
//!
//! Runs on the runtime thread; knows nothing of Perl.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Status;

use super::call::Reply;
use super::client::Client;
use super::error::{self, Error};
use super::pb::etcdserverpb as rpc;
use super::stream::{self, Ended, Next, Reconnect, Sink};

pub enum Cmd {
    /// One request, one answer (`lease_keepalive`).
    Once {
        req: u64,
        id: i64,
    },
    /// Renew until stopped or lost (`lease_keepalive_start`).
    Start {
        req: u64,
        id: i64,
    },
    Stop {
        req: u64,
    },
}

/// Shortest renewal period, whatever the TTL.
const MIN_PERIOD: Duration = Duration::from_millis(100);
/// While an answer is awaited, the request is repeated this often.
const RESEND: Duration = Duration::from_millis(500);

struct Managed {
    id: i64,
    /// When the lease runs out unless renewed (before the first answer:
    /// the client's timeout from the start).
    expires: Instant,
    /// When the next renewal is due.
    next: Instant,
}

pub struct Keeper {
    client: Arc<Client>,
    sink: Sink,
    /// One-shot requests awaiting their answer, per lease id.
    once: HashMap<i64, VecDeque<u64>>,
    managed: HashMap<u64, Managed>,
    tx: Option<mpsc::UnboundedSender<rpc::LeaseKeepAliveRequest>>,
    /// Some answer arrived on the current stream.
    live: bool,
}

impl Keeper {
    pub fn new(client: Arc<Client>, sink: Sink) -> Keeper {
        Keeper {
            client,
            sink,
            once: HashMap::new(),
            managed: HashMap::new(),
            tx: None,
            live: false,
        }
    }

    fn idle(&self) -> bool {
        self.once.is_empty() && self.managed.is_empty()
    }

    pub async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut rc = Reconnect::default();
        loop {
            while self.idle() {
                match cmds.recv().await {
                    Some(c) => self.command(c),
                    None => return,
                }
            }
            let lost = match self.session(&mut cmds).await {
                Ended::Closed => return,
                Ended::Idle => continue,
                Ended::Lost(l) => l,
            };
            self.tx = None;
            if self.live {
                rc.answered();
            }
            match rc.after(&self.client, &lost).await {
                Next::Renewed | Next::NextEndpoint => continue,
                Next::Fail(e) => {
                    self.fail_all(e);
                    continue;
                }
                // One-shots fail at once when no stream can be opened.
                Next::Refused => {
                    for req in self.once.drain().flat_map(|(_, q)| q).collect::<Vec<_>>() {
                        (self.sink)(
                            req,
                            Err(Error::new(error::INTERNAL, "Keepalive setup failed")),
                            true,
                        );
                    }
                }
                Next::Later => {}
            }
            if self.idle() {
                continue;
            }
            let wake = Instant::now() + rc.delay();
            loop {
                self.reap();
                if self.idle() {
                    break;
                }
                let at = self.next_expiry().map_or(wake, |e| e.min(wake));
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {
                        if Instant::now() >= wake {
                            break;
                        }
                    }
                    c = cmds.recv() => match c {
                        Some(c) => self.command(c),
                        None => return,
                    },
                }
            }
        }
    }

    async fn session(&mut self, cmds: &mut mpsc::UnboundedReceiver<Cmd>) -> Ended {
        use rpc::lease_client::LeaseClient;
        let o = match stream::open(&self.client).await {
            Ok(o) => o,
            Err(ended) => return ended,
        };
        let lost = |status, stream| o.lost(status, stream);
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx = Some(tx);
        self.live = false;
        // (Re)send what is waiting: each one-shot once, each managed lease now.
        let ids: Vec<i64> = self
            .once
            .iter()
            .flat_map(|(id, q)| std::iter::repeat_n(*id, q.len()))
            .collect();
        for id in ids {
            self.send(id);
        }
        let now = Instant::now();
        for m in self.managed.values_mut() {
            m.next = now;
        }
        self.renew_due();
        let mut lc = LeaseClient::new(o.ch.clone());
        let call = lc.lease_keep_alive(o.opts.request(UnboundedReceiverStream::new(rx)));
        tokio::pin!(call);
        let mut inbound = loop {
            let at = self.next_timer();
            tokio::select! {
                r = &mut call => match r {
                    Ok(resp) => break resp.into_inner(),
                    Err(s) => return lost(s, false),
                },
                c = cmds.recv() => match c {
                    Some(c) => self.command(c),
                    None => return Ended::Closed,
                },
                _ = sleep_until(at) => self.tick(),
            }
        };
        loop {
            if self.idle() {
                self.tx = None;
                return Ended::Idle;
            }
            let at = self.next_timer();
            tokio::select! {
                m = inbound.message() => match m {
                    Ok(Some(m)) => self.on_answer(m),
                    Ok(None) => return lost(Status::unavailable("keepalive stream closed by the server"), true),
                    Err(s) => return lost(s, true),
                },
                c = cmds.recv() => match c {
                    Some(c) => self.command(c),
                    None => return Ended::Closed,
                },
                _ = sleep_until(at) => self.tick(),
            }
        }
    }

    fn send(&self, id: i64) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(rpc::LeaseKeepAliveRequest { id });
        }
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Once { req, id } => {
                self.once.entry(id).or_default().push_back(req);
                self.send(id);
            }
            Cmd::Start { req, id } => {
                let now = Instant::now();
                self.managed.insert(
                    req,
                    Managed {
                        id,
                        expires: now + self.client.cfg.timeout,
                        next: now,
                    },
                );
                self.renew_due();
            }
            Cmd::Stop { req } => {
                self.managed.remove(&req);
            }
        }
    }

    fn tick(&mut self) {
        self.reap();
        self.renew_due();
    }

    /// Sends the renewals that are due (one request per lease id).
    fn renew_due(&mut self) {
        if self.tx.is_none() {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for m in self.managed.values_mut() {
            if m.next <= now {
                due.push(m.id);
                m.next = now + RESEND;
            }
        }
        due.sort_unstable();
        due.dedup();
        for id in due {
            self.send(id);
        }
    }

    /// Managed leases whose TTL ran out without a renewal getting through.
    fn reap(&mut self) {
        let now = Instant::now();
        let gone: Vec<u64> = self
            .managed
            .iter()
            .filter(|(_, m)| m.expires <= now)
            .map(|(r, _)| *r)
            .collect();
        for req in gone {
            if let Some(m) = self.managed.remove(&req) {
                let e = Error::new(
                    error::DEADLINE_EXCEEDED,
                    format!(
                        "lease {}: no renewal got through before its TTL ran out",
                        m.id
                    ),
                );
                (self.sink)(req, Err(e), true);
            }
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.managed.values().map(|m| m.expires).min()
    }

    fn next_timer(&self) -> Option<Instant> {
        self.managed.values().map(|m| m.next.min(m.expires)).min()
    }

    fn on_answer(&mut self, m: rpc::LeaseKeepAliveResponse) {
        self.live = true;
        let id = m.id;
        if let Some(q) = self.once.get_mut(&id) {
            if let Some(req) = q.pop_front() {
                let result = if m.ttl > 0 {
                    Ok(Reply::KeepAlive(m))
                } else {
                    Err(Error::internal("Lease expired"))
                };
                (self.sink)(req, result, true);
            }
            if q.is_empty() {
                self.once.remove(&id);
            }
        }
        let now = Instant::now();
        let mine: Vec<u64> = self
            .managed
            .iter()
            .filter(|(_, k)| k.id == id)
            .map(|(r, _)| *r)
            .collect();
        for req in mine {
            if m.ttl <= 0 {
                self.managed.remove(&req);
                let e = Error::new(
                    error::NOT_FOUND,
                    format!("lease {id} expired or was revoked"),
                );
                (self.sink)(req, Err(e), true);
                continue;
            }
            if let Some(k) = self.managed.get_mut(&req) {
                let ttl = Duration::from_secs(m.ttl as u64);
                k.expires = now + ttl;
                k.next = now + (ttl / 3).max(MIN_PERIOD);
            }
            (self.sink)(req, Ok(Reply::KeepAlive(m)), false);
        }
    }

    fn fail_all(&mut self, e: Error) {
        let reqs: Vec<u64> = self
            .once
            .drain()
            .flat_map(|(_, q)| q)
            .chain(self.managed.drain().map(|(r, _)| r))
            .collect();
        for req in reqs {
            (self.sink)(req, Err(e.clone()), true);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

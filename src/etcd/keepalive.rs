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
use super::events::Event;
use super::pb::etcdserverpb as rpc;
use super::stream::{self, Opened, Opening, Session, Sink};

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

    /// Serves commands until the client goes away (`stream::supervise`).
    pub async fn run(self, cmds: mpsc::UnboundedReceiver<Cmd>) {
        stream::supervise(self, cmds).await
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
                self.lose(req, m.id, e);
            }
        }
    }

    /// Managed lease `lease` of request `req` is lost with `e`.
    fn lose(&self, req: u64, lease: i64, e: Error) {
        self.client.events().emit(|| Event::KeepaliveLost {
            lease,
            error: e.clone(),
        });
        (self.sink)(req, Err(e), true);
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
                self.lose(req, id, e);
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
}

impl stream::Engine for Keeper {
    type Cmd = Cmd;
    type Message = rpc::LeaseKeepAliveResponse;
    const NAME: &'static str = "keepalive";

    fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn idle(&self) -> bool {
        self.once.is_empty() && self.managed.is_empty()
    }

    fn command(&mut self, c: Cmd) {
        Keeper::command(self, c)
    }

    fn open(&mut self, o: &Opening) -> Opened<Self::Message> {
        use rpc::lease_client::LeaseClient;
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
        let req = o.opts.request(UnboundedReceiverStream::new(rx));
        Box::pin(async move { lc.lease_keep_alive(req).await })
    }

    fn message(&mut self, m: Self::Message, _: &Session<'_>) -> Option<Status> {
        self.on_answer(m);
        None
    }

    /// Renewals due, or (without a stream) the first lease to run out.
    fn timer(&self) -> Option<Instant> {
        let due = |m: &Managed| match self.tx {
            Some(_) => m.next.min(m.expires),
            None => m.expires,
        };
        self.managed.values().map(due).min()
    }

    fn tick(&mut self) {
        self.reap();
        self.renew_due();
    }

    fn closed(&mut self) -> bool {
        self.tx = None;
        std::mem::take(&mut self.live)
    }

    fn fail_all(&mut self, e: Error) {
        let once: Vec<u64> = self.once.drain().flat_map(|(_, q)| q).collect();
        for req in once {
            (self.sink)(req, Err(e.clone()), true);
        }
        for (req, m) in self.managed.drain().collect::<Vec<_>>() {
            self.lose(req, m.id, e.clone());
        }
    }

    /// One-shots fail at once when no stream can be opened; managed leases
    /// wait for the stream (or their reaper).
    fn give_up(&mut self, refused: bool) {
        if !refused {
            return;
        }
        for req in self.once.drain().flat_map(|(_, q)| q).collect::<Vec<_>>() {
            (self.sink)(
                req,
                Err(Error::new(error::INTERNAL, "Keepalive setup failed")),
                true,
            );
        }
    }
}

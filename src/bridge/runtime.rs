//! The runtime thread: one tokio current-thread runtime per process, started
//! with the first client. It receives plain-Rust jobs, runs each client's
//! calls, and pushes completions onto a crossbeam channel, waking the Perl
//! thread through the notifier. Nothing Perl-shaped ever reaches it.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::etcd::call::{Call, Reply};
use crate::etcd::client::{Client, Config};
use crate::etcd::error::Error;

use super::notify::Notifier;

/// Work sent from the Perl thread.
pub enum Job {
    NewClient {
        id: u64,
        cfg: Config,
    },
    DropClient {
        id: u64,
    },
    Unary {
        client: u64,
        req: u64,
        call: Call,
        deadline: std::time::Instant,
    },
    /// The health monitor found `endpoint` down: try to reach it once.
    Probe {
        client: u64,
        endpoint: usize,
        limit: std::time::Duration,
    },
    /// Jobs issued together (by callbacks of one drain), in issue order.
    Batch(Vec<Job>),
}

/// A finished piece of work, sent back to the Perl thread.
pub struct Completion {
    pub req: u64,
    pub result: Result<Reply, Error>,
}

struct Live {
    client: Arc<Client>,
    closed: watch::Sender<bool>,
}

/// Starts the runtime thread. Returns the job sender.
pub fn spawn(
    done: crossbeam_channel::Sender<Completion>,
    notify: Arc<Notifier>,
) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ev-etcd-runtime".into())
        .spawn(move || {
            crate::perl::process::block_sigpipe();
            rt.block_on(serve(rx, done, notify))
        })?;
    Ok(tx)
}

/// Completion side of the runtime: pushes results and coalesces wakeups of
/// the Perl thread: the flusher task runs after the tasks woken in the same
/// turn, so one burst of replies costs one write on the notify fd.
#[derive(Clone)]
struct Done {
    tx: crossbeam_channel::Sender<Completion>,
    flush: Arc<tokio::sync::Notify>,
}

impl Done {
    fn send(&self, c: Completion) {
        if self.tx.send(c).is_ok() {
            self.flush.notify_one();
        }
    }
}

async fn flusher(flush: Arc<tokio::sync::Notify>, notify: Arc<Notifier>) {
    loop {
        flush.notified().await;
        tokio::task::yield_now().await;
        notify.signal();
    }
}

async fn serve(
    mut rx: mpsc::UnboundedReceiver<Job>,
    done: crossbeam_channel::Sender<Completion>,
    notify: Arc<Notifier>,
) {
    let flush = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(flusher(flush.clone(), notify));
    let done = Done { tx: done, flush };
    let mut clients: HashMap<u64, Live> = HashMap::new();
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        for job in batch.drain(..) {
            handle(job, &mut clients, &done);
        }
    }
}

fn handle(job: Job, clients: &mut HashMap<u64, Live>, done: &Done) {
    match job {
        Job::Batch(jobs) => {
            for j in jobs {
                handle(j, clients, done);
            }
        }
        Job::NewClient { id, cfg } => {
            let (closed, _) = watch::channel(false);
            clients.insert(
                id,
                Live {
                    client: Arc::new(Client::new(cfg)),
                    closed,
                },
            );
        }
        Job::DropClient { id } => {
            if let Some(live) = clients.remove(&id) {
                let _ = live.closed.send(true);
                live.client.close();
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
            let mut closed = live.closed.subscribe();
            tokio::spawn(async move {
                tokio::select! {
                    biased;
                    _ = closed.wait_for(|c| *c) => {}
                    _ = c.probe(endpoint, limit) => {}
                }
            });
        }
        Job::Unary {
            client,
            req,
            call,
            deadline,
        } => {
            let Some(live) = clients.get(&client) else {
                return;
            };
            let c = live.client.clone();
            let mut closed = live.closed.subscribe();
            let done = done.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::from_std(deadline);
                let result = tokio::select! {
                    biased;
                    r = c.unary(call, deadline) => r,
                    _ = closed.wait_for(|c| *c) => return,
                };
                done.send(Completion { req, result });
            });
        }
    }
}

//! The thread boundary, with no Perl in it: the runtime thread
//! (runtime.rs) and the notifier that wakes the Perl thread (notify.rs),
//! and `Bridge`, the Perl thread's end of both: the job sender, the
//! completion queue and the notify fd. What the Perl thread keeps of its
//! requests (callbacks, the drain) lives in src/xs/callbacks/.
#![forbid(unsafe_code)]

pub mod linger;
pub mod notify;
pub mod runtime;

use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

pub use runtime::{Completion, Job};

use crate::etcd::backlog::Backlog;

/// The process's bridge: the Perl thread's end of the runtime thread.
pub struct Bridge {
    jobs: UnboundedSender<Job>,
    done_rx: crossbeam_channel::Receiver<Completion>,
    notify: Arc<notify::Notifier>,
    wake: notify::Receiver,
    /// Tells the runtime thread that a job is on its way (linger.rs).
    activity: Arc<linger::Activity>,
    /// The completion queue's length, as the stream engines see it.
    backlog: Arc<Backlog>,
    /// The process that started it (a forked child needs its own).
    pid: u32,
}

impl Bridge {
    /// Starts the runtime thread and the notifier.
    pub fn start() -> std::io::Result<Bridge> {
        let (n, wake) = notify::pair()?;
        let notify = Arc::new(n);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let depth = done_tx.clone();
        let backlog = Arc::new(Backlog::new(move || depth.len()));
        let activity = Arc::new(linger::Activity::default());
        let jobs = runtime::spawn(done_tx, notify.clone(), activity.clone(), backlog.clone())?;
        Ok(Bridge {
            jobs,
            done_rx,
            notify,
            wake,
            activity,
            backlog,
            pid: crate::sys::process::pid(),
        })
    }

    pub fn send(&self, job: Job) -> Result<(), String> {
        self.jobs
            .send(job)
            .map_err(|_| "EV::Etcd: the runtime thread is gone".to_owned())?;
        self.activity.sent();
        Ok(())
    }

    /// Whether this process started it.
    pub fn ours(&self) -> bool {
        self.pid == crate::sys::process::pid()
    }

    /// The fd the loop watches: readable when completions are waiting.
    pub fn fd(&self) -> RawFd {
        self.wake.fd()
    }

    /// Before a drain: the fd is made unreadable and the runtime's next
    /// completion signals again.
    pub fn rearm(&self) {
        self.wake.clear();
        self.notify.disarm();
    }

    /// Makes the fd readable, so the loop comes back for what is left.
    pub fn wake_again(&self) {
        self.notify.force();
    }

    /// The completion queue's length, for a new client's stream engines.
    pub fn backlog(&self) -> Arc<Backlog> {
        self.backlog.clone()
    }

    /// The drain took completions: streams paused by backpressure look
    /// at the queue again.
    pub fn progress(&self) {
        self.backlog.progress();
    }

    /// How many completions wait for the drain.
    pub fn queued(&self) -> usize {
        self.done_rx.len()
    }

    /// The next completion, if one has arrived.
    pub fn next(&self) -> Option<Completion> {
        let c = self.done_rx.try_recv().ok()?;
        self.backlog.remove(c.weight());
        Some(c)
    }

    /// Leaves a bridge inherited over fork behind without touching its
    /// runtime's handles (that thread does not exist in the child).
    pub fn abandon(self) {
        std::mem::forget(self.jobs);
    }
}

/// Hashes the ids this module hands out (sequential numbers) with one
/// multiplication: SipHash's resistance to chosen keys buys nothing here,
/// and these maps are consulted several times per request.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

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

pub type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

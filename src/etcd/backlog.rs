//! Backpressure from a slow Perl thread (POD "BACKPRESSURE"): the number
//! of completions waiting for the drain, as the stream engines see it.
//! Past a client's `max_pending` its watch streams stop reading, so
//! HTTP/2 flow control holds the server back instead of the client's
//! memory growing; they read again once the queue is down to half.
//! The drain calls `progress` as it takes completions off the queue.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// A paused stream looks at the queue at least this often, even if no
/// drain reported progress.
const RECHECK: Duration = Duration::from_millis(100);

pub struct Backlog {
    depth: Box<dyn Fn() -> usize + Send + Sync>,
    /// Bytes of keys and values in the waiting watch responses.
    bytes: AtomicUsize,
    /// Streams waiting for the queue to go down.
    waiting: AtomicUsize,
    drained: Notify,
}

impl fmt::Debug for Backlog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("depth", &(self.depth)())
            .field("waiting", &self.waiting)
            .finish()
    }
}

/// Counts a waiting stream while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backlog {
    /// A backlog whose length `depth` tells.
    pub fn new(depth: impl Fn() -> usize + Send + Sync + 'static) -> Backlog {
        Backlog {
            depth: Box::new(depth),
            bytes: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            drained: Notify::new(),
        }
    }

    /// How many completions wait.
    pub fn depth(&self) -> usize {
        (self.depth)()
    }

    /// Bytes of keys and values waiting.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// A completion of `n` bytes joins the queue.
    pub fn add(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A completion of `n` bytes left the queue.
    pub fn remove(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Whether the queue holds more than `count` completions or `bytes`
    /// bytes.
    pub fn over(&self, count: usize, bytes: usize) -> bool {
        self.depth() > count || self.bytes() > bytes
    }

    /// The consumer took completions off the queue: waiting streams look
    /// again. One atomic load when nobody waits.
    pub fn progress(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.drained.notify_waiters();
        }
    }

    /// Resolves once at most `low` completions and `low_bytes` bytes wait.
    pub async fn below(&self, low: usize, low_bytes: usize) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _w = Waiting(&self.waiting);
        loop {
            let n = self.drained.notified();
            tokio::pin!(n);
            // Registered before the look, so progress made after the look
            // wakes it.
            n.as_mut().enable();
            if !self.over(low, low_bytes) {
                return;
            }
            let _ = tokio::time::timeout(RECHECK, n).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "current_thread")]
    async fn waits_until_the_queue_is_down() {
        let depth = Arc::new(AtomicUsize::new(10));
        let d = depth.clone();
        let b = Arc::new(Backlog::new(move || d.load(Ordering::SeqCst)));
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.below(5, 100).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(b.waiting.load(Ordering::SeqCst), 1);
        depth.store(6, Ordering::SeqCst);
        b.progress();
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "6 is still above 5");
        depth.store(5, Ordering::SeqCst);
        b.progress();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken by progress")
            .unwrap();
        assert_eq!(b.waiting.load(Ordering::SeqCst), 0);
        // Bytes hold it too.
        b.add(101);
        assert!(b.over(5, 100));
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.below(5, 100).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "101 bytes are above 100");
        b.remove(1);
        b.progress();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken by progress")
            .unwrap();
    }
}

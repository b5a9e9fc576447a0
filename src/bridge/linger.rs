//! On request (`EV_ETCD_LINGER_US`), the runtime thread lingers a moment
//! before it sleeps when it has just answered the last call outstanding: a
//! program that makes one request at a time sends its next one from the
//! callback, some microseconds later, and a thread still awake takes it at
//! once, where a sleeping one would first have to be woken (a futex or
//! eventfd wake and a trip through the scheduler, on the critical path of
//! every round trip). It lingers only after such an answer, never while
//! calls are outstanding (their answers come from the network, not from
//! the Perl thread) and never on an idle client (no wakeups: nothing
//! happens until a request is made). Off by default: on a machine whose
//! cores the client shares with a busy server the lingering thread takes
//! CPU from the server and the Perl thread, and bench/kv.pl showed no gain
//! there beyond its noise (bench/latency.pl shows the pickup it saves).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the runtime thread stays awake for the next request, unless
/// `EV_ETCD_LINGER_US` says otherwise: by default it does not linger.
pub const LINGER: Duration = Duration::ZERO;

fn linger() -> Duration {
    static CHOSEN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        std::env::var("EV_ETCD_LINGER_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|us| Duration::from_micros(us.min(10_000)))
            .unwrap_or(LINGER)
    })
}

#[derive(Default)]
pub struct Activity {
    /// Jobs sent by the Perl thread (it counts; the runtime watches).
    sent: AtomicU64,
    /// Unary calls the runtime holds (runtime thread only).
    calls: AtomicUsize,
    /// The last outstanding call was just answered.
    armed: AtomicBool,
}

impl Activity {
    /// The Perl thread sent a job.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Release);
    }

    /// A unary call starts on the runtime; its guard ends it.
    pub fn call(self: &Arc<Self>) -> Call {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Call(self.clone())
    }

    /// Before the runtime thread parks (tokio's `on_thread_park`): after
    /// the answer to the last outstanding call, wait up to `LINGER` for
    /// the next job.
    pub fn before_park(&self) {
        self.linger_for(linger());
    }

    fn linger_for(&self, limit: Duration) {
        if !self.armed.swap(false, Ordering::Relaxed) {
            return;
        }
        if limit.is_zero() {
            return;
        }
        let seen = self.sent.load(Ordering::Acquire);
        let start = Instant::now();
        // Yielding, not spinning: the thread stays runnable (a job finds it
        // awake) but gives the core to any thread that wants it, the
        // Perl thread or a local etcd among them.
        while self.sent.load(Ordering::Acquire) == seen {
            std::thread::yield_now();
            if start.elapsed() >= limit {
                return;
            }
        }
    }
}

/// One unary call held by the runtime; dropped when it is answered (or
/// abandoned).
pub struct Call(Arc<Activity>);

impl Call {
    /// The call is answered: true when it was the last one outstanding.
    pub fn finish(self) -> bool {
        self.0.calls.load(Ordering::Relaxed) == 1
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.0.calls.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.armed.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingers_only_after_the_last_answer() {
        const L: Duration = Duration::from_millis(20);
        let a = Arc::new(Activity::default());
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() < L, "an idle runtime does not linger");
        let (one, two) = (a.call(), a.call());
        drop(one);
        assert!(
            !a.armed.load(Ordering::Relaxed),
            "a call is still outstanding"
        );
        drop(two);
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() >= L, "lingers after the last answer");
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() < L, "once");
        // a job ends the lingering
        drop(a.call());
        let b = a.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            b.sent();
        });
        let t = Instant::now();
        a.linger_for(Duration::from_secs(10));
        sender.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "woken by the job");
        assert_eq!(a.sent.load(Ordering::Relaxed), 1);
        // by default nothing lingers
        drop(a.call());
        let t = Instant::now();
        a.linger_for(LINGER);
        assert!(t.elapsed() < L, "off by default");
    }
}

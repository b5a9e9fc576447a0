//! The runtime thread lingers a moment before it sleeps when it has just
//! answered the last call outstanding: a program that makes one request
//! at a time sends its next one from the callback, some microseconds
//! later, and a thread still awake takes it at once, where a sleeping one
//! would first have to be woken (a wake of a thread whose core went idle,
//! on the critical path of every round trip, and dearer still in a virtual
//! machine, where it halted a virtual CPU: bench/latency.pl shows the
//! pickup it saves). tokio's own worker threads do the same before they
//! park.
//!
//! It lingers only after such an answer, never while calls are
//! outstanding (their answers come from the network, not from the Perl
//! thread) and never on an idle client (no wakeups: nothing happens until
//! a request is made). And only while it pays: when the last request
//! came later than the lingering would have waited, the next answer does
//! not linger, so a program that thinks between its requests costs no
//! CPU for it. While lingering it yields, so any other thread that wants
//! the core (the Perl thread, a local etcd) has it. `EV_ETCD_LINGER_US`
//! sets how long (0: never).
//!
//! While one call is outstanding, from a program that makes its requests
//! back to back (each within `EV_ETCD_WAIT_US` of the answer before), the
//! runtime thread does not sleep either until the call is that old: it
//! yields and looks at its sockets again (`Rest::Await`), so the answer
//! finds it awake. The Perl thread waits for the answer in the same way
//! (src/xs/callbacks/wait.rs). Once an answer has taken longer than that,
//! the next call is not waited for, until one is answered within the time
//! again: a program talking to a distant server spends nothing on it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the runtime thread stays awake for the next request, unless
/// `EV_ETCD_LINGER_US` says otherwise.
pub const LINGER: Duration = Duration::from_micros(100);

/// The most `EV_ETCD_LINGER_US` may ask for.
const MOST: Duration = Duration::from_millis(10);

fn linger() -> Duration {
    static CHOSEN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| chosen(std::env::var("EV_ETCD_LINGER_US").ok().as_deref(), LINGER))
}

/// How long the Perl thread and the runtime thread wait for the answer to
/// the one call outstanding, unless `EV_ETCD_WAIT_US` says otherwise.
pub const WAIT: Duration = Duration::from_micros(250);

/// The wait for an answer (`EV_ETCD_WAIT_US`, or `WAIT`).
pub fn answer_wait() -> Duration {
    static CHOSEN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| chosen(std::env::var("EV_ETCD_WAIT_US").ok().as_deref(), WAIT))
}

/// The time an environment variable asks for (a whole number of
/// microseconds, at most `MOST`), or `default`.
fn chosen(var: Option<&str>, default: Duration) -> Duration {
    var.and_then(|v| v.trim().parse::<u64>().ok())
        .map(|us| Duration::from_micros(us).min(MOST))
        .unwrap_or(default)
}

/// What the runtime thread does when it has nothing left to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Rest {
    /// It lingered, and a job came.
    JobCame,
    /// The answer to the one call outstanding is due: look at the sockets
    /// again rather than sleep.
    Await,
    /// Sleep until something happens.
    Sleep,
}

pub struct Activity {
    /// Jobs sent by the Perl thread (it counts; the runtime watches).
    sent: AtomicU64,
    /// Unary calls the runtime holds (runtime thread only).
    calls: AtomicUsize,
    /// The last outstanding call was just answered.
    armed: AtomicBool,
    /// When it was answered, in nanoseconds since `epoch` (0: no answer
    /// waits for its next request).
    answered: AtomicU64,
    /// How many jobs had been sent when it was answered.
    sent_then: AtomicU64,
    /// The request after the last such answer came within the lingering
    /// time (true until one did not).
    quick: AtomicBool,
    /// The same, within the answer wait.
    prompt: AtomicBool,
    /// When the first of the calls outstanding started (nanoseconds since
    /// `epoch`).
    started: AtomicU64,
    /// The last answer to a call alone took longer than the answer wait.
    slow: AtomicBool,
    /// The answer wait, in nanoseconds (as `call_within` was given it).
    wait: AtomicU64,
    epoch: Instant,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            sent: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
            armed: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            sent_then: AtomicU64::new(0),
            quick: AtomicBool::new(true),
            prompt: AtomicBool::new(true),
            started: AtomicU64::new(0),
            slow: AtomicBool::new(false),
            wait: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Activity {
    /// The Perl thread sent a job.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Release);
    }

    /// A unary call starts on the runtime; its guard ends it.
    pub fn call(self: &Arc<Self>) -> Call {
        self.call_within(linger(), answer_wait())
    }

    fn call_within(self: &Arc<Self>, limit: Duration, wait: Duration) -> Call {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            self.next_request(limit, wait);
        }
        Call(self.clone())
    }

    /// The first call after a quiet spell: was it quick enough after the
    /// last answer for lingering to have caught it (and for waiting for
    /// its answer to pay)?
    fn next_request(&self, limit: Duration, wait: Duration) {
        let now = self.now();
        self.started.store(now, Ordering::Relaxed);
        let ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.wait.store(ns, Ordering::Relaxed);
        let answered = self.answered.swap(0, Ordering::Relaxed);
        if answered != 0 {
            let gap = u128::from(now.saturating_sub(answered));
            self.quick.store(gap < limit.as_nanos(), Ordering::Relaxed);
            self.prompt.store(gap < wait.as_nanos(), Ordering::Relaxed);
        }
    }

    /// Nanoseconds since `epoch`, never 0.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Before the runtime thread parks (tokio's `on_thread_park`): after
    /// the answer to the last outstanding call, wait up to `LINGER` for
    /// the next job; while one call is outstanding whose answer is due,
    /// do not sleep.
    pub fn before_park(&self) -> Rest {
        if self.linger_for(linger()) {
            Rest::JobCame
        } else if self.awaiting(answer_wait()) {
            Rest::Await
        } else {
            Rest::Sleep
        }
    }

    /// One call is outstanding, from a program making its requests back
    /// to back, younger than `wait`, and the last answer to a call alone
    /// came within it.
    fn awaiting(&self, wait: Duration) -> bool {
        !wait.is_zero()
            && self.calls.load(Ordering::Relaxed) == 1
            && self.prompt.load(Ordering::Relaxed)
            && !self.slow.load(Ordering::Relaxed)
            && u128::from(self.age(self.now())) < wait.as_nanos()
    }

    /// Nanoseconds from the start of the first of the calls outstanding
    /// to `now`.
    fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.started.load(Ordering::Relaxed))
    }

    fn linger_for(&self, limit: Duration) -> bool {
        if !self.armed.swap(false, Ordering::Relaxed) {
            return false;
        }
        if limit.is_zero() || !self.quick.load(Ordering::Relaxed) {
            return false;
        }
        // A job that came after the answer but before the runtime got
        // here (the Perl thread, woken on this core, ran before it) has
        // been taken already, and what it wrote is among the flushes to
        // release: waiting for another would hold its request back.
        let seen = self.sent_then.load(Ordering::Relaxed);
        if self.sent.load(Ordering::Acquire) != seen {
            return false;
        }
        let start = Instant::now();
        // Yielding, not spinning: the thread stays runnable (a job finds it
        // awake) but gives the core to any thread that wants it, the
        // Perl thread or a local etcd among them.
        while self.sent.load(Ordering::Acquire) == seen {
            std::thread::yield_now();
            if start.elapsed() >= limit {
                return false;
            }
        }
        true
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
            let now = self.0.now();
            let slow = self.0.age(now) >= self.0.wait.load(Ordering::Relaxed);
            self.0.slow.store(slow, Ordering::Relaxed);
            let sent = self.0.sent.load(Ordering::Acquire);
            self.0.sent_then.store(sent, Ordering::Relaxed);
            self.0.answered.store(now, Ordering::Relaxed);
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
        assert!(!a.linger_for(L));
        assert!(t.elapsed() < L, "an idle runtime does not linger");
        let (one, two) = (a.call_within(L, L), a.call_within(L, L));
        drop(one);
        assert!(
            !a.armed.load(Ordering::Relaxed),
            "a call is still outstanding"
        );
        drop(two);
        let t = Instant::now();
        assert!(!a.linger_for(L), "no job came");
        assert!(t.elapsed() >= L, "lingers after the last answer");
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() < L, "once");
        // a job ends the lingering (two calls: the second comes at once
        // after the first's answer, so lingering pays again)
        drop(a.call_within(L, L));
        drop(a.call_within(L, L));
        assert!(a.quick.load(Ordering::Relaxed));
        let b = a.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            b.sent();
        });
        let t = Instant::now();
        assert!(a.linger_for(Duration::from_secs(10)), "a job came");
        sender.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "woken by the job");
        assert_eq!(a.sent.load(Ordering::Relaxed), 1);
        // zero: never
        drop(a.call_within(L, L));
        let t = Instant::now();
        a.linger_for(Duration::ZERO);
        assert!(t.elapsed() < L, "zero turns it off");
    }

    #[test]
    fn a_job_taken_before_the_park_ends_the_lingering() {
        const L: Duration = Duration::from_millis(20);
        let a = Arc::new(Activity::default());
        drop(a.call_within(L, L));
        // The Perl thread sent the next request before the runtime came
        // to park (it ran first on the runtime's core): the runtime took
        // it, and what it wrote waits for this park.
        a.sent();
        let c = a.call_within(L, L);
        let t = Instant::now();
        assert!(!a.linger_for(L), "nothing more to wait for");
        assert!(t.elapsed() < L, "the request is not held back");
        assert!(!a.armed.load(Ordering::Relaxed));
        drop(c);
        assert!(a.armed.load(Ordering::Relaxed), "the next answer arms it");
        let t = Instant::now();
        assert!(!a.linger_for(L));
        assert!(t.elapsed() >= L, "and lingers again");
    }

    #[test]
    fn stops_lingering_for_a_program_that_thinks() {
        const L: Duration = Duration::from_millis(20);
        let a = Arc::new(Activity::default());
        // A request that came long after the answer: the next answer
        // does not linger.
        drop(a.call_within(L, L));
        std::thread::sleep(2 * L);
        let c = a.call_within(L, L);
        assert!(!a.quick.load(Ordering::Relaxed), "the request came late");
        drop(c);
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() < L, "no lingering after a slow request");
        // One that came at once: lingering again.
        let c = a.call_within(L, L);
        assert!(a.quick.load(Ordering::Relaxed), "the request came at once");
        drop(c);
        let t = Instant::now();
        a.linger_for(L);
        assert!(t.elapsed() >= L, "lingers again");
    }

    #[test]
    fn reads_its_setting() {
        assert_eq!(chosen(None, LINGER), LINGER);
        assert_eq!(chosen(Some("0"), LINGER), Duration::ZERO);
        assert_eq!(chosen(Some(" 250 "), LINGER), Duration::from_micros(250));
        assert_eq!(chosen(Some("99999999"), WAIT), MOST);
        assert_eq!(chosen(Some("abc"), WAIT), WAIT);
    }

    #[test]
    fn awaits_the_answer_to_one_young_call_of_a_prompt_program() {
        const W: Duration = Duration::from_millis(50);
        let a = Arc::new(Activity::default());
        assert!(!a.awaiting(W), "nothing outstanding");
        let one = a.call_within(W, W);
        assert!(a.awaiting(W), "one call, just made");
        assert!(!a.awaiting(Duration::ZERO), "0: never");
        let two = a.call_within(W, W);
        assert!(!a.awaiting(W), "two calls: their answers keep it busy");
        drop(two);
        std::thread::sleep(W);
        assert!(!a.awaiting(W), "the call is older than the wait");
        drop(one);
        assert!(a.slow.load(Ordering::Relaxed), "it was answered late");
        let c = a.call_within(W, W);
        assert!(!a.awaiting(W), "after a late answer");
        drop(c);
        assert!(!a.slow.load(Ordering::Relaxed), "this one was quick");
        let c = a.call_within(W, W);
        assert!(a.awaiting(W), "after a quick answer, again");
        drop(c);
        std::thread::sleep(W);
        let c = a.call_within(W, W);
        assert!(!a.prompt.load(Ordering::Relaxed), "the request came late");
        assert!(!a.awaiting(W), "a program that thinks between requests");
        drop(c);
        let c = a.call_within(W, W);
        assert!(a.awaiting(W), "one that came at once");
        drop(c);
    }
}

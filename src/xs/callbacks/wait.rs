//! Before the loop blocks while one request is outstanding, the Perl
//! thread waits a moment for its answer. A program that makes one request
//! at a time spends most of each round trip asleep in the loop, and the
//! answer has to wake it: a wake of a thread whose core went idle, or
//! whose core another thread (a local etcd) holds, on the critical path of
//! every round trip (bench/README.md measures it). A thread still awake
//! sees the answer at once. The runtime thread does the same on its side
//! (src/bridge/linger.rs).
//!
//! It waits only while one unary call is outstanding (pipelined requests
//! keep the loop busy without it), only until the call is
//! `EV_ETCD_WAIT_US` old, and only while it pays: for a program that
//! makes its requests back to back (each within that time of the answer
//! before), and while answers come within it: once one took longer, the
//! next call is not waited for, until one is answered within the time
//! again. So a program talking to a distant server spends nothing on it,
//! nor one that thinks between its requests, nor an idle client (nothing
//! outstanding). While waiting it yields, so any other thread that wants
//! the core has it. Watchers of other descriptors and timers are seen at
//! most `EV_ETCD_WAIT_US` later.

use std::time::{Duration, Instant};

use crate::bridge::linger::answer_wait;

use super::registry::with;

/// The Perl thread's count of the calls it may wait for.
pub(super) struct Waiter {
    /// Unary calls outstanding whose answer is due (not a lock or a
    /// campaign, which wait for others).
    calls: usize,
    /// When the one outstanding call was made (`None` while there are
    /// more, or when it is not known).
    since: Option<Instant>,
    /// When the answer to the last call alone arrived.
    answered: Option<Instant>,
    /// The last call alone came within the wait of the answer before it.
    prompt: bool,
    /// The last answer to a call alone took longer than the wait.
    slow: bool,
}

impl Default for Waiter {
    fn default() -> Waiter {
        Waiter {
            calls: 0,
            since: None,
            answered: None,
            prompt: true,
            slow: false,
        }
    }
}

impl Waiter {
    /// A call whose answer is due was made.
    pub fn started(&mut self) {
        self.started_within(Instant::now(), answer_wait());
    }

    fn started_within(&mut self, now: Instant, wait: Duration) {
        self.calls += 1;
        if self.calls == 1 {
            self.since = Some(now);
            if let Some(answered) = self.answered.take() {
                self.prompt = now.duration_since(answered) < wait;
            }
        } else {
            self.since = None;
        }
    }

    /// Its answer arrived.
    pub fn answered(&mut self) {
        self.answered_within(answer_wait());
    }

    fn answered_within(&mut self, wait: Duration) {
        if self.calls == 1 {
            if let Some(since) = self.since.take() {
                let now = Instant::now();
                self.slow = now.duration_since(since) >= wait;
                self.answered = Some(now);
            }
        }
        self.calls = self.calls.saturating_sub(1);
    }

    /// It will not be answered here (its client was destroyed).
    pub fn forget(&mut self) {
        self.calls = self.calls.saturating_sub(1);
        self.since = None;
    }

    /// Until when the loop should wait before it blocks, if at all.
    pub fn due(&self) -> Option<Instant> {
        self.due_within(answer_wait())
    }

    fn due_within(&self, wait: Duration) -> Option<Instant> {
        if self.calls != 1 || !self.prompt || self.slow || wait.is_zero() {
            return None;
        }
        let until = self.since? + wait;
        (Instant::now() < until).then_some(until)
    }
}

/// Before the loop blocks (the .pm's prepare watcher, after `flush`): while
/// one call is outstanding whose answer is due soon, waits for it, yielding
/// the core meanwhile.
pub fn wait_for_answer() {
    let Some(until) = with(|m| m.waiter.due()) else {
        return;
    };
    wait(until, || {
        with(|m| m.bridge.as_ref().is_none_or(|b| b.queued() > 0))
    });
}

/// Waits, yielding, until `arrived` or `until`. False when the time ran out.
fn wait(until: Instant, mut arrived: impl FnMut() -> bool) -> bool {
    loop {
        if arrived() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(50);

    /// The call is answered, and the next made at once.
    fn back_to_back(w: &mut Waiter) {
        w.answered_within(W);
        w.started_within(Instant::now(), W);
    }

    #[test]
    fn one_call_is_waited_for_until_it_is_as_old_as_the_wait() {
        let mut w = Waiter::default();
        assert_eq!(w.due_within(W), None, "nothing outstanding");
        let t = Instant::now();
        w.started_within(t, W);
        assert_eq!(w.due_within(W), Some(t + W));
        assert_eq!(w.due_within(Duration::ZERO), None, "0: never");
        w.answered_within(W);
        assert_eq!(w.due_within(W), None, "answered");
        assert!(!w.slow, "answered in time");
        let mut w = Waiter::default();
        w.started_within(Instant::now() - W, W);
        assert_eq!(w.due_within(W), None, "older than the wait");
    }

    #[test]
    fn two_calls_are_not_waited_for() {
        let mut w = Waiter::default();
        w.started_within(Instant::now(), W);
        w.started_within(Instant::now(), W);
        assert_eq!(w.due_within(W), None);
        w.answered_within(W);
        assert_eq!(
            w.due_within(W),
            None,
            "the one left: when it was made is not known"
        );
        back_to_back(&mut w);
        assert!(w.due_within(W).is_some(), "one again");
    }

    #[test]
    fn after_a_late_answer_calls_are_not_waited_for_until_one_is_quick() {
        let mut w = Waiter::default();
        w.started_within(Instant::now() - W, W);
        back_to_back(&mut w);
        assert!(w.slow);
        assert_eq!(w.due_within(W), None, "the last one was late");
        back_to_back(&mut w);
        assert!(w.due_within(W).is_some(), "the last one was quick");
    }

    #[test]
    fn a_program_that_thinks_between_its_requests_is_not_waited_for() {
        let mut w = Waiter::default();
        w.started_within(Instant::now(), W);
        w.answered_within(W);
        let later = Instant::now() + W;
        w.started_within(later, W);
        assert!(!w.prompt);
        assert_eq!(w.due_within(W), None);
        back_to_back(&mut w);
        assert!(w.prompt, "back to back again");
        assert!(w.due_within(W).is_some());
    }

    #[test]
    fn a_forgotten_call_is_not_waited_for() {
        let mut w = Waiter::default();
        w.started_within(Instant::now(), W);
        w.forget();
        assert_eq!(w.calls, 0);
        assert_eq!(w.due_within(W), None);
        w.forget();
        assert_eq!(w.calls, 0, "never below zero");
    }

    #[test]
    fn the_wait_ends_when_the_answer_arrives_or_the_time_runs_out() {
        let mut n = 0;
        assert!(wait(Instant::now() + Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert_eq!(n, 3);
        let t = Instant::now();
        assert!(!wait(t + Duration::from_millis(2), || false));
        assert!(t.elapsed() >= Duration::from_millis(2));
    }
}

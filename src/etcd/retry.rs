//! Retry policy, declared per RPC class apart from the API surface, and the
//! backoff used by unary retries and stream reconnects. Pure Rust.

use std::time::Duration;

/// Which retries an RPC allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Repeatable reads: retried on UNAVAILABLE, on the next endpoint.
    Idempotent,
    /// Writes and other calls: retried only when the request provably never
    /// left the client (no connection could be made).
    AtMostOnce,
}

/// What to do with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retry,
    Fail,
}

/// Decides whether attempt number `attempt` (1-based, the one that just
/// failed) may be followed by another.
pub fn verdict(
    class: RetryClass,
    code: tonic::Code,
    never_sent: bool,
    attempt: u32,
    max_retries: u32,
    endpoints: usize,
) -> Verdict {
    // A request that never reached a server may always try each other endpoint once.
    let budget = if never_sent {
        max_retries.max(endpoints.saturating_sub(1) as u32)
    } else {
        max_retries
    };
    if attempt > budget {
        return Verdict::Fail;
    }
    let allowed =
        never_sent || (class == RetryClass::Idempotent && code == tonic::Code::Unavailable);
    if allowed {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// Exponential backoff with a floor (so a dead server never makes a tight
/// loop), a cap, and jitter (so many clients do not reconnect in step).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    seed: u64,
    floor: Duration,
    cap: Duration,
}

/// The floor and cap of a client's backoffs (POD "new",
/// `retry_backoff_min`, `retry_backoff_max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub floor: Duration,
    pub cap: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            floor: FLOOR,
            cap: CAP,
        }
    }
}

pub const FLOOR: Duration = Duration::from_millis(50);
pub const CAP: Duration = Duration::from_secs(2);

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::within(Limits::default())
    }

    /// A backoff between `l.floor` and `l.cap` (a cap below the floor is
    /// the floor).
    pub fn within(l: Limits) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Backoff {
            next: l.floor,
            seed,
            floor: l.floor,
            cap: l.cap.max(l.floor),
        }
    }

    /// The next delay: between half and all of the current step (never
    /// below the floor), then the step doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.cap);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = step / 2;
        let jitter = Duration::from_nanos(self.seed % (half.as_nanos() as u64 + 1));
        (half + jitter).max(self.floor)
    }

    pub fn reset(&mut self) {
        self.next = self.floor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_by_class_code_and_budget() {
        use RetryClass::{AtMostOnce as W, Idempotent as R};
        use Verdict::{Fail, Retry};
        // (class, code, never_sent, attempt, max_retries, endpoints, expected)
        let cases = [
            // reads retry on UNAVAILABLE, writes do not; other codes never retry
            (R, tonic::Code::from(14), false, 1, 3, 1, Retry),
            (W, tonic::Code::from(14), false, 1, 3, 1, Fail),
            (R, tonic::Code::from(4), false, 1, 3, 1, Fail),
            (R, tonic::Code::from(11), false, 1, 3, 1, Fail),
            // a request that never left the client retries, within the budget
            (W, tonic::Code::from(14), true, 1, 3, 1, Retry),
            (W, tonic::Code::from(14), true, 3, 3, 1, Retry),
            (W, tonic::Code::from(14), true, 4, 3, 1, Fail),
            (R, tonic::Code::from(14), false, 4, 3, 1, Fail),
            // max_retries 0 still tries every other endpoint once when nothing was sent
            (W, tonic::Code::from(14), true, 1, 0, 2, Retry),
            (W, tonic::Code::from(14), true, 2, 0, 2, Fail),
            (R, tonic::Code::from(14), false, 1, 0, 2, Fail),
        ];
        for (i, (class, code, never_sent, attempt, max, eps, want)) in cases.into_iter().enumerate()
        {
            assert_eq!(
                verdict(class, code, never_sent, attempt, max, eps),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn backoff_has_floor_doubles_and_caps() {
        let mut b = Backoff::new();
        let mut prev_cap = Duration::ZERO;
        for i in 0..20 {
            let d = b.next_delay();
            assert!(d >= FLOOR, "step {i}: {d:?} below floor");
            assert!(d <= CAP, "step {i}: {d:?} above cap");
            prev_cap = prev_cap.max(d);
        }
        assert!(prev_cap >= CAP / 2, "never grew: {prev_cap:?}");
        b.reset();
        assert!(b.next_delay() <= FLOOR.max(Duration::from_millis(50)));
    }

    proptest::proptest! {
        /// A request is never attempted more than budget + 1 times, a write
        /// that may have reached a server is never replayed, and only
        /// UNAVAILABLE (or "never sent") ever earns a retry.
        #[test]
        fn retries_are_bounded_and_safe(
            read in proptest::prelude::any::<bool>(),
            code in proptest::prelude::Strategy::prop_map(0i32..20, tonic::Code::from),
            sent_pattern in proptest::prelude::any::<u64>(),
            max in 0u32..12,
            eps in 0usize..6,
        ) {
            let class = if read { RetryClass::Idempotent } else { RetryClass::AtMostOnce };
            let mut attempt = 1u32;
            loop {
                let never_sent = sent_pattern >> (attempt % 64) & 1 == 1;
                match verdict(class, code, never_sent, attempt, max, eps) {
                    Verdict::Fail => break,
                    Verdict::Retry => {
                        proptest::prop_assert!(never_sent || (read && code == tonic::Code::Unavailable));
                        attempt += 1;
                    }
                }
                proptest::prop_assert!(attempt <= max.max(eps.saturating_sub(1) as u32) + 1);
            }
        }
    }
}

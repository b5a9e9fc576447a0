//! Where one round trip goes (bench/latency.pl): with the `trace` feature,
//! each stage of a request stamps the time, and the Perl thread adds the
//! gaps between stages up when the callback starts. Meant for one request
//! at a time (a sequential benchmark): the stamps are those of the latest
//! request. Without the feature every call here compiles to nothing.
#![forbid(unsafe_code)]

/// The stages, in the order a request passes them.
#[derive(Clone, Copy)]
pub enum Stage {
    /// The Perl thread hands the job to the runtime.
    Submit = 0,
    /// The runtime thread takes the job.
    Pickup,
    /// The call starts (encode, send).
    Send,
    /// Its bytes are written to the connection (the first write since).
    Wire,
    /// The last bytes read from the connection before its answer.
    Reply,
    /// The call's answer is decoded.
    Answer,
    /// The completion is queued for the Perl thread.
    Queued,
    /// The runtime writes to the notify fd.
    Signal,
    /// The Perl thread's drain starts (the loop woke up).
    Wakeup,
    /// The callback is about to run.
    Callback,
}

pub const STAGES: [&str; 10] = [
    "submit", "pickup", "send", "wire", "reply", "answer", "queued", "signal", "wakeup", "callback",
];

#[cfg(feature = "trace")]
mod imp {
    use super::{Stage, STAGES};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::OnceLock;
    use std::time::Instant;

    const N: usize = STAGES.len();
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    static AT: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
    static SUM: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
    static COUNT: AtomicU64 = AtomicU64::new(0);

    fn now() -> u64 {
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    pub fn stamp(s: Stage) {
        AT[s as usize].store(now(), Relaxed);
    }

    /// A write to a connection: the request's bytes went out, if it is
    /// the first write since the call started.
    pub fn wrote() {
        if AT[Stage::Wire as usize].load(Relaxed) < AT[Stage::Send as usize].load(Relaxed) {
            stamp(Stage::Wire);
        }
    }

    /// A read from a connection after the request went out and before
    /// its answer.
    pub fn read() {
        let wire = AT[Stage::Wire as usize].load(Relaxed);
        if wire > 0 && AT[Stage::Answer as usize].load(Relaxed) == 0 {
            stamp(Stage::Reply);
        }
    }

    /// At `Callback`: adds the gaps of a request that passed every stage
    /// in order.
    pub fn close() {
        stamp(Stage::Callback);
        let t: Vec<u64> = AT.iter().map(|a| a.load(Relaxed)).collect();
        if t.windows(2).all(|w| w[0] <= w[1]) && t[0] > 0 {
            for i in 1..N {
                SUM[i].fetch_add(t[i] - t[i - 1], Relaxed);
            }
            COUNT.fetch_add(1, Relaxed);
        }
        for a in &AT {
            a.store(0, Relaxed);
        }
    }

    /// (stage, mean ns since the previous stage) and the number of
    /// requests counted; the sums restart.
    pub fn report() -> (Vec<(&'static str, f64)>, u64) {
        let n = COUNT.swap(0, Relaxed);
        let gaps = (1..N)
            .map(|i| {
                let s = SUM[i].swap(0, Relaxed);
                (STAGES[i], if n > 0 { s as f64 / n as f64 } else { 0.0 })
            })
            .collect();
        (gaps, n)
    }
}

#[cfg(not(feature = "trace"))]
mod imp {
    use super::Stage;

    #[inline(always)]
    pub fn stamp(_: Stage) {}

    #[inline(always)]
    pub fn close() {}

    #[inline(always)]
    pub fn wrote() {}

    #[inline(always)]
    pub fn read() {}

    pub fn report() -> (Vec<(&'static str, f64)>, u64) {
        (Vec::new(), 0)
    }
}

pub use imp::{close, read, report, stamp, wrote};

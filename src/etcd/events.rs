//! What a client does on its own, made visible (POD "EVENTS AND
//! COUNTERS"): events (a retry, a failover, a stream lost or resumed, a
//! re-login, an endpoint down or up, a keepalive lost, backpressure on or
//! off) and counters. The runtime thread emits; the Perl thread takes the
//! queued events on its next drain and calls `on_event`, and reads the
//! counters for `stats`. With no listener (no `on_event`, no
//! `EV_ETCD_DEBUG`) an event is never built: `emit` takes a closure and
//! returns after one atomic load. Counters are relaxed atomic adds.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::error::Error;

/// One thing the client did on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A failed attempt of `method` is tried again (`attempt` is the next
    /// attempt's number, from 2) after `delay`.
    Retry {
        method: &'static str,
        attempt: u32,
        delay: Duration,
        error: Error,
    },
    /// Requests now go to `to` instead of `from`.
    Failover {
        from: String,
        to: String,
        why: String,
    },
    /// A stream (`watch`, `keepalive`, `observe`) was lost; it is reopened
    /// unless the error is final.
    StreamLost {
        kind: &'static str,
        endpoint: String,
        error: Error,
    },
    /// A stream lost earlier was taken again by `endpoint`; `revision` is
    /// the newest revision it had delivered (watch), else 0.
    StreamResumed {
        kind: &'static str,
        endpoint: String,
        revision: i64,
    },
    /// The client logged in again because its token was refused; `error`
    /// when that login failed.
    Relogin { error: Option<Error> },
    /// The transport of `endpoint` failed, or it has no leader.
    EndpointDown { endpoint: String },
    /// `endpoint` answered again after being down.
    EndpointUp { endpoint: String },
    /// A lease kept alive by `lease_keepalive_start` is lost.
    KeepaliveLost { lease: i64, error: Error },
    /// Completions waiting for the Perl thread passed `max_pending` or
    /// `max_pending_bytes` (`on`), or went back below half of both: watch
    /// streams stop or resume reading.
    Backpressure {
        on: bool,
        pending: usize,
        bytes: usize,
    },
}

impl Event {
    /// The event's `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Retry { .. } => "retry",
            Event::Failover { .. } => "failover",
            Event::StreamLost { .. } => "stream_lost",
            Event::StreamResumed { .. } => "stream_resumed",
            Event::Relogin { .. } => "relogin",
            Event::EndpointDown { .. } => "endpoint_down",
            Event::EndpointUp { .. } => "endpoint_up",
            Event::KeepaliveLost { .. } => "keepalive_lost",
            Event::Backpressure { on: true, .. } => "backpressure_on",
            Event::Backpressure { on: false, .. } => "backpressure_off",
        }
    }
}

/// An error as events name it: `CODE (message)`.
pub fn error_text(e: &Error) -> String {
    format!("{} ({})", e.status_name(), e.message)
}

/// A gRPC status as events name it (`error_text` of its error).
pub fn describe(status: &tonic::Status) -> String {
    error_text(&Error::from_status(status))
}

/// The line `EV_ETCD_DEBUG` prints: the type, then `key=value` pairs.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind())?;
        match self {
            Event::Retry {
                method,
                attempt,
                delay,
                error,
            } => write!(
                f,
                " method={method} attempt={attempt} delay={:.3} error={}",
                delay.as_secs_f64(),
                error_text(error)
            ),
            Event::Failover { from, to, why } => write!(f, " from={from} to={to} why={why}"),
            Event::StreamLost {
                kind,
                endpoint,
                error,
            } => write!(
                f,
                " kind={kind} endpoint={endpoint} error={}",
                error_text(error)
            ),
            Event::StreamResumed {
                kind,
                endpoint,
                revision,
            } => write!(f, " kind={kind} endpoint={endpoint} revision={revision}"),
            Event::Relogin { error: None } => write!(f, " ok=1"),
            Event::Relogin { error: Some(e) } => write!(f, " ok=0 error={}", error_text(e)),
            Event::EndpointDown { endpoint } | Event::EndpointUp { endpoint } => {
                write!(f, " endpoint={endpoint}")
            }
            Event::KeepaliveLost { lease, error } => {
                write!(f, " lease={lease} error={}", error_text(error))
            }
            Event::Backpressure { pending, bytes, .. } => {
                write!(f, " pending={pending} bytes={bytes}")
            }
        }
    }
}

/// An event with the time it happened.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub at: SystemTime,
    pub event: Event,
}

/// Counters of what a client did (`stats`). The Perl thread adds what it
/// knows itself (requests in flight, open watches, queued completions).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub reconnects: AtomicU64,
    pub relogins: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A client's listeners, its queue of events for the Perl thread, and its
/// counters. Shared by both threads (inside `EndpointStates`).
#[derive(Default)]
pub struct Observer {
    /// `on_event` is set: events are queued for the Perl thread.
    listening: AtomicBool,
    /// `EV_ETCD_DEBUG`: events are printed to STDERR as they happen.
    debug: AtomicBool,
    queue: Mutex<Vec<Stamped>>,
    /// How the Perl thread is woken for queued events (set by the runtime).
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
    pub counters: Counters,
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer")
            .field("listening", &self.listening)
            .field("debug", &self.debug)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Observer {
    /// Turns event delivery and STDERR lines on or off.
    pub fn listen(&self, on_event: bool, debug: bool) {
        self.listening.store(on_event, Ordering::Relaxed);
        self.debug.store(debug, Ordering::Relaxed);
    }

    /// How queued events wake the Perl thread (the runtime sets it once).
    pub fn set_wake(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.wake.set(wake);
    }

    /// Whether anyone takes events.
    pub fn wanted(&self) -> bool {
        self.listening.load(Ordering::Relaxed) || self.debug.load(Ordering::Relaxed)
    }

    /// Emits the event `make` builds, if anyone listens.
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if !self.wanted() {
            return;
        }
        let event = make();
        if self.debug.load(Ordering::Relaxed) {
            eprintln!("EV::Etcd: {event}");
        }
        if self.listening.load(Ordering::Relaxed) {
            let at = SystemTime::now();
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push(Stamped { at, event });
            drop(q);
            if let Some(w) = self.wake.get() {
                w();
            }
        }
    }

    /// The events queued since the last call (Perl thread).
    pub fn take(&self) -> Vec<Stamped> {
        if !self.listening.load(Ordering::Relaxed) {
            return Vec::new();
        }
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn nothing_is_built_without_a_listener() {
        let o = Observer::default();
        o.emit(|| panic!("built with nobody listening"));
        assert!(o.take().is_empty());
    }

    #[test]
    fn queued_in_order_and_woken() {
        let o = Observer::default();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        o.set_wake(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        o.listen(true, false);
        o.emit(|| Event::EndpointDown {
            endpoint: "a".into(),
        });
        o.emit(|| Event::EndpointUp {
            endpoint: "a".into(),
        });
        let got: Vec<&str> = o.take().iter().map(|s| s.event.kind()).collect();
        assert_eq!(got, ["endpoint_down", "endpoint_up"]);
        assert_eq!(woken.load(Ordering::Relaxed), 2);
        assert!(o.take().is_empty());
    }

    #[test]
    fn debug_lines() {
        let e = Event::Retry {
            method: "put",
            attempt: 2,
            delay: Duration::from_millis(50),
            error: Error::new(tonic::Code::Unavailable, "etcdserver: no leader"),
        };
        assert_eq!(
            e.to_string(),
            "retry method=put attempt=2 delay=0.050 error=UNAVAILABLE (etcdserver: no leader)"
        );
        let b = Event::Backpressure {
            on: false,
            pending: 3,
            bytes: 10,
        };
        assert_eq!(b.to_string(), "backpressure_off pending=3 bytes=10");
    }
}

//! The endpoint list of one client: target parsing, one lazily connected
//! tonic channel per endpoint, and the "current" endpoint that calls use
//! until it fails (then the next one, round-robin). Runtime thread only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Turns a user endpoint (`host:port`, `http://host:port`) into a URI.
pub fn target_uri(ep: &str) -> String {
    if ep.starts_with("http://") || ep.starts_with("https://") {
        ep.to_owned()
    } else {
        format!("http://{ep}")
    }
}

pub struct Endpoints {
    names: Vec<String>,
    channels: Mutex<Vec<Option<Channel>>>,
    current: AtomicUsize,
    connect_timeout: Duration,
}

impl Endpoints {
    pub fn new(names: Vec<String>, connect_timeout: Duration) -> Endpoints {
        let n = names.len();
        Endpoints {
            names,
            channels: Mutex::new(vec![None; n]),
            current: AtomicUsize::new(0),
            connect_timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.names.len().max(1)
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Moves away from endpoint `from` if it is still the current one.
    pub fn failover(&self, from: usize) {
        let n = self.names.len();
        if n > 1 {
            let _ = self.current.compare_exchange(
                from,
                (from + 1) % n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// The channel of endpoint `i`, created (not yet connected) on first use.
    pub fn channel(&self, i: usize) -> Result<Channel, String> {
        let mut chans = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = &chans[i] {
            return Ok(ch.clone());
        }
        let uri = target_uri(&self.names[i]);
        let ep = Endpoint::from_shared(uri.clone())
            .map_err(|e| format!("invalid endpoint {}: {e}", self.names[i]))?
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(false);
        let ch = ep.connect_lazy();
        chans[i] = Some(ch.clone());
        Ok(ch)
    }

    /// Forgets every channel (their connections close once in-flight calls end).
    pub fn close(&self) {
        let mut chans = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for c in chans.iter_mut() {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target_uri("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(target_uri("http://h:1"), "http://h:1");
        assert_eq!(target_uri("localhost:2379"), "http://localhost:2379");
    }

    #[test]
    fn failover_is_round_robin_and_only_from_current() {
        let e = Endpoints::new(
            vec!["a:1".into(), "b:2".into(), "c:3".into()],
            Duration::from_secs(1),
        );
        assert_eq!(e.current(), 0);
        e.failover(0);
        assert_eq!(e.current(), 1);
        e.failover(0); // stale report: ignored
        assert_eq!(e.current(), 1);
        e.failover(1);
        e.failover(2);
        assert_eq!(e.current(), 0);
    }
}

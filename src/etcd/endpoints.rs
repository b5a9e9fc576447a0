//! The endpoint list of one client: one lazily connected tonic channel per
//! endpoint (TLS when the client has TLS settings; TCP through connector.rs,
//! which reports each connection's life), the "current" endpoint
//! that calls use until it fails (then the next one, round-robin), and what
//! is known of each endpoint's transport (`EndpointStates`), shared with the health
//! monitor on the Perl thread. Channels are created on the runtime thread;
//! `EndpointStates` is plain atomics, readable from any thread.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::client::Liveness;
use super::connector::Dialer;
use super::tls::{self, Tls};

/// What the client knows of one endpoint's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// Nothing tried yet.
    Idle,
    /// The last connection attempt or request reached the server.
    Up,
    /// The last connection attempt or request failed in the transport
    /// (refused, reset, TLS handshake, keepalive timeout), or the open
    /// connection was lost (see connector.rs).
    Down,
}

/// The current endpoint and the transport state of every endpoint, shared
/// between the runtime thread (which records outcomes) and the Perl
/// thread's health monitor (which reads them and may fail over).
#[derive(Debug)]
pub struct EndpointStates {
    current: AtomicUsize,
    failovers: AtomicU64,
    conn: Vec<AtomicU8>,
}

impl EndpointStates {
    pub fn new(n: usize) -> Arc<EndpointStates> {
        Arc::new(EndpointStates {
            current: AtomicUsize::new(0),
            failovers: AtomicU64::new(0),
            conn: (0..n.max(1)).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conn.is_empty()
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.conn.len()
    }

    /// How many times the current endpoint has changed.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// Moves away from endpoint `from` if it is still the current one.
    pub fn failover(&self, from: usize) {
        let n = self.conn.len();
        if n > 1
            && self
                .current
                .compare_exchange(from, (from + 1) % n, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn conn(&self, i: usize) -> Conn {
        match self.conn[i % self.conn.len()].load(Ordering::Relaxed) {
            0 => Conn::Idle,
            1 => Conn::Up,
            _ => Conn::Down,
        }
    }

    pub fn set_conn(&self, i: usize, c: Conn) {
        let v = match c {
            Conn::Idle => 0,
            Conn::Up => 1,
            Conn::Down => 2,
        };
        self.conn[i % self.conn.len()].store(v, Ordering::Relaxed);
    }
}

pub struct Endpoints {
    names: Vec<String>,
    channels: Mutex<Vec<Option<Channel>>>,
    state: Arc<EndpointStates>,
    connect_timeout: Duration,
    liveness: Liveness,
    /// Set when the client speaks TLS (POD "TLS").
    tls: Option<Tls>,
}

impl Endpoints {
    pub fn new(
        names: Vec<String>,
        connect_timeout: Duration,
        liveness: Liveness,
        tls: Option<Tls>,
        state: Arc<EndpointStates>,
    ) -> Endpoints {
        let n = names.len();
        Endpoints {
            names,
            channels: Mutex::new(vec![None; n]),
            state,
            connect_timeout,
            liveness,
            tls,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn current(&self) -> usize {
        self.state.current()
    }

    pub fn state(&self) -> &EndpointStates {
        &self.state
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Moves away from endpoint `from` if it is still the current one.
    pub fn failover(&self, from: usize) {
        self.state.failover(from);
    }

    /// The channel of endpoint `i`, created (not yet connected) on first use.
    pub fn channel(&self, i: usize) -> Result<Channel, String> {
        let mut chans = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = &chans[i] {
            return Ok(ch.clone());
        }
        let uri = tls::target_uri(&self.names[i], self.tls.is_some());
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| format!("invalid endpoint {}: {e}", self.names[i]))?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(self.liveness.time)
            .keep_alive_timeout(self.liveness.timeout)
            .keep_alive_while_idle(self.liveness.while_idle);
        if let Some(t) = &self.tls {
            ep = ep
                .tls_config(t.client_config())
                .map_err(|e| format!("TLS setup for {}: {}", self.names[i], tls::chain_text(&e)))?;
        }
        let ch = ep.connect_with_connector_lazy(Dialer {
            state: self.state.clone(),
            idx: i,
        });
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
    fn failover_is_round_robin_and_only_from_current() {
        let s = EndpointStates::new(3);
        assert_eq!(s.current(), 0);
        s.failover(0);
        assert_eq!(s.current(), 1);
        s.failover(0); // stale report: ignored
        assert_eq!(s.current(), 1);
        assert_eq!(s.failovers(), 1);
        s.failover(1);
        s.failover(2);
        assert_eq!(s.current(), 0);
        assert_eq!(s.failovers(), 3);
        let one = EndpointStates::new(1);
        one.failover(0);
        assert_eq!((one.current(), one.failovers()), (0, 0));
    }

    #[test]
    fn conn_states() {
        let s = EndpointStates::new(2);
        assert_eq!(s.conn(1), Conn::Idle);
        s.set_conn(1, Conn::Down);
        assert_eq!(s.conn(1), Conn::Down);
        s.set_conn(1, Conn::Up);
        assert_eq!(s.conn(1), Conn::Up);
    }
}

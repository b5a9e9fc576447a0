//! The endpoint list of one client: one lazily connected tonic channel per
//! endpoint (TLS when the client has TLS settings; TCP through connector.rs,
//! which reports each connection's life), the "current" endpoint
//! that calls use until it fails (then the next one, round-robin), and what
//! is known of each endpoint's transport (`EndpointStates`), shared with the health
//! monitor on the Perl thread. Channels are created on the runtime thread;
//! `EndpointStates` is plain atomics, readable from any thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::client::Liveness;
use super::connector::Dialer;
use super::events::{Event, Observer};
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

/// The endpoint list, the current endpoint and the transport state of
/// every endpoint, shared between the runtime thread (which records
/// outcomes and may replace the list: `auto_sync_interval`) and the Perl
/// thread (the health monitor reads and may fail over; `endpoints` and
/// `set_endpoints`).
#[derive(Debug)]
pub struct EndpointStates {
    current: AtomicUsize,
    failovers: AtomicU64,
    list: RwLock<Vec<Slot>>,
    /// How many times the list was replaced.
    changes: AtomicU64,
    /// The client's events and counters (events.rs).
    events: Observer,
}

#[derive(Debug)]
struct Slot {
    name: String,
    conn: AtomicU8,
}

fn slot(name: String) -> Slot {
    Slot {
        name,
        conn: AtomicU8::new(0),
    }
}

fn conn_code(c: Conn) -> u8 {
    match c {
        Conn::Idle => 0,
        Conn::Up => 1,
        Conn::Down => 2,
    }
}

impl EndpointStates {
    /// The states of `names` (at least one).
    pub fn new(names: Vec<String>) -> Arc<EndpointStates> {
        assert!(!names.is_empty(), "a client has at least one endpoint");
        Arc::new(EndpointStates {
            current: AtomicUsize::new(0),
            failovers: AtomicU64::new(0),
            list: RwLock::new(names.into_iter().map(slot).collect()),
            changes: AtomicU64::new(0),
            events: Observer::default(),
        })
    }

    /// The client's events and counters.
    pub fn events(&self) -> &Observer {
        &self.events
    }

    /// `n` endpoints named "e0", "e1", ...
    #[cfg(test)]
    pub fn unnamed(n: usize) -> Arc<EndpointStates> {
        EndpointStates::new((0..n.max(1)).map(|i| format!("e{i}")).collect())
    }

    fn list(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.list.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.list().len()
    }

    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.len()
    }

    /// How many times the current endpoint has changed.
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// Moves away from endpoint `from` if it is still the current one;
    /// `why` names the cause in the failover event.
    pub fn failover(&self, from: usize, why: impl FnOnce() -> String) {
        let n = self.len();
        if n > 1
            && self
                .current
                .compare_exchange(from, (from + 1) % n, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.failovers.fetch_add(1, Ordering::Relaxed);
            self.events.emit(|| Event::Failover {
                from: self.name(from),
                to: self.name(from + 1),
                why: why(),
            });
        }
    }

    pub fn conn(&self, i: usize) -> Conn {
        let list = self.list();
        match list[i % list.len()].conn.load(Ordering::Relaxed) {
            0 => Conn::Idle,
            1 => Conn::Up,
            _ => Conn::Down,
        }
    }

    pub fn set_conn(&self, i: usize, c: Conn) {
        let list = self.list();
        self.record(&list[i % list.len()], c);
    }

    /// `set_conn` by name (a connection outlives list changes); nothing
    /// when the name left the list.
    pub fn set_conn_of(&self, name: &str, c: Conn) {
        if let Some(s) = self.list().iter().find(|s| s.name == name) {
            self.record(s, c);
        }
    }

    /// Stores `c` as the slot's state; a change to down, or from down to
    /// up, is an event. The usual case (no change) writes nothing.
    fn record(&self, s: &Slot, c: Conn) {
        let code = conn_code(c);
        if s.conn.load(Ordering::Relaxed) == code {
            return;
        }
        let old = s.conn.swap(code, Ordering::Relaxed);
        let endpoint = || s.name.clone();
        match c {
            Conn::Down if old != code => self.events.emit(|| Event::EndpointDown {
                endpoint: endpoint(),
            }),
            Conn::Up if old == conn_code(Conn::Down) => self.events.emit(|| Event::EndpointUp {
                endpoint: endpoint(),
            }),
            _ => {}
        }
    }

    pub fn name(&self, i: usize) -> String {
        let list = self.list();
        list[i % list.len()].name.clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.list().iter().map(|s| s.name.clone()).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.list().iter().any(|s| s.name == name)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.list().iter().position(|s| s.name == name)
    }

    /// How many times the list was replaced.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Replaces the list by `names` (not empty, no duplicates: the caller
    /// checks). Endpoints that stay keep their state; the current endpoint
    /// stays current when it is still listed, else the first one is. False
    /// when nothing changed.
    pub fn replace(&self, names: Vec<String>) -> bool {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if names.is_empty() || list.iter().map(|s| &s.name).eq(names.iter()) {
            return false;
        }
        let cur = self.current.load(Ordering::Relaxed) % list.len();
        let cur_name = list[cur].name.clone();
        let mut old: Vec<Slot> = std::mem::take(&mut *list);
        *list = names
            .into_iter()
            .map(|n| match old.iter().position(|s| s.name == n) {
                Some(i) => old.swap_remove(i),
                None => slot(n),
            })
            .collect();
        let now = list.iter().position(|s| s.name == cur_name).unwrap_or(0);
        self.current.store(now, Ordering::Relaxed);
        self.changes.fetch_add(1, Ordering::Relaxed);
        true
    }
}

pub struct Endpoints {
    /// Channels by endpoint name, made on first use.
    channels: Mutex<HashMap<String, Channel>>,
    state: Arc<EndpointStates>,
    connect_timeout: Duration,
    liveness: Liveness,
    /// Set when the client speaks TLS (POD "TLS").
    tls: Option<Tls>,
}

impl Endpoints {
    pub fn new(
        connect_timeout: Duration,
        liveness: Liveness,
        tls: Option<Tls>,
        state: Arc<EndpointStates>,
    ) -> Endpoints {
        Endpoints {
            channels: Mutex::new(HashMap::new()),
            state,
            connect_timeout,
            liveness,
            tls,
        }
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    pub fn current(&self) -> usize {
        self.state.current()
    }

    pub fn state(&self) -> &EndpointStates {
        &self.state
    }

    pub fn name(&self, i: usize) -> String {
        self.state.name(i)
    }

    /// Whether the client speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Moves away from endpoint `from` if it is still the current one.
    pub fn failover(&self, from: usize, why: impl FnOnce() -> String) {
        self.state.failover(from, why);
    }

    /// Forgets the channels of endpoints no longer listed.
    pub fn prune(&self) {
        let mut chans = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        chans.retain(|name, _| self.state.contains(name));
    }

    /// The channel of endpoint `i`, created (not yet connected) on first use.
    pub fn channel(&self, i: usize) -> Result<Channel, String> {
        let name = self.state.name(i);
        let mut chans = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ch) = chans.get(&name) {
            return Ok(ch.clone());
        }
        let uri = tls::target_uri(&name, self.tls.is_some());
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| format!("invalid endpoint {name}: {e}"))?
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(self.liveness.time)
            .keep_alive_timeout(self.liveness.timeout)
            .keep_alive_while_idle(self.liveness.while_idle);
        if let Some(t) = &self.tls {
            ep = ep
                .tls_config(t.client_config())
                .map_err(|e| format!("TLS setup for {name}: {}", tls::chain_text(&e)))?;
        }
        let ch = ep.connect_with_connector_lazy(Dialer {
            state: self.state.clone(),
            name: name.clone(),
        });
        chans.insert(name, ch.clone());
        Ok(ch)
    }

    /// Forgets every channel (their connections close once in-flight calls end).
    pub fn close(&self) {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_is_round_robin_and_only_from_current() {
        let s = EndpointStates::unnamed(3);
        assert_eq!(s.current(), 0);
        s.failover(0, || "test".into());
        assert_eq!(s.current(), 1);
        s.failover(0, || "test".into()); // stale report: ignored
        assert_eq!(s.current(), 1);
        assert_eq!(s.failovers(), 1);
        s.failover(1, || "test".into());
        s.failover(2, || "test".into());
        assert_eq!(s.current(), 0);
        assert_eq!(s.failovers(), 3);
        let one = EndpointStates::unnamed(1);
        one.failover(0, || "test".into());
        assert_eq!((one.current(), one.failovers()), (0, 0));
    }

    #[test]
    fn conn_states() {
        let s = EndpointStates::unnamed(2);
        assert_eq!(s.conn(1), Conn::Idle);
        s.set_conn(1, Conn::Down);
        assert_eq!(s.conn(1), Conn::Down);
        s.set_conn(1, Conn::Up);
        assert_eq!(s.conn(1), Conn::Up);
    }

    #[test]
    fn replacing_the_list_keeps_what_stays() {
        let s = EndpointStates::new(vec!["a".into(), "b".into(), "c".into()]);
        s.failover(0, || "test".into());
        s.set_conn(1, Conn::Down);
        assert!(!s.replace(s.names()), "the same list: no change");
        assert!(s.replace(vec!["d".into(), "b".into()]));
        assert_eq!(s.names(), ["d", "b"]);
        assert_eq!(
            (s.current(), s.conn(1), s.conn(0)),
            (1, Conn::Down, Conn::Idle)
        );
        assert_eq!(s.changes(), 1);
        s.set_conn_of("b", Conn::Up);
        s.set_conn_of("gone", Conn::Down);
        assert_eq!(s.conn(1), Conn::Up);
        // The current endpoint left the list: the first one is current.
        assert!(s.replace(vec!["e".into()]));
        assert_eq!((s.current(), s.name(0)), (0, "e".to_owned()));
    }
}

//! The health monitor's decision on each tick (POD "HEALTH MONITORING"): pure logic over
//! the endpoints' shared `EndpointStates`, run on the Perl thread by the timer the
//! .pm starts for `health_interval`. It never opens a connection itself; it
//! may ask for a probe of an endpoint already known to be down, so that
//! recovery is noticed even while no request is being made.

use super::endpoints::{Conn, EndpointStates};

/// What one tick found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// `Some(healthy)` when the health state changed since the last tick.
    pub change: Option<bool>,
    /// The current endpoint after any failover.
    pub endpoint: usize,
    /// The current endpoint is down: try to reach it once in the background.
    pub probe: bool,
}

/// Per-client monitor state: starts healthy, reports only changes.
#[derive(Debug, Clone)]
pub struct Monitor {
    healthy: bool,
    seen_failovers: u64,
}

impl Monitor {
    pub fn new(s: &EndpointStates) -> Monitor {
        Monitor {
            healthy: true,
            seen_failovers: s.failovers(),
        }
    }

    /// Unhealthy when the current endpoint's transport is down, or when
    /// the client had to fail over since the last tick (requests found the
    /// endpoint down and moved on before the tick could see it). A down
    /// endpoint makes the client move to the next one (with more than one
    /// configured), as the reference does, and the change is reported with
    /// the endpoint moved to.
    pub fn tick(&mut self, s: &EndpointStates) -> Tick {
        let mut cur = s.current();
        let moved = s.failovers() != self.seen_failovers;
        let down = s.conn(cur) == Conn::Down;
        let healthy = !moved && !down;
        if down && s.len() > 1 {
            s.failover(cur, || "the health check found it down".into());
            cur = s.current();
        }
        self.seen_failovers = s.failovers();
        let change = (healthy != self.healthy).then_some(healthy);
        self.healthy = healthy;
        Tick {
            change,
            endpoint: cur,
            probe: s.conn(cur) == Conn::Down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(change: Option<bool>, endpoint: usize, probe: bool) -> Tick {
        Tick {
            change,
            endpoint,
            probe,
        }
    }

    #[test]
    fn single_endpoint_reports_down_then_up() {
        let s = EndpointStates::unnamed(1);
        let mut m = Monitor::new(&s);
        assert_eq!(m.tick(&s), t(None, 0, false));
        s.set_conn(0, Conn::Up);
        assert_eq!(m.tick(&s), t(None, 0, false));
        s.set_conn(0, Conn::Down);
        assert_eq!(m.tick(&s), t(Some(false), 0, true));
        assert_eq!(m.tick(&s), t(None, 0, true));
        s.set_conn(0, Conn::Up);
        assert_eq!(m.tick(&s), t(Some(true), 0, false));
    }

    #[test]
    fn down_endpoint_moves_to_the_next() {
        let s = EndpointStates::unnamed(3);
        let mut m = Monitor::new(&s);
        s.set_conn(0, Conn::Down);
        assert_eq!(m.tick(&s), t(Some(false), 1, false));
        assert_eq!(s.current(), 1);
        assert_eq!(m.tick(&s), t(Some(true), 1, false));
    }

    #[test]
    fn failover_by_requests_is_reported_as_a_dip() {
        let s = EndpointStates::unnamed(2);
        let mut m = Monitor::new(&s);
        s.set_conn(0, Conn::Down);
        s.failover(0, || "test".into()); // a request moved on
        s.set_conn(1, Conn::Up);
        assert_eq!(m.tick(&s), t(Some(false), 1, false));
        assert_eq!(m.tick(&s), t(Some(true), 1, false));
        assert_eq!(m.tick(&s), t(None, 1, false));
    }

    #[test]
    fn all_down_stays_unhealthy_and_probes() {
        let s = EndpointStates::unnamed(2);
        let mut m = Monitor::new(&s);
        s.set_conn(0, Conn::Down);
        s.set_conn(1, Conn::Down);
        assert_eq!(m.tick(&s), t(Some(false), 1, true));
        assert_eq!(m.tick(&s), t(None, 0, true));
        s.set_conn(0, Conn::Up);
        assert_eq!(m.tick(&s), t(Some(true), 0, false));
    }
}

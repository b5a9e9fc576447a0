//! The event hashes `on_event` receives (POD "EVENTS AND COUNTERS").

use std::time::UNIX_EPOCH;

use crate::etcd::events::{Event, Stamped};
use crate::perl::{NewSv, Perl};

/// `{ type => ..., time => epoch seconds, ...the event's fields }`; an
/// error is an error hash whose `source` is the method or stream kind.
pub fn event(p: &Perl, s: &Stamped) -> NewSv {
    let mut hv = p.new_hash();
    let time =
        s.at.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
    hv.bytes("type", s.event.kind().as_bytes()).nv("time", time);
    match &s.event {
        Event::Retry {
            method,
            attempt,
            delay,
            error,
        } => {
            hv.bytes("method", method.as_bytes())
                .uv("attempt", u64::from(*attempt))
                .nv("delay", delay.as_secs_f64())
                .put("error", super::error(p, error, method));
        }
        Event::Failover { from, to, why } => {
            hv.bytes("from", from.as_bytes())
                .bytes("to", to.as_bytes())
                .bytes("why", why.as_bytes());
        }
        Event::StreamLost {
            kind,
            endpoint,
            error,
        } => {
            hv.bytes("kind", kind.as_bytes())
                .bytes("endpoint", endpoint.as_bytes())
                .put("error", super::error(p, error, kind));
        }
        Event::StreamResumed {
            kind,
            endpoint,
            revision,
        } => {
            hv.bytes("kind", kind.as_bytes())
                .bytes("endpoint", endpoint.as_bytes())
                .iv("revision", *revision);
        }
        Event::Relogin { error } => {
            hv.bool("ok", error.is_none());
            if let Some(e) = error {
                hv.put("error", super::error(p, e, "authenticate"));
            }
        }
        Event::EndpointDown { endpoint } | Event::EndpointUp { endpoint } => {
            hv.bytes("endpoint", endpoint.as_bytes());
        }
        Event::KeepaliveLost { lease, error } => {
            hv.iv("lease", *lease)
                .put("error", super::error(p, error, "keepalive"));
        }
        Event::Backpressure { pending, bytes, .. } => {
            hv.uv("pending", *pending as u64).uv("bytes", *bytes as u64);
        }
    }
    hv.finish()
}

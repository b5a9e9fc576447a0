//! What the Perl thread keeps of its requests: the registry of clients and
//! of outstanding callbacks (registry.rs), the calls that register a
//! callback and send its job to the runtime (submit.rs), and the drain that
//! turns completions into callback calls (drain.rs). Everything here runs
//! on the Perl thread; borrows of the registry are never held while Perl
//! code runs, so callbacks may re-enter freely (new requests, destroying
//! the client, nested loops).

mod drain;
mod registry;
mod submit;
mod wait;

pub use drain::{drain, flush, ours, shutdown};
pub use registry::{
    check_client, check_stream, client_tag_ok, drop_client, endpoints, health_tick, namespaced,
    new_client, notify_fd, set_client_tag, set_endpoints, stats, Stats,
};
pub use submit::{
    cancel_call, cancel_observe, cancel_watch, keepalive_start, lease_keepalive, observe, snapshot,
    stop_keepalive, submit, submit_cancellable, watch, watch_progress,
};
pub use wait::wait_for_answer;

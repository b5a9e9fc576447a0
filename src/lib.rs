//! EV::Etcd's engine: an etcd v3 client for Perl's EV loop.
//!
//! Module map (see also the architecture notes in the README):
//! - `perl`: the only place with `unsafe` and the Perl API (C shim
//!   declarations, value handles, xsub wrapper, conversions, boot).
//! - `xs`: the per-service XS surface (decode arguments, submit, return).
//! - `bridge`: the thread boundary (runtime thread, notify fd, registry of
//!   outstanding callbacks, drain).
//! - `etcd`: a pure async etcd client, testable without Perl.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bridge;
pub mod etcd;
pub mod perl;
pub mod xs;

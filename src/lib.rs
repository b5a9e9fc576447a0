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

/// The engine's Rust allocations (never Perl's) come from mimalloc: its
/// thread-local heaps take frees from the other thread without locks.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bridge;
pub mod etcd;
pub mod perl;
pub mod xs;

//! EV::Etcd's engine: an etcd v3 client for Perl's EV loop.
//!
//! Module map (docs/ARCHITECTURE.md has the whole picture):
//! - `perl`: the Perl binding, the only place with the Perl API (C shim
//!   declarations, value handles, the xsub wrapper and entry point, boot).
//!   It knows nothing of etcd.
//! - `sys`: the operating-system corner (eventfd, fork hook, SIGPIPE,
//!   allocator tuning). With `perl`, the only modules with `unsafe`.
//! - `xs`: the module's surface: the per-service subs (decode arguments,
//!   submit, return), the table of every Perl sub (surface.rs), the Perl
//!   thread's registry of callbacks and its drain (callbacks/), and the
//!   response shapes (convert/).
//! - `bridge`: the thread boundary (runtime thread, notify fd, job and
//!   completion queues); no Perl in it.
//! - `etcd`: a pure async etcd client, testable without Perl.
//! - `trace`: time stamps of a request's stages for bench/latency.pl
//!   (the `trace` feature; nothing without it).
//!
//! Dependencies: `etcd <- bridge <- xs -> perl`, with `sys` and `trace`
//! below them all.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// The engine's Rust allocations (never Perl's) come from mimalloc: its
/// thread-local heaps take frees from the other thread without locks.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bridge;
pub mod etcd;
pub mod perl;
pub mod sys;
pub mod trace;
pub mod xs;

// `boot_EV__Etcd`, the symbol XSLoader calls.
perl_boot!(boot_EV__Etcd, xs::surface::init);

//! The thin XS surface, one file per etcd service: each body decodes its
//! Perl arguments into a plain request, submits it, and returns. Every sub
//! is one row of the table in surface.rs, which the boot function defines.
#![forbid(unsafe_code)]

pub mod args;
pub mod auth;
pub mod client;
pub mod cluster;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod surface;
pub mod watch;

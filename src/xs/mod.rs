//! The thin XS surface, one file per etcd service: each body decodes its
//! Perl arguments into a plain request, submits it, and returns. The entry
//! points and their registration live in src/perl/boot.rs.
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
pub mod watch;

//! The thin XS surface, one file per etcd service: each body decodes its
//! Perl arguments into a plain request, submits it, and returns. Every sub
//! is one row of the table in surface.rs, which the boot function defines.
//! Beside them: what the Perl thread keeps of its requests (callbacks/:
//! registry, submit, drain) and the response shapes built from the
//! engine's replies (convert/).
#![forbid(unsafe_code)]

pub mod args;
pub mod auth;
pub mod callbacks;
pub mod client;
pub mod cluster;
pub mod convert;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod surface;
pub mod watch;

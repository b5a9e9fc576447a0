//! A pure async Rust etcd v3 client, testable without Perl: generated
//! protobuf types (pb), the unary calls (call, client, retry), the token
//! (auth), errors and their classes (error), endpoints, their connections
//! and health (endpoints, connector, tls, health), key namespaces
//! (namespace, kv), and the long-lived streams (stream: what they share;
//! watch, keepalive, observe, snapshot). Runs on the runtime thread; never
//! touches Perl.
#![forbid(unsafe_code)]

pub mod auth;
pub mod backlog;
pub mod call;
pub mod client;
pub mod connector;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod health;
pub mod keepalive;
pub mod kv;
pub mod leader;
pub mod namespace;
pub mod observe;
pub mod pb;
pub mod retry;
pub mod snapshot;
pub mod stream;
pub mod tls;
pub mod watch;

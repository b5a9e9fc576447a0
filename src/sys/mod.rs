//! The process's operating-system corner, below every other module: the
//! eventfd that wakes the loop (fd), the cached process id and the fork
//! hook, SIGPIPE (process), and the allocator's tuning (alloc). Each
//! `unsafe` block here is a plain libc or allocator call with a `SAFETY`
//! line; nothing here knows Perl or etcd.

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod fd;
pub mod process;

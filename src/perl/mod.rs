//! The Perl binding: with src/sys/, the only module tree with `unsafe`,
//! and the only one that speaks the Perl API. The C shim's declarations
//! (ffi), safe value handles behind a `!Send` interpreter token (sv), the
//! xsub wrapper and the table-driven entry point of every xsub (xsub), and
//! the module's boot function (boot). It knows nothing of etcd.

pub mod boot;
pub mod ffi;
pub mod sv;
pub mod xsub;

pub use sv::{mark_perl_dead, Av, Hv, NewSv, Perl, Sv, SvBox};
pub use xsub::{XsResult, Xsub};

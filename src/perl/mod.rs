//! The Perl binding: with src/sys/, the only module tree with `unsafe`,
//! and the only one that speaks the Perl API. The C shim's declarations
//! (ffi), safe value handles behind a `!Send` interpreter token (sv), the
//! xsub wrapper and the table-driven entry point of every xsub (xsub), the
//! module's boot function (boot), and the response conversions (convert*,
//! which hold no `unsafe`).

pub mod boot;
pub mod convert;
pub mod convert_lease;
pub mod convert_ops;
pub mod ffi;
pub mod sv;
pub mod xsub;

pub use sv::{mark_perl_dead, Av, Hv, NewSv, Perl, Sv, SvBox};
pub use xsub::{XsResult, Xsub};

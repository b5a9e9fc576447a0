//! The Perl layer: the only module tree with `unsafe` or the Perl API. The
//! C shim's declarations (ffi), safe value handles behind a `!Send`
//! interpreter token (sv), the xsub wrapper (xsub), response conversions
//! (convert) and the boot function that registers every xsub (boot).

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod boot;
pub mod convert;
pub mod convert_lease;
pub mod convert_ops;
pub mod fd;
pub mod ffi;
pub mod process;
pub mod sv;
pub mod xsub;

pub use sv::{mark_perl_dead, Av, Hv, NewSv, Perl, Sv, SvBox};
pub use xsub::XsResult;

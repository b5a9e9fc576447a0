//! The xsub wrapper: reads the argument stack, runs a Rust body under
//! `catch_unwind`, puts the return value back, and croaks only after every
//! Rust frame of the body has been dropped, so Perl's longjmp never skips a
//! destructor and a Rust panic becomes a Perl exception, never an abort.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ffi::{self, Pi, SV};
use super::sv::{NewSv, Perl, Sv};

/// What an xsub body returns: an optional return value, or a croak message.
pub type XsResult = Result<Option<NewSv>, String>;

/// The shape of every xsub body.
pub type XsBody = for<'a> fn(&Perl<'a>, &[Sv<'a>]) -> XsResult;

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    let what = e
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("EV::Etcd: internal error: {what}")
}

/// Runs `body` as the xsub currently called by Perl.
///
/// # Safety
/// Must be called directly from an xsub entry point with the interpreter
/// pointer Perl passed to it (null on a non-MULTIPLICITY perl).
pub unsafe fn run(pi: Pi, body: XsBody) {
    // SAFETY: the dXSARGS / XSRETURN protocol on the live interpreter
    // stack; indexes stay within the items Perl pushed.
    unsafe {
        let mark = ffi::ev_etcd_popmark(pi) as isize;
        let sp = ffi::ev_etcd_stack_sp(pi);
        let base = ffi::ev_etcd_stack_base(pi);
        let items = sp.offset_from(base.offset(mark)).max(0) as usize;
        let ax = mark + 1;

        let outcome: Result<*mut SV, String> = {
            let perl = Perl::enter(pi);
            let res = catch_unwind(AssertUnwindSafe(|| {
                let args: Vec<Sv> = (0..items)
                    .map(|i| perl.sv(*base.offset(ax + i as isize)))
                    .collect();
                body(&perl, &args)
                    .map(|r| r.map(|v| perl.mortal(v)).unwrap_or(std::ptr::null_mut()))
            }));
            // A die inside a conversion (tied FETCH, overloading) wins:
            // the body went on with undef and must not have sent anything.
            match (perl.take_died(), res) {
                (Some(died), Ok(_)) => Err(died),
                (_, Ok(r)) => r,
                (_, Err(e)) => Err(panic_text(e)),
            }
        };
        // The stack may have been reallocated while the body ran.
        let base = ffi::ev_etcd_stack_base(pi);
        match outcome {
            Ok(ret) if !ret.is_null() => {
                *base.offset(ax) = ret;
                ffi::ev_etcd_set_stack_sp(pi, base.offset(ax));
            }
            Ok(_) => ffi::ev_etcd_set_stack_sp(pi, base.offset(ax - 1)),
            Err(msg) => {
                ffi::ev_etcd_set_stack_sp(pi, base.offset(ax - 1));
                let sv = ffi::ev_etcd_mortal(
                    pi,
                    ffi::ev_etcd_new_pvn(pi, msg.as_ptr().cast(), msg.len()),
                );
                drop(msg);
                croak(pi, sv);
            }
        }
    }
}

#[inline(never)]
unsafe fn croak(pi: Pi, msg: *mut SV) -> ! {
    // SAFETY: no Rust value with a destructor is alive in this frame or in
    // `run` at this point; croak_sv longjmps to the caller's eval frame.
    unsafe { ffi::ev_etcd_croak_sv(pi, msg) }
}

/// Defines `extern "C"` xsub entry points (one per body) with the signature
/// the target perl expects.
#[macro_export]
macro_rules! xsubs {
    ($($entry:ident => $body:path;)*) => {
        $(
            #[cfg(perl_multiplicity)]
            #[allow(non_snake_case)]
            unsafe extern "C" fn $entry(pi: $crate::perl::ffi::Pi, _cv: *mut $crate::perl::ffi::CV) {
                // SAFETY: called by Perl as an xsub with its interpreter.
                unsafe { $crate::perl::xsub::run(pi, $body) }
            }
            #[cfg(not(perl_multiplicity))]
            #[allow(non_snake_case)]
            unsafe extern "C" fn $entry(_cv: *mut $crate::perl::ffi::CV) {
                // SAFETY: called by Perl as an xsub; no interpreter pointer on this perl.
                unsafe { $crate::perl::xsub::run(std::ptr::null_mut(), $body) }
            }
        )*
    };
}

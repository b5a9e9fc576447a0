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

/// One Perl sub implemented in Rust: its fully qualified name (e.g.
/// `EV::Etcd::get`) and its body. A module lists its subs as a static table
/// of these and defines them all at boot with `boot::define`.
pub struct Xsub {
    pub name: &'static str,
    pub body: XsBody,
}

/// The entry point of every xsub: runs the body of the `Xsub` that its CV
/// carries (set by `boot::define`, as XS's ALIAS keeps its index there).
#[cfg(perl_multiplicity)]
pub(super) unsafe extern "C" fn dispatch(pi: Pi, cv: *mut ffi::CV) {
    // SAFETY: Perl calls this as an xsub with its interpreter; every CV that
    // has this entry point was made by `boot::define` with a pointer to an
    // `Xsub` of a 'static table.
    unsafe {
        let x = &*ffi::ev_etcd_cv_any(pi, cv).cast::<Xsub>();
        run(pi, x.body)
    }
}

#[cfg(not(perl_multiplicity))]
pub(super) unsafe extern "C" fn dispatch(cv: *mut ffi::CV) {
    let pi: Pi = std::ptr::null_mut();
    // SAFETY: as above; no interpreter pointer on this perl.
    unsafe {
        let x = &*ffi::ev_etcd_cv_any(pi, cv).cast::<Xsub>();
        run(pi, x.body)
    }
}

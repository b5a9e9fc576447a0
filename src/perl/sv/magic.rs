//! Values with magic (tied) or overloading: read through the .pm's plain
//! helpers under G_EVAL, so a `die` there becomes the xsub's croak.

use std::ffi::CStr;

use super::super::ffi::{self, SV};
use super::*;

impl<'a> Perl<'a> {
    //
    // Reading a tied value or converting an overloaded object runs Perl
    // code, which may die; a die longjmps, and must never cross Rust
    // frames. Such values are therefore converted by small Perl helpers
    // (EV::Etcd::_plain_*) called under G_EVAL, and the conversion goes on
    // with their plain result. A die is remembered: no request is sent
    // (`check`) and the xsub croaks with it.

    /// `Err(message)` once a conversion died during this call.
    pub fn check(&self) -> Result<(), String> {
        match &*self.died.borrow() {
            Some(m) => Err(m.clone()),
            None => Ok(()),
        }
    }

    /// The die of a conversion, if any, taken out (the xsub wrapper).
    pub(crate) fn take_died(&self) -> Option<String> {
        self.died.borrow_mut().take()
    }

    pub(super) fn gmagical(&self, sv: Sv) -> bool {
        // SAFETY: live SV; a flag test.
        unsafe { ffi::ev_etcd_gmagical(self.pi, sv.raw) != 0 }
    }

    pub(super) fn overloaded(&self, sv: Sv) -> bool {
        // SAFETY: live SV; a flag test.
        unsafe { ffi::ev_etcd_amagic(self.pi, sv.raw) != 0 }
    }

    /// `sv` itself, or, if it is tied/magical (or `also` holds), the plain
    /// result of `helper(sv)`.
    pub(super) fn plain(&self, sv: Sv<'a>, also: bool, helper: &CStr) -> Sv<'a> {
        if !also && !self.gmagical(sv) {
            return sv;
        }
        match self.call_helper(helper, sv.raw) {
            Ok(copy) => self.sv(copy),
            Err(msg) => {
                self.died.borrow_mut().get_or_insert(msg);
                // Read on as "0" (a string and a number, no warnings); nothing is sent.
                // SAFETY: a new SV of this interpreter, made mortal.
                self.sv(unsafe {
                    ffi::ev_etcd_mortal(self.pi, ffi::ev_etcd_new_pvn(self.pi, c"0".as_ptr(), 1))
                })
            }
        }
    }

    /// Calls `helper(arg)` in scalar context under G_EVAL; returns a mortal
    /// copy of its result, or the exception's text.
    pub(super) fn call_helper(&self, helper: &CStr, arg: *mut SV) -> Result<*mut SV, String> {
        let pi = self.pi;
        // SAFETY: standard call sequence as in call_cb; the result is copied
        // before FREETMPS and made mortal after LEAVE, so it lives until the
        // caller's statement ends (beyond this xsub call).
        unsafe {
            ffi::ev_etcd_enter(pi);
            ffi::ev_etcd_savetmps(pi);
            ffi::ev_etcd_pushmark(pi);
            ffi::ev_etcd_xpush(pi, arg);
            let n = ffi::ev_etcd_call_pv(pi, helper.as_ptr(), ffi::ev_etcd_g_scalar_eval());
            let result = (n == 1).then(|| ffi::ev_etcd_pop(pi));
            let err = ffi::ev_etcd_errsv(pi);
            let out = if ffi::ev_etcd_rok(pi, err) != 0 {
                Err("EV::Etcd: converting an argument died with an exception object".to_owned())
            } else {
                let mut len = 0usize;
                let p = if ffi::ev_etcd_ok(pi, err) != 0 {
                    ffi::ev_etcd_pv(pi, err, &mut len)
                } else {
                    std::ptr::null()
                };
                if !p.is_null() && len > 0 {
                    let m = std::slice::from_raw_parts(p.cast::<u8>(), len);
                    Err(String::from_utf8_lossy(m).into_owned())
                } else {
                    Ok(result.map(|r| ffi::ev_etcd_new_sv_copy(pi, r)))
                }
            };
            ffi::ev_etcd_freetmps(pi);
            ffi::ev_etcd_leave(pi);
            out.map(|copy| match copy {
                Some(c) => ffi::ev_etcd_mortal(pi, c),
                None => ffi::ev_etcd_undef(pi),
            })
        }
    }

    /// `sv` with its get-magic resolved (a tied scalar's value).
    pub(super) fn val(&self, sv: Sv<'a>) -> Sv<'a> {
        self.plain(sv, false, c"EV::Etcd::_plain_val")
    }
}

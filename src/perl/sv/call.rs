//! Calling Perl: callbacks under G_EVAL (an exception goes to `$EV::DIED`)
//! and named subs.

use super::super::ffi::{self};
use super::*;

impl<'a> Perl<'a> {
    /// Calls `cb` with the given arguments under G_EVAL; an exception is
    /// handed to `$EV::DIED` (as EV does for its own watchers), so it never
    /// unwinds through Rust frames.
    pub fn call_cb(&self, cb: &SvBox, args: Vec<NewSv>) {
        let pi = self.pi;
        // SAFETY: standard call sequence (ENTER/SAVETMPS/PUSHMARK/push/call/FREETMPS/LEAVE);
        // every pushed argument is mortal so FREETMPS releases it; G_EVAL keeps
        // die from longjmp-ing out of this frame.
        unsafe {
            ffi::ev_etcd_enter(pi);
            ffi::ev_etcd_savetmps(pi);
            ffi::ev_etcd_pushmark(pi);
            for a in args {
                let raw = a.claim();
                let raw = if raw.is_null() {
                    ffi::ev_etcd_undef(pi)
                } else {
                    ffi::ev_etcd_mortal(pi, raw)
                };
                ffi::ev_etcd_xpush(pi, raw);
            }
            ffi::ev_etcd_call_sv(pi, cb.raw, ffi::ev_etcd_g_discard_eval());
            if ffi::ev_etcd_true(pi, ffi::ev_etcd_errsv(pi)) != 0 {
                let died = ffi::ev_etcd_get_sv(pi, c"EV::DIED".as_ptr());
                ffi::ev_etcd_pushmark(pi);
                if !died.is_null() && ffi::ev_etcd_ok(pi, died) != 0 {
                    ffi::ev_etcd_call_sv(
                        pi,
                        died,
                        ffi::ev_etcd_g_discard_eval() | ffi::ev_etcd_g_keeperr(),
                    );
                } else {
                    let msg = format!(
                        "EV::Etcd: error in callback (ignoring): {}",
                        self.text(self.sv(ffi::ev_etcd_errsv(pi)))
                    );
                    ffi::ev_etcd_warn_sv(
                        pi,
                        ffi::ev_etcd_mortal(
                            pi,
                            ffi::ev_etcd_new_pvn(pi, msg.as_ptr().cast(), msg.len()),
                        ),
                    );
                }
            }
            ffi::ev_etcd_freetmps(pi);
            ffi::ev_etcd_leave(pi);
        }
    }

    /// Calls a named Perl sub with one integer argument, errors ignored.
    /// G_KEEPERR leaves `$@` alone: these calls happen inside DESTROY too,
    /// which may run right after an `eval` failed (`$c = eval { ... }`).
    pub fn call_named(&self, name: &std::ffi::CStr, arg: i64) {
        let pi = self.pi;
        // SAFETY: as in call_cb.
        unsafe {
            ffi::ev_etcd_enter(pi);
            ffi::ev_etcd_savetmps(pi);
            ffi::ev_etcd_pushmark(pi);
            ffi::ev_etcd_xpush(
                pi,
                ffi::ev_etcd_mortal(pi, ffi::ev_etcd_new_iv(pi, arg as isize)),
            );
            ffi::ev_etcd_call_pv(
                pi,
                name.as_ptr(),
                ffi::ev_etcd_g_discard_eval() | ffi::ev_etcd_g_keeperr(),
            );
            ffi::ev_etcd_freetmps(pi);
            ffi::ev_etcd_leave(pi);
        }
    }
}

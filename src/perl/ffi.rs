//! Raw declarations of the C shim (csrc/perl_shim.c). Only src/perl/ uses
//! them; every call site is an `unsafe` block with its own SAFETY line. The
//! first argument of each is the interpreter pointer (null on a perl built
//! without MULTIPLICITY). Main thread only.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

/// Declares types Perl only ever hands out by pointer.
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _p: [u8; 0],
        }
    )*};
}

opaque!(
    /// Opaque Perl scalar.
    SV,
    /// Opaque Perl hash.
    HV,
    /// Opaque hash entry.
    HE,
    /// Opaque shared hash key.
    HEK,
    /// Opaque Perl array.
    AV,
    /// Opaque Perl code value.
    CV,
);

pub type Pi = *mut c_void;
pub type IV = isize;
pub type UV = usize;
pub type I32 = i32;

#[cfg(perl_multiplicity)]
pub type XsubFn = unsafe extern "C" fn(Pi, *mut CV);
#[cfg(not(perl_multiplicity))]
pub type XsubFn = unsafe extern "C" fn(*mut CV);

extern "C" {
    pub fn ev_etcd_stack_base(pi: Pi) -> *mut *mut SV;
    pub fn ev_etcd_stack_sp(pi: Pi) -> *mut *mut SV;
    pub fn ev_etcd_set_stack_sp(pi: Pi, sp: *mut *mut SV);
    pub fn ev_etcd_popmark(pi: Pi) -> I32;
    pub fn ev_etcd_pushmark(pi: Pi);
    pub fn ev_etcd_xpush(pi: Pi, sv: *mut SV);
    pub fn ev_etcd_enter(pi: Pi);
    pub fn ev_etcd_leave(pi: Pi);
    pub fn ev_etcd_savetmps(pi: Pi);
    pub fn ev_etcd_freetmps(pi: Pi);

    /// Defines an xsub whose CV carries `any` (CvXSUBANY, as XS's ALIAS).
    pub fn ev_etcd_newxs(
        pi: Pi,
        name: *const c_char,
        f: XsubFn,
        file: *const c_char,
        any: *const c_void,
    );
    pub fn ev_etcd_cv_any(pi: Pi, cv: *mut CV) -> *const c_void;
    pub fn ev_etcd_xs_boot_epilog(pi: Pi, ax: I32);

    pub fn ev_etcd_call_sv(pi: Pi, sv: *mut SV, flags: I32) -> I32;
    pub fn ev_etcd_call_pv(pi: Pi, name: *const c_char, flags: I32) -> I32;
    pub fn ev_etcd_g_discard_eval() -> I32;
    pub fn ev_etcd_g_keeperr() -> I32;
    pub fn ev_etcd_g_scalar_eval() -> I32;
    pub fn ev_etcd_pop(pi: Pi) -> *mut SV;
    pub fn ev_etcd_errsv(pi: Pi) -> *mut SV;
    pub fn ev_etcd_get_sv(pi: Pi, name: *const c_char) -> *mut SV;
    pub fn ev_etcd_croak_sv(pi: Pi, msg: *mut SV) -> !;
    pub fn ev_etcd_warn_sv(pi: Pi, msg: *mut SV);

    pub fn ev_etcd_undef(pi: Pi) -> *mut SV;
    pub fn ev_etcd_new_iv(pi: Pi, v: IV) -> *mut SV;
    pub fn ev_etcd_new_uv(pi: Pi, v: UV) -> *mut SV;
    pub fn ev_etcd_new_nv(pi: Pi, v: f64) -> *mut SV;
    pub fn ev_etcd_new_pvn(pi: Pi, s: *const c_char, len: usize) -> *mut SV;
    pub fn ev_etcd_new_rv_noinc(pi: Pi, sv: *mut SV) -> *mut SV;
    pub fn ev_etcd_new_sv_copy(pi: Pi, sv: *mut SV) -> *mut SV;
    pub fn ev_etcd_new_hv(pi: Pi) -> *mut HV;
    pub fn ev_etcd_new_av(pi: Pi) -> *mut AV;
    pub fn ev_etcd_hv_store(pi: Pi, hv: *mut HV, k: *const c_char, klen: I32, v: *mut SV);
    pub fn ev_etcd_hv_delete(pi: Pi, hv: *mut HV, k: *const c_char, klen: I32);
    pub fn ev_etcd_new_hv_copy(pi: Pi, hv: *mut HV) -> *mut HV;
    pub fn ev_etcd_hv_array(pi: Pi, hv: *mut HV) -> *mut *mut HE;
    pub fn ev_etcd_hv_max(pi: Pi, hv: *mut HV) -> usize;
    pub fn ev_etcd_he_next(he: *mut HE) -> *mut HE;
    pub fn ev_etcd_he_hek(he: *mut HE) -> *mut HEK;
    pub fn ev_etcd_he_set_val(he: *mut HE, v: *mut SV);
    pub fn ev_etcd_hek_key(hek: *mut HEK) -> *const c_char;
    pub fn ev_etcd_hek_len(hek: *mut HEK) -> I32;
    pub fn ev_etcd_av_push(pi: Pi, av: *mut AV, v: *mut SV);
    pub fn ev_etcd_av_extend(pi: Pi, av: *mut AV, n: isize);
    pub fn ev_etcd_mortal(pi: Pi, sv: *mut SV) -> *mut SV;
    pub fn ev_etcd_refcnt_inc(pi: Pi, sv: *mut SV) -> *mut SV;
    pub fn ev_etcd_refcnt_dec(pi: Pi, sv: *mut SV);
    pub fn ev_etcd_bless(pi: Pi, rv: *mut SV, pkg: *const c_char) -> *mut SV;

    pub fn ev_etcd_gmagical(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_rmagical(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_amagic(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_ok(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_rok(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_rv(pi: Pi, sv: *mut SV) -> *mut SV;
    pub fn ev_etcd_type(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_t_pvhv() -> c_int;
    pub fn ev_etcd_t_pvav() -> c_int;
    pub fn ev_etcd_t_pvcv() -> c_int;
    pub fn ev_etcd_isa(pi: Pi, sv: *mut SV, pkg: *const c_char, len: usize) -> c_int;
    pub fn ev_etcd_pok(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_pv(pi: Pi, sv: *mut SV, len: *mut usize) -> *const c_char;
    pub fn ev_etcd_iv(pi: Pi, sv: *mut SV) -> IV;
    pub fn ev_etcd_nv(pi: Pi, sv: *mut SV) -> f64;
    pub fn ev_etcd_uv(pi: Pi, sv: *mut SV) -> UV;
    pub fn ev_etcd_true(pi: Pi, sv: *mut SV) -> c_int;
    pub fn ev_etcd_hv_fetch(pi: Pi, hv: *mut HV, k: *const c_char, klen: I32) -> *mut *mut SV;
    pub fn ev_etcd_hv_exists(pi: Pi, hv: *mut HV, k: *const c_char, klen: I32) -> c_int;
    pub fn ev_etcd_av_top(pi: Pi, av: *mut AV) -> isize;
    pub fn ev_etcd_av_fetch(pi: Pi, av: *mut AV, i: isize) -> *mut *mut SV;
}

//! Reading Perl values: definedness, references, strings and bytes,
//! numbers, hash and array elements, kept counts.

use std::ffi::c_char;

use super::super::ffi::{self, SV};
use super::*;

impl<'a> Perl<'a> {
    pub fn is_defined(&self, sv: Sv<'a>) -> bool {
        let sv = self.val(sv);
        // SAFETY: sv is a live SV of this interpreter (borrowed from the stack or a container).
        unsafe { ffi::ev_etcd_ok(self.pi, sv.raw) != 0 }
    }

    fn ref_target(&self, sv: Sv<'a>, ty: i32) -> Option<*mut SV> {
        let mut sv = self.val(sv);
        // SAFETY: live SV; SvRV is only read after SvROK said it is a reference.
        unsafe {
            if ffi::ev_etcd_rok(self.pi, sv.raw) == 0 {
                return None;
            }
            let mut t = ffi::ev_etcd_rv(self.pi, sv.raw);
            if ffi::ev_etcd_type(self.pi, t) != ty {
                return None;
            }
            // A tied (or otherwise magical) hash or array runs Perl code on
            // access: read a plain copy of it instead.
            if ty != ffi::ev_etcd_t_pvcv() && ffi::ev_etcd_rmagical(self.pi, t) != 0 {
                let helper = if ty == ffi::ev_etcd_t_pvhv() {
                    c"EV::Etcd::_plain_hash"
                } else {
                    c"EV::Etcd::_plain_array"
                };
                sv = self.plain(sv, true, helper);
                if ffi::ev_etcd_rok(self.pi, sv.raw) == 0 {
                    return None;
                }
                t = ffi::ev_etcd_rv(self.pi, sv.raw);
            }
            Some(t)
        }
    }

    pub fn is_code_ref(&self, sv: Sv) -> bool {
        // SAFETY: plain constant.
        self.ref_target(sv, unsafe { ffi::ev_etcd_t_pvcv() })
            .is_some()
    }

    pub fn hash_ref(&self, sv: Sv) -> Option<Hv<'a>> {
        // SAFETY: plain constant.
        self.ref_target(sv, unsafe { ffi::ev_etcd_t_pvhv() })
            .map(|t| Hv {
                raw: t.cast(),
                _l: PhantomData,
            })
    }

    pub fn array_ref(&self, sv: Sv) -> Option<Av<'a>> {
        // SAFETY: plain constant.
        self.ref_target(sv, unsafe { ffi::ev_etcd_t_pvav() })
            .map(|t| Av {
                raw: t.cast(),
                _l: PhantomData,
            })
    }

    pub fn is_ref(&self, sv: Sv<'a>) -> bool {
        let sv = self.val(sv);
        // SAFETY: live SV.
        unsafe { ffi::ev_etcd_rok(self.pi, sv.raw) != 0 }
    }

    /// True for a plain (non-reference) string value, as opposed to a number.
    pub fn is_string(&self, sv: Sv<'a>) -> bool {
        let sv = self.val(sv);
        // SAFETY: live SV.
        unsafe { ffi::ev_etcd_pok(self.pi, sv.raw) != 0 && ffi::ev_etcd_rok(self.pi, sv.raw) == 0 }
    }

    /// True if `sv` is a reference to an object of class `pkg` (or a subclass);
    /// a plain class-name string does not count.
    pub fn derived_from(&self, sv: Sv<'a>, pkg: &str) -> bool {
        // sv_isobject and sv_derived_from run get-magic.
        let sv = self.val(sv);
        // SAFETY: live SV; the name is passed with its length (no NUL needed).
        unsafe { ffi::ev_etcd_isa(self.pi, sv.raw, pkg.as_ptr().cast(), pkg.len()) != 0 }
    }

    /// The string value as bytes (the internal UTF-8 encoding for a string
    /// carrying the UTF-8 flag), copied out.
    pub fn bytes(&self, sv: Sv<'a>) -> Vec<u8> {
        let sv = self.plain(sv, self.overloaded(sv), c"EV::Etcd::_plain_str");
        let mut len = 0usize;
        // SAFETY: SvPV returns a buffer of `len` bytes valid until the SV
        // changes; it is copied before any other Perl call.
        unsafe {
            let p = ffi::ev_etcd_pv(self.pi, sv.raw, &mut len);
            if p.is_null() || len == 0 {
                return Vec::new();
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
        }
    }

    /// Lossy text (for option words such as `ascend`).
    pub fn text(&self, sv: Sv<'a>) -> String {
        String::from_utf8_lossy(&self.bytes(sv)).into_owned()
    }

    fn num(&self, sv: Sv<'a>) -> Sv<'a> {
        self.plain(sv, self.overloaded(sv), c"EV::Etcd::_plain_num")
    }

    pub fn iv(&self, sv: Sv<'a>) -> i64 {
        let sv = self.num(sv);
        // SAFETY: live SV; SvIV performs Perl's numeric conversion.
        unsafe { ffi::ev_etcd_iv(self.pi, sv.raw) as i64 }
    }

    pub fn nv(&self, sv: Sv<'a>) -> f64 {
        let sv = self.num(sv);
        // SAFETY: live SV; SvNV performs Perl's numeric conversion.
        unsafe { ffi::ev_etcd_nv(self.pi, sv.raw) }
    }

    pub fn uv(&self, sv: Sv<'a>) -> u64 {
        let sv = self.num(sv);
        // SAFETY: live SV.
        unsafe { ffi::ev_etcd_uv(self.pi, sv.raw) as u64 }
    }

    pub fn truthy(&self, sv: Sv<'a>) -> bool {
        let sv = self.plain(sv, self.overloaded(sv), c"EV::Etcd::_plain_bool");
        // SAFETY: live SV.
        unsafe { ffi::ev_etcd_true(self.pi, sv.raw) != 0 }
    }

    /// The integer inside a blessed scalar reference (our object layout),
    /// and the address of that inner scalar: the object's identity, which a
    /// forged `bless \(my $x = $id)` does not share.
    pub fn object_id(&self, sv: Sv<'a>) -> Option<(u64, usize)> {
        // SAFETY: live SV; SvRV only after SvROK.
        unsafe {
            if ffi::ev_etcd_rok(self.pi, sv.raw) == 0 {
                return None;
            }
            let inner = ffi::ev_etcd_rv(self.pi, sv.raw);
            if ffi::ev_etcd_type(self.pi, inner) >= ffi::ev_etcd_t_pvav() {
                return None;
            }
            Some((self.uv(self.sv(inner)), inner as usize))
        }
    }

    pub fn hv_get(&self, hv: Hv, key: &str) -> Option<Sv<'a>> {
        // SAFETY: live HV; hv_fetch returns null or a pointer to the slot.
        unsafe {
            let slot =
                ffi::ev_etcd_hv_fetch(self.pi, hv.raw, key.as_ptr().cast::<c_char>(), klen(key));
            if slot.is_null() || (*slot).is_null() {
                None
            } else {
                Some(self.sv(*slot))
            }
        }
    }

    /// The value under `key` if it is defined.
    pub fn hv_defined(&self, hv: Hv, key: &str) -> Option<Sv<'a>> {
        self.hv_get(hv, key).filter(|v| self.is_defined(*v))
    }

    pub fn hv_exists(&self, hv: Hv, key: &str) -> bool {
        // SAFETY: live HV.
        unsafe {
            ffi::ev_etcd_hv_exists(self.pi, hv.raw, key.as_ptr().cast::<c_char>(), klen(key)) != 0
        }
    }

    pub fn av_len(&self, av: Av) -> usize {
        // SAFETY: live AV.
        let top = unsafe { ffi::ev_etcd_av_top(self.pi, av.raw) };
        usize::try_from(top + 1).unwrap_or(0)
    }

    pub fn av_get(&self, av: Av, i: usize) -> Option<Sv<'a>> {
        // SAFETY: live AV; av_fetch returns null or a slot pointer.
        unsafe {
            let slot = ffi::ev_etcd_av_fetch(self.pi, av.raw, i as isize);
            if slot.is_null() || (*slot).is_null() {
                None
            } else {
                Some(self.sv(*slot))
            }
        }
    }

    /// Keeps `sv` beyond this call.
    pub fn keep(&self, sv: Sv) -> SvBox {
        // SAFETY: live SV; the count taken here is released by SvBox::drop.
        let raw = unsafe { ffi::ev_etcd_refcnt_inc(self.pi, sv.raw) };
        SvBox { raw, pi: self.pi }
    }
}

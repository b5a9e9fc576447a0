//! Building Perl values: scalars, hashes and arrays (`HashBuilder`,
//! `ArrayBuilder`), objects, mortals.

use std::ffi::{c_char, CString};
use std::ptr::null_mut;

use super::super::ffi::{self, AV, HV, SV};
use super::*;

impl<'a> Perl<'a> {
    pub fn new_iv(&self, v: i64) -> NewSv {
        // SAFETY: allocation in this interpreter.
        let raw = unsafe { ffi::ev_etcd_new_iv(self.pi, v as isize) };
        NewSv { raw, pi: self.pi }
    }

    pub fn new_uv(&self, v: u64) -> NewSv {
        // SAFETY: allocation in this interpreter.
        let raw = unsafe { ffi::ev_etcd_new_uv(self.pi, v as usize) };
        NewSv { raw, pi: self.pi }
    }

    pub fn new_nv(&self, v: f64) -> NewSv {
        // SAFETY: allocation in this interpreter.
        let raw = unsafe { ffi::ev_etcd_new_nv(self.pi, v) };
        NewSv { raw, pi: self.pi }
    }

    pub fn new_bytes(&self, b: &[u8]) -> NewSv {
        // SAFETY: copies `b.len()` bytes from a valid slice.
        let raw = unsafe { ffi::ev_etcd_new_pvn(self.pi, b.as_ptr().cast::<c_char>(), b.len()) };
        NewSv { raw, pi: self.pi }
    }

    pub fn new_hash(&self) -> HashBuilder<'_, 'a> {
        // SAFETY: allocation in this interpreter.
        let hv = unsafe { ffi::ev_etcd_new_hv(self.pi) };
        HashBuilder { p: self, hv }
    }

    pub fn new_array(&self, cap: usize) -> ArrayBuilder<'_, 'a> {
        // SAFETY: allocation in this interpreter; extend only pre-sizes.
        let av = unsafe { ffi::ev_etcd_new_av(self.pi) };
        if cap > 0 {
            // SAFETY: av was just created.
            unsafe { ffi::ev_etcd_av_extend(self.pi, av, cap as isize - 1) };
        }
        ArrayBuilder { p: self, av }
    }

    /// A blessed reference to a scalar holding `id`, and the identity
    /// `object_id` will report for it.
    pub fn new_object(&self, id: u64, pkg: &str) -> (NewSv, usize) {
        let c = CString::new(pkg).unwrap_or_default();
        // SAFETY: new SVs of this interpreter; bless returns the same RV.
        unsafe {
            let inner = ffi::ev_etcd_new_uv(self.pi, id as usize);
            let rv = ffi::ev_etcd_new_rv_noinc(self.pi, inner);
            let obj = NewSv {
                raw: ffi::ev_etcd_bless(self.pi, rv, c.as_ptr()),
                pi: self.pi,
            };
            (obj, inner as usize)
        }
    }

    pub fn mortal(&self, v: NewSv) -> *mut SV {
        // SAFETY: hands the fresh count to the temps stack.
        unsafe { ffi::ev_etcd_mortal(self.pi, v.claim()) }
    }

    fn undef_raw(&self) -> *mut SV {
        // SAFETY: the immortal undef.
        unsafe { ffi::ev_etcd_undef(self.pi) }
    }

    /// Perl's `undef` (the immortal one).
    pub fn undef(&self) -> Sv<'a> {
        self.sv(self.undef_raw())
    }
}

impl NewSv {
    /// The "no value" argument: becomes undef when passed to Perl.
    pub fn undef() -> NewSv {
        NewSv {
            raw: null_mut(),
            pi: null_mut(),
        }
    }
}

/// Builds a hash and returns a reference to it.
pub struct HashBuilder<'p, 'a> {
    p: &'p Perl<'a>,
    hv: *mut HV,
}

impl HashBuilder<'_, '_> {
    pub fn put(&mut self, k: &str, v: NewSv) -> &mut Self {
        // SAFETY: hv is ours; hv_store takes over v's count.
        unsafe {
            ffi::ev_etcd_hv_store(
                self.p.pi,
                self.hv,
                k.as_ptr().cast::<c_char>(),
                klen(k),
                v.claim(),
            )
        };
        self
    }
    pub fn iv(&mut self, k: &str, v: i64) -> &mut Self {
        let s = self.p.new_iv(v);
        self.put(k, s)
    }
    pub fn uv(&mut self, k: &str, v: u64) -> &mut Self {
        let s = self.p.new_uv(v);
        self.put(k, s)
    }
    pub fn nv(&mut self, k: &str, v: f64) -> &mut Self {
        let s = self.p.new_nv(v);
        self.put(k, s)
    }
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.iv(k, i64::from(v))
    }
    pub fn bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        let s = self.p.new_bytes(v);
        self.put(k, s)
    }
    pub fn finish(self) -> NewSv {
        // SAFETY: the new RV takes over the hash's only count.
        let raw = unsafe { ffi::ev_etcd_new_rv_noinc(self.p.pi, self.hv.cast()) };
        NewSv { raw, pi: self.p.pi }
    }
}

/// Builds an array and returns a reference to it.
pub struct ArrayBuilder<'p, 'a> {
    p: &'p Perl<'a>,
    av: *mut AV,
}

impl ArrayBuilder<'_, '_> {
    pub fn push(&mut self, v: NewSv) -> &mut Self {
        // SAFETY: av is ours; av_push takes over v's count.
        unsafe { ffi::ev_etcd_av_push(self.p.pi, self.av, v.claim()) };
        self
    }
    pub fn finish(self) -> NewSv {
        // SAFETY: the new RV takes over the array's only count.
        let raw = unsafe { ffi::ev_etcd_new_rv_noinc(self.p.pi, self.av.cast()) };
        NewSv { raw, pi: self.p.pi }
    }
}

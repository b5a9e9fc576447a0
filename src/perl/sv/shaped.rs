//! Shaped hashes: copies of a per-interpreter template hash of fixed keys
//! (`Shape`), filled in place.

use std::ffi::c_char;
use std::ptr::null_mut;

use super::super::ffi::{self, HE, HV};
use super::*;

impl<'a> Perl<'a> {
    /// A reference to a new hash with `shape`'s keys and `vals` (in the
    /// same order), each value's count taken over; a key whose value is
    /// `None` is left out.
    pub fn shaped<const N: usize>(
        &self,
        shape: &'static Shape<N>,
        vals: [Option<NewSv>; N],
    ) -> NewSv {
        let at = shape as *const Shape<N> as usize;
        // What is still to be done with each key: `Some(v)` store v,
        // `None` leave the key out; an entry that took its value is done.
        let mut todo = vals.map(|v| Some(v.map(NewSv::claim)));
        let hv = TEMPLATES.with(|t| {
            let mut t = t.borrow_mut();
            let i = match t.iter().position(|(a, _)| *a == at) {
                Some(i) => i,
                None => {
                    t.push((at, self.template(&shape.0)));
                    t.len() - 1
                }
            };
            let Template { hv: tpl, heks } = &t[i].1;
            // SAFETY: the template is a plain hash of this interpreter that
            // only this code holds; newHVhv copies it into a new hash that
            // is ours, sharing the template's keys and (being immortal) its
            // undef values. Replacing an entry's immortal undef needs no
            // count change, and the entry takes over the value's count.
            unsafe {
                let hv = ffi::ev_etcd_new_hv_copy(self.pi, *tpl);
                self.each_entry(hv, |he| {
                    let hek = ffi::ev_etcd_he_hek(he);
                    if let Some(k) = heks.iter().position(|&h| h == hek) {
                        if let Some(Some(v)) = todo[k] {
                            ffi::ev_etcd_he_set_val(he, v);
                            todo[k] = None;
                        }
                    }
                });
                hv
            }
        });
        for (i, v) in todo.into_iter().enumerate() {
            let Some(v) = v else { continue };
            let k = shape.0[i];
            let (kp, kl) = (k.as_ptr().cast::<c_char>(), klen(k));
            // SAFETY: hv is ours. A key without a value still holds the
            // template's immortal undef: it goes (nothing to free). A value
            // no entry took (never expected) is stored the plain way, which
            // takes over its count.
            unsafe {
                match v {
                    None => ffi::ev_etcd_hv_delete(self.pi, hv, kp, kl),
                    Some(v) => ffi::ev_etcd_hv_store(self.pi, hv, kp, kl, v),
                }
            }
        }
        // SAFETY: the new RV takes over the hash's only count.
        let raw = unsafe { ffi::ev_etcd_new_rv_noinc(self.pi, hv.cast()) };
        NewSv { raw, pi: self.pi }
    }

    /// Calls `f` with every entry of `hv`, bucket by bucket.
    ///
    /// # Safety
    /// `hv` is a live, non-magical hash of this interpreter that `f` does
    /// not change except for entries' values.
    unsafe fn each_entry(&self, hv: *mut HV, mut f: impl FnMut(*mut HE)) {
        // SAFETY: per the contract, HvARRAY is null or holds HvMAX+1 chains.
        unsafe {
            let arr = ffi::ev_etcd_hv_array(self.pi, hv);
            if arr.is_null() {
                return;
            }
            for b in 0..=ffi::ev_etcd_hv_max(self.pi, hv) {
                let mut he: *mut HE = *arr.add(b);
                while !he.is_null() {
                    f(he);
                    he = ffi::ev_etcd_he_next(he);
                }
            }
        }
    }

    /// Makes the template of a shape with keys `keys`.
    fn template(&self, keys: &[&'static str]) -> Template {
        // SAFETY: a new hash of this interpreter; hv_store of the immortal
        // undef takes no count. Each entry's HEK stays alive as long as the
        // template does (which is kept until the interpreter ends).
        unsafe {
            let hv = ffi::ev_etcd_new_hv(self.pi);
            for k in keys {
                let undef = ffi::ev_etcd_undef(self.pi);
                ffi::ev_etcd_hv_store(self.pi, hv, k.as_ptr().cast::<c_char>(), klen(k), undef);
            }
            let mut heks = vec![null_mut(); keys.len()];
            self.each_entry(hv, |he| {
                let hek = ffi::ev_etcd_he_hek(he);
                let len = ffi::ev_etcd_hek_len(hek) as usize;
                let key = std::slice::from_raw_parts(ffi::ev_etcd_hek_key(hek).cast::<u8>(), len);
                if let Some(i) = keys.iter().position(|k| k.as_bytes() == key) {
                    heks[i] = hek;
                }
            });
            Template { hv, heks }
        }
    }
}

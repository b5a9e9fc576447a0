//! Safe handles around Perl values. Everything that reads or builds an SV
//! needs a `&Perl` token, which is minted only at xsub entry on the thread
//! running the interpreter and is `!Send`/`!Sync`, so the compiler keeps Perl
//! values off the runtime thread. Owned values (`SvBox`) are `!Send` too.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::ptr::null_mut;

use super::ffi::{self, Pi, AV, HE, HEK, HV, SV};

thread_local! {
    /// False once the interpreter is being torn down (END time): from then on
    /// owned SVs are leaked rather than released into a dying interpreter.
    static PERL_ALIVE: Cell<bool> = const { Cell::new(true) };
    /// This thread's interpreter's templates of shaped hashes, by the
    /// address of their `Shape` (see `Perl::shaped`).
    static TEMPLATES: RefCell<Vec<(usize, Template)>> = const { RefCell::new(Vec::new()) };
}

/// The fixed keys of a hash that is built often (a response header, a
/// key-value): `Perl::shaped` copies a template hash with these keys instead
/// of storing each key anew, which spares Perl hashing every key and
/// looking it up in its table of shared keys.
pub struct Shape<const N: usize>(pub [&'static str; N]);

/// A hash with a shape's keys (all values the immortal undef), never seen
/// by Perl code, and its keys' shared HEKs in the shape's order.
struct Template {
    hv: *mut HV,
    heks: Vec<*mut HEK>,
}

/// Proof that the current code runs on the interpreter's thread inside a
/// call from Perl. Not `Send`, not `Sync`, not constructible outside src/perl/.
pub struct Perl<'a> {
    pi: Pi,
    /// The first exception thrown by Perl code that a conversion ran (a
    /// tied FETCH, an overloaded operator); the xsub croaks with it.
    died: RefCell<Option<String>>,
    _not_send: PhantomData<&'a *mut ()>,
}

/// A Perl scalar borrowed for the duration of the current call.
#[derive(Clone, Copy)]
pub struct Sv<'a> {
    raw: *mut SV,
    _l: PhantomData<&'a ()>,
}

/// A borrowed hash (the target of a hash reference).
#[derive(Clone, Copy)]
pub struct Hv<'a> {
    raw: *mut HV,
    _l: PhantomData<&'a ()>,
}

/// A borrowed array (the target of an array reference).
#[derive(Clone, Copy)]
pub struct Av<'a> {
    raw: *mut AV,
    _l: PhantomData<&'a ()>,
}

/// A counted reference to a scalar, kept beyond the current call (stored
/// callbacks). Dropping it releases the count, on the interpreter thread only
/// (the raw pointer makes it `!Send`).
pub struct SvBox {
    raw: *mut SV,
    pi: Pi,
}

/// A freshly built scalar that nothing owns yet: it is either handed to a
/// container (which takes the count) or made mortal.
pub struct NewSv {
    raw: *mut SV,
}

fn klen(k: &str) -> i32 {
    i32::try_from(k.len()).unwrap_or(i32::MAX)
}

impl<'a> Perl<'a> {
    /// # Safety
    /// `pi` must be the running interpreter and the caller must be inside a
    /// call from it, on its thread.
    pub(crate) unsafe fn enter(pi: Pi) -> Perl<'a> {
        Perl {
            pi,
            died: RefCell::new(None),
            _not_send: PhantomData,
        }
    }

    /// The interpreter pointer, for the binding's own FFI calls.
    pub(super) fn raw_interp(&self) -> Pi {
        self.pi
    }

    /// A handle on `raw`, which must be a live SV of this interpreter for
    /// the rest of the call: only the binding makes handles from pointers.
    pub(super) fn sv(&self, raw: *mut SV) -> Sv<'a> {
        Sv {
            raw,
            _l: PhantomData,
        }
    }

    // ---- magic ----
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

    fn gmagical(&self, sv: Sv) -> bool {
        // SAFETY: live SV; a flag test.
        unsafe { ffi::ev_etcd_gmagical(self.pi, sv.raw) != 0 }
    }

    fn overloaded(&self, sv: Sv) -> bool {
        // SAFETY: live SV; a flag test.
        unsafe { ffi::ev_etcd_amagic(self.pi, sv.raw) != 0 }
    }

    /// `sv` itself, or, if it is tied/magical (or `also` holds), the plain
    /// result of `helper(sv)`.
    fn plain(&self, sv: Sv<'a>, also: bool, helper: &CStr) -> Sv<'a> {
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
    fn call_helper(&self, helper: &CStr, arg: *mut SV) -> Result<*mut SV, String> {
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
    fn val(&self, sv: Sv<'a>) -> Sv<'a> {
        self.plain(sv, false, c"EV::Etcd::_plain_val")
    }

    // ---- reading ----

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

    // ---- building ----

    pub fn new_iv(&self, v: i64) -> NewSv {
        // SAFETY: allocation in this interpreter.
        let raw = unsafe { ffi::ev_etcd_new_iv(self.pi, v as isize) };
        NewSv { raw }
    }

    pub fn new_uv(&self, v: u64) -> NewSv {
        // SAFETY: allocation in this interpreter.
        let raw = unsafe { ffi::ev_etcd_new_uv(self.pi, v as usize) };
        NewSv { raw }
    }

    pub fn new_bytes(&self, b: &[u8]) -> NewSv {
        // SAFETY: copies `b.len()` bytes from a valid slice.
        let raw = unsafe { ffi::ev_etcd_new_pvn(self.pi, b.as_ptr().cast::<c_char>(), b.len()) };
        NewSv { raw }
    }

    pub fn new_hash(&self) -> HashBuilder<'_, 'a> {
        // SAFETY: allocation in this interpreter.
        let hv = unsafe { ffi::ev_etcd_new_hv(self.pi) };
        HashBuilder { p: self, hv }
    }

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
        let mut todo = vals.map(|v| Some(v.map(|v| v.raw)));
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
        NewSv { raw }
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
            };
            (obj, inner as usize)
        }
    }

    pub fn mortal(&self, v: NewSv) -> *mut SV {
        // SAFETY: hands the fresh count to the temps stack.
        unsafe { ffi::ev_etcd_mortal(self.pi, v.raw) }
    }

    fn undef_raw(&self) -> *mut SV {
        // SAFETY: the immortal undef.
        unsafe { ffi::ev_etcd_undef(self.pi) }
    }

    /// Perl's `undef` (the immortal one).
    pub fn undef(&self) -> Sv<'a> {
        self.sv(self.undef_raw())
    }

    // ---- calling ----

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
                let raw = if a.raw.is_null() {
                    ffi::ev_etcd_undef(pi)
                } else {
                    ffi::ev_etcd_mortal(pi, a.raw)
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

impl NewSv {
    /// The "no value" argument: becomes undef when passed to Perl.
    pub fn undef() -> NewSv {
        NewSv { raw: null_mut() }
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
                v.raw,
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
        NewSv { raw }
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
        unsafe { ffi::ev_etcd_av_push(self.p.pi, self.av, v.raw) };
        self
    }
    pub fn finish(self) -> NewSv {
        // SAFETY: the new RV takes over the array's only count.
        let raw = unsafe { ffi::ev_etcd_new_rv_noinc(self.p.pi, self.av.cast()) };
        NewSv { raw }
    }
}

impl Drop for SvBox {
    fn drop(&mut self) {
        if PERL_ALIVE.with(Cell::get) {
            // SAFETY: SvBox is !Send, so this runs on the interpreter thread,
            // and the interpreter is still alive (PERL_ALIVE); the count was
            // taken in Perl::keep.
            unsafe { ffi::ev_etcd_refcnt_dec(self.pi, self.raw) };
        }
    }
}

/// Marks the interpreter as going away: later drops of SvBox leak instead.
pub fn mark_perl_dead() {
    PERL_ALIVE.with(|a| a.set(false));
    // The templates are the interpreter's to free; forget them.
    TEMPLATES.with(|t| t.borrow_mut().clear());
}

pub fn perl_alive() -> bool {
    PERL_ALIVE.with(Cell::get)
}

//! Safe handles around Perl values. Everything that reads or builds an SV
//! needs a `&Perl` token, which is minted only at xsub entry on the thread
//! running the interpreter and is `!Send`/`!Sync`, so the compiler keeps Perl
//! values off the runtime thread. Owned values (`SvBox`) are `!Send` too.
//!
//! Here: the token and the handles. The methods of `Perl` are split by
//! concern: tied and overloaded values (magic), reading (read), building
//! (build), shaped hashes (shaped) and calling Perl (call).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use super::ffi::{self, Pi, AV, HEK, HV, SV};

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
/// container (which takes the count) or made mortal (`claim`). One that is
/// dropped unclaimed is freed.
#[must_use = "a new value is stored, passed to Perl or made mortal; dropped, it is freed"]
pub struct NewSv {
    /// Null for the "no value" argument (`NewSv::undef`).
    raw: *mut SV,
    pi: Pi,
}

impl NewSv {
    /// Takes the value's count out of the handle, for the one call that
    /// hands it on (a store, a push, the temps stack).
    fn claim(self) -> *mut SV {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }
}

impl Drop for NewSv {
    fn drop(&mut self) {
        if !self.raw.is_null() && PERL_ALIVE.with(Cell::get) {
            // SAFETY: NewSv is !Send, so this runs on the interpreter thread,
            // which is still alive; nothing took the count this handle owns.
            unsafe { ffi::ev_etcd_refcnt_dec(self.pi, self.raw) };
        }
    }
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
}

mod build;
mod call;
mod magic;
mod read;
mod shaped;

pub use build::{ArrayBuilder, HashBuilder};

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

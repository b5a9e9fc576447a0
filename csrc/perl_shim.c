/*
 * perl_shim.c - one-line C wrappers around Perl's macro-only API, so that
 * Rust (src/perl/ffi.rs) can call them as ordinary functions.
 *
 * No logic and no state lives here: each function is one Perl macro or API
 * call. The first parameter is always the interpreter pointer (my_perl on a
 * MULTIPLICITY perl, ignored on a non-threaded one), so Rust has a single
 * signature for both kinds of perl. Compiled by build.rs with the target
 * perl's own flags and -Werror=implicit-function-declaration, so a macro that
 * the headers do not provide fails the build rather than the load.
 */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#ifdef MULTIPLICITY
#  define SHIM_THX PerlInterpreter *my_perl = (PerlInterpreter *)pi
#else
#  define SHIM_THX (void)pi
#endif

typedef void (*ev_etcd_xsub_t)(pTHX_ CV *);

/* the argument stack */
SV **ev_etcd_stack_base(void *pi) { SHIM_THX; return PL_stack_base; }
SV **ev_etcd_stack_sp(void *pi) { SHIM_THX; return PL_stack_sp; }
void ev_etcd_set_stack_sp(void *pi, SV **sp) { SHIM_THX; PL_stack_sp = sp; }
I32 ev_etcd_popmark(void *pi) { SHIM_THX; return POPMARK; }
void ev_etcd_pushmark(void *pi) { SHIM_THX; dSP; PUSHMARK(SP); PUTBACK; }
void ev_etcd_xpush(void *pi, SV *sv) { SHIM_THX; dSP; XPUSHs(sv); PUTBACK; }
void ev_etcd_enter(void *pi) { SHIM_THX; ENTER; }
void ev_etcd_leave(void *pi) { SHIM_THX; LEAVE; }
void ev_etcd_savetmps(void *pi) { SHIM_THX; SAVETMPS; }
void ev_etcd_freetmps(void *pi) { SHIM_THX; FREETMPS; }

/* registration */
void ev_etcd_newxs(void *pi, const char *name, ev_etcd_xsub_t f, const char *file, void *any) { SHIM_THX; CvXSUBANY(newXS(name, f, file)).any_ptr = any; }
void *ev_etcd_cv_any(void *pi, CV *cv) { SHIM_THX; return CvXSUBANY(cv).any_ptr; }
void ev_etcd_xs_boot_epilog(void *pi, I32 ax) { SHIM_THX; Perl_xs_boot_epilog(aTHX_ ax); }

/* calling Perl */
I32 ev_etcd_call_sv(void *pi, SV *sv, I32 flags) { SHIM_THX; return call_sv(sv, flags); }
I32 ev_etcd_call_pv(void *pi, const char *name, I32 flags) { SHIM_THX; return call_pv(name, flags); }
I32 ev_etcd_g_discard_eval(void) { return G_DISCARD | G_EVAL | G_VOID; }
I32 ev_etcd_g_keeperr(void) { return G_KEEPERR; }
I32 ev_etcd_g_scalar_eval(void) { return G_SCALAR | G_EVAL; }
SV *ev_etcd_pop(void *pi) { SHIM_THX; dSP; SV *sv = POPs; PUTBACK; return sv; }
SV *ev_etcd_errsv(void *pi) { SHIM_THX; return ERRSV; }
SV *ev_etcd_get_sv(void *pi, const char *name) { SHIM_THX; return get_sv(name, 0); }
void ev_etcd_croak_sv(void *pi, SV *msg) { SHIM_THX; croak_sv(msg); }
void ev_etcd_warn_sv(void *pi, SV *msg) { SHIM_THX; warn_sv(msg); }

/* constructing values */
SV *ev_etcd_undef(void *pi) { SHIM_THX; return &PL_sv_undef; }
SV *ev_etcd_new_iv(void *pi, IV v) { SHIM_THX; return newSViv(v); }
SV *ev_etcd_new_uv(void *pi, UV v) { SHIM_THX; return newSVuv(v); }
SV *ev_etcd_new_nv(void *pi, double v) { SHIM_THX; return newSVnv((NV)v); }
SV *ev_etcd_new_pvn(void *pi, const char *s, STRLEN len) { SHIM_THX; return newSVpvn(s, len); }
SV *ev_etcd_new_rv_noinc(void *pi, SV *sv) { SHIM_THX; return newRV_noinc(sv); }
SV *ev_etcd_new_sv_copy(void *pi, SV *sv) { SHIM_THX; return newSVsv(sv); }
HV *ev_etcd_new_hv(void *pi) { SHIM_THX; return newHV(); }
AV *ev_etcd_new_av(void *pi) { SHIM_THX; return newAV(); }
void ev_etcd_hv_store(void *pi, HV *hv, const char *k, I32 klen, SV *v) { SHIM_THX; (void)hv_store(hv, k, klen, v, 0); }
void ev_etcd_hv_delete(void *pi, HV *hv, const char *k, I32 klen) { SHIM_THX; (void)hv_delete(hv, k, klen, G_DISCARD); }
void ev_etcd_av_push(void *pi, AV *av, SV *v) { SHIM_THX; av_push(av, v); }
HV *ev_etcd_new_hv_copy(void *pi, HV *hv) { SHIM_THX; return newHVhv(hv); }

/* walking a hash's buckets (src/perl/sv.rs fills hashes copied from a template) */
HE **ev_etcd_hv_array(void *pi, HV *hv) { SHIM_THX; return HvARRAY(hv); }
STRLEN ev_etcd_hv_max(void *pi, HV *hv) { SHIM_THX; return HvMAX(hv); }
HE *ev_etcd_he_next(HE *he) { return HeNEXT(he); }
HEK *ev_etcd_he_hek(HE *he) { return HeKEY_hek(he); }
void ev_etcd_he_set_val(HE *he, SV *v) { HeVAL(he) = v; }
const char *ev_etcd_hek_key(HEK *hek) { return HEK_KEY(hek); }
I32 ev_etcd_hek_len(HEK *hek) { return HEK_LEN(hek); }
void ev_etcd_av_extend(void *pi, AV *av, SSize_t n) { SHIM_THX; av_extend(av, n); }
SV *ev_etcd_mortal(void *pi, SV *sv) { SHIM_THX; return sv_2mortal(sv); }
SV *ev_etcd_refcnt_inc(void *pi, SV *sv) { SHIM_THX; return SvREFCNT_inc_simple_NN(sv); }
void ev_etcd_refcnt_dec(void *pi, SV *sv) { SHIM_THX; SvREFCNT_dec(sv); }
SV *ev_etcd_bless(void *pi, SV *rv, const char *pkg) { SHIM_THX; return sv_bless(rv, gv_stashpv(pkg, GV_ADD)); }

/* inspecting values */
int ev_etcd_gmagical(void *pi, SV *sv) { SHIM_THX; return SvGMAGICAL(sv) ? 1 : 0; }
int ev_etcd_rmagical(void *pi, SV *sv) { SHIM_THX; return SvRMAGICAL(sv) ? 1 : 0; }
int ev_etcd_amagic(void *pi, SV *sv) { SHIM_THX; return SvAMAGIC(sv) ? 1 : 0; }
int ev_etcd_ok(void *pi, SV *sv) { SHIM_THX; return SvOK(sv) ? 1 : 0; }
int ev_etcd_rok(void *pi, SV *sv) { SHIM_THX; return SvROK(sv) ? 1 : 0; }
SV *ev_etcd_rv(void *pi, SV *sv) { SHIM_THX; return SvRV(sv); }
int ev_etcd_type(void *pi, SV *sv) { SHIM_THX; return (int)SvTYPE(sv); }
int ev_etcd_t_pvhv(void) { return SVt_PVHV; }
int ev_etcd_t_pvav(void) { return SVt_PVAV; }
int ev_etcd_t_pvcv(void) { return SVt_PVCV; }
/* An object blessed into pkg or a subclass; the exact class is checked by
   name first (the common case), without walking @ISA. */
int ev_etcd_isa(void *pi, SV *sv, const char *pkg, STRLEN len) {
    SHIM_THX;
    HV *st;
    if (!sv_isobject(sv)) return 0;
    st = SvSTASH(SvRV(sv));
    if (st && HvNAME_get(st) && (STRLEN)HvNAMELEN_get(st) == len && memEQ(HvNAME_get(st), pkg, len)) return 1;
    return sv_derived_from_pvn(sv, pkg, len, 0) ? 1 : 0;
}
int ev_etcd_pok(void *pi, SV *sv) { SHIM_THX; return SvPOK(sv) ? 1 : 0; }
const char *ev_etcd_pv(void *pi, SV *sv, STRLEN *len) { SHIM_THX; return SvPV(sv, *len); }
IV ev_etcd_iv(void *pi, SV *sv) { SHIM_THX; return SvIV(sv); }
double ev_etcd_nv(void *pi, SV *sv) { SHIM_THX; return (double)SvNV(sv); }
UV ev_etcd_uv(void *pi, SV *sv) { SHIM_THX; return SvUV(sv); }
int ev_etcd_true(void *pi, SV *sv) { SHIM_THX; return SvTRUE(sv) ? 1 : 0; }
SV **ev_etcd_hv_fetch(void *pi, HV *hv, const char *k, I32 klen) { SHIM_THX; return hv_fetch(hv, k, klen, 0); }
int ev_etcd_hv_exists(void *pi, HV *hv, const char *k, I32 klen) { SHIM_THX; return hv_exists(hv, k, klen) ? 1 : 0; }
SSize_t ev_etcd_av_top(void *pi, AV *av) { SHIM_THX; return av_top_index(av); }
SV **ev_etcd_av_fetch(void *pi, AV *av, SSize_t i) { SHIM_THX; return av_fetch(av, i, 0); }

/* Proxy calls and object creation from a format string: the arguments are
 * packed by value/pack.c as a list (one item per top-level format code),
 * the call is the plain one (client.c), and mproc_proxy_callf_unpack reads
 * the result through an unpack format. The arguments are packed before
 * anything else is checked, so the values given with 'o' are always taken
 * (the steal rule of value.h), whatever fails. */
#include "base/base.h"
#include "value/value.h"
#include "mproc/manager.h"

#include <stdarg.h>

/* The argument list of a format call, or NULL for none (a NULL or empty
 * format: the same request as the plain call with NULL). */
static int pack_args(const char *fn, const char *fmt, va_list *ap, mproc_value **args)
{
    *args = NULL;
    if (!fmt) return 0;
    int rc = mproc__value_pack_ap(fn, args, fmt, true, ap);
    if (!rc && mproc_value_len(*args) == 0) {
        mproc_value_free(*args);
        *args = NULL;
    }
    return rc;
}

/* The va_list forms take their own copy of ap (a va_list parameter may be
 * an array that decays to a pointer: &ap would not be a va_list *). */
int mproc_proxy_vcallf(mproc_proxy *p, const char *method, mproc_value **result, const char *fmt,
                       va_list ap)
{
    if (result) *result = NULL;
    va_list cp;
    va_copy(cp, ap);
    mproc_value *args;
    int rc = pack_args("mproc_proxy_callf", fmt, &cp, &args);
    va_end(cp);
    if (rc) return rc;
    rc = mproc_proxy_call(p, method, args, result);
    mproc_value_free(args);
    return rc;
}

int mproc_proxy_callf(mproc_proxy *p, const char *method, mproc_value **result, const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_proxy_vcallf(p, method, result, fmt, ap);
    va_end(ap);
    return rc;
}

int mproc_manager_vcreatef(mproc_manager *m, const char *typeid, mproc_proxy **out, const char *fmt,
                           va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    mproc_value *args;
    int rc = pack_args("mproc_manager_createf", fmt, &cp, &args);
    va_end(cp);
    if (rc) return rc;
    rc = mproc_manager_create(m, typeid, args, out);
    mproc_value_free(args);
    return rc;
}

int mproc_manager_createf(mproc_manager *m, const char *typeid, mproc_proxy **out, const char *fmt,
                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_manager_vcreatef(m, typeid, out, fmt, ap);
    va_end(ap);
    return rc;
}

int mproc_proxy_vcallf_unpack(mproc_proxy *p, const char *method, const char *args_fmt,
                              const char *result_fmt, va_list ap)
{
    static const char fn[] = "mproc_proxy_callf_unpack";
    va_list cp;
    va_copy(cp, ap);
    mproc_value *args, *result = NULL;
    int rc = pack_args(fn, args_fmt, &cp, &args);
    if (!rc)
        rc = mproc__value_unpack_owned(fn, result_fmt, "mproc_proxy_callf and mproc_value_unpack");
    if (!rc) rc = mproc_proxy_call(p, method, args, &result);
    if (!rc) rc = mproc__value_unpack_ap(fn, result, result_fmt, &cp);
    va_end(cp);
    mproc_value_free(args);
    mproc_value_free(result);
    return rc;
}

int mproc_proxy_callf_unpack(mproc_proxy *p, const char *method, const char *args_fmt,
                             const char *result_fmt, ...)
{
    va_list ap;
    va_start(ap, result_fmt);
    int rc = mproc_proxy_vcallf_unpack(p, method, args_fmt, result_fmt, ap);
    va_end(ap);
    return rc;
}

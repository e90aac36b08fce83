/* put and get of values by format string (mproc/queue.h): pack / unpack
 * (value/pack.c) around put_value / get_value. */
#include "base/base.h"
#include "value/value.h"
#include "mproc/queue.h"

#include <stdarg.h>

int mproc_queue_vputf(mproc_queue *q, int timeout_ms, const char *fmt, va_list ap)
{
    if (!q) return MPROC_EINVAL;
    va_list cp; /* a va_list parameter may be an array: pack reads a copy */
    va_copy(cp, ap);
    mproc_value *v;
    int rc = mproc__value_pack_ap("mproc_queue_putf", &v, fmt, false, &cp);
    va_end(cp);
    if (rc) return rc;
    rc = mproc_queue_put_value(q, v, timeout_ms);
    mproc_value_free(v);
    return rc;
}

int mproc_queue_putf(mproc_queue *q, int timeout_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_queue_vputf(q, timeout_ms, fmt, ap);
    va_end(ap);
    return rc;
}

int mproc_queue_vgetf(mproc_queue *q, int timeout_ms, const char *fmt, va_list ap)
{
    static const char fn[] = "mproc_queue_getf";
    int rc = q ? mproc__value_unpack_owned(fn, fmt, "mproc_queue_get_value and mproc_value_unpack")
               : MPROC_EINVAL;
    mproc_value *v = NULL;
    if (!rc) rc = mproc_queue_get_value(q, &v, timeout_ms);
    if (!rc) {
        va_list cp;
        va_copy(cp, ap);
        rc = mproc__value_unpack_ap(fn, v, fmt, &cp);
        va_end(cp);
    }
    mproc_value_free(v);
    return rc;
}

int mproc_queue_getf(mproc_queue *q, int timeout_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_queue_vgetf(q, timeout_ms, fmt, ap);
    va_end(ap);
    return rc;
}

/* Helpers shared by the manager tests: a manager under start method
 * number i, and short ways to build argument lists. */
#ifndef MPROC_MGRUTIL_H
#define MPROC_MGRUTIL_H

#include "testutil.h"

#include <stdarg.h>

/* Starts a manager with extra's options (or none) under tu_methods[i]. */
static inline mproc_manager *mgr_start(int i, const mproc_manager_opts *extra)
{
    mproc_manager_opts o = extra ? *extra : (mproc_manager_opts){0};
    const mproc_context *ctx;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[i]), &ctx));
    o.context = ctx;
    mproc_manager *m;
    TU_OK(mproc_manager_start(&m, &o));
    return m;
}

/* A list of one value (taken over). */
static inline mproc_value *args1(mproc_value *a)
{
    mproc_value *l = mproc_value_list();
    mproc_value_list_append(l, a);
    return l;
}

/* A list of the values given (taken over), up to a NULL. */
static inline mproc_value *lst(mproc_value *first, ...)
{
    mproc_value *l = mproc_value_list();
    va_list ap;
    va_start(ap, first);
    for (mproc_value *v = first; v; v = va_arg(ap, mproc_value *)) mproc_value_list_append(l, v);
    va_end(ap);
    return l;
}

/* mproc_manager_create / mproc_proxy_call that free the arguments. */
static inline int create_with(mproc_manager *m, const char *typeid, mproc_value *args,
                              mproc_proxy **out)
{
    int rc = mproc_manager_create(m, typeid, args, out);
    mproc_value_free(args);
    return rc;
}

static inline int call_with(mproc_proxy *p, const char *method, mproc_value *args,
                            mproc_value **out)
{
    int rc = mproc_proxy_call(p, method, args, out);
    mproc_value_free(args);
    return rc;
}

#define I(x) mproc_value_int(x)
#define S(x) mproc_value_str(x)

#endif

/* Start methods and contexts (mproc/context.h). */
#include "base/base.h"
#include "platform/exec_self.h"
#include "base/log.h"
#include "platform/platform.h"
#include "process/process.h"
#include "mproc/context.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mproc_context {
    mproc_start_method method;
};

static const mproc_context contexts[] = {
    {MPROC_START_DEFAULT},
    {MPROC_START_FORK},
    {MPROC_START_SPAWN},
    {MPROC_START_FORKSERVER},
};
static const char *const names[] = {NULL, "fork", "spawn", "forkserver"};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mproc_start_method chosen; /* MPROC_START_DEFAULT: not set yet */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool spawn_ok, forkserver_ok;

static void probe(void)
{
    spawn_ok = access(mproc__self_exe(), X_OK) == 0 && mproc__exec_self_possible();
    forkserver_ok = spawn_ok && mproc__clone_parent_supported();
}

bool mproc__start_method_available(mproc_start_method m)
{
    if (m == MPROC_START_FORK) return true;
    pthread_once(&probe_once, probe);
    return m == MPROC_START_SPAWN ? spawn_ok : m == MPROC_START_FORKSERVER && forkserver_ok;
}

const char *mproc_start_method_name(mproc_start_method m)
{
    return m >= MPROC_START_FORK && m <= MPROC_START_FORKSERVER ? names[m] : NULL;
}

int mproc_start_method_parse(const char *name, mproc_start_method *out)
{
    if (!name || !out) return MPROC_EINVAL;
    for (int m = MPROC_START_FORK; m <= MPROC_START_FORKSERVER; m++)
        if (strcmp(name, names[m]) == 0) {
            *out = (mproc_start_method)m;
            return 0;
        }
    return MPROC_EINVAL;
}

/* The default when none was set: MPROC_START_METHOD, else forkserver,
 * spawn or fork, whichever works first. */
static mproc_start_method builtin_default(void)
{
    const char *env = mproc__setting(MPROC__SET_START_METHOD);
    mproc_start_method m;
    if (env) {
        if (mproc_start_method_parse(env, &m) == 0 && mproc__start_method_available(m)) return m;
        mproc_log(MPROC_LOG_WARNING, "MPROC_START_METHOD=%s: %s; using the default", env,
                  mproc_start_method_parse(env, &m) ? "unknown start method"
                                                    : "not available here");
    }
    if (mproc__start_method_available(MPROC_START_FORKSERVER)) return MPROC_START_FORKSERVER;
    if (mproc__start_method_available(MPROC_START_SPAWN)) return MPROC_START_SPAWN;
    return MPROC_START_FORK;
}

mproc_start_method mproc__default_start_method(void)
{
    MPROC__LOCK(&mu);
    if (chosen == MPROC_START_DEFAULT) chosen = builtin_default();
    mproc_start_method m = chosen;
    MPROC__UNLOCK(&mu);
    return m;
}

int mproc_set_start_method(const char *method, bool force)
{
    mproc_start_method m = MPROC_START_DEFAULT;
    if (method) {
        int rc = mproc_start_method_parse(method, &m);
        if (rc) return rc;
        if (!mproc__start_method_available(m)) return MPROC_ENOTSUP;
    } else if (!force) {
        return MPROC_EINVAL;
    }
    int rc = 0;
    MPROC__LOCK(&mu);
    if (chosen != MPROC_START_DEFAULT && !force)
        rc = MPROC_EBADSTATE;
    else
        chosen = m;
    MPROC__UNLOCK(&mu);
    return rc;
}

const char *mproc_get_start_method(bool allow_none)
{
    if (allow_none) {
        MPROC__LOCK(&mu);
        mproc_start_method m = chosen;
        MPROC__UNLOCK(&mu);
        return mproc_start_method_name(m);
    }
    return names[mproc__default_start_method()];
}

size_t mproc_get_all_start_methods(const char **out, size_t cap)
{
    static const mproc_start_method order[] = {MPROC_START_FORKSERVER, MPROC_START_SPAWN,
                                               MPROC_START_FORK};
    mproc_start_method def = builtin_default();
    size_t n = 0;
    if (out && cap > 0) out[n] = names[def];
    n++;
    for (size_t i = 0; i < 3; i++) {
        if (order[i] == def || !mproc__start_method_available(order[i])) continue;
        if (out && n < cap) out[n] = names[order[i]];
        n++;
    }
    return n;
}

int mproc_get_context(const char *method, const mproc_context **out)
{
    if (!out) return MPROC_EINVAL;
    mproc_start_method m;
    if (!method) {
        m = mproc__default_start_method();
    } else {
        int rc = mproc_start_method_parse(method, &m);
        if (rc) return rc;
        if (!mproc__start_method_available(m)) return MPROC_ENOTSUP;
    }
    *out = &contexts[m];
    return 0;
}

const char *mproc_context_start_method(const mproc_context *ctx)
{
    return ctx ? mproc_start_method_name(ctx->method) : NULL;
}

mproc_start_method mproc_context_method(const mproc_context *ctx)
{
    return ctx ? ctx->method : MPROC_START_DEFAULT;
}

int mproc_context_process_new(const mproc_context *ctx, mproc_process **out, mproc_target_fn target,
                              const void *arg, size_t arglen, const mproc_process_opts *opts)
{
    if (!ctx) return MPROC_EINVAL;
    mproc_process_opts o = opts ? *opts : (mproc_process_opts){0};
    o.start_method = ctx->method;
    return mproc_process_new(out, target, arg, arglen, &o);
}

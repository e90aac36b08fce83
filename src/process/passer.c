/* Argument passers (process/passer.h). */
#include "process/passer.h"
#include "base/base.h"

#include <pthread.h>
#include <string.h>
#include <stdatomic.h>

#define MAX_PASSERS 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const mproc__arg_passer *passers[MAX_PASSERS];
static atomic_int npassers;

/* What the child's adopt calls made, released when its target returns. */
static const mproc__arg_passer *kept_by[MAX_PASSERS];
static void *kept[MAX_PASSERS];
static int nkept;

void mproc__arg_passer_register(const mproc__arg_passer *p)
{
    pthread_mutex_lock(&mu);
    int n = atomic_load(&npassers);
    bool known = false;
    for (int i = 0; i < n; i++) known |= passers[i] == p;
    if (!known && n < MAX_PASSERS) {
        passers[n] = p;
        atomic_store(&npassers, n + 1);
    }
    pthread_mutex_unlock(&mu);
}

int mproc__args_describe(const void *bytes, size_t len, mproc_value **out)
{
    *out = NULL;
    int n = atomic_load(&npassers);
    if (n == 0 || len < sizeof(void *)) return 0;
    mproc_value *all = NULL;
    for (int i = 0; i < n; i++) {
        mproc_value *d = NULL;
        int rc = passers[i]->describe(bytes, len, &d);
        if (!rc && d && !all && !(all = mproc_value_map())) rc = MPROC_ENOMEM;
        if (!rc && d) {
            rc = mproc_value_map_set_str(all, passers[i]->name, d);
            d = NULL;
        }
        mproc_value_free(d);
        if (rc) {
            mproc_value_free(all);
            return rc;
        }
    }
    *out = all;
    return 0;
}

int mproc__args_adopt(const mproc_value *passed, void *bytes, size_t len, const char **msg)
{
    int n = atomic_load(&npassers);
    for (size_t k = 0; k < mproc_value_len(passed); k++) {
        mproc_value *key, *desc;
        if (mproc_value_map_entry(passed, k, &key, &desc)) return MPROC_EPROTO;
        const char *name = mproc_value_get_str(key, NULL);
        const mproc__arg_passer *p = NULL;
        for (int i = 0; name && i < n && !p; i++)
            if (strcmp(passers[i]->name, name) == 0) p = passers[i];
        *msg = name ? name : "?";
        if (!p) return MPROC_ENOENT; /* the layer is not in this program image */
        void *k_ = NULL;
        int rc = p->adopt(desc, bytes, len, &k_);
        if (rc) return rc;
        if (nkept < MAX_PASSERS) {
            kept_by[nkept] = p;
            kept[nkept++] = k_;
        }
    }
    return 0;
}

void mproc__args_release(void)
{
    while (nkept > 0) {
        nkept--;
        if (kept_by[nkept]->release) kept_by[nkept]->release(kept[nkept]);
    }
}

bool mproc__args_is_handle(uintptr_t word)
{
    int n = atomic_load(&npassers);
    for (int i = 0; i < n; i++)
        if (passers[i]->is_handle && passers[i]->is_handle(word)) return true;
    return false;
}

/* The family authkey (Python's current_process().authkey): made once at
 * the root, inherited. A fork child inherits it in memory: the fork
 * handler makes the key before any fork, so parent and child never make
 * two different ones. spawn and forkserver children receive it in their
 * description (bootstrap.c). */
#include "base/module.h"
#include "conn/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define ROOT_KEY_LEN 32 /* as Python's os.urandom(32) */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t key[MPROC_AUTHKEY_MAX];
static size_t key_len; /* 0 until made or set */

static int ensure_locked(void)
{
    if (key_len) return 0;
    if (RAND_bytes(key, ROOT_KEY_LEN) != 1) return MPROC_EIO;
    key_len = ROOT_KEY_LEN;
    return 0;
}

static void before_fork(void)
{
    MPROC__LOCK(&mu);
    (void)ensure_locked();
}

static void after_fork_parent(void)
{
    MPROC__UNLOCK(&mu);
}

/* Unlocked as before_fork locked it (ThreadSanitizer takes a mutex made
 * anew for one still held); made anew after the forkserver's clone. */
static void after_fork_child(void)
{
    if (mproc__fork_was_prepared()) {
        MPROC__UNLOCK(&mu);
    } else {
        mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    }
}

/* Rank CONN + 1: after the connection registry's hooks, in a fixed order. */
static mproc__module authkey_module = {
    .name = "conn.authkey",
    .rank = MPROC__RANK_CONN + 1,
    .before_fork = before_fork,
    .after_fork_parent = after_fork_parent,
    .after_fork_child = after_fork_child,
};
MPROC__MODULE(authkey_module)

int mproc_get_authkey(void *buf, size_t cap, size_t *len)
{
    if (!len || (!buf && cap > 0)) return MPROC_EINVAL;
    mproc__init();
    MPROC__LOCK(&mu);
    int rc = ensure_locked();
    if (!rc) {
        *len = key_len;
        if (cap < key_len)
            rc = MPROC_ETOOSMALL;
        else
            memcpy(buf, key, key_len);
    }
    MPROC__UNLOCK(&mu);
    return rc;
}

int mproc_set_authkey(const void *k, size_t len)
{
    if (!k || len == 0 || len > MPROC_AUTHKEY_MAX) return MPROC_EINVAL;
    mproc__init();
    MPROC__LOCK(&mu);
    OPENSSL_cleanse(key, sizeof key);
    memcpy(key, k, len);
    key_len = len;
    MPROC__UNLOCK(&mu);
    return 0;
}

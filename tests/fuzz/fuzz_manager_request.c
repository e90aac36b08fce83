/* libFuzzer target: what a client can send a manager server once it is
 * authenticated. The input is the byte stream of one connection: it is
 * written into a socketpair and read back as the server reads it
 * (mproc_conn_recv_bytes with the manager's maximum message size), each
 * message decoded with mproc_value_decode (default limits) and handed to
 * the server's request handler on the real object table
 * (mproc__mgr_handle_request); the reply is encoded as the server would
 * send it. At the end of the input the client context's references are
 * dropped, as when a connection closes, which frees its objects.
 *
 * Two changes to a request keep runs short and reproducible (both made
 * after decoding, on a copy):
 *   - object ids 1..n name the objects this input made, in order (the
 *     table's ids keep growing from run to run); other ids are moved out
 *     of the way (+2^62), so that they never name a real object;
 *   - a blocking call of a queue or synchronisation object (put, get,
 *     acquire, wait, join) gets a timeout of 0 ms: a single-threaded run
 *     would otherwise wait forever.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS, default 30); seeds are in
 * tests/fuzz/corpus/manager_request (made by
 * tests/fuzz/make_corpus.py). */
#include "manager/server.h"
#include "mproc/conn.h"
#include "mproc/value.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT (64 * 1024) /* under a socketpair's buffer: one write, no reader thread */
#define MAX_MADE       256
#define FAR_AWAY       ((uint64_t)1 << 62)

static uint64_t made[MAX_MADE];
static size_t nmade;

static uint64_t map_id(uint64_t k)
{
    return k >= 1 && k <= nmade ? made[k - 1] : k + FAR_AWAY;
}

/* A copy of v with object handles renamed (NULL when memory ran out). */
static mproc_value *remap(const mproc_value *v)
{
    switch (mproc_value_kind_of(v)) {
    case MPROC_V_HANDLE: {
        uint32_t type;
        uint64_t ref;
        mproc_value_get_handle(v, &type, &ref);
        return mproc_value_handle(type, type == MPROC__HANDLE_OBJ ? map_id(ref) : ref);
    }
    case MPROC_V_LIST: {
        mproc_value *l = mproc_value_list();
        for (size_t i = 0; l && i < mproc_value_len(v); i++) {
            mproc_value *x = remap(mproc_value_list_get(v, i));
            if (!x || mproc_value_list_append(l, x)) {
                mproc_value_free(l);
                l = NULL;
            }
        }
        return l;
    }
    case MPROC_V_MAP: {
        mproc_value *m = mproc_value_map();
        for (size_t i = 0; m && i < mproc_value_len(v); i++) {
            mproc_value *k, *x;
            mproc_value_map_entry(v, i, &k, &x);
            mproc_value *k2 = remap(k), *x2 = remap(x);
            if (!k2 || !x2 || mproc_value_map_set(m, k2, x2)) {
                if (!k2 || !x2) {
                    mproc_value_free(k2);
                    mproc_value_free(x2);
                }
                mproc_value_free(m);
                m = NULL;
            }
        }
        return m;
    }
    default:
        return mproc_value_copy(v);
    }
}

/* Where a blocking method of a queue or synchronisation object takes its
 * timeout, or -1. */
static int timeout_slot(uint64_t id, const char *method)
{
    if (!method) return -1;
    mgr_obj *o = mproc__mgr_obj_get(id);
    if (!o) return -1;
    bool sync =
        o->type >= mproc__mgr_sync_types && o->type < mproc__mgr_sync_types + mproc__mgr_nsync;
    mproc__mgr_obj_put(o);
    if (!sync) return -1;
    if (strcmp(method, "put") == 0) return 1;
    const char *zero[] = {"get", "acquire", "wait", "join"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (strcmp(method, zero[i]) == 0) return 0;
    return -1;
}

/* The request as the fuzz run hands it over (see the top), or NULL. */
static mproc_value *prepare(const mproc_value *req)
{
    mproc_value *r = remap(req);
    int64_t op;
    uint64_t id;
    if (mproc_value_kind_of(r) != MPROC_V_LIST || mproc_value_get_int(mproc__mgr_arg(r, 0), &op) ||
        (op != MOP_CALL && op != MOP_INCREF && op != MOP_DECREF) ||
        mproc_value_get_uint(mproc__mgr_arg(r, 1), &id))
        return r;
    /* Rebuilt: [op, mapped id, rest...], with the timeout set on a call. */
    int slot = op == MOP_CALL
                   ? timeout_slot(map_id(id), mproc_value_get_str(mproc__mgr_arg(r, 2), NULL))
                   : -1;
    mproc_value *out = mproc_value_list();
    int rc = out ? 0 : MPROC_ENOMEM;
    if (!rc) rc = mproc_value_list_append(out, mproc_value_int(op));
    if (!rc) rc = mproc_value_list_append(out, mproc_value_uint(map_id(id)));
    for (size_t i = 2; !rc && i < mproc_value_len(r); i++) {
        const mproc_value *x = mproc_value_list_get(r, i);
        mproc_value_kind xk = mproc_value_kind_of(x);
        if (i == 3 && xk != MPROC_V_LIST && xk != MPROC_V_NIL) slot = -1; /* refused anyway */
        if (i != 3 || slot < 0) {
            rc = mproc_value_list_append(out, mproc_value_copy(x));
            continue;
        }
        mproc_value *args = mproc_value_list();
        for (size_t k = 0; args && !rc && k <= (size_t)slot; k++) {
            const mproc_value *a = mproc__mgr_arg(x, k);
            rc = mproc_value_list_append(args, (int)k == slot ? mproc_value_int(0)
                                               : a            ? mproc_value_copy(a)
                                                              : mproc_value_nil());
        }
        for (size_t k = (size_t)slot + 1; args && !rc && k < mproc_value_len(x); k++)
            rc = mproc_value_list_append(args, mproc_value_copy(mproc_value_list_get(x, k)));
        if (rc)
            mproc_value_free(args);
        else
            rc = args ? mproc_value_list_append(out, args) : MPROC_ENOMEM;
        slot = -1;
    }
    if (!rc && slot >= 0) { /* [CALL, id, method]: no argument list, make one */
        mproc_value *args = mproc_value_list();
        for (int k = 0; args && !rc && k <= slot; k++)
            rc = mproc_value_list_append(args, k == slot ? mproc_value_int(0) : mproc_value_nil());
        if (rc)
            mproc_value_free(args);
        else
            rc = args ? mproc_value_list_append(out, args) : MPROC_ENOMEM;
    }
    mproc_value_free(r);
    if (rc) {
        mproc_value_free(out);
        return NULL;
    }
    return out;
}

/* Remembers the object a reply names, for ids 1..n. */
static void note_reply(const mproc_value *rep)
{
    int64_t kind;
    uint64_t id;
    if (!mproc_value_get_int(mproc__mgr_arg(rep, 0), &kind) && kind == MREP_OK_PROXY &&
        !mproc_value_get_uint(mproc__mgr_arg(rep, 1), &id) && nmade < MAX_MADE)
        made[nmade++] = id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return -1; /* not added to the corpus */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    close(sv[1]);
    mproc_conn *c;
    if (mproc_conn_from_fd(&c, sv[0], true, false)) abort();
    mproc_conn_set_max_message(c, MPROC__MGR_MAX_MSG);
    nmade = 0;
    for (;;) {
        void *buf;
        size_t len;
        if (mproc_conn_recv_bytes(c, &buf, &len, MPROC_FOREVER)) break; /* end, or a bad frame */
        mproc_value *req;
        int rc = mproc_value_decode(buf, len, NULL, &req);
        free(buf);
        if (rc) break; /* the server says "malformed" and hangs up */
        mproc_value *r = prepare(req);
        mproc_value_free(req);
        mproc_value *rep = r ? mproc__mgr_handle_request(r) : NULL;
        mproc_value_free(r);
        if (!rep) break; /* out of memory */
        note_reply(rep);
        void *out;
        size_t olen;
        rc = mproc_value_encode(rep, &out, &olen);
        mproc_value_free(rep);
        if (rc == MPROC_EINVAL) abort(); /* a reply the server could not send */
        if (rc == 0) free(out);
    }
    mproc_conn_free(c);
    mproc__mgr_handle_reset();
    return 0;
}

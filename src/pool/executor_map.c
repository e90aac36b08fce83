/* mproc_executor_map: one task per item, results in order, a bounded
 * window of tasks in flight (two per worker), built on submit for both
 * kinds of executor.
 *
 * Each item runs as map_item, a task function of the library, whose
 * argument bytes are a header (the map function as a function reference,
 * so that it resolves in a new program image too, and the output size)
 * followed by the input element; its result bytes are the output element.
 * Workers never touch the caller's arrays: the caller copies each output
 * into place, so a map that times out can return at once and leave the
 * tasks still running to finish into nothing. */
#include "pool/executor.h"
#include "arena/fnref.h"
#include "pool/future.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct map_hdr {
    mproc__fnref fn;
    uint64_t out_size;
} map_hdr;

static int map_item(const void *arg, size_t arglen, mproc_result *res)
{
    map_hdr h;
    if (!arg || arglen < sizeof h)
        return mproc_task_fail("map: a malformed item of %zu bytes", arglen);
    memcpy(&h, arg, sizeof h);
    mproc_map_fn fn = (mproc_map_fn)mproc__fnref_resolve(h.fn);
    if (!fn) return mproc_task_fail("map: the map function cannot be found in this process");
    /* Fresh, aligned buffers (never empty, so fn always gets pointers). */
    size_t in_size = arglen - sizeof h;
    void *in = malloc(in_size ? in_size : 1);
    void *out = calloc(1, h.out_size ? h.out_size : 1);
    if (!in || !out) {
        free(in);
        free(out);
        return MPROC_ENOMEM;
    }
    memcpy(in, (const unsigned char *)arg + sizeof h, in_size);
    int rc = fn(in, out);
    free(in);
    if (rc) {
        free(out);
        return rc;
    }
    free(res->buf);
    res->buf = out;
    res->len = h.out_size;
    return 0;
}

typedef struct map_run {
    mproc_executor *ex;
    map_hdr hdr;
    const unsigned char *in;
    size_t in_size;
    unsigned char *arg; /* header + one input element */
    mproc_future **ring;
    size_t window;
    size_t sub, got; /* items submitted, items collected */
    int err;         /* the error of the lowest failing index so far */
    size_t err_at;
} map_run;

static void note_error(map_run *m, int rc, size_t at)
{
    if (!m->err || at < m->err_at) m->err = rc, m->err_at = at;
}

/* Fills the window. A submit that fails ends the submitting. */
static bool submit_more(map_run *m, size_t n)
{
    while (m->sub < n && m->sub - m->got < m->window) {
        memcpy(m->arg + sizeof m->hdr, m->in + m->sub * m->in_size, m->in_size);
        int rc = mproc_executor_submit(m->ex, map_item, m->arg, sizeof m->hdr + m->in_size,
                                       &m->ring[m->sub % m->window]);
        if (rc) {
            note_error(m, rc, m->sub);
            return false;
        }
        m->sub++;
    }
    return true;
}

/* Waits for item m->got and stores its output: 0, or MPROC_ETIMEDOUT. */
static int collect_one(map_run *m, unsigned char *out, size_t out_size, const mproc__deadline *dl)
{
    mproc_future **slot = &m->ring[m->got % m->window];
    const void *buf;
    size_t len;
    int rc = mproc_future_result(*slot, &buf, &len, mproc__deadline_poll_ms(dl));
    if (rc == MPROC_ETIMEDOUT) return rc;
    if (rc == 0 && len != out_size) rc = MPROC_EPROTO;
    if (rc == 0 && out_size) memcpy(out + m->got * out_size, buf, out_size);
    if (rc) {
        const char *msg = NULL;
        (void)mproc_future_error(*slot, NULL, &msg, NULL);
        mproc_log(MPROC_LOG_ERROR, "map: item %zu failed: %s", m->got,
                  msg ? msg : mproc_strerror(rc));
        note_error(m, rc, m->got);
    }
    mproc_future_free(*slot);
    *slot = NULL;
    m->got++;
    return 0;
}

int mproc_executor_map(mproc_executor *ex, mproc_map_fn fn, const void *in, size_t n,
                       size_t in_size, void *out, size_t out_size, int timeout_ms)
{
    mproc__deadline dl;
    if (!ex || !fn || (n && in_size && !in) || (n && out_size && !out) ||
        mproc__deadline_init(&dl, timeout_ms))
        return MPROC_EINVAL;
    if (!mproc__executor_owned(ex)) return MPROC_ECHILD;
    if (!n) return 0;
    map_run m = {.ex = ex, .in = in, .in_size = in_size};
    int rc = mproc__fnref_make((const void *)fn, &m.hdr.fn);
    if (rc) return rc;
    m.hdr.out_size = out_size;
    m.window = ex->workers > 0 ? 2 * (size_t)ex->workers : 2;
    if (m.window > n) m.window = n;
    m.ring = calloc(m.window, sizeof *m.ring);
    m.arg = malloc(sizeof m.hdr + in_size);
    if (!m.ring || !m.arg) {
        free(m.ring);
        free(m.arg);
        return MPROC_ENOMEM;
    }
    memcpy(m.arg, &m.hdr, sizeof m.hdr);
    bool submitting = true;
    while (rc == 0) {
        if (submitting) submitting = submit_more(&m, n);
        if (m.got == m.sub) break; /* all done, or nothing more could be submitted */
        rc = collect_one(&m, out, out_size, &dl);
    }
    /* After a timeout: withdraw what has not started, drop the rest. */
    for (size_t i = m.got; i < m.sub; i++) {
        (void)mproc_future_cancel(m.ring[i % m.window]);
        mproc_future_free(m.ring[i % m.window]);
    }
    free(m.ring);
    free(m.arg);
    return rc ? rc : m.err;
}

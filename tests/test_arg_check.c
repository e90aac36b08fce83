/* A pointer into the parent's heap or stack in a child's argument bytes is
 * refused under spawn and forkserver (it would mean nothing there), and
 * let through under fork, for arena memory, for connections, and with
 * opts.unchecked_args. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static char last_log[512];

static void keep_log(int level, const char *process_name, const char *msg, void *ud)
{
    (void)level;
    (void)process_name;
    (void)ud;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

typedef struct args {
    int32_t n, pad;
    void *p; /* at offset 8 */
} args;

/* Does not touch a->p: it only shows which starts are refused. */
static int ok_child(void *arg)
{
    return ((args *)arg)->n == 42 ? 0 : 1;
}

/* The start's result for a child given these bytes under method m (the
 * child joined when it started). */
static int start_with(const void *bytes, size_t len, mproc_start_method m, bool unchecked)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, ok_child, bytes, len,
                            &(mproc_process_opts){.start_method = m, .unchecked_args = unchecked}));
    int rc = mproc_process_start(p);
    if (rc == 0) {
        TU_OK(mproc_process_join(p, 30000));
        int code;
        TU_OK(mproc_process_exitcode(p, &code));
        ck_assert_int_eq(code, 0);
    }
    TU_OK(mproc_process_free(p));
    return rc;
}

START_TEST(heap_and_stack_pointers)
{
    mproc_start_method m = tu_methods[_i];
    int refused = m == MPROC_START_FORK ? 0 : MPROC_EINVAL;
    mproc_set_logger(keep_log, MPROC_LOG_WARNING, NULL);
    int local = 0;
    args a = {.n = 42, .p = &local};
    last_log[0] = 0;
    ck_assert_int_eq(start_with(&a, sizeof a, m, false), refused);
    if (refused)
        ck_assert_msg(strstr(last_log, "offset 8") && strstr(last_log, "stack"), "%s", last_log);
    ck_assert_int_eq(start_with(&a, sizeof a, m, true), 0); /* the opt-out */

    if (!TU_ASAN) { /* a sanitizer's malloc is not the brk heap */
        a.p = malloc(64);
        ck_assert_ptr_nonnull(a.p);
        last_log[0] = 0;
        ck_assert_int_eq(start_with(&a, sizeof a, m, false), refused);
        if (refused)
            ck_assert_msg(strstr(last_log, "offset 8") && strstr(last_log, "heap"), "%s", last_log);
        ck_assert_int_eq(start_with(&a, sizeof a, m, true), 0);
        free(a.p);
    }

    /* arena memory, NULL and plain integers pass */
    TU_OK(mproc_arena_alloc(&a.p, 64));
    ck_assert_int_eq(start_with(&a, sizeof a, m, false), 0);
    TU_OK(mproc_arena_free(a.p));
    a.p = NULL;
    ck_assert_int_eq(start_with(&a, sizeof a, m, false), 0);
    a.p = (void *)(uintptr_t)12345;
    ck_assert_int_eq(start_with(&a, sizeof a, m, false), 0);
    /* the dead part of this thread's stack, below every live frame: no
     * pointer of the program's may point there, so an integer that
     * happens to (stale padding beside a small int) is not refused */
    pthread_attr_t at;
    void *lo;
    size_t size;
    ck_assert_int_eq(pthread_getattr_np(pthread_self(), &at), 0);
    ck_assert_int_eq(pthread_attr_getstack(&at, &lo, &size), 0);
    pthread_attr_destroy(&at);
    a.p = (char *)lo + 4096;
    ck_assert_int_eq(start_with(&a, sizeof a, m, false), 0);
    /* shorter than a word: nothing to scan */
    int32_t n = 42;
    ck_assert_int_eq(start_with(&n, sizeof n, m, false), 0);
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
}
END_TEST

typedef struct conn_args {
    long n;
    mproc_conn *c;
} conn_args;

static int send_child(void *arg)
{
    conn_args *a = arg;
    if (a->n != 42) return 1;
    return mproc_conn_send_bytes(a->c, "hi", 2) ? 2 : 0;
}

/* A connection handle (a heap pointer) travels: the start translates it. */
START_TEST(connections_pass)
{
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    conn_args a = {42, w};
    mproc_process *p;
    TU_OK(mproc_process_new(&p, send_child, &a, sizeof a, TU_OPTS));
    TU_OK(mproc_process_start(p));
    char buf[8];
    size_t len;
    TU_OK(mproc_conn_recv_bytes_into(r, buf, sizeof buf, &len, 30000));
    ck_assert_uint_eq(len, 2);
    TU_OK(mproc_process_join(p, 30000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(p));
    mproc_conn_close(r);
    mproc_conn_close(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arg_check");
    TCase *tc = tu_tcase(s, "arg_check", 60);
    tcase_add_loop_test(tc, heap_and_stack_pointers, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, connections_pass, 0, TU_NMETHODS);
    return tu_run(s);
}

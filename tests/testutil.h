/* Shared test helpers: leak checks around every test, the start-method
 * loop, and small process utilities. Tests use Check; each test runs in its
 * own forked process with a timeout. Children started by tests report
 * through their exit status, never through Check's asserts. */
#ifndef MPROC_TESTUTIL_H
#define MPROC_TESTUTIL_H

#include "mproc.h"
#include "procfs.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TU_ASAN: 1 in an AddressSanitizer build (slower; some limits differ). */
#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#ifndef TU_ASAN
#define TU_ASAN 0
#endif

/* TU_EXCLUDE: names of tests not to run, separated by spaces (for a
 * checker that cannot model them: tests/tsan.cmake says which and why).
 * Each one left out is said on stderr. Every tcase_add_*test goes through
 * here. */
static inline void tu_add_test(TCase *tc, const TTest *t, int sig, int code, int start, int end)
{
    const char *ex = getenv("TU_EXCLUDE");
    size_t n = strlen(t->name);
    for (const char *p = ex; p && (p = strstr(p, t->name)); p += n)
        if ((p == ex || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) {
            fprintf(stderr, "%s: excluded (TU_EXCLUDE)\n", t->name);
            return;
        }
    _tcase_add_test(tc, t, sig, code, start, end);
}
#define _tcase_add_test tu_add_test

/* Every start method that exists; multi-process tests loop over these. */
static const mproc_start_method tu_methods[] = {MPROC_START_FORK, MPROC_START_SPAWN,
                                                MPROC_START_FORKSERVER};
#define TU_NMETHODS ((int)(sizeof tu_methods / sizeof tu_methods[0]))

/* In a loop test, the options for start method number _i. */
#define TU_OPTS (&(mproc_process_opts){.start_method = tu_methods[_i]})

static inline int tu_count_fds(void)
{
    int n = tu_count_dir("/proc/self/fd");
    return n < 0 ? -1 : n - 1; /* the directory's own fd */
}

static int tu_fds_before;

/* The library's own long-lived fds (the arena's memfd, the forkserver's
 * socket) exist before the count, so only what a test leaks is seen. */
static inline void tu_setup(void)
{
    (void)mproc_arena_init(NULL);
    (void)mproc_forkserver_ensure_running();
    tu_fds_before = tu_count_fds();
}

/* No fd leaked and no child left behind (zombie or running) by the test. */
static inline void tu_teardown(void)
{
    (void)mproc_forkserver_ensure_running(); /* as in tu_setup, if a test stopped it */
    int after = tu_count_fds();
    if (after != tu_fds_before && getenv("TU_DEBUG_FDS")) system("ls -l /proc/$PPID/fd >&2");
    mproc_forkserver_stop(); /* the server is a child too */
    pid_t z = waitpid(-1, NULL, WNOHANG);
    ck_assert_msg(z == -1 && errno == ECHILD, "a child was left behind (waitpid gave %d)", (int)z);
    ck_assert_msg(after == tu_fds_before, "fd leak: %d fds before, %d after", tu_fds_before, after);
}

/* Adds a test case with the leak checks and a timeout in seconds. */
static inline TCase *tu_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static inline void tu_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Assert an mproc call returned 0, printing the code's name otherwise. */
#define TU_OK(expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == 0, "%s -> %s (%s)", #expr, mproc_err_name(rc_), mproc_strerror(rc_)); \
    } while (0)
#define TU_RC(expr, want)                                                                          \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == (want), "%s -> %s (%d: %s), want %s", #expr, mproc_err_name(rc_),     \
                      rc_, mproc_strerror(rc_), mproc_err_name(want));                             \
    } while (0)

/* Milliseconds since t0_ns (an mproc_now_ns() reading). */
static inline long long tu_ms_since(long long t0_ns)
{
    return (mproc_now_ns() - t0_ns) / 1000000;
}

/* Bytes in live arena blocks (approximate under concurrency). */
static inline size_t tu_arena_allocated(void)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    return info.allocated;
}

/* Start target(arg) with opts, join it and return its exit code. */
static inline int tu_run_child_opts(mproc_target_fn fn, const void *arg, size_t len,
                                    const mproc_process_opts *opts)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, arg, len, opts));
    TU_OK(mproc_process_start(p));
    TU_OK(mproc_process_join(p, 30000));
    int code = -1000;
    TU_OK(mproc_process_exitcode(p, &code));
    TU_OK(mproc_process_free(p));
    return code;
}

/* Start target(arg) under method m, join it and return its exit code. */
static inline int tu_run_child(mproc_target_fn fn, const void *arg, size_t len,
                               mproc_start_method m)
{
    return tu_run_child_opts(fn, arg, len, &(mproc_process_opts){.start_method = m});
}

#endif

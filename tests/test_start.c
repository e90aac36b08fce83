/* Start methods and contexts: what is particular to spawn and forkserver
 * (the rest of the suite runs every multi-process test under each method). */
#include "process/spawn.h"
#include "testutil.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

static int ret_arg(void *arg)
{
    return arg ? *(int *)arg : 77;
}

static int segv(void *arg)
{
    (void)arg;
    raise(SIGSEGV);
    return 1;
}

/* The pid of this process's forkserver (a child named mproc-forksrv), or 0. */
static pid_t forkserver_pid(void)
{
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; d && (e = readdir(d)) && !found;) {
        char buf[512];
        pid_t pid = (pid_t)atoi(e->d_name);
        const char *rest = pid > 0 ? tu_proc_stat(pid, buf, sizeof buf) : NULL;
        const char *l = strchr(buf, '(');
        int ppid;
        char st;
        if (!rest || !l || sscanf(rest, "%c %d", &st, &ppid) != 2) continue;
        if (ppid == getpid() && st != 'Z' && rest - 2 - l - 1 == 13 &&
            strncmp(l + 1, "mproc-forksrv", 13) == 0)
            found = pid;
    }
    if (d) closedir(d);
    return found;
}

START_TEST(contexts_and_default_method)
{
    const char *all[4] = {0};
    size_t n = mproc_get_all_start_methods(all, 4);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(all[0], "forkserver"); /* the default first, as in Python 3.14 */
    ck_assert_str_eq(all[1], "spawn");
    ck_assert_str_eq(all[2], "fork");
    /* Nothing set yet in this test process: the default is not fixed. */
    ck_assert_ptr_null(mproc_get_start_method(true));
    TU_OK(mproc_set_start_method("spawn", false));
    ck_assert_str_eq(mproc_get_start_method(false), "spawn");
    TU_RC(mproc_set_start_method("fork", false), MPROC_EBADSTATE);
    TU_OK(mproc_set_start_method("fork", true));
    ck_assert_str_eq(mproc_get_start_method(true), "fork");
    TU_RC(mproc_set_start_method("thread", true), MPROC_EINVAL);
    TU_RC(mproc_set_start_method(NULL, false), MPROC_EINVAL);
    TU_OK(mproc_set_start_method(NULL, true));
    ck_assert_ptr_null(mproc_get_start_method(true));

    const mproc_context *ctx;
    TU_RC(mproc_get_context("vfork", &ctx), MPROC_EINVAL);
    TU_RC(mproc_get_context(NULL, NULL), MPROC_EINVAL);
    for (int k = 0; k < 3; k++) {
        TU_OK(mproc_get_context(all[k], &ctx));
        ck_assert_str_eq(mproc_context_start_method(ctx), all[k]);
        mproc_process *p;
        int v = 40 + k;
        TU_OK(mproc_context_process_new(ctx, &p, ret_arg, &v, sizeof v, NULL));
        TU_OK(mproc_process_start(p));
        TU_OK(mproc_process_join(p, 10000));
        int code;
        TU_OK(mproc_process_exitcode(p, &code));
        ck_assert_int_eq(code, 40 + k);
        TU_OK(mproc_process_free(p));
    }
    /* Using the default fixes it. */
    TU_OK(mproc_get_context(NULL, &ctx));
    ck_assert_str_eq(mproc_context_start_method(ctx), "forkserver");
    TU_RC(mproc_set_start_method("spawn", false), MPROC_EBADSTATE);
}
END_TEST

/* The child reports the default start method it sees. */
static int report_method(void *arg)
{
    mproc_conn *c = *(mproc_conn **)arg;
    const char *m = mproc_get_start_method(false);
    return mproc_conn_send_bytes(c, m, strlen(m)) ? 1 : 0;
}

START_TEST(children_inherit_the_default_method)
{
    TU_OK(mproc_set_start_method(tu_methods[_i] == MPROC_START_FORK ? "fork" : "spawn", true));
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    ck_assert_int_eq(tu_run_child(report_method, &w, sizeof w, tu_methods[_i]), 0);
    char buf[32];
    size_t n;
    TU_OK(mproc_conn_recv_bytes_into(r, buf, sizeof buf, &n, 5000));
    ck_assert_int_eq((int)n, tu_methods[_i] == MPROC_START_FORK ? 4 : 5);
    mproc_conn_free(r);
    mproc_conn_free(w);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

/* Takes the program's own mutex: fine in a new image, where nobody holds
 * it; under fork the copy would stay locked forever. */
static int take_held(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    if (pthread_mutex_timedlock(&held, &ts) != 0) return 1;
    void *m = malloc(1000); /* malloc works in the child too */
    free(m);
    return 0;
}

typedef struct {
    int method;
    int ok;
} starter_arg;

static void *starter(void *arg)
{
    starter_arg *a = arg;
    for (int k = 0; k < 10; k++) {
        int v = k;
        mproc_process *p;
        if (mproc_process_new(&p, ret_arg, &v, sizeof v,
                              &(mproc_process_opts){.start_method = a->method}) ||
            mproc_process_start(p) || mproc_process_join(p, 20000))
            return NULL;
        int code = -1;
        mproc_process_exitcode(p, &code);
        mproc_process_free(p);
        if (code != k) return NULL;
        /* malloc churn beside the starts, as a threaded program would */
        free(malloc(4096));
    }
    a->ok = 1;
    return NULL;
}

START_TEST(threaded_parent_starts_processes)
{
    pthread_t t[4];
    starter_arg a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (starter_arg){tu_methods[_i], 0};
        ck_assert_int_eq(pthread_create(&t[k], NULL, starter, &a[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
        ck_assert_int_eq(a[k].ok, 1);
    }
}
END_TEST

static void *hold_mutex(void *arg)
{
    pthread_mutex_lock(&held);
    atomic_store((_Atomic int *)arg, 1);
    tu_sleep_ms(1500);
    pthread_mutex_unlock(&held);
    return NULL;
}

START_TEST(parent_thread_holding_a_mutex)
{
    _Atomic int locked = 0; /* atomic: the thread sets it (TSan) */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold_mutex, (void *)&locked), 0);
    while (!atomic_load(&locked)) tu_sleep_ms(1);
    if (tu_methods[_i] == MPROC_START_FORK) {
        /* fork copies the held mutex: the child must not touch it. */
        ck_assert_int_eq(tu_run_child(ret_arg, &(int){3}, sizeof(int), tu_methods[_i]), 3);
    } else {
        long long t0 = mproc_now_ns();
        ck_assert_int_eq(tu_run_child(take_held, NULL, 0, tu_methods[_i]), 0);
        ck_assert(mproc_now_ns() - t0 < 1400000000LL); /* did not wait for our thread */
    }
    pthread_join(t, NULL);
}
END_TEST

/* ---- start-up failures ------------------------------------------------------ */

START_TEST(target_not_in_code_fails_at_start)
{
    static unsigned char not_code[64];
    mproc_process *p;
    TU_OK(mproc_process_new(&p, (mproc_target_fn)(void *)not_code, NULL, 0, TU_OPTS));
    TU_RC(mproc_process_start(p), MPROC_EINVAL);
    ck_assert(!mproc_process_is_alive(p));
    TU_OK(mproc_process_free(p));
    /* and the method still works afterwards */
    ck_assert_int_eq(tu_run_child(ret_arg, &(int){9}, sizeof(int), tu_methods[_i]), 9);
}
END_TEST

/* In a new image of this program started with TU_TAKE_ARENA=<address>,
 * this runs before mproc's start-up code and takes the arena's address. */
#include <sys/mman.h>
__attribute__((constructor(101))) static void take_arena_address(void)
{
    const char *v = getenv("TU_TAKE_ARENA");
    if (!v) return;
    void *want = (void *)(uintptr_t)strtoull(v, NULL, 0);
    mmap(want, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

START_TEST(arena_address_taken_in_the_child_fails_at_start)
{
    mproc_arena_info ai;
    TU_OK(mproc_arena_info_get(&ai));
    char v[32];
    snprintf(v, sizeof v, "%#lx", (unsigned long)ai.base);
    mproc_forkserver_stop(); /* a new server, started with the variable */
    setenv("TU_TAKE_ARENA", v, 1);
    mproc_process *p;
    TU_OK(mproc_process_new(&p, ret_arg, NULL, 0, TU_OPTS));
    TU_RC(mproc_process_start(p), MPROC_EADDRINUSE);
    TU_OK(mproc_process_free(p));
    unsetenv("TU_TAKE_ARENA");
    ck_assert_int_eq(tu_run_child(ret_arg, &(int){8}, sizeof(int), tu_methods[_i]), 8);
}
END_TEST

/* ---- the forkserver ----------------------------------------------------------- */

START_TEST(forkserver_survives_crashing_children)
{
    pid_t srv = forkserver_pid();
    ck_assert_int_gt(srv, 0);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(tu_run_child(segv, NULL, 0, MPROC_START_FORKSERVER), -SIGSEGV);
    ck_assert_int_eq(tu_run_child(ret_arg, &(int){4}, sizeof(int), MPROC_START_FORKSERVER), 4);
    ck_assert_int_eq(forkserver_pid(), srv);
}
END_TEST

START_TEST(forkserver_killed_is_replaced)
{
    for (int round = 0; round < 3; round++) {
        pid_t srv = forkserver_pid();
        ck_assert_int_gt(srv, 0);
        ck_assert_int_eq(kill(srv, SIGKILL), 0);
        tu_sleep_ms(round == 0 ? 50 : 0); /* dead and reaped, or still dying */
        ck_assert_int_eq(tu_run_child(ret_arg, &(int){6}, sizeof(int), MPROC_START_FORKSERVER), 6);
        pid_t now = forkserver_pid();
        ck_assert_int_gt(now, 0);
        ck_assert_int_ne(now, srv);
    }
}
END_TEST

START_TEST(forkserver_children_are_ours)
{
    mproc_process *p;
    int ms = 10000;
    TU_OK(mproc_process_new(&p, ret_arg, &ms, sizeof ms,
                            &(mproc_process_opts){.start_method = MPROC_START_FORKSERVER}));
    TU_OK(mproc_process_start(p));
    char buf[512];
    const char *rest = tu_proc_stat(mproc_process_pid(p), buf, sizeof buf);
    if (rest) { /* it may have exited already: then waitpid below proves it */
        int ppid = 0;
        char st;
        ck_assert_int_eq(sscanf(rest, "%c %d", &st, &ppid), 2);
        ck_assert_int_eq(ppid, getpid());
    }
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 10000 & 0xff);
    TU_OK(mproc_process_free(p));
}
END_TEST

static int preload_ran_marker(void *arg)
{
    (void)arg;
    return getenv("TU_PRELOAD_RAN") ? 0 : 1;
}

static void preload(void)
{
    setenv("TU_PRELOAD_RAN", "1", 1);
}

START_TEST(forkserver_preload_runs_in_the_server)
{
    mproc_forkserver_stop();
    TU_OK(mproc_forkserver_set_preload(preload));
    TU_OK(mproc_forkserver_ensure_running());
    ck_assert_int_eq(tu_run_child(preload_ran_marker, NULL, 0, MPROC_START_FORKSERVER), 0);
    ck_assert_ptr_null(getenv("TU_PRELOAD_RAN"));
    TU_OK(mproc_forkserver_set_preload(NULL));
    static unsigned char data[16];
    TU_RC(mproc_forkserver_set_preload((mproc_preload_fn)(void *)data), MPROC_EINVAL);
}
END_TEST

static void die_after_read(void)
{
    mproc__forkserver_die_after_read = 1;
}

/* A server that dies after reading a request (it may have started the
 * child) fails that start with MPROC_ECHILDSTART rather than sending the
 * request again or hanging; the next start gets a new server. */
START_TEST(forkserver_dying_mid_request_fails_that_start)
{
    mproc_forkserver_stop();
    TU_OK(mproc_forkserver_set_preload(die_after_read));
    TU_OK(mproc_forkserver_ensure_running());
    pid_t srv = forkserver_pid();
    ck_assert_int_gt(srv, 0);
    TU_OK(mproc_forkserver_set_preload(NULL));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, ret_arg, &(int){3}, sizeof(int),
                            &(mproc_process_opts){.start_method = MPROC_START_FORKSERVER}));
    long long t0 = mproc_now_ns();
    TU_RC(mproc_process_start(p), MPROC_ECHILDSTART);
    ck_assert(mproc_now_ns() - t0 < 5000000000LL);
    ck_assert(!mproc_process_is_alive(p));
    TU_OK(mproc_process_free(p));
    ck_assert_int_eq(kill(srv, 0), -1); /* gone and reaped */
    ck_assert_int_eq(tu_run_child(ret_arg, &(int){5}, sizeof(int), MPROC_START_FORKSERVER), 5);
    ck_assert_int_ne(forkserver_pid(), srv);
}
END_TEST

/* An exec that fails (here: an environment string over the kernel's
 * 128 KiB limit, E2BIG) fails the start with the exec's error; nothing is
 * left behind and the next start works. */
START_TEST(spawn_exec_failure_fails_the_start)
{
    size_t big = 200 * 1024;
    char *v = malloc(big + 1);
    ck_assert_ptr_nonnull(v);
    memset(v, 'x', big);
    v[big] = '\0';
    int fds = tu_count_fds();
    ck_assert_int_eq(setenv("TU_HUGE", v, 1), 0);
    free(v);
    mproc_process *p;
    TU_OK(mproc_process_new(&p, ret_arg, &(int){3}, sizeof(int),
                            &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
    TU_RC(mproc_process_start(p), MPROC_E2BIG);
    ck_assert(!mproc_process_is_alive(p));
    TU_OK(mproc_process_free(p));
    ck_assert_int_eq(tu_count_fds(), fds);
    unsetenv("TU_HUGE");
    ck_assert_int_eq(tu_run_child(ret_arg, &(int){4}, sizeof(int), MPROC_START_SPAWN), 4);
}
END_TEST

/* ---- the program started in odd ways -------------------------------------------- */

/* Mode of this program run by the tests below: chdir away, then start a
 * child under each method. Exit 0 when all worked. */
static int odd_start_mode(void)
{
    if (chdir("/") != 0) return 10;
    for (int m = 1; m <= 3; m++) {
        mproc_process *p;
        int code = -1;
        if (mproc_process_new(&p, ret_arg, &m, sizeof m,
                              &(mproc_process_opts){.start_method = (mproc_start_method)m}) ||
            mproc_process_start(p) || mproc_process_join(p, 20000) ||
            mproc_process_exitcode(p, &code) || mproc_process_free(p) || code != m)
            return m;
    }
    const char *want = getenv("TU_EXPECT_METHOD");
    if (want && strcmp(mproc_get_start_method(false), want) != 0) return 20;
    return 0;
}

static int run_self(const char *dir, const char *argv0, const char *env1, const char *env2)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(100);
        if (env1) putenv((char *)env1);
        if (env2) putenv((char *)env2);
        execl(argv0, argv0, "--odd-start", (char *)NULL);
        _exit(101);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

START_TEST(spawn_from_relative_path_after_chdir)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    char dir[PATH_MAX], base[PATH_MAX], rel[PATH_MAX + 2];
    strcpy(dir, exe);
    strcpy(base, exe);
    snprintf(rel, sizeof rel, "./%s", basename(base));
    ck_assert_int_eq(run_self(dirname(dir), rel, NULL, NULL), 0);
}
END_TEST

START_TEST(environment_sets_the_default)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    ck_assert_int_eq(run_self("/", exe, "MPROC_START_METHOD=spawn", "TU_EXPECT_METHOD=spawn"), 0);
    ck_assert_int_eq(run_self("/", exe, "MPROC_START_METHOD=fork", "TU_EXPECT_METHOD=fork"), 0);
    /* an unknown name is ignored (with a warning): the built-in default */
    ck_assert_int_eq(run_self("/", exe, "MPROC_START_METHOD=bogus", "TU_EXPECT_METHOD=forkserver"),
                     0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--odd-start") == 0) return odd_start_mode();
    Suite *s = suite_create("start");
    TCase *tc = tu_tcase(s, "context", 60);
    tcase_add_test(tc, contexts_and_default_method);
    tcase_add_loop_test(tc, children_inherit_the_default_method, 0, TU_NMETHODS);
    tc = tu_tcase(s, "threads", 60);
    tcase_add_loop_test(tc, threaded_parent_starts_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, parent_thread_holding_a_mutex, 0, TU_NMETHODS);
    tc = tu_tcase(s, "failures", 60);
    tcase_add_loop_test(tc, target_not_in_code_fails_at_start, 1, TU_NMETHODS);
    tcase_add_loop_test(tc, arena_address_taken_in_the_child_fails_at_start, 1, TU_NMETHODS);
    tc = tu_tcase(s, "forkserver", 60);
    tcase_add_test(tc, forkserver_survives_crashing_children);
    tcase_add_test(tc, forkserver_killed_is_replaced);
    tcase_add_test(tc, forkserver_children_are_ours);
    tcase_add_test(tc, forkserver_preload_runs_in_the_server);
    tcase_add_test(tc, forkserver_dying_mid_request_fails_that_start);
    tcase_add_test(tc, spawn_exec_failure_fails_the_start);
    tc = tu_tcase(s, "program", 60);
    tcase_add_test(tc, spawn_from_relative_path_after_chdir);
    tcase_add_test(tc, environment_sets_the_default);
    return tu_run(s);
}

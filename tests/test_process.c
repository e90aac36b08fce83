/* Processes: lifecycle, exit codes, names, daemons, misuse, faults. Every
 * multi-process test runs under each start method (the loop index _i). */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

static int ret_arg(void *arg)
{
    return arg ? *(int *)arg : 77;
}

static int sleeper(void *arg)
{
    tu_sleep_ms(arg ? *(int *)arg : 10000);
    return 0;
}

static int segv(void *arg)
{
    (void)arg;
    raise(SIGSEGV);
    return 1;
}

static int aborter(void *arg)
{
    (void)arg;
    abort();
}

START_TEST(exit_codes_follow_python)
{
    static const int codes[] = {0, 7, 255};
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(tu_run_child(ret_arg, &codes[k], sizeof(int), tu_methods[_i]), codes[k]);
    int big = 256 + 3;
    ck_assert_int_eq(tu_run_child(ret_arg, &big, sizeof big, tu_methods[_i]), 3);
    ck_assert_int_eq(tu_run_child(segv, NULL, 0, tu_methods[_i]), -SIGSEGV);
    ck_assert_int_eq(tu_run_child(aborter, NULL, 0, tu_methods[_i]), -SIGABRT);
    ck_assert_int_eq(tu_run_child(ret_arg, NULL, 0, tu_methods[_i]), 77); /* no arg: NULL */
}
END_TEST

static void signal_case(int (*fn)(mproc_process *), int sig, int method)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, sleeper, NULL, 0, &(mproc_process_opts){.start_method = method}));
    TU_OK(mproc_process_start(p));
    ck_assert(mproc_process_is_alive(p));
    TU_OK(fn(p));
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, -sig);
    ck_assert(!mproc_process_is_alive(p));
    TU_OK(fn(p)); /* already exited: left alone */
    TU_OK(mproc_process_free(p));
}

START_TEST(terminate_kill_interrupt)
{
    signal_case(mproc_process_terminate, SIGTERM, tu_methods[_i]);
    signal_case(mproc_process_kill, SIGKILL, tu_methods[_i]);
    signal_case(mproc_process_interrupt, SIGINT, tu_methods[_i]);
}
END_TEST

START_TEST(join_with_timeout)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, sleeper, NULL, 0, TU_OPTS));
    TU_OK(mproc_process_start(p));
    ck_assert_int_gt(mproc_process_pid(p), 0);
    TU_RC(mproc_process_join(p, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_process_join(p, 80), MPROC_ETIMEDOUT);
    long long dt = mproc_now_ns() - t0;
    ck_assert_msg(dt >= 80000000LL && dt < 2000000000LL, "waited %lld ns", dt);
    int code;
    TU_RC(mproc_process_exitcode(p, &code), MPROC_ERUNNING);
    TU_RC(mproc_process_free(p), MPROC_ERUNNING);
    TU_RC(mproc_process_join(p, -3), MPROC_EINVAL);
    struct pollfd pf = {.fd = mproc_process_sentinel(p), .events = POLLIN};
    ck_assert_int_ge(pf.fd, 0);
    ck_assert_int_eq(poll(&pf, 1, 0), 0);
    TU_OK(mproc_process_kill(p));
    ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    TU_OK(mproc_process_join(p, MPROC_FOREVER));
    TU_OK(mproc_process_join(p, 0)); /* again: still fine */
    TU_OK(mproc_process_free(p));
}
END_TEST

/* Child: checks its own name, then that of a child it creates. */
static int name_checker(void *arg)
{
    const char *want = arg;
    mproc_process *self = mproc_current_process();
    if (strcmp(mproc_process_name(self), want) != 0) return 10;
    if (mproc_process_pid(self) != getpid()) return 11;
    if (!mproc_process_is_alive(self)) return 12;
    mproc_process *parent = mproc_parent_process();
    if (!parent || mproc_process_pid(parent) != getppid()) return 13;
    if (strcmp(mproc_process_name(parent), "MainProcess") != 0) return 14;
    if (!mproc_process_is_alive(parent)) return 15;
    if (mproc_process_join(parent, 10) != MPROC_ETIMEDOUT) return 16;
    if (mproc_process_join(self, 0) != MPROC_EDEADLK) return 17;
    mproc_process *g;
    if (mproc_process_new(&g, ret_arg, NULL, 0, NULL) != 0) return 18;
    char gname[64];
    snprintf(gname, sizeof gname, "%s:1", want);
    if (strcmp(mproc_process_name(g), gname) != 0) return 19;
    if (mproc_process_start(g) || mproc_process_join(g, 10000)) return 20;
    int code;
    if (mproc_process_exitcode(g, &code) || code != 77) return 21;
    mproc_process_free(g);
    return 0;
}

START_TEST(names_and_identity)
{
    mproc_process *self = mproc_current_process();
    ck_assert_str_eq(mproc_process_name(self), "MainProcess");
    ck_assert_ptr_null(mproc_parent_process());
    ck_assert(!mproc_process_daemon(self));
    mproc_process *a, *b, *c;
    TU_OK(mproc_process_new(&a, ret_arg, NULL, 0, NULL));
    TU_OK(mproc_process_new(&b, ret_arg, NULL, 0, NULL));
    TU_OK(mproc_process_new(&c, ret_arg, NULL, 0, &(mproc_process_opts){.name = "custom"}));
    int na = atoi(mproc_process_name(a) + 8);
    ck_assert(strncmp(mproc_process_name(a), "Process-", 8) == 0);
    char want[32];
    snprintf(want, sizeof want, "Process-%d", na + 1);
    ck_assert_str_eq(mproc_process_name(b), want);
    ck_assert_str_eq(mproc_process_name(c), "custom");
    TU_OK(mproc_process_set_name(c, "renamed"));
    ck_assert_str_eq(mproc_process_name(c), "renamed");
    mproc_process_free(a);
    mproc_process_free(b);
    mproc_process_free(c);
    /* In the child: its default name, its parent, a grandchild's name. */
    mproc_process *p;
    TU_OK(mproc_process_new(&p, name_checker, "", 1, TU_OPTS));
    char name[64]; /* the next process gets the next number */
    snprintf(name, sizeof name, "Process-%d", atoi(mproc_process_name(p) + 8) + 1);
    mproc_process_free(p);
    ck_assert_int_eq(tu_run_child(name_checker, name, strlen(name) + 1, tu_methods[_i]), 0);
}
END_TEST

static int arg_mutator(void *arg)
{
    char *s = arg;
    int ok = strcmp(s, "abc") == 0;
    s[0] = 'Q';
    return ok ? 0 : 1;
}

START_TEST(arguments_are_private_copies)
{
    char buf[4] = "abc";
    mproc_process *p;
    TU_OK(mproc_process_new(&p, arg_mutator, buf, sizeof buf, TU_OPTS));
    strcpy(buf, "xyz");
    TU_OK(mproc_process_start(p));
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    ck_assert_str_eq(buf, "xyz");
    TU_OK(mproc_process_free(p));
}
END_TEST

static int join_other(void *arg)
{
    mproc_process *sibling = *(mproc_process **)arg;
    if (mproc_process_join(sibling, 0) != MPROC_ECHILD) return 1;
    if (mproc_process_kill(sibling) != MPROC_ECHILD) return 2;
    if (mproc_process_start(sibling) != MPROC_ECHILD) return 3;
    return 0;
}

START_TEST(misuse_gets_error_codes)
{
    mproc_process *p;
    TU_RC(mproc_process_new(NULL, ret_arg, NULL, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_process_new(&p, NULL, NULL, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_process_new(&p, ret_arg, NULL, 4, NULL), MPROC_EINVAL);
    TU_RC(mproc_process_new(&p, ret_arg, NULL, 0, &(mproc_process_opts){.start_method = 99}),
          MPROC_EINVAL);
    TU_RC(mproc_process_start(NULL), MPROC_EINVAL);
    TU_RC(mproc_process_join(NULL, 0), MPROC_EINVAL);
    ck_assert(!mproc_process_is_alive(NULL));
    TU_OK(mproc_process_free(NULL));

    TU_OK(mproc_process_new(&p, sleeper, NULL, 0, TU_OPTS));
    int code;
    TU_RC(mproc_process_join(p, 0), MPROC_ENOTSTARTED);
    TU_RC(mproc_process_exitcode(p, &code), MPROC_ENOTSTARTED);
    TU_RC(mproc_process_terminate(p), MPROC_ENOTSTARTED);
    TU_RC(mproc_process_sentinel(p), MPROC_ENOTSTARTED);
    TU_RC(mproc_process_exitcode(p, NULL), MPROC_EINVAL);
    ck_assert(!mproc_process_is_alive(p));
    ck_assert_int_eq(mproc_process_pid(p), 0);
    TU_OK(mproc_process_set_daemon(p, true));
    TU_OK(mproc_process_set_daemon(p, false));
    TU_OK(mproc_process_start(p));
    TU_RC(mproc_process_start(p), MPROC_ESTARTED);
    TU_RC(mproc_process_set_daemon(p, true), MPROC_ESTARTED);
    /* A child may not act on its parent's other children (it has the
     * object only under fork: elsewhere the pointer means nothing). */
    if (tu_methods[_i] == MPROC_START_FORK)
        ck_assert_int_eq(tu_run_child(join_other, &p, sizeof p, tu_methods[_i]), 0);
    TU_OK(mproc_process_kill(p));
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_free(p));

    mproc_process *self = mproc_current_process();
    TU_RC(mproc_process_join(self, 0), MPROC_EDEADLK);
    TU_RC(mproc_process_start(self), MPROC_ESTARTED);
    TU_RC(mproc_process_terminate(self), MPROC_ECHILD);
    TU_RC(mproc_process_exitcode(self, &code), MPROC_ERUNNING);
    TU_RC(mproc_process_set_daemon(self, true), MPROC_ESTARTED);
    TU_OK(mproc_process_free(self)); /* a no-op */
    ck_assert_str_eq(mproc_process_name(self), "MainProcess");
}
END_TEST

static int raise_usr1(void *arg)
{
    (void)arg;
    raise(SIGUSR1); /* ignored in the parent: stays ignored */
    tu_sleep_ms(10000);
    return 0;
}

static void on_term(int sig)
{
    (void)sig;
}

START_TEST(children_start_with_default_signal_handlers)
{
    struct sigaction sa = {.sa_handler = on_term}, ign = {.sa_handler = SIG_IGN};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &ign, NULL);
    mproc_process *p;
    TU_OK(mproc_process_new(&p, raise_usr1, NULL, 0, TU_OPTS));
    TU_OK(mproc_process_start(p));
    TU_RC(mproc_process_join(p, 100), MPROC_ETIMEDOUT); /* SIGUSR1 did not kill it */
    TU_OK(mproc_process_terminate(p));                  /* the handler is not inherited */
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, -SIGTERM);
    TU_OK(mproc_process_free(p));
}
END_TEST

START_TEST(child_reaped_behind_our_back_is_an_error_not_a_hang)
{
    int zero = 0;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, sleeper, &zero, sizeof zero, TU_OPTS));
    TU_OK(mproc_process_start(p));
    ck_assert_int_eq(waitpid(mproc_process_pid(p), NULL, 0), mproc_process_pid(p));
    TU_RC(mproc_process_join(p, MPROC_FOREVER), MPROC_ECHILD);
    int code;
    TU_RC(mproc_process_exitcode(p, &code), MPROC_ECHILD);
    ck_assert(!mproc_process_is_alive(p));
    TU_OK(mproc_process_free(p));
}
END_TEST

/* In a child made by the program's own fork(): mproc knows the new pid,
 * the parent's children are not its own, and it can start children. */
START_TEST(program_fork_child_gets_a_fresh_identity)
{
    int ms = 10000;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, sleeper, &ms, sizeof ms, TU_OPTS));
    TU_OK(mproc_process_start(p));
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 0;
        if (mproc_process_pid(mproc_current_process()) != getpid())
            rc = 1;
        else if (mproc_process_join(p, 0) != MPROC_ECHILD)
            rc = 2;
        else if (tu_run_child(ret_arg, &(int){5}, sizeof(int), tu_methods[_i]) != 5)
            rc = 3;
        size_t n = 9;
        if (!rc && (mproc_active_children(NULL, 0, &n) || n != 0)) rc = 4;
        _exit(rc);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    TU_OK(mproc_process_kill(p));
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_free(p));
}
END_TEST

/* Child that starts a grandchild (daemon or not), reports its pid on the
 * pipe fd in arg, and then returns or sleeps. */
typedef struct {
    mproc_conn *out; /* travels as an fd under every start method */
    bool daemon;
    bool linger;
    int grandchild_ms;
    int orphan_method; /* > 0: start an orphan_watcher so, and exit at once */
    int from_thread;   /* > 0: start the grandchild so, from a thread that then ends */
} middle_args;

/* A grandchild whose parent exits right after starting it, maybe before
 * the child has looked at it: mproc_parent_process() must still be a
 * parent that has ended, never an unsupported one (MPROC_ENOSYS). */
static int orphan_watcher(void *arg)
{
    (void)arg;
    mproc_process *pp = mproc_parent_process();
    if (!pp) return 10;
    mproc_waitable w = MPROC_WAITABLE_PROCESS(pp);
    size_t n = 0;
    int rc = mproc_wait(&w, 1, 10000, &n);
    if (rc == MPROC_ENOSYS) return 11;
    if (rc || n != 1 || !w.ready) return 12;
    if (mproc_process_is_alive(pp)) return 13;
    if (mproc_process_join(pp, 1000) != 0) return 14;
    if (mproc_process_sentinel(pp) < 0) return 15;
    return 0;
}

typedef struct {
    mproc_conn *ready; /* travels as an fd */
    int ms;
} ready_args;

/* A sleeper that says when it runs: after its start set it up. */
static int ready_sleeper(void *arg)
{
    ready_args *a = arg;
    if (mproc_conn_send_bytes(a->ready, "r", 1)) return 1;
    tu_sleep_ms(a->ms);
    return 0;
}

typedef struct {
    middle_args *m;
    mproc_process *g;
    int rc;
} grandchild_start;

/* Started by a thread, the grandchild tells the thread when it runs, so
 * that the thread ends after the grandchild has asked to die with it. */
static void *start_grandchild(void *arg)
{
    grandchild_start *s = arg;
    mproc_process_opts o = {.daemon = s->m->daemon,
                            .start_method =
                                s->m->from_thread ? s->m->from_thread : s->m->orphan_method};
    int ms = s->m->grandchild_ms;
    ready_args ra = {.ms = ms};
    mproc_conn *r = NULL;
    if (s->m->from_thread && mproc_pipe(&r, &ra.ready, false)) {
        s->rc = 5;
        return NULL;
    }
    int rc = s->m->from_thread
                 ? mproc_process_new(&s->g, ready_sleeper, &ra, sizeof ra, &o)
                 : mproc_process_new(&s->g, s->m->orphan_method ? orphan_watcher : sleeper, &ms,
                                     sizeof ms, &o);
    if (rc)
        s->rc = 1;
    else if (mproc_process_start(s->g))
        s->rc = 2;
    if (r) {
        char c;
        size_t n = 0;
        if (!s->rc && (mproc_conn_recv_bytes_into(r, &c, 1, &n, 10000) || n != 1)) s->rc = 6;
        mproc_conn_free(r);
        mproc_conn_free(ra.ready);
    }
    return NULL;
}

static int middle(void *arg)
{
    middle_args *m = arg;
    grandchild_start s = {.m = m};
    if (m->from_thread) {
        pthread_t t;
        if (pthread_create(&t, NULL, start_grandchild, &s) || pthread_join(t, NULL)) return 4;
    } else {
        start_grandchild(&s);
    }
    if (s.rc) return s.rc;
    mproc_process *g = s.g;
    pid_t pid = mproc_process_pid(g);
    if (m->from_thread) { /* the thread that started it has ended: still alive */
        tu_sleep_ms(200);
        if (!mproc_process_is_alive(g)) pid = -pid;
    }
    if (mproc_conn_send_bytes(m->out, &pid, sizeof pid)) return 3;
    if (m->orphan_method) _exit(0); /* no exit handler: it would join g */
    if (m->linger) tu_sleep_ms(30000);
    return 0; /* the exit handler terminates a daemon, joins the others */
}

static pid_t run_middle(middle_args m, int method, mproc_process **out)
{
    mproc_conn *r;
    TU_OK(mproc_pipe(&r, &m.out, false));
    TU_OK(mproc_process_new(out, middle, &m, sizeof m,
                            &(mproc_process_opts){.start_method = method}));
    TU_OK(mproc_process_start(*out));
    mproc_conn_free(m.out);
    pid_t g = 0;
    size_t n = 0;
    TU_OK(mproc_conn_recv_bytes_into(r, &g, sizeof g, &n, 10000));
    ck_assert_int_eq(n, sizeof g);
    mproc_conn_free(r);
    return g;
}

static int wait_reparented(pid_t g, int ms)
{
    for (int t = 0; t < ms; t += 5) {
        int st;
        if (waitpid(g, &st, WNOHANG) == g) return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
        tu_sleep_ms(5);
    }
    return 1000;
}

/* As a subreaper we inherit the middle process's orphans (its forkserver,
 * which exits once the middle is gone): reap them all. */
static void reap_orphans(void)
{
    mproc_forkserver_stop();
    for (int t = 0; t < 5000; t += 5) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0 && errno == ECHILD) return;
        if (r == 0) tu_sleep_ms(5);
    }
}

START_TEST(daemon_dies_when_parent_is_sigkilled)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    mproc_process *m;
    pid_t g = run_middle((middle_args){.daemon = true, .linger = true, .grandchild_ms = 30000},
                         tu_methods[_i], &m);
    TU_OK(mproc_process_kill(m));
    TU_OK(mproc_process_join(m, 10000));
    /* The daemon grandchild is re-parented to us and must die at once. */
    ck_assert_int_eq(wait_reparented(g, 5000), -SIGKILL);
    TU_OK(mproc_process_free(m));
    reap_orphans();
}
END_TEST

/* The kernel's parent-death signal comes when the parent *thread* ends. A
 * daemon started by a thread that ends lives on, and still dies with the
 * process that started it. */
START_TEST(daemon_outlives_its_starting_thread)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    mproc_process *m;
    pid_t g = run_middle(
        (middle_args){
            .daemon = true, .linger = true, .grandchild_ms = 30000, .from_thread = tu_methods[_i]},
        tu_methods[_i], &m);
    TU_OK(mproc_process_kill(m));
    TU_OK(mproc_process_join(m, 10000));
    ck_assert_msg(g > 0, "the daemon died with the thread that started it");
    ck_assert_int_eq(wait_reparented(g, 5000), -SIGKILL);
    TU_OK(mproc_process_free(m));
    reap_orphans();
}
END_TEST

START_TEST(exit_terminates_daemons_and_joins_others)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    mproc_process *m;
    long long t0 = mproc_now_ns();
    pid_t g = run_middle((middle_args){.daemon = true, .grandchild_ms = 30000}, tu_methods[_i], &m);
    TU_OK(mproc_process_join(m, 10000));
    ck_assert(mproc_now_ns() - t0 < 5000000000LL);
    int code;
    TU_OK(mproc_process_exitcode(m, &code));
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(kill(g, 0), -1); /* terminated and reaped by its parent */
    TU_OK(mproc_process_free(m));

    t0 = mproc_now_ns();
    g = run_middle((middle_args){.daemon = false, .grandchild_ms = 300}, tu_methods[_i], &m);
    TU_OK(mproc_process_join(m, 10000));
    ck_assert(mproc_now_ns() - t0 >= 300000000LL); /* it waited for its child */
    ck_assert_int_eq(kill(g, 0), -1);
    TU_OK(mproc_process_free(m));
    reap_orphans();
}
END_TEST

START_TEST(orphan_sees_its_parent_ended)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    for (int round = 0; round < 5; round++) {
        mproc_process *m;
        pid_t g = run_middle((middle_args){.orphan_method = tu_methods[_i]}, MPROC_START_FORK, &m);
        TU_OK(mproc_process_join(m, 10000));
        ck_assert_int_eq(wait_reparented(g, 15000), 0);
        TU_OK(mproc_process_free(m));
    }
    reap_orphans();
}
END_TEST

static int daemon_starts_child(void *arg)
{
    (void)arg;
    mproc_process *g;
    if (mproc_process_new(&g, ret_arg, NULL, 0, NULL)) return 1;
    int rc = mproc_process_start(g);
    mproc_process_free(g);
    return rc == MPROC_EBADSTATE ? 0 : 2;
}

START_TEST(daemons_may_not_have_children)
{
    mproc_process_opts o = {.daemon = true, .start_method = tu_methods[_i]};
    ck_assert_int_eq(tu_run_child_opts(daemon_starts_child, NULL, 0, &o), 0);
}
END_TEST

START_TEST(active_children_reaps_finished_ones)
{
    int quick = 0, slow = 10000;
    mproc_process *ps[3];
    TU_OK(mproc_process_new(&ps[0], sleeper, &slow, sizeof slow, TU_OPTS));
    TU_OK(mproc_process_new(&ps[1], sleeper, &quick, sizeof quick, TU_OPTS));
    TU_OK(mproc_process_new(&ps[2], sleeper, &slow, sizeof slow, TU_OPTS));
    for (int k = 0; k < 3; k++) TU_OK(mproc_process_start(ps[k]));
    struct pollfd pf = {.fd = mproc_process_sentinel(ps[1]), .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    mproc_process *out[4];
    size_t n = 0;
    TU_OK(mproc_active_children(out, 4, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_eq(out[0], ps[0]);
    ck_assert_ptr_eq(out[1], ps[2]);
    ck_assert_int_eq(waitpid(mproc_process_pid(ps[1]), NULL, WNOHANG), -1); /* reaped */
    TU_OK(mproc_active_children(NULL, 0, &n));
    ck_assert_uint_eq(n, 2);
    TU_RC(mproc_active_children(NULL, 1, &n), MPROC_EINVAL);
    for (int k = 0; k < 3; k++) {
        TU_OK(mproc_process_kill(ps[k]));
        TU_OK(mproc_process_join(ps[k], 10000));
        TU_OK(mproc_process_free(ps[k]));
    }
    TU_OK(mproc_active_children(NULL, 0, &n));
    ck_assert_uint_eq(n, 0);
}
END_TEST

static int method_for_threads;

static void *thread_starter(void *arg)
{
    (void)arg;
    for (int k = 0; k < 20; k++) {
        int v = k;
        mproc_process *p;
        if (mproc_process_new(&p, ret_arg, &v, sizeof v,
                              &(mproc_process_opts){.start_method = method_for_threads}) ||
            mproc_process_start(p) || mproc_process_join(p, 10000))
            return (void *)1;
        int code;
        if (mproc_process_exitcode(p, &code) || code != k) return (void *)2;
        mproc_process_free(p);
    }
    return NULL;
}

START_TEST(threads_start_processes_concurrently)
{
    method_for_threads = tu_methods[_i];
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, thread_starter, NULL), 0);
    for (int k = 0; k < 4; k++) {
        void *r;
        pthread_join(t[k], &r);
        ck_assert_ptr_null(r);
    }
}
END_TEST

static int print_y(void *arg)
{
    (void)arg;
    printf("y");
    return 0;
}

START_TEST(stdio_is_flushed_around_fork)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fds[1], 1);
    close(fds[1]);
    printf("x"); /* buffered: must not be written twice */
    int code = tu_run_child(print_y, NULL, 0, tu_methods[_i]);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char buf[16] = {0};
    ck_assert_int_eq(read(fds[0], buf, sizeof buf - 1), 2);
    close(fds[0]);
    ck_assert_int_eq(code, 0);
    ck_assert_str_eq(buf, "xy");
}
END_TEST

START_TEST(cpu_count_is_positive)
{
    ck_assert_int_ge(mproc_cpu_count(), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tu_tcase(s, "lifecycle", 30);
    tcase_add_loop_test(tc, exit_codes_follow_python, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, terminate_kill_interrupt, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, join_with_timeout, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, names_and_identity, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, arguments_are_private_copies, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, stdio_is_flushed_around_fork, 0, TU_NMETHODS);
    tcase_add_test(tc, cpu_count_is_positive);
    tc = tu_tcase(s, "misuse", 30);
    tcase_add_loop_test(tc, misuse_gets_error_codes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, child_reaped_behind_our_back_is_an_error_not_a_hang, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, program_fork_child_gets_a_fresh_identity, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, children_start_with_default_signal_handlers, 0, TU_NMETHODS);
    tc = tu_tcase(s, "family", 30);
    tcase_add_loop_test(tc, daemon_dies_when_parent_is_sigkilled, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, daemon_outlives_its_starting_thread, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, exit_terminates_daemons_and_joins_others, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, orphan_sees_its_parent_ended, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, daemons_may_not_have_children, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, active_children_reaps_finished_ones, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, threads_start_processes_concurrently, 0, TU_NMETHODS);
    return tu_run(s);
}

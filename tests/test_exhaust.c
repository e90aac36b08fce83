/* Resource exhaustion: a full arena, no fd left (EMFILE), fork failing
 * with EAGAIN (RLIMIT_NPROC) and a full /dev/shm. Each gives a clear error
 * code from every layer that needs the resource, and once the resource is
 * back everything works again.
 *
 * Each case runs in a child of the test (rlimits, uid and mount namespace
 * are changed there only), which reports through its exit status and
 * prints what went wrong. A case that cannot be set up here (not root, a
 * limit that does not bite) exits with SKIP_CODE and says so on stdout:
 * "SKIPPED: <case>: <why>"; the program then ends with SKIP_CODE when
 * nothing failed, which CTest reports as skipped (SKIP_RETURN_CODE). */
#include "base/base.h"
#include "testutil.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#define SKIP_CODE 77

static const char *case_name = "";

static void die(const char *fmt, ...) MPROC_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "exhaust %s: ", case_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    _exit(1);
}

static void skip(const char *why)
{
    printf("SKIPPED: %s: %s\n", case_name, why);
    fflush(NULL);
    _exit(SKIP_CODE);
}

/* In a child: expr must give `want`. */
#define WANT(expr, want)                                                                           \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != (want))                                                                         \
            die("line %d: %s -> %s, want %s", __LINE__, #expr, mproc_err_name(rc_),                \
                mproc_err_name(want));                                                             \
    } while (0)
#define OK(expr) WANT(expr, 0)

/* Runs fn in a child; its exit status 0 passes, SKIP_CODE is a loud skip. */
static void run_case(const char *name, void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        case_name = name;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn();
        mproc_forkserver_stop();
        fflush(NULL);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_CODE) {
        fprintf(stderr, "SKIPPED: exhaust %s (see the reason above)\n", name);
        FILE *f = fopen(getenv("EXHAUST_SKIPS"), "a"); /* for main */
        if (f) fprintf(f, "%s\n", name), fclose(f);
        return;
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exhaust %s: child %s %d", name,
                  WIFEXITED(st) ? "exited with" : "killed by signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static const mproc_context *ctx_of(mproc_start_method m)
{
    const mproc_context *c = NULL;
    mproc_get_context(mproc_start_method_name(m), &c);
    return c;
}

/* ---- helpers used under every start method ----------------------------------------- */

static int exit_with(void *arg)
{
    return *(const int *)arg;
}

/* Starts a child that exits with 7 under method m: its start's code (0
 * once it ran and exited with 7). */
static int start_one(mproc_start_method m)
{
    mproc_process *p;
    int seven = 7;
    int rc = mproc_process_new(&p, exit_with, &seven, sizeof seven,
                               &(mproc_process_opts){.start_method = m});
    if (rc) return rc;
    if ((rc = mproc_process_start(p)) != 0) {
        mproc_process_free(p);
        return rc;
    }
    int code = -1;
    if (mproc_process_join(p, 30000) || mproc_process_exitcode(p, &code) || code != 7)
        die("a child under %s did not exit with 7 (%d)", mproc_start_method_name(m), code);
    mproc_process_free(p);
    return 0;
}

static int square_task(const void *arg, size_t len, mproc_result *res)
{
    int x;
    if (len != sizeof x) return mproc_task_fail("bad argument");
    memcpy(&x, arg, sizeof x);
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

static int length_task(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    return mproc_result_set(res, &len, sizeof len);
}

static int square_map(const void *in, void *out)
{
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

/* A pool of 2 under m: its creation's code (0 once it applied and mapped
 * correctly and was shut down). */
static int pool_round(mproc_start_method m)
{
    mproc_pool *pool;
    int rc = mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 2, .context = ctx_of(m)});
    if (rc) return rc;
    int x = 9;
    void *res = NULL;
    size_t len = 0;
    OK(mproc_pool_apply(pool, square_task, &x, sizeof x, &res, &len));
    if (len != sizeof x || *(int *)res != 81) die("apply under %s", mproc_start_method_name(m));
    free(res);
    int in[64], out[64];
    for (int i = 0; i < 64; i++) in[i] = i;
    OK(mproc_pool_map(pool, square_map, in, 64, sizeof(int), out, sizeof(int), NULL));
    for (int i = 0; i < 64; i++)
        if (out[i] != i * i) die("map under %s", mproc_start_method_name(m));
    OK(mproc_pool_close(pool));
    OK(mproc_pool_join(pool, 30000));
    mproc_pool_free(pool);
    return 0;
}

/* ---- a full arena ----------------------------------------------------------------------- */

typedef struct blocks {
    void *p[4096];
    size_t n;
} blocks;

/* Allocates until nothing is left: blocks of every power of two, the
 * largest first, each exactly filling its size class. */
static void fill_arena(blocks *b)
{
    for (int k = 40; k >= 5; k--) {
        void *p;
        while (b->n < MPROC__COUNTOF(b->p) && mproc_arena_alloc(&p, ((size_t)1 << k) - 16) == 0)
            b->p[b->n++] = p;
    }
    if (b->n == MPROC__COUNTOF(b->p)) die("the arena did not fill");
}

static void free_blocks(blocks *b)
{
    while (b->n) OK(mproc_arena_free(b->p[--b->n]));
}

static void arena_full_case(void)
{
    static char big[200000];
    memset(big, 'b', sizeof big);
    mproc_queue *q;
    OK(mproc_queue_new(&q, NULL));
    mproc_pool *pools[TU_NMETHODS];
    for (int m = 0; m < TU_NMETHODS; m++)
        OK(mproc_pool_new(&pools[m],
                          &(mproc_pool_opts){.processes = 2, .context = ctx_of(tu_methods[m])}));
    static blocks b;
    fill_arena(&b);
    void *p;
    WANT(mproc_arena_alloc(&p, 1), MPROC_ENOMEM);
    WANT(mproc_arena_alloc(&p, 100000), MPROC_ENOMEM);
    mproc_queue *q2;
    WANT(mproc_queue_new(&q2, NULL), MPROC_ENOMEM);
    WANT(mproc_queue_put(q, big, sizeof big, 0), MPROC_ENOMEM);
    mproc_lock *l;
    WANT(mproc_lock_new(&l), MPROC_ENOMEM);
    mproc_sem *s;
    WANT(mproc_sem_new(&s, 1), MPROC_ENOMEM);
    mproc_shared *v;
    WANT(mproc_shared_value_new(&v, 'i', NULL, NULL), MPROC_ENOMEM);
    for (int m = 0; m < TU_NMETHODS; m++) {
        mproc_pool *pool;
        WANT(mproc_pool_new(&pool,
                            &(mproc_pool_opts){.processes = 1, .context = ctx_of(tu_methods[m])}),
             MPROC_ENOMEM);
        /* A map needs a staging block; without one its chunks carry their
         * data: it works, or fails with MPROC_ENOMEM, never anything else. */
        int in[1000], out[1000];
        for (int i = 0; i < 1000; i++) in[i] = i;
        int rc =
            mproc_pool_map(pools[m], square_map, in, 1000, sizeof(int), out, sizeof(int), NULL);
        if (rc != 0 && rc != MPROC_ENOMEM) die("map on a full arena: %s", mproc_err_name(rc));
        for (int i = 0; rc == 0 && i < 1000; i++)
            if (out[i] != i * i) die("map on a full arena: wrong output");
        /* Process start does not need the arena. */
        OK(start_one(tu_methods[m]));
    }
    /* A task whose message needs arena memory (over 8 KiB: a block of its
     * own in the inbox) waits for it, and runs once memory is back, with
     * nothing else happening in its pool. */
    static char arg[10000];
    mproc_future *f[TU_NMETHODS];
    for (int m = 0; m < TU_NMETHODS; m++)
        OK(mproc_pool_apply_async(pools[m], length_task, arg, sizeof arg, NULL, &f[m]));
    tu_sleep_ms(300);
    for (int m = 0; m < TU_NMETHODS; m++)
        if (mproc_future_done(f[m])) die("a task that needs arena memory ended on a full arena");

    /* Everything back: everything works. */
    free_blocks(&b);
    for (int m = 0; m < TU_NMETHODS; m++) {
        const void *res;
        size_t len;
        int rc = mproc_future_result(f[m], &res, &len, 20000);
        if (rc || len != sizeof(size_t) || *(const size_t *)res != sizeof arg)
            die("the task held back under %s: %s", mproc_start_method_name(tu_methods[m]),
                mproc_err_name(rc));
        mproc_future_free(f[m]);
    }
    OK(mproc_queue_put(q, big, sizeof big, 0));
    void *got;
    size_t n;
    OK(mproc_queue_get(q, &got, &n, 0));
    if (n != sizeof big || memcmp(got, big, n) != 0) die("the large message came back wrong");
    free(got);
    OK(mproc_queue_new(&q2, NULL));
    mproc_queue_free(q2);
    OK(mproc_lock_new(&l));
    mproc_lock_free(l);
    OK(mproc_sem_new(&s, 1));
    mproc_sem_free(s);
    OK(mproc_shared_value_new(&v, 'i', NULL, NULL));
    mproc_shared_free(v);
    for (int m = 0; m < TU_NMETHODS; m++) {
        OK(pool_round(tu_methods[m]));
        OK(mproc_pool_close(pools[m]));
        OK(mproc_pool_join(pools[m], 30000));
        mproc_pool_free(pools[m]);
    }
    mproc_queue_free(q);
}

START_TEST(test_arena_full)
{
    run_case("arena_full", arena_full_case);
}
END_TEST

/* ---- no fd left (EMFILE) ------------------------------------------------------------------ */

typedef struct fd_fill {
    int fd[4096];
    int n;
} fd_fill;

/* Opens fds until EMFILE. */
static void fill_fds(fd_fill *f)
{
    int fd;
    while (f->n < (int)MPROC__COUNTOF(f->fd) && (fd = dup(0)) >= 0) f->fd[f->n++] = fd;
    if (errno != EMFILE) die("filling the fd table stopped with errno %d", errno);
}

static void unfill_fds(fd_fill *f)
{
    while (f->n) close(f->fd[--f->n]);
}

static void emfile_case(void)
{
    /* fd 0 for dup, whatever the test's stdin is */
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0) die("no /dev/null");
    close(null);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 128;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit: %s", strerror(errno));
    /* A listener and a client socket, made while fds are left. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mproc-exhaust-%d.sock", (int)getpid());
    mproc_listener *l;
    OK(mproc_listener_new(&l, path, NULL));
    int cs = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cs < 0) die("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    OK(mproc_forkserver_ensure_running());

    static fd_fill f;
    fill_fds(&f);
    mproc_conn *a, *b;
    WANT(mproc_pipe(&a, &b, true), MPROC_EMFILE);
    WANT(mproc_pipe(&a, &b, false), MPROC_EMFILE);
    for (int m = 0; m < TU_NMETHODS; m++) WANT(start_one(tu_methods[m]), MPROC_EMFILE);
    mproc_forkserver_stop(); /* starting a new server needs fds too */
    fill_fds(&f);            /* (its socket was one) */
    WANT(start_one(MPROC_START_FORKSERVER), MPROC_EMFILE);
    if (connect(cs, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect: %s", strerror(errno));
    mproc_conn *c;
    WANT(mproc_listener_accept(l, &c, 2000), MPROC_EMFILE);
    WANT(mproc_client(&c, path, NULL, 2000), MPROC_EMFILE);
    for (int m = 0; m < TU_NMETHODS; m++) WANT(pool_round(tu_methods[m]), MPROC_EMFILE);
    mproc_manager *mgr;
    WANT(mproc_manager_start(&mgr, NULL), MPROC_EMFILE);
    mproc_listener *l2;
    WANT(mproc_listener_new(&l2, NULL, NULL), MPROC_EMFILE);
    if (dup(0) >= 0) die("an fd came free: a failed call leaked nothing, but closed one");

    /* fds back: everything works, and the waiting client is accepted. */
    unfill_fds(&f);
    OK(mproc_listener_accept(l, &c, 2000));
    OK(mproc_conn_send_bytes(c, "hi", 2));
    char buf[16];
    if (read(cs, buf, sizeof buf) != 6 || memcmp(buf + 4, "hi", 2) != 0) die("accepted conn");
    mproc_conn_free(c);
    close(cs);
    mproc_conn *cc;
    OK(mproc_client(&cc, path, NULL, 2000));
    OK(mproc_listener_accept(l, &c, 2000));
    mproc_conn_free(cc);
    mproc_conn_free(c);
    mproc_listener_free(l);
    OK(mproc_pipe(&a, &b, true));
    mproc_conn_free(a);
    mproc_conn_free(b);
    for (int m = 0; m < TU_NMETHODS; m++) {
        OK(start_one(tu_methods[m]));
        OK(pool_round(tu_methods[m]));
    }
    OK(mproc_manager_start(&mgr, NULL));
    mproc_proxy *px;
    OK(mproc_manager_create(mgr, "list", NULL, &px));
    mproc_proxy_free(px);
    mproc_manager_free(mgr);
}

START_TEST(test_emfile)
{
    run_case("emfile", emfile_case);
}
END_TEST

/* CPU time (utime + stime, in clock ticks) of a process. */
static long cpu_ticks(pid_t pid)
{
    char buf[1024];
    const char *rest = tu_proc_stat(pid, buf, sizeof buf);
    long ut = 0, st = 0;
    if (!rest || sscanf(rest, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

/* The fd number a process's next new fd would get (its lowest free one). */
static int lowest_free_fd(pid_t pid)
{
    char path[64];
    static bool used[65536];
    memset(used, 0, sizeof used);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd >= 0 && fd < 65536) used[fd] = true;
    }
    closedir(d);
    int fd = 0;
    while (fd < 65535 && used[fd]) fd++;
    return fd;
}

/* A manager server with no fd left for a new client: it waits for one to
 * come free (the client stays in the backlog), without spinning on its
 * listener, then serves the client. */
static void manager_emfile_case(void)
{
    for (int m = 0; m < TU_NMETHODS; m++) {
        char path[80];
        snprintf(path, sizeof path, "/tmp/mproc-exhaust-mgr-%d.sock", (int)getpid());
        mproc_manager *mgr;
        OK(mproc_manager_start(
            &mgr, &(mproc_manager_opts){.address = path, .context = ctx_of(tu_methods[m])}));
        mproc_process *kids[8];
        size_t nk = 0;
        OK(mproc_active_children(kids, 8, &nk));
        pid_t srv = 0;
        for (size_t i = 0; i < nk && i < 8; i++)
            if (strcmp(mproc_process_name(kids[i]), "SyncManager-1") == 0 || nk == 1)
                srv = mproc_process_pid(kids[i]);
        if (!srv && nk) srv = mproc_process_pid(kids[nk - 1]);
        if (!srv) die("no manager server among our children");
        struct rlimit old, low;
        if (prlimit(srv, RLIMIT_NOFILE, NULL, &old) != 0) die("prlimit");
        low = old;
        low.rlim_cur = (rlim_t)lowest_free_fd(srv); /* no slot left below the limit */
        if (prlimit(srv, RLIMIT_NOFILE, &low, NULL) != 0) die("prlimit");
        int cs = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (cs < 0 || connect(cs, (struct sockaddr *)&sa, sizeof sa) != 0)
            die("connect: %s", strerror(errno));
        tu_sleep_ms(100);
        long t0 = cpu_ticks(srv);
        tu_sleep_ms(1000);
        long used = cpu_ticks(srv) - t0;
        if (t0 < 0 || used > sysconf(_SC_CLK_TCK) / 10)
            die("under %s the server used %ld ticks of CPU in 1 s with a client it could not "
                "accept",
                mproc_start_method_name(tu_methods[m]), used);
        if (prlimit(srv, RLIMIT_NOFILE, &old, NULL) != 0) die("prlimit");
        close(cs); /* the server takes it now, and sees it gone */
        mproc_proxy *px;
        OK(mproc_manager_create(mgr, "list", NULL, &px));
        mproc_proxy_free(px);
        mproc_manager_free(mgr);
    }
}

START_TEST(test_manager_emfile)
{
    run_case("manager_emfile", manager_emfile_case);
}
END_TEST

/* ---- fork failing with EAGAIN (RLIMIT_NPROC) ------------------------------------------------- */

static void set_nproc(rlim_t n)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NPROC, &rl);
    rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
    if (setrlimit(RLIMIT_NPROC, &rl) != 0) die("setrlimit(RLIMIT_NPROC): %s", strerror(errno));
}

/* The same limit for our forkserver (its own rlimits were copied when it
 * started): the children of the process that is named mproc-forksrv. */
static void set_nproc_of_servers(rlim_t n)
{
    char path[64], comm[32];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f) die("cannot list our children");
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        FILE *c = fopen(path, "r");
        if (!c) continue;
        if (fgets(comm, sizeof comm, c) && strncmp(comm, "mproc-forksrv", 13) == 0) {
            struct rlimit rl;
            prlimit(pid, RLIMIT_NPROC, NULL, &rl);
            rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
            if (prlimit(pid, RLIMIT_NPROC, &rl, NULL) != 0) die("prlimit on the forkserver");
        }
        fclose(c);
    }
    fclose(f);
}

static void nproc_case(void)
{
    /* RLIMIT_NPROC does not bind root (CAP_SYS_ADMIN, CAP_SYS_RESOURCE):
     * run as a uid of our own, which drops every capability and which no
     * other process uses, so that the count is ours alone. (Under another
     * uid, the count takes in every process of that user.) */
    if (geteuid() != 0) skip("needs root, to run as a uid of its own");
    uid_t uid = 0x5a000000u + (uid_t)(getpid() & 0xffffff);
    if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
        skip("cannot change to an unprivileged uid");
    set_nproc(1); /* this process alone */
    pid_t probe = fork();
    if (probe == 0) _exit(0);
    if (probe > 0) {
        waitpid(probe, NULL, 0);
        skip("RLIMIT_NPROC does not bite here (a privileged process?)");
    }
    if (errno != EAGAIN) die("the probe fork failed with errno %d", errno);
    for (int m = 0; m < TU_NMETHODS; m++) {
        WANT(start_one(tu_methods[m]), MPROC_EAGAIN);
        WANT(pool_round(tu_methods[m]), MPROC_EAGAIN);
    }
    /* A forkserver that is running: its clone fails. */
    set_nproc(2);
    OK(mproc_forkserver_ensure_running());
    set_nproc_of_servers(2);
    WANT(start_one(MPROC_START_FORKSERVER), MPROC_EAGAIN);

    /* A worker that cannot be replaced: the pool breaks, and every task
     * it had fails with that code rather than waiting for ever. */
    for (int m = 0; m < TU_NMETHODS; m++) {
        set_nproc(RLIM_INFINITY);
        set_nproc_of_servers(RLIM_INFINITY);
        mproc_pool *pool;
        OK(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 2,
                                                    .maxtasksperchild = 1,
                                                    .context = ctx_of(tu_methods[m])}));
        set_nproc(1);
        set_nproc_of_servers(1);
        mproc_future *f[6];
        int failed = 0, n = 0;
        /* A worker may end its one task and fail to be replaced while
         * these are submitted: the pool is then broken, and refuses the
         * rest (MPROC_ESHUTDOWN), which is no failure of this case. */
        for (int i = 0; i < 6; i++, n++) {
            int rc = mproc_pool_apply_async(pool, square_task, &i, sizeof i, NULL, &f[i]);
            if (rc == MPROC_ESHUTDOWN && i > 0) {
                failed++;
                break;
            }
            if (rc)
                die("apply_async %d under %s: %s", i, mproc_start_method_name(tu_methods[m]),
                    mproc_err_name(rc));
        }
        for (int i = 0; i < n; i++) {
            int rc = mproc_future_wait(f[i], 30000);
            if (rc)
                die("task %d under %s: wait -> %s", i, mproc_start_method_name(tu_methods[m]),
                    mproc_err_name(rc));
            const void *buf;
            size_t len;
            rc = mproc_future_result(f[i], &buf, &len, 0);
            if (rc == 0 && *(const int *)buf != i * i) die("task %d: wrong result", i);
            if (rc != 0 && rc != MPROC_EAGAIN)
                die("task %d under %s: %s, want MPROC_EAGAIN", i,
                    mproc_start_method_name(tu_methods[m]), mproc_err_name(rc));
            failed += rc != 0;
            mproc_future_free(f[i]);
        }
        if (!failed) die("no task failed under %s", mproc_start_method_name(tu_methods[m]));
        int x = 3;
        WANT(mproc_pool_apply(pool, square_task, &x, sizeof x, NULL, NULL), MPROC_ESHUTDOWN);
        mproc_pool_free(pool);
    }

    /* The limit lifted: everything works. */
    set_nproc(RLIM_INFINITY);
    set_nproc_of_servers(RLIM_INFINITY);
    for (int m = 0; m < TU_NMETHODS; m++) {
        OK(start_one(tu_methods[m]));
        OK(pool_round(tu_methods[m]));
    }
}

START_TEST(test_nproc)
{
    run_case("nproc", nproc_case);
}
END_TEST

/* ---- a full /dev/shm ---------------------------------------------------------------------- */

static void devshm_case(void)
{
    /* A tiny tmpfs on /dev/shm, in a mount namespace of our own. */
    if (unshare(CLONE_NEWNS) != 0) skip("cannot make a mount namespace (not root?)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0)
        skip("cannot mount a tmpfs on /dev/shm");
    mproc_shm *s;
    /* Larger than what is left: a clear error now, not SIGBUS later. */
    WANT(mproc_shm_create(&s, NULL, 4 << 20, NULL), MPROC_ENOSPC);
    mproc_shareable_item items[64];
    static char text[100000];
    memset(text, 't', sizeof text);
    for (int i = 0; i < 64; i++)
        items[i] =
            (mproc_shareable_item){.type = MPROC_SHAREABLE_BYTES, .u.s = {text, sizeof text}};
    mproc_shareable_list *sl;
    WANT(mproc_shareable_list_create(&sl, NULL, items, 64), MPROC_ENOSPC);
    /* Fill it with one segment; then nothing more fits. */
    mproc_shm *all;
    OK(mproc_shm_create(&all, NULL, 1 << 20, NULL));
    memset(mproc_shm_buf(all), 1, 1 << 20);
    WANT(mproc_shm_create(&s, NULL, 8192, NULL), MPROC_ENOSPC);
    WANT(mproc_shareable_list_create(&sl, NULL, items, 1), MPROC_ENOSPC);
    /* Room again: it works. */
    OK(mproc_shm_unlink(all));
    mproc_shm_close(all);
    OK(mproc_shm_create(&s, NULL, 512 << 10, NULL));
    memset(mproc_shm_buf(s), 2, 512 << 10);
    OK(mproc_shareable_list_create(&sl, NULL, items, 4));
    mproc_shareable_item it;
    OK(mproc_shareable_list_get(sl, 3, &it));
    if (it.type != MPROC_SHAREABLE_BYTES || it.u.s.len != sizeof text)
        die("the list reads back wrong");
    OK(mproc_shm_unlink(mproc_shareable_list_shm(sl)));
    mproc_shareable_list_close(sl);
    OK(mproc_shm_unlink(s));
    mproc_shm_close(s);
}

START_TEST(test_devshm_full)
{
    run_case("devshm_full", devshm_case);
}
END_TEST

int main(void)
{
    char skips[] = "/tmp/mproc-exhaust-skips-XXXXXX";
    int sfd = mkstemp(skips);
    if (sfd < 0) return EXIT_FAILURE;
    close(sfd);
    setenv("EXHAUST_SKIPS", skips, 1);
    Suite *s = suite_create("exhaust");
    tcase_add_test(tu_tcase(s, "arena_full", 120), test_arena_full);
    tcase_add_test(tu_tcase(s, "emfile", 120), test_emfile);
    tcase_add_test(tu_tcase(s, "manager_emfile", 120), test_manager_emfile);
    tcase_add_test(tu_tcase(s, "nproc", 120), test_nproc);
    tcase_add_test(tu_tcase(s, "devshm_full", 60), test_devshm_full);
    int rc = tu_run(s);
    char line[64];
    int nskip = 0;
    FILE *f = fopen(skips, "r");
    while (f && fgets(line, sizeof line, f)) printf("SKIPPED: exhaust %s", line), nskip++;
    if (f) fclose(f);
    unlink(skips);
    return rc == EXIT_SUCCESS && nskip ? SKIP_CODE : rc;
}

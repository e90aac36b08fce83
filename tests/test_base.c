/* Base layer: error codes, deadlines, logging, version, cpu count, the
 * module registry. */
#include "base/base.h"
#include "base/module.h"
#include "platform/cgroup.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>

START_TEST(error_table_names_every_code)
{
#define CHECK_CODE(n, v, m)                                                                        \
    ck_assert_str_eq(mproc_err_name(v), "MPROC_" #n);                                              \
    ck_assert_str_eq(mproc_strerror(v), m);
    MPROC_ERRNO_TABLE(CHECK_CODE)
    MPROC_LIBERR_TABLE(CHECK_CODE)
#undef CHECK_CODE
    ck_assert_str_eq(mproc_err_name(0), "MPROC_OK");
    ck_assert_str_eq(mproc_strerror(0), "success");
}
END_TEST

START_TEST(errno_values_map_one_to_one)
{
    ck_assert_int_eq(MPROC_EINVAL, -EINVAL);
    ck_assert_int_eq(MPROC_EPIPE, -EPIPE);
    ck_assert_int_eq(mproc__err_from_errno(EINVAL), MPROC_EINVAL);
    ck_assert_int_eq(mproc__err_from_errno(ETIMEDOUT), MPROC_ETIMEDOUT);
    ck_assert_int_eq(mproc__err_from_errno(0), MPROC_EUNKNOWN);
    /* Library codes stay out of the errno range. */
    ck_assert_int_le(MPROC_ETIMEDOUT, -1000);
    ck_assert_int_le(MPROC_EUNKNOWN, -1000);
    /* An errno the table does not name still gets a message. */
    ck_assert_str_eq(mproc_err_name(-ENOLINK), "MPROC_E?");
    ck_assert_str_ne(mproc_strerror(-ENOLINK), "unknown error code");
    ck_assert_str_eq(mproc_strerror(-5555), "unknown error code");
    ck_assert_str_eq(mproc_strerror(12345), "unknown error code");
}
END_TEST

START_TEST(strerror_r_truncates_safely)
{
    char buf[8];
    ck_assert_ptr_eq(mproc_strerror_r(MPROC_ETIMEDOUT, buf, sizeof buf), buf);
    ck_assert_str_eq(buf, "timed o");
    char big[64];
    ck_assert_str_eq(mproc_strerror_r(MPROC_EEOF, big, sizeof big), mproc_strerror(MPROC_EEOF));
    ck_assert_ptr_null(mproc_strerror_r(0, NULL, 4));
}
END_TEST

START_TEST(version_matches_header)
{
    ck_assert_str_eq(mproc_version(), MPROC_VERSION_STRING);
    ck_assert_int_eq(mproc_version_number(), MPROC_VERSION_NUMBER);
}
END_TEST

START_TEST(deadline_convention)
{
    mproc__deadline d;
    ck_assert_int_eq(mproc__deadline_init(&d, -2), MPROC_EINVAL);
    TU_OK(mproc__deadline_init(&d, MPROC_FOREVER));
    ck_assert(!mproc__deadline_passed(&d));
    ck_assert_int_eq(mproc__deadline_poll_ms(&d), -1);
    TU_OK(mproc__deadline_init(&d, 0));
    ck_assert(mproc__deadline_passed(&d));
    ck_assert_int_eq(mproc__deadline_poll_ms(&d), 0);
    TU_OK(mproc__deadline_init(&d, 50));
    int left = mproc__deadline_poll_ms(&d);
    ck_assert(left > 0 && left <= 50);
    long long t0 = mproc_now_ns();
    tu_sleep_ms(60);
    ck_assert(mproc__deadline_passed(&d));
    ck_assert(mproc_now_ns() - t0 >= 60000000LL);
}
END_TEST

typedef struct {
    int level, calls;
    char name[64], msg[256];
} captured;

static void hook(int level, const char *name, const char *msg, void *ud)
{
    captured *c = ud;
    c->level = level;
    c->calls++;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

START_TEST(logger_hook_gets_level_name_and_message)
{
    captured c = {0};
    mproc_set_logger(hook, MPROC_LOG_INFO, &c);
    ck_assert_int_eq(mproc_log_level(), MPROC_LOG_INFO);
    mproc_log(MPROC_LOG_DEBUG, "hidden %d", 1);
    ck_assert_int_eq(c.calls, 0);
    mproc_log(MPROC_LOG_WARNING, "value %d", 42);
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.level, MPROC_LOG_WARNING);
    ck_assert_str_eq(c.name, "MainProcess");
    ck_assert_str_eq(c.msg, "value 42");
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    ck_assert_int_eq(mproc_log_level(), MPROC_LOG_OFF);
    mproc_log(MPROC_LOG_ERROR, "after removal");
    ck_assert_int_eq(c.calls, 1);
}
END_TEST

/* Runs fn with stderr redirected into a pipe and returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t cap)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int saved = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    fn();
    dup2(saved, 2);
    close(saved);
    ssize_t n = read(p[0], out, cap - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
}

static void log_some(void)
{
    mproc_log_to_stderr(MPROC_LOG_INFO);
    mproc_log(MPROC_LOG_INFO, "hello %s", "world");
    mproc_log(MPROC_LOG_DEBUG, "not shown");
    mproc_log(37, "odd level");
    mproc_log_to_stderr(MPROC_LOG_OFF);
    mproc_log(MPROC_LOG_ERROR, "off again");
}

START_TEST(stderr_lines_look_like_python)
{
    char out[512];
    capture_stderr(log_some, out, sizeof out);
    ck_assert_str_eq(out, "[INFO/MainProcess] hello world\n[Level 37/MainProcess] odd level\n");
    ck_assert_str_eq(mproc_log_level_name(MPROC_LOG_SUBWARNING), "SUBWARNING");
}
END_TEST

static void log_long(void)
{
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    mproc_log_to_stderr(MPROC_LOG_DEBUG);
    mproc_log(MPROC_LOG_ERROR, "%s", big);
    mproc_log_to_stderr(MPROC_LOG_OFF);
}

START_TEST(long_log_lines_are_cut_not_overflowed)
{
    char out[4096];
    capture_stderr(log_long, out, sizeof out);
    size_t n = strlen(out);
    ck_assert(n > 1000 && n < 1400);
    ck_assert_int_eq(out[n - 1], '\n');
    ck_assert(strncmp(out, "[ERROR/MainProcess] xxx", 23) == 0);
}
END_TEST

START_TEST(renaming_the_current_process_renames_its_log_lines)
{
    captured c = {0};
    mproc_set_logger(hook, MPROC_LOG_INFO, &c);
    mproc_process *self = mproc_current_process();
    TU_OK(mproc_process_set_name(self, "Renamed"));
    mproc_log(MPROC_LOG_INFO, "x");
    ck_assert_str_eq(c.name, "Renamed");
    ck_assert_str_eq(mproc_process_name(self), "Renamed");
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
}
END_TEST

static void child_hook(int level, const char *name, const char *msg, void *ud)
{
    (void)level;
    (void)msg;
    *(int *)ud = strcmp(name, mproc_process_name(mproc_current_process())) == 0 &&
                 strncmp(name, "Process-", 8) == 0;
}

static int child_logs(void *arg)
{
    (void)arg;
    int ok = 0;
    mproc_set_logger(child_hook, MPROC_LOG_INFO, &ok);
    mproc_log(MPROC_LOG_INFO, "from the child");
    return ok ? 0 : 1;
}

START_TEST(log_lines_in_a_child_carry_its_name)
{
    ck_assert_int_eq(tu_run_child(child_logs, NULL, 0, MPROC_START_FORK), 0);
}
END_TEST

START_TEST(cpu_count_respects_override)
{
    int n = mproc_cpu_count();
    ck_assert_int_ge(n, 1);
    setenv("MPROC_CPU_COUNT", "7", 1);
    ck_assert_int_eq(mproc_cpu_count(), 7);
    setenv("MPROC_CPU_COUNT", "-3", 1);
    ck_assert_int_eq(mproc_cpu_count(), n);
    setenv("MPROC_CPU_COUNT", "abc", 1);
    ck_assert_int_eq(mproc_cpu_count(), n);
    unsetenv("MPROC_CPU_COUNT");
}
END_TEST

/* The settings table (base/settings.h): each entry's name, an unset or
 * empty variable giving the default, read again at each call; a
 * child-protocol variable as set, even empty. */
START_TEST(settings_read_the_environment_at_each_call)
{
    for (int id = 0; id < MPROC__SET_COUNT; id++) ck_assert_ptr_nonnull(mproc__setting_name(id));
    ck_assert_str_eq(mproc__setting_name(MPROC__SET_MANAGER_LOCAL), "MPROC_MANAGER_LOCAL");
    ck_assert_str_eq(mproc__setting_name(MPROC__SET_SPAWN), MPROC__ENV_SPAWN);
    unsetenv("TMPDIR");
    ck_assert_str_eq(mproc__setting(MPROC__SET_TMPDIR), "/tmp");
    setenv("TMPDIR", "", 1);
    ck_assert_str_eq(mproc__setting(MPROC__SET_TMPDIR), "/tmp");
    setenv("TMPDIR", "/var/tmp", 1);
    ck_assert_str_eq(mproc__setting(MPROC__SET_TMPDIR), "/var/tmp");
    unsetenv("TMPDIR");
    unsetenv("MPROC_START_METHOD");
    ck_assert_ptr_null(mproc__setting(MPROC__SET_START_METHOD));
    setenv("MPROC_START_METHOD", "", 1);
    ck_assert_ptr_null(mproc__setting(MPROC__SET_START_METHOD));
    unsetenv("MPROC_START_METHOD");
    ck_assert_ptr_null(mproc__setting(MPROC__SET_PRELOAD_WAS));
    setenv(MPROC__ENV_PRELOAD_WAS, "", 1);
    ck_assert_str_eq(mproc__setting(MPROC__SET_PRELOAD_WAS), "");
    unsetenv(MPROC__ENV_PRELOAD_WAS);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(cgroup_quota_v2_and_v1)
{
    char root[] = "/tmp/mproc-cg-XXXXXX", path[256];
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(path, sizeof path, "%s/a", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/a/b", root);
    mkdir(path, 0700);
    /* No cpu.max anywhere: no quota. */
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "0::/a/b\n"), 0);
    snprintf(path, sizeof path, "%s/a/b/cpu.max", root);
    write_file(path, "max 100000\n");
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "0::/a/b\n"), 0);
    /* 1.5 CPUs rounds up to 2; a tighter parent wins. */
    write_file(path, "150000 100000\n");
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "0::/a/b\n"), 2);
    char parent[256];
    snprintf(parent, sizeof parent, "%s/a/cpu.max", root);
    write_file(parent, "50000 100000\n");
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "0::/a/b\n"), 1);
    unlink(parent);
    unlink(path);
    /* cgroup v1. */
    snprintf(path, sizeof path, "%s/cpu", root);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/cpu/cpu.cfs_quota_us", root);
    write_file(path, "300000\n");
    snprintf(parent, sizeof parent, "%s/cpu/cpu.cfs_period_us", root);
    write_file(parent, "100000\n");
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "4:cpu,cpuacct:/x\n"), 3);
    write_file(path, "-1\n");
    ck_assert_int_eq(mproc__cgroup_quota_at(root, "4:cpu,cpuacct:/x\n"), 0);
    unlink(path);
    unlink(parent);
    snprintf(path, sizeof path, "rm -rf %s", root);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

/* ---- the module registry ------------------------------------------------------ */

/* Four modules of this program, above every layer of the library: each
 * hook notes its module's letter in the log of its kind. Registered out of
 * rank order; Y and X share a rank, Y registered first. */
enum { HOOK_INIT, HOOK_BEFORE, HOOK_PARENT, HOOK_CHILD, HOOK_EXIT, NHOOKS };
static char hook_log[NHOOKS][16];
static int init_calls;          /* A's init in this process */
static pid_t child_hook_pid;    /* the process A's after_fork_child last ran in */
static int child_hook_runs;     /* and how often it ran there */
static int exit_report_fd = -1; /* A's at_exit writes the exit log here */

static void note(int kind, char c)
{
    size_t n = strlen(hook_log[kind]);
    if (n + 1 < sizeof hook_log[kind]) hook_log[kind][n] = c;
}

#define TEST_MODULE(L, rank_)                                                                      \
    static void L##_init(void)                                                                     \
    {                                                                                              \
        note(HOOK_INIT, #L[0]);                                                                    \
    }                                                                                              \
    static void L##_before(void)                                                                   \
    {                                                                                              \
        note(HOOK_BEFORE, #L[0]);                                                                  \
    }                                                                                              \
    static void L##_parent(void)                                                                   \
    {                                                                                              \
        note(HOOK_PARENT, #L[0]);                                                                  \
    }                                                                                              \
    static void L##_child(void)                                                                    \
    {                                                                                              \
        note(HOOK_CHILD, #L[0]);                                                                   \
    }                                                                                              \
    static void L##_exit(void)                                                                     \
    {                                                                                              \
        note(HOOK_EXIT, #L[0]);                                                                    \
    }                                                                                              \
    static mproc__module L##_module = {.name = "test." #L,                                         \
                                       .rank = (rank_),                                            \
                                       .init = L##_init,                                           \
                                       .before_fork = L##_before,                                  \
                                       .after_fork_parent = L##_parent,                            \
                                       .after_fork_child = L##_child,                              \
                                       .at_exit = L##_exit};

TEST_MODULE(Y, 1001)
TEST_MODULE(X, 1001)
TEST_MODULE(C, 1002)

/* A, the lowest: it also counts, and starts a child's log afresh. */
static void A_init(void)
{
    init_calls++;
    note(HOOK_INIT, 'A');
}
static void A_before(void)
{
    note(HOOK_BEFORE, 'A');
}
static void A_parent(void)
{
    note(HOOK_PARENT, 'A');
}
static void A_child(void)
{
    if (child_hook_pid != getpid()) {
        child_hook_pid = getpid();
        child_hook_runs = 0;
        hook_log[HOOK_CHILD][0] = '\0';
    }
    child_hook_runs++;
    note(HOOK_CHILD, 'A');
}
static void A_exit(void)
{
    note(HOOK_EXIT, 'A'); /* the last of the four */
    if (exit_report_fd >= 0 &&
        write(exit_report_fd, hook_log[HOOK_EXIT], strlen(hook_log[HOOK_EXIT])) < 0) {
    }
}
static mproc__module A_module = {.name = "test.A",
                                 .rank = 1000,
                                 .init = A_init,
                                 .before_fork = A_before,
                                 .after_fork_parent = A_parent,
                                 .after_fork_child = A_child,
                                 .at_exit = A_exit};

__attribute__((constructor(101))) static void register_test_modules(void)
{
    mproc__module_register(&C_module);
    mproc__module_register(&Y_module);
    mproc__module_register(&A_module);
    mproc__module_register(&X_module);
    mproc__module_register(&A_module); /* a second time: no change */
}

static const mproc__module *find_module(const char *name)
{
    for (const mproc__module *m = mproc__modules(); m; m = m->next)
        if (strcmp(m->name, name) == 0) return m;
    return NULL;
}

/* The library's modules, bottom up; those that every program using
 * processes has are required (a static program links only the modules it
 * uses: the locks' is not in this one). */
static const struct {
    const char *name;
    bool required;
} library_modules[] = {
    {"platform.tid", true},       {"arena", true},        {"sync.tid_lock", false},
    {"conn.registry", true},      {"conn.authkey", true}, {"process.self", true},
    {"process.forkserver", true},
};

/* 0 when the registry is in rank order, holds the library's modules in
 * their order, all started, and ours; else which check failed. */
static int registry_check(void)
{
    int last_rank = -1;
    size_t next = 0;
    for (const mproc__module *m = mproc__modules(); m; m = m->next) {
        if (m->rank < last_rank) return 1;
        last_rank = m->rank;
        while (next < MPROC__COUNTOF(library_modules) &&
               strcmp(m->name, library_modules[next].name) != 0 && !library_modules[next].required)
            next++;
        if (next < MPROC__COUNTOF(library_modules) &&
            strcmp(m->name, library_modules[next].name) == 0) {
            if (!atomic_load(&m->started)) return 2;
            next++;
        }
    }
    while (next < MPROC__COUNTOF(library_modules) && !library_modules[next].required) next++;
    if (next != MPROC__COUNTOF(library_modules)) return 3;
    const mproc__module *a = find_module("test.A");
    if (!a || !atomic_load(&a->started) || !find_module("test.X")) return 4;
    return 0;
}

START_TEST(modules_start_and_fork_in_rank_order)
{
    mproc__init(); /* (tu_setup started the library already) */
    ck_assert_int_eq(init_calls, 1);
    ck_assert_str_eq(hook_log[HOOK_INIT], "AYXC");
    ck_assert_int_eq(registry_check(), 0);

    memset(hook_log[HOOK_BEFORE], 0, sizeof hook_log[HOOK_BEFORE]);
    memset(hook_log[HOOK_PARENT], 0, sizeof hook_log[HOOK_PARENT]);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int code = strcmp(hook_log[HOOK_CHILD], "AYXC") ? 1 : 0;
        if (child_hook_runs != 1 || child_hook_pid != getpid()) code |= 2;
        if (mproc__self_pid() != getpid()) code |= 4;
        if (strcmp(hook_log[HOOK_BEFORE], "CXYA")) code |= 8;
        _exit(code);
    }
    ck_assert_str_eq(hook_log[HOOK_BEFORE], "CXYA");
    ck_assert_str_eq(hook_log[HOOK_PARENT], "AYXC");
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}
END_TEST

/* In the child of a fork, the child hooks ran once: running them again by
 * hand (as after the forkserver's clone) does nothing. */
START_TEST(child_hooks_run_once_per_child)
{
    mproc__init();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        mproc__modules_after_fork_child();
        mproc__modules_after_fork_child();
        _exit(child_hook_runs == 1 && strcmp(hook_log[HOOK_CHILD], "AYXC") == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}
END_TEST

/* At exit(), the at_exit hooks from the top rank down. */
START_TEST(exit_hooks_run_in_reverse_rank_order)
{
    mproc__init();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        exit_report_fd = fds[1];
        hook_log[HOOK_EXIT][0] = '\0';
        exit(0);
    }
    close(fds[1]);
    char got[16] = "";
    ssize_t n = read(fds[0], got, sizeof got - 1);
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(got, "CXYA");
}
END_TEST

/* What a child of each start method saw of the hooks, as its exit code:
 * 100 when A's child hook last ran in this process, plus 10 per run of
 * it here, plus the number of inits; 200 for a wrong registry, 201 for a
 * wrong child log. */
static int report_hooks(void *arg)
{
    (void)arg;
    if (registry_check() != 0) return 200;
    if (child_hook_pid == getpid() && strcmp(hook_log[HOOK_CHILD], "AYXC") != 0) return 201;
    return (child_hook_pid == getpid() ? 100 : 0) + 10 * child_hook_runs + init_calls;
}

/* fork: the child hooks ran once in the child (init once, in the parent);
 * forkserver: once in the child cloned by the server (init once, in the
 * server's image); spawn: none, and init once in the new image. */
START_TEST(each_start_method_runs_the_hooks_once)
{
    int want = tu_methods[_i] == MPROC_START_SPAWN ? 1 : 111;
    ck_assert_int_eq(tu_run_child(report_hooks, NULL, 0, tu_methods[_i]), want);
}
END_TEST

/* mproc_check passes a non-negative rc through; on a negative one the
 * process prints the call and the message and exits with status 1 (a
 * forked child, its stderr read through a pipe). */
START_TEST(check_stops_at_the_first_error)
{
    ck_assert_int_eq(mproc_check(0, "x"), 0);
    ck_assert_int_eq(mproc_check(17, NULL), 17);
    ck_assert_int_eq(MPROC_CHECK(5), 5);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        printf("before\n");
        MPROC_CHECK(mproc_queue_new(NULL, NULL));
        _exit(9); /* not reached */
    }
    close(fds[1]);
    char buf[512] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    ck_assert_ptr_nonnull(strstr(buf, "test_base.c:"));
    ck_assert_ptr_nonnull(strstr(buf, "mproc_queue_new(NULL, NULL): "));
    ck_assert_ptr_nonnull(strstr(buf, "(MPROC_EINVAL)"));
}
END_TEST

/* MPROC_FREE frees objects of several types in one statement: what they
 * took from the arena is back, and the heap ones are freed (LSan, under
 * ASan, would report the value); NULLs are skipped. */
START_TEST(free_macro_frees_each_by_its_type)
{
    size_t before = tu_arena_allocated();
    mproc_queue *q;
    mproc_lock *l;
    mproc_sem *sem;
    mproc_event *e;
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_lock_new(&l));
    TU_OK(mproc_sem_new(&sem, 1));
    TU_OK(mproc_event_new(&e));
    mproc_value *v = mproc_value_str("x");
    mproc_pool *none = NULL;
    ck_assert_uint_gt(tu_arena_allocated(), before);
    if (v) MPROC_FREE(q, l, sem, e, v, none); /* one statement, also after an if */
    ck_assert_uint_eq(tu_arena_allocated(), before);
    MPROC_FREE(none);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base");
    TCase *tc = tu_tcase(s, "errors", 10);
    tcase_add_test(tc, error_table_names_every_code);
    tcase_add_test(tc, errno_values_map_one_to_one);
    tcase_add_test(tc, strerror_r_truncates_safely);
    tcase_add_test(tc, version_matches_header);
    tc = tu_tcase(s, "time", 10);
    tcase_add_test(tc, deadline_convention);
    tc = tu_tcase(s, "log", 10);
    tcase_add_test(tc, logger_hook_gets_level_name_and_message);
    tcase_add_test(tc, stderr_lines_look_like_python);
    tcase_add_test(tc, long_log_lines_are_cut_not_overflowed);
    tcase_add_test(tc, renaming_the_current_process_renames_its_log_lines);
    tcase_add_test(tc, log_lines_in_a_child_carry_its_name);
    tc = tu_tcase(s, "cpu", 10);
    tcase_add_test(tc, settings_read_the_environment_at_each_call);
    tcase_add_test(tc, cpu_count_respects_override);
    tcase_add_test(tc, check_stops_at_the_first_error);
    tcase_add_test(tc, free_macro_frees_each_by_its_type);
    tcase_add_test(tc, cgroup_quota_v2_and_v1);
    tc = tu_tcase(s, "modules", 30);
    tcase_add_test(tc, modules_start_and_fork_in_rank_order);
    tcase_add_test(tc, child_hooks_run_once_per_child);
    tcase_add_test(tc, exit_hooks_run_in_reverse_rank_order);
    tcase_add_loop_test(tc, each_start_method_runs_the_hooks_once, 0, TU_NMETHODS);
    return tu_run(s);
}

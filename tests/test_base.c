/* Base layer: error codes, deadlines, logging, version, cpu count. */
#include "base/base.h"
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
    tcase_add_test(tc, cpu_count_respects_override);
    tcase_add_test(tc, cgroup_quota_v2_and_v1);
    return tu_run(s);
}

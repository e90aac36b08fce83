/* tools/mproc-manager, the standalone manager server: started as a program,
 * it prints its address, serves the built-in types to a client with the
 * key, refuses a wrong key, stops on a client's shutdown and on SIGTERM
 * (removing its temporary socket), and reports usage errors. The path of
 * the program comes from CMake (MPROC_MANAGER_TOOL). */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#ifndef MPROC_MANAGER_TOOL
#error "MPROC_MANAGER_TOOL: the path of the mproc-manager program, set by tests/CMakeLists.txt"
#endif

/* A key with a NUL and a non-ASCII byte, and the same spelled in hex for
 * MPROC_AUTHKEY=hex:... */
static const char KEY[] = "secret key\x00\xff";
#define KEY_LEN (sizeof KEY - 1)
static const char KEY_HEX[] = "hex:736563726574206b657900ff";

typedef struct tool {
    pid_t pid;
    int out; /* its stdout */
} tool;

/* Starts the tool with argv (after the program name) and, if not NULL,
 * MPROC_AUTHKEY=env_key; stdout to a pipe, stderr to /dev/null. */
static tool tool_start(const char *const *args, const char *env_key)
{
    char *argv[16] = {(char *)MPROC_MANAGER_TOOL};
    int n = 1;
    while (args && args[n - 1] && n < 15) {
        argv[n] = (char *)args[n - 1];
        n++;
    }
    argv[n] = NULL;
    char keyvar[256] = "MPROC_AUTHKEY=";
    char *envp[] = {env_key ? strncat(keyvar, env_key, 200) : (char *)"MPROC_TEST=1", NULL};

    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(p[1], 1);
        if (devnull >= 0) dup2(devnull, 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(p[1]);
    return (tool){pid, p[0]};
}

/* One line of its stdout (without the newline), or false at EOF/timeout. */
static bool tool_line(tool *t, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = {.fd = t->out, .events = POLLIN};
        if (poll(&pf, 1, timeout_ms) <= 0) return false;
        if (read(t->out, buf + n, 1) != 1) return false;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = '\0';
    return true;
}

/* Its exit status (-signal if killed), or -1000 if it had to be killed at
 * the timeout. */
static int tool_wait(tool *t, int timeout_ms)
{
    int st;
    long long end = mproc_now_ns() + (long long)timeout_ms * 1000000;
    while (waitpid(t->pid, &st, WNOHANG) == 0) {
        if (mproc_now_ns() > end) {
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &st, 0);
            close(t->out);
            return -1000;
        }
        tu_sleep_ms(5);
    }
    close(t->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* Creates a dict, sets d['answer'] = [42, 'x'], reads it back. */
static void dict_roundtrip(mproc_manager *m)
{
    mproc_proxy *d;
    TU_OK(mproc_manager_create(m, "dict", NULL, &d));
    mproc_value *k = mproc_value_str("answer"), *v = mproc_value_list();
    mproc_value_list_append(v, mproc_value_int(42));
    mproc_value_list_append(v, mproc_value_str("x"));
    TU_OK(mproc_proxy_setitem(d, k, v));
    mproc_value *got = NULL;
    TU_OK(mproc_proxy_getitem(d, k, &got));
    ck_assert(mproc_value_equal(got, v));
    size_t n;
    TU_OK(mproc_proxy_len(d, &n));
    ck_assert_uint_eq(n, 1);
    mproc_value_free(got);
    mproc_value_free(v);
    mproc_value_free(k);
    mproc_proxy_free(d);
}

START_TEST(serves_on_tcp_and_stops_on_a_clients_shutdown)
{
    const char *args[] = {"--address", "127.0.0.1:0", "--idle-timeout", "20000", NULL};
    tool t = tool_start(args, KEY_HEX);
    char address[512];
    ck_assert_msg(tool_line(&t, address, sizeof address, 10000), "no address printed");
    ck_assert_msg(strncmp(address, "127.0.0.1:", 10) == 0 && strcmp(address, "127.0.0.1:0") != 0,
                  "address %s", address);

    /* a wrong key is refused, and the server goes on */
    mproc_manager *m;
    TU_RC(mproc_manager_connect(&m, address, "wrong", 5), MPROC_EAUTH);

    TU_OK(mproc_manager_connect(&m, address, KEY, KEY_LEN));
    dict_roundtrip(m);
    /* a second client sees the server too */
    mproc_manager *m2;
    TU_OK(mproc_manager_connect(&m2, address, KEY, KEY_LEN));
    dict_roundtrip(m2);
    mproc_manager_free(m2);

    TU_OK(mproc_manager_shutdown(m));
    mproc_manager_free(m);
    ck_assert_int_eq(tool_wait(&t, 10000), 0);
}
END_TEST

/* --max-message: a client learns the server's cap at connect; a call over
 * it fails with MPROC_EMSGSIZE, and the client goes on. */
START_TEST(max_message)
{
    const char *args[] = {"--address", "127.0.0.1:0", "--max-message", "4096", NULL};
    tool t = tool_start(args, KEY_HEX);
    char address[512];
    ck_assert_msg(tool_line(&t, address, sizeof address, 10000), "no address printed");
    mproc_manager *m;
    TU_OK(mproc_manager_connect(&m, address, KEY, KEY_LEN));
    mproc_proxy *l;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    static char big[8192];
    mproc_value *v = mproc_value_bytes(big, sizeof big);
    TU_RC(mproc_proxy_append(l, v), MPROC_EMSGSIZE);
    mproc_value_free(v);
    v = mproc_value_bytes(big, 2048);
    TU_OK(mproc_proxy_append(l, v));
    mproc_value_free(v);
    size_t n;
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, 1);
    mproc_proxy_free(l);
    TU_OK(mproc_manager_shutdown(m));
    mproc_manager_free(m);
    ck_assert_int_eq(tool_wait(&t, 10000), 0);
}
END_TEST

START_TEST(temporary_path_key_file_and_sigterm)
{
    char dir[] = "/tmp/mproc-tool-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char keyfile[sizeof dir + 8];
    snprintf(keyfile, sizeof keyfile, "%s/key", dir);
    FILE *f = fopen(keyfile, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(KEY, 1, KEY_LEN, f);
    fputs("\n", f); /* one trailing newline is not part of the key */
    fclose(f);

    /* the file wins over MPROC_AUTHKEY */
    const char *args[] = {"--authkey-file", keyfile, NULL};
    tool t = tool_start(args, "not the key");
    char address[512];
    ck_assert_msg(tool_line(&t, address, sizeof address, 10000), "no address printed");
    struct stat st;
    ck_assert_msg(address[0] == '/' && stat(address, &st) == 0 && S_ISSOCK(st.st_mode),
                  "address %s is not a socket path", address);

    mproc_manager *m;
    TU_RC(mproc_manager_connect(&m, address, "not the key", 11), MPROC_EAUTH);
    TU_OK(mproc_manager_connect(&m, address, KEY, KEY_LEN));
    dict_roundtrip(m);

    /* SIGTERM: a clean stop, the temporary socket and its directory gone;
     * this client's later calls fail */
    ck_assert_int_eq(kill(t.pid, SIGTERM), 0);
    ck_assert_int_eq(tool_wait(&t, 10000), 0);
    ck_assert_int_ne(stat(address, &st), 0);
    mproc_proxy *l;
    ck_assert_int_ne(mproc_manager_create(m, "list", NULL, &l), 0);
    mproc_manager_free(m);

    unlink(keyfile);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Runs the tool to its end (it must not serve) and returns its status. */
static int run_to_end(const char *const *args, const char *env_key)
{
    tool t = tool_start(args, env_key);
    return tool_wait(&t, 10000);
}

START_TEST(usage_and_errors)
{
    const char *none[] = {NULL};
    ck_assert_int_eq(run_to_end(none, NULL), 2); /* no authkey */
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(run_to_end(help, NULL), 0);
    const char *bad_opt[] = {"--no-such-option", NULL};
    ck_assert_int_eq(run_to_end(bad_opt, "k"), 2);
    const char *two[] = {"127.0.0.1:0", "127.0.0.1:0", NULL};
    ck_assert_int_eq(run_to_end(two, "k"), 2);
    const char *bad_num[] = {"--max-connections", "0", NULL};
    ck_assert_int_eq(run_to_end(bad_num, "k"), 2);
    ck_assert_int_eq(run_to_end(none, "hex:123"), 2); /* odd number of digits */
    ck_assert_int_eq(run_to_end(none, "hex:zz"), 2);
    ck_assert_int_eq(run_to_end(none, ""), 2);
    const char *no_file[] = {"--authkey-file", "/nonexistent/mproc-key", NULL};
    ck_assert_int_eq(run_to_end(no_file, NULL), 1);
    const char *no_dir[] = {"/nonexistent/dir/sock", NULL};
    ck_assert_int_eq(run_to_end(no_dir, "k"), 1); /* cannot listen */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tool_manager");
    TCase *tc = tu_tcase(s, "mproc-manager", 60);
    tcase_add_test(tc, serves_on_tcp_and_stops_on_a_clients_shutdown);
    tcase_add_test(tc, temporary_path_key_file_and_sigterm);
    tcase_add_test(tc, max_message);
    tcase_add_test(tc, usage_and_errors);
    return tu_run(s);
}

/* mproc as a shared library the program links normally (DT_NEEDED): the
 * spawn and forkserver images load it by themselves, so their environment
 * is the parent's, with no LD_PRELOAD added (which also breaks sanitizer
 * builds: "ASan runtime does not come first"). Checked both as the child's
 * program sees it (getenv) and as the new image was started with it
 * (/proc/self/environ), with LD_PRELOAD unset and set in the parent. */
#include "testutil.h"

#include <fcntl.h>

typedef struct want {
    bool unset;         /* the parent has no LD_PRELOAD */
    bool check_initial; /* a new image (spawn, forkserver): its initial environment */
    char value[64];
} want;

/* The value of NAME in the environment the image started with, or NULL. */
static const char *initial_env(const char *name, char *buf, size_t cap)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, name, nl) == 0 && buf[i + nl] == '=') return buf + i + nl + 1;
    return NULL;
}

/* Exit codes: 0 as wanted; 10/11 getenv differs; 12/13 the initial
 * environment differs; 14 mproc's own variable leaked. */
static int check_env(void *arg)
{
    const want *w = arg;
    const char *v = getenv("LD_PRELOAD");
    if (w->unset ? v != NULL : v == NULL) return 10;
    if (v && strcmp(v, w->value) != 0) return 11;
    if (getenv("MPROC_PRELOAD_WAS")) return 14;
    if (!w->check_initial) return 0;
    static char buf[1 << 16];
    v = initial_env("LD_PRELOAD", buf, sizeof buf);
    if (w->unset ? v != NULL : v == NULL) {
        if (v) fprintf(stderr, "child: started with LD_PRELOAD=%s\n", v);
        return 12;
    }
    if (v && strcmp(v, w->value) != 0) {
        fprintf(stderr, "child: started with LD_PRELOAD=%s, the parent has \"%s\"\n", v, w->value);
        return 13;
    }
    if (initial_env("MPROC_PRELOAD_WAS", buf, sizeof buf)) return 14;
    return 0;
}

static void run_all_methods(const want *base)
{
    for (int i = 0; i < TU_NMETHODS; i++) {
        want w = *base;
        w.check_initial = tu_methods[i] != MPROC_START_FORK;
        /* The forkserver is a new image too: started again, it gets the
         * parent's environment as it is now. */
        if (tu_methods[i] == MPROC_START_FORKSERVER) mproc_forkserver_stop();
        int code = tu_run_child(check_env, &w, sizeof w, tu_methods[i]);
        ck_assert_msg(code == 0, "%s child: exit code %d", mproc_start_method_name(tu_methods[i]),
                      code);
    }
}

START_TEST(no_preload_added_when_the_parent_has_none)
{
    unsetenv("LD_PRELOAD");
    run_all_methods(&(want){.unset = true});
}
END_TEST

START_TEST(the_parents_preload_is_kept_as_it_is)
{
    /* An empty value: harmless in every build, and not what a preload of
     * libmproc.so in front of it would leave. */
    setenv("LD_PRELOAD", "", 1);
    run_all_methods(&(want){.value = ""});
    unsetenv("LD_PRELOAD");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shared_env");
    TCase *tc = tu_tcase(s, "environment", 60);
    tcase_add_test(tc, no_preload_added_when_the_parent_has_none);
    tcase_add_test(tc, the_parents_preload_is_kept_as_it_is);
    return tu_run(s);
}

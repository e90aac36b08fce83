/* Embedding runtimes (mproc_embed_set_argv, mproc_embed_child_main): the
 * new images of spawn and forkserver run the program's main with the argv
 * given, the arena already mapped, and the child runs only when main calls
 * mproc_embed_child_main. Here main plays the runtime: it marks that its
 * own start-up ran, then hands over. */
#include "testutil.h"

#include <pthread.h>

static int runtime_started;           /* set by main's runtime mode, before the hand-over */
static int runtime_server;            /* mproc_embed_child_is_server() there */
static int forks_before, forks_after; /* the fork hooks' calls, in a forkserver */

static void before_fork(void)
{
    forks_before++;
}

static void after_fork_parent(void)
{
    forks_after++;
}

typedef struct embed_arg {
    int code;
    int forkserver;
    int *shared; /* in the arena */
} embed_arg;

/* The child's target: 7 if the runtime's start-up ran before it and the
 * arena is the family's; 55 if the runtime did not run. */
static int target(void *arg)
{
    embed_arg *a = arg;
    if (!runtime_started) return 55;
    /* In a forkserver's child: the hook ran before this fork, the parent's
     * side only after it, in the server. */
    if (a->forkserver && forks_before != forks_after + 1) return 56;
    /* The image knew whether it would serve or run this child. */
    if (runtime_server != a->forkserver) return 57;
    *a->shared = 42;
    return a->code;
}

static const char *const embed_argv[] = {"test_embed", "--embed", NULL};

static int run_one(mproc_start_method m, int **shared)
{
    int *s;
    TU_OK(mproc_arena_alloc((void **)&s, sizeof *s));
    *s = 0;
    embed_arg a = {7, m == MPROC_START_FORKSERVER, s};
    int code = tu_run_child(target, &a, sizeof a, m);
    *shared = s;
    return code;
}

START_TEST(child_runs_after_the_runtime)
{
    mproc_start_method m = _i ? MPROC_START_FORKSERVER : MPROC_START_SPAWN;
    TU_OK(mproc_embed_set_argv(embed_argv));
    TU_OK(mproc_forkserver_stop()); /* the fixture's server has the old argv */
    ck_assert(!mproc_embed_child_pending());
    ck_assert(!mproc_embed_child_is_server());
    TU_RC(mproc_embed_child_main(), MPROC_EBADSTATE);
    for (int round = 0; round < 2; round++) {
        int *s;
        ck_assert_int_eq(run_one(m, &s), 7);
        ck_assert_int_eq(*s, 42);
        ck_assert(mproc_arena_free(s) == 0);
    }
    /* Back to the default: the child runs before any main. */
    TU_OK(mproc_embed_set_argv(NULL));
    if (m == MPROC_START_FORKSERVER) TU_OK(mproc_forkserver_stop());
    int *s;
    ck_assert_int_eq(run_one(m, &s), 55);
    ck_assert(mproc_arena_free(s) == 0);
}
END_TEST

START_TEST(fork_ignores_the_argv)
{
    TU_OK(mproc_embed_set_argv(embed_argv));
    int *s;
    ck_assert_int_eq(run_one(MPROC_START_FORK, &s), 55);
    ck_assert(mproc_arena_free(s) == 0);
    TU_OK(mproc_embed_set_argv(NULL));
}
END_TEST

START_TEST(runtime_that_never_hands_over_fails_the_start)
{
    static const char *const early[] = {"test_embed", "--embed", "--exit-early", NULL};
    TU_OK(mproc_embed_set_argv(early));
    TU_OK(mproc_forkserver_stop()); /* the fixture's server has the old argv */
    int *s;
    TU_OK(mproc_arena_alloc((void **)&s, sizeof *s));
    embed_arg a = {7, 0, s};
    mproc_process *p;
    TU_OK(mproc_process_new(&p, target, &a, sizeof a,
                            &(mproc_process_opts){.start_method = MPROC_START_SPAWN}));
    TU_RC(mproc_process_start(p), MPROC_ECHILDSTART);
    TU_OK(mproc_process_free(p));
    TU_RC(mproc_forkserver_ensure_running(), MPROC_ECHILDSTART);
    ck_assert(mproc_arena_free(s) == 0);
    TU_OK(mproc_embed_set_argv(NULL));
}
END_TEST

START_TEST(bad_argv)
{
    static const char *const empty[] = {NULL};
    TU_RC(mproc_embed_set_argv(empty), MPROC_EINVAL);
    TU_OK(mproc_embed_set_argv(NULL));
    TU_OK(mproc_embed_set_argv(NULL));
}
END_TEST

/* ---- the fork start method's hooks ---- */

static int start_before, start_after; /* their calls */
static pthread_t start_thread;        /* where the last before hook ran */

static void start_hook_before(void)
{
    start_before++;
    start_thread = pthread_self();
}

static void start_hook_after(void)
{
    start_after++;
}

/* In the fork child: the before hook ran (in the parent, copied), the
 * after hook not. */
static int hooks_target(void *arg)
{
    (void)arg;
    return start_before == 1 && start_after == 0 ? 8 : 57;
}

static void *start_in_thread(void *arg)
{
    *(int *)arg = tu_run_child(hooks_target, NULL, 0, MPROC_START_FORK);
    return NULL;
}

START_TEST(fork_start_hooks_run_around_the_fork)
{
    TU_OK(mproc_embed_set_fork_start_hooks(start_hook_before, start_hook_after));
    int code = 0;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, start_in_thread, &code), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(code, 8);
    ck_assert_int_eq(start_before, 1);
    ck_assert_int_eq(start_after, 1);
    ck_assert(pthread_equal(start_thread, t)); /* in the thread that started the child */
    /* spawn does not fork this process: no calls */
    ck_assert_int_eq(tu_run_child(hooks_target, NULL, 0, MPROC_START_SPAWN), 57);
    ck_assert_int_eq(start_before, 1);
    TU_OK(mproc_embed_set_fork_start_hooks(NULL, NULL));
    start_before = start_after = 0;
    ck_assert_int_eq(tu_run_child(hooks_target, NULL, 0, MPROC_START_FORK), 57);
    ck_assert_int_eq(start_before + start_after, 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--embed") == 0) {
        runtime_started = 1;
        if (argc > 2 && strcmp(argv[2], "--exit-early") == 0) return 3;
        if (!mproc_embed_child_pending()) return 90;
        runtime_server = mproc_embed_child_is_server();
        mproc_embed_set_fork_hooks(before_fork, after_fork_parent);
        mproc_embed_child_main();
        return 91; /* not reached */
    }
    Suite *s = suite_create("embed");
    TCase *tc = tu_tcase(s, "embed", 60);
    tcase_add_loop_test(tc, child_runs_after_the_runtime, 0, 2);
    tcase_add_test(tc, fork_ignores_the_argv);
    tcase_add_test(tc, runtime_that_never_hands_over_fails_the_start);
    tcase_add_test(tc, bad_argv);
    tcase_add_test(tc, fork_start_hooks_run_around_the_fork);
    return tu_run(s);
}

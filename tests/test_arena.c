/* The family arena: address, size classes, allocation from many processes
 * and threads, death mid-allocation, pages given back, overrides. */
#include "arena/arena.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

extern char **environ;

START_TEST(size_classes_fit_tightly)
{
    for (size_t n = 0; n < (1 << 20); n += (n < 4096 ? 1 : 97)) {
        unsigned c = mproc__arena_class_of(n);
        ck_assert_uint_ge(mproc__arena_class_size(c), n + 16);
        if (c > 0) ck_assert_uint_lt(mproc__arena_class_size(c - 1), n + 16);
        ck_assert_uint_eq(mproc__arena_class_size(c) % 16, 0);
    }
}
END_TEST

START_TEST(alloc_free_basics)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    ck_assert(info.base == 0x110000000000ULL || info.base == 0x5000000000ULL);
    ck_assert_uint_eq(info.size, (size_t)16 << 30);
    size_t before = info.allocated;
    void *p[64];
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)i * 37;
        TU_OK(mproc_arena_alloc(&p[i], n));
        ck_assert_uint_eq((uintptr_t)p[i] % 16, 0);
        ck_assert(mproc_arena_contains(p[i]));
        ck_assert_uint_ge(mproc_arena_usable_size(p[i]), n);
        memset(p[i], i, n);
    }
    for (int i = 0; i < 64; i++) {
        for (size_t k = 0; k < (size_t)i * 37; k++) ck_assert_int_eq(((unsigned char *)p[i])[k], i);
        TU_OK(mproc_arena_free(p[i]));
    }
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
    /* A freed block comes back for the same class, zeroed by calloc. */
    void *a, *b;
    TU_OK(mproc_arena_alloc(&a, 100));
    memset(a, 0xab, 100);
    TU_OK(mproc_arena_free(a));
    TU_OK(mproc_arena_calloc(&b, 100));
    ck_assert_ptr_eq(a, b);
    for (int k = 0; k < 100; k++) ck_assert_int_eq(((unsigned char *)b)[k], 0);
    TU_OK(mproc_arena_free(b));
}
END_TEST

START_TEST(aligned_allocations)
{
    for (size_t align = 1; align <= 4096; align *= 2) {
        void *p;
        TU_OK(mproc_arena_alloc_aligned(&p, 100, align));
        ck_assert_uint_eq((uintptr_t)p % align, 0);
        ck_assert_uint_ge(mproc_arena_usable_size(p), 100);
        memset(p, 1, 100);
        TU_OK(mproc_arena_free(p));
        TU_RC(mproc_arena_free(p), MPROC_EINVAL);
    }
    void *p;
    TU_RC(mproc_arena_alloc_aligned(&p, 8, 3), MPROC_EINVAL);
    TU_RC(mproc_arena_alloc_aligned(&p, 8, 8192), MPROC_EINVAL);
    TU_RC(mproc_arena_alloc_aligned(&p, 8, 0), MPROC_EINVAL);
}
END_TEST

START_TEST(bad_frees_are_errors)
{
    int local;
    void *heap = malloc(32);
    TU_RC(mproc_arena_free(&local), MPROC_EINVAL);
    TU_RC(mproc_arena_free(heap), MPROC_EINVAL);
    free(heap);
    TU_OK(mproc_arena_free(NULL));
    void *p;
    TU_OK(mproc_arena_alloc(&p, 64));
    TU_RC(mproc_arena_free((char *)p + 16), MPROC_EINVAL); /* inside a block */
    TU_OK(mproc_arena_free(p));
    TU_RC(mproc_arena_free(p), MPROC_EINVAL); /* double free */
    ck_assert_uint_eq(mproc_arena_usable_size(p), 0);
    TU_RC(mproc_arena_alloc(NULL, 8), MPROC_EINVAL);
    TU_RC(mproc_arena_alloc(&p, SIZE_MAX / 2), MPROC_ENOMEM);
    TU_RC(mproc_arena_info_get(NULL), MPROC_EINVAL);
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    TU_OK(mproc_arena_init(NULL));
    TU_RC(mproc_arena_init(&(mproc_arena_opts){.addr = info.base + 4096}), MPROC_EBUSY);
    TU_OK(mproc_arena_init(&(mproc_arena_opts){.addr = info.base, .size = info.size}));
}
END_TEST

/* A linked structure built by the parent, walked and extended by a child. */
typedef struct node {
    struct node *next;
    int value;
} node;

static int walk_and_extend(void *arg)
{
    node *head = *(node **)arg;
    int sum = 0, n = 0;
    node *last = NULL;
    for (node *x = head; x; x = x->next, n++) {
        sum += x->value;
        last = x;
    }
    if (n != 10 || sum != 45) return 1;
    node *extra;
    if (mproc_arena_alloc((void **)&extra, sizeof *extra)) return 2;
    extra->value = 100;
    extra->next = NULL;
    last->next = extra;
    return 0;
}

START_TEST(pointers_are_valid_in_children)
{
    node *head = NULL;
    for (int i = 9; i >= 0; i--) {
        node *x;
        TU_OK(mproc_arena_alloc((void **)&x, sizeof *x));
        x->value = i;
        x->next = head;
        head = x;
    }
    ck_assert_int_eq(tu_run_child(walk_and_extend, &head, sizeof head, tu_methods[_i]), 0);
    node *x = head;
    int n = 0;
    while (x->next) x = x->next, n++;
    ck_assert_int_eq(n, 10);
    ck_assert_int_eq(x->value, 100); /* the child's block, allocated in the child */
    while (head) {
        node *next = head->next;
        TU_OK(mproc_arena_free(head));
        head = next;
    }
}
END_TEST

/* Allocates, fills with an owner stamp, checks and frees, many times. A
 * block handed to two owners at once shows up as a wrong stamp. */
static int churn(unsigned seed, int rounds)
{
    enum { K = 64 };
    void *held[K] = {0};
    size_t sz[K] = {0};
    for (int r = 0; r < rounds; r++) {
        int k = (int)(rand_r(&seed) % K);
        if (held[k]) {
            for (size_t i = 0; i < sz[k]; i++)
                if (((unsigned char *)held[k])[i] != (unsigned char)(k * 7)) return 1;
            if (mproc_arena_free(held[k])) return 2;
            held[k] = NULL;
        } else {
            sz[k] = rand_r(&seed) % 3000;
            if (mproc_arena_alloc(&held[k], sz[k])) return 3;
            memset(held[k], k * 7, sz[k]);
        }
    }
    for (int k = 0; k < K; k++)
        if (held[k] && mproc_arena_free(held[k])) return 4;
    return 0;
}

/* Each process stamps its blocks with its own byte: blocks shared between
 * two processes at once are caught by the checks. */
static int stamped_churn(void *arg)
{
    unsigned me = *(unsigned *)arg;
    enum { K = 32 };
    unsigned char *held[K] = {0};
    size_t sz[K];
    unsigned seed = me;
    for (int r = 0; r < 30000; r++) {
        int k = (int)(rand_r(&seed) % K);
        if (held[k]) {
            for (size_t i = 0; i < sz[k]; i++)
                if (held[k][i] != (unsigned char)me) return 1;
            if (mproc_arena_free(held[k])) return 2;
            held[k] = NULL;
        } else {
            sz[k] = 1 + rand_r(&seed) % 600;
            if (mproc_arena_alloc((void **)&held[k], sz[k])) return 3;
            memset(held[k], (int)me, sz[k]);
        }
    }
    for (int k = 0; k < K; k++)
        if (held[k]) mproc_arena_free(held[k]);
    return 0;
}

START_TEST(many_processes_allocate_at_once)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    size_t before = info.allocated;
    enum { N = 4 };
    mproc_process *p[N];
    unsigned ids[N];
    for (int k = 0; k < N; k++) {
        ids[k] = (unsigned)k + 1;
        TU_OK(mproc_process_new(&p[k], stamped_churn, &ids[k], sizeof ids[k], TU_OPTS));
        TU_OK(mproc_process_start(p[k]));
    }
    for (int k = 0; k < N; k++) {
        TU_OK(mproc_process_join(p[k], 60000));
        int code;
        TU_OK(mproc_process_exitcode(p[k], &code));
        ck_assert_msg(code == 0, "process %d failed with %d", k, code);
        TU_OK(mproc_process_free(p[k]));
    }
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
}
END_TEST

static void *thread_churn(void *arg)
{
    return (void *)(intptr_t)churn((unsigned)(uintptr_t)arg, 40000);
}

START_TEST(many_threads_allocate_at_once)
{
    pthread_t t[4];
    for (uintptr_t k = 0; k < 4; k++) pthread_create(&t[k], NULL, thread_churn, (void *)(k + 11));
    for (int k = 0; k < 4; k++) {
        void *r;
        pthread_join(t[k], &r);
        ck_assert_int_eq((int)(intptr_t)r, 0);
    }
}
END_TEST

static void *alloc_free_some(void *arg)
{
    (void)arg;
    void *p[40];
    for (int i = 0; i < 40; i++)
        if (mproc_arena_alloc(&p[i], 24)) return (void *)1;
    for (int i = 0; i < 40; i++) mproc_arena_free(p[i]); /* into this thread's cache */
    return NULL;
}

/* Small blocks in bulk: the thread cache refills from and spills to the
 * shared stacks many times; every block must come back intact and
 * distinct. */
START_TEST(small_blocks_in_bulk_stay_distinct)
{
    enum { N = 3000 };
    static unsigned char *p[N];
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    size_t before = info.allocated;
    for (int round = 0; round < 20; round++) {
        size_t sz = 8 + (size_t)(round % 5) * 24; /* a few small classes */
        for (int i = 0; i < N; i++) {
            TU_OK(mproc_arena_alloc((void **)&p[i], sz));
            memset(p[i], (i + round) & 0xff, sz);
        }
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < sz; k++)
                ck_assert_msg(p[i][k] == ((i + round) & 0xff), "block %d of round %d reused", i,
                              round);
            if (i % 2 == 0) TU_OK(mproc_arena_free(p[i])); /* evens first, then odds */
        }
        for (int i = 1; i < N; i += 2) TU_OK(mproc_arena_free(p[i]));
    }
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
}
END_TEST

START_TEST(a_thread_cache_is_flushed_when_the_thread_ends)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    size_t before = info.allocated;
    pthread_t t;
    pthread_create(&t, NULL, alloc_free_some, NULL);
    void *r;
    pthread_join(t, &r);
    ck_assert_ptr_null(r);
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
}
END_TEST

/* A process the program forked itself (not an mproc child) that exits with
 * exit(): its main thread's cache goes back to the arena too. */
START_TEST(a_plain_fork_child_flushes_its_cache_at_exit)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    size_t before = info.allocated;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) exit(alloc_free_some(NULL) ? 1 : 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
}
END_TEST

typedef struct {
    void *got[8];
} child_blocks;

static int alloc_in_child(void *arg)
{
    child_blocks *cb = *(child_blocks **)arg;
    for (int i = 0; i < 8; i++)
        if (mproc_arena_alloc(&cb->got[i], 24)) return 1;
    return 0; /* kept allocated: the parent frees them */
}

START_TEST(a_fork_child_does_not_reuse_its_parents_cache)
{
    child_blocks *cb;
    TU_OK(mproc_arena_calloc((void **)&cb, sizeof *cb));
    void *mine[8];
    for (int i = 0; i < 8; i++) TU_OK(mproc_arena_alloc(&mine[i], 24));
    for (int i = 0; i < 8; i++) TU_OK(mproc_arena_free(mine[i])); /* cached in this thread */
    ck_assert_int_eq(tu_run_child(alloc_in_child, &cb, sizeof cb, tu_methods[_i]), 0);
    void *again[8];
    for (int i = 0; i < 8; i++) TU_OK(mproc_arena_alloc(&again[i], 24)); /* from the cache */
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 8; k++) ck_assert_ptr_ne(cb->got[i], again[k]);
    for (int i = 0; i < 8; i++) {
        TU_OK(mproc_arena_free(again[i]));
        TU_OK(mproc_arena_free(cb->got[i]));
    }
    TU_OK(mproc_arena_free(cb));
}
END_TEST

static int churn_forever(void *arg)
{
    for (unsigned s = *(unsigned *)arg;; s++) churn(s, 1000);
    return 0;
}

START_TEST(sigkill_mid_allocation_keeps_the_arena_sound)
{
    unsigned seed = 99;
    for (int round = 0; round < 40; round++) {
        mproc_process *p[2];
        for (int k = 0; k < 2; k++) {
            unsigned s = (unsigned)(round * 2 + k);
            TU_OK(mproc_process_new(&p[k], churn_forever, &s, sizeof s, TU_OPTS));
            TU_OK(mproc_process_start(p[k]));
        }
        tu_sleep_ms(1 + rand_r(&seed) % 15);
        for (int k = 0; k < 2; k++) {
            TU_OK(mproc_process_kill(p[k]));
            TU_OK(mproc_process_join(p[k], 10000));
            TU_OK(mproc_process_free(p[k]));
        }
        /* The survivors see a consistent allocator: distinct blocks. */
        ck_assert_int_eq(churn((unsigned)round, 5000), 0);
    }
    enum { M = 2000 };
    static unsigned char *blocks[M];
    for (int i = 0; i < M; i++) {
        TU_OK(mproc_arena_alloc((void **)&blocks[i], 48));
        memset(blocks[i], i & 0xff, 48);
    }
    for (int i = 0; i < M; i++) {
        for (int k = 0; k < 48; k++) ck_assert_int_eq(blocks[i][k], i & 0xff);
        TU_OK(mproc_arena_free(blocks[i]));
    }
}
END_TEST

static long long memfd_bytes(void)
{
    struct stat st;
    ck_assert_int_eq(fstat(mproc__arena_fd(), &st), 0);
    return (long long)st.st_blocks * 512;
}

START_TEST(large_blocks_give_their_pages_back)
{
    size_t n = (size_t)64 << 20;
    void *p;
    long long before = memfd_bytes();
    TU_OK(mproc_arena_alloc(&p, n));
    memset(p, 1, n);
    ck_assert(memfd_bytes() >= before + (long long)n);
    TU_OK(mproc_arena_free(p));
    ck_assert(memfd_bytes() < before + (1 << 20));
    /* The same block again reads as zero where pages were given back. */
    TU_OK(mproc_arena_alloc(&p, n));
    ck_assert_int_eq(((unsigned char *)p)[n / 2], 0);
    TU_OK(mproc_arena_free(p));
}
END_TEST

/* ---- overrides, checked in a fresh process (the arena is made once) ---- */

static int probe_main(const char *mode)
{
    if (strcmp(mode, "taken") == 0) { /* both candidates already in use */
        mmap((void *)0x110000000000ULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
             -1, 0);
        mmap((void *)0x5000000000ULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0);
    } else if (strcmp(mode, "first-taken") == 0) {
        mmap((void *)0x110000000000ULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
             -1, 0);
    }
    int rc = mproc_arena_init(NULL);
    mproc_arena_info info = {0};
    if (rc == 0) rc = mproc_arena_info_get(&info);
    printf("%s %#lx %zu\n", mproc_err_name(rc), (unsigned long)info.base, info.size);
    if (rc == 0 && strcmp(mode, "fill") == 0) { /* allocate until full, free, again */
        void *p[64];
        int k = 0;
        while (k < 64 && mproc_arena_alloc(&p[k], 100000) == 0) k++;
        void *q;
        int full = mproc_arena_alloc(&q, 100000);
        for (int i = 0; i < k; i++) mproc_arena_free(p[i]);
        int again = mproc_arena_alloc(&q, 100000);
        printf("filled %d %s %s\n", k, mproc_err_name(full), mproc_err_name(again));
    }
    fflush(stdout);
    return 0;
}

/* Runs this test program as an arena probe with extra environment, and
 * returns its first output line. */
static void probe(const char *mode, const char *env1, const char *env2, char *out, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {"test_arena", "--arena-probe", (char *)mode, NULL};
    char *envp[] = {(char *)env1, (char *)env2, NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    ssize_t n = read(fds[0], out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
}

START_TEST(environment_overrides_and_errors)
{
    char out[256];
    probe("plain", "MPROC_ARENA_SIZE=64M", NULL, out, sizeof out);
    ck_assert_str_eq(out, "MPROC_OK 0x110000000000 67108864\n");
    probe("plain", "MPROC_ARENA_ADDR=0x120000000000", "MPROC_ARENA_SIZE=1G", out, sizeof out);
    ck_assert_str_eq(out, "MPROC_OK 0x120000000000 1073741824\n");
    probe("first-taken", NULL, NULL, out, sizeof out);
#ifdef __SANITIZE_ADDRESS__ /* the second candidate (for TSan) is in ASan's shadow gap */
    ck_assert_str_eq(out, "MPROC_EADDRINUSE 0 0\n");
#else
    ck_assert_str_eq(out, "MPROC_OK 0x5000000000 17179869184\n");
#endif
    probe("taken", NULL, NULL, out, sizeof out);
    ck_assert_str_eq(out, "MPROC_EADDRINUSE 0 0\n");
    probe("plain", "MPROC_ARENA_SIZE=lots", NULL, out, sizeof out);
    ck_assert_str_eq(out, "MPROC_EINVAL 0 0\n");
    probe("plain", "MPROC_ARENA_ADDR=0x123", NULL, out, sizeof out);
    ck_assert_str_eq(out, "MPROC_EINVAL 0 0\n");
    /* 1 MiB less the header page holds 9 blocks of the 112 KiB class. */
    probe("fill", "MPROC_ARENA_SIZE=1M", NULL, out, sizeof out);
    ck_assert_str_eq(out, "MPROC_OK 0x110000000000 1048576\nfilled 9 MPROC_ENOMEM MPROC_OK\n");
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--arena-probe") == 0) return probe_main(argv[2]);
    Suite *s = suite_create("arena");
    TCase *tc = tu_tcase(s, "alloc", 30);
    tcase_add_test(tc, size_classes_fit_tightly);
    tcase_add_test(tc, alloc_free_basics);
    tcase_add_test(tc, aligned_allocations);
    tcase_add_test(tc, small_blocks_in_bulk_stay_distinct);
    tcase_add_test(tc, bad_frees_are_errors);
    tcase_add_test(tc, large_blocks_give_their_pages_back);
    tcase_add_test(tc, environment_overrides_and_errors);
    tc = tu_tcase(s, "family", 120);
    tcase_add_loop_test(tc, pointers_are_valid_in_children, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, many_processes_allocate_at_once, 0, TU_NMETHODS);
    tcase_add_test(tc, many_threads_allocate_at_once);
    tcase_add_test(tc, a_thread_cache_is_flushed_when_the_thread_ends);
    tcase_add_test(tc, a_plain_fork_child_flushes_its_cache_at_exit);
    tcase_add_loop_test(tc, a_fork_child_does_not_reuse_its_parents_cache, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, sigkill_mid_allocation_keeps_the_arena_sound, 0, TU_NMETHODS);
    return tu_run(s);
}

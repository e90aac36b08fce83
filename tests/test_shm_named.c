/* Named shared memory and ShareableList: create/attach across processes,
 * names and errors, the tracker's table, crash cleanup of whole families,
 * and the list's layout, round trips and validation.
 *
 * Every name a test makes starts with "mproct<runner pid>_", so a fixture
 * can check after each test, and main() after the suite, that nothing is
 * left in /dev/shm.
 *
 * Families: Check forks every test from the runner, and the runner never
 * touches mproc, so each test process creates its own arena and is the
 * root of its own family (its tracker runs once that test's process and its
 * children are gone). The crash-cleanup tests need a family that ends while
 * the test goes on watching: they fork+exec this very program with
 * HELPER_ARG as argv[1]; main() recognises it before Check starts and runs
 * helper_main, a fresh process (exec dropped the test's arena memfd) that
 * makes its own family, reports over a pipe and then exits or waits to be
 * SIGKILLed. */
#include "shm/tracker.h"
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define HELPER_ARG "--shm-crash-helper"

static char pfx[32]; /* "mproct<pid>_" */

static void mkname(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s%s", pfx, tag);
}

static bool shm_exists(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "/dev/shm/%.300s", name[0] == '/' ? name + 1 : name);
    return access(p, F_OK) == 0;
}

/* Entries in /dev/shm with our prefix; unlinks them when `remove`. */
static int prefixed_entries(bool remove)
{
    int n = 0;
    DIR *d = opendir("/dev/shm");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, pfx, strlen(pfx)) != 0) continue;
        n++;
        if (remove) {
            char p[512];
            snprintf(p, sizeof p, "/%s", e->d_name);
            fprintf(stderr, "leftover /dev/shm/%s\n", e->d_name);
            shm_unlink(p);
        }
    }
    closedir(d);
    return n;
}

static void shm_teardown(void)
{
    int n = prefixed_entries(false);
    ck_assert_msg(n == 0, "%d /dev/shm entries with prefix %s left behind", n, pfx);
}

static TCase *sh_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tu_tcase(s, name, timeout);
    tcase_add_checked_fixture(tc, NULL, shm_teardown);
    return tc;
}

/* Waits up to ms for the name to exist (want true) or be gone. */
static bool wait_exists(const char *name, bool want, long ms)
{
    long long end = mproc_now_ns() + ms * 1000000LL;
    for (;;) {
        if (shm_exists(name) == want) return true;
        if (mproc_now_ns() > end) return false;
        tu_sleep_ms(20);
    }
}

static unsigned tracked_active(void)
{
    unsigned a = 0;
    mproc__shm_tracker_stats(&a, NULL);
    return a;
}

static void fill_check(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) ck_abort_msg("byte %zu is %u, want %u", i, p[i], v);
}

/* ---- create / attach across processes ------------------------------------ */

typedef struct seg_arg {
    char name[128];
    size_t size;
    int mode; /* 0: check 0x11, write 0x22, close; 1: attach and exit, no close;
               * 2: attach and unlink */
} seg_arg;

static int seg_child(void *arg)
{
    const seg_arg *a = arg;
    mproc_shm *m;
    if (mproc_shm_attach(&m, a->name) != 0) return 10;
    if (mproc_shm_size(m) != a->size) return 11;
    if (strcmp(mproc_shm_name(m), a->name[0] == '/' ? a->name + 1 : a->name) != 0) return 12;
    unsigned char *b = mproc_shm_buf(m);
    if (a->mode == 1) return b[0] == 0x11 ? 0 : 13;
    if (a->mode == 2) {
        int rc = mproc_shm_unlink(m);
        mproc_shm_close(m);
        return rc == 0 ? 0 : 14;
    }
    if (b[0] != 0x11 || b[a->size - 1] != 0x11 || b[a->size / 2] != 0x11) return 15;
    memset(b, 0x22, a->size);
    mproc_shm_close(m);
    return 0;
}

START_TEST(create_attach_from_child)
{
    static const size_t sizes[] = {1, 7, 4096, 4097, (1u << 20) + 3, (size_t)64 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        seg_arg a = {.size = sizes[k], .mode = 0};
        char tag[32];
        snprintf(tag, sizeof tag, "seg%zu", k);
        mkname(a.name + 1, sizeof a.name - 1, tag);
        a.name[0] = '/';
        const char *plain = a.name + 1;
        mproc_shm *m;
        /* With the leading '/': stored without it. */
        TU_OK(mproc_shm_create(&m, k % 2 ? a.name : plain, a.size, NULL));
        ck_assert_str_eq(mproc_shm_name(m), plain);
        ck_assert_uint_eq(mproc_shm_size(m), a.size);
        ck_assert(shm_exists(plain));
        unsigned char *b = mproc_shm_buf(m);
        fill_check(b, a.size, 0); /* zero-filled */
        memset(b, 0x11, a.size);
        ck_assert_int_eq(tu_run_child(seg_child, &a, sizeof a, tu_methods[_i]), 0);
        fill_check(b, a.size, 0x22); /* the child's writes, seen here */
        /* Attaching never unlinks: the segment survives the child. */
        a.mode = 1;
        memset(b, 0x11, 1);
        ck_assert_int_eq(tu_run_child(seg_child, &a, sizeof a, tu_methods[_i]), 0);
        ck_assert(shm_exists(plain));
        /* Close per process: closing the creator's handle keeps the name. */
        mproc_shm_close(m);
        ck_assert(shm_exists(plain));
        mproc_shm *m2;
        TU_OK(mproc_shm_attach(&m2, plain));
        ck_assert_uint_eq(mproc_shm_size(m2), a.size);
        ck_assert_uint_eq(((unsigned char *)mproc_shm_buf(m2))[0], 0x11);
        TU_OK(mproc_shm_unlink(m2));
        ck_assert(!shm_exists(plain));
        TU_RC(mproc_shm_unlink(m2), MPROC_ENOENT); /* a second unlink */
        if (a.size > 1)                            /* still mapped */
            ck_assert_uint_eq(((unsigned char *)mproc_shm_buf(m2))[a.size - 1], 0x22);
        mproc_shm_close(m2);
        mproc_shm *m3 = (mproc_shm *)&m3;
        TU_RC(mproc_shm_attach(&m3, plain), MPROC_ENOENT);
        ck_assert_ptr_null(m3);
    }
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

START_TEST(unlink_from_another_process)
{
    seg_arg a = {.size = 100, .mode = 2};
    mkname(a.name, sizeof a.name, "other");
    mproc_shm *m;
    TU_OK(mproc_shm_create(&m, a.name, a.size, NULL));
    ck_assert_uint_eq(tracked_active(), 1);
    memset(mproc_shm_buf(m), 0x11, a.size);
    ck_assert_int_eq(tu_run_child(seg_child, &a, sizeof a, tu_methods[_i]), 0);
    ck_assert(!shm_exists(a.name));
    /* The child's unlink (through an attached handle) dropped the record. */
    ck_assert_uint_eq(tracked_active(), 0);
    TU_RC(mproc_shm_unlink(m), MPROC_ENOENT);
    /* A new segment under the old name is not removed through the stale
     * handle. */
    mproc_shm *n;
    TU_OK(mproc_shm_create(&n, a.name, 10, NULL));
    TU_RC(mproc_shm_unlink(m), MPROC_ENOENT);
    ck_assert(shm_exists(a.name));
    mproc_shm_close(m);
    TU_OK(mproc_shm_unlink(n));
    mproc_shm_close(n);
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

START_TEST(names_sizes_and_errors)
{
    char name[300];
    mkname(name, sizeof name, "err");
    mproc_shm *m, *x = NULL;
    TU_OK(mproc_shm_create(&m, name, 64, NULL));
    ((char *)mproc_shm_buf(m))[0] = 'k';
    unsigned before = tracked_active();
    TU_RC(mproc_shm_create(&x, name, 64, NULL), MPROC_EEXIST);
    ck_assert_ptr_null(x);
    char slashed[310];
    snprintf(slashed, sizeof slashed, "/%s", name);
    TU_RC(mproc_shm_create(&x, slashed, 64, NULL), MPROC_EEXIST);
    TU_RC(mproc_shm_create(&x, name, 64, &(mproc_shm_opts){.persist = true}), MPROC_EEXIST);
    ck_assert_uint_eq(tracked_active(), before); /* the failed creates left no record */
    ck_assert_int_eq(((char *)mproc_shm_buf(m))[0], 'k');
    TU_OK(mproc_shm_unlink(m));
    mproc_shm_close(m);

    /* Bad names and sizes. */
    char longest[300], toolong[300];
    memset(longest, 'n', sizeof longest);
    memcpy(longest, pfx, strlen(pfx));
    memcpy(toolong, longest, sizeof toolong);
    longest[MPROC__SHM_NAME_MAX] = '\0';
    toolong[MPROC__SHM_NAME_MAX + 1] = '\0';
    const char *bad[] = {"", "/", "a/b", "//a", "/a/", ".", "..", "/..", toolong};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        TU_RC(mproc_shm_create(&x, bad[k], 64, NULL), MPROC_EINVAL);
        TU_RC(mproc_shm_attach(&x, bad[k]), MPROC_EINVAL);
    }
    TU_RC(mproc_shm_attach(&x, NULL), MPROC_EINVAL);
    TU_RC(mproc_shm_create(&x, name, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_shm_create(&x, NULL, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_shm_create(NULL, name, 64, NULL), MPROC_EINVAL);
    TU_RC(mproc_shm_attach(NULL, name), MPROC_EINVAL);
    TU_RC(mproc_shm_attach(&x, name), MPROC_ENOENT);
    ck_assert(!shm_exists(name));
    TU_RC(mproc_shm_unlink(NULL), MPROC_EINVAL);
    mproc_shm_close(NULL);
    ck_assert_ptr_null(mproc_shm_buf(NULL));
    ck_assert_uint_eq(mproc_shm_size(NULL), 0);
    ck_assert_uint_eq(tracked_active(), 0);

    /* The longest name works, with or without the slash. */
    TU_OK(mproc_shm_create(&m, longest, 1, NULL));
    ck_assert_str_eq(mproc_shm_name(m), longest);
    snprintf(slashed, sizeof slashed, "/%s", longest);
    TU_OK(mproc_shm_attach(&x, slashed));
    TU_OK(mproc_shm_unlink(x));
    mproc_shm_close(x);
    TU_RC(mproc_shm_unlink(m), MPROC_ENOENT);
    mproc_shm_close(m);

    /* A segment of size 0 (made by someone else) cannot be attached. */
    snprintf(slashed, sizeof slashed, "/%s", name);
    int fd = shm_open(slashed, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TU_RC(mproc_shm_attach(&x, name), MPROC_EINVAL);
    ck_assert_int_eq(shm_unlink(slashed), 0);
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

START_TEST(random_names)
{
    mproc_shm *a, *b;
    TU_OK(mproc_shm_create(&a, NULL, 10, NULL));
    TU_OK(mproc_shm_create(&b, NULL, 10, &(mproc_shm_opts){.persist = true}));
    const char *na = mproc_shm_name(a), *nb = mproc_shm_name(b);
    ck_assert(strncmp(na, "mproc_", 6) == 0 && strlen(na) == 22);
    ck_assert(strncmp(nb, "mproc_", 6) == 0 && strlen(nb) == 22);
    ck_assert_str_ne(na, nb);
    ck_assert(shm_exists(na) && shm_exists(nb));
    ck_assert_uint_eq(tracked_active(), 1); /* b is persistent */
    mproc_shm *c;
    TU_OK(mproc_shm_attach(&c, na));
    ck_assert_uint_eq(mproc_shm_size(c), 10);
    mproc_shm_close(c);
    char keep[32];
    snprintf(keep, sizeof keep, "%s", na);
    TU_OK(mproc_shm_unlink(a));
    TU_OK(mproc_shm_unlink(b));
    ck_assert(!shm_exists(keep) && !shm_exists(nb));
    mproc_shm_close(a);
    mproc_shm_close(b);
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

/* ---- the tracker's table and process -------------------------------------- */

static int create_in_child(void *arg)
{
    const char *name = arg;
    pid_t tracker = mproc__shm_tracker_pid();
    mproc_shm *m;
    if (mproc_shm_create(&m, name, 8, NULL) != 0) return 10;
    if (mproc__shm_tracker_pid() != tracker) return 11; /* one tracker per family */
    int rc = mproc_shm_unlink(m);
    mproc_shm_close(m);
    return rc == 0 ? 0 : 12;
}

static long rss_kib(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

START_TEST(tracker_table_and_process)
{
    /* Memory the creator holds when the tracker starts: the tracker must
     * not keep (copy-on-write) a copy of it. */
    enum { BIG = 96 << 20 };
    char *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    memset(big, 1, BIG);
    char name[128], other[128];
    mkname(name, sizeof name, "trk");
    mkname(other, sizeof other, "trk2");
    unsigned active, claimed;
    mproc__shm_tracker_stats(&active, &claimed);
    ck_assert_uint_eq(active, 0);
    ck_assert_uint_eq(claimed, 0);
    mproc_shm *m, *p, *att;
    TU_OK(mproc_shm_create(&p, other, 8, &(mproc_shm_opts){.persist = true}));
    ck_assert_uint_eq(tracked_active(), 0);
    TU_OK(mproc_shm_create(&m, name, 8, NULL));
    ck_assert_uint_eq(tracked_active(), 1);
    TU_OK(mproc_shm_attach(&att, name));
    ck_assert_uint_eq(tracked_active(), 1);
    mproc_shm_close(att);

    pid_t tp = mproc__shm_tracker_pid();
    ck_assert_int_gt(tp, 0);
    ck_assert_int_ne(tp, getpid());
    ck_assert_int_eq(kill(tp, 0), 0);
    ck_assert_int_eq(getsid(tp), tp); /* its own session */
    /* Only its own description of the arena memfd (once it has closed the
     * pipe it reported through). */
    long long end = mproc_now_ns() + 2000000000LL;
    while (tu_count_proc(tp, "fd") != 1 && mproc_now_ns() < end) tu_sleep_ms(5);
    ck_assert_int_eq(tu_count_proc(tp, "fd"), 1);
    long rss = rss_kib(tp);
    ck_assert_msg(rss > 0 && rss < 48 * 1024, "the tracker's RSS is %ld KiB", rss);
    free(big);
    char comm[64] = "";
    snprintf(name, sizeof name, "/proc/%d/comm", (int)tp);
    FILE *f = fopen(name, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(comm, sizeof comm, f));
    fclose(f);
    ck_assert_str_eq(comm, "mproc-shmtrack\n");
    mkname(name, sizeof name, "trk");
    ck_assert_int_eq(waitpid(tp, NULL, WNOHANG), -1); /* not our child */
    ck_assert_int_eq(errno, ECHILD);
    /* Signals that end an ordinary daemon do not end it. */
    ck_assert_int_eq(kill(tp, SIGTERM), 0);
    ck_assert_int_eq(kill(tp, SIGINT), 0);
    ck_assert_int_eq(kill(tp, SIGHUP), 0);
    tu_sleep_ms(50);
    ck_assert_int_eq(kill(tp, 0), 0);
    ck_assert_int_eq(mproc__shm_tracker_pid(), tp);

    /* A child of the family creates: no second tracker. */
    char cname[128];
    mkname(cname, sizeof cname, "trkchild");
    ck_assert_int_eq(tu_run_child(create_in_child, cname, strlen(cname) + 1, tu_methods[_i]), 0);
    ck_assert_int_eq(mproc__shm_tracker_pid(), tp);

    TU_OK(mproc_shm_unlink(m));
    ck_assert_uint_eq(tracked_active(), 0);
    TU_OK(mproc_shm_unlink(p));
    mproc_shm_close(m);
    mproc_shm_close(p);
}
END_TEST

START_TEST(tracker_capacity)
{
    enum { CAP = MPROC__SHM_TRACKER_CAP };
    static mproc_shm *segs[CAP + 1];
    char name[128];
    int made = 0, rc = 0;
    for (; made <= CAP; made++) {
        char tag[32];
        snprintf(tag, sizeof tag, "cap%d", made);
        mkname(name, sizeof name, tag);
        if ((rc = mproc_shm_create(&segs[made], name, 1, NULL)) != 0) break;
    }
    ck_assert_int_eq(made, CAP);
    TU_RC(rc, MPROC_ENOSPC);
    ck_assert(!shm_exists(name)); /* the refused create made nothing */
    ck_assert_uint_eq(tracked_active(), CAP);
    /* Persistent segments need no record. */
    mproc_shm *p;
    TU_OK(mproc_shm_create(&p, name, 1, &(mproc_shm_opts){.persist = true}));
    TU_OK(mproc_shm_unlink(p));
    mproc_shm_close(p);
    TU_OK(mproc_shm_unlink(segs[7]));
    mproc_shm_close(segs[7]);
    TU_OK(mproc_shm_create(&segs[7], name, 1, NULL)); /* a freed record is reused */
    TU_RC(mproc_shm_create(&p, NULL, 1, NULL), MPROC_ENOSPC);
    for (int k = 0; k < CAP; k++) {
        TU_OK(mproc_shm_unlink(segs[k]));
        mproc_shm_close(segs[k]);
    }
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

enum { CONC_THREADS = 4, CONC_ITERS = 60 };

typedef struct conc_arg {
    int who;
    int failures;
} conc_arg;

static void *conc_thread(void *arg)
{
    conc_arg *a = arg;
    for (int i = 0; i < CONC_ITERS; i++) {
        char tag[64], name[128];
        snprintf(tag, sizeof tag, "conc%d_%d", a->who, i);
        mkname(name, sizeof name, tag);
        mproc_shm *m, *n;
        if (mproc_shm_create(&m, i % 3 ? name : NULL, 64, NULL) != 0) {
            a->failures++;
            continue;
        }
        memset(mproc_shm_buf(m), a->who, 64);
        if (mproc_shm_attach(&n, mproc_shm_name(m)) != 0)
            a->failures++;
        else {
            if (((unsigned char *)mproc_shm_buf(n))[63] != (unsigned char)a->who) a->failures++;
            mproc_shm_close(n);
        }
        if (mproc_shm_unlink(m) != 0) a->failures++;
        mproc_shm_close(m);
    }
    return NULL;
}

static int run_threads(int base)
{
    pthread_t th[CONC_THREADS];
    conc_arg args[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t] = (conc_arg){.who = base + t};
        if (pthread_create(&th[t], NULL, conc_thread, &args[t])) return -1;
    }
    int fails = 0;
    for (int t = 0; t < CONC_THREADS; t++) {
        pthread_join(th[t], NULL);
        fails += args[t].failures;
    }
    return fails;
}

static int conc_child(void *arg)
{
    int fails = run_threads(*(int *)arg);
    return fails == 0 ? 0 : 10;
}

START_TEST(threads_and_processes_share_the_table)
{
    enum { NCHILD = 3 };
    mproc_process *kids[NCHILD];
    for (int c = 0; c < NCHILD; c++) {
        int base = (c + 1) * 10;
        TU_OK(mproc_process_new(&kids[c], conc_child, &base, sizeof base, TU_OPTS));
        TU_OK(mproc_process_start(kids[c]));
    }
    ck_assert_int_eq(run_threads(0), 0);
    for (int c = 0; c < NCHILD; c++) {
        TU_OK(mproc_process_join(kids[c], 20000));
        int code;
        TU_OK(mproc_process_exitcode(kids[c], &code));
        ck_assert_int_eq(code, 0);
        TU_OK(mproc_process_free(kids[c]));
    }
    unsigned active, claimed;
    mproc__shm_tracker_stats(&active, &claimed);
    ck_assert_uint_eq(active, 0);
    ck_assert_uint_eq(claimed, 0);
}
END_TEST

static int churn_child(void *arg)
{
    int round = *(int *)arg;
    for (unsigned i = 0;; i++) {
        char tag[64], name[128];
        snprintf(tag, sizeof tag, "churn%d_%u", round, i);
        mkname(name, sizeof name, tag);
        mproc_shm *m;
        if (mproc_shm_create(&m, name, 16, NULL) != 0) return 10;
        if (mproc_shm_unlink(m) != 0) return 11;
        mproc_shm_close(m);
    }
}

START_TEST(killed_mid_update_keeps_the_table_sound)
{
    enum { ROUNDS = 8 };
    unsigned seed = (unsigned)getpid();
    for (int r = 0; r < ROUNDS; r++) {
        mproc_process *p;
        TU_OK(mproc_process_new(&p, churn_child, &r, sizeof r, TU_OPTS));
        TU_OK(mproc_process_start(p));
        tu_sleep_ms(5 + (long)(rand_r(&seed) % 20));
        TU_OK(mproc_process_kill(p));
        TU_OK(mproc_process_join(p, 10000));
        int code;
        TU_OK(mproc_process_exitcode(p, &code));
        ck_assert_int_eq(code, -SIGKILL); /* killed while churning, no error */
        TU_OK(mproc_process_free(p));
    }
    /* Each kill can strand at most one record (the one in hand). */
    unsigned active, claimed;
    mproc__shm_tracker_stats(&active, &claimed);
    ck_assert_uint_le(active + claimed, ROUNDS);
    /* Segments a kill left behind: attach and unlink them, which also
     * drops their records. */
    DIR *d = opendir("/dev/shm");
    ck_assert_ptr_nonnull(d);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, pfx, strlen(pfx)) != 0 ||
            strncmp(e->d_name + strlen(pfx), "churn", 5) != 0)
            continue;
        mproc_shm *m;
        int rc = mproc_shm_attach(&m, e->d_name);
        if (rc == MPROC_EINVAL) { /* killed before ftruncate: size 0 */
            char path[300];
            snprintf(path, sizeof path, "/%s", e->d_name);
            ck_assert_int_eq(shm_unlink(path), 0);
            continue;
        }
        TU_OK(rc);
        TU_OK(mproc_shm_unlink(m));
        mproc_shm_close(m);
        left++;
    }
    closedir(d);
    unsigned active2;
    mproc__shm_tracker_stats(&active2, NULL);
    ck_assert_uint_eq(active2, active - (unsigned)left);
    /* The table still works for everyone. */
    ck_assert_int_eq(run_threads(100), 0);
    mproc__shm_tracker_stats(&active, NULL);
    ck_assert_uint_eq(active, active2);
}
END_TEST

/* ---- crash cleanup, in a family of its own --------------------------------- */

typedef struct helper_msg {
    int status; /* 0, or where the helper failed */
    pid_t last; /* the helper's last child, still running (kill mode) */
} helper_msg;

static int helper_c1(void *arg)
{
    mproc_shm *m;
    if (mproc_shm_create(&m, arg, 4096, NULL) != 0) return 10;
    ((char *)mproc_shm_buf(m))[0] = 1;
    mproc_shm_close(m); /* no unlink: the family's tracker will do it */
    return 0;
}

static int helper_sleeper(void *arg)
{
    (void)arg;
    for (;;) pause();
    return 0;
}

/* Runs fn(name) in a child and returns its exit code (no Check here). */
static int helper_run(mproc_target_fn fn, const char *name)
{
    mproc_process *p;
    int code = -1;
    if (mproc_process_new(&p, fn, name, strlen(name) + 1, NULL) || mproc_process_start(p))
        return -1;
    if (mproc_process_join(p, 10000) || mproc_process_exitcode(p, &code)) code = -1;
    mproc_process_free(p);
    return code;
}

static void helper_names(const char *prefix, char (*n)[128])
{
    static const char *tags[] = {"ck_a", "ck_b", "ck_l", "ck_p", "ck_r"};
    for (int k = 0; k < 5; k++) snprintf(n[k], 128, "%s%s", prefix, tags[k]);
}

/* argv: exe HELPER_ARG mode prefix fd. mode "kill": a persistent segment,
 * a tracked one made by a child that exits, a tracked segment and a list
 * made here, a tracked one whose name is removed behind the API's back (as
 * by a crash between unlink and untrack), then a sleeping child; reports
 * and waits to be killed.
 * mode "exit": a tracked segment and a list, then a normal exit. */
static int helper_main(int argc, char **argv)
{
    if (argc != 5) return 2;
    const char *mode = argv[2];
    int fd = atoi(argv[4]);
    char n[5][128];
    helper_names(argv[3], n);
    helper_msg msg = {0, 0};
    mproc_shm *a, *p, *r;
    mproc_shareable_list *l;
    mproc_shareable_item items[] = {MPROC_SHAREABLE_INT_ITEM(5), MPROC_SHAREABLE_STR_ITEM("crash")};
    if (strcmp(mode, "kill") == 0) {
        if (mproc_shm_create(&p, n[3], 8, &(mproc_shm_opts){.persist = true})) msg.status = 1;
        /* The tracker is started by a child that then exits: the root,
         * which existed before, still keeps the family alive. */
        else if (helper_run(helper_c1, n[1]) != 0)
            msg.status = 2;
        else if ((tu_sleep_ms(300), !shm_exists(n[1])))
            msg.status = 3;
        else if (mproc_shm_create(&a, n[0], 8, NULL) ||
                 mproc_shareable_list_create(&l, n[2], items, 2))
            msg.status = 4;
        else if (mproc_shm_create(&r, n[4], 8, NULL) || shm_unlink(mproc_shm_name(r) - 1) != 0)
            msg.status = 6;
        else {
            mproc_process *c2;
            if (mproc_process_new(&c2, helper_sleeper, NULL, 0, NULL) || mproc_process_start(c2))
                msg.status = 5;
            else
                msg.last = mproc_process_pid(c2);
        }
        if (write(fd, &msg, sizeof msg) != sizeof msg) return 3;
        for (;;) pause();
    }
    if (strcmp(mode, "exit") == 0) {
        if (mproc_shm_create(&a, n[0], 8, NULL) || mproc_shareable_list_create(&l, n[2], items, 2))
            msg.status = 4;
        if (write(fd, &msg, sizeof msg) != sizeof msg) return 3;
        if (msg.status == 0) {
            mproc_shm_close(a); /* closed, never unlinked */
            mproc_shareable_list_close(l);
        }
        return 0;
    }
    return 2;
}

/* Starts the helper in mode, returns its pid and fills *msg. */
static pid_t start_helper(const char *mode, helper_msg *msg)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    char fdstr[16];
    snprintf(fdstr, sizeof fdstr, "%d", p[1]);
    char *argv[] = {"test_shm_named", HELPER_ARG, (char *)mode, pfx, fdstr, NULL};
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fcntl(p[1], F_SETFD, 0); /* the report pipe survives exec */
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int ready = poll(&pf, 1, 15000);
    ssize_t got = ready == 1 ? read(p[0], msg, sizeof *msg) : -1;
    close(p[0]);
    if (got != (ssize_t)sizeof *msg) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ck_abort_msg("the helper did not report (poll %d, read %zd)", ready, got);
    }
    return pid;
}

START_TEST(crash_cleanup_after_sigkill)
{
    char n[5][128];
    helper_names(pfx, n);
    helper_msg msg;
    pid_t helper = start_helper("kill", &msg);
    if (msg.status != 0) {
        kill(helper, SIGKILL);
        waitpid(helper, NULL, 0);
        prefixed_entries(true);
        ck_abort_msg("helper failed at step %d", msg.status);
    }
    for (int k = 0; k < 4; k++) ck_assert_msg(shm_exists(n[k]), "%s missing", n[k]);
    /* Someone else's segment takes the name whose stale record the family
     * keeps: the tracker must leave it alone. */
    ck_assert(!shm_exists(n[4]));
    mproc_shm *other;
    TU_OK(mproc_shm_create(&other, n[4], 8, &(mproc_shm_opts){.persist = true}));
    int pidfd = (int)syscall(SYS_pidfd_open, msg.last, 0);
    ck_assert_int_ge(pidfd, 0);
    /* The creator dies; its child keeps the family (and the names) alive. */
    ck_assert_int_eq(kill(helper, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(helper, &st, 0), helper);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    tu_sleep_ms(300);
    for (int k = 0; k < 3; k++) ck_assert_msg(shm_exists(n[k]), "%s removed too early", n[k]);
    /* The last process of the family dies: the tracker cleans up. */
    ck_assert_int_eq(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0), 0);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    close(pidfd);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(wait_exists(n[k], false, 5000), "%s still exists", n[k]);
    tu_sleep_ms(100);
    ck_assert_msg(shm_exists(n[3]), "the persistent segment was removed");
    ck_assert_msg(shm_exists(n[4]), "another family's segment was removed");
    TU_OK(mproc_shm_unlink(other));
    mproc_shm_close(other);
    char path[140];
    snprintf(path, sizeof path, "/%s", n[3]);
    ck_assert_int_eq(shm_unlink(path), 0);
}
END_TEST

START_TEST(crash_cleanup_after_plain_exit)
{
    char n[5][128];
    helper_names(pfx, n);
    helper_msg msg;
    pid_t helper = start_helper("exit", &msg);
    int st;
    ck_assert_int_eq(waitpid(helper, &st, 0), helper);
    ck_assert_int_eq(msg.status, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper status 0x%x", st);
    ck_assert_msg(wait_exists(n[0], false, 5000), "%s still exists", n[0]);
    ck_assert_msg(wait_exists(n[2], false, 5000), "%s still exists", n[2]);
}
END_TEST

/* ---- ShareableList -------------------------------------------------------- */

static const unsigned char raw4[] = {0, 1, 2, 255};
static const char long17[] = "seventeen chars!!";

#define BYTES_ITEM(p, n) ((mproc_shareable_item){.type = MPROC_SHAREABLE_BYTES, .u.s = {(p), (n)}})

static bool item_is_str(const mproc_shareable_item *it, mproc_shareable_type t, const void *p,
                        size_t n)
{
    return it->type == t && it->u.s.len == n && (n == 0 || memcmp(it->u.s.data, p, n) == 0);
}

static int sl_child(void *arg)
{
    mproc_shareable_list *l;
    if (mproc_shareable_list_attach(&l, arg) != 0) return 10;
    if (mproc_shareable_list_len(l) != 8) return 11;
    mproc_shareable_item it;
    if (mproc_shareable_list_get(l, 0, &it) || it.type != MPROC_SHAREABLE_INT || it.u.i != 42)
        return 12;
    if (mproc_shareable_list_get(l, 1, &it) || it.type != MPROC_SHAREABLE_DOUBLE || it.u.d != 3.5)
        return 13;
    if (mproc_shareable_list_get(l, 2, &it) || it.type != MPROC_SHAREABLE_BOOL || !it.u.b)
        return 14;
    if (mproc_shareable_list_get(l, 3, &it) ||
        !item_is_str(&it, MPROC_SHAREABLE_STR, "h\xc3\xa9llo", 6))
        return 15;
    if (mproc_shareable_list_get(l, 4, &it) || !item_is_str(&it, MPROC_SHAREABLE_BYTES, raw4, 4))
        return 16;
    if (mproc_shareable_list_get(l, 5, &it) || it.type != MPROC_SHAREABLE_NIL) return 17;
    if (mproc_shareable_list_get(l, 6, &it) || !item_is_str(&it, MPROC_SHAREABLE_STR, "", 0))
        return 18;
    if (mproc_shareable_list_get(l, 7, &it) || !item_is_str(&it, MPROC_SHAREABLE_STR, long17, 17))
        return 19;
    if (mproc_shareable_list_get(l, 8, &it) != MPROC_ERANGE) return 20;
    /* Writes the parent checks; types change within their slots. */
    if (mproc_shareable_list_set(l, 0, &MPROC_SHAREABLE_INT_ITEM(-7))) return 21;
    if (mproc_shareable_list_set(l, 1, &MPROC_SHAREABLE_STR_ITEM("xy"))) return 22;
    if (mproc_shareable_list_set(l, 3, &MPROC_SHAREABLE_STR_ITEM("abcdefgh"))) return 23;
    if (mproc_shareable_list_set(l, 5, &MPROC_SHAREABLE_DOUBLE_ITEM(2.25))) return 24;
    if (mproc_shareable_list_set(l, 4, &BYTES_ITEM("123456789", 9)) != MPROC_EMSGSIZE) return 25;
    if (mproc_shareable_list_set(l, 8, &MPROC_SHAREABLE_NIL_ITEM) != MPROC_ERANGE) return 26;
    mproc_shareable_list_close(l);
    return 0;
}

START_TEST(sl_round_trips_across_processes)
{
    char name[128];
    mkname(name, sizeof name, "sl");
    mproc_shareable_item items[] = {
        MPROC_SHAREABLE_INT_ITEM(42),    MPROC_SHAREABLE_DOUBLE_ITEM(3.5),
        MPROC_SHAREABLE_BOOL_ITEM(true), MPROC_SHAREABLE_STR_ITEM("h\xc3\xa9llo"),
        BYTES_ITEM(raw4, sizeof raw4),   MPROC_SHAREABLE_NIL_ITEM,
        MPROC_SHAREABLE_STR_ITEM(""),    MPROC_SHAREABLE_STR_ITEM(long17),
    };
    mproc_shareable_list *l;
    TU_OK(mproc_shareable_list_create(&l, name, items, 8));
    ck_assert_uint_eq(mproc_shareable_list_len(l), 8);
    mproc_shm *shm = mproc_shareable_list_shm(l);
    ck_assert_str_eq(mproc_shm_name(shm), name);
    /* header 16 + table 8 * 32 + slots 5 * 8 + 8 (empty str) + 8 + 24 */
    ck_assert_uint_eq(mproc_shm_size(shm), 16 + 8 * 32 + 6 * 8 + 8 + 24);
    ck_assert_uint_eq(tracked_active(), 1);
    ck_assert_int_eq(tu_run_child(sl_child, name, strlen(name) + 1, tu_methods[_i]), 0);

    mproc_shareable_item it;
    TU_OK(mproc_shareable_list_get(l, 0, &it));
    ck_assert(it.type == MPROC_SHAREABLE_INT && it.u.i == -7);
    TU_OK(mproc_shareable_list_get(l, 1, &it));
    ck_assert(item_is_str(&it, MPROC_SHAREABLE_STR, "xy", 2));
    const char *lo = mproc_shm_buf(shm), *hi = lo + mproc_shm_size(shm);
    ck_assert((const char *)it.u.s.data > lo && (const char *)it.u.s.data + 2 <= hi);
    TU_OK(mproc_shareable_list_get(l, 3, &it));
    ck_assert(item_is_str(&it, MPROC_SHAREABLE_STR, "abcdefgh", 8));
    TU_OK(mproc_shareable_list_get(l, 4, &it));
    ck_assert(
        item_is_str(&it, MPROC_SHAREABLE_BYTES, raw4, 4)); /* the refused set changed nothing */
    TU_OK(mproc_shareable_list_get(l, 5, &it));
    ck_assert(it.type == MPROC_SHAREABLE_DOUBLE && it.u.d == 2.25);

    /* Capacity: a 17-byte string got a 24-byte slot. */
    unsigned char big[25];
    memset(big, 'z', sizeof big);
    TU_OK(mproc_shareable_list_set(l, 7, &BYTES_ITEM(big, 24)));
    TU_RC(mproc_shareable_list_set(l, 7, &BYTES_ITEM(big, 25)), MPROC_EMSGSIZE);
    TU_OK(mproc_shareable_list_get(l, 7, &it));
    ck_assert(item_is_str(&it, MPROC_SHAREABLE_BYTES, big, 24));
    TU_OK(mproc_shareable_list_set(l, 7, &MPROC_SHAREABLE_BOOL_ITEM(false)));
    TU_OK(mproc_shareable_list_get(l, 7, &it));
    ck_assert(it.type == MPROC_SHAREABLE_BOOL && !it.u.b);
    TU_RC(mproc_shareable_list_set(l, 6, &MPROC_SHAREABLE_STR_ITEM("ninechars")),
          MPROC_EMSGSIZE); /* cap 8 */
    TU_OK(mproc_shareable_list_set(l, 6, &MPROC_SHAREABLE_STR_ITEM("eightchr")));
    /* Bad items. */
    TU_RC(mproc_shareable_list_set(l, 2, &MPROC_SHAREABLE_STR_ITEM("\xc3(")),
          MPROC_EINVAL); /* not UTF-8 */
    TU_RC(mproc_shareable_list_set(l, 2, &MPROC_SHAREABLE_STR_ITEM("\xed\xa0\x80")),
          MPROC_EINVAL); /* surrogate */
    TU_RC(mproc_shareable_list_set(l, 2, &BYTES_ITEM(NULL, 3)), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_set(l, 2, &(mproc_shareable_item){.type = (mproc_shareable_type)99}),
          MPROC_EINVAL);
    TU_RC(mproc_shareable_list_set(l, 2, NULL), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_set(l, 9, &MPROC_SHAREABLE_NIL_ITEM), MPROC_ERANGE);
    TU_RC(mproc_shareable_list_get(l, 9, &it), MPROC_ERANGE);
    TU_OK(mproc_shareable_list_get(l, 2, &it));
    ck_assert(it.type == MPROC_SHAREABLE_BOOL && it.u.b);
    /* A second handle in this process sees the same items. */
    mproc_shareable_list *l2;
    TU_OK(mproc_shareable_list_attach(&l2, name));
    TU_OK(mproc_shareable_list_get(l2, 6, &it));
    ck_assert(item_is_str(&it, MPROC_SHAREABLE_STR, "eightchr", 8));
    mproc_shareable_list_close(l2);

    TU_OK(mproc_shm_unlink(mproc_shareable_list_shm(l)));
    mproc_shareable_list_close(l);
    mproc_shareable_list_close(NULL);
    TU_RC(mproc_shareable_list_attach(&l2, name), MPROC_ENOENT);
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

START_TEST(sl_create_errors_and_empty_list)
{
    char name[128];
    mkname(name, sizeof name, "slerr");
    mproc_shareable_list *l = NULL;
    TU_RC(mproc_shareable_list_create(&l, name, NULL, 3), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_create(NULL, name, NULL, 0), MPROC_EINVAL);
    mproc_shareable_item bad[] = {MPROC_SHAREABLE_INT_ITEM(1), MPROC_SHAREABLE_STR_ITEM("\xff")};
    TU_RC(mproc_shareable_list_create(&l, name, bad, 2), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_create(&l, "a/b", bad, 1), MPROC_EINVAL);
    ck_assert(!shm_exists(name));
    TU_OK(mproc_shareable_list_create(&l, name, NULL, 0));
    ck_assert_uint_eq(mproc_shareable_list_len(l), 0);
    mproc_shareable_item it;
    TU_RC(mproc_shareable_list_get(l, 0, &it), MPROC_ERANGE);
    mproc_shareable_list *dup;
    TU_RC(mproc_shareable_list_create(&dup, name, bad, 1), MPROC_EEXIST);
    TU_OK(mproc_shareable_list_attach(&dup, name));
    ck_assert_uint_eq(mproc_shareable_list_len(dup), 0);
    mproc_shareable_list_close(dup);
    TU_OK(mproc_shm_unlink(mproc_shareable_list_shm(l)));
    mproc_shareable_list_close(l);
    TU_RC(mproc_shareable_list_create(&l, NULL, bad, 1), 0); /* random name */
    ck_assert(strncmp(mproc_shm_name(mproc_shareable_list_shm(l)), "mproc_", 6) == 0);
    TU_OK(mproc_shm_unlink(mproc_shareable_list_shm(l)));
    mproc_shareable_list_close(l);
    ck_assert_uint_eq(tracked_active(), 0);
}
END_TEST

/* Overwrites bytes [off, off+n) of segment `name`. */
static void poke(const char *name, size_t off, const void *p, size_t n)
{
    mproc_shm *m;
    TU_OK(mproc_shm_attach(&m, name));
    ck_assert_uint_le(off + n, mproc_shm_size(m));
    memcpy((char *)mproc_shm_buf(m) + off, p, n);
    mproc_shm_close(m);
}

static void expect_eproto(const char *name)
{
    mproc_shareable_list *l = (mproc_shareable_list *)&l;
    TU_RC(mproc_shareable_list_attach(&l, name), MPROC_EPROTO);
    ck_assert_ptr_null(l);
}

START_TEST(sl_garbage_is_eproto)
{
    char name[128];
    mkname(name, sizeof name, "slbad");
    mproc_shm *m;
    /* Not a list at all: zeros, random bytes, too small. */
    TU_OK(mproc_shm_create(&m, name, 256, NULL));
    expect_eproto(name);
    unsigned seed = 12345;
    unsigned char *b = mproc_shm_buf(m);
    for (int i = 0; i < 256; i++) b[i] = (unsigned char)rand_r(&seed);
    expect_eproto(name);
    TU_OK(mproc_shm_unlink(m));
    mproc_shm_close(m);
    TU_OK(mproc_shm_create(&m, name, 1, NULL));
    expect_eproto(name);
    TU_OK(mproc_shm_unlink(m));
    mproc_shm_close(m);

    /* A real list, then one field at a time broken. */
    mproc_shareable_item items[] = {MPROC_SHAREABLE_INT_ITEM(1),
                                    MPROC_SHAREABLE_STR_ITEM("0123456789")};
    struct {
        size_t off;
        uint64_t val;
    } breaks[] = {
        {8, 3},                         /* count: the table no longer fits */
        {8, UINT64_MAX / 2},            /* count: huge */
        {16, 9},                        /* entry 0 type */
        {16 + 8, 8},                    /* entry 0 offset: inside the table */
        {16 + 16, 4},                   /* entry 0 capacity: too small */
        {16 + 32 + 16, 1 << 20},        /* entry 1 capacity: past the end */
        {16 + 32 + 8, 16 + 64 + 8 + 8}, /* entry 1 offset: a gap */
        {16 + 32 + 24, 17},             /* entry 1 len > capacity */
        {0, 0},                         /* magic */
    };
    for (size_t k = 0; k < sizeof breaks / sizeof breaks[0]; k++) {
        mproc_shareable_list *l;
        TU_OK(mproc_shareable_list_create(&l, name, items, 2));
        mproc_shareable_list *ok;
        TU_OK(mproc_shareable_list_attach(&ok, name));
        mproc_shareable_list_close(ok);
        if (breaks[k].off == 16) {
            uint32_t t = (uint32_t)breaks[k].val;
            poke(name, 16, &t, sizeof t);
        } else {
            poke(name, breaks[k].off, &breaks[k].val, 8);
        }
        expect_eproto(name);
        TU_OK(mproc_shm_unlink(mproc_shareable_list_shm(l)));
        mproc_shareable_list_close(l);
    }

    /* Broken after attach: get refuses what it cannot make sense of, and
     * the private copy of offsets keeps access inside the segment. */
    mproc_shareable_list *l;
    TU_OK(mproc_shareable_list_create(&l, name, items, 2));
    uint32_t t = 77;
    poke(name, 16, &t, sizeof t);
    uint64_t len = 4096;
    poke(name, 16 + 32 + 24, &len, 8);
    mproc_shareable_item it;
    TU_RC(mproc_shareable_list_get(l, 0, &it), MPROC_EPROTO);
    TU_RC(mproc_shareable_list_get(l, 1, &it), MPROC_EPROTO);
    TU_OK(
        mproc_shareable_list_set(l, 0, &MPROC_SHAREABLE_INT_ITEM(3))); /* a set repairs the entry */
    TU_OK(mproc_shareable_list_get(l, 0, &it));
    ck_assert(it.type == MPROC_SHAREABLE_INT && it.u.i == 3);
    TU_OK(mproc_shm_unlink(mproc_shareable_list_shm(l)));
    mproc_shareable_list_close(l);
    TU_RC(mproc_shareable_list_attach(&l, name), MPROC_ENOENT);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], HELPER_ARG) == 0) return helper_main(argc, argv);
    snprintf(pfx, sizeof pfx, "mproct%d_", (int)getpid());

    Suite *s = suite_create("shm_named");
    TCase *tc = sh_tcase(s, "segments", 30);
    tcase_add_loop_test(tc, create_attach_from_child, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, unlink_from_another_process, 0, TU_NMETHODS);
    tcase_add_test(tc, names_sizes_and_errors);
    tcase_add_test(tc, random_names);
    tc = sh_tcase(s, "tracker", 30);
    tcase_add_loop_test(tc, tracker_table_and_process, 0, TU_NMETHODS);
    tcase_add_test(tc, tracker_capacity);
    tcase_add_loop_test(tc, threads_and_processes_share_the_table, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, killed_mid_update_keeps_the_table_sound, 0, TU_NMETHODS);
    tc = sh_tcase(s, "crash_cleanup", 30);
    tcase_add_test(tc, crash_cleanup_after_sigkill);
    tcase_add_test(tc, crash_cleanup_after_plain_exit);
    tc = sh_tcase(s, "shareable_list", 30);
    tcase_add_loop_test(tc, sl_round_trips_across_processes, 0, TU_NMETHODS);
    tcase_add_test(tc, sl_create_errors_and_empty_list);
    tcase_add_test(tc, sl_garbage_is_eproto);
    int rc = tu_run(s);

    /* Nothing of ours may be left in /dev/shm (trackers of test families
     * that just ended get a moment to finish). */
    long long end = mproc_now_ns() + 3000000000LL;
    while (prefixed_entries(false) > 0 && mproc_now_ns() < end) tu_sleep_ms(50);
    int left = prefixed_entries(true);
    if (left != 0) {
        fprintf(stderr, "FAIL: %d /dev/shm entries with prefix %s were left behind\n", left, pfx);
        rc = EXIT_FAILURE;
    }
    return rc;
}

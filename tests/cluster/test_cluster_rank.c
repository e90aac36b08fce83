/* A serving rank's local pools (src/cluster/rank.c), driven directly with
 * the messages that the protocol never sends between two ranks of the same
 * program: a task whose pool setup the rank does not have, a setup whose
 * initializer the rank cannot find, a malformed or repeated setup, the end
 * of a pool (CL_DROP) that still has tasks on the rank, and a setup that
 * finds no memory. One process
 * (mpiexec -n 1) plays both sides over MPI_COMM_SELF: the rank's answers
 * come to itself. Exits non-zero on a failure; every wait is bounded. */
#include "cluster/cluster.h"

#include <mproc.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clutil.h"

static MPI_Comm comm;

/* Under AddressSanitizer, an allocation larger than it can give returns
 * NULL, as glibc's malloc does, instead of ending the program:
 * test_setup_without_memory makes one. (ASAN_OPTIONS adds to this; the
 * program is linked with -rdynamic, so that the runtime finds it.) */
const char *__asan_default_options(void);
__attribute__((used, visibility("default"))) const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* ---- the functions a task names ------------------------------------------------ */

static char init_seen[16]; /* in a local pool's worker: its initializer's argument */

static int init_fn(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    if (len >= sizeof init_seen) return mproc_task_fail("initargs of %zu bytes", len);
    memcpy(init_seen, arg, len);
    return 0;
}

/* The initializer's argument, as this worker saw it. */
static int what_init_saw(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    return mproc_result_set(res, init_seen, strlen(init_seen));
}

static int nap_ms(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    int ms = 0;
    if (len == sizeof ms) memcpy(&ms, arg, sizeof ms);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

/* ---- the log lines the rank writes --------------------------------------------- */

static char last_log[256];

static void keep_log(int level, const char *name, const char *msg, void *ud)
{
    (void)level;
    (void)name;
    (void)ud;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

/* ---- the root's side ------------------------------------------------------------- */

/* The answer's receive, posted before the task is given to the rank: a
 * send to oneself need not complete before its receive is posted. */
static char rbuf[4096];
static MPI_Request rreq = MPI_REQUEST_NULL;

static void submit(uint64_t id, uint32_t setup, void *fn, const void *arg, size_t len)
{
    if (rreq == MPI_REQUEST_NULL)
        MPI_Irecv(rbuf, (int)sizeof rbuf, MPI_BYTE, 0, CL_TAG_RESULT, comm, &rreq);
    cl_task_hdr h = {.id = id, .kind = CL_APPLY, .local = 1, .setup = setup};
    mproc__cluster_rank_submit(comm, &h, fn, arg, len);
}

/* The answer to task id, within 20 s, polling the rank's local tasks:
 * its code, message and result (got, up to cap bytes, NUL-ended). */
static int answer(uint64_t id, char *msg, size_t msgcap, char *got, size_t cap)
{
    for (long long end = mproc_now_ns() + 20000000000LL; mproc_now_ns() < end;) {
        int flag = 0;
        MPI_Status st;
        mproc__cluster_rank_poll(comm);
        MPI_Test(&rreq, &flag, &st);
        if (!flag) {
            usleep(1000);
            continue;
        }
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        cl_result_hdr h;
        if (n < (int)sizeof h) return -9999;
        memcpy(&h, rbuf, sizeof h);
        if (h.id != id || sizeof h + h.msglen + h.len != (size_t)n) return -9998;
        snprintf(msg, msgcap, "%.*s", (int)h.msglen, rbuf + sizeof h);
        snprintf(got, cap, "%.*s", (int)h.len, rbuf + sizeof h + h.msglen);
        return h.rc;
    }
    return -9997; /* no answer */
}

#define EXPECT(id, want_rc, want_msg, want_got)                                                    \
    do {                                                                                           \
        char msg_[256], got_[64];                                                                  \
        int rc_ = answer(id, msg_, sizeof msg_, got_, sizeof got_);                                \
        CHECK(rc_ == (want_rc), "task %d: code %d (%s), want %d", (int)(id), rc_,                  \
              mproc_strerror(rc_), (int)(want_rc));                                                \
        CHECK(strstr(msg_, want_msg), "task %d: message \"%s\", want \"%s\"", (int)(id), msg_,     \
              want_msg);                                                                           \
        CHECK(strcmp(got_, want_got) == 0, "task %d: result \"%s\", want \"%s\"", (int)(id), got_, \
              want_got);                                                                           \
    } while (0)

static void setup(uint32_t id, uint64_t off, void *init, const char *args)
{
    cl_task_hdr h = {.kind = CL_SETUP, .off = off, .local = 1, .setup = id};
    mproc__cluster_rank_setup(&h, init, args, args ? strlen(args) : 0);
}

/* ---- the cases ------------------------------------------------------------------- */

/* A task of a pool whose setup never came, and one of a setup whose
 * initializer was not found: each fails with MPROC_EPROTO, saying which. */
static void test_missing_setup(void)
{
    submit(1, 42, what_init_saw, NULL, 0);
    EXPECT(1, MPROC_EPROTO, "no setup", "");
    setup(43, 12345, NULL, "x"); /* an offset that named nothing here */
    submit(2, 43, what_init_saw, NULL, 0);
    EXPECT(2, MPROC_EPROTO, "initializer cannot be found", "");
}

/* A setup numbered 0, or one already there, is logged and changes
 * nothing: the first setup of 43 stays. */
static void test_malformed_setup(void)
{
    last_log[0] = '\0';
    setup(0, 0, init_fn, "zero");
    CHECK(strstr(last_log, "malformed"), "setup 0 logged \"%s\"", last_log);
    last_log[0] = '\0';
    setup(43, 0, init_fn, "again");
    CHECK(strstr(last_log, "malformed"), "a second setup 43 logged \"%s\"", last_log);
    submit(3, 43, what_init_saw, NULL, 0);
    EXPECT(3, MPROC_EPROTO, "initializer cannot be found", "");
}

/* A setup whose initargs find no memory on the rank (here: more bytes
 * than any malloc gives; they are never read): its tasks fail with
 * MPROC_ENOMEM, saying so, until the pool's end; a later setup works. */
static void test_setup_without_memory(void)
{
    last_log[0] = '\0';
    cl_task_hdr h = {.kind = CL_SETUP, .local = 1, .setup = 45};
    mproc__cluster_rank_setup(&h, init_fn, "never read", (size_t)1 << 62);
    CHECK(strstr(last_log, "no memory for a local pool setup"), "the setup logged \"%s\"",
          last_log);
    submit(8, 45, what_init_saw, NULL, 0);
    EXPECT(8, MPROC_ENOMEM, "no memory for the pool's setup", "");
    submit(9, 45, what_init_saw, NULL, 0);
    EXPECT(9, MPROC_ENOMEM, "no memory for the pool's setup", "");
    mproc__cluster_rank_drop(45);
    submit(10, 45, what_init_saw, NULL, 0);
    EXPECT(10, MPROC_EPROTO, "no setup", "");
    setup(46, 0, init_fn, "fortysix");
    submit(11, 46, what_init_saw, NULL, 0);
    EXPECT(11, 0, "", "fortysix");
    mproc__cluster_rank_drop(46);
}

/* The end of a pool that still has a task on the rank is logged and the
 * pool kept: the task ends well, and the pool takes more. A second end
 * ends it, and its tasks are then refused. */
static void test_drop_with_a_task(void)
{
    setup(44, 0, init_fn, "fortyfour");
    submit(4, 44, what_init_saw, NULL, 0);
    EXPECT(4, 0, "", "fortyfour");
    int ms = 300;
    submit(5, 44, nap_ms, &ms, sizeof ms);
    last_log[0] = '\0';
    mproc__cluster_rank_drop(44);
    CHECK(strstr(last_log, "dropped with tasks: kept"), "the drop logged \"%s\"", last_log);
    EXPECT(5, 0, "", "");
    submit(6, 44, what_init_saw, NULL, 0);
    EXPECT(6, 0, "", "fortyfour");
    mproc__cluster_rank_drop(44);
    submit(7, 44, what_init_saw, NULL, 0);
    EXPECT(7, MPROC_EPROTO, "no setup", "");
    mproc__cluster_rank_drop(44); /* unknown by now: nothing */
    mproc__cluster_rank_drop(0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_dup(MPI_COMM_SELF, &comm);
    mproc_set_logger(keep_log, MPROC_LOG_ERROR, NULL);
    test_missing_setup();
    test_malformed_setup();
    test_drop_with_a_task();
    test_setup_without_memory();
    mproc__cluster_rank_stop();
    if (rreq != MPI_REQUEST_NULL) {
        MPI_Cancel(&rreq);
        MPI_Wait(&rreq, MPI_STATUS_IGNORE);
    }
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    MPI_Comm_free(&comm);
    MPI_Finalize();
    printf("test_cluster_rank: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}

/* Managers when a client dies: a client killed while blocked in a
 * server-side wait (a queue get, a semaphore or lock acquire, a condition,
 * event or barrier wait) takes nothing with it, and its server thread and
 * fd go within a wait slice, over the socket and the local transport; a
 * local client that exits without mproc_manager_free leaves no arena
 * behind. Under every start method. */
#include "mgrutil.h"

#include <signal.h>
#include <stdatomic.h>

/* ---- the server's pid, threads and fds ----------------------------------------------------- */

static int probe_create(const mproc_value *args, void **state)
{
    (void)args;
    *state = NULL;
    return 0;
}

static int probe_pid(void *state, const mproc_value *args, mproc_value **r)
{
    (void)state;
    (void)args;
    return (*r = mproc_value_int(getpid())) ? 0 : MPROC_ENOMEM;
}

static const mproc_method_def probe_methods[] = {{"pid", probe_pid, NULL}};
static const mproc_type_def probe_type = {"Probe", probe_create, NULL, probe_methods, 1};

static mproc_manager *start_probed(int i)
{
    return mgr_start(i, &(mproc_manager_opts){.types = &probe_type, .ntypes = 1});
}

static mproc_proxy *create(mproc_manager *m, const char *typeid, mproc_value *args)
{
    mproc_proxy *p;
    int rc = create_with(m, typeid, args, &p);
    ck_assert_msg(rc == 0, "create %s -> %s", typeid, mproc_err_name(rc));
    return p;
}

static int64_t call_int(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    int rc = call_with(p, method, args, &r);
    ck_assert_msg(rc == 0, "%s -> %s", method, mproc_err_name(rc));
    int64_t x = -999;
    mproc_value_get_int(r, &x);
    mproc_value_free(r);
    return x;
}

/* method(args) gives true (false: false, or a failure). */
static bool call_true(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    bool b = false;
    if (call_with(p, method, args, &r) || mproc_value_get_bool(r, &b)) b = false;
    mproc_value_free(r);
    return b;
}

static void call_ok(mproc_proxy *p, const char *method, mproc_value *args)
{
    int rc = call_with(p, method, args, NULL);
    ck_assert_msg(rc == 0, "%s -> %s", method, mproc_err_name(rc));
}

static pid_t server_pid(mproc_manager *m)
{
    mproc_proxy *probe = create(m, "Probe", NULL);
    pid_t pid = (pid_t)call_int(probe, "pid", NULL);
    mproc_proxy_free(probe);
    return pid;
}

typedef struct usage {
    int threads, fds;
} usage;

static usage usage_of(pid_t pid)
{
    return (usage){tu_count_proc(pid, "task"), tu_count_proc(pid, "fd")};
}

/* Polls the server until it has want's threads and fds (true), or for
 * ms; *got is what it had last. */
static bool server_reaches(pid_t pid, usage want, int ms, usage *got)
{
    for (int k = 0;; k++) {
        *got = usage_of(pid);
        if (got->threads == want.threads && got->fds == want.fds) return true;
        if (k * 10 >= ms) return false;
        tu_sleep_ms(10);
    }
}

#define ASSERT_SERVER_BACK(pid, want)                                                              \
    do {                                                                                           \
        usage got_;                                                                                \
        ck_assert_msg(server_reaches(pid, want, 10000, &got_),                                     \
                      "the server kept a dead client's thread or fd: %d threads, %d fds, "         \
                      "want %d, %d",                                                               \
                      got_.threads, got_.fds, (want).threads, (want).fds);                         \
    } while (0)

static atomic_int *new_flag(void)
{
    void *p;
    TU_OK(mproc_arena_calloc(&p, sizeof(atomic_int)));
    return p;
}

static bool flag_set(atomic_int *f, int ms)
{
    for (int k = 0; k * 10 < ms && !atomic_load(f); k++) tu_sleep_ms(10);
    return atomic_load(f) != 0;
}

/* ---- clients -----------------------------------------------------------------------------------
 */

enum { K_QUEUE, K_SEM, K_LOCK, K_COND, K_EVENT, K_BARRIER };

/* What a client child gets: the address, how to connect, an object's
 * reference, and a flag it sets just before it blocks. */
typedef struct client_arg {
    char address[256];
    int kind;
    int socket; /* 1: stays on the socket (MPROC_MANAGER_LOCAL=0) */
    int leave;  /* leaving_client: 0 returns without freeing, 1 waits to be killed */
    atomic_int *about;
    size_t reflen;
    uint8_t ref[64];
} client_arg;

static client_arg make_arg(mproc_manager *m, mproc_proxy *p, int kind, int socket,
                           atomic_int *about)
{
    client_arg a = {.kind = kind, .socket = socket, .about = about};
    snprintf(a.address, sizeof a.address, "%s", mproc_manager_address(m));
    if (p) {
        mproc_value *v = mproc_proxy_ref(p);
        void *buf;
        size_t len;
        TU_OK(mproc_value_encode(v, &buf, &len));
        mproc_value_free(v);
        ck_assert_uint_le(len, sizeof a.ref);
        memcpy(a.ref, buf, len);
        a.reflen = len;
        free(buf);
    }
    return a;
}

/* In a child: connects and makes the proxy (0), or fails (nonzero). */
static int child_open(const client_arg *a, mproc_manager **m, mproc_proxy **p)
{
    if (a->socket) setenv("MPROC_MANAGER_LOCAL", "0", 1);
    if (mproc_manager_connect(m, a->address, NULL, 0)) return 1;
    *p = NULL;
    if (!a->reflen) return 0;
    mproc_value *v;
    if (mproc_value_decode(a->ref, a->reflen, NULL, &v)) return 2;
    int rc = mproc_proxy_from_value(*m, v, p);
    mproc_value_free(v);
    return rc ? 3 : 0;
}

/* Blocks in the object's wait with no timeout until it is killed. */
static int victim(void *arg)
{
    client_arg *a = arg;
    mproc_manager *m;
    mproc_proxy *p;
    if (child_open(a, &m, &p)) return 1;
    if (a->kind == K_COND && !call_true(p, "acquire", NULL)) return 2;
    const char *method = a->kind == K_QUEUE                      ? "get"
                         : a->kind == K_SEM || a->kind == K_LOCK ? "acquire"
                                                                 : "wait";
    atomic_store(a->about, 1);
    mproc_proxy_call(p, method, NULL, NULL);
    return 3; /* never: it is killed blocked */
}

/* Waits on the condition and must be notified. */
static int living_waiter(void *arg)
{
    client_arg *a = arg;
    mproc_manager *m;
    mproc_proxy *p;
    if (child_open(a, &m, &p)) return 1;
    if (!call_true(p, "acquire", NULL)) return 2;
    atomic_store(a->about, 1);
    int rc = call_true(p, "wait", args1(I(8000))) ? 0 : 4; /* notified */
    if (mproc_proxy_call(p, "release", NULL, NULL)) rc = rc ? rc : 5;
    mproc_proxy_free(p);
    mproc_manager_free(m);
    return rc;
}

static mproc_process *start(mproc_target_fn fn, client_arg *a, int i)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, a, sizeof *a,
                            &(mproc_process_opts){.start_method = tu_methods[i]}));
    TU_OK(mproc_process_start(p));
    return p;
}

static int join(mproc_process *p)
{
    TU_OK(mproc_process_join(p, 30000));
    int code = -1000;
    TU_OK(mproc_process_exitcode(p, &code));
    TU_OK(mproc_process_free(p));
    return code;
}

/* ---- a client killed blocked ----------------------------------------------------------------- */

static const char *const kind_name[] = {"Queue",     "Semaphore", "Lock",
                                        "Condition", "Event",     "Barrier"};

static mproc_value *kind_args(int kind)
{
    return kind == K_SEM ? args1(I(0)) : kind == K_BARRIER ? args1(I(2)) : NULL;
}

/* A get gives want (within 5 s). */
static void expect_get(mproc_proxy *q, const char *want, const char *why)
{
    mproc_value *r = NULL;
    int rc = call_with(q, "get", args1(I(5000)), &r);
    ck_assert_msg(rc == 0, "%s (get -> %s)", why, mproc_err_name(rc));
    const char *got = mproc_value_get_str(r, NULL);
    ck_assert_msg(got && strcmp(got, want) == 0, "%s: got %s, want %s", why, got ? got : "?", want);
    mproc_value_free(r);
}

/* The queue keeps its order while it grows, wraps and shrinks. */
static void fifo_through_growth(mproc_proxy *q)
{
    int64_t in = 0, out = 0;
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 150; k++) call_ok(q, "put", args1(I(in++)));
        while (out < in - 5 * round) ck_assert_int_eq(call_int(q, "get", args1(I(0))), out++);
    }
    while (out < in) ck_assert_int_eq(call_int(q, "get", args1(I(0))), out++);
    ck_assert_int_eq(call_int(q, "qsize", NULL), 0);
}

/* One client of kind's object is killed blocked in its wait, under start
 * method i, on the socket or the local transport. right_away: what it
 * waited for comes at once after its death (the server may not have seen
 * it yet: the grant must be given back); else only once the server is
 * back to its threads and fds. Then a living client must get it. */
static void killed_blocked(int i, mproc_manager *m, pid_t spid, mproc_proxy *obj, int kind,
                           int socket, bool right_away)
{
    usage base = usage_of(spid);
    atomic_int *about = new_flag(), *living_about = new_flag();
    if (kind == K_LOCK) ck_assert(call_true(obj, "acquire", NULL)); /* the victim waits for it */
    client_arg a = make_arg(m, obj, kind, socket, about);
    mproc_process *v = start(victim, &a, i);
    ck_assert_msg(flag_set(about, 20000), "the victim did not get to its wait");
    if (kind == K_COND) { /* the lock is free: it is in its wait */
        ck_assert(call_true(obj, "acquire", args1(I(10000))));
        call_ok(obj, "release", NULL);
    } else if (kind == K_BARRIER) {
        for (int k = 0; k < 1000 && call_int(obj, "n_waiting", NULL) != 1; k++) tu_sleep_ms(10);
        ck_assert_int_eq(call_int(obj, "n_waiting", NULL), 1);
    } else {
        tu_sleep_ms(300); /* into its wait */
    }
    mproc_process *w = NULL; /* a living waiter after it, for a Condition */
    client_arg la = make_arg(m, obj, kind, 0, living_about);
    if (kind == K_COND) {
        w = start(living_waiter, &la, i);
        ck_assert(flag_set(living_about, 20000));
        ck_assert(call_true(obj, "acquire", args1(I(10000))));
        call_ok(obj, "release", NULL);
    }
    TU_OK(mproc_process_kill(v));
    ck_assert_int_eq(join(v), -SIGKILL);
    usage with_living = {base.threads + (w ? 1 : 0), base.fds + (w ? 1 : 0)};
    if (!right_away) ASSERT_SERVER_BACK(spid, with_living);

    /* what it waited for comes; a living client gets it */
    switch (kind) {
    case K_QUEUE: /* a given-back item is still the first */
        call_ok(obj, "put", args1(S("item")));
        /* (a get before the server has given it back would have the
         * next: the item is on its way to the dead client until then) */
        if (right_away) ASSERT_SERVER_BACK(spid, with_living);
        call_ok(obj, "put", args1(S("second")));
        expect_get(obj, "item", "the item went to the dead client");
        expect_get(obj, "second", "the queue lost its order");
        fifo_through_growth(obj);
        break;
    case K_SEM:
        call_ok(obj, "release", NULL);
        ck_assert_msg(call_true(obj, "acquire", args1(I(5000))),
                      "the unit went to the dead client");
        break;
    case K_LOCK:
        call_ok(obj, "release", NULL);
        ck_assert_msg(call_true(obj, "acquire", args1(I(5000))),
                      "the lock went to the dead client");
        call_ok(obj, "release", NULL);
        break;
    case K_COND:
        ck_assert(call_true(obj, "acquire", args1(I(10000))));
        call_ok(obj, "notify", args1(I(1)));
        call_ok(obj, "release", NULL);
        ck_assert_msg(join(w) == 0, "the notification went to the dead client");
        break;
    case K_EVENT:
        call_ok(obj, "set", NULL);
        call_ok(obj, "clear", NULL);
        break;
    case K_BARRIER: /* it could not pass for the dead party: broken, as by a timeout */
        ck_assert(call_true(obj, "broken", NULL));
        call_ok(obj, "reset", NULL);
        break;
    }
    ASSERT_SERVER_BACK(spid, base); /* (the living waiter's connection too) */
    mproc_arena_free(about);
    mproc_arena_free(living_about);
}

static void blocked_client_dies(int i, int kind)
{
    mproc_manager *m = start_probed(i);
    pid_t spid = server_pid(m);
    mproc_proxy *obj = create(m, kind_name[kind], kind_args(kind));
    /* A grant racing with the death exists where the wait takes something. */
    bool takes = kind != K_EVENT && kind != K_BARRIER;
    for (int socket = 0; socket < 2; socket++) {
        killed_blocked(i, m, spid, obj, kind, socket, false);
        if (takes) killed_blocked(i, m, spid, obj, kind, socket, true);
    }
    mproc_proxy_free(obj);
    mproc_manager_free(m);
}

START_TEST(queue_get)
{
    blocked_client_dies(_i, K_QUEUE);
}
END_TEST

START_TEST(semaphore_acquire)
{
    blocked_client_dies(_i, K_SEM);
}
END_TEST

START_TEST(lock_acquire)
{
    blocked_client_dies(_i, K_LOCK);
}
END_TEST

START_TEST(condition_wait)
{
    blocked_client_dies(_i, K_COND);
}
END_TEST

START_TEST(event_wait)
{
    blocked_client_dies(_i, K_EVENT);
}
END_TEST

START_TEST(barrier_wait)
{
    blocked_client_dies(_i, K_BARRIER);
}
END_TEST

/* ---- local clients that go without freeing -------------------------------------------------- */

/* Connects, uses a dict, then returns without freeing anything (leave 0)
 * or waits to be killed (leave 1). */
static int leaving_client(void *arg)
{
    client_arg *a = arg;
    mproc_manager *m;
    mproc_proxy *p;
    if (child_open(a, &m, &p)) return 1;
    mproc_proxy *d;
    if (mproc_manager_create(m, "dict", NULL, &d)) return 2;
    mproc_value *args = lst(S("k"), I(1), NULL);
    int rc = mproc_proxy_call(d, "setitem", args, NULL);
    mproc_value_free(args);
    if (rc) return 3;
    atomic_store(a->about, 1);
    if (a->leave == 0) return 0;
    for (;;) pause();
}

START_TEST(clients_leave_no_arena)
{
    mproc_manager *m = start_probed(_i);
    pid_t spid = server_pid(m);
    usage base = usage_of(spid);
    atomic_int *about = new_flag();
    size_t before = tu_arena_allocated();
    for (int socket = 0; socket < 2; socket++)
        for (int k = 0; k < 6; k++) {
            client_arg a = make_arg(m, NULL, 0, socket, about);
            a.leave = k % 2;
            atomic_store(about, 0);
            mproc_process *p = start(leaving_client, &a, _i);
            if (a.leave) {
                ck_assert(flag_set(about, 20000));
                TU_OK(mproc_process_kill(p));
                ck_assert_int_eq(join(p), -SIGKILL);
            } else {
                ck_assert_int_eq(join(p), 0);
            }
        }
    ASSERT_SERVER_BACK(spid, base);
    size_t after = tu_arena_allocated();
    for (int k = 0; k < 500 && after != before; k++) {
        tu_sleep_ms(10);
        after = tu_arena_allocated();
    }
    ck_assert_msg(after == before, "12 clients that went without freeing left %ld bytes of arena",
                  (long)(after - before));
    mproc_arena_free(about);
    mproc_manager_free(m);
}
END_TEST

/* Whether pid is gone or a zombie. */
static bool dead(pid_t pid)
{
    char buf[256];
    const char *st = tu_proc_stat(pid, buf, sizeof buf);
    return !st || st[0] == 'Z' || st[0] == 'X';
}

/* A client that frees cleanly leaves nothing behind even when the server
 * is killed at once after: the free waits (briefly) for the server's
 * thread to let go of the channel, instead of leaving that to the
 * thread's next look (up to half a second later). */
START_TEST(clean_free_then_server_killed)
{
    mproc_manager *m = start_probed(_i);
    pid_t spid = server_pid(m);
    size_t before = tu_arena_allocated();
    for (int k = 0; k < 4; k++) {
        mproc_manager *c;
        TU_OK(mproc_manager_connect(&c, mproc_manager_address(m), NULL, 0));
        mproc_proxy *d = create(c, "dict", NULL);
        mproc_proxy_free(d);
        mproc_manager_free(c);
    }
    TU_OK(kill(spid, SIGKILL));
    for (int k = 0; k < 1000 && !dead(spid); k++) tu_sleep_ms(10);
    size_t after = tu_arena_allocated();
    /* What a killed server may lose: the allocator caches of its threads
     * (48 KiB each at most: its main, accept and one connection thread);
     * one local channel is about 113 KiB. */
    ck_assert_msg(after <= before + 3 * 48 * 1024,
                  "4 clients freed cleanly, then their server was killed: %ld bytes of arena lost",
                  (long)(after - before));
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_death");
    TCase *tc = tu_tcase(s, "killed_blocked", 150);
    tcase_add_loop_test(tc, queue_get, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, semaphore_acquire, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, lock_acquire, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, condition_wait, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, event_wait, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_wait, 0, TU_NMETHODS);
    tc = tu_tcase(s, "arena", 120);
    tcase_add_loop_test(tc, clients_leave_no_arena, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, clean_free_then_server_killed, 0, TU_NMETHODS);
    return tu_run(s);
}

/* Listener and Client: addresses (Unix path, temporary, abstract, TCP v4
 * and v6, port 0), timeouts, the authkey handshake (current and legacy,
 * legacy refused, wrong keys), the family authkey under every start
 * method, and interop with the machine's python3. */
#include "conn/address.h"
#include "conn/auth.h"
#include "testutil.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static const char KEY[] = "the right key \x01\x02\x03";
static const char BADKEY[] = "the wrong key";
#define KEYLEN    (sizeof KEY - 1)
#define BADKEYLEN (sizeof BADKEY - 1)
#define AUTH(k)                                                                                    \
    {                                                                                              \
        .key = (k), .key_len = strlen(k)                                                           \
    }

/* ---- a client in a thread ------------------------------------------------ */

typedef struct client_job {
    const char *addr;
    mproc_client_opts opts;
    int timeout_ms;
    int rc; /* of mproc_client, or of the exchange */
    pthread_t th;
} client_job;

/* Connects, receives one message and sends it back with "re:" before it. */
static void *client_main(void *arg)
{
    client_job *j = arg;
    mproc_conn *c;
    j->rc = mproc_client(&c, j->addr, &j->opts, j->timeout_ms ? j->timeout_ms : 10000);
    if (j->rc) return NULL;
    void *m;
    size_t n;
    if ((j->rc = mproc_conn_recv_bytes(c, &m, &n, 10000)) == 0) {
        char out[300] = "re:";
        if (n > 200) n = 200;
        memcpy(out + 3, m, n);
        free(m);
        j->rc = mproc_conn_send_bytes(c, out, n + 3);
    }
    mproc_conn_free(c);
    return NULL;
}

static void client_start(client_job *j)
{
    ck_assert_int_eq(pthread_create(&j->th, NULL, client_main, j), 0);
}

static int client_join(client_job *j)
{
    pthread_join(j->th, NULL);
    return j->rc;
}

/* Accepts one client, checks the ping/"re:" exchange. */
static int serve_one(mproc_listener *l, int timeout_ms)
{
    mproc_conn *c;
    int rc = mproc_listener_accept(l, &c, timeout_ms);
    if (rc) return rc;
    TU_OK(mproc_conn_send_bytes(c, "ping", 4));
    char buf[16];
    size_t n;
    TU_OK(mproc_conn_recv_bytes_into(c, buf, sizeof buf, &n, 10000));
    ck_assert_uint_eq(n, 7);
    ck_assert(memcmp(buf, "re:ping", 7) == 0);
    mproc_conn_free(c);
    return 0;
}

/* A listener at addr with lopts, one client with copts: both results. */
static void roundtrip(const char *addr, const mproc_listener_opts *lo, const mproc_client_opts *co,
                      int *accept_rc, int *client_rc)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, addr, lo));
    client_job j = {.addr = mproc_listener_address(l)};
    if (co) j.opts = *co;
    client_start(&j);
    *accept_rc = serve_one(l, 10000);
    *client_rc = client_join(&j);
    mproc_listener_free(l);
}

static void roundtrip_ok(const char *addr, const mproc_listener_opts *lo,
                         const mproc_client_opts *co)
{
    int a, c;
    roundtrip(addr, lo, co, &a, &c);
    ck_assert_msg(a == 0 && c == 0, "%s: accept %s, client %s", addr ? addr : "(temp)",
                  mproc_err_name(a), mproc_err_name(c));
}

/* ---- addresses ------------------------------------------------------------- */

START_TEST(address_strings_parse)
{
    mproc__addr a;
    TU_OK(mproc__addr_parse("/tmp/x.sock", &a));
    ck_assert(a.kind == MPROC__ADDR_UNIX && !a.abstract);
    TU_OK(mproc__addr_parse("sock", &a));
    ck_assert(a.kind == MPROC__ADDR_UNIX);
    TU_OK(mproc__addr_parse("./name:123", &a));
    ck_assert(a.kind == MPROC__ADDR_UNIX);
    TU_OK(mproc__addr_parse("@abs", &a));
    ck_assert(a.kind == MPROC__ADDR_UNIX && a.abstract && a.un.sun_path[0] == '\0');
    TU_OK(mproc__addr_parse("localhost:5000", &a));
    ck_assert(a.kind == MPROC__ADDR_TCP && strcmp(a.host, "localhost") == 0);
    ck_assert_str_eq(a.port, "5000");
    TU_OK(mproc__addr_parse(":0", &a));
    ck_assert(a.kind == MPROC__ADDR_TCP && a.host[0] == '\0');
    TU_OK(mproc__addr_parse("[::1]:80", &a));
    ck_assert(a.kind == MPROC__ADDR_TCP && strcmp(a.host, "::1") == 0);
    TU_RC(mproc__addr_parse("[::1]", &a), MPROC_EINVAL);
    TU_RC(mproc__addr_parse("[]:1", &a), MPROC_EINVAL);
    TU_RC(mproc__addr_parse("[::1]:99999", &a), MPROC_EINVAL);
    TU_RC(mproc__addr_parse("@", &a), MPROC_EINVAL);
    TU_RC(mproc__addr_parse("", &a), MPROC_EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    TU_RC(mproc__addr_parse(longp, &a), MPROC_ENAMETOOLONG);
    mproc_listener *l;
    TU_RC(mproc_listener_new(&l, longp, NULL), MPROC_ENAMETOOLONG);
    TU_RC(mproc_listener_new(&l, "/nonexistent-dir-mproc/x", NULL), MPROC_ENOENT);
    TU_RC(mproc_listener_new(NULL, NULL, NULL), MPROC_EINVAL);
    mproc_conn *c;
    TU_RC(mproc_client(&c, "", NULL, 100), MPROC_EINVAL);
    TU_RC(mproc_client(&c, NULL, NULL, 100), MPROC_EINVAL);
    mproc_listener_free(NULL);
    mproc_listener_close(NULL);
    ck_assert_str_eq(mproc_listener_address(NULL), "");
}
END_TEST

/* What looks like TCP (a ':' and no '/', or a '[' first) is TCP or
 * MPROC_EINVAL, never a Unix path; a '/' makes a path. */
START_TEST(address_kinds_and_bad_tcp_addresses)
{
    static const struct {
        const char *s;
        int want; /* MPROC__ADDR_TCP, MPROC__ADDR_UNIX, or an error */
    } cases[] = {
        {"127.0.0.1:70000", MPROC_EINVAL},
        {"127.0.0.1:65536", MPROC_EINVAL},
        {"127.0.0.1:", MPROC_EINVAL},
        {"127.0.0.1:abc", MPROC_EINVAL},
        {"localhost:8o", MPROC_EINVAL},
        {"host:-1", MPROC_EINVAL},
        {"host:+80", MPROC_EINVAL},
        {"host: 80", MPROC_EINVAL},
        {"host:80 ", MPROC_EINVAL},
        {"host:000080", MPROC_EINVAL},
        {"host:80:90", MPROC_EINVAL},
        {"my host:80", MPROC_EINVAL},
        {"sock:abc", MPROC_EINVAL},
        {"name:", MPROC_EINVAL},
        {":", MPROC_EINVAL},
        {":99999", MPROC_EINVAL},
        {"::1:80", MPROC_EINVAL},
        {"[::1]:99999", MPROC_EINVAL},
        {"[::1]:", MPROC_EINVAL},
        {"[::1]", MPROC_EINVAL},
        {"[::1]x:80", MPROC_EINVAL},
        {"[]:1", MPROC_EINVAL},
        {"[nothost]:80", MPROC_EINVAL},
        {"[127.0.0.1]:80", MPROC_EINVAL},
        {"[::1%]:80", MPROC_EINVAL},
        {"[::1", MPROC_EINVAL},
        {"127.0.0.1:0", MPROC__ADDR_TCP},
        {"localhost:65535", MPROC__ADDR_TCP},
        {":0", MPROC__ADDR_TCP},
        {"host-name_1.example:080", MPROC__ADDR_TCP},
        {"h:00000", MPROC__ADDR_TCP},
        {"[::1]:0", MPROC__ADDR_TCP},
        {"[fe80::1%lo]:0", MPROC__ADDR_TCP},
        {"[::ffff:127.0.0.1]:1", MPROC__ADDR_TCP},
        {"sock", MPROC__ADDR_UNIX},
        {"a b", MPROC__ADDR_UNIX},
        {"./name:123", MPROC__ADDR_UNIX},
        {"/tmp/a:99999", MPROC__ADDR_UNIX},
        {"dir/x:y", MPROC__ADDR_UNIX},
        {"[dir]/x:1", MPROC__ADDR_UNIX},
        {"@abs:70000", MPROC__ADDR_UNIX},
    };
    /* In an empty directory of its own, to see that nothing is created. */
    char dir[] = "/tmp/mproc-addr-XXXXXX", cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chdir(dir), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].s;
        mproc__addr a;
        int rc = mproc__addr_parse(s, &a);
        int got = rc ? rc : (int)a.kind;
        ck_assert_msg(got == cases[i].want, "\"%s\": got %d (%s), want %d", s, got,
                      rc ? mproc_err_name(rc) : "ok", cases[i].want);
        if (cases[i].want != MPROC_EINVAL) continue;
        mproc_listener *l = NULL;
        rc = mproc_listener_new(&l, s, NULL);
        if (rc == 0) mproc_listener_free(l);
        ck_assert_msg(rc == MPROC_EINVAL, "listener \"%s\": %s", s, mproc_err_name(rc));
        mproc_conn *c = NULL;
        rc = mproc_client(&c, s, NULL, 100);
        if (rc == 0) mproc_conn_free(c);
        ck_assert_msg(rc == MPROC_EINVAL, "client \"%s\": %s", s, mproc_err_name(rc));
        ck_assert_msg(access(s, F_OK) != 0, "\"%s\" was created in the working directory", s);
    }
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rmdir(dir) == 0, "something was left in %s", dir);
}
END_TEST

START_TEST(unix_path_listener)
{
    char dir[] = "/tmp/mproc-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/sock", dir);
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, path, NULL));
    ck_assert_str_eq(mproc_listener_address(l), path);
    mproc_listener *l2;
    TU_RC(mproc_listener_new(&l2, path, NULL), MPROC_EADDRINUSE);
    client_job j = {.addr = path};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_listener_close(l);
    mproc_listener_close(l); /* harmless */
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0); /* removed */
    mproc_conn *c;
    TU_RC(mproc_listener_accept(l, &c, 0), MPROC_ECLOSED);
    TU_RC(mproc_listener_fileno(l), MPROC_ECLOSED);
    TU_RC(mproc_client(&c, path, NULL, 1000), MPROC_ENOENT);
    mproc_listener_free(l);
    rmdir(dir);
}
END_TEST

START_TEST(temporary_address_is_private_and_removed)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, NULL));
    char path[256];
    snprintf(path, sizeof path, "%s", mproc_listener_address(l));
    ck_assert_msg(path[0] == '/', "address %s", path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    char *slash = strrchr(path, '/');
    *slash = '\0';
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0); /* private directory */
    *slash = '/';
    client_job j = {.addr = mproc_listener_address(l)};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_listener_free(l);
    ck_assert_int_ne(stat(path, &st), 0);
    *slash = '\0';
    ck_assert_int_ne(stat(path, &st), 0); /* the directory too */
    /* "" is the same as NULL */
    TU_OK(mproc_listener_new(&l, "", NULL));
    ck_assert(mproc_listener_address(l)[0] == '/');
    mproc_listener_free(l);
}
END_TEST

START_TEST(abstract_name)
{
    char name[64];
    snprintf(name, sizeof name, "@mproc-test-%d", (int)getpid());
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, name, NULL));
    ck_assert_str_eq(mproc_listener_address(l), name);
    client_job j = {.addr = name};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_listener_free(l);
    mproc_conn *c;
    TU_RC(mproc_client(&c, name, NULL, 1000), MPROC_ECONNREFUSED);
}
END_TEST

START_TEST(tcp_v4_port_0_reports_the_real_port)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, "127.0.0.1:0", NULL));
    const char *a = mproc_listener_address(l);
    ck_assert_msg(strncmp(a, "127.0.0.1:", 10) == 0 && atoi(a + 10) > 0, "address %s", a);
    client_job j = {.addr = a};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    /* "localhost:<port>" reaches it too */
    char loc[64];
    snprintf(loc, sizeof loc, "localhost:%s", a + 10);
    j = (client_job){.addr = loc};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    char addr[64];
    snprintf(addr, sizeof addr, "%s", a);
    mproc_listener_free(l);
    mproc_conn *c;
    TU_RC(mproc_client(&c, addr, NULL, 1000), MPROC_ECONNREFUSED);
}
END_TEST

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

START_TEST(tcp_v6)
{
    if (!have_ipv6_loopback()) {
        fprintf(stderr, "SKIP tcp_v6: this machine has no IPv6 loopback (::1)\n");
        return;
    }
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, "[::1]:0", &(mproc_listener_opts){.auth = AUTH(KEY)}));
    const char *a = mproc_listener_address(l);
    ck_assert_msg(strncmp(a, "[::1]:", 6) == 0 && atoi(a + 6) > 0, "address %s", a);
    client_job j = {.addr = a, .opts.auth = AUTH(KEY)};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_listener_free(l);
}
END_TEST

START_TEST(fileno_works_with_wait)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, NULL));
    int fd = mproc_listener_fileno(l);
    ck_assert_int_ge(fd, 0);
    mproc_waitable w = MPROC_WAITABLE_FD(fd);
    TU_RC(mproc_wait(&w, 1, 50, NULL), MPROC_ETIMEDOUT);
    mproc_conn *c;
    TU_OK(mproc_client(&c, mproc_listener_address(l), NULL, 1000));
    TU_OK(mproc_wait(&w, 1, 1000, NULL));
    ck_assert(w.ready);
    mproc_conn *s;
    TU_OK(mproc_listener_accept(l, &s, 0));
    TU_OK(mproc_conn_send_bytes(c, "x", 1));
    char b;
    size_t n;
    TU_OK(mproc_conn_recv_bytes_into(s, &b, 1, &n, 1000));
    mproc_conn_free(s);
    mproc_conn_free(c);
    mproc_listener_free(l);
}
END_TEST

/* ---- timeouts --------------------------------------------------------------- */

START_TEST(accept_and_connect_timeouts)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.backlog = 1}));
    mproc_conn *c;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_listener_accept(l, &c, 100), MPROC_ETIMEDOUT);
    long long ms = (mproc_now_ns() - t0) / 1000000;
    ck_assert_msg(ms >= 95 && ms < 2000, "accept waited %lld ms", ms);
    TU_RC(mproc_listener_accept(l, &c, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_listener_accept(l, &c, -5), MPROC_EINVAL);
    /* A full backlog: a connect waits, then times out. */
    mproc_conn *cs[16];
    int n = 0, rc = 0;
    while (n < 16 && (rc = mproc_client(&cs[n], mproc_listener_address(l), NULL, 50)) == 0) n++;
    ck_assert_msg(rc == MPROC_ETIMEDOUT, "connect: %s after %d", mproc_err_name(rc), n);
    for (int i = 0; i < n; i++) mproc_conn_free(cs[i]);
    /* A client that expects a challenge from a listener that never
     * accepts: the connect's own timeout ends it. */
    mproc_listener_free(l);
    TU_OK(mproc_listener_new(&l, NULL, NULL));
    t0 = mproc_now_ns();
    TU_RC(mproc_client(&c, mproc_listener_address(l), &(mproc_client_opts){.auth = AUTH(KEY)}, 150),
          MPROC_ETIMEDOUT);
    ms = (mproc_now_ns() - t0) / 1000000;
    ck_assert_msg(ms >= 140 && ms < 2000, "client waited %lld ms", ms);
    mproc_listener_free(l);
}
END_TEST

START_TEST(silent_client_cannot_hold_accept)
{
    mproc_listener *l;
    mproc_listener_opts lo = {.auth = {.key = KEY, .key_len = KEYLEN, .timeout_ms = 200}};
    TU_OK(mproc_listener_new(&l, NULL, &lo));
    mproc_conn *silent, *c;
    TU_OK(mproc_client(&silent, mproc_listener_address(l), NULL, 1000)); /* no handshake */
    long long t0 = mproc_now_ns();
    TU_RC(mproc_listener_accept(l, &c, MPROC_FOREVER), MPROC_EAUTH);
    long long ms = (mproc_now_ns() - t0) / 1000000;
    ck_assert_msg(ms >= 190 && ms < 3000, "accept took %lld ms", ms);
    /* the accept deadline itself: ETIMEDOUT */
    mproc_conn *silent2;
    TU_OK(mproc_client(&silent2, mproc_listener_address(l), NULL, 1000));
    TU_RC(mproc_listener_accept(l, &c, 100), MPROC_ETIMEDOUT);
    /* a real client is served afterwards */
    client_job j = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_conn_free(silent);
    mproc_conn_free(silent2);
    mproc_listener_free(l);
}
END_TEST

/* Accepts one client in a thread, keeping only the result. */
struct acc {
    mproc_listener *l;
    int rc;
};
static void *accept_thread(void *arg)
{
    struct acc *a = arg;
    mproc_conn *c;
    a->rc = mproc_listener_accept(a->l, &c, 10000);
    if (!a->rc) mproc_conn_free(c);
    return NULL;
}

/* The handshake of one connection never delays another's: a silent client
 * that connected first does not hold accept for its 10 s; the good client
 * behind it is returned at once. The silent one stays under way, and
 * fails on its own deadline. */
START_TEST(silent_client_does_not_delay_the_next)
{
    mproc_listener *l;
    mproc_listener_opts lo = {.auth = {.key = KEY, .key_len = KEYLEN, .timeout_ms = 10000}};
    TU_OK(mproc_listener_new(&l, "127.0.0.1:0", &lo));
    mproc_conn *silent[3];
    for (int k = 0; k < 3; k++) /* no key: they wait for a challenge they never answer */
        TU_OK(mproc_client(&silent[k], mproc_listener_address(l), NULL, 1000));
    for (int round = 0; round < 3; round++) {
        client_job j = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
        client_start(&j);
        long long t0 = mproc_now_ns();
        TU_OK(serve_one(l, 20000));
        long long ms = (mproc_now_ns() - t0) / 1000000;
        ck_assert_msg(ms < 5000, "round %d: accept took %lld ms behind silent clients", round, ms);
        TU_OK(client_join(&j));
    }
    /* The silent ones are still under way: a short accept times out. */
    mproc_conn *c;
    TU_RC(mproc_listener_accept(l, &c, 50), MPROC_ETIMEDOUT);
    for (int k = 0; k < 3; k++) mproc_conn_free(silent[k]);
    /* Gone before their handshake ended: each one's failure, then a wait. */
    for (int k = 0; k < 3; k++) TU_RC(mproc_listener_accept(l, &c, 5000), MPROC_EAUTH);
    TU_RC(mproc_listener_accept(l, &c, 50), MPROC_ETIMEDOUT);
    mproc_listener_free(l);
}
END_TEST

/* An event loop: it waits on the listener's fd, then accepts with timeout
 * 0. With a key the fd also wakes for handshakes under way, and each
 * accept moves them on, so a good client behind a silent one gets in. */
START_TEST(event_loop_accepts_through_fileno)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    mproc_conn *silent;
    TU_OK(mproc_client(&silent, mproc_listener_address(l), NULL, 1000));
    client_job j = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
    client_start(&j);
    int fd = mproc_listener_fileno(l);
    ck_assert_int_ge(fd, 0);
    mproc_waitable w = MPROC_WAITABLE_FD(fd);
    mproc_conn *c = NULL;
    int rc = MPROC_ETIMEDOUT, rounds = 0;
    long long t0 = mproc_now_ns();
    while (rc == MPROC_ETIMEDOUT && mproc_now_ns() - t0 < 8000000000LL) {
        if (mproc_wait(&w, 1, 1000, NULL) != 0) continue;
        rc = mproc_listener_accept(l, &c, 0);
        rounds++;
    }
    TU_OK(rc);
    /* (Usually in more than one accept; a client that answers within
     * microseconds lets the first one finish the whole handshake.) */
    ck_assert_int_ge(rounds, 1);
    TU_OK(mproc_conn_send_bytes(c, "ping", 4));
    char buf[16];
    size_t n;
    TU_OK(mproc_conn_recv_bytes_into(c, buf, sizeof buf, &n, 10000));
    ck_assert(n == 7 && memcmp(buf, "re:ping", 7) == 0);
    mproc_conn_free(c);
    TU_OK(client_join(&j));
    /* Nothing to do: the fd is not ready. */
    TU_RC(mproc_wait(&w, 1, 100, NULL), MPROC_ETIMEDOUT);
    mproc_conn_free(silent);
    mproc_listener_free(l);
}
END_TEST

/* Several threads accept at once, with silent clients about: each gets
 * one of the good clients. */
START_TEST(threads_accept_at_once_with_a_key)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    mproc_conn *silent[2];
    for (int k = 0; k < 2; k++)
        TU_OK(mproc_client(&silent[k], mproc_listener_address(l), NULL, 1000));
    enum { N = 4 };
    struct acc acc[N];
    pthread_t th[N];
    client_job jobs[N];
    for (int k = 0; k < N; k++) {
        acc[k] = (struct acc){l, -1};
        ck_assert_int_eq(pthread_create(&th[k], NULL, accept_thread, &acc[k]), 0);
    }
    for (int k = 0; k < N; k++) {
        jobs[k] = (client_job){.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
        client_start(&jobs[k]);
    }
    for (int k = 0; k < N; k++) {
        pthread_join(th[k], NULL);
        TU_OK(acc[k].rc);
    }
    for (int k = 0; k < N; k++) client_join(&jobs[k]); /* their exchange: not served here */
    for (int k = 0; k < 2; k++) mproc_conn_free(silent[k]);
    mproc_listener_free(l);
}
END_TEST

/* A fork child that inherits a listener with a key accepts on its own:
 * the parent's handshakes under way are not its to run, and the parent's
 * go on after the child is done. */
START_TEST(fork_child_accepts_with_a_key)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    mproc_conn *silent, *c;
    TU_OK(mproc_client(&silent, mproc_listener_address(l), NULL, 1000));
    TU_RC(mproc_listener_accept(l, &c, 100), MPROC_ETIMEDOUT); /* the silent one is under way */
    client_job j = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(30);
        client_start(&j);
        int rc = mproc_listener_accept(l, &c, 10000);
        if (rc == 0) mproc_conn_free(c);
        client_join(&j);
        mproc_listener_free(l);
        _exit(rc == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's accept failed (%#x)", st);
    client_start(&j);
    TU_OK(serve_one(l, 10000));
    TU_OK(client_join(&j));
    mproc_conn_free(silent);
    TU_RC(mproc_listener_accept(l, &c, 5000), MPROC_EAUTH); /* the silent one left */
    mproc_listener_free(l);
}
END_TEST

/* ---- authentication C <-> C ------------------------------------------------------ */

START_TEST(authenticated_over_every_kind_of_address)
{
    char abs[64];
    snprintf(abs, sizeof abs, "@mproc-auth-%d", (int)getpid());
    const char *addrs[] = {NULL, abs, "127.0.0.1:0"};
    mproc_listener_opts lo = {.auth = AUTH(KEY)};
    mproc_client_opts co = {.auth = AUTH(KEY)};
    for (int i = 0; i < 3; i++) roundtrip_ok(addrs[i], &lo, &co);
}
END_TEST

START_TEST(every_digest_works)
{
    const char *ds[] = {"sha256", "sha384", "sha3_256", "sha3_384", "md5"};
    for (int i = 0; i < 5; i++) {
        mproc_listener_opts lo = {.auth = {.key = KEY, .key_len = KEYLEN, .digest = ds[i]}};
        mproc_client_opts co = {.auth = {.key = KEY, .key_len = KEYLEN, .digest = ds[i]}};
        roundtrip_ok(NULL, &lo, &co);
    }
    mproc_listener *l;
    TU_RC(
        mproc_listener_new(
            &l, NULL, &(mproc_listener_opts){.auth = {.key = KEY, .key_len = 3, .digest = "sha1"}}),
        MPROC_EINVAL);
    TU_RC(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = {.key = KEY}}),
          MPROC_EINVAL); /* key_len 0 */
    TU_RC(mproc_listener_new(
              &l, NULL,
              &(mproc_listener_opts){
                  .auth = {.key = KEY, .key_len = 3, .digest = "md5", .reject_legacy = true}}),
          MPROC_EINVAL);
}
END_TEST

START_TEST(wrong_key_fails_both_sides_and_listener_goes_on)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, "127.0.0.1:0", &(mproc_listener_opts){.auth = AUTH(KEY)}));
    for (int round = 0; round < 3; round++) {
        client_job bad = {.addr = mproc_listener_address(l), .opts.auth = AUTH(BADKEY)};
        client_start(&bad);
        TU_RC(serve_one(l, 5000), MPROC_EAUTH);
        TU_RC(client_join(&bad), MPROC_EAUTH);
        /* a client without a key: it never answers the challenge, so the
         * listener's handshake fails on the first message it reads */
        client_job none = {.addr = mproc_listener_address(l)};
        client_start(&none);
        TU_RC(serve_one(l, 5000), MPROC_EAUTH);
        client_join(&none);
        client_job good = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
        client_start(&good);
        TU_OK(serve_one(l, 5000));
        TU_OK(client_join(&good));
    }
    mproc_listener_free(l);
}
END_TEST

/* The current handshake on the wire, by hand: the challenge names
 * SHA-256, carries 40 fresh random bytes, and the answer is
 * "{sha256}" + HMAC-SHA256 over "{sha256}" + the bytes. */
START_TEST(current_handshake_on_the_wire)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    uint8_t first[40];
    for (int round = 0; round < 2; round++) {
        mproc_conn *c;
        TU_OK(mproc_client(&c, mproc_listener_address(l), NULL, 1000));
        struct acc acc = {l, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, accept_thread, &acc), 0);
        uint8_t msg[256];
        size_t n;
        TU_OK(mproc_conn_recv_bytes_into(c, msg, sizeof msg, &n, 5000));
        ck_assert_uint_eq(n, 11 + 8 + 40);
        ck_assert(memcmp(msg, "#CHALLENGE#{sha256}", 19) == 0);
        if (round == 0)
            memcpy(first, msg + 19, 40);
        else
            ck_assert(memcmp(first, msg + 19, 40) != 0); /* fresh */
        uint8_t resp[8 + MPROC__HMAC_MAX];
        memcpy(resp, "{sha256}", 8);
        size_t mlen;
        TU_OK(mproc__hmac("sha256", KEY, KEYLEN, msg + 11, n - 11, resp + 8, &mlen));
        ck_assert_uint_eq(mlen, 32);
        TU_OK(mproc_conn_send_bytes(c, resp, 8 + mlen));
        TU_OK(mproc_conn_recv_bytes_into(c, msg, sizeof msg, &n, 5000));
        ck_assert(n == 9 && memcmp(msg, "#WELCOME#", 9) == 0);
        /* now the listener answers our challenge */
        TU_OK(mproc_deliver_challenge(c, &(mproc_auth)AUTH(KEY), 5000));
        pthread_join(th, NULL);
        TU_OK(acc.rc);
        mproc_conn_free(c);
    }
    mproc_listener_free(l);
}
END_TEST

/* A legacy (Python <= 3.11) client by hand: it answers the whole current
 * challenge with a bare HMAC-MD5. Accepted by default, refused with
 * reject_legacy. */
static int legacy_client(const char *addr, int *verdict_ok)
{
    mproc_conn *c;
    int rc = mproc_client(&c, addr, NULL, 1000);
    if (rc) return rc;
    uint8_t msg[256], mac[MPROC__HMAC_MAX];
    size_t n, mlen;
    TU_OK(mproc_conn_recv_bytes_into(c, msg, sizeof msg, &n, 5000));
    TU_OK(mproc__hmac("md5", KEY, KEYLEN, msg + 11, n - 11, mac, &mlen));
    ck_assert_uint_eq(mlen, 16);
    TU_OK(mproc_conn_send_bytes(c, mac, mlen));
    TU_OK(mproc_conn_recv_bytes_into(c, msg, sizeof msg, &n, 5000));
    *verdict_ok = n == 9 && memcmp(msg, "#WELCOME#", 9) == 0;
    if (*verdict_ok) { /* the second direction: a legacy challenge from us */
        uint8_t chal[31] = "#CHALLENGE#";
        for (int i = 11; i < 31; i++) chal[i] = (uint8_t)(rand() & 0xff);
        TU_OK(mproc_conn_send_bytes(c, chal, 31));
        TU_OK(mproc_conn_recv_bytes_into(c, msg, sizeof msg, &n, 5000));
        TU_OK(mproc__hmac("md5", KEY, KEYLEN, chal + 11, 20, mac, &mlen));
        *verdict_ok = n == 16 && memcmp(msg, mac, 16) == 0; /* a bare HMAC-MD5 */
        TU_OK(mproc_conn_send_bytes(c, *verdict_ok ? "#WELCOME#" : "#FAILURE#", 9));
    }
    mproc_conn_free(c);
    return 0;
}

START_TEST(legacy_client_accepted_unless_refused)
{
    for (int refuse = 0; refuse < 2; refuse++) {
        mproc_listener *l;
        mproc_listener_opts lo = {.auth = {.key = KEY, .key_len = KEYLEN, .reject_legacy = refuse}};
        TU_OK(mproc_listener_new(&l, NULL, &lo));
        struct acc acc = {l, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, accept_thread, &acc), 0);
        int ok = -1;
        TU_OK(legacy_client(mproc_listener_address(l), &ok));
        pthread_join(th, NULL);
        if (refuse) {
            ck_assert_int_eq(ok, 0);
            TU_RC(acc.rc, MPROC_EAUTH);
        } else {
            ck_assert_int_eq(ok, 1);
            TU_OK(acc.rc);
        }
        mproc_listener_free(l);
    }
}
END_TEST

/* A legacy listener by hand: a bare 20-byte challenge, a bare 16-byte
 * HMAC-MD5 expected; then it answers the client's challenge with MD5. */
struct legacy_server {
    mproc_listener *l;
    int welcomed; /* 1: it welcomed the client; 0: it refused it */
};
static void *legacy_server_main(void *arg)
{
    struct legacy_server *s = arg;
    mproc_conn *c;
    s->welcomed = -1;
    if (mproc_listener_accept(s->l, &c, 10000)) return NULL;
    uint8_t chal[31] = "#CHALLENGE#", resp[256], want[MPROC__HMAC_MAX];
    for (int i = 11; i < 31; i++) chal[i] = (uint8_t)(rand() & 0xff);
    size_t n, wlen;
    if (mproc_conn_send_bytes(c, chal, 31) ||
        mproc_conn_recv_bytes_into(c, resp, sizeof resp, &n, 5000) ||
        mproc__hmac("md5", KEY, KEYLEN, chal + 11, 20, want, &wlen))
        goto out;
    s->welcomed = n == wlen && memcmp(resp, want, n) == 0;
    mproc_conn_send_bytes(c, s->welcomed ? "#WELCOME#" : "#FAILURE#", 9);
    if (s->welcomed) {
        if (mproc_conn_recv_bytes_into(c, resp, sizeof resp, &n, 5000)) goto out;
        mproc__hmac("md5", KEY, KEYLEN, resp + 11, n - 11, want, &wlen);
        mproc_conn_send_bytes(c, want, wlen);
        mproc_conn_recv_bytes_into(c, resp, sizeof resp, &n, 5000);
    }
out:
    mproc_conn_free(c);
    return NULL;
}

START_TEST(legacy_listener_answered_unless_refused)
{
    for (int refuse = 0; refuse < 2; refuse++) {
        struct legacy_server s = {0};
        TU_OK(mproc_listener_new(&s.l, NULL, NULL));
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, legacy_server_main, &s), 0);
        mproc_conn *c = NULL;
        mproc_client_opts co = {.auth = {.key = KEY, .key_len = KEYLEN, .reject_legacy = refuse}};
        int rc = mproc_client(&c, mproc_listener_address(s.l), &co, 10000);
        pthread_join(th, NULL);
        if (refuse) {
            TU_RC(rc, MPROC_EAUTH);
            ck_assert_int_eq(s.welcomed, 0);
        } else {
            TU_OK(rc);
            ck_assert_int_eq(s.welcomed, 1);
            mproc_conn_free(c);
        }
        mproc_listener_free(s.l);
    }
}
END_TEST

START_TEST(many_sequential_clients)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    for (int i = 0; i < 200; i++) {
        client_job j = {.addr = mproc_listener_address(l), .opts.auth = AUTH(KEY)};
        client_start(&j);
        TU_OK(serve_one(l, 5000));
        TU_OK(client_join(&j));
    }
    mproc_listener_free(l);
}
END_TEST

/* ---- the family authkey ------------------------------------------------------ */

START_TEST(family_authkey_get_and_set)
{
    uint8_t k[MPROC_AUTHKEY_MAX], k2[64];
    size_t n;
    TU_OK(mproc_get_authkey(k, sizeof k, &n));
    ck_assert_uint_eq(n, 32);
    TU_RC(mproc_get_authkey(k2, 8, &n), MPROC_ETOOSMALL);
    ck_assert_uint_eq(n, 32);
    TU_OK(mproc_get_authkey(k2, sizeof k2, &n));
    ck_assert(memcmp(k, k2, 32) == 0); /* stable */
    TU_RC(mproc_get_authkey(NULL, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_set_authkey(NULL, 3), MPROC_EINVAL);
    TU_RC(mproc_set_authkey("x", 0), MPROC_EINVAL);
    TU_RC(mproc_set_authkey(k, MPROC_AUTHKEY_MAX + 1), MPROC_EINVAL);
    TU_OK(mproc_set_authkey("abc", 3));
    TU_OK(mproc_get_authkey(k2, sizeof k2, &n));
    ck_assert(n == 3 && memcmp(k2, "abc", 3) == 0);
}
END_TEST

typedef struct family_arg {
    uint8_t key[64];
    size_t len;
    char addr[128];
} family_arg;

/* In the child: the same key as the parent, and a client that uses it. */
static int family_child(void *p)
{
    family_arg *a = p;
    uint8_t k[MPROC_AUTHKEY_MAX];
    size_t n;
    if (mproc_get_authkey(k, sizeof k, &n) || n != a->len || memcmp(k, a->key, n) != 0) return 2;
    mproc_conn *c;
    if (mproc_client(&c, a->addr, &(mproc_client_opts){.auth.family_key = true}, 10000)) return 3;
    int rc = mproc_conn_send_bytes(c, "hi", 2);
    mproc_conn_free(c);
    return rc ? 4 : 0;
}

START_TEST(family_authkey_inherited_and_used)
{
    family_arg a = {0};
    if (_i == 1) TU_OK(mproc_set_authkey("a key set before the start", 26));
    TU_OK(mproc_get_authkey(a.key, sizeof a.key, &a.len));
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, &(mproc_listener_opts){.auth.family_key = true}));
    snprintf(a.addr, sizeof a.addr, "%s", mproc_listener_address(l));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, family_child, &a, sizeof a, TU_OPTS));
    TU_OK(mproc_process_start(p));
    mproc_conn *c;
    int rc = mproc_listener_accept(l, &c, 20000);
    if (!rc) {
        char b[4];
        size_t n;
        TU_OK(mproc_conn_recv_bytes_into(c, b, sizeof b, &n, 10000));
        mproc_conn_free(c);
    }
    TU_OK(mproc_process_join(p, 20000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_msg(code == 0 && rc == 0, "%s: child exit %d, accept %s",
                  mproc_start_method_name(tu_methods[_i]), code, mproc_err_name(rc));
    TU_OK(mproc_process_free(p));
    mproc_listener_free(l);
}
END_TEST

/* A child that inherits the listener by fork and closes it does not
 * remove the parent's socket path. */
START_TEST(fork_child_closing_keeps_the_path)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, NULL, NULL));
    pid_t pid = fork();
    if (pid == 0) {
        mproc_listener_free(l);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    struct stat sb;
    ck_assert_int_eq(stat(mproc_listener_address(l), &sb), 0);
    client_job j = {.addr = mproc_listener_address(l)};
    client_start(&j);
    TU_OK(serve_one(l, 5000));
    TU_OK(client_join(&j));
    mproc_listener_free(l);
}
END_TEST

/* ---- python3 ---------------------------------------------------------------- */

/* role fam addr keyhex: connects (client) or listens and prints its
 * address (listener); exit 3 on AuthenticationError. Then: echoes one
 * message with "py:", sends a pattern of BIG bytes, checks the BIG bytes
 * it gets back, answers "done" or "bad". */
static const char py_peer[] =
    "import sys\n"
    "from multiprocessing.connection import Client, Listener\n"
    "from multiprocessing import AuthenticationError\n"
    "role, fam, addr, keyhex = sys.argv[1:5]\n"
    "key = bytes.fromhex(keyhex) if keyhex != '-' else None\n"
    "BIG = 64 * 1024 * 1024 + 7\n"
    "def pattern(n, seed):\n"
    "    block = bytes((i * 7 + seed) & 255 for i in range(256))\n"
    "    return (block * (n // 256 + 1))[:n]\n"
    "def conv(a):\n"
    "    if fam == 'tcp':\n"
    "        h, p = a.rsplit(':', 1)\n"
    "        return (h.strip('[]'), int(p))\n"
    "    if fam == 'abstract':\n"
    "        return '\\0' + a[1:]\n"
    "    return a\n"
    "try:\n"
    "    if role == 'client':\n"
    "        c = Client(conv(addr), authkey=key)\n"
    "    else:\n"
    "        l = Listener(conv(addr), authkey=key)\n"
    "        a = l.address\n"
    "        print('%s:%d' % a[:2] if fam == 'tcp' else addr, flush=True)\n"
    "        c = l.accept()\n"
    "except AuthenticationError as e:\n"
    "    print('python:', repr(e), file=sys.stderr)\n"
    "    sys.exit(3)\n"
    "m = c.recv_bytes()\n"
    "c.send_bytes(b'py:' + m)\n"
    "c.send_bytes(pattern(BIG, 1))\n"
    "got = c.recv_bytes()\n"
    "c.send_bytes(b'done' if got == pattern(BIG, 2) else b'bad')\n"
    "c.close()\n";

#define BIG ((size_t)64 * 1024 * 1024 + 7)

typedef struct py_proc {
    pid_t pid;
    int out; /* its stdout */
} py_proc;

/* The interpreter: MPROC_TEST_PYTHON (CTest runs the suite again with each
 * python3.N it found), else the machine's python3. */
static const char *py_exe(void)
{
    const char *e = getenv("MPROC_TEST_PYTHON");
    return e && *e ? e : "python3";
}

static py_proc py_start(const char *role, const char *fam, const char *addr, const char *key)
{
    char hex[2 * MPROC_AUTHKEY_MAX + 2] = "-";
    if (key)
        for (size_t i = 0; key[i]; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)key[i]);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        execlp(py_exe(), py_exe(), "-c", py_peer, role, fam, addr, hex, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    return (py_proc){pid, p[0]};
}

/* Its exit code, or -1 if it had to be killed at the timeout. */
static int py_wait(py_proc *p, int timeout_ms)
{
    int st;
    long long end = mproc_now_ns() + (long long)timeout_ms * 1000000;
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (mproc_now_ns() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            close(p->out);
            return -1;
        }
        tu_sleep_ms(5);
    }
    close(p->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* One line of its stdout (without the newline). */
static bool py_line(py_proc *p, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (poll(&pf, 1, timeout_ms) <= 0) return false;
        if (read(p->out, buf + n, 1) != 1) return false;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = '\0';
    return true;
}

static bool is_pattern(const unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(((i & 255) * 7 + seed) & 255)) return false;
    return true;
}

/* Our side of the exchange with py_peer. */
static void exchange_with_python(mproc_conn *c)
{
    TU_OK(mproc_conn_send_bytes(c, "hello", 5));
    void *m;
    size_t n;
    TU_OK(mproc_conn_recv_bytes(c, &m, &n, 20000));
    ck_assert(n == 8 && memcmp(m, "py:hello", 8) == 0);
    free(m);
    TU_OK(mproc_conn_recv_bytes(c, &m, &n, 30000));
    ck_assert_uint_eq(n, BIG);
    ck_assert(is_pattern(m, n, 1));
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)m)[i] = (unsigned char)(((i & 255) * 7 + 2) & 255);
    TU_OK(mproc_conn_send_bytes(c, m, n));
    free(m);
    TU_OK(mproc_conn_recv_bytes(c, &m, &n, 30000));
    ck_assert(n == 4 && memcmp(m, "done", 4) == 0);
    free(m);
}

/* Our side got rc (with c on success): refused, it must be an
 * authentication error on both sides (python exits 3); otherwise the
 * exchange runs and python exits 0. */
static void end_with_python(int rc, mproc_conn *c, py_proc *py, bool refused)
{
    if (refused) {
        TU_RC(rc, MPROC_EAUTH);
        ck_assert_int_eq(py_wait(py, 20000), 3);
        return;
    }
    TU_OK(rc);
    exchange_with_python(c);
    mproc_conn_free(c);
    ck_assert_int_eq(py_wait(py, 30000), 0);
}

static bool python_is_legacy(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import sys; sys.exit(sys.version_info >= (3, 12))'",
             py_exe());
    int st = system(cmd);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const char *fams[] = {"unix", "abstract", "tcp"};

static void listener_addr_for(int fam, char *buf, size_t cap, char *dir)
{
    if (fam == 0) {
        strcpy(dir, "/tmp/mproc-py-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(buf, cap, "%s/sock", dir);
    } else if (fam == 1) {
        snprintf(buf, cap, "@mproc-py-%d-%ld", (int)getpid(), (long)mproc_now_ns());
    } else {
        snprintf(buf, cap, "127.0.0.1:0");
    }
}

START_TEST(python_client_to_our_listener)
{
    char addr[128], dir[32] = "";
    listener_addr_for(_i, addr, sizeof addr, dir);
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, addr, &(mproc_listener_opts){.auth = AUTH(KEY)}));
    const char *a = mproc_listener_address(l);
    /* a wrong key first: an error on both sides */
    py_proc bad = py_start("client", fams[_i], a, BADKEY);
    mproc_conn *c;
    end_with_python(mproc_listener_accept(l, &c, 20000), NULL, &bad, true);
    /* the listener goes on: the right key */
    py_proc py = py_start("client", fams[_i], a, KEY);
    int rc = mproc_listener_accept(l, &c, 20000);
    end_with_python(rc, c, &py, false);
    mproc_listener_free(l);
    if (dir[0]) rmdir(dir);
}
END_TEST

START_TEST(our_client_to_python_listener)
{
    char addr[128], dir[32] = "", got[128];
    for (int wrong = 1; wrong >= 0; wrong--) {
        listener_addr_for(_i, addr, sizeof addr, dir);
        py_proc py = py_start("listener", fams[_i], addr, KEY);
        ck_assert(py_line(&py, got, sizeof got, 20000));
        mproc_conn *c;
        int rc =
            mproc_client(&c, got, &(mproc_client_opts){.auth = AUTH(wrong ? BADKEY : KEY)}, 20000);
        end_with_python(rc, c, &py, wrong);
        if (dir[0]) rmdir(dir);
    }
}
END_TEST

/* Python 3.11 and older speak the legacy handshake only: refusing legacy
 * fails both sides. Python 3.12+ speaks the current one: it is let in. */
START_TEST(python_legacy_refused_when_switched_off)
{
    bool legacy = python_is_legacy();
    fprintf(stderr, "note: %s speaks the %s handshake\n", py_exe(), legacy ? "legacy" : "current");
    mproc_listener *l;
    mproc_listener_opts lo = {.auth = {.key = KEY, .key_len = KEYLEN, .reject_legacy = true}};
    TU_OK(mproc_listener_new(&l, NULL, &lo));
    py_proc py = py_start("client", "unix", mproc_listener_address(l), KEY);
    mproc_conn *c;
    int rc = mproc_listener_accept(l, &c, 20000);
    end_with_python(rc, c, &py, legacy);
    mproc_listener_free(l);

    char dir[32], addr[128], got[128];
    listener_addr_for(0, addr, sizeof addr, dir);
    py = py_start("listener", "unix", addr, KEY);
    ck_assert(py_line(&py, got, sizeof got, 20000));
    mproc_client_opts co = {.auth = {.key = KEY, .key_len = KEYLEN, .reject_legacy = true}};
    rc = mproc_client(&c, got, &co, 20000);
    end_with_python(rc, c, &py, legacy);
    rmdir(dir);
}
END_TEST

START_TEST(python_without_authkey)
{
    mproc_listener *l;
    TU_OK(mproc_listener_new(&l, "127.0.0.1:0", NULL));
    py_proc py = py_start("client", "tcp", mproc_listener_address(l), NULL);
    mproc_conn *c;
    int rc = mproc_listener_accept(l, &c, 20000);
    end_with_python(rc, c, &py, false);
    mproc_listener_free(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("listener");
    TCase *tc = tu_tcase(s, "addresses", 30);
    tcase_add_test(tc, address_strings_parse);
    tcase_add_test(tc, address_kinds_and_bad_tcp_addresses);
    tcase_add_test(tc, unix_path_listener);
    tcase_add_test(tc, temporary_address_is_private_and_removed);
    tcase_add_test(tc, abstract_name);
    tcase_add_test(tc, tcp_v4_port_0_reports_the_real_port);
    tcase_add_test(tc, tcp_v6);
    tcase_add_test(tc, fileno_works_with_wait);
    tcase_add_test(tc, fork_child_closing_keeps_the_path);
    tc = tu_tcase(s, "timeouts", 30);
    tcase_add_test(tc, accept_and_connect_timeouts);
    tcase_add_test(tc, silent_client_cannot_hold_accept);
    tcase_add_test(tc, silent_client_does_not_delay_the_next);
    tcase_add_test(tc, event_loop_accepts_through_fileno);
    tcase_add_test(tc, threads_accept_at_once_with_a_key);
    tcase_add_test(tc, fork_child_accepts_with_a_key);
    tc = tu_tcase(s, "auth", 60);
    tcase_add_test(tc, authenticated_over_every_kind_of_address);
    tcase_add_test(tc, every_digest_works);
    tcase_add_test(tc, wrong_key_fails_both_sides_and_listener_goes_on);
    tcase_add_test(tc, current_handshake_on_the_wire);
    tcase_add_test(tc, legacy_client_accepted_unless_refused);
    tcase_add_test(tc, legacy_listener_answered_unless_refused);
    tcase_add_test(tc, many_sequential_clients);
    tc = tu_tcase(s, "family", 60);
    tcase_add_test(tc, family_authkey_get_and_set);
    tcase_add_loop_test(tc, family_authkey_inherited_and_used, 0, TU_NMETHODS);
    tc = tu_tcase(s, "python", 120);
    tcase_add_loop_test(tc, python_client_to_our_listener, 0, 3);
    tcase_add_loop_test(tc, our_client_to_python_listener, 0, 3);
    tcase_add_test(tc, python_legacy_refused_when_switched_off);
    tcase_add_test(tc, python_without_authkey);
    return tu_run(s);
}

/* Managers against hostile and broken clients: whatever one connection
 * sends, the server goes on serving every other client. Each test starts
 * a manager under every start method, attacks it over raw connections
 * (mproc_client), then checks that the owner's connection and a fresh
 * client still work. */
#include "manager/manager.h"
#include "mgrutil.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

/* A raw connection to the manager, authenticated with the family key
 * (auth true) or not at all. */
static mproc_conn *raw(mproc_manager *m, bool auth)
{
    mproc_conn *c;
    mproc_client_opts o = {.auth = {.family_key = auth}};
    TU_OK(mproc_client(&c, mproc_manager_address(m), &o, 10000));
    return c;
}

static void send_raw(mproc_conn *c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(mproc_conn_fileno(c), p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* the server may have hung up already */
        p += n;
        len -= (size_t)n;
    }
}

/* The server hangs up on c: reading gives end of file (or a reset) within
 * timeout_ms; replies sent before are skipped. */
static bool hung_up(mproc_conn *c, int timeout_ms)
{
    char buf[4096];
    struct pollfd p = {.fd = mproc_conn_fileno(c), .events = POLLIN};
    int64_t end = (int64_t)time(NULL) * 1000 + timeout_ms;
    while ((int64_t)time(NULL) * 1000 <= end + 1000) {
        if (poll(&p, 1, timeout_ms) <= 0) return false;
        ssize_t n = recv(p.fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    }
    return false;
}

/* Sends v (freed) as one message and reads the reply. */
static mproc_value *ask(mproc_conn *c, mproc_value *v)
{
    TU_OK(mproc_conn_send_value(c, v));
    mproc_value_free(v);
    mproc_value *r;
    TU_OK(mproc_conn_recv_value(c, &r, 10000));
    return r;
}

/* The reply is [kind, code, ...]. */
static void expect_reply(mproc_value *r, int kind, int code)
{
    int64_t k = -1, rc = 0;
    mproc_value_get_int(mproc_value_list_get(r, 0), &k);
    mproc_value_get_int(mproc_value_list_get(r, 1), &rc);
    char *s = mproc_value_repr_alloc(r);
    ck_assert_msg(k == kind && (code == 0 || rc == code), "reply %s, want kind %d code %s", s, kind,
                  mproc_err_name(code));
    free(s);
    mproc_value_free(r);
}

/* The manager serves: through m, and through a new connection. */
static void still_serves(mproc_manager *m)
{
    mproc_proxy *l;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    mproc_value *v = I(7);
    TU_OK(mproc_proxy_append(l, v));
    mproc_value_free(v);
    size_t n;
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, 1);
    mproc_proxy_free(l);
    mproc_manager *m2;
    TU_OK(mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0));
    mproc_proxy *d;
    TU_OK(mproc_manager_create(m2, "dict", NULL, &d));
    TU_OK(mproc_proxy_len(d, &n));
    mproc_proxy_free(d);
    mproc_manager_free(m2);
}

START_TEST(random_bytes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    srand(1234 + _i);
    for (int round = 0; round < 20; round++) {
        mproc_conn *c = raw(m, true);
        size_t len = 1 + (size_t)rand() % 4096;
        unsigned char buf[4096];
        for (size_t k = 0; k < len; k++) buf[k] = (unsigned char)rand();
        if (round % 2) buf[0] = 0; /* a plausible length: the payload is garbage */
        send_raw(c, buf, len);
        if (round % 3 == 0) still_serves(m); /* while it is still connected */
        mproc_conn_free(c);
    }
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

START_TEST(huge_frame_header)
{
    mproc_manager *m = mgr_start(_i, NULL);
    /* a 64-bit length of 2^63, then of 2^64 - 1 */
    const unsigned char h63[] = {0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    const unsigned char hmax[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    /* a negative 32-bit length, and one over the manager's 64 MiB */
    const unsigned char hneg[] = {0x80, 0, 0, 1};
    const unsigned char hbig[] = {0x04, 0, 0, 1};
    const unsigned char *hs[] = {h63, hmax, hneg, hbig};
    const size_t lens[] = {sizeof h63, sizeof hmax, sizeof hneg, sizeof hbig};
    for (int k = 0; k < 4; k++) {
        mproc_conn *c = raw(m, true);
        send_raw(c, hs[k], lens[k]);
        ck_assert_msg(hung_up(c, 5000), "header %d: the server kept the connection", k);
        mproc_conn_free(c);
        still_serves(m);
    }
    mproc_manager_free(m);
}
END_TEST

START_TEST(truncated_frames)
{
    mproc_manager *m = mgr_start(_i, NULL);
    /* a request cut short, a header cut short, a 1 MiB frame of which 10
     * bytes come: then the client goes */
    void *enc;
    size_t len;
    mproc_value *req = lst(I(MOP_CREATE), S("list"), mproc_value_nil(), NULL);
    TU_OK(mproc_value_encode(req, &enc, &len));
    mproc_value_free(req);
    unsigned char frame[64] = {0, 0, 0, (unsigned char)len};
    memcpy(frame + 4, enc, len);
    free(enc);
    const unsigned char big[] = {0, 0x10, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    for (int k = 0; k < 4; k++) {
        mproc_conn *c = raw(m, true);
        if (k == 0) send_raw(c, frame, 4 + len - 1);
        if (k == 1) send_raw(c, frame, 2);
        if (k == 2) send_raw(c, big, sizeof big);
        if (k == 3) { /* one whole request, then half of the next */
            send_raw(c, frame, 4 + len);
            send_raw(c, frame, 5);
            mproc_value *r;
            TU_OK(mproc_conn_recv_value(c, &r, 10000));
            expect_reply(r, MREP_OK_PROXY, 0);
        }
        mproc_conn_free(c);
        still_serves(m);
    }
    mproc_manager_free(m);
}
END_TEST

START_TEST(malformed_cbor)
{
    mproc_manager *m = mgr_start(_i, NULL);
    static const unsigned char bad[][8] = {
        {0xff},                                           /* a break outside anything */
        {0x82, 0x01},                                     /* a list of two with one item */
        {0x1c},                                           /* a reserved additional value */
        {0x01, 0x02},                                     /* trailing bytes */
        {0xd9, 0x12, 0x34, 0x01},                         /* an unknown tag */
        {0x7f, 0x61, 0x61},                               /* an unfinished indefinite string */
        {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* a list of 2^64 - 1 items */
        {0x62, 0xc3, 0x28},                               /* a string that is not UTF-8 */
    };
    static const size_t lens[] = {1, 2, 1, 2, 4, 3, 8, 3};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        mproc_conn *c = raw(m, true);
        TU_OK(mproc_conn_send_bytes(c, bad[k], lens[k]));
        /* the server says why, then hangs up */
        mproc_value *r;
        TU_OK(mproc_conn_recv_value(c, &r, 10000));
        expect_reply(r, MREP_SERVER_ERR, MPROC_EPROTO);
        ck_assert_msg(hung_up(c, 5000), "case %zu: still connected", k);
        mproc_conn_free(c);
    }
    /* nesting deeper than the decoder's limit */
    unsigned char deep[200];
    memset(deep, 0x81, sizeof deep);
    deep[sizeof deep - 1] = 0x00;
    mproc_conn *c = raw(m, true);
    TU_OK(mproc_conn_send_bytes(c, deep, sizeof deep));
    mproc_value *r;
    TU_OK(mproc_conn_recv_value(c, &r, 10000));
    expect_reply(r, MREP_SERVER_ERR, MPROC_E2BIG);
    ck_assert(hung_up(c, 5000));
    mproc_conn_free(c);
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

START_TEST(wrong_shapes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_conn *c = raw(m, true);
    /* requests that are not requests: an error each, the connection stays */
    mproc_value *shapes[] = {
        I(5),
        S("create"),
        mproc_value_map(),
        lst(NULL),
        lst(S("x"), NULL),
        lst(I(99), NULL),
        lst(I(-1), NULL),
        lst(I(MOP_CALL), NULL),
        lst(I(MOP_CALL), S("1"), S("len"), NULL),
        lst(I(MOP_CALL), I(-5), S("len"), NULL),
        lst(I(MOP_INCREF), NULL),
        lst(I(MOP_CREATE), S("list"), S("not a list"), NULL),
        lst(mproc_value_float(1.0), NULL),
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        expect_reply(ask(c, shapes[k]), MREP_SERVER_ERR, MPROC_EPROTO);
    /* unknown types, objects and methods */
    expect_reply(ask(c, lst(I(MOP_CREATE), S("nope"), mproc_value_nil(), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_CREATE), I(3), NULL)), MREP_SERVER_ERR, MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(UINT64_MAX), S("len"), NULL)),
                 MREP_SERVER_ERR, MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_INCREF), I(123456), NULL)), MREP_SERVER_ERR, MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_DECREF), I(123456), NULL)), MREP_SERVER_ERR, MPROC_ENOENT);
    mproc_value *r = ask(c, lst(I(MOP_CREATE), S("list"), mproc_value_nil(), NULL));
    uint64_t id = 0;
    TU_OK(mproc_value_get_uint(mproc_value_list_get(r, 1), &id));
    expect_reply(r, MREP_OK_PROXY, 0);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("nope"), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id), I(1), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("append"), I(1), NULL)),
                 MREP_SERVER_ERR, MPROC_EPROTO);
    /* wrong argument types: the method fails */
    expect_reply(
        ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("getitem"), lst(S("0"), NULL), NULL)),
        MREP_METHOD_ERR, MPROC_EINVAL);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("extend"), lst(I(1), NULL), NULL)),
                 MREP_METHOD_ERR, MPROC_EINVAL);
    expect_reply(ask(c, lst(I(MOP_CREATE), S("Value"), lst(S("i"), S("x"), NULL), NULL)),
                 MREP_METHOD_ERR, MPROC_EINVAL);
    expect_reply(ask(c, lst(I(MOP_CREATE), S("Barrier"), lst(I(-3), NULL), NULL)), MREP_METHOD_ERR,
                 MPROC_EINVAL);
    expect_reply(ask(c, lst(I(MOP_CREATE), S("Queue"), lst(S("big"), NULL), NULL)), MREP_METHOD_ERR,
                 MPROC_EINVAL);
    /* a decref too many */
    expect_reply(ask(c, lst(I(MOP_DECREF), mproc_value_uint(id), NULL)), MREP_OK, 0);
    expect_reply(ask(c, lst(I(MOP_DECREF), mproc_value_uint(id), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("len"), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    /* another client's object cannot be dropped by this one */
    mproc_proxy *l;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    mproc_value *ref = mproc_proxy_ref(l);
    uint32_t t;
    uint64_t lid;
    TU_OK(mproc_value_get_handle(ref, &t, &lid));
    mproc_value_free(ref);
    expect_reply(ask(c, lst(I(MOP_DECREF), mproc_value_uint(lid), NULL)), MREP_SERVER_ERR,
                 MPROC_ENOENT);
    size_t n;
    TU_OK(mproc_proxy_len(l, &n));
    mproc_proxy_free(l);
    mproc_conn_free(c);
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

/* A method name or a type name holding a NUL byte names nothing: it is
 * refused whole (not cut at the NUL, "len\0junk" calling len), and the
 * connection goes on. */
START_TEST(nul_in_names)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_conn *c = raw(m, true);
    mproc_value *r = ask(c, lst(I(MOP_CREATE), S("list"), mproc_value_nil(), NULL));
    uint64_t id = 0;
    TU_OK(mproc_value_get_uint(mproc_value_list_get(r, 1), &id));
    expect_reply(r, MREP_OK_PROXY, 0);
    static const char *const methods[] = {"len\0junk", "len\0", "append\0x", "\0len"};
    static const size_t mlens[] = {8, 4, 8, 4};
    for (int k = 0; k < 4; k++)
        expect_reply(ask(c, lst(I(MOP_CALL), mproc_value_uint(id),
                                mproc_value_strn(methods[k], mlens[k]), lst(I(1), NULL), NULL)),
                     MREP_SERVER_ERR, MPROC_EINVAL);
    expect_reply(
        ask(c, lst(I(MOP_CREATE), mproc_value_strn("list\0x", 6), mproc_value_nil(), NULL)),
        MREP_SERVER_ERR, MPROC_EINVAL);
    expect_reply(ask(c, lst(I(MOP_CREATE), mproc_value_strn("dict\0", 5), mproc_value_nil(), NULL)),
                 MREP_SERVER_ERR, MPROC_EINVAL);
    /* nothing was called: the list is still empty; the same names whole work */
    r = ask(c, lst(I(MOP_CALL), mproc_value_uint(id), S("len"), NULL));
    int64_t n = -1;
    mproc_value_get_int(mproc_value_list_get(r, 1), &n);
    ck_assert_int_eq(n, 0);
    expect_reply(r, MREP_OK, 0);
    mproc_conn_free(c);
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

START_TEST(idle_clients_dropped)
{
    mproc_manager *m = mgr_start(_i, &(mproc_manager_opts){.idle_timeout_ms = 300});
    mproc_conn *silent = raw(m, true), *partial = raw(m, true);
    const unsigned char part[] = {0, 0, 0, 100, 0x83, 1};
    send_raw(partial, part, sizeof part);
    int64_t t0 = mproc_now_ns();
    ck_assert(hung_up(silent, 5000));
    ck_assert(hung_up(partial, 5000));
    double s = (double)(mproc_now_ns() - t0) / 1e9;
    ck_assert_msg(s < 3, "dropped after %.2f s", s);
    mproc_conn_free(partial);
    mproc_conn_free(silent);
    /* the owner's own connection was idle too: it is gone */
    tu_sleep_ms(600);
    mproc_proxy *l;
    int rc = mproc_manager_create(m, "list", NULL, &l);
    ck_assert_msg(rc != 0 && rc != MPROC_EMETHOD, "idle owner: %s", mproc_err_name(rc));
    /* a new client that keeps talking is served */
    mproc_manager *m2;
    TU_OK(mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0));
    TU_OK(mproc_manager_create(m2, "list", NULL, &l));
    for (int k = 0; k < 6; k++) {
        tu_sleep_ms(100);
        size_t n;
        TU_OK(mproc_proxy_len(l, &n));
    }
    mproc_proxy_free(l);
    mproc_manager_free(m2);
    mproc_manager_free(m);
}
END_TEST

START_TEST(thousand_connections)
{
    int n = TU_ASAN ? 200 : 1000;
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_conn **cs = calloc((size_t)n, sizeof *cs);
    for (int k = 0; k < n; k++) cs[k] = raw(m, true);
    still_serves(m);
    /* every one is served */
    for (int k = 0; k < n; k += 1)
        expect_reply(ask(cs[k], lst(I(MOP_INCREF), I(1000000 + k), NULL)), MREP_SERVER_ERR,
                     MPROC_ENOENT);
    for (int k = 0; k < n; k++) mproc_conn_free(cs[k]);
    free(cs);
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

/* Beyond max_connections the server closes a new connection at once,
 * before any handshake: the client's connect fails (its handshake finds
 * the connection closed). */
START_TEST(beyond_max_connections)
{
    mproc_manager *m = mgr_start(_i, &(mproc_manager_opts){.max_connections = 4});
    mproc_conn *cs[3];
    for (int k = 0; k < 3; k++) cs[k] = raw(m, true); /* with m: 4 */
    mproc_conn *over;
    mproc_client_opts co = {.auth = {.family_key = true}};
    int rc = mproc_client(&over, mproc_manager_address(m), &co, 10000);
    ck_assert_msg(rc != 0, "over the limit, a connection was accepted");
    mproc_manager *m2;
    rc = mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0);
    ck_assert_msg(rc != 0, "over the limit, a manager client connected");
    mproc_proxy *l;
    /* the ones within still work; one leaving makes room */
    expect_reply(ask(cs[2], lst(I(MOP_DECREF), I(1), NULL)), MREP_SERVER_ERR, MPROC_ENOENT);
    mproc_conn_free(cs[2]);
    bool served = false;
    for (int k = 0; k < 100 && !served; k++) {
        if (mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0) == 0) {
            served = mproc_manager_create(m2, "list", NULL, &l) == 0;
            if (served) mproc_proxy_free(l);
            mproc_manager_free(m2);
        }
        if (!served) tu_sleep_ms(20);
    }
    ck_assert(served);
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    mproc_proxy_free(l);
    mproc_conn_free(cs[1]);
    mproc_conn_free(cs[0]);
    mproc_manager_free(m);
}
END_TEST

/* Clients that do not authenticate: whatever they send is never decoded
 * as a request (a shutdown request here), and they are dropped. */
START_TEST(unauthenticated_clients)
{
    mproc_manager *m = mgr_start(_i, NULL);
    void *enc;
    size_t len;
    mproc_value *req = lst(I(MOP_SHUTDOWN), NULL);
    TU_OK(mproc_value_encode(req, &enc, &len));
    mproc_value_free(req);
    for (int k = 0; k < 4; k++) {
        mproc_conn *c = raw(m, false);
        if (k == 0) { /* a request in place of the answer */
            /* (the server may have dropped it already: its handshake is
             * bounded by what is left of a 200 ms accept window) */
            (void)mproc_conn_send_bytes(c, enc, len);
            (void)mproc_conn_send_bytes(c, enc, len);
        } else if (k == 1) { /* random bytes */
            unsigned char junk[512];
            for (size_t j = 0; j < sizeof junk; j++) junk[j] = (unsigned char)(j * 7 + 3);
            send_raw(c, junk, sizeof junk);
        } else if (k == 2) { /* an answer far over the handshake's cap */
            const unsigned char h[] = {0, 0x10, 0, 0};
            send_raw(c, h, sizeof h);
        }
        /* k == 3: silence; the server gives up on the handshake */
        ck_assert_msg(hung_up(c, 15000), "case %d: still connected", k);
        mproc_conn_free(c);
        still_serves(m);
    }
    free(enc);
    /* a client with the wrong key */
    mproc_conn *c;
    mproc_client_opts o = {.auth = {.key = "wrong", .key_len = 5}};
    TU_RC(mproc_client(&c, mproc_manager_address(m), &o, 10000), MPROC_EAUTH);
    still_serves(m);
    mproc_manager_free(m);
}
END_TEST

/* A client that connects and never authenticates (silent, or stopping
 * half-way through its answer) is dropped after handshake_timeout_ms: it
 * holds no server thread or connection slot for longer. */
START_TEST(silent_handshakes_dropped)
{
    mproc_manager *m = mgr_start(_i, &(mproc_manager_opts){.handshake_timeout_ms = 300});
    mproc_conn *silent = raw(m, false), *partial = raw(m, false);
    const unsigned char part[] = {0, 0, 0, 40, '{', 's'}; /* an answer's start, no more */
    send_raw(partial, part, sizeof part);
    int64_t t0 = mproc_now_ns();
    ck_assert(hung_up(silent, 5000));
    ck_assert(hung_up(partial, 5000));
    double s = (double)(mproc_now_ns() - t0) / 1e9;
    ck_assert_msg(s < 3, "dropped after %.2f s", s);
    mproc_conn_free(partial);
    mproc_conn_free(silent);
    still_serves(m);
    TU_RC(mproc_manager_start(&(mproc_manager *){NULL},
                              &(mproc_manager_opts){.handshake_timeout_ms = -1}),
          MPROC_EINVAL);
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_hostile");
    TCase *tc = tu_tcase(s, "bytes", 60);
    tcase_add_loop_test(tc, random_bytes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, huge_frame_header, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, truncated_frames, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, malformed_cbor, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, wrong_shapes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, nul_in_names, 0, TU_NMETHODS);
    tc = tu_tcase(s, "connections", 90);
    tcase_add_loop_test(tc, idle_clients_dropped, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, thousand_connections, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, beyond_max_connections, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, unauthenticated_clients, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, silent_handshakes_dropped, 0, TU_NMETHODS);
    return tu_run(s);
}

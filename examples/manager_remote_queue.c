/* manager_remote_queue — C twin of seed 004's "Remote managers" (practical
 * examples 10.1, 10.2 and 10.3): a manager server on a TCP port serving a
 * queue under the name "get_queue", one client that puts into it and
 * another that gets from it.
 *
 * The seed describes the server and the two clients without their code;
 * these programs from the Python documentation of multiprocessing.managers
 * stand for them (the clients' results printed, on loopback):
 *
 *     # 10.1, the server
 *     from multiprocessing.managers import BaseManager
 *     from queue import Queue
 *     queue = Queue()
 *     class QueueManager(BaseManager): pass
 *     QueueManager.register('get_queue', callable=lambda: queue)
 *     m = QueueManager(address=('', 50000), authkey=b'abracadabra')
 *     s = m.get_server()
 *     s.serve_forever()
 *
 *     # 10.2, a client that puts
 *     from multiprocessing.managers import BaseManager
 *     class QueueManager(BaseManager): pass
 *     QueueManager.register('get_queue')
 *     m = QueueManager(address=('127.0.0.1', 50000), authkey=b'abracadabra')
 *     m.connect()
 *     queue = m.get_queue()
 *     print("Client 1: putting 'hello'")
 *     queue.put('hello')
 *
 *     # 10.3, a client that gets
 *     ... the same five lines as 10.2, then
 *     print(f"Client 2: got {queue.get()!r}")
 *
 * Output (10.1 prints nothing; this program first says where its server
 * listens):
 *
 *     Server: listening on 127.0.0.1:PORT
 *     Client 1: putting 'hello'
 *     Client 2: got 'hello'
 *
 * In C the three programs are three processes of this one program, so
 * that it runs on its own: the parent starts the server process, then the
 * two clients, and at the end asks the server to shut down.
 *  - The server (10.1): mproc_manager_serve in a child process, on
 *    "127.0.0.1:0" (port 0: the kernel picks a free port, so the example
 *    never collides with anything already listening), with the authkey
 *    "abracadabra". Python's queue = Queue() and register('get_queue',
 *    callable=lambda: queue) are one shared object in its options: a
 *    built-in "Queue" the server makes when it starts and shares under the
 *    name "get_queue", so every client gets the same queue. The server
 *    reports the address it listens on, with the real port, through a pipe
 *    given to it in its argument bytes (a connection handle travels to a
 *    child as an fd under every start method).
 *  - The clients (10.2, 10.3): each gets only the address string as its
 *    argument bytes, connects with mproc_manager_connect and the same
 *    authkey, and m.get_queue() is mproc_manager_get(m, "get_queue").
 *    Client 2 is started first: its get blocks in the server until client 1
 *    has put 'hello' (client 1 prints its line before it puts, so the two
 *    lines always come in this order).
 *  - The end: serve_forever() is stopped from outside, as Ctrl-C would:
 *    the parent connects and calls mproc_manager_shutdown (a standalone
 *    server accepts it from any client that knows the key), then joins the
 *    server process.
 * Everything is bounded: the server must report within 10 s, client 2's
 * get waits at most 10 s, and every join at most 20 s (then the process is
 * killed and the example fails).
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESS    "127.0.0.1:0"
#define AUTHKEY    "abracadabra"
#define TIMEOUT_MS 10000

/* ---- 10.1: the server ------------------------------------------------------------- */

/* Called by mproc_manager_serve once it listens: the address, with the
 * port the kernel picked, goes to the parent. */
static void report_address(const char *address, void *ud)
{
    MPROC_CHECK(mproc_conn_send_bytes(ud, address, strlen(address)));
}

/* The server process's target. Its argument bytes: the write end of the
 * pipe for the address. */
static int queue_server(void *arg)
{
    mproc_conn *report = *(mproc_conn **)arg;

    /* queue = Queue(); QueueManager.register('get_queue', callable=lambda: queue) */
    const mproc_manager_shared shared[] = {{.name = "get_queue", .typeid = "Queue"}};
    /* m = QueueManager(address=..., authkey=b'abracadabra');
     * m.get_server().serve_forever() */
    mproc_manager_opts opts = {
        .address = ADDRESS,
        .authkey = AUTHKEY,
        .authkey_len = strlen(AUTHKEY),
        .shared = shared,
        .nshared = 1,
    };
    MPROC_CHECK(mproc_manager_serve(&opts, report_address, report));

    /* Shut down by a client. */
    mproc_conn_free(report);
    return 0;
}

/* ---- 10.2 and 10.3: the clients ----------------------------------------------------- */

/* m = QueueManager(address=..., authkey=b'abracadabra'); m.connect();
 * queue = m.get_queue() */
static mproc_manager *connect_queue(const char *address, mproc_proxy **queue)
{
    mproc_manager *m;
    MPROC_CHECK(mproc_manager_connect(&m, address, AUTHKEY, strlen(AUTHKEY)));
    MPROC_CHECK(mproc_manager_get(m, "get_queue", queue));
    return m;
}

/* Client 1. Its argument bytes: the server's address, NUL-terminated. */
static int client_put(void *arg)
{
    mproc_proxy *queue;
    mproc_manager *m = connect_queue(arg, &queue);

    /* Printed (and written out) before the put, so this line comes before
     * client 2's, which can only be printed after the put. */
    printf("Client 1: putting 'hello'\n");
    fflush(stdout);

    /* queue.put('hello') */
    MPROC_CHECK(mproc_proxy_callf(queue, "put", NULL, "s", "hello"));

    mproc_proxy_free(queue);
    mproc_manager_free(m);
    return 0;
}

/* Client 2. Its argument bytes: the server's address, NUL-terminated. */
static int client_get(void *arg)
{
    mproc_proxy *queue;
    mproc_manager *m = connect_queue(arg, &queue);

    /* queue.get(timeout=10): waits in the server for client 1's put. */
    mproc_value *item = NULL;
    MPROC_CHECK(mproc_proxy_callf(queue, "get", &item, "i", TIMEOUT_MS));

    /* print(f"Client 2: got {queue.get()!r}"): !r shows the quotes. */
    char *repr = mproc_value_repr_alloc(item);
    if (repr == NULL) MPROC_CHECK(MPROC_ENOMEM);
    printf("Client 2: got %s\n", repr);
    free(repr);
    mproc_value_free(item);

    mproc_proxy_free(queue);
    mproc_manager_free(m);
    return 0;
}

/* ---- the parent ---------------------------------------------------------------------- */

/* Starts target(arg) as a process named name. */
static mproc_process *start(mproc_target_fn target, const void *arg, size_t len, const char *name,
                            bool daemon)
{
    mproc_process *p;
    mproc_process_opts opts = {.name = name, .daemon = daemon};
    MPROC_CHECK(mproc_process_new(&p, target, arg, len, &opts));
    MPROC_CHECK(mproc_process_start(p));
    return p;
}

/* Joins p within 20 s (else kills it) and frees it; false if it did not
 * exit with code 0. */
static bool join(mproc_process *p)
{
    const char *name = mproc_process_name(p);
    int rc = mproc_process_join(p, 2 * TIMEOUT_MS);
    if (rc == MPROC_ETIMEDOUT) {
        fprintf(stderr, "manager_remote_queue: %s did not finish in time: killed\n", name);
        MPROC_CHECK(mproc_process_kill(p));
        MPROC_CHECK(mproc_process_join(p, MPROC_FOREVER));
    } else {
        MPROC_CHECK(rc);
    }
    int code;
    MPROC_CHECK(mproc_process_exitcode(p, &code));
    if (code != 0 && rc != MPROC_ETIMEDOUT)
        fprintf(stderr, "manager_remote_queue: %s exited with code %d\n", name, code);
    MPROC_CHECK(mproc_process_free(p));
    return rc == 0 && code == 0;
}

int main(void)
{
    /* The server, a daemon (it goes if the parent dies), with the write end
     * of a pipe to report its address on. */
    mproc_conn *address_in, *address_out;
    MPROC_CHECK(mproc_pipe(&address_in, &address_out, false));
    fflush(stdout); /* nothing buffered is copied into a forked child */
    mproc_process *server =
        start(queue_server, &address_out, sizeof address_out, "QueueManager", true);
    mproc_conn_free(address_out); /* the server has its own: EOF if it dies */

    char address[512];
    size_t n = 0;
    int rc = mproc_conn_recv_bytes_into(address_in, address, sizeof address - 1, &n, TIMEOUT_MS);
    if (rc == MPROC_EEOF) {
        fprintf(stderr, "manager_remote_queue: the server exited before it listened\n");
        join(server);
        return 1;
    }
    if (rc < 0) {
        mproc_process_kill(server);
        join(server);
        MPROC_CHECK(rc);
    }
    address[n] = '\0';
    mproc_conn_free(address_in);
    printf("Server: listening on %s\n", address);
    fflush(stdout);

    /* Client 2 first (its get waits), then client 1; each gets the
     * address. */
    mproc_process *getter = start(client_get, address, n + 1, "Client-2", false);
    mproc_process *putter = start(client_put, address, n + 1, "Client-1", false);
    bool ok = join(putter);
    ok = join(getter) && ok;

    /* Stop serve_forever(): a client asks the server to shut down. */
    mproc_manager *m;
    MPROC_CHECK(mproc_manager_connect(&m, address, AUTHKEY, strlen(AUTHKEY)));
    MPROC_CHECK(mproc_manager_shutdown(m));
    mproc_manager_free(m);
    ok = join(server) && ok;
    return ok ? 0 : 1;
}

/* mproc-manager — a standalone manager server: serves mproc's built-in
 * manager types (list, dict, set, Namespace, Value, Array, Queue,
 * JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition,
 * Event, Barrier) on an address, to clients that connect with
 * mproc_manager_connect and the same authkey. The twin of Python's
 *
 *     m = BaseManager(address=..., authkey=...)   # SyncManager's types
 *     m.get_server().serve_forever()
 *
 * run as a program of its own (mproc_manager_serve in this process).
 *
 * It prints the address clients use, one line on stdout, once it listens;
 * it serves until a client asks it to shut down (mproc_manager_shutdown)
 * or it gets SIGTERM or SIGINT, then exits 0. See usage() for the options,
 * the authkey's sources and the exit statuses.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread and taken by one
 * thread with sigwait, which shuts the server down as a client would (it
 * connects with the key and asks), so the listener is closed and a
 * temporary socket path removed as after a client's shutdown. A second
 * signal while that is under way ends the process at once (removing a
 * socket path it can see).
 */
#include <mproc.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "mproc-manager"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [OPTIONS] [ADDRESS]\n"
            "\n"
            "Serves mproc's built-in manager types (list, dict, set, Namespace, Value, Array,\n"
            "Queue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,\n"
            "Barrier) to clients that connect with mproc_manager_connect and the same\n"
            "authkey. Once listening it prints the address clients use (the real port for\n"
            "port 0, the path of a temporary socket) as one line on stdout. It serves until\n"
            "a client asks it to shut down (mproc_manager_shutdown) or it gets SIGTERM or\n"
            "SIGINT.\n"
            "\n"
            "ADDRESS (also -a, --address):\n"
            "  /path/to/sock    a Unix socket path (a relative one that looks like\n"
            "                   name:123 is written ./name:123)\n"
            "  @name            a Linux abstract Unix socket name\n"
            "  host:port        TCP over IPv4 (port 0 picks a free port; empty host: every\n"
            "                   interface)\n"
            "  [v6addr]:port    TCP over IPv6\n"
            "  default          a new private temporary Unix socket path (in $TMPDIR or\n"
            "                   /tmp), removed when the server stops\n"
            "\n"
            "Options:\n"
            "  -a, --address ADDRESS    where to listen (see above)\n"
            "  -k, --authkey-file PATH  read the authkey from PATH: its bytes as they are,\n"
            "                           except that one trailing newline (\\n or \\r\\n) is\n"
            "                           dropped\n"
            "      --idle-timeout MS    close a client connection idle for MS milliseconds\n"
            "                           (default 0: never)\n"
            "      --max-connections N  most client connections at once (default 4096)\n"
            "      --max-message BYTES  the largest request or reply (default 67108864,\n"
            "                           64 MiB; at least 1024): a call over it fails\n"
            "                           with MPROC_EMSGSIZE and the client goes on\n"
            "  -h, --help               show this help and exit\n"
            "\n"
            "The authkey (1 to %d bytes) is required: from --authkey-file, or else from\n"
            "the environment variable MPROC_AUTHKEY, read as\n"
            "  hex:HEXDIGITS            the bytes those hex digits spell (any bytes), e.g.\n"
            "                           MPROC_AUTHKEY=hex:616263 is the key \"abc\"\n"
            "  anything else            the variable's own bytes, e.g.\n"
            "                           MPROC_AUTHKEY=abracadabra\n"
            "--authkey-file wins over MPROC_AUTHKEY. Prefer the file: the environment of\n"
            "a process can be read by others of the same user.\n"
            "\n"
            "Exit status: 0 after a shutdown (asked by a client, or SIGTERM/SIGINT), 1 when\n"
            "it cannot serve (the key file cannot be read, the address cannot be listened\n"
            "on), 2 for a usage error (bad option or argument, no authkey).\n",
            MPROC_AUTHKEY_MAX);
}

/* A usage error: the message, a pointer to --help, exit status 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    exit(2);
}

/* ---- the authkey ---------------------------------------------------------------------- */

static unsigned char authkey[MPROC_AUTHKEY_MAX];
static size_t authkey_len;

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* MPROC_AUTHKEY: "hex:..." or the raw bytes. Usage errors exit 2. */
static void key_from_env(const char *s)
{
    if (strncmp(s, "hex:", 4) == 0) {
        const char *h = s + 4;
        size_t n = strlen(h);
        if (n == 0 || n % 2 != 0)
            usage_error("MPROC_AUTHKEY: an even, non-zero number of hex digits must follow "
                        "'hex:'");
        if (n / 2 > MPROC_AUTHKEY_MAX)
            usage_error("MPROC_AUTHKEY: the key is longer than %d bytes", MPROC_AUTHKEY_MAX);
        for (size_t i = 0; i < n; i += 2) {
            int hi = hexval((unsigned char)h[i]), lo = hexval((unsigned char)h[i + 1]);
            if (hi < 0 || lo < 0)
                usage_error("MPROC_AUTHKEY: '%c%c' is not a hex byte", h[i], h[i + 1]);
            authkey[i / 2] = (unsigned char)(hi << 4 | lo);
        }
        authkey_len = n / 2;
        return;
    }
    size_t n = strlen(s);
    if (n == 0) usage_error("MPROC_AUTHKEY is empty");
    if (n > MPROC_AUTHKEY_MAX)
        usage_error("MPROC_AUTHKEY: the key is longer than %d bytes", MPROC_AUTHKEY_MAX);
    memcpy(authkey, s, n);
    authkey_len = n;
}

/* --authkey-file PATH: the file's bytes less one trailing newline. A file
 * that cannot be read exits 1; an empty or too long key exits 2. */
static void key_from_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, PROG ": cannot open the authkey file %s: %s\n", path, strerror(errno));
        exit(1);
    }
    unsigned char buf[MPROC_AUTHKEY_MAX + 3]; /* the key, "\r\n", one byte too many */
    size_t n = fread(buf, 1, sizeof buf, f);
    if (ferror(f)) {
        fprintf(stderr, PROG ": cannot read the authkey file %s: %s\n", path, strerror(errno));
        fclose(f);
        exit(1);
    }
    fclose(f);
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') n--; /* "\r\n" */
    }
    /* A file too long to read whole is still too long here. */
    if (n == 0) usage_error("the authkey file %s is empty", path);
    if (n > MPROC_AUTHKEY_MAX)
        usage_error("the authkey in %s is longer than %d bytes", path, MPROC_AUTHKEY_MAX);
    memcpy(authkey, buf, n);
    authkey_len = n;
}

/* ---- numbers ---------------------------------------------------------------------------- */

static int parse_int(const char *s, const char *option, int min)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > INT_MAX) {
        fprintf(stderr, PROG ": %s: '%s' is not a whole number from %d to %d\n", option, s, min,
                INT_MAX);
        fprintf(stderr, "Try '" PROG " --help' for more information.\n");
        exit(2);
    }
    return (int)v;
}

/* ---- readiness and signals ------------------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static char *served_address;  /* set once listening */
static int temporary_address; /* no address was given: the server made a temporary path */

/* mproc_manager_serve's ready callback: remember the address and print it. */
static void on_ready(const char *address, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&mu);
    served_address = strdup(address);
    pthread_cond_broadcast(&ready_cv);
    pthread_mutex_unlock(&mu);
    if (served_address == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    printf("%s\n", address);
    fflush(stdout);
}

/* Ends the process now: removes a Unix socket path it listens on (and the
 * private directory of a temporary one), exits 1. */
static void forced_exit(void)
{
    pthread_mutex_lock(&mu);
    const char *a = served_address;
    if (a != NULL && a[0] == '/') {
        unlink(a);
        if (temporary_address) {
            char *dir = strdup(a), *slash = dir ? strrchr(dir, '/') : NULL;
            if (slash != NULL && slash != dir) {
                *slash = '\0';
                rmdir(dir);
            }
            free(dir);
        }
    }
    _exit(1);
}

static bool shutdown_started, shutdown_done; /* under mu */
static pthread_t shutdown_thread;            /* set once shutdown_started */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;

/* Asks the server to shut down, as a client would. */
static void *shutdown_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (served_address == NULL) pthread_cond_wait(&ready_cv, &mu);
    const char *address = served_address;
    pthread_mutex_unlock(&mu);
    /* Three tries: a handshake can fail on a busy server, and then the
     * only way left is the forced exit. */
    int rc = MPROC_EINVAL;
    for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
        if (attempt > 0) nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
        mproc_manager *m;
        rc = mproc_manager_connect(&m, address, authkey, authkey_len);
        if (rc == 0) {
            rc = mproc_manager_shutdown(m);
            mproc_manager_free(m);
        }
    }
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot shut the server down: %s; exiting\n", mproc_strerror(rc));
        forced_exit();
    }
    pthread_mutex_lock(&mu);
    shutdown_done = true;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Takes SIGTERM and SIGINT: the first starts a shutdown, the next ends the
 * process at once. */
static void *signal_main(void *arg)
{
    const sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        pthread_mutex_lock(&mu);
        bool again = shutdown_started;
        shutdown_started = true;
        pthread_mutex_unlock(&mu);
        if (again) forced_exit();
        /* (joined before the process exits: what the thread's client
         * holds per thread, OpenSSL's state, is freed as it ends) */
        pthread_mutex_lock(&mu);
        if (pthread_create(&shutdown_thread, NULL, shutdown_main, NULL) != 0) forced_exit();
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* After the server stopped: lets a shutdown asked by a signal finish (it
 * is still freeing its client) before the process exits, for at most 5 s,
 * and then joins its thread, which is only returning. */
static void wait_for_shutdown_thread(void)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 5;
    pthread_mutex_lock(&mu);
    while (shutdown_started && !shutdown_done)
        if (pthread_cond_timedwait(&done_cv, &mu, &end) == ETIMEDOUT) break;
    bool join = shutdown_done;
    pthread_mutex_unlock(&mu);
    if (join) pthread_join(shutdown_thread, NULL);
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    enum { OPT_IDLE = 256, OPT_MAXCONN, OPT_MAXMSG };
    static const struct option longopts[] = {
        {"address", required_argument, NULL, 'a'},
        {"authkey-file", required_argument, NULL, 'k'},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"max-connections", required_argument, NULL, OPT_MAXCONN},
        {"max-message", required_argument, NULL, OPT_MAXMSG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *address = NULL, *key_file = NULL;
    int idle_ms = 0, max_conns = 0, max_msg = 0, c;
    opterr = 0; /* our own messages */
    while ((c = getopt_long(argc, argv, ":a:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (address != NULL) usage_error("the address is given twice");
            address = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case OPT_IDLE:
            idle_ms = parse_int(optarg, "--idle-timeout", 0);
            break;
        case OPT_MAXCONN:
            max_conns = parse_int(optarg, "--max-connections", 1);
            break;
        case OPT_MAXMSG:
            max_msg = parse_int(optarg, "--max-message", 1024);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            usage_error("%s needs an argument", argv[optind - 1]);
            break;
        default:
            if (optopt != 0) usage_error("unknown option -%c", optopt);
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        if (address != NULL || argc - optind > 1)
            usage_error("one address only (extra argument '%s')", argv[argc - 1]);
        address = argv[optind];
    }
    if (address != NULL && address[0] == '\0') usage_error("the address is empty");
    temporary_address = address == NULL;

    const char *env = getenv("MPROC_AUTHKEY");
    if (key_file != NULL)
        key_from_file(key_file);
    else if (env != NULL)
        key_from_env(env);
    else
        usage_error("no authkey: give --authkey-file PATH or set MPROC_AUTHKEY");

    /* Signals: blocked here, before any thread exists, so every thread
     * (the server's too) inherits the mask and only signal_main takes
     * them. A client that goes away must not kill the server. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t sig_thread;
    int err = pthread_create(&sig_thread, NULL, signal_main, &set);
    if (err != 0) {
        fprintf(stderr, PROG ": cannot start the signal thread: %s\n", strerror(err));
        return 1;
    }
    pthread_detach(sig_thread);

    mproc_manager_opts opts = {
        .address = address,
        .authkey = authkey,
        .authkey_len = authkey_len,
        .idle_timeout_ms = idle_ms,
        .max_connections = max_conns,
        .max_message = (size_t)max_msg,
    };
    int rc = mproc_manager_serve(&opts, on_ready, NULL);
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot serve on %s: %s\n",
                address != NULL ? address : "a temporary address", mproc_strerror(rc));
        return 1;
    }
    wait_for_shutdown_thread();
    return 0;
}

/* The forkserver start method.
 *
 * Each process that starts forkserver children has its own server: a new
 * image of the program (started like a spawn child, so it holds none of
 * the parent's threads or locks), single-threaded, connected by a stream
 * socket. A start sends the child's description and its fds (SCM_RIGHTS);
 * the server builds the child, forks it with clone(CLONE_PARENT), so that
 * it is a child of the process that asked, and replies with its pid or an
 * error. The server exits at end of file on the socket: when its process
 * exits (or stops it). A fork child of that process closes its copy of the
 * socket and gets a server of its own when it needs one. A server found
 * dead when a request is sent, or that died with the request unread (the
 * socket is then reset, not closed), is reaped and replaced, and the
 * request sent again; a server that dies after taking a request makes that
 * start fail with MPROC_ECHILDSTART (it may have made the child).
 *
 * Requests: {magic, nfds, len} with the fds attached, then len bytes of
 * description. Replies: {rc, pid, msglen}, then the message. */
#include "arena/arena.h"
#include "base/base.h"
#include "base/io.h"
#include "process/bootstrap.h"
#include "conn/conn.h"
#include "base/log.h"
#include "base/module.h"
#include "platform/platform.h"
#include "process/process.h"
#include "process/spawn.h"
#include "mproc/context.h"

#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAGIC        0x6d665371u /* "qSfm" */
#define REPLY_TIMEOUT_MS 60000

typedef struct req_hdr {
    uint32_t magic;
    uint32_t nfds; /* the child's fds, then its stdio */
    uint64_t len;
    uint32_t std;   /* bit k: fd k (0-2) is among the last fds sent */
    uint32_t flags; /* REQ_PARENT_THREAD */
} req_hdr;

/* The server was started by a thread other than the requester's main
 * thread: that thread, the parent of the server's children (CLONE_PARENT),
 * may end before the requester does. */
#define REQ_PARENT_THREAD 1u

typedef struct reply_hdr {
    int32_t rc;
    int32_t pid;
    uint32_t msglen;
    uint32_t pad;
} reply_hdr;

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t fs_pid;
static uint64_t srv_ign; /* in the server: the signals it ignores */
static int fs_sock = -1;
static mproc__fnref fs_preload;
static bool fs_off_main; /* launched by a thread other than the main one */

/* ---- fd passing --------------------------------------------------------------- */

/* With fds, msg_controllen is the CMSG_SPACE of at least one: CMSG_FIRSTHDR
 * is not NULL (the analyzer does not know). */
MPROC__ANALYZER_OFF("-Wanalyzer-null-dereference")
static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (MPROC__BOOT_MAX_FDS + 3))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    MPROC__RETRY_EINTR(n, sendmsg(sock, &mh, MSG_NOSIGNAL));
    if (n < 0) return MPROC__ERRNO();
    if ((size_t)n < len) return mproc__write_all(sock, (const char *)buf + n, len - (size_t)n);
    return 0;
}
MPROC__ANALYZER_ON

/* Receives exactly len bytes, the first of them with up to cap fds.
 * 0, MPROC_EEOF, or an error. */
static int recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t cap, size_t *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (MPROC__BOOT_MAX_FDS + 3))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {buf, len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    MPROC__RETRY_EINTR(n, recvmsg(sock, &mh, MSG_CMSG_CLOEXEC));
    if (n < 0) return MPROC__ERRNO();
    if (n == 0) return MPROC_EEOF;
    *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*nfds < cap)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if ((size_t)n < len) {
        mproc__deadline dl = {.forever = true};
        int rc = mproc__read_exact(sock, (char *)buf + n, len - (size_t)n, &dl);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the server ----------------------------------------------------------------- */

static void reply(int sock, int rc, pid_t pid, const char *msg)
{
    reply_hdr h = {rc, pid, msg ? (uint32_t)strlen(msg) : 0, 0};
    char buf[sizeof h + 256];
    if (h.msglen > 256) h.msglen = 256;
    memcpy(buf, &h, sizeof h);
    if (h.msglen) memcpy(buf + sizeof h, msg, h.msglen);
    (void)mproc__write_all(sock, buf, sizeof h + h.msglen);
}

/* Frees what the server built for one child (the child has its copy). */
static void drop_child(mproc__boot *b, mproc_process *p, int *fds, size_t nfds)
{
    if (p) {
        for (size_t i = 0; i < b->nconns; i++) {
            mproc_conn *c;
            memcpy(&c, (char *)p->arg + b->conns[i].off, sizeof c);
            mproc__conn_forget(c);
        }
        free(p->identity); /* malloc'd by mproc__boot_make_child */
        mproc_process_free(p);
    }
    for (size_t i = 0; i < nfds; i++) close(fds[i]);
    mproc__boot_free(b);
}

/* In a new child: the stdio, ignored signals and signal mask of the
 * process that asked for it, as if it had forked the child itself. Signals
 * sent before this point are pending (the server blocks them all) and act
 * now, under the child's dispositions. */
/* The caller checked that nfds >= popcount(std): fds[--k] is one received,
 * which the analyzer does not know. */
MPROC__ANALYZER_OFF("-Wanalyzer-use-of-uninitialized-value")
static void become_like_requester(const mproc__boot *b, uint32_t std, const int *fds, size_t nfds)
{
    mproc__reset_signal_handlers();
    size_t k = nfds;
    for (int s = 2; s >= 0; s--)
        if (std & (1u << s)) dup2(fds[--k], s);
    for (int s = 1; s <= 64 && s < NSIG; s++) {
        uint64_t bit = 1ULL << (s - 1);
        if (s == SIGKILL || s == SIGSTOP || ((b->sig_ign ^ srv_ign) & bit) == 0) continue;
        signal(s, (b->sig_ign & bit) ? SIG_IGN : SIG_DFL);
    }
    sigset_t mask;
    sigemptyset(&mask);
    for (int s = 1; s <= 64 && s < NSIG; s++)
        if (b->sig_mask & (1ULL << (s - 1))) sigaddset(&mask, s);
    sigprocmask(SIG_SETMASK, &mask, NULL);
}
MPROC__ANALYZER_ON

#ifdef MPROC_TESTING
volatile int mproc__forkserver_die_after_read;
#endif

/* An embedding runtime's calls around each fork of the server. */
static mproc_embed_fork_fn embed_before_fork, embed_after_fork_parent;

int mproc_embed_set_fork_hooks(mproc_embed_fork_fn before, mproc_embed_fork_fn after_parent)
{
    embed_before_fork = before;
    embed_after_fork_parent = after_parent;
    return 0;
}

static void serve_one(int ctl)
{
    req_hdr h;
    int fds[MPROC__BOOT_MAX_FDS + 3];
    size_t nfds = 0;
    int rc = recv_with_fds(ctl, &h, sizeof h, fds, MPROC__BOOT_MAX_FDS + 3, &nfds);
    if (rc || h.magic != REQ_MAGIC || h.len > ((uint64_t)1 << 40) || h.std > 7) _exit(0);
    size_t nstd = (size_t)__builtin_popcount(h.std);
    if (nstd > nfds) _exit(0);
    void *blob = malloc(h.len ? h.len : 1);
    mproc__deadline dl = {.forever = true};
    if (!blob || mproc__read_exact(ctl, blob, h.len, &dl) != 0) _exit(0);
#ifdef MPROC_TESTING
    if (mproc__forkserver_die_after_read) _exit(0);
#endif
    mproc__boot b;
    rc = mproc__boot_decode(blob, h.len, &b);
    free(blob);
    mproc_process *p = NULL;
    const char *msg = "malformed child description";
    if (!rc && b.role != MPROC__ROLE_CHILD) rc = MPROC_EPROTO;
    if (!rc) rc = mproc__boot_make_child(&b, fds, nfds - nstd, &p, &msg);
    if (!rc) p->parent_is_thread = h.flags & REQ_PARENT_THREAD;
    if (rc) {
        reply(ctl, rc, 0, msg);
        drop_child(&b, p, fds, nfds);
        return;
    }
    if (embed_before_fork) embed_before_fork();
    pid_t pid = mproc__clone_parent();
    if (pid != 0 && embed_after_fork_parent) embed_after_fork_parent();
    if (pid == 0) {
        close(ctl);
        mproc__modules_after_fork_child(); /* clone ran no fork handlers */
        become_like_requester(&b, h.std, fds, nfds);
        pid_t ppid = b.ppid;
        mproc__boot_free(&b);
        mproc__child_main(p, ppid, mproc__boot_parent_fd(ppid));
    }
    reply(ctl, pid < 0 ? pid : 0, pid < 0 ? 0 : pid, pid < 0 ? "clone failed" : NULL);
    drop_child(&b, p, fds, nfds);
}

void mproc__forkserver_serve(mproc__boot *b, int ctl)
{
    mproc__set_thread_name("mproc-forksrv");
    /* Signals meant for the program (a Ctrl-C to its process group) do not
     * reach the server; its children start with them pending, blocked. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    uint64_t unused;
    mproc__boot_signals(&srv_ign, &unused);
    if (b->preload) {
        void (*fn)(void) = (void (*)(void))mproc__fnref_resolve(b->preload);
        if (!fn) {
            mproc__spawn_report(ctl, MPROC_ECHILDSTART, "the preload function cannot be found");
            _exit(1);
        }
        fn();
    }
    mproc__boot_free(b);
    if (!mproc__clone_parent_supported()) {
        mproc__spawn_report(ctl, MPROC_ENOTSUP, "clone(CLONE_PARENT) cannot be used here");
        _exit(1);
    }
    /* What children commonly load on first use, loaded once here: the
     * unwinder a pool worker's crash handler needs. */
    void *frames[2];
    backtrace(frames, 2);
    mproc__spawn_report(ctl, 0, NULL);
    for (;;) serve_one(ctl);
}

/* ---- the client ------------------------------------------------------------------ */

static int launch_locked(void)
{
    void *blob;
    size_t len, nfds;
    int fds[MPROC__BOOT_MAX_FDS];
    int rc = mproc__boot_encode(NULL, fs_preload, &blob, &len, fds, &nfds);
    if (rc) return rc;
    pid_t pid;
    int sock;
    rc = mproc__spawn_image(blob, len, NULL, 0, &pid, &sock);
    free(blob);
    if (rc) return rc;
    fs_pid = pid;
    fs_sock = sock;
    fs_off_main = !mproc__on_main_thread();
    MPROC__DEBUG("forkserver started: pid %d", (int)pid);
    return 0;
}

static void reap_server(bool wait_exit)
{
    /* Closing the socket makes it exit; give it a moment, then kill. */
    for (int i = 0; wait_exit && i < 200; i++) {
        if (waitpid(fs_pid, NULL, WNOHANG) == fs_pid) return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(fs_pid, SIGKILL);
    pid_t r;
    MPROC__RETRY_EINTR(r, waitpid(fs_pid, NULL, 0));
}

static void drop_locked(bool wait_exit)
{
    if (fs_sock < 0) return;
    close(fs_sock);
    fs_sock = -1;
    reap_server(wait_exit);
    fs_pid = 0;
}

/* One request: MPROC_EPIPE if the server was found dead before it took
 * the request (so it may be sent again to a new one). */
static int request_locked(const void *blob, size_t len, const int *fds, size_t nfds, uint32_t std,
                          pid_t *pid)
{
    req_hdr h = {REQ_MAGIC, (uint32_t)nfds, len, std, fs_off_main ? REQ_PARENT_THREAD : 0};
    int rc = send_with_fds(fs_sock, &h, sizeof h, fds, nfds);
    if (rc == 0) rc = mproc__write_all(fs_sock, blob, len);
    if (rc) return rc == MPROC_ECONNRESET ? MPROC_EPIPE : rc;
    mproc__deadline dl;
    mproc__deadline_init(&dl, REPLY_TIMEOUT_MS);
    reply_hdr r;
    if ((rc = mproc__read_exact(fs_sock, &r, sizeof r, &dl)) != 0) {
        /* A server that died with our request unread resets the socket:
         * it made no child, so the request may go to a new server. One
         * that read it (end of file) may have made the child. */
        if (rc == MPROC_ECONNRESET) return MPROC_EPIPE;
        mproc_log(MPROC_LOG_ERROR, "forkserver: %s",
                  rc == MPROC_ETIMEDOUT ? "no reply" : "the server died during a start");
        drop_locked(false);
        return MPROC_ECHILDSTART;
    }
    char msg[257] = "";
    if (r.msglen > 256 || mproc__read_exact(fs_sock, msg, r.msglen, &dl) != 0) r.msglen = 0;
    msg[r.msglen] = '\0';
    if (r.rc) {
        mproc_log(MPROC_LOG_ERROR, "forkserver: start failed: %s (%s)", msg, mproc_strerror(r.rc));
        return r.rc < 0 && r.rc > -2000 ? r.rc : MPROC_ECHILDSTART;
    }
    *pid = r.pid;
    return 0;
}

static int forkserver_start(mproc_process *p)
{
    void *blob;
    size_t len, nfds;
    int fds[MPROC__BOOT_MAX_FDS + 3];
    int rc = mproc__boot_encode(p, 0, &blob, &len, fds, &nfds);
    if (rc) return rc;
    /* The child gets our stdio as it is now, not as it was when the server
     * started. */
    uint32_t std = 0;
    for (int s = 0; s < 3; s++)
        if (fcntl(s, F_GETFD) >= 0) {
            fds[nfds++] = s;
            std |= 1u << s;
        }
    fflush(NULL);
    pid_t pid = 0;
    MPROC__LOCK(&fs_mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (fs_sock < 0 && (rc = launch_locked())) break;
        rc = request_locked(blob, len, fds, nfds, std, &pid);
        if (rc != MPROC_EPIPE) break;
        MPROC__INFO("forkserver %d found dead: starting a new one", (int)fs_pid);
        drop_locked(false);
    }
    MPROC__UNLOCK(&fs_mu);
    free(blob);
    if (rc) return rc;
    return mproc__process_started(p, pid);
}

const mproc__start_method mproc__forkserver_method = {"forkserver", forkserver_start};

int mproc_forkserver_ensure_running(void)
{
    mproc__init();
    if (!mproc__start_method_available(MPROC_START_FORKSERVER)) return MPROC_ENOTSUP;
    MPROC__LOCK(&fs_mu);
    int rc = 0;
    if (fs_sock >= 0 && waitpid(fs_pid, NULL, WNOHANG) == fs_pid) { /* died */
        close(fs_sock);
        fs_sock = -1;
    }
    if (fs_sock < 0) rc = launch_locked();
    MPROC__UNLOCK(&fs_mu);
    return rc;
}

int mproc_forkserver_stop(void)
{
    MPROC__LOCK(&fs_mu);
    drop_locked(true);
    MPROC__UNLOCK(&fs_mu);
    return 0;
}

int mproc_forkserver_set_preload(mproc_preload_fn fn)
{
    mproc__fnref ref;
    int rc = mproc__fnref_make((const void *)fn, &ref);
    if (rc) return rc;
    MPROC__LOCK(&fs_mu);
    fs_preload = ref;
    MPROC__UNLOCK(&fs_mu);
    return 0;
}

/* In a fork child: the parent's server is not the child's (it starts its
 * own when it needs one). Rank PROCESS + 1: after the process's own hook. */
static void forkserver_after_fork_child(void)
{
    fs_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    if (fs_sock >= 0) close(fs_sock);
    fs_sock = -1;
    fs_pid = 0;
}

static mproc__module forkserver_module = {
    .name = "process.forkserver",
    .rank = MPROC__RANK_PROCESS + 1,
    .after_fork_child = forkserver_after_fork_child,
};
MPROC__MODULE(forkserver_module)

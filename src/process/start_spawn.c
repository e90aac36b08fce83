/* The spawn start method: the child is a fresh exec of the program
 * (/proc/self/exe); mproc's start-up code (the constructor below) takes
 * over before main, maps the family arena, builds the child from the
 * description the parent sends and runs the target.
 *
 * The child gets only the fds it needs, at fixed numbers: 0-2 as they are,
 * CTL_FD (a socket to the parent: the description comes in, the start-up
 * status goes out), ARENA_FD (the arena memfd: the same open file
 * description as the family's) and from FIRST_FD on the fds of the
 * connections passed in the arguments. posix_spawn (vfork-like: cheap for
 * a large parent, safe in a threaded one) does the moves and closes every
 * other fd. The parent's start waits for the child's status, so that a
 * start-up failure (the arena address taken, the target not found) is the
 * start call's error.
 *
 * An embedding runtime (an interpreter that loaded mproc) sets the new
 * image's argv with mproc_embed_set_argv: the image is then told (the
 * value 2 of the spawn variable) to map the arena and build the library
 * as usual, but to leave the child pending and return to the program's
 * main; the runtime calls mproc_embed_child_main once it can run code, and
 * the start-up status is sent from there. */
#include "arena/arena.h"
#include "base/base.h"
#include "base/io.h"
#include "process/bootstrap.h"
#include "platform/exec_self.h"
#include "base/log.h"
#include "platform/platform.h"
#include "process/process.h"
#include "process/spawn.h"
#include "mproc/context.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAWN_ENV        MPROC__ENV_SPAWN
#define CTL_FD           3
#define ARENA_FD         4
#define FIRST_FD         5
#define START_TIMEOUT_MS 60000

/* ---- the argv of an embedding runtime's images --------------------------------- */

static pthread_mutex_t embed_mu = PTHREAD_MUTEX_INITIALIZER;
static char **embed_argv; /* NULL: the default argv, no deferred start */

int mproc_embed_set_argv(const char *const *argv)
{
    if (argv && !argv[0]) return MPROC_EINVAL;
    char **copy = NULL;
    if (argv) { /* one block: the pointers, then the strings */
        size_t n = 0, bytes = 0;
        for (; argv[n]; n++) bytes += strlen(argv[n]) + 1;
        if (!(copy = malloc((n + 1) * sizeof *copy + bytes))) return MPROC_ENOMEM;
        char *str = (char *)(copy + n + 1);
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(argv[i]) + 1;
            copy[i] = memcpy(str, argv[i], len);
            str += len;
        }
        copy[n] = NULL;
    }
    pthread_mutex_lock(&embed_mu);
    char **old = embed_argv;
    embed_argv = copy;
    pthread_mutex_unlock(&embed_mu);
    free(old);
    return 0;
}

/* ---- the status a new image reports ---------------------------------------- */

typedef struct status_hdr {
    int32_t rc;
    uint32_t msglen;
} status_hdr;

void mproc__spawn_report(int fd, int rc, const char *msg)
{
    status_hdr h = {rc, msg ? (uint32_t)strlen(msg) : 0};
    char buf[sizeof h + 512];
    if (h.msglen > 512) h.msglen = 512;
    memcpy(buf, &h, sizeof h);
    if (h.msglen) memcpy(buf + sizeof h, msg, h.msglen);
    (void)mproc__write_all(fd, buf, sizeof h + h.msglen);
}

/* The status of a starting image: 0, or its error (logged with its
 * message). */
static int read_status(int fd, const char *what)
{
    mproc__deadline dl;
    mproc__deadline_init(&dl, START_TIMEOUT_MS);
    status_hdr h;
    int rc = mproc__read_exact(fd, &h, sizeof h, &dl);
    if (rc) {
        mproc_log(MPROC_LOG_ERROR, "%s: the new process %s before it could start", what,
                  rc == MPROC_ETIMEDOUT ? "did not report" : "died");
        return MPROC_ECHILDSTART;
    }
    if (h.rc == 0) return 0;
    char msg[513] = "";
    if (h.msglen > 512 || mproc__read_exact(fd, msg, h.msglen, &dl) != 0) h.msglen = 0;
    msg[h.msglen] = '\0';
    mproc_log(MPROC_LOG_ERROR, "%s: start-up failed: %s (%s)", what, msg[0] ? msg : "no message",
              mproc_strerror(h.rc));
    return h.rc < 0 && h.rc > -2000 ? h.rc : MPROC_ECHILDSTART;
}

/* ---- the parent side ------------------------------------------------------- */

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

int mproc__spawn_image(const void *blob, size_t len, const int *fds, size_t nfds, pid_t *pid_out,
                       int *ctl_out)
{
    int arena_fd = mproc__arena_fd();
    if (arena_fd < 0) return MPROC_EBADSTATE;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return MPROC__ERRNO();
    /* Every source fd moved above the targets first, so that no move
     * overwrites a source still to be moved. */
    int hi[MPROC__BOOT_MAX_FDS + 2];
    size_t nhi = nfds + 2;
    int lowest = FIRST_FD + (int)nfds, rc = 0;
    for (size_t i = 0; i < nhi; i++) {
        int src = i == 0 ? sv[1] : i == 1 ? arena_fd : fds[i - 2];
        hi[i] = rc ? -1 : fcntl(src, F_DUPFD_CLOEXEC, lowest);
        if (hi[i] < 0 && !rc) rc = MPROC__ERRNO();
    }
    close(sv[1]);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    mproc__exec_env env = {0};
    if (rc) goto out_fds;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    for (size_t i = 0; i < nhi; i++)
        posix_spawn_file_actions_adddup2(&fa, hi[i],
                                         i == 0   ? CTL_FD
                                         : i == 1 ? ARENA_FD
                                                  : FIRST_FD + (int)i - 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, lowest);
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pthread_mutex_lock(&embed_mu);
    rc = mproc__exec_env_make(embed_argv ? SPAWN_ENV "=2" : SPAWN_ENV "=1", &env);
    pid_t pid = 0;
    if (!rc) {
        char *argv[] = {mproc__program_name(), NULL};
        int e = posix_spawn(&pid, mproc__self_exe(), &fa, &attr, embed_argv ? embed_argv : argv,
                            env.envp);
        if (e) rc = mproc__err_from_errno(e);
    }
    pthread_mutex_unlock(&embed_mu);
    mproc__exec_env_free(&env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
out_fds:
    close_all(hi, nhi);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    uint64_t n = len;
    /* A failed write means the child is gone: its status read says so. */
    if (mproc__write_all(sv[0], &n, sizeof n) == 0) (void)mproc__write_all(sv[0], blob, len);
    rc = read_status(sv[0], "spawn");
    if (rc) {
        close(sv[0]);
        kill(pid, SIGKILL);
        pid_t r;
        MPROC__RETRY_EINTR(r, waitpid(pid, NULL, 0));
        return rc;
    }
    *pid_out = pid;
    if (ctl_out)
        *ctl_out = sv[0];
    else
        close(sv[0]);
    return 0;
}

static int spawn_start(mproc_process *p)
{
    void *blob;
    size_t len, nfds;
    int fds[MPROC__BOOT_MAX_FDS];
    p->parent_is_thread = !mproc__on_main_thread(); /* described for the child */
    int rc = mproc__boot_encode(p, 0, &blob, &len, fds, &nfds);
    if (rc) return rc;
    /* Output buffered in stdio comes out in the order it was written. */
    fflush(NULL);
    pid_t pid;
    rc = mproc__spawn_image(blob, len, fds, nfds, &pid, NULL);
    free(blob);
    if (rc) return rc;
    return mproc__process_started(p, pid);
}

const mproc__start_method mproc__spawn_method = {"spawn", spawn_start};

/* ---- the child side: before main --------------------------------------------- */

static MPROC__NORETURN void fail(int rc, const char *msg)
{
    mproc__spawn_report(CTL_FD, rc, msg);
    _exit(1);
}

/* A child (or forkserver) of an embedding runtime, built up to the point
 * where it needs the runtime: its description, the arena mapped. */
static mproc__boot pending;
static bool have_pending;

/* Builds and runs the child that b describes (role CHILD); never returns. */
static MPROC__NORETURN void run_child(mproc__boot *b, bool reset_signals)
{
    int fds[MPROC__BOOT_MAX_FDS];
    for (int i = 0; i < MPROC__BOOT_MAX_FDS; i++) fds[i] = FIRST_FD + i;
    mproc_process *p;
    const char *msg = NULL;
    int rc;
    if ((rc = mproc__boot_make_child(b, fds, MPROC__BOOT_MAX_FDS, &p, &msg))) fail(rc, msg);
    pid_t ppid = b->ppid;
    mproc__boot_free(b);
    /* As under fork: the target starts with default handlers (a runtime
     * such as a sanitizer may have caught signals in this new image). An
     * embedding runtime's own handlers stay: they are its business. */
    if (reset_signals) mproc__reset_signal_handlers();
    mproc__spawn_report(CTL_FD, 0, NULL);
    close(CTL_FD);
    mproc__child_main(p, ppid, mproc__boot_parent_fd(ppid));
}

bool mproc_embed_child_pending(void)
{
    return have_pending;
}

bool mproc_embed_child_is_server(void)
{
    return have_pending && pending.role == MPROC__ROLE_FORKSERVER;
}

int mproc_embed_child_main(void)
{
    if (!have_pending) return MPROC_EBADSTATE;
    have_pending = false;
    if (pending.role == MPROC__ROLE_FORKSERVER) mproc__forkserver_serve(&pending, CTL_FD);
    run_child(&pending, false);
}

__attribute__((constructor(102))) static void spawn_ctor(void)
{
    const char *v = mproc__setting(MPROC__SET_SPAWN);
    struct stat st;
    if (!v) return;
    bool defer = strcmp(v, "2") == 0;
    unsetenv(SPAWN_ENV);
    mproc__exec_env_restore();
    if (fstat(CTL_FD, &st) != 0 || !S_ISSOCK(st.st_mode)) return; /* not ours */
    mproc__deadline dl;
    mproc__deadline_init(&dl, START_TIMEOUT_MS);
    uint64_t len;
    if (mproc__read_exact(CTL_FD, &len, sizeof len, &dl) != 0 || len > ((uint64_t)1 << 40))
        _exit(1);
    void *blob = malloc(len ? len : 1);
    if (!blob) fail(MPROC_ENOMEM, "no memory for the child's description");
    if (mproc__read_exact(CTL_FD, blob, len, &dl) != 0) _exit(1);
    mproc__boot b;
    int rc = mproc__boot_decode(blob, len, &b);
    free(blob);
    if (rc) fail(rc, "malformed child description");
    if ((rc = mproc__arena_adopt(ARENA_FD, b.arena_base, b.arena_size))) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot map the family arena at %#lx in the child",
                 (unsigned long)b.arena_base);
        fail(rc, msg);
    }
    mproc__init();
    if (defer) { /* the runtime's main goes on; it calls mproc_embed_child_main */
        pending = b;
        have_pending = true;
        return;
    }
    if (b.role == MPROC__ROLE_FORKSERVER) mproc__forkserver_serve(&b, CTL_FD);
    run_child(&b, true);
}

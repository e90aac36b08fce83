/* A program that never starts the library (no process, queue or arena
 * call: only a Lock in memory of its own, shared with a plain fork child
 * and declared with mproc_sync_allow_memory) still gets correct locks in
 * the child: the thread id the locks cache is the child's, not its
 * parent's. Not a Check program: Check's set-up
 * would start the library. Exit 0 when every step holds. */
#include "mproc/sync.h"

#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's exit status, or -1 if it did not end within 10 s. */
static int wait_child(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int main(void)
{
    mproc_lock *l =
        mmap(NULL, sizeof *l, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l == MAP_FAILED) return 10;
    /* memory of its own: refused until declared shared */
    if (mproc_lock_init(l) != MPROC_EINVAL) return 16;
    if (mproc_sync_allow_memory(l, sizeof *l) != 0 || mproc_lock_init(l) != 0) return 17;
    /* the parent's thread id is cached here, before the fork */
    if (mproc_lock_acquire(l, 1000) != 0 || mproc_lock_release(l) != 0) return 11;
    pid_t pid = fork();
    if (pid < 0) return 12;
    if (pid == 0) {
        if (mproc_lock_acquire(l, 1000) != 0) _exit(1);
        if (mproc_lock_release(l) != 0) _exit(2); /* its owner: must be let go */
        _exit(0);
    }
    int code = wait_child(pid);
    if (code != 0) {
        fprintf(stderr, "child: %d (1: no acquire, 2: its release refused)\n", code);
        return 13;
    }
    /* released, not left to its death: the parent takes it cleanly */
    int rc = mproc_lock_acquire(l, 1000);
    if (rc != 0) {
        fprintf(stderr, "parent's acquire after the child: %d\n", rc);
        return 14;
    }
    if (mproc_lock_release(l) != 0) return 15;
    mproc_lock_fini(l);
    return 0;
}

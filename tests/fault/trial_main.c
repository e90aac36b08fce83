/* One trial, in a process of its own: runs the scenario, then checks what
 * the trial process itself can see: its fds, and its children (mproc's
 * must all be reaped; orphans of a killed family parent, re-parented here,
 * must end promptly). */
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void ft_own(ft_trial *t, pid_t pid)
{
    for (int i = 0; i < t->nowned; i++)
        if (t->owned[i] == pid) return;
    if (t->nowned < (int)(sizeof t->owned / sizeof t->owned[0])) t->owned[t->nowned++] = pid;
}

static bool is_owned(const ft_trial *t, pid_t pid)
{
    for (int i = 0; i < t->nowned; i++)
        if (t->owned[i] == pid) return true;
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].pid == pid) return true;
    return false;
}

/* Children left at the end: a child mproc should have reaped (zombie or
 * running) is a leak; an orphan must end within the settle time. */
static void check_children(ft_trial *t)
{
    pid_t kids[64];
    bool zombie[64];
    int n = ft_children(kids, 64, zombie);
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++)
        if (is_owned(t, kids[i]))
            ft_leak(t, 1, "process %d is %s after the trial", (int)kids[i],
                    zombie[i] ? "a zombie (never reaped)" : "still running");
    long long t0 = mproc_now_ns();
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r > 0) {
            ft_reaped(t, r, WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st));
            continue;
        }
        if (r < 0 && errno == ECHILD) return;
        if (ft_ms_since(t0) > t->hang_ms) break;
        ft_sleep_ms(2);
    }
    n = ft_children(kids, 64, NULL);
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) {
        if (!is_owned(t, kids[i]))
            ft_leak(t, 1, "orphan %d still running %d ms after the trial", (int)kids[i],
                    t->hang_ms);
        kill(kids[i], SIGKILL);
    }
    while (waitpid(-1, NULL, 0) > 0) {
    }
}

void ft_trial_main(const ft_scenario *sc, mproc_start_method m, uint64_t seed, int hang_ms,
                   ft_report *rep);
void ft_trial_main(const ft_scenario *sc, mproc_start_method m, uint64_t seed, int hang_ms,
                   ft_report *rep)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    static ft_trial t; /* large: not on the stack */
    memset(&t, 0, sizeof t);
    t.sc = sc;
    t.method = m;
    t.mname = mproc_start_method_name(m);
    t.seed = t.rng = seed;
    t.hang_ms = hang_ms;
    t.rep = rep;
    snprintf(t.tag, sizeof t.tag, "%s %s seed=0x%016llx", sc->name, t.mname,
             (unsigned long long)seed);
    int rc = mproc_get_context(t.mname, &t.ctx);
    if (rc) {
        ft_err(&t, "mproc_get_context", rc);
        rep->finished = 1;
        return;
    }
    int fds0 = ft_count_fds();
    sc->run(&t);
    ft_kill_rest(&t);
    mproc_forkserver_stop();
    check_children(&t);
    int fds1 = ft_count_fds();
    if (fds1 != fds0) {
        ft_leak(&t, fds1 > fds0 ? fds1 - fds0 : fds0 - fds1, "the trial process had %d fds, now %d",
                fds0, fds1);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "ls -l /proc/%d/fd >&2", (int)getpid());
        if (system(cmd)) {
        }
    }
    rep->finished = 1; /* exit() gives this thread's allocator cache back */
}
